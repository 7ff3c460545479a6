//! What the binary's tests share: starting `hookhost serve` as a child.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Running {
    pub child: Child,
    pub base: String,
}

/// Starts `hookhost serve` on a free loopback port and waits until it serves.
pub fn start(data: &Path, plugins: &Path) -> Running {
    start_with(data, plugins, &[])
}

/// [`start`], with more environment for the child.
pub fn start_with(data: &Path, plugins: &Path, env: &[(&str, &str)]) -> Running {
    start_configured(data, plugins, None, env)
}

/// [`start_with`], reading a configuration file too.
pub fn start_configured(
    data: &Path,
    plugins: &Path,
    config: Option<&Path>,
    env: &[(&str, &str)],
) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookhost"));
    if let Some(config) = config {
        command.env("HOOKHOST_CONFIG", config);
    }
    let mut child = command
        .envs(env.iter().copied())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--plugins")
        .arg(plugins)
        .env("HOOKHOST_LOG", "info")
        .env("HOOKHOST_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookhost");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        assert!(Instant::now() < deadline, "hookhost did not start");
        let line = lines
            .next()
            .expect("hookhost exited before listening")
            .expect("read log");
        let Ok(log) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if log["fields"]["message"] == "hookhost listening" {
            break log["fields"]["addr"].as_str().expect("addr").to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    // With HOOKHOST_TEST_LOG_DIR set, each child's log is kept there.
    let keep = std::env::var_os("HOOKHOST_TEST_LOG_DIR")
        .map(|dir| std::path::PathBuf::from(dir).join(format!("{}.log", child.id())));
    std::thread::spawn(move || {
        use std::io::Write as _;
        let mut file = keep.and_then(|path| std::fs::File::create(path).ok());
        for line in lines.map_while(Result::ok) {
            if let Some(file) = &mut file {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    Running {
        child,
        base: format!("http://{addr}"),
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET base+path`, as JSON.
pub async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// Every event whose topic matches `topic`, paging through the API.
pub async fn all_events(base: &str, topic: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(
            base,
            &format!("/events?topic={topic}&limit=1000&cursor={cursor}"),
        )
        .await;
        events.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return events,
        }
    }
}

/// Serves `app` on a free 127.0.0.1 port: its base URL (`http://127.0.0.1:N`)
/// and the server's task, to abort when the test is done with it.
pub async fn serve_local(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, server)
}

/// Builds the test plugin crate `krate` and installs it in `plugins` (made
/// if missing) as `name.wasm`.
pub fn install_test_plugin(plugins: &Path, krate: &str, name: &str) {
    let built = xtask::build_plugins(&[krate]).unwrap_or_else(|e| panic!("build {krate}: {e}"));
    std::fs::create_dir_all(plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join(format!("{name}.wasm"))).expect("install plugin");
}
