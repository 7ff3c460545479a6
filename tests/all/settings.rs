//! Plugin config and secrets: secrets reach the handler and nothing else;
//! config changes apply without a restart.

use hookhost_tests::{Setup, TestHost, plugins};
use serde_json::{Value, json};

const SECRET_VAR: &str = "HOOKHOST_TEST_PLUGIN_SECRET";

fn secret() -> String {
    std::env::var(SECRET_VAR).expect("the test secret is set in .cargo/config.toml")
}

async fn settle(host: &TestHost, topic: &str, body: Value) -> Value {
    let (status, answer) = host.post_json(topic, &body).await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_the_handler_and_never_a_record() {
    let host = Setup::new()
        .plugin("leaky", plugins::TEST_LEAKY)
        .limits("leaky", |s| {
            s.secrets.insert("token".into(), SECRET_VAR.into());
        })
        .start()
        .await;
    let secret = secret();
    let mut records = String::new();
    for how in ["log", "print", "reject", "panic", "emit", "kv"] {
        let event = settle(&host, "test.leak", json!({ "how": how })).await;
        let attempt = &event["deliveries"][0]["attempts"][0];
        let outcome = attempt["outcome"]["kind"]
            .as_str()
            .expect("kind")
            .to_owned();
        match how {
            "log" | "print" => assert_eq!(outcome, "ok", "{attempt:#}"),
            "reject" => assert_eq!(outcome, "reject", "{attempt:#}"),
            _ => assert_eq!(outcome, "trap", "{how}: {attempt:#}"),
        }
        records.push_str(&event.to_string());
    }
    // The handler did read it: the log kept its length, and its text with
    // the value replaced.
    assert!(
        records.contains(&format!("\"{}\"", secret.len())),
        "{records}"
    );
    assert!(
        records.contains("the token is [redacted secret token]"),
        "{records}"
    );
    assert!(
        records.contains("stdout: [redacted secret token]"),
        "{records}"
    );
    assert!(
        records.contains("refused to put the value of secret"),
        "{records}"
    );
    assert!(
        records.contains("refused to store the value of secret"),
        "{records}"
    );
    assert!(
        !records.contains(&secret),
        "a record holds the secret: {records}"
    );
    let (_, leaked) = host.get("/events?topic=test.leaked").await;
    assert_eq!(leaked["events"], json!([]), "no event carries it");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_variable_stops_the_start_with_its_name() {
    let setup = Setup::new().limits("leaky", |s| {
        s.secrets
            .insert("token".into(), "HOOKHOST_TEST_UNSET_VARIABLE".into());
    });
    let config = setup.config.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let error = hookhost::run(config, listener, async {})
        .await
        .expect_err("no start without the secret");
    let message = format!("{error:#}");
    assert!(
        message.contains("HOOKHOST_TEST_UNSET_VARIABLE"),
        "{message}"
    );
    assert!(message.contains("token"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_plugin_config_applies_on_reload_without_a_restart() {
    let setup = Setup::new().plugin("counter", plugins::TEST_COUNTER);
    let file = setup.data_dir().with_file_name("hookhost.toml");
    let write = |label: &str, fuel: u64| {
        std::fs::write(
            &file,
            format!("[plugins.counter]\nfuel = {fuel}\nconfig = {{ label = \"{label}\" }}\n"),
        )
        .expect("write config");
    };
    write("one", 300_000_000);
    let on_file = hookhost::Config::from_file(&file).expect("config");
    let host = setup
        .configure(|c| {
            c.source = on_file.source.clone();
            c.plugins = on_file.plugins.clone();
        })
        .start()
        .await;
    let label_of = |event: &Value| -> String {
        event["deliveries"][0]["attempts"][0]["logs"][0]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f[0] == "label")
            .expect("label field")[1]
            .as_str()
            .expect("label")
            .to_owned()
    };
    let first = settle(&host, "test.count", json!({})).await;
    assert_eq!(label_of(&first), "one");

    write("two", 400_000_000);
    let answer = reqwest::Client::new()
        .post(host.url("/config/reload"))
        .json(&json!({}))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status().as_u16(), 200);
    let answer: Value = answer.json().await.expect("json");
    assert_eq!(answer["plugins_changed"], 1, "{answer}");
    let second = settle(&host, "test.count", json!({})).await;
    assert_eq!(label_of(&second), "two");
    let (_, plugin) = host.get("/plugins/counter").await;
    assert_eq!(plugin["limits"]["fuel"], 400_000_000);

    // A broken file changes nothing, and says why.
    std::fs::write(&file, "[plugins.counter]\nfuel = \"lots\"\n").expect("write");
    let answer = reqwest::Client::new()
        .post(host.url("/config/reload"))
        .json(&json!({}))
        .send()
        .await
        .expect("reload");
    assert_eq!(answer.status().as_u16(), 422);
    let third = settle(&host, "test.count", json!({})).await;
    assert_eq!(label_of(&third), "two");
    host.stop().await;
}
