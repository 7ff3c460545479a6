//! Hostile plugins: each failure is a recorded outcome and the host keeps
//! serving everyone else.

use hookhost_tests::{Setup, TestHost, attempts, plugins, post_spins, spin_one_at_a_time};
use serde_json::{Value, json};

async fn post_and_settle(host: &TestHost, topic: &str) -> Value {
    let (status, answer) = host.post_json(topic, &json!({})).await;
    assert_eq!(status, 202, "{answer}");
    host.wait_settled(answer["id"].as_str().expect("id")).await
}

/// Waits for each event's one attempt and checks that no two ran at once.
async fn assert_no_overlap(host: &TestHost, ids: &[String]) {
    let mut spans = Vec::new();
    for id in ids {
        let event = host.wait_settled(id).await;
        let attempt = only_attempt(&event);
        let start = attempt["started_at_ms"].as_u64().expect("start");
        let end = start + attempt["duration_us"].as_u64().expect("duration") / 1000;
        spans.push((start, end));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "attempts overlapped: {spans:?}");
    }
}

fn only_attempt(event: &Value) -> &Value {
    let list = attempts(event);
    assert_eq!(list.len(), 1, "{event:#}");
    &list[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_runs_out_of_fuel_while_another_plugin_is_served() {
    let host = Setup::new()
        .plugin("spin", plugins::TEST_LOOP)
        .plugin("counter", plugins::TEST_COUNTER)
        .limits("spin", |s| s.fuel = Some(200_000_000))
        .start()
        .await;

    let (_, spinning) = host.post_json("test.loop", &json!({})).await;
    let served = post_and_settle(&host, "test.count").await;
    assert_eq!(served["status"], "succeeded");

    let spun = host
        .wait_settled(spinning["id"].as_str().expect("id"))
        .await;
    let attempt = only_attempt(&spun);
    assert_eq!(attempt["outcome"]["kind"], "out_of_fuel", "{attempt:#}");
    assert_eq!(attempt["fuel_consumed"], 200_000_000);
    assert_eq!(spun["status"], "dead");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_with_ample_fuel_is_stopped_at_its_deadline() {
    let host = Setup::new()
        .plugin("spin", plugins::TEST_LOOP)
        .limits("spin", |s| {
            s.fuel = Some(u64::MAX / 2);
            s.timeout_ms = Some(300);
        })
        .start()
        .await;

    let spun = post_and_settle(&host, "test.loop").await;
    let attempt = only_attempt(&spun);
    assert_eq!(attempt["outcome"]["kind"], "deadline", "{attempt:#}");
    let micros = attempt["duration_us"].as_u64().expect("duration");
    assert!(
        (300_000..5_000_000).contains(&micros),
        "stopped after {micros} µs"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_at_its_cap() {
    let host = Setup::new()
        .plugin("bomb", plugins::TEST_MEMBOMB)
        .limits("bomb", |s| s.memory_mb = Some(16))
        .start()
        .await;

    let event = post_and_settle(&host, "test.memory").await;
    let attempt = only_attempt(&event);
    assert_eq!(attempt["outcome"]["kind"], "memory", "{attempt:#}");
    let peak = attempt["peak_memory_bytes"].as_u64().expect("peak");
    assert!(peak <= 16 << 20 && peak > 8 << 20, "peak {peak}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_with_the_message_captured() {
    let host = Setup::new()
        .plugin("panics", plugins::TEST_TRAP)
        .start()
        .await;

    let event = post_and_settle(&host, "test.trap").await;
    let attempt = only_attempt(&event);
    assert_eq!(attempt["outcome"]["kind"], "trap", "{attempt:#}");
    let id = event["event"]["id"].as_str().expect("id");
    let stderr = attempt["stderr"].as_str().expect("stderr");
    assert!(
        stderr.contains(&format!("handler panicked on event {id}")),
        "{stderr}"
    );
    assert_eq!(event["status"], "dead");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failure_is_rescheduled_then_dead_lettered() {
    let host = Setup::new()
        .plugin("flaky", plugins::TEST_ALWAYS_RETRY)
        .start()
        .await;

    let event = post_and_settle(&host, "test.retry").await;
    assert_eq!(event["status"], "dead", "{event:#}");
    let list = attempts(&event);
    let numbers: Vec<u64> = list.iter().filter_map(|a| a["number"].as_u64()).collect();
    assert_eq!(numbers, [1, 2, 3], "the plugin's policy allows 3 attempts");
    for attempt in list {
        assert_eq!(
            attempt["outcome"],
            json!({ "kind": "retry", "message": "upstream unavailable" })
        );
    }
    let delivery = &event["deliveries"][0];
    assert_eq!(delivery["status"], "dead");
    assert_eq!(delivery["next_attempt_at_ms"], Value::Null);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_and_config_reach_the_attempt_record() {
    let host = Setup::new()
        .plugin("counter", plugins::TEST_COUNTER)
        .limits("counter", |s| {
            s.config.insert("label".into(), "blue".into());
        })
        .start()
        .await;

    let (_, answer) = host
        .post_json("test.count", &json!({ "print": "hello from the sandbox" }))
        .await;
    let event = host.wait_settled(answer["id"].as_str().expect("id")).await;
    let attempt = only_attempt(&event);
    assert_eq!(attempt["stdout"], "hello from the sandbox\n");
    assert_eq!(attempt["stderr"], "hello from the sandbox\n");
    assert_eq!(attempt["logs"][0]["fields"][2], json!(["label", "blue"]));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_plugin_concurrency_bound_keeps_attempts_from_overlapping() {
    let host = spin_one_at_a_time(Setup::new(), 150).await;
    let ids = post_spins(&host, 3).await;
    assert_no_overlap(&host, &ids).await;
    host.stop().await;
}

/// While a plugin's slot is taken, its next deliveries are claimed ahead
/// (shown running before their attempt starts): with one slot, three show
/// running at once, where claims only for a free slot showed at most two
/// (one running, one whose record was being written). The attempts still
/// never overlap past `max_concurrency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_claimed_ahead_of_a_free_slot() {
    let host = spin_one_at_a_time(Setup::new().configure(|c| c.workers = 2), 150).await;
    let ids = post_spins(&host, 4).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut states = Vec::new();
        for id in &ids {
            let (_, event) = host.get(&format!("/events/{id}")).await;
            let status = &event["deliveries"][0]["status"];
            states.push(status.as_str().unwrap_or("").to_owned());
        }
        if states.iter().filter(|s| *s == "running").count() >= 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline
                && states.iter().any(|s| s == "pending" || s == "running"),
            "the next deliveries were not claimed ahead: {states:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_no_overlap(&host, &ids).await;
    host.stop().await;
}

/// A delivery claimed ahead when the host stops does not start: its claim
/// is given back, and it runs after the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_claimed_ahead_does_not_start_while_the_host_stops() {
    let host = spin_one_at_a_time(Setup::new(), 2_000).await;
    let ids = post_spins(&host, 2).await;
    // Claimed ahead while the first spins to its 2 s deadline.
    host.wait_event(&ids[1], |e| e["deliveries"][0]["status"] == "running")
        .await;
    let setup = host.stop().await;
    let restarted_at = hookhost::model::now_ms();
    let host = setup.start().await;
    let first = host.wait_settled(&ids[0]).await;
    let second = host.wait_settled(&ids[1]).await;
    let started = |event: &Value| {
        only_attempt(event)["started_at_ms"]
            .as_u64()
            .expect("start")
    };
    assert!(started(&first) < restarted_at, "{first:#}");
    assert!(
        started(&second) >= restarted_at,
        "started while the host stopped: {second:#}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_environment_and_network_are_denied_and_the_denials_recorded() {
    let host = Setup::new()
        .plugin("snoop", plugins::TEST_SNOOP)
        .start()
        .await;

    let event = post_and_settle(&host, "test.snoop").await;
    let attempt = only_attempt(&event);
    let logs = attempt["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 8, "{logs:#?}");
    for line in logs {
        assert_eq!(
            line["message"], "denied",
            "the sandbox let this through: {line}"
        );
        let error = line["fields"][1][1].as_str().expect("error text");
        assert!(!error.is_empty(), "{line}");
    }
    assert!(!std::path::Path::new("/tmp/hookhost-snoop").exists());
    host.stop().await;
}
