//! The command-line clients of the admin API (`hookhost events …`,
//! `replay`, `plugins`, `dead-letters`, `send`) and the offline scaffold
//! (`hookhost new`).
//!
//! Every client prints a readable table by default and the API's JSON with
//! `--json`, for scripts. Errors are the API's `{"error": …}` message.

pub mod args;

use crate::api;
use crate::model::Outcome;
use serde::Serialize;
use serde_json::Value;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// A time filter's value (`--since`, `--until`) as epoch milliseconds: a
/// duration before now (`90s`, `15m`, `2h`, `7d`, `1h 30m`), an RFC 3339
/// time (`2026-12-01T08:00:00Z`), or epoch milliseconds as the API takes them.
pub fn when(value: &str) -> Result<u64, String> {
    when_at(value, chrono::Utc::now())
}

fn when_at(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<u64, String> {
    let value = value.trim();
    let millis = |t: chrono::DateTime<chrono::Utc>| {
        u64::try_from(t.timestamp_millis()).map_err(|_| format!("{value:?} is before 1970"))
    };
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse()
            .map_err(|_| format!("{value:?} is too large for epoch milliseconds"));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return millis(t.with_timezone(&chrono::Utc));
    }
    match humantime::parse_duration(value) {
        Ok(ago) => chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| now.checked_sub_signed(ago))
            .ok_or_else(|| format!("{value:?} reaches before 1970"))
            .and_then(millis),
        Err(_) => Err(format!(
            "{value:?} is not a time: give a duration before now (2h, 30m, 7d), \
             an RFC 3339 time (2026-12-01T08:00:00Z) or epoch milliseconds"
        )),
    }
}

/// Prints `value` as the API's JSON, or as the table `table` makes of it.
pub fn print<T: Serialize>(json_output: bool, value: &T, table: impl FnOnce(&T) -> String) {
    let text = if json_output {
        serde_json::to_string_pretty(value).unwrap_or_default()
    } else {
        table(value)
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
}

/// Lays out rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.clone()));
    }
    if rows.is_empty() {
        out.push_str("\n(none)");
    }
    out
}

/// A cell: `-` when unset.
pub fn cell(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A value's name as the API spells it (`succeeded`, `dead`).
pub fn name(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: Option<u64>) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// The first 12 characters of a version.
pub fn short(s: &str) -> String {
    s.get(..12).unwrap_or(s).to_owned()
}

/// An outcome as `kind: first line of its message`.
pub fn outcome(o: &Outcome) -> String {
    match o.message() {
        Some(m) => format!("{}: {}", o.kind(), first_line(m)),
        None => o.kind().to_owned(),
    }
}

/// Runs `work`, showing elapsed time on stderr while it lasts (when stderr
/// is a terminal).
pub async fn with_progress<T>(label: &str, work: impl Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let started = Instant::now();
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let frames = ['|', '/', '-', '\\'];
    let mut n = 0;
    loop {
        tokio::select! {
            done = &mut work => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
                return done;
            }
            _ = tick.tick() => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{} {label}… {:.1}s", frames[n % 4], started.elapsed().as_secs_f64());
                let _ = err.flush();
                n += 1;
            }
        }
    }
}

// ---- tables for each listing -------------------------------------------

pub fn events_table(v: &api::EventList) -> String {
    let rows: Vec<Vec<String>> = v
        .events
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                time(Some(e.received_at_ms)),
                e.topic.clone(),
                name(&e.status),
                e.deliveries.len().to_string(),
            ]
        })
        .collect();
    let mut out = table(&["id", "received", "topic", "status", "deliveries"], &rows);
    if let Some(cursor) = &v.next_cursor {
        out.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    out
}

pub fn event_table(v: &api::EventDetail) -> String {
    let e = &v.event;
    let mut out = format!(
        "event     {}\ntopic     {}\nreceived  {}\nkey       {}\nstatus    {}\n",
        e.id,
        e.topic,
        time(Some(e.received_at_ms)),
        cell(e.idempotency_key.as_ref()),
        name(&v.status),
    );
    for d in &v.deliveries {
        out.push_str(&format!(
            "\ndelivery {}  plugin {}  status {}  next {}\n",
            d.id,
            d.plugin,
            name(&d.status),
            time(d.next_attempt_at_ms),
        ));
        let rows: Vec<Vec<String>> = d
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.number.to_string(),
                    time(Some(a.started_at_ms)),
                    short(&a.version),
                    format!("{:.1} ms", a.duration_us as f64 / 1000.0),
                    a.fuel_consumed.to_string(),
                    outcome(&a.outcome),
                ]
            })
            .collect();
        out.push_str(&table(
            &["#", "started", "version", "duration", "fuel", "outcome"],
            &rows,
        ));
        for a in &d.attempts {
            for line in &a.logs {
                out.push_str(&format!(
                    "\n  [{}] #{} {}",
                    name(&line.level),
                    a.number,
                    line.message
                ));
            }
        }
        out.push('\n');
    }
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

pub fn plugins_table(v: &api::PluginList) -> String {
    let rows: Vec<Vec<String>> = v
        .plugins
        .iter()
        .map(|p| {
            let serving = p.serving.as_ref();
            vec![
                p.name.clone(),
                cell(serving.map(|s| short(&s.version))),
                serving.map_or_else(String::new, |s| s.subscriptions.join(",")),
                time(serving.map(|s| s.loaded_at_ms)),
                cell(p.last_error.as_ref().map(|e| first_line(&e.error))),
            ]
        })
        .collect();
    table(
        &["name", "version", "subscriptions", "loaded", "last error"],
        &rows,
    )
}

pub fn dead_table(v: &api::DeadLetterList) -> String {
    let rows: Vec<Vec<String>> = v
        .dead_letters
        .iter()
        .map(|d| {
            vec![
                d.delivery.to_string(),
                d.plugin.clone(),
                cell(d.topic.as_ref()),
                d.attempts.to_string(),
                cell(d.last_outcome.as_ref().map(|o| {
                    o.message()
                        .map_or_else(|| o.kind().to_owned(), |m| first_line(m).to_owned())
                })),
            ]
        })
        .collect();
    let mut out = table(
        &["delivery", "plugin", "topic", "attempts", "last outcome"],
        &rows,
    );
    if let Some(cursor) = &v.next_cursor {
        out.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    out
}

pub fn shadow_table(v: &api::ShadowReport) -> String {
    let rows: Vec<Vec<String>> = v
        .results
        .iter()
        .map(|r| {
            let diff = if r.differences.is_empty() {
                "same".to_owned()
            } else {
                r.differences.join(",")
            };
            vec![
                r.event.clone(),
                r.topic.clone(),
                r.live.outcome.kind().to_owned(),
                r.candidate.outcome.kind().to_owned(),
                diff,
            ]
        })
        .collect();
    let mut out = table(
        &["event", "topic", "live", "candidate", "differences"],
        &rows,
    );
    out.push_str(&format!(
        "\n{} events: {} same, {} different{}",
        v.events,
        v.same,
        v.different,
        if v.capped {
            " (capped: raise --limit)"
        } else {
            ""
        }
    ));
    out
}

/// `name: value` lines, one per field of an answer of counts.
pub fn counts_table(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An exact replay: the attempt replayed, then `exact`, or each difference
/// with what was recorded and what the replay did.
pub fn exact_table(v: &crate::api::ExactReplay) -> String {
    let mut out = format!(
        "event {} · {} attempt {} · version {}\n",
        v.event,
        v.plugin,
        v.attempt,
        short(&v.recorded_version)
    );
    if v.exact {
        out.push_str("exact: the replay did what the attempt did, byte for byte");
        return out;
    }
    out.push_str(&format!("diverged in {}:", v.differences.len()));
    for d in &v.differences {
        out.push_str(&format!(
            "\n  {}\n    recorded: {}\n    replayed: {}",
            d.what,
            shown(&d.recorded),
            shown(&d.replayed)
        ));
    }
    out
}

/// Longest value [`exact_table`] prints whole.
const SHOWN_BYTES: usize = 400;

/// `value` as JSON, cut at [`SHOWN_BYTES`] with a note of its size.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= SHOWN_BYTES {
        return text;
    }
    let mut end = SHOWN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} bytes; --json shows it whole)",
        &text[..end],
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Utc};

    #[test]
    fn a_diverged_replay_shows_each_difference_and_cuts_long_values() {
        let report = crate::api::ExactReplay {
            event: "01J".into(),
            delivery: "01J00000000000000000000000-0".parse().expect("delivery"),
            plugin: "shop".into(),
            attempt: 2,
            recorded_version: "a".repeat(64),
            replayed_version: "a".repeat(64),
            exact: false,
            differences: vec![crate::api::ExactDifference {
                what: "effects".into(),
                recorded: Value::String("é".repeat(1000)),
                replayed: Value::Null,
            }],
            outcome: Outcome::Ok,
            fuel_consumed: 1,
            duration_us: 1,
        };
        let table = exact_table(&report);
        assert!(table.contains("diverged in 1:\n  effects"), "{table}");
        assert!(table.contains("replayed: null"), "{table}");
        let recorded = table
            .lines()
            .find(|l| l.contains("recorded:"))
            .expect("recorded line");
        assert!(recorded.len() < SHOWN_BYTES + 100, "{recorded}");
        assert!(
            recorded.ends_with("(2002 bytes; --json shows it whole)"),
            "{recorded}"
        );
    }

    #[test]
    fn a_time_filter_is_a_duration_ago_an_rfc_3339_time_or_epoch_milliseconds() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .single()
            .expect("a time");
        let ms =
            |t: chrono::DateTime<Utc>| u64::try_from(t.timestamp_millis()).expect("after 1970");
        let ago = |s: &str| when_at(s, now);
        assert_eq!(ago("2h"), Ok(ms(now - chrono::Duration::hours(2))));
        assert_eq!(ago("1h 30m"), Ok(ms(now - chrono::Duration::minutes(90))));
        assert_eq!(ago("7d"), Ok(ms(now - chrono::Duration::days(7))));
        assert_eq!(ago("90s"), Ok(ms(now - chrono::Duration::seconds(90))));
        assert_eq!(ago("2026-12-01T08:00:00Z"), Ok(1_796_112_000_000));
        assert_eq!(
            ago("2026-12-01T09:00:00+01:00"),
            ago("2026-12-01T08:00:00Z"),
            "an offset is honoured"
        );
        assert_eq!(ago("1764000000000"), Ok(1_764_000_000_000));
        assert_eq!(ago(" 0 "), Ok(0));
        for unclear in ["yesterday", "", "2h ago", "-5m", "2026-12-01"] {
            let err = ago(unclear).expect_err(unclear);
            assert!(err.contains("is not a time"), "{unclear}: {err}");
        }
        assert!(ago("1970-01-01T00:00:00+01:00").is_err(), "before 1970");
        assert!(ago("99999999999999999999999").is_err(), "too large");
    }
}
