//! The command-line clients against a real `hookhost serve`, and the
//! `hookhost new` scaffold built for wasm32-wasip2 as is.
//!
//! Longer than 600 lines on purpose: one test binary, so the host and the
//! CLI build once for every command tested against them.

mod common;

use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `hookhost <args>`, feeding `stdin`; returns its output.
fn hookhost(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(args)
        .env_remove("HOOKHOST_URL")
        .env_remove("HOOKHOST_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookhost");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("run hookhost")
}

/// Runs a client command that must succeed; returns its stdout.
fn ok(args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = hookhost(args, stdin);
    assert!(
        out.status.success(),
        "hookhost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json(args: &[&str], stdin: Option<&[u8]>) -> Value {
    let text = ok(args, stdin);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_clients_send_list_show_replay_and_redrive() {
    let built = xtask::build_plugins(&["test-counter"]).expect("build the counter plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("counter.wasm")).expect("install counter");
    let host = common::start(&data, &plugins);
    let url = host.base.clone();
    let url = url.as_str();

    let sent = ok(
        &["send", "test.count", "-", "--key", "k1", "--url", url],
        Some(b"{}"),
    );
    let id = sent
        .trim()
        .strip_prefix("stored as ")
        .expect(&sent)
        .to_owned();
    let again = ok(
        &["send", "test.count", "--key", "k1", "--url", url],
        Some(b"{}"),
    );
    assert_eq!(again.trim(), format!("already stored as {id}"));
    let body = dir.path().join("fail.json");
    std::fs::write(&body, br#"{"fail": true}"#).expect("write body");
    let failing = json(
        &[
            "send",
            "test.count",
            body.to_str().expect("path"),
            "--json",
            "--url",
            url,
        ],
        None,
    );
    let failing = failing["id"].as_str().expect("id").to_owned();

    // Both settle: one succeeds, the other is rejected into the dead letters.
    let deadline = Instant::now() + Duration::from_secs(30);
    for event in [&id, &failing] {
        loop {
            let shown = json(&["events", "show", event, "--json", "--url", url], None);
            if shown["status"] != "pending" {
                break;
            }
            assert!(Instant::now() < deadline, "{shown:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let listed = ok(&["events", "list", "--topic", "test.*", "--url", url], None);
    let header = listed.lines().next().expect("header");
    assert!(
        header.starts_with("ID") && header.contains("TOPIC"),
        "{listed}"
    );
    assert!(
        listed.contains(&id) && listed.contains(&failing),
        "{listed}"
    );
    // Time filters as people write them: both events came in within the
    // last hour and none before 2000; a time that is none is refused.
    let recent = ok(
        &[
            "events", "list", "--topic", "test.*", "--since", "1h", "--url", url,
        ],
        None,
    );
    assert!(
        recent.contains(&id) && recent.contains(&failing),
        "{recent}"
    );
    let before = json(
        &[
            "events",
            "list",
            "--json",
            "--until",
            "2000-01-01T00:00:00Z",
            "--url",
            url,
        ],
        None,
    );
    assert_eq!(
        before["events"].as_array().map(Vec::len),
        Some(0),
        "{before:#}"
    );
    let unclear = hookhost(
        &["events", "list", "--since", "yesterday", "--url", url],
        None,
    );
    let complaint = String::from_utf8_lossy(&unclear.stderr);
    assert!(
        !unclear.status.success() && complaint.contains("\"yesterday\" is not a time"),
        "{complaint}"
    );

    let shown = ok(&["events", "show", &id, "--url", url], None);
    assert!(
        shown.contains("plugin counter") && shown.contains(" ok"),
        "{shown}"
    );
    assert!(shown.contains("counted"), "logs are shown: {shown}");

    let plugins_listed = ok(&["plugins", "list", "--url", url], None);
    assert!(plugins_listed.contains("counter") && plugins_listed.contains("test.count"));

    let dead = json(&["dead-letters", "--json", "--url", url], None);
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["plugin"], "counter", "{dead:#}");
    let delivery = letter["delivery"].as_str().expect("delivery");
    let table = ok(&["dead-letters", "--url", url], None);
    assert!(
        table.contains(delivery) && table.contains("asked to fail"),
        "{table}"
    );
    let retried = ok(&["dead-letters", "retry", delivery, "--url", url], None);
    assert!(retried.contains("pending"), "{retried}");

    // An exact replay of its recorded attempt does what it did.
    let exact = ok(&["replay", "--exact", &id, "--url", url], None);
    assert!(exact.contains("exact: the replay did what"), "{exact}");
    let replayed = json(&["replay", &id, "--json", "--url", url], None);
    assert_eq!(replayed["deliveries"].as_array().map(Vec::len), Some(1));
    // `--since-ms` still works: the flag's old name, epoch milliseconds.
    let bulk = ok(
        &[
            "replay",
            "--topic",
            "test.count",
            "--since-ms",
            "0",
            "--url",
            url,
        ],
        None,
    );
    assert!(bulk.contains("events: 2"), "{bulk}");

    let exported = ok(
        &[
            "events",
            "export",
            "--topic",
            "test.count",
            "--since",
            "2h",
            "--url",
            url,
        ],
        None,
    );
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{exported}");
    assert!(lines.iter().all(|l| l["event"]["topic"] == "test.count"));

    // Errors are the API's, with a non-zero exit.
    let missing = hookhost(
        &["events", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--url", url],
        None,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    // A backup of the running host restores into a store with the same
    // events; restoring over existing data is refused.
    let file = dir.path().join("store.backup");
    let saved = ok(
        &["backup", file.to_str().expect("path"), "--url", url],
        None,
    );
    assert!(
        saved.starts_with("saved ") && saved.contains(" records"),
        "{saved}"
    );
    assert!(!dir.path().join("store.backup.partial").exists());
    let restored_dir = dir.path().join("restored");
    let restored = ok(
        &[
            "restore",
            file.to_str().expect("path"),
            "--data",
            restored_dir.to_str().expect("path"),
        ],
        None,
    );
    assert!(restored.starts_with("restored "), "{restored}");
    let refused = hookhost(
        &[
            "restore",
            file.to_str().expect("path"),
            "--data",
            data.to_str().expect("path"),
        ],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
    let copy = common::start(&restored_dir, &plugins);
    let listed = json(
        &["events", "list", "--json", "--url", copy.base.as_str()],
        None,
    );
    let ids: Vec<&str> = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&failing.as_str()),
        "{listed}"
    );
    drop(copy);

    drop(host);
    let down = hookhost(&["events", "list", "--url", url], None);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach the host"));
}

/// `hookhost new` (Rust): its own `cargo test` passes, it builds for
/// wasm32-wasip2 as is, its golden cases pass in `hookhost test`, and a
/// host serves it: the allow-listed notify call arrives at a server on
/// 127.0.0.1 with the default idempotency key, and a copy whose notify_url
/// is not allowed has the refusal recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaffolded_handler_tests_builds_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("order-total");
    ok(
        &[
            "new",
            "order-total",
            "--dir",
            crate_dir.to_str().expect("path"),
        ],
        None,
    );
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        ".gitignore",
        "cases/first-order.json",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file}");
    }
    let refused = hookhost(
        &[
            "new",
            "order-total",
            "--dir",
            crate_dir.to_str().expect("path"),
        ],
        None,
    );
    assert!(
        !refused.status.success(),
        "an existing crate is never overwritten"
    );

    // Shares a target directory with other scaffold builds, so the SDK's
    // dependencies compile once.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold");
    let own = Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo test");
    let said = String::from_utf8_lossy(&own.stdout);
    assert!(own.status.success() && said.contains("1 passed"), "{said}");
    xtask::ensure_wasm_target().expect("wasm target");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build");
    assert!(built.success(), "the scaffold builds as is");
    let wasm = target.join("wasm32-wasip2/release/order_total.wasm");
    let report = json(&["check", wasm.to_str().expect("path")], None);
    assert_eq!(
        report["manifest"]["subscriptions"][0], "shop.order.*",
        "{report:#}"
    );
    // Its golden cases pass in the sandbox, offline, as written.
    let named = crate_dir.join("order-total.wasm");
    std::fs::copy(&wasm, &named).expect("copy");
    let cases = crate_dir.join("cases");
    let passed = ok(
        &[
            "test",
            named.to_str().expect("path"),
            cases.to_str().expect("path"),
        ],
        None,
    );
    assert!(passed.contains("2 cases: 2 passed"), "{passed}");

    // Served by a host, beside a copy whose notify_url is not allowed.
    let server = hookhost::testing::RecordingServer::start()
        .await
        .expect("server");
    let remote = server.url.clone();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    for name in ["order-total", "order-total-elsewhere"] {
        std::fs::copy(&wasm, plugins.join(format!("{name}.wasm"))).expect("install");
    }
    let config = dir.path().join("hookhost.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.order-total]\nallowed_hosts = [\"{remote}\"]\nconfig = {{ notify_url = \"{remote}/hook\" }}\n\n\
             [plugins.order-total-elsewhere]\nconfig = {{ notify_url = \"https://api.example.com/totals\" }}\n\
             retry = {{ max_attempts = 1, initial_backoff_ms = 10, max_backoff_ms = 10 }}\n"
        ),
    )
    .expect("config");
    let host = common::start_configured(&dir.path().join("data"), &plugins, Some(&config), &[]);
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{}/events/shop.order.created", host.base))
        .json(&serde_json::json!({ "amount": 5 }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = answer["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let event = loop {
        let event = common::get(&host.base, &format!("/events/{id}")).await;
        let deliveries = event["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() == 2
            && deliveries
                .iter()
                .all(|d| d["status"] == "succeeded" || d["status"] == "dead")
        {
            break event;
        }
        assert!(Instant::now() < deadline, "not settled: {event:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = |plugin: &str| {
        event["deliveries"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["plugin"] == plugin))
            .cloned()
            .expect("delivery")
    };
    assert_eq!(delivery("order-total")["status"], "succeeded", "{event:#}");
    assert_eq!(
        server.received(),
        [(
            Some(format!("{id}:order-total:0")),
            serde_json::json!({ "topic": "shop.order.created", "total": 5 })
        )]
    );
    let refused = delivery("order-total-elsewhere");
    assert_eq!(refused["status"], "dead", "{event:#}");
    assert!(
        refused["attempts"][0]["http"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("allowed_hosts")),
        "{event:#}"
    );
}

/// The binary allocates with jemalloc and the options in `heap::CONF`. A
/// misspelt options symbol would be ignored without a word; the background
/// thread (off by jemalloc's default) shows the options were read.
#[cfg(target_os = "linux")]
#[test]
fn serve_runs_on_jemalloc_with_its_background_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let host = common::start(&data, &plugins);
    let tasks = format!("/proc/{}/task", host.child.id());
    let names = || -> Vec<String> {
        std::fs::read_dir(&tasks)
            .expect("read the child's threads")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim().to_owned())
            .collect()
    };
    // The host has allocated plenty by the time it serves; the loop only
    // allows for the thread still being created.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = names();
    while !seen.iter().any(|n| n == "jemalloc_bg_thd") && Instant::now() < deadline {
        std::thread::yield_now();
        seen = names();
    }
    assert!(
        seen.iter().any(|n| n == "jemalloc_bg_thd"),
        "no jemalloc background thread among {seen:?}"
    );
}

/// Behind a TLS proxy the admin API sees the public name in `Host`:
/// `HOOKHOST_ADMIN_HOSTS` (or `--admin-host`) names it, so a compose file
/// needs no configuration file of its own; other names are still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_to_the_names_given_in_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let env = [("HOOKHOST_ADMIN_HOSTS", "hooks.example.com,Ops.Example.com")];
    let host = common::start_with(&data, &plugins, &env);
    let client = reqwest::Client::new();
    let status = |name: &'static str| {
        let (client, url) = (client.clone(), format!("{}/events", host.base));
        async move {
            let answer = client.get(url).header("host", name).send().await;
            answer.expect("the host answers").status().as_u16()
        }
    };
    assert_eq!(status("hooks.example.com").await, 200);
    assert_eq!(
        status("ops.example.com").await,
        200,
        "names match in any case"
    );
    assert_eq!(status("evil.example").await, 403);
}

/// `hookhost test`: a real component (the Rust test-caller) in the real
/// sandbox, offline: declared answers, a refused host, a declared timeout;
/// no expected file fails, `--bless` writes them, a rerun passes, and a
/// changed expectation fails with a diff and exit code 1.
#[test]
fn hookhost_test_runs_cases_offline_and_compares_them_with_expected_files() {
    let built = xtask::build_plugins(&["test-caller"]).expect("build test-caller");
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = dir.path().join("caller.wasm");
    std::fs::copy(&built[0], &wasm).expect("copy");
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).expect("cases dir");
    let call = |url: &str| {
        serde_json::json!({ "topic": "test.call", "json": {
            "requests": [{ "url": url, "body": { "n": 1 } }]
        } })
    };
    let write = |name: &str, case: Value| {
        std::fs::write(cases.join(name), case.to_string()).expect("write case");
    };
    // api.example.com is never contacted: the answer is declared.
    write(
        "answered.json",
        serde_json::json!({
            "event": call("https://api.example.com/hook"),
            "http": [{ "method": "POST", "url": "https://api.example.com/hook", "status": 202,
                       "json": { "accepted": true } }],
        }),
    );
    write(
        "refused.json",
        serde_json::json!({ "event": call("https://other.example.com/hook") }),
    );
    write(
        "timeout.json",
        serde_json::json!({
            "event": call("https://api.example.com/hook"),
            "http": [{ "url": "https://api.example.com/hook", "error": "timeout" }],
        }),
    );
    let (wasm, cases_dir) = (wasm.to_str().expect("path"), cases.to_str().expect("path"));

    let first = hookhost(&["test", wasm, cases_dir], None);
    assert_eq!(first.status.code(), Some(1), "no expected files yet");
    assert!(String::from_utf8_lossy(&first.stdout).contains("run with --bless"));

    let blessed = ok(&["test", wasm, cases_dir, "--bless"], None);
    assert!(
        blessed.contains("3 cases: 3 passed or blessed, 0 failed"),
        "{blessed}"
    );
    let expected = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(cases.join(name)).expect("expected"))
            .expect("json")
    };
    let answered = expected("answered.expected.json");
    assert_eq!(answered["outcome"]["kind"], "ok", "{answered:#}");
    assert_eq!(
        answered["http"][0],
        serde_json::json!({
            "method": "POST",
            "url": "https://api.example.com/hook",
            "idempotency_key": "01J00000000000000000000000:caller:0",
            "body": { "n": 1 },
            "status": 202,
        })
    );
    let refused = expected("refused.expected.json");
    assert_eq!(refused["outcome"]["kind"], "reject", "{refused:#}");
    assert!(
        refused["http"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not in the plugin's allowed_hosts")),
        "{refused:#}"
    );
    let timeout = expected("timeout.expected.json");
    assert!(
        timeout["outcome"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("timed out")),
        "{timeout:#}"
    );

    let rerun = ok(&["test", wasm, cases_dir], None);
    assert!(
        rerun.contains("3 cases: 3 passed or blessed, 0 failed"),
        "{rerun}"
    );

    let path = cases.join("answered.expected.json");
    let changed = std::fs::read_to_string(&path)
        .expect("read")
        .replace("202", "201");
    std::fs::write(&path, changed).expect("write");
    let failed = hookhost(&["test", wasm, cases_dir], None);
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(
        out.contains("FAILED   ") && out.contains("answered.json"),
        "{out}"
    );
    assert!(
        out.contains("-      \"status\": 201,") || out.contains("-      \"status\": 201"),
        "{out}"
    );
    assert!(out.contains("+      \"status\": 202"), "{out}");
}

/// `hookhost dev` on a fresh Python folder: the first build serves; after
/// events are handled, a save that changes what the handler writes is
/// rebuilt, shadow-run on them (the difference printed) and served; a save
/// that does not build is reported and the last good version keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookhost_dev_rebuilds_on_save_shadow_runs_and_swaps_the_new_build_in() {
    use std::io::BufRead as _;
    let python = xtask::polyglot::Lang::Python { module: "app" };
    if let Err(why) = xtask::polyglot::toolchain(python) {
        assert!(
            std::env::var("HOOKHOST_REQUIRE_POLYGLOT").is_err(),
            "HOOKHOST_REQUIRE_POLYGLOT is set but {why}"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("tally");
    let folder_arg = folder.to_str().expect("path");
    ok(
        &["new", "tally", "--lang", "python", "--dir", folder_arg],
        None,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(["dev", folder_arg, "--listen", "127.0.0.1:0"])
        .env("HOOKHOST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hookhost dev");
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let seen = std::cell::RefCell::new(Vec::new());
    // The lines up to and including the first that contains `text`.
    let until = |text: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    seen.borrow_mut().push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "never printed {text:?}; printed:\n{}",
                    seen.borrow().join("\n")
                ),
            }
        }
    };
    let banner = until("hookhost dev: tally (Python) on http://");
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .trim_end_matches(',')
        .to_owned();
    let first = until("serving ");

    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let answer: Value = client
            .post(format!("{base}/events/shop.order.created"))
            .json(&serde_json::json!({ "amount": 5 }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let event = common::get(&base, &format!("/events/{id}")).await;
            if event["deliveries"][0]["status"] == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "not handled: {event:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let app = folder.join("app.py");
    let source = std::fs::read_to_string(&app).expect("read app.py");
    let doubled = source.replace(
        "kv.increment(\"total\", amount)",
        "kv.increment(\"total\", amount * 2)",
    );
    assert_ne!(doubled, source, "the template changed: update this test");
    std::fs::write(&app, doubled).expect("save");
    let shadow = until("shadow run of ");
    assert!(shadow.contains("on the last 2 events"), "{shadow}");
    let summary = until("events: ");
    assert!(summary.contains("0 same, 2 different"), "{summary}");
    let second = until("serving ");
    assert!(second.contains("after the save"), "{second}");
    assert_ne!(
        first.split_whitespace().nth(1),
        second.split_whitespace().nth(1)
    );
    let text = seen.borrow().join("\n");
    assert!(
        text.contains("kv_writes"),
        "the difference is named:\n{text}"
    );

    std::fs::write(&app, "def broken(:\n").expect("save");
    until("build failed; the previous version keeps serving");
    let plugin = common::get(&base, "/plugins/tally").await;
    let serving = second.split_whitespace().nth(1).expect("version");
    assert!(
        plugin["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(serving)),
        "{plugin:#}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
