//! Test support: a [`TestHost`] that runs the real host in-process on
//! 127.0.0.1:0 with sled in a temporary directory and real compiled plugins.

use hookhost::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Paths of the compiled test and example plugins.
pub mod plugins {
    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
}

/// How long a test waits for the host to reach a state before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// The real host, running in this process.
pub struct TestHost {
    pub addr: SocketAddr,
    pub config: Config,
    ready_wait: Duration,
    dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    client: reqwest::Client,
}

/// A host about to start: a temp dir with `data/` and `plugins/`.
pub struct Setup {
    dir: TempDir,
    pub config: Config,
    /// How long `start` waits for the host to serve (plugins load first).
    ready_wait: Duration,
    /// Whether `start` also waits for plugins loading in the background.
    wait_for_plugins: bool,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: dir.path().join("data"),
            plugins_dir: dir.path().join("plugins"),
            workers: 8,
            ..Config::default()
        };
        std::fs::create_dir_all(&config.plugins_dir).expect("plugins dir");
        Self {
            dir,
            config,
            ready_wait: WAIT,
            wait_for_plugins: true,
        }
    }

    /// `start` returns as soon as the host serves, while plugins it knew
    /// before may still be loading in the background.
    pub fn ready_when_serving(mut self) -> Self {
        self.wait_for_plugins = false;
        self
    }

    /// Waits up to `wait` for the host to start: large guests compile for
    /// a while before it serves.
    pub fn ready_within(mut self, wait: Duration) -> Self {
        self.ready_wait = wait;
        self
    }

    /// Installs the component at `component` as `plugins/<name>.wasm`.
    pub fn plugin(self, name: &str, component: &str) -> Self {
        std::fs::copy(component, self.plugin_path(name)).expect("copy plugin");
        self
    }

    /// Writes raw bytes as `plugins/<name>.wasm`.
    pub fn plugin_bytes(self, name: &str, bytes: &[u8]) -> Self {
        std::fs::write(self.plugin_path(name), bytes).expect("write plugin");
        self
    }

    /// Sets `[plugins.<plugin>]` limits before start.
    pub fn limits(
        self,
        plugin: &str,
        change: impl FnOnce(&mut hookhost::config::PluginSettings),
    ) -> Self {
        self.configure(|c| change(c.plugins.entry(plugin.to_owned()).or_default()))
    }

    /// Changes the configuration before start.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    pub fn plugin_path(&self, name: &str) -> PathBuf {
        self.config.plugins_dir.join(format!("{name}.wasm"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data
    }

    pub async fn start(self) -> TestHost {
        let listener = tokio::net::TcpListener::bind(self.config.listen)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.config.clone();
        let task = tokio::spawn(hookhost::run(config, listener, async {
            let _ = stopped.await;
        }));
        let wait_for_plugins = self.wait_for_plugins;
        let host = TestHost {
            addr,
            config: self.config,
            ready_wait: self.ready_wait,
            dir: self.dir,
            stop: Some(stop),
            task: Some(task),
            client: reqwest::Client::new(),
        };
        host.wait_ready().await;
        if wait_for_plugins {
            host.wait_loaded().await;
        }
        host
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until no plugin is still loading in the background.
    pub async fn wait_loaded(&self) {
        let deadline = tokio::time::Instant::now() + self.ready_wait;
        let token = self
            .config
            .admin_token_env
            .as_ref()
            .and_then(|var| std::env::var(var).ok());
        loop {
            let mut request = self.client.get(self.url("/plugins"));
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let plugins: Value = match request.send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if plugins["loading"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "plugins did not finish loading: {plugins}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + self.ready_wait;
        loop {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "host did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Uploads `bytes` as a candidate version of plugin `name`; returns the
    /// status and the JSON answer.
    pub async fn upload_candidate(&self, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(&format!("/plugins/{name}/candidates")))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts a JSON event; returns the status and the JSON answer.
    pub async fn post_json(&self, topic: &str, body: &Value) -> (u16, Value) {
        self.post(
            topic,
            serde_json::to_vec(body).expect("json"),
            &[("content-type", "application/json")],
        )
        .await
    }

    /// Posts raw bytes with headers; returns the status and the JSON answer.
    pub async fn post(&self, topic: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url(&format!("/events/{topic}")))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    /// GETs a path and returns the status and JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("get");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `GET /events/{id}` until `done` holds for it, or fails after [`WAIT`].
    pub async fn wait_event(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_event_within(id, WAIT, done).await
    }

    /// [`TestHost::wait_event`], failing after `wait` instead.
    pub async fn wait_event_within(
        &self,
        id: &str,
        wait: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (status, event) = self.get(&format!("/events/{id}")).await;
            if status == 200 && done(&event) {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event {id} did not reach the expected state; last seen: {event:#}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls `GET /plugins/{name}` until `done` holds for it, or fails after [`WAIT`].
    pub async fn wait_plugin(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (_, plugin) = self.get(&format!("/plugins/{name}")).await;
            if done(&plugin) {
                return plugin;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "plugin {name} did not reach the expected state; last seen: {plugin:#}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until plugin `name` serves version `sha256`.
    pub async fn wait_version(&self, name: &str, sha256: &str) -> Value {
        self.wait_plugin(name, |p| p["loaded"] == true && p["version"] == sha256)
            .await
    }

    /// The path of `plugins/<name>.wasm`.
    pub fn plugin_path(&self, name: &str) -> PathBuf {
        self.config.plugins_dir.join(format!("{name}.wasm"))
    }

    /// Replaces `plugins/<name>.wasm` the careful way: a temp file renamed
    /// into place.
    pub fn install_renamed(&self, name: &str, bytes: &[u8]) {
        let tmp = self.config.plugins_dir.join(format!(".{name}.wasm.tmp"));
        std::fs::write(&tmp, bytes).expect("write temp plugin");
        std::fs::rename(&tmp, self.plugin_path(name)).expect("rename plugin into place");
    }

    /// Overwrites `plugins/<name>.wasm` in place, the careless way.
    pub fn install_in_place(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.plugin_path(name), bytes).expect("overwrite plugin");
    }

    /// The contract version `GET /plugins` says plugin `name` targets.
    pub async fn contract(&self, name: &str) -> Option<Value> {
        let (_, listed) = self.get("/plugins").await;
        listed["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["contract"].clone())
    }

    /// Waits until the event's status is final (`succeeded` or `dead`).
    pub async fn wait_settled(&self, id: &str) -> Value {
        self.wait_event(id, |e| e["status"] == "succeeded" || e["status"] == "dead")
            .await
    }

    /// Stops the host cleanly and returns its setup, ready to start again.
    pub async fn stop(mut self) -> Setup {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("host task panicked")
                .expect("host failed");
        }
        let mut config = self.config.clone();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        Setup {
            dir: self.dir,
            config,
            ready_wait: self.ready_wait,
            wait_for_plugins: true,
        }
    }
}

/// A host with the spinning plugin, one attempt at a time, each stopped at
/// its deadline of `timeout_ms`.
pub async fn spin_one_at_a_time(setup: Setup, timeout_ms: u64) -> TestHost {
    setup
        .plugin("spin", plugins::TEST_LOOP)
        .limits("spin", |s| {
            s.fuel = Some(u64::MAX / 2);
            s.timeout_ms = Some(timeout_ms);
            s.max_concurrency = Some(1);
        })
        .start()
        .await
}

/// Posts `n` events to the spinning plugin; their ids.
pub async fn post_spins(host: &TestHost, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (status, answer) = host.post_json("test.loop", &serde_json::json!({})).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    ids
}

/// The attempts of the first delivery of an event JSON from `GET /events/{id}`.
pub fn attempts(event: &Value) -> &Vec<Value> {
    delivery(event, 0)["attempts"]
        .as_array()
        .expect("attempts list")
}

/// Delivery `n` of an event JSON.
pub fn delivery(event: &Value, n: usize) -> &Value {
    &event["deliveries"][n]
}

/// The delivery of an event JSON to `plugin`.
pub fn delivery_to<'a>(event: &'a Value, plugin: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["plugin"] == plugin))
        .unwrap_or_else(|| panic!("no delivery to {plugin} in {event:#}"))
}

/// sha256 of a file, hex: a plugin's version id.
pub fn sha256_of(path: &str) -> String {
    sha256_hex(&std::fs::read(path).expect("read plugin"))
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let mut hex = String::new();
    for b in sha2::Sha256::digest(bytes) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

pub use xtask::variant;

/// `tests/data/<path>`.
pub fn data_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(path)
}

/// A real GitHub webhook payload, e.g. `push/payload.json`.
pub fn github_fixture(name: &str) -> Vec<u8> {
    let path = data_path("github-webhooks").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
