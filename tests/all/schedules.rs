//! Schedules: cron ticks become stored events, once per tick, across
//! restarts.

use chrono::{Datelike as _, TimeZone as _, Utc};
use hookhost_tests::{Setup, TestHost, plugins};
use serde_json::Value;

/// Stored events of `topic`, oldest first.
async fn events_of(host: &TestHost, topic: &str) -> Vec<Value> {
    let (_, list) = host.get(&format!("/events?topic={topic}&limit=100")).await;
    let mut events = list["events"].as_array().expect("events").clone();
    events.reverse();
    events
}

async fn ticks_of(host: &TestHost, topic: &str) -> Vec<u64> {
    let mut ticks = Vec::new();
    for event in events_of(host, topic).await {
        let (_, full) = host
            .get(&format!("/events/{}", event["id"].as_str().expect("id")))
            .await;
        ticks.push(full["event"]["body"]["tick_ms"].as_u64().expect("tick_ms"));
    }
    ticks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_at_its_ticks_and_is_handled() {
    let host = Setup::new()
        .plugin("clock", plugins::TEST_CLOCK)
        .start()
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let events = events_of(&host, "schedule.every-second").await;
        if events.len() >= 2 {
            break events;
        }
        assert!(std::time::Instant::now() < deadline, "no two ticks in 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let ticks = ticks_of(&host, "schedule.every-second").await;
    assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
    assert!(
        ticks.iter().all(|t| t % 1000 == 0),
        "on whole seconds: {ticks:?}"
    );
    let first = host
        .wait_settled(events[0]["id"].as_str().expect("id"))
        .await;
    assert_eq!(first["status"], "succeeded", "{first:#}");
    assert_eq!(first["deliveries"][0]["plugin"], "clock");
    assert!(
        first["event"]["received_at_ms"].as_u64().expect("received") >= ticks[0],
        "not before its tick"
    );
    let (_, plugin) = host.get("/plugins/clock").await;
    let schedules = plugin["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 2, "{plugin:#}");
    assert!(schedules[0]["next_at_ms"].as_u64().is_some());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_while_down_fire_once_and_never_again() {
    let setup = Setup::new().plugin("clock", plugins::TEST_CLOCK);
    // The host last fired `new-year` two years ago.
    let two_years_ago = hookhost::model::now_ms() - 2 * 366 * 24 * 3600 * 1000;
    let store = hookhost::store::Store::open(setup.data_dir()).expect("store");
    store
        .schedule_start("clock", "new-year", two_years_ago)
        .await
        .expect("preset");
    store.close().await.expect("close");
    drop(store);

    let host = setup.start().await;
    let wait_for_one = || async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let events = events_of(&host, "schedule.new-year").await;
            if !events.is_empty() {
                return events;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the missed tick never fired"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    wait_for_one().await;
    let now = Utc::now();
    let expected = Utc
        .with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0)
        .single()
        .expect("new year")
        .timestamp_millis() as u64;
    assert_eq!(
        ticks_of(&host, "schedule.new-year").await,
        [expected],
        "two missed new years fire once, as the latest"
    );
    // The every-second schedule is seen for the first time: it starts now,
    // and keeps firing; after a restart, new-year stays fired.
    let host = host.stop().await.start().await;
    let before = events_of(&host, "schedule.every-second").await.len();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while events_of(&host, "schedule.every-second").await.len() <= before + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ticks_of(&host, "schedule.new-year").await, [expected]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_can_change_or_turn_off_a_schedule() {
    let host = Setup::new()
        .plugin("clock", plugins::TEST_CLOCK)
        .limits("clock", |s| {
            s.schedules.insert("every-second".into(), "off".into());
            s.schedules.insert("new-year".into(), "0 0 12 * * *".into());
        })
        .start()
        .await;
    let (_, plugin) = host.get("/plugins/clock").await;
    let schedules = plugin["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 1, "{plugin:#}");
    assert_eq!(schedules[0]["name"], "new-year");
    assert_eq!(schedules[0]["cron"], "0 0 12 * * *");
    assert_eq!(schedules[0]["from"], "config");
    let next = schedules[0]["next_at_ms"].as_u64().expect("next");
    assert_eq!(next % (24 * 3600 * 1000), 12 * 3600 * 1000, "noon UTC");
    host.stop().await;

    let mut bad = Setup::new().config;
    bad.plugins
        .entry("clock".into())
        .or_default()
        .schedules
        .insert("x".into(), "every tuesday".into());
    let error = bad.validate().expect_err("a bad cron is refused");
    assert!(error.to_string().contains("every tuesday"), "{error}");
}
