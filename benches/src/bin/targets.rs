//! `cargo run --release -p hookhost-bench --bin targets -- [--quick]`
//!
//! The scoreboard: every performance target of `docs/performance.md` in one
//! run, each beside the limit it is compared with, measured in the same run
//! with the same load, and one table at the end: figure, limit, ratio,
//! target, met or not.
//!
//! - **Durable acks** under `wrk -t2` (1 KB JSON) at 64 and 512
//!   connections: the host (the release binary, its own process) against a
//!   plain axum route answering 202, alternated. `wrk` is an external load
//!   generator, so it does not cap the ceiling the way an in-process client
//!   sharing the cores does; it is installed with `apt-get` when missing.
//! - **Per-attempt overhead**: `cargo bench -p hookhost --bench attempt`,
//!   criterion's estimates of the host's attempt and of raw wasmtime
//!   instantiate + call.
//! - **Ingest → recorded p99 at 1 000 events/s**, beside plain axum's ack
//!   p99 at the same rate (`--bin load`).
//! - **Handled events at 10 000/s offered**, beside raw sled group commit
//!   (`--bin load`, 60 s; 5 s with `--quick`).
//! - **Python and JavaScript attempts, p50**, beside a Rust attempt
//!   (`--bin guests`).
//! - **PostgreSQL, one host**, beside sled with the same load
//!   (`--bin cluster --hosts 1`), where a PostgreSQL server answers at
//!   `$HOOKHOST_TEST_POSTGRES` (see `.ci/postgres`), and one hot kv key
//!   shared by three hosts beside one host alone on it (`--bin hotkey`).
//! - **Idle RSS with ten plugins** (`--bin soak --minutes 0`).
//!
//! The growth of RSS over a 10-minute soak is not run here (it takes ten
//! minutes by definition): `--bin soak`.
//!
//! The table is printed as Markdown, ready for `docs/performance.md`.
//! Under 10 minutes on a 2-core machine once built; `--quick` (every phase
//! shorter) under 2 minutes: a check that everything runs, not figures to
//! quote. The first run builds the benchmarks and the plugins first.
//!
//! Longer than 600 lines on purpose: every target's phase and its reading
//! of the figures sit beside the table they feed, so a target's definition
//! (what is measured, against which limit, met when) is read in one place.

#![allow(clippy::print_stdout)]

use anyhow::{Context as _, ensure};
use clap::Parser;
use hookhost_bench::{Host, body, cargo_command};
use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Shorter phases: a check in under 2 minutes, not a measurement to quote.
    #[arg(long)]
    quick: bool,
}

/// One line of the table.
struct Row {
    target: String,
    figure: String,
    limit: String,
    ratio: String,
    met: Met,
}

enum Met {
    Yes,
    No(String),
    NotRun(String),
}

impl Met {
    fn when(ok: bool, otherwise: impl Into<String>) -> Self {
        if ok {
            Met::Yes
        } else {
            Met::No(otherwise.into())
        }
    }

    fn cell(&self) -> String {
        match self {
            Met::Yes => "yes".into(),
            Met::No(why) => format!("**no**: {why}"),
            Met::NotRun(why) => format!("not run: {why}"),
        }
    }
}

fn not_run(target: &str, why: impl Into<String>) -> Row {
    Row {
        target: target.into(),
        figure: "—".into(),
        limit: "—".into(),
        ratio: "—".into(),
        met: Met::NotRun(why.into()),
    }
}

/// `12 345` for 12345.4.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// Runs `cmd`, echoing its output indented, and returns the JSON of every
/// `figures: ` line it printed.
fn figures_of(what: &str, mut cmd: Command) -> anyhow::Result<Vec<Value>> {
    println!("\n## {what}\n");
    settle();
    let started = Instant::now();
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(xtask::workspace_root());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut found = Vec::new();
    for line in BufReader::new(child.stdout.take().context("stdout")?).lines() {
        let line = line?;
        match line.strip_prefix("figures: ") {
            Some(json) => found.push(serde_json::from_str(json)?),
            None => println!("    {line}"),
        }
    }
    let status = child.wait()?;
    ensure!(status.success(), "{what}: {cmd:?} failed: {status}");
    println!("    ({:.0} s)", started.elapsed().as_secs_f64());
    Ok(found)
}

/// Waits until the page cache's dirty pages are on disk (`sync`). The build
/// and every load phase leave hundreds of megabytes for the kernel to write
/// back; while it does, a Python attempt's p50 rose from 0.43 to 0.65 ms
/// and its p99 to 3 ms on a 2-core machine. Each phase starts after it.
fn settle() {
    let _ = Command::new("sync").status();
}

/// One of this crate's other benchmarks, built beside this binary.
fn sibling(name: &str) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    Command::new(exe.with_file_name(name))
}

fn number(v: &Value, key: &str) -> anyhow::Result<f64> {
    v[key].as_f64().with_context(|| format!("no {key} in {v}"))
}

/// `wrk` on the PATH, installed with `apt-get` when missing and allowed.
fn wrk() -> anyhow::Result<PathBuf> {
    let found = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("wrk"))
                .find(|p| p.is_file())
        })
    };
    if let Some(path) = found() {
        return Ok(path);
    }
    println!("wrk is missing: installing it with apt-get");
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install(&["install", "-y", "-q", "wrk"]) {
        install(&["update", "-q"]);
        install(&["install", "-y", "-q", "wrk"]);
    }
    found().context("wrk is not installed and apt-get could not install it: install wrk")
}

/// What one `wrk` run sustained: 2xx answers per second.
struct Wrk {
    ok_per_second: f64,
    non_2xx: u64,
    errors: u64,
}

/// `wrk -t2 -c<connections> -d<seconds>s` POSTing `script`'s body to `url`.
fn run_wrk(
    wrk: &Path,
    script: &Path,
    url: &str,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Wrk> {
    let out = Command::new(wrk)
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "wrk failed: {text}");
    // "  123456 requests in 10.00s, 12.34MB read"
    let (requests, took) = text
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(" requests in ")?;
            let secs = rest.split_once('s')?.0;
            Some((n.parse::<f64>().ok()?, secs.parse::<f64>().ok()?))
        })
        .with_context(|| format!("no request count in wrk's output: {text}"))?;
    let count_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let non_2xx = count_after("Non-2xx or 3xx responses:");
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
    Ok(Wrk {
        ok_per_second: (requests - non_2xx as f64).max(0.0) / took,
        non_2xx,
        errors,
    })
}

/// A plain axum route answering 202 on 127.0.0.1, on a runtime of its own:
/// the HTTP ceiling.
fn plain_axum() -> anyhow::Result<(tokio::runtime::Runtime, String)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}/events/bench.noop", listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("axum")
        .enable_all()
        .build()?;
    let app = axum::Router::new().route(
        "/events/{topic}",
        axum::routing::post(|_body: axum::body::Bytes| async { axum::http::StatusCode::ACCEPTED }),
    );
    runtime
        .spawn(async move { axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await });
    Ok((runtime, url))
}

/// Durable acks against plain axum under `wrk`, at 64 and 512 connections,
/// alternated `rounds` times; each side's mean.
async fn acks(args: &Args) -> anyhow::Result<Vec<Row>> {
    let wrk = wrk()?;
    let work = tempfile::tempdir()?;
    let script = work.path().join("post.lua");
    let json = String::from_utf8(body(1024))?;
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [[{json}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )?;
    let host_dir = work.path().join("host");
    std::fs::create_dir_all(&host_dir)?;
    // No plugin subscribes: this is ingest alone, every event synced to disk
    // before its answer.
    let host = Host::start(&host_dir, &[], "", Duration::from_secs(120)).await?;
    let host_url = format!("{}/events/nobody.listens", host.base);
    let (axum_runtime, axum_url) = plain_axum()?;
    settle();
    let (seconds, rounds) = if args.quick { (3, 1) } else { (10, 2) };
    println!(
        "\n## durable acks: wrk -t2, 1 KB JSON, {seconds} s per run, {rounds} alternated runs each\n"
    );
    let mut rows = Vec::new();
    for connections in [64, 512] {
        let (mut axum_sum, mut host_sum) = (0.0, 0.0);
        for _ in 0..rounds {
            let a = run_wrk(&wrk, &script, &axum_url, connections, seconds)?;
            let h = run_wrk(&wrk, &script, &host_url, connections, seconds)?;
            println!(
                "    -c{connections}: axum {:.0} req/s ({} non-2xx, {} socket errors), host {:.0} acks/s ({} non-2xx, {} socket errors)",
                a.ok_per_second, a.non_2xx, a.errors, h.ok_per_second, h.non_2xx, h.errors
            );
            axum_sum += a.ok_per_second;
            host_sum += h.ok_per_second;
        }
        let (axum, acks) = (axum_sum / rounds as f64, host_sum / rounds as f64);
        let ratio = acks / axum;
        let mut short = Vec::new();
        if ratio < 0.40 {
            short.push("under 0.40× axum");
        }
        if acks < 25_000.0 {
            short.push("under 25 000/s");
        }
        rows.push(Row {
            target: format!("durable acks, `wrk -c{connections}` (≥ 0.40× axum, ≥ 25 000/s)"),
            figure: format!("{} acks/s", thousands(acks)),
            limit: format!("plain axum {} req/s", thousands(axum)),
            ratio: format!("{ratio:.2}×"),
            met: Met::when(short.is_empty(), short.join(", ")),
        });
    }
    drop(host);
    axum_runtime.shutdown_background();
    Ok(rows)
}

/// Criterion's estimate of one case of the `attempt` bench, in µs: its
/// slope (what criterion prints as the time), or its mean.
fn criterion_estimate(case: &str) -> anyhow::Result<f64> {
    let path = xtask::workspace_root()
        .join("target/criterion/attempt")
        .join(case)
        .join("new/estimates.json");
    let json: Value = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let ns = json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())
        .with_context(|| format!("no estimate in {}", path.display()))?;
    Ok(ns / 1000.0)
}

/// The host's attempt against raw wasmtime instantiate + call: criterion's
/// estimates of the two cases, run one after the other.
fn per_attempt(args: &Args, bench: &Path) -> anyhow::Result<Row> {
    const CASES: [&str; 2] = ["raw_wasmtime_instantiate_call", "host_attempt_record_built"];
    for case in CASES {
        // An estimate left by an earlier run must not pass for this one's.
        let _ = std::fs::remove_dir_all(
            xtask::workspace_root()
                .join("target/criterion/attempt")
                .join(case)
                .join("new"),
        );
    }
    // What `cargo bench` runs, from the host's package directory.
    let mut cmd = Command::new(bench);
    cmd.current_dir(xtask::workspace_root().join("host"))
        .env(
            "CRITERION_HOME",
            xtask::workspace_root().join("target/criterion"),
        )
        .args(["--bench", &CASES.join("|")]);
    if args.quick {
        cmd.args(["--warm-up-time", "1"])
            .env("HOOKHOST_BENCH_MEASURE_SECONDS", "2");
    }
    figures_of(
        "per-attempt overhead: cargo bench -p hookhost --bench attempt",
        cmd,
    )?;
    let (raw, attempt) = (criterion_estimate(CASES[0])?, criterion_estimate(CASES[1])?);
    let ratio = attempt / raw;
    Ok(Row {
        target: "per-attempt overhead (≤ 1.5× raw)".into(),
        figure: format!("{attempt:.2} µs, record built"),
        limit: format!("raw wasmtime {raw:.2} µs"),
        ratio: format!("{ratio:.2}×"),
        met: Met::when(ratio <= 1.5, "over 1.5×"),
    })
}

/// Ingest → recorded p99 at a steady 1 000/s, and handled events at
/// 10 000/s offered.
fn load(args: &Args) -> anyhow::Result<Vec<Row>> {
    let steady = if args.quick { "3" } else { "8" };
    let mut cmd = sibling("load");
    cmd.args(["--seconds", steady]).args(["--rate", "1000"]);
    let found = figures_of("ingest → recorded at 1 000/s: --bin load --rate 1000", cmd)?;
    let f = found.first().context("load printed no figures")?;
    let p99 = number(f, "recorded_p99_ms")?;
    let axum_p99 = number(f, "axum_ack_p99_ms")?;
    let mut rows = vec![Row {
        target: "ingest → recorded p99 at a steady 1 000/s (≤ 10 ms)".into(),
        figure: format!("{p99:.0} ms"),
        limit: format!("axum's ack p99 at 1 000/s: {axum_p99:.1} ms"),
        ratio: "—".into(),
        met: Met::when(p99 <= 10.0, "over 10 ms"),
    }];

    let (seconds, ceiling) = if args.quick { (5, "2") } else { (60, "10") };
    let mut cmd = sibling("load");
    cmd.args([
        "--seconds",
        &seconds.to_string(),
        "--ceiling-seconds",
        ceiling,
    ])
    .args(["--connections", "128", "--rate", "10000"]);
    let found = figures_of(
        &format!("handled at 10 000/s offered for {seconds} s: --bin load --rate 10000"),
        cmd,
    )?;
    let f = found.first().context("load printed no figures")?;
    let handled = number(f, "handled_during_load_per_s")?;
    let queue = number(f, "queue_at_stop")?;
    let sled = number(f, "sled_per_s")?;
    // Kept up: the queue left at the stop is under a second of the load.
    let kept_up = handled >= 9_900.0 && queue < 10_000.0;
    rows.push(Row {
        target: format!("handled events, 10 000/s offered for {seconds} s"),
        figure: format!(
            "{} handled/s during the load, queue {} at the stop",
            thousands(handled),
            thousands(queue)
        ),
        limit: format!("raw sled group commit {} writes/s", thousands(sled)),
        ratio: format!("{:.2}×", handled / sled),
        met: Met::when(kept_up, "fell behind the offered rate"),
    });
    Ok(rows)
}

/// Python and JavaScript attempts' p50 beside a Rust one.
fn guests(args: &Args) -> anyhow::Result<Vec<Row>> {
    let mut cmd = sibling("guests");
    cmd.args(["--attempts", if args.quick { "100" } else { "400" }]);
    if args.quick {
        // Compiled once, by the first quick run, and loaded after.
        cmd.arg("--artifacts")
            .arg(xtask::workspace_root().join("target/bench-artifacts"));
    }
    let found = figures_of("attempts by language: --bin guests", cmd)?;
    let p50 = |lang: &str| {
        found
            .iter()
            .find(|f| f["language"] == lang)
            .and_then(|f| f["p50_us"].as_f64())
    };
    let rust = p50("Rust").context("no Rust attempt")?;
    Ok(["Python", "JavaScript"]
        .iter()
        .map(|lang| match p50(lang) {
            None => not_run(
                &format!("{lang} attempt p50 (≤ 0.5 ms)"),
                "its toolchain is missing (`cargo xtask polyglot-tools`)",
            ),
            Some(us) => Row {
                target: format!("{lang} attempt p50 (≤ 0.5 ms)"),
                figure: format!("{us:.0} µs"),
                limit: format!("a Rust attempt {rust:.0} µs"),
                ratio: format!("{:.0}×", us / rust),
                met: Met::when(us <= 500.0, "over 0.5 ms"),
            },
        })
        .collect())
}

/// One host on PostgreSQL against one on sled, same load.
fn postgres(args: &Args) -> anyhow::Result<Vec<Row>> {
    const TARGET: &str = "PostgreSQL, 1 host: handled until drained (≥ 0.6× sled)";
    const HOT: &str =
        "one hot kv key, 3 hosts on PostgreSQL: events settled/s (≥ 10× the 27/s before #32)";
    let url = std::env::var("HOOKHOST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://hookhost:hookhost@127.0.0.1:5432/postgres".into());
    let reachable = url
        .rsplit_once('@')
        .and_then(|(_, at)| at.split('/').next())
        .and_then(|addr| std::net::ToSocketAddrs::to_socket_addrs(addr).ok()?.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        });
    if !reachable {
        let why =
            "no PostgreSQL server at $HOOKHOST_TEST_POSTGRES (`bash .ci/postgres` starts one)";
        return Ok(vec![not_run(TARGET, why), not_run(HOT, why)]);
    }
    let seconds = if args.quick { "3" } else { "10" };
    let mut cmd = sibling("cluster");
    cmd.args(["--hosts", "1", "--seconds", seconds]);
    let found = figures_of("PostgreSQL against sled: --bin cluster --hosts 1", cmd)?;
    let handled = |prefix: &str| {
        found
            .iter()
            .find(|f| f["run"].as_str().is_some_and(|r| r.starts_with(prefix)))
            .and_then(|f| f["handled_until_drained_per_s"].as_f64())
            .with_context(|| format!("no {prefix} run"))
    };
    let (sled, pg) = (handled("sled")?, handled("postgres")?);
    let ratio = pg / sled;
    let mut rows = vec![Row {
        target: TARGET.into(),
        figure: format!("{} handled/s", thousands(pg)),
        limit: format!("sled, 1 host: {}/s", thousands(sled)),
        ratio: format!("{ratio:.2}×"),
        met: Met::when(ratio >= 0.6, "under 0.6×"),
    }];
    // The limit: one host alone on the key, with nobody to conflict with
    // but its own attempts.
    let events = if args.quick { "600" } else { "1500" };
    let mut settled = Vec::new();
    for hosts in ["3", "1"] {
        let mut cmd = sibling("hotkey");
        cmd.args(["--hosts", hosts, "--events", events]);
        let found = figures_of(
            &format!("one hot kv key: --bin hotkey --hosts {hosts} --events {events}"),
            cmd,
        )?;
        let f = found.first().context("hotkey printed no figures")?;
        settled.push(number(f, "settled_per_s")?);
    }
    let (three, one) = (settled[0], settled[1]);
    rows.push(Row {
        target: HOT.into(),
        figure: format!("{} events/s", thousands(three)),
        limit: format!("1 host alone: {}/s", thousands(one)),
        ratio: format!("{:.2}×", three / one),
        met: Met::when(three >= 270.0, "under 270/s"),
    });
    Ok(rows)
}

/// Idle RSS of the release host with ten plugins.
fn idle_rss(args: &Args) -> anyhow::Result<Row> {
    let mut cmd = sibling("soak");
    // No load follows: one RSS sample a second after, not thirty.
    cmd.args(["--minutes", "0", "--sample-seconds", "1"]);
    if args.quick {
        cmd.args(["--idle-seconds", "2"]);
    }
    let found = figures_of("idle RSS: --bin soak --minutes 0", cmd)?;
    let f = found.first().context("soak printed no figures")?;
    let mb = number(f, "idle_rss_mb")?;
    Ok(Row {
        target: "idle RSS, 10 plugins (≤ 60 MB)".into(),
        figure: format!("{mb:.1} MB"),
        limit: "—".into(),
        ratio: "—".into(),
        met: Met::when(mb <= 60.0, "over 60 MB"),
    })
}

/// Builds everything the phases run, up front and in this order, and
/// returns the `attempt` bench's executable. The bench is run directly, not
/// through `cargo bench`: a later build with other features (the host's
/// binary, this crate's) would make `cargo bench` compile the host again
/// in the middle of the run.
fn build_all() -> anyhow::Result<PathBuf> {
    let root = xtask::workspace_root();
    let out = cargo_command()
        .current_dir(&root)
        .args([
            "bench", "--no-run", "--locked", "-p", "hookhost", "--bench", "attempt",
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "building the attempt bench failed");
    let bench = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["kind"][0] == "bench")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo named no executable for the attempt bench")?;
    for package in [
        &["-p", "hookhost", "--bin", "hookhost"][..],
        &["-p", "hookhost-bench", "--bins"],
    ] {
        let status = cargo_command()
            .current_dir(&root)
            .args(["build", "--release", "--locked"])
            .args(package)
            .status()?;
        ensure!(status.success(), "building {package:?} failed");
    }
    Ok(bench)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let bench = build_all()?;
    let built = started.elapsed();
    // The attempts first, on a quiet machine: the load phases leave the
    // kernel writing back gigabytes for a while after they end.
    let mut rows = guests(&args)?;
    rows.push(per_attempt(&args, &bench)?);
    rows.push(idle_rss(&args)?);
    rows.extend(acks(&args).await?);
    rows.extend(load(&args)?);
    rows.extend(postgres(&args)?);
    rows.push(not_run(
        "RSS growth over a 10-minute soak (≤ 5 %)",
        "ten minutes by itself: `--bin soak`",
    ));

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n## Scoreboard{}: {cores} cores, {:.0} s measuring ({:.0} s building first)\n",
        if args.quick { " (--quick)" } else { "" },
        (started.elapsed() - built).as_secs_f64(),
        built.as_secs_f64()
    );
    println!("| target | figure | limit, same run | ratio | met? |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.target,
            r.figure,
            r.limit,
            r.ratio,
            r.met.cell()
        );
    }
    Ok(())
}
