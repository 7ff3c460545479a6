//! For tests: a stand-in for a remote API on 127.0.0.1 that records what is
//! posted to it, so that outbound calls can be checked without the network.

use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What the server received at `/hook`: (idempotency key, JSON body), in
/// order.
pub type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A server on 127.0.0.1 recording what is posted to `/hook`; stops when
/// dropped.
pub struct RecordingServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingServer {
    pub async fn start() -> std::io::Result<Self> {
        let received = Received::default();
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let log = log.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if let Ok(mut log) = log.lock() {
                            log.push((key, body));
                        }
                        "ok"
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            received,
            task,
        })
    }

    /// What it has received so far.
    pub fn received(&self) -> Vec<(Option<String>, Value)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
