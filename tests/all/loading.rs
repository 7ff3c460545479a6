//! Loading plugins at startup: broken files are reported and skipped.

use hookhost_tests::{Setup, plugins, sha256_of};
use serde_json::{Value, json};

fn error_of<'a>(list: &'a Value, name: &str) -> &'a str {
    list["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["name"] == name))
        .and_then(|e| e["error"].as_str())
        .unwrap_or_else(|| panic!("no load error for {name}: {list:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_are_skipped_with_a_reason_and_the_rest_serve() {
    let component = std::fs::read(plugins::TEST_COUNTER).expect("read");
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .plugin_bytes("random", b"this is not webassembly at all")
        .plugin_bytes("core-module", b"\0asm\x01\x00\x00\x00")
        .plugin_bytes("truncated", &component[..component.len() / 2])
        .plugin_bytes("Bad_Name", &component)
        .start()
        .await;

    let (status, list) = host.get("/plugins").await;
    assert_eq!(status, 200);
    assert!(error_of(&list, "random").contains("not a webassembly component"));
    assert!(error_of(&list, "core-module").contains("core wasm module"));
    assert!(error_of(&list, "truncated").starts_with("invalid component"));
    assert!(error_of(&list, "Bad_Name").contains("invalid plugin name"));

    let loaded: Vec<&Value> = list["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .collect();
    assert_eq!(loaded.len(), 1, "{list:#}");
    assert_eq!(loaded[0]["name"], "counter");
    assert_eq!(loaded[0]["version"], sha256_of(plugins::TEST_COUNTER));
    assert_eq!(loaded[0]["subscriptions"], json!(["test.count"]));

    let (status, one) = host.get("/plugins/truncated").await;
    assert_eq!((status, one["loaded"].clone()), (200, json!(false)));
    let (status, _) = host.get("/plugins/nothing-here").await;
    assert_eq!(status, 404);

    let (_, answer) = host.post_json("test.count", &json!({})).await;
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    assert_eq!(event["status"], "succeeded");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_of_another_world_are_refused() {
    let no_exports = wat::parse_str("(component)").expect("wat");
    let foreign_import =
        wat::parse_str(r#"(component (import "acme:billing/charge" (func)))"#).expect("wat");
    let host = Setup::new()
        .plugin_bytes("empty", &no_exports)
        .plugin_bytes("foreign", &foreign_import)
        .start()
        .await;

    let (_, list) = host.get("/plugins").await;
    for name in ["empty", "foreign"] {
        let error = error_of(&list, name);
        assert!(
            error.starts_with("component does not fit the hookhost:plugin/handler world"),
            "{name}: {error}"
        );
    }
    assert!(
        error_of(&list, "foreign").contains("acme:billing/charge"),
        "{list:#}"
    );
    assert_eq!(list["plugins"], json!([]));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_components_manifest_offline_and_refuses_broken_ones() {
    let report = hookhost::runtime::check_file(
        std::path::Path::new(plugins::STRIPE_LEDGER),
        hookhost::Config::default().limits_for(""),
    )
    .await
    .expect("the example plugin checks");
    assert_eq!(report.sha256, sha256_of(plugins::STRIPE_LEDGER));
    assert_eq!(report.manifest.subscriptions, ["stripe.payment_intent.*"]);
    assert_eq!(report.manifest.retry.map(|r| r.max_attempts), Some(8));

    let err = hookhost::runtime::check_file(
        std::path::Path::new(plugins::TEST_BAD_DESCRIBE),
        hookhost::Config::default().limits_for(""),
    )
    .await
    .expect_err("a trapping describe fails the check");
    assert!(err.to_string().starts_with("describe() failed"), "{err}");
}
