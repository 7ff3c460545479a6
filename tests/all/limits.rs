//! Request limits: slow clients, huge headers, floods and per-source sizes.

use hookhost::sources::{SourceConfig, SourceKind};
use hookhost_tests::{Setup, TestHost};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends the head of a POST whose body never finishes; returns the stream.
fn start_slow_upload(host: &TestHost) -> TcpStream {
    start_slow_upload_to(host, "/events/slow.upload", "")
}

/// The same to `path`, with `headers` (each ending in CRLF) added.
fn start_slow_upload_to(host: &TestHost, path: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(host.addr).expect("connect");
    stream
        .write_all(
            format!(
                "POST {path} HTTP/1.1\r\nhost: {}\r\n{headers}content-length: 100\r\n\r\n0123456789",
                host.addr
            )
            .as_bytes(),
        )
        .expect("write");
    stream
}

fn read_status(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).expect("read response");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Whether the server has already written something back on `stream`.
fn was_answered(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let answered = !matches!(
        stream.peek(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    stream.set_nonblocking(false).expect("blocking");
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_uploads_too_slowly_gets_408_and_nothing_is_stored() {
    let host = Setup::new()
        .configure(|c| c.request_timeout_ms = 300)
        .start()
        .await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking({
        let mut stream = start_slow_upload(&host);
        move || read_status(&mut stream)
    })
    .await
    .expect("reader");
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (_, list) = host.get("/events").await;
    assert_eq!(list["events"], json!([]));
    host.stop().await;
}

/// Compiling a candidate is not bounded by the request timeout (a cold
/// Python component takes longer), but its upload is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_uploaded_too_slowly_gets_408_and_nothing_is_kept() {
    let host = Setup::new()
        .configure(|c| c.request_timeout_ms = 300)
        .start()
        .await;
    for path in ["/plugins/slow/candidates", "/plugins/slow/shadow"] {
        let status = tokio::task::spawn_blocking({
            // The admin guard asks a state change for JSON.
            let mut stream =
                start_slow_upload_to(&host, path, "content-type: application/json\r\n");
            move || read_status(&mut stream)
        })
        .await
        .expect("reader");
        assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{path}");
    }
    let (status, _) = host.get("/plugins/slow").await;
    assert_eq!(status, 404);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let host = Setup::new()
        .configure(|c| c.max_header_bytes = 4096)
        .start()
        .await;
    let big = "x".repeat(8192);
    let (status, answer) = host
        .post(
            "orders.created",
            b"{}".to_vec(),
            &[("x-padding", big.as_str())],
        )
        .await;
    assert_eq!(status, 431, "{answer}");
    let (status, _) = host
        .post("orders.created", b"{}".to_vec(), &[("x-padding", "small")])
        .await;
    assert_eq!(status, 202);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let host = Setup::new()
        .configure(|c| c.header_timeout_ms = 300)
        .start()
        .await;
    let started = Instant::now();
    let ended = tokio::task::spawn_blocking({
        let mut stream = TcpStream::connect(host.addr).expect("connect");
        move || {
            stream
                .write_all(b"POST /events/slow.headers HTTP/1.1\r\nhost: test\r\n")
                .expect("write");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut buf = [0u8; 256];
            // The server closes the connection (EOF or reset); a read that
            // times out instead means the connection was left pinned.
            match stream.read(&mut buf) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(0),
                Err(e) => Err(e.kind()),
            }
        }
    })
    .await
    .expect("reader");
    assert!(ended.is_ok(), "connection not closed: {ended:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = host.post("orders.created", b"{}".to_vec(), &[]).await;
    assert_eq!(status, 202, "the host still serves others");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_are_shed_with_503() {
    let host = Setup::new()
        .configure(|c| {
            c.max_concurrent_requests = 1;
            c.request_timeout_ms = 60_000;
        })
        .start()
        .await;
    // The unfinished upload holds the only slot once the server has read its
    // head; until then requests get through, so ask until one is shed. If the
    // upload's head arrived while a probe held the slot, the upload itself
    // was shed: start another.
    let mut slow = start_slow_upload(&host);
    let deadline = Instant::now() + Duration::from_secs(30);
    let shed = loop {
        let (status, answer) = host.post("orders.created", b"{}".to_vec(), &[]).await;
        if status == 503 {
            break answer;
        }
        assert_eq!(status, 202, "{answer}");
        assert!(Instant::now() < deadline, "no request was ever shed");
        if was_answered(&slow) {
            slow = start_slow_upload(&host);
        }
    };
    assert!(
        shed["error"]
            .as_str()
            .expect("error")
            .contains("too many requests"),
        "{shed}"
    );
    // The limit is one for the whole server, not one per route.
    let (status, _) = host.get("/plugins").await;
    assert_eq!(status, 503);
    // Finishing the upload frees the slot: it is stored, and so are later posts.
    let status = tokio::task::spawn_blocking(move || {
        slow.write_all(&[b'7'; 90]).expect("finish the body");
        read_status(&mut slow)
    })
    .await
    .expect("reader");
    assert_eq!(status, "HTTP/1.1 202 Accepted");
    let (status, answer) = host.post("orders.created", b"{}".to_vec(), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let (_, list) = host.get("/events").await;
    let topics: Vec<&str> = list["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["topic"].as_str())
        .collect();
    assert!(topics.contains(&"slow.upload"), "{topics:?}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_can_have_its_own_body_limit() {
    let host = Setup::new()
        .configure(|c| {
            c.sources.insert(
                "forms".into(),
                SourceConfig {
                    topic: Some("forms.submitted".into()),
                    body_limit_bytes: Some(64),
                    ..SourceConfig::new(SourceKind::Generic)
                },
            );
        })
        .start()
        .await;
    let client = reqwest::Client::new();
    let small = client
        .post(host.url("/hooks/forms"))
        .body("{\"a\":1}")
        .send()
        .await
        .expect("post");
    assert_eq!(small.status(), 202);
    let large = client
        .post(host.url("/hooks/forms"))
        .body(vec![b' '; 65])
        .send()
        .await
        .expect("post");
    assert_eq!(large.status(), 413);
    host.stop().await;
}
