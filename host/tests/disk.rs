//! A disk that fills up: ingest answers 503 with the reason and stores
//! nothing, no acknowledged event or recorded effect is lost, and the host
//! recovers by itself once space returns.
//!
//! The store lives on a 32 MiB tmpfs that a filler file really fills. Where
//! mounting is not permitted (not root), the host runs under a file-size
//! limit (`RLIMIT_FSIZE`, set with `prlimit`) instead: its writes then fail
//! with `EFBIG` from the kernel just the same. `HOOKHOST_TEST_DISK=rlimit`
//! picks the second way.

mod common;

use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// How the disk is made to fill, and emptied again.
enum Pressure {
    Tmpfs { mount: PathBuf },
    FileSizeLimit,
}

impl Pressure {
    fn new(dir: &Path) -> Self {
        let mount = dir.join("small-disk");
        std::fs::create_dir_all(&mount).expect("mount point");
        let wanted = std::env::var("HOOKHOST_TEST_DISK").unwrap_or_default();
        if wanted != "rlimit" {
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
                .arg(&mount)
                .output()
                .is_ok_and(|o| o.status.success());
            if mounted {
                return Self::Tmpfs { mount };
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("cannot mount a tmpfs here (not root?): using a file-size limit instead");
            }
        }
        Self::FileSizeLimit
    }

    /// Where the host's data directory goes.
    fn data_dir(&self, dir: &Path) -> PathBuf {
        match self {
            Self::Tmpfs { mount } => mount.join("data"),
            Self::FileSizeLimit => dir.join("data"),
        }
    }

    /// Takes away the room to write.
    fn fill(&self, pid: u32) {
        match self {
            Self::Tmpfs { mount } => {
                let mut filler = std::fs::File::create(mount.join("filler")).expect("filler");
                let block = vec![0u8; 64 * 1024];
                loop {
                    match filler.write_all(&block) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(28) => break,
                        Err(e) => panic!("filling the tmpfs: {e}"),
                    }
                }
                let _ = filler.sync_all();
            }
            Self::FileSizeLimit => set_fsize(pid, "0"),
        }
    }

    /// Gives the room back.
    fn relieve(&self, pid: u32) {
        match self {
            Self::Tmpfs { mount } => {
                std::fs::remove_file(mount.join("filler")).expect("remove filler")
            }
            Self::FileSizeLimit => set_fsize(pid, "unlimited"),
        }
    }

    /// What the kernel answers a write that does not fit.
    fn error_text(&self) -> &'static str {
        match self {
            Self::Tmpfs { .. } => "No space left on device",
            Self::FileSizeLimit => "File too large",
        }
    }
}

impl Drop for Pressure {
    fn drop(&mut self) {
        if let Self::Tmpfs { mount } = self {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
    }
}

/// Sets the soft file-size limit of process `pid`.
fn set_fsize(pid: u32, soft: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={soft}:"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");
}

async fn post(client: &reqwest::Client, base: &str, n: usize) -> (u16, Option<String>, Value) {
    let pad = "x".repeat(1000);
    let response = client
        .post(format!("{base}/events/test.count"))
        .json(&json!({ "n": n, "pad": pad }))
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_full_disk_refuses_ingest_loses_nothing_and_recovers_by_itself() {
    let built = xtask::build_plugins(&["test-counter"]).expect("build the counter plugin");
    let dir = tempfile::tempdir().expect("tempdir");
    let pressure = Pressure::new(dir.path());
    let data = pressure.data_dir(dir.path());
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(&built[0], plugins.join("counter.wasm")).expect("install counter");
    let host = common::start(&data, &plugins);
    let base = host.base.clone();
    let pid = host.child.id();
    let client = reqwest::Client::new();

    let mut acked = Vec::new();
    for n in 0..20 {
        let (status, _, answer) = post(&client, &base, n).await;
        assert_eq!(status, 202, "{answer}");
        acked.push(answer["id"].as_str().expect("id").to_owned());
    }

    // Full: within a bounded number of posts, ingest refuses, says why,
    // and asks the sender to come back.
    pressure.fill(pid);
    let mut refused = None;
    for n in 20..5_000 {
        let (status, retry_after, answer) = post(&client, &base, n).await;
        match status {
            202 => acked.push(answer["id"].as_str().expect("id").to_owned()),
            503 => {
                refused = Some((retry_after, answer));
                break;
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    let (retry_after, answer) = refused.expect("ingest never refused on a full disk");
    assert_eq!(retry_after.as_deref(), Some("5"));
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(pressure.error_text()), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was stored")
    );
    let (status, health) = get(&client, &format!("{base}/healthz")).await;
    assert_eq!(status, 503, "{health}");
    // Still refused, and the host still answers reads.
    assert_eq!(post(&client, &base, 9_999).await.0, 503);
    assert_eq!(get(&client, &format!("{base}/plugins")).await.0, 200);

    // Room again: the host recovers without a restart.
    pressure.relieve(pid);
    let deadline = Instant::now() + WAIT;
    while get(&client, &format!("{base}/healthz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "the host did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 10_000..10_005 {
        let (status, _, answer) = post(&client, &base, n).await;
        assert_eq!(status, 202, "{answer}");
        acked.push(answer["id"].as_str().expect("id").to_owned());
    }

    // Every acknowledged event is there and handled once in effect: one
    // `test.counted` per counted event, though some results could not be
    // recorded while the disk was full and their attempts ran again.
    let deadline = Instant::now() + WAIT;
    for id in &acked {
        loop {
            let (status, event) = get(&client, &format!("{base}/events/{id}")).await;
            assert_eq!(status, 200, "acknowledged event {id} lost: {event}");
            if event["status"] == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not handled: {event:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (_, counted) = get(
        &client,
        &format!("{base}/events?topic=test.counted&limit=1000"),
    )
    .await;
    assert_eq!(
        counted["events"].as_array().map(Vec::len),
        Some(acked.len()),
        "effects per acknowledged event"
    );
    drop(host);
}
