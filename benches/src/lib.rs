//! What the benchmark binaries share.

/// A JSON body of `size` bytes, shaped like a small payment event.
pub fn body(size: usize) -> Vec<u8> {
    let mut body = br#"{"amount": 1250, "currency": "eur", "note": ""#.to_vec();
    while body.len() + 2 < size {
        body.push(b'x');
    }
    body.extend_from_slice(b"\"}");
    body
}
