//! `hookhost test <component.wasm> <cases…>`: runs a built component in the
//! real sandbox, offline, against fixture events, and compares what it did
//! with an expected file beside each case.
//!
//! A case is a JSON file:
//!
//! ```json
//! {
//!   "event": { "topic": "shop.order.created", "json": { "amount": 5 } },
//!   "kv": { "total": 7 },
//!   "config": { "notify_url": "https://hooks.example.com/t" },
//!   "http": [ { "method": "POST", "url": "https://hooks.example.com/t", "status": 200 } ]
//! }
//! ```
//!
//! - `event`: `topic`, a body as `json` or `text`, and optionally `headers`,
//!   `idempotency_key`, `id` (a ULID), `attempt`, `received_at_ms`,
//!   `provenance` (`{"kind": "source", "name": "stripe", "verified": true}`).
//! - `kv`: the plugin's kv before the attempt; a string is stored as its
//!   text, any other JSON value as its JSON.
//! - `config`: the plugin's config values (over those of `--config`).
//! - `http`: declared answers; the first whose `method` (any when absent)
//!   and `url` match answers a call, with `status`, `headers` and a `json`
//!   or `text` body, or fails it (`"error": "timeout" | "failed"`). The
//!   network is never used: a call with no answer fails, and, as in the
//!   host, a call to a host not in `allowed_hosts` is denied (without
//!   `--config`, the hosts of the declared answers are the ones allowed).
//!
//! The report of a case (its outcome, kv writes, emitted events, HTTP calls
//! with URLs and bodies, logs and output) is compared with
//! `<case>.expected.json`; `--bless` writes it.

use crate::config::Config;
use crate::model::HostRule;
use crate::model::{DeliveryId, EventRecord, LogLine, Outcome, Provenance, now_ms};
use crate::runtime::answers::{Answer, Answers, SeenCall, body_value};
use crate::runtime::{KvSnapshot, Plugin, Runtime, load};
use crate::store::Store;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub event: CaseEvent,
    #[serde(default)]
    pub kv: BTreeMap<String, Value>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub http: Vec<Answer>,
}

/// A case's fixture event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseEvent {
    pub topic: String,
    #[serde(default)]
    pub json: Option<Value>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub id: Option<ulid::Ulid>,
    #[serde(default)]
    pub attempt: Option<u32>,
    #[serde(default)]
    pub received_at_ms: Option<u64>,
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// The id of a case's event unless it names one: fixed, so default
/// idempotency keys are the same from run to run.
const CASE_EVENT_ID: &str = "01J00000000000000000000000";

/// What one attempt did, as compared with the expected file. kv writes and
/// emitted events are those the attempt made: the host commits them only
/// when the outcome is `ok`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    /// Each key written, with its value (JSON when it parses, else text);
    /// `null` is a delete.
    pub kv_writes: BTreeMap<String, Option<Value>>,
    pub emitted: Vec<EmittedReport>,
    pub http: Vec<SeenCall>,
    pub logs: Vec<LogLine>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmittedReport {
    pub topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    pub body: Option<Value>,
}

/// How `hookhost test` runs.
#[derive(Debug, Default)]
pub struct Options {
    /// Write each case's expected file from what it did.
    pub bless: bool,
    /// The operator's configuration (limits, config values, allowed hosts).
    pub config: Option<Config>,
    /// The plugin's name in that configuration (default: the file's stem).
    pub plugin: Option<String>,
}

/// How one case went.
#[derive(Debug)]
pub enum Verdict {
    Passed,
    Blessed,
    /// Differs from the expected file: a unified diff, expected → actual.
    Failed(String),
    /// No expected file: the report it would hold.
    Unexpected(String),
}

/// Runs every case under `paths` (files, or directories of `*.json` case
/// files) against `component`; returns each case's path and verdict.
pub async fn run(
    component: &Path,
    paths: &[PathBuf],
    options: &Options,
) -> anyhow::Result<Vec<(PathBuf, Verdict)>> {
    let cases = case_files(paths)?;
    if cases.is_empty() {
        bail!("no case files (*.json, not *.expected.json) under the paths given");
    }
    let config = options.config.clone().unwrap_or_default();
    let name = options.plugin.clone().unwrap_or_else(|| {
        component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "handler".into())
    });
    let runtime = Runtime::new(config.workers, config.max_memory_bytes(), None)
        .context("cannot build the engine")?;
    let compiled = load::read_and_compile(&runtime, component)
        .with_context(|| format!("cannot load {}", component.display()))?;
    let limits = config.limits_for(&name);
    let plugin = load::describe(&runtime, &name, compiled, limits)
        .await
        .with_context(|| format!("cannot load {}", component.display()))?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let store = Arc::new(Store::open(scratch.path()).context("cannot open a scratch store")?);
    let mut verdicts = Vec::new();
    for path in cases {
        let case = read_case(&path)?;
        let report = run_case(
            &runtime,
            &plugin,
            store.clone(),
            case,
            options.config.is_some(),
        )
        .await?;
        verdicts.push((path.clone(), judge(&path, &report, options.bless)?));
    }
    Ok(verdicts)
}

fn read_case(path: &Path) -> anyhow::Result<Case> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a case", path.display()))
}

/// The case files `paths` name: files as given, directories' `*.json`
/// (not `*.expected.json`), sorted.
fn case_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut cases = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_case(p))
                .collect();
            found.sort();
            cases.extend(found);
        } else if path.exists() {
            cases.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    Ok(cases)
}

fn is_case(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".json") && !name.ends_with(".expected.json")
}

/// `<case>.expected.json` beside `case`.
pub fn expected_path(case: &Path) -> PathBuf {
    let stem = case
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    case.with_file_name(format!("{stem}.expected.json"))
}

async fn run_case(
    runtime: &Runtime,
    plugin: &Plugin,
    store: Arc<Store>,
    case: Case,
    configured: bool,
) -> anyhow::Result<Report> {
    let answers = Arc::new(Answers::new(case.http));
    let mut limits = plugin.limits.clone();
    limits.config.extend(case.config);
    if !configured {
        limits.outbound.allowed = answers
            .origins()
            .iter()
            .filter_map(|o| HostRule::parse(o).ok())
            .collect();
    }
    let plugin = plugin.with_limits(limits);
    let e = case.event;
    let (body, content_type) = match (e.json, e.text) {
        (Some(_), Some(_)) => bail!("an event has a json or a text body, not both"),
        (Some(json), None) => (
            json.to_string().into_bytes(),
            Some("application/json".into()),
        ),
        (None, Some(text)) => (text.into_bytes(), None),
        (None, None) => (Vec::new(), None),
    };
    let id = match e.id {
        Some(id) => id,
        None => CASE_EVENT_ID.parse().context("the default event id")?,
    };
    crate::model::validate_topic(&e.topic).map_err(anyhow::Error::msg)?;
    let event = EventRecord {
        id,
        topic: e.topic,
        idempotency_key: e.idempotency_key,
        received_at_ms: e.received_at_ms.unwrap_or_else(now_ms),
        content_type: e
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .or(content_type),
        headers: e.headers,
        emitted_by: None,
        provenance: Some(e.provenance.unwrap_or(Provenance::Api)),
    };
    let kv: KvSnapshot = case
        .kv
        .into_iter()
        .map(|(k, v)| {
            let bytes = match v {
                Value::String(text) => text.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (k, Some(bytes))
        })
        .collect();
    let run = runtime
        .run_offline(
            &plugin,
            store,
            DeliveryId { event: id, seq: 0 },
            e.attempt.unwrap_or(1),
            &event,
            &body,
            kv,
            crate::runtime::Offline::Answer(answers.clone()),
        )
        .await;
    Ok(report(run, answers.seen()))
}

fn report(run: crate::runtime::AttemptRun, http: Vec<SeenCall>) -> Report {
    let attempt = run.attempt;
    let outcome = match attempt.outcome {
        // The first line: a trap's wasm backtrace changes with every build.
        Outcome::Trap(m) => Outcome::Trap(m.lines().next().unwrap_or_default().to_owned()),
        other => other,
    };
    Report {
        outcome,
        kv_writes: run
            .effects
            .writes
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.map(|v| body_value(&v).unwrap_or(Value::String(String::new()))),
                )
            })
            .collect(),
        emitted: run
            .effects
            .emitted
            .into_iter()
            .map(|e| EmittedReport {
                topic: e.event.topic,
                idempotency_key: e.event.idempotency_key,
                body: body_value(&e.event.body),
            })
            .collect(),
        http,
        logs: attempt.logs,
        stdout: attempt.stdout,
        stderr: attempt.stderr,
    }
}

fn pretty(value: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

fn judge(case: &Path, report: &Report, bless: bool) -> anyhow::Result<Verdict> {
    let expected_path = expected_path(case);
    let actual = pretty(report)?;
    if bless {
        std::fs::write(&expected_path, &actual)
            .with_context(|| format!("cannot write {}", expected_path.display()))?;
        return Ok(Verdict::Blessed);
    }
    let Ok(text) = std::fs::read_to_string(&expected_path) else {
        return Ok(Verdict::Unexpected(actual));
    };
    let expected: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", expected_path.display()))?;
    let actual = serde_json::to_value(report)?;
    if expected == actual {
        return Ok(Verdict::Passed);
    }
    // Both as JSON values, so that only what differs shows.
    let diff = similar::TextDiff::from_lines(&pretty(&expected)?, &pretty(&actual)?)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string();
    Ok(Verdict::Failed(diff))
}
