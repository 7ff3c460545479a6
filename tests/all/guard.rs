//! The admin API refuses what a web page in the operator's browser could
//! send it: a rebound host name, a foreign origin, a form-typed state change.

use hookhost_tests::Setup;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_sites_cannot_reach_an_open_admin_api() {
    let host = Setup::new().start().await;
    let client = reqwest::Client::new();
    let port = host.addr.port();

    // DNS rebinding: the page's own name, now pointing here.
    let rebound = client
        .get(host.url("/events"))
        .header("host", format!("evil.example:{port}"))
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status(), 403);

    // A cross-site POST a page can send without asking: no content type, or
    // a form's.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = client.post(host.url("/config/reload")).body("{}");
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let answer = request.send().await.expect("post");
        assert_eq!(answer.status(), 415, "{content_type:?}");
    }
    let foreign = client
        .post(host.url("/config/reload"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status(), 403);

    // The host's own page, the CLI and scripts still get through.
    let own = client
        .post(host.url("/dead-letters/retry"))
        .header("origin", format!("http://{}", host.addr))
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(own.status(), 200);
    let (status, _) = host.get("/events").await;
    assert_eq!(status, 200);
    // Ingest is not the admin API: senders post whatever they post.
    let (status, _) = host.post("any.topic", b"x".to_vec(), &[]).await;
    assert_eq!(status, 202);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_name_is_answered() {
    let host = Setup::new()
        .configure(|c| c.admin_hosts = vec!["Hookhost.Example.com".into()])
        .start()
        .await;
    let answer = reqwest::Client::new()
        .get(host.url("/plugins"))
        .header("host", "hookhost.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), 200);
    host.stop().await;
}
