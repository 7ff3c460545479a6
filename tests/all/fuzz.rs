//! The ingest path under random requests: no 5xx, no partial writes.

use hookhost_tests::Setup;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone)]
struct RandomRequest {
    topic: String,
    content_type: Option<String>,
    idempotency_key: Option<String>,
    body: Vec<u8>,
}

fn requests() -> impl Strategy<Value = RandomRequest> {
    (
        prop_oneof!["[a-z0-9._-]{1,24}", "[ -~]{0,24}"],
        proptest::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("text/plain".to_owned()),
            "[ -~]{0,40}",
        ]),
        proptest::option::of("[ -~]{0,300}"),
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "\\{\"[a-z]{1,5}\": [0-9]{1,5}\\}".prop_map(String::into_bytes),
        ],
    )
        .prop_map(
            |(topic, content_type, idempotency_key, body)| RandomRequest {
                topic,
                content_type,
                idempotency_key,
                body,
            },
        )
}

#[test]
fn random_requests_get_a_4xx_or_are_stored_whole() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let host = rt.block_on(Setup::new().start());
    let client = reqwest::Client::new();
    let mut runner = TestRunner::new(Config::with_cases(128));
    let accepted = std::cell::RefCell::new(std::collections::BTreeSet::new());
    runner
        .run(&requests(), |req| {
            let (status, id) = rt.block_on(async {
                let url = host.url(&format!("/events/{}", urlencode(&req.topic)));
                let mut request = client.post(url).body(req.body.clone());
                if let Some(ct) = &req.content_type {
                    request = request.header("content-type", ct.as_str());
                }
                if let Some(key) = &req.idempotency_key {
                    request = request.header("idempotency-key", key.as_str());
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        (status, body["id"].as_str().map(str::to_owned))
                    }
                    // reqwest refuses some header values itself: nothing was sent.
                    Err(e) if e.is_builder() => (0, None),
                    Err(e) => panic!("transport error: {e}"),
                }
            });
            prop_assert!(
                status == 0 || (200..500).contains(&status),
                "{status} for {req:?}"
            );
            if status == 202 {
                accepted
                    .borrow_mut()
                    .insert(id.expect("an accepted event has an id"));
            }
            Ok(())
        })
        .expect("property");
    let stored = rt.block_on(async {
        let (_, list) = host.get("/events?limit=1000").await;
        list["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
    });
    assert_eq!(
        stored,
        accepted.into_inner(),
        "exactly the accepted events are stored"
    );
    rt.block_on(host.stop());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
