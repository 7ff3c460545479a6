//! The value of every key left unset.

use std::net::SocketAddr;
use std::path::PathBuf;

pub fn listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
pub fn data() -> PathBuf {
    PathBuf::from("./data")
}
pub fn plugins_dir() -> PathBuf {
    PathBuf::from("./plugins")
}
pub fn body_limit() -> usize {
    1024 * 1024
}
/// Headers that carry a sender's credentials by convention.
pub fn strip_headers() -> Vec<String> {
    [
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
        "x-gitlab-token",
        "x-shopify-access-token",
        "x-ingest-token",
        "x-csrf-token",
        "x-amz-security-token",
    ]
    .map(str::to_owned)
    .to_vec()
}
pub fn request_timeout() -> u64 {
    30_000
}
pub fn header_timeout() -> u64 {
    10_000
}
pub fn max_concurrent_requests() -> usize {
    1024
}
pub fn max_header_bytes() -> usize {
    16 * 1024
}
pub fn max_queue_depth() -> u64 {
    100_000
}
pub fn workers() -> usize {
    32
}
pub fn store_cache_mb() -> u64 {
    crate::store::DEFAULT_CACHE_BYTES / (1024 * 1024)
}
pub fn max_age() -> String {
    "30d".into()
}
pub fn postgres_url_env() -> String {
    "HOOKHOST_DATABASE_URL".into()
}
pub fn postgres_pool() -> usize {
    16
}
pub fn postgres_lease() -> String {
    "60s".into()
}
pub fn purge_every() -> String {
    "1m".into()
}
pub fn quarantine_max_age() -> String {
    "30d".into()
}
pub fn quarantine_max_bytes() -> u64 {
    256 << 20
}
pub const FUEL: u64 = 1_000_000_000;
pub const TIMEOUT_MS: u64 = 5_000;
pub const MEMORY_MB: u64 = 64;
pub const MAX_CONCURRENCY: usize = 8;
pub const MAX_HTTP_REQUESTS: u32 = 16;
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
