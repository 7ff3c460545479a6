//! What the benchmark binaries share: the body, the HTTP load driver, and
//! readings of percentiles, RSS and Prometheus text.

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A JSON body of `size` bytes, shaped like a small payment event.
pub fn body(size: usize) -> Vec<u8> {
    let mut body = br#"{"amount": 1250, "currency": "eur", "note": ""#.to_vec();
    while body.len() + 2 < size {
        body.push(b'x');
    }
    body.extend_from_slice(b"\"}");
    body
}

/// Prints `figures: ` and `value` as one line of JSON: what the scoreboard
/// (`--bin targets`) reads from a benchmark's output, beside the prose lines
/// people read.
#[allow(clippy::print_stdout)]
pub fn figures(value: Value) {
    println!("figures: {value}");
}

/// `cargo`, for a build started by a benchmark that `cargo run` started.
///
/// `cargo run` gives its program the package's `CARGO_PKG_*`,
/// `CARGO_MANIFEST_*` and the like. A build script that asks to rerun when
/// one of them changes (`ring`'s does) would see them changed in a build
/// started from here, and everything after it would be compiled again, for
/// minutes, in every run; so they are removed.
pub fn cargo_command() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || matches!(
                key,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// One load phase's shape.
#[derive(Debug, Clone)]
pub struct Load {
    /// Length of the phase.
    pub seconds: u64,
    /// Concurrent connections (one request in flight each).
    pub connections: usize,
    /// Requests at most.
    pub max_events: u64,
    /// Requests per second in all; 0 = as fast as the connections go.
    pub rate: u64,
    /// Body size in bytes.
    pub body_bytes: usize,
}

impl Load {
    /// One line: duration, connections, body size and rate.
    pub fn describe(&self) -> String {
        let rate = if self.rate == 0 {
            "unbounded".to_owned()
        } else {
            format!("{}/s", self.rate)
        };
        format!(
            "{} s, {} connections, {} B bodies, rate {rate}",
            self.seconds, self.connections, self.body_bytes
        )
    }
}

/// What a load phase sustained.
pub struct Driven {
    pub acked: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Ids the host answered, for the latency sample.
    pub ids: Vec<String>,
    /// Request → answer time of each acknowledged request, in µs, sorted.
    pub ack_us: Vec<u64>,
    /// What the first few failed requests got (status or error).
    pub failures: Vec<String>,
}

impl Driven {
    pub fn per_second(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64()
    }
}

/// POSTs `body` to `url` from `connections` tasks until time or count runs out.
pub async fn drive(url: &str, args: &Load, keep_ids: bool) -> Driven {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .expect("client");
    let body = body(args.body_bytes);
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let per_task_gap = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.connections as f64 / args.rate as f64));
    let mut tasks = tokio::task::JoinSet::new();
    let args_connections = args.connections;
    for task in 0..args.connections {
        let (client, url, body, sent) =
            (client.clone(), url.to_owned(), body.clone(), sent.clone());
        let (max, keep) = (args.max_events, keep_ids && task % 2 == 0);
        tasks.spawn(async move {
            let (mut acked, mut failed, mut ids, mut ack_us, mut failures) =
                (0u64, 0u64, Vec::new(), Vec::new(), Vec::new());
            // Staggered starts: paced tasks sending in step would turn a
            // steady rate into bursts of `connections` requests.
            let mut next = started
                + per_task_gap.map_or(Duration::ZERO, |gap| {
                    gap.mul_f64(task as f64 / args_connections as f64)
                });
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
                if let Some(gap) = per_task_gap {
                    tokio::time::sleep_until(next.into()).await;
                    next += gap;
                }
                let sent_at = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        acked += 1;
                        ack_us.push(sent_at.elapsed().as_micros() as u64);
                        if keep
                            && ids.len() < 10_000
                            && let Ok(v) = r.json::<Value>().await
                            && let Some(id) = v["id"].as_str()
                        {
                            ids.push(id.to_owned());
                        }
                    }
                    other => {
                        failed += 1;
                        if failures.len() < 3 {
                            failures.push(match other {
                                Ok(r) => format!("HTTP {}", r.status()),
                                Err(e) => e.to_string(),
                            });
                        }
                    }
                }
            }
            (acked, failed, ids, ack_us, failures)
        });
    }
    let mut driven = Driven {
        acked: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        ids: Vec::new(),
        ack_us: Vec::new(),
        failures: Vec::new(),
    };
    while let Some(done) = tasks.join_next().await {
        let (acked, failed, ids, ack_us, failures) = done.expect("load task");
        driven.failures.extend(failures);
        driven.acked += acked;
        driven.failed += failed;
        driven.ids.extend(ids);
        driven.ack_us.extend(ack_us);
    }
    driven.elapsed = started.elapsed();
    driven.ack_us.sort_unstable();
    driven
}

/// The value at fraction `p` of `sorted` (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// This process's peak resident memory so far, in MB.
pub fn vm_hwm_mb() -> f64 {
    proc_self_field("status", "VmHWM:") / 1024.0
}

/// Bytes this process has caused to be written to storage so far
/// (`write_bytes` of `/proc/self/io`: the kernel counts whole pages, so a
/// small write followed by a sync counts as a page).
pub fn written_bytes() -> f64 {
    proc_self_field("io", "write_bytes:")
}

/// The CPU a process used between two [`cpu_seconds`] readings over
/// `wall` seconds, as a share of all the machine's cores (1.0: every core
/// busy throughout).
pub fn cpu_share(cpu_before: f64, cpu_after: f64, wall: f64) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (cpu_after - cpu_before) / wall.max(f64::MIN_POSITIVE) / cores
}

/// The number after `label` in `/proc/self/<file>` (0 when absent).
fn proc_self_field(file: &str, label: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/self/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// The sum of the Prometheus samples of `name` whose line contains `label`.
pub fn metric(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: the sum of no floats is -0.0, printed as "-0".
        .fold(0.0, |total, value| total + value)
}

/// Ingest → attempt-recorded latency, in ms and sorted, of up to `sample`
/// of the events `ids` (spread evenly), read back from the host at `base`.
pub async fn recorded_latencies(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
    sample: usize,
) -> Result<Vec<u64>, reqwest::Error> {
    let mut latencies_ms = Vec::new();
    let step = (ids.len() / sample.max(1)).max(1);
    for id in ids.iter().step_by(step).take(sample) {
        let event: Value = client
            .get(format!("{base}/events/{id}"))
            .send()
            .await?
            .json()
            .await?;
        let received = event["event"]["received_at_ms"].as_u64().unwrap_or(0);
        if let Some(a) = event["deliveries"][0]["attempts"]
            .as_array()
            .and_then(|a| a.last())
        {
            let recorded = a["started_at_ms"].as_u64().unwrap_or(0)
                + a["duration_us"].as_u64().unwrap_or(0) / 1000;
            latencies_ms.push(recorded.saturating_sub(received));
        }
    }
    latencies_ms.sort_unstable();
    Ok(latencies_ms)
}

/// Peak and current resident memory, in MB, of process `pid` and every
/// process under it (a runtime's helper processes count as its own).
pub fn tree_rss_mb(pid: u32) -> (f64, f64) {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(child) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let ppid =
                    stat_fields(&child.to_string()).and_then(|f| f.get(1)?.parse::<u32>().ok());
                if ppid == Some(parent) && !pids.contains(&child) {
                    pids.push(child);
                }
            }
        }
        i += 1;
    }
    let kb = |pid: u32, field: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let peak: f64 = pids.iter().map(|&p| kb(p, "VmHWM:")).sum();
    let now: f64 = pids.iter().map(|&p| kb(p, "VmRSS:")).sum();
    (peak / 1024.0, now / 1024.0)
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces): the process's state is the first.
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks per second, the unit of `/proc`'s CPU times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user + system, in seconds) that process `pid` has used.
pub fn cpu_seconds(pid: &str) -> f64 {
    stat_fields(pid)
        .and_then(|f| Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?))
        .map_or(0.0, |ticks| ticks / clock_ticks())
}

/// CPU time (seconds) used by every process whose command name is `comm`
/// (`postgres`: the server and all its backends).
pub fn cpu_seconds_of(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|pid| pid.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

/// A child process killed (with its process group) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        // The tool's helpers (n8n's task runner) share its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` in its own process group, its output to `log`.
pub fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Running> {
    use std::os::unix::process::CommandExt as _;
    let out = std::fs::File::create(log)?;
    cmd.stdout(out.try_clone()?)
        .stderr(out)
        .stdin(Stdio::null())
        .process_group(0);
    Ok(Running(
        cmd.spawn().with_context(|| format!("starting {cmd:?}"))?,
    ))
}

/// A port free on 127.0.0.1 now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `ready` until it holds, the process exits, or time runs out.
pub async fn wait_ready<F, Fut>(
    what: &str,
    child: &mut Running,
    log: &Path,
    limit: Duration,
    ready: F,
) -> anyhow::Result<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if ready().await {
            return Ok(started.elapsed());
        }
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "{what} exited ({status}) before it was ready; its log, {}:\n{}",
                log.display(),
                tail(log)
            );
        }
        ensure!(
            started.elapsed() < limit,
            "{what} was not ready within {limit:?}; its log, {}:\n{}",
            log.display(),
            tail(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last lines of `log`.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The release `hookhost serve` as a child process on 127.0.0.1, in `work`,
/// with the given plugin packages installed under the given names.
pub struct Host {
    pub process: Running,
    pub base: String,
    pub client: reqwest::Client,
    pub started_in: Duration,
    pub log: std::path::PathBuf,
}

impl Host {
    /// Builds the host (release) and the plugins, writes `config` as
    /// `hookhost.toml`, starts the host, and waits until every plugin serves.
    pub async fn start(
        work: &Path,
        plugins: &[(&str, &str)],
        config: &str,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_with_env(work, plugins, config, limit, &[]).await
    }

    /// [`Host::start`] with more environment for the host.
    pub async fn start_with_env(
        work: &Path,
        plugins: &[(&str, &str)],
        config: &str,
        limit: Duration,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let root = xtask::workspace_root();
        let status = cargo_command()
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                "hookhost",
                "--bin",
                "hookhost",
            ])
            .status()?;
        ensure!(status.success(), "building the host failed");
        let packages: Vec<&str> = plugins.iter().map(|(p, _)| *p).collect();
        let built = if packages.is_empty() {
            Vec::new()
        } else {
            xtask::build_plugins(&packages).map_err(anyhow::Error::msg)?
        };
        std::fs::create_dir_all(work.join("plugins"))?;
        for (component, (_, name)) in built.iter().zip(plugins) {
            std::fs::copy(component, work.join("plugins").join(format!("{name}.wasm")))?;
        }
        std::fs::write(work.join("hookhost.toml"), config)?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(root.join("target/release/hookhost"));
        cmd.current_dir(work)
            .envs(env.iter().copied())
            .args(["serve", "--config", "hookhost.toml", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--data", "data", "--plugins", "plugins"]);
        let log = work.join("hookhost.log");
        let mut process = spawn(cmd, &log)?;
        let client = reqwest::Client::new();
        let names: Vec<String> = plugins.iter().map(|(_, n)| (*n).to_owned()).collect();
        let started_in = wait_ready("hookhost", &mut process, &log, limit, || {
            let probe = client.get(format!("{base}/plugins")).send();
            let names = names.clone();
            async move {
                let Ok(answer) = probe.await else {
                    return false;
                };
                let Ok(listing) = answer.json::<Value>().await else {
                    return false;
                };
                let text = listing.to_string();
                names
                    .iter()
                    .all(|n| text.contains(&format!("\"name\":\"{n}\"")))
                    && listing["loading"].as_array().is_none_or(|l| l.is_empty())
            }
        })
        .await?;
        Ok(Self {
            process,
            base,
            client,
            started_in,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }

    /// Scrapes `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .context("scrape")?
            .text()
            .await?)
    }
}

/// A host core without a server: its store in `data/store`, its artifact
/// cache in `data/artifacts`, its plugins directory `plugins`.
pub async fn core(data: &Path, plugins: &Path) -> anyhow::Result<Arc<hookhost::core::Core>> {
    let config = hookhost::Config {
        data: data.to_owned(),
        plugins_dir: plugins.to_owned(),
        ..hookhost::Config::default()
    };
    let store = hookhost::store::Store::open(&data.join("store"))?;
    let runtime = hookhost::runtime::Runtime::new(
        config.workers,
        config.max_memory_bytes(),
        Some(&data.join("artifacts")),
    )?;
    Ok(Arc::new(hookhost::core::Core::new(
        config,
        store,
        runtime,
        Default::default(),
        Default::default(),
        Default::default(),
    )))
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn a_metric_sums_its_matching_lines_and_is_a_plain_zero_when_none_match() {
        let text = "hookhost_attempts_total{plugin=\"noop\",outcome=\"ok\"} 3\n\
                    hookhost_attempts_total{plugin=\"noop\",outcome=\"trap\"} 2\n\
                    hookhost_attempts_total{plugin=\"other\",outcome=\"ok\"} 7\n";
        assert_eq!(
            metric(text, "hookhost_attempts_total", "plugin=\"noop\""),
            5.0
        );
        let none = metric(text, "hookhost_queue_depth", "");
        assert_eq!(format!("{none:.0}"), "0");
    }
}
