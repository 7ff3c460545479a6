//! The command-line clients of the admin API (`hookhost events …`,
//! `replay`, `plugins`, `dead-letters`, `send`) and the offline scaffold
//! (`hookhost new`).
//!
//! Every client prints a readable table by default and the API's JSON with
//! `--json`, for scripts. Errors are the API's `{"error": …}` message.

use anyhow::{Context as _, bail};
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

/// Where the host is and how to talk to it.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(url: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must start with http:// or https://, got {url:?}");
        }
        Ok(Self {
            base,
            token: token.filter(|t| !t.is_empty()),
            headers: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()?,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request = match body {
            Some(RequestBody::Json(v)) => request.json(&v),
            Some(RequestBody::Raw(bytes, content_type)) => request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes),
            None => request,
        };
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the host at {}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let message = value["error"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            let hint = if status == 401 {
                " (pass --token or set HOOKHOST_TOKEN)"
            } else {
                ""
            };
            bail!("{method} {path}: {status}: {message}{hint}");
        }
        Ok((status, value))
    }

    /// Sends `name: value` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// GETs `path` and copies the body to `out` as it arrives.
    pub async fn stream_to(&self, path: &str, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the host at {}", self.base))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            bail!("GET {path}: {status}: {text}");
        }
        while let Some(chunk) = response.chunk().await.context("reading the export")? {
            out.write_all(&chunk)?;
        }
        out.flush()?;
        Ok(())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.call(reqwest::Method::GET, path, None).await?.1)
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        // Always JSON: the admin API refuses a state change without it.
        let body = body.unwrap_or_else(|| serde_json::json!({}));
        Ok(self
            .call(reqwest::Method::POST, path, Some(RequestBody::Json(body)))
            .await?
            .1)
    }

    /// Posts raw bytes; returns the status too.
    pub async fn post_raw(
        &self,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<(u16, Value)> {
        self.call(
            reqwest::Method::POST,
            path,
            Some(RequestBody::Raw(bytes, content_type.to_owned())),
        )
        .await
    }
}

enum RequestBody {
    Json(Value),
    Raw(Vec<u8>, String),
}

/// Prints `value` as JSON, or as the table `table` makes of it.
pub fn print(json_output: bool, value: &Value, table: impl FnOnce(&Value) -> String) {
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

/// A cell: strings as they are, numbers and the rest as JSON, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(v: &Value) -> String {
    v.as_u64()
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

pub fn short(v: &Value) -> String {
    let s = cell(v);
    s.get(..12).map_or(s.clone(), str::to_owned)
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

/// Percent-encodes a query value.
pub fn query(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` with the parameters that are set, each value percent-encoded.
pub fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut out = path.to_owned();
    let mut sep = if path.contains('?') { '&' } else { '?' };
    for (key, value) in params {
        if let Some(value) = value {
            out.push(sep);
            out.push_str(key);
            out.push('=');
            out.push_str(&query(value));
            sep = '&';
        }
    }
    out
}

// ---- tables for each listing -------------------------------------------

pub fn events_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    vec![
                        cell(&e["id"]),
                        time(&e["received_at_ms"]),
                        cell(&e["topic"]),
                        cell(&e["status"]),
                        e["deliveries"].as_u64().map_or_else(
                            || e["deliveries"].as_array().map_or(0, Vec::len).to_string(),
                            |n| n.to_string(),
                        ),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = table(&["id", "received", "topic", "status", "deliveries"], &rows);
    if let Some(cursor) = v["next_cursor"].as_str() {
        out.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    out
}

pub fn event_table(v: &Value) -> String {
    let e = &v["event"];
    let mut out = format!(
        "event     {}\ntopic     {}\nreceived  {}\nkey       {}\nstatus    {}\n",
        cell(&e["id"]),
        cell(&e["topic"]),
        time(&e["received_at_ms"]),
        cell(&e["idempotency_key"]),
        cell(&v["status"]),
    );
    for d in v["deliveries"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\ndelivery {}  plugin {}  status {}  next {}\n",
            cell(&d["id"]),
            cell(&d["plugin"]),
            cell(&d["status"]),
            time(&d["next_attempt_at_ms"]),
        ));
        let rows: Vec<Vec<String>> = d["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let outcome = match a["outcome"]["message"].as_str() {
                    Some(m) => format!("{}: {}", cell(&a["outcome"]["kind"]), first_line(m)),
                    None => cell(&a["outcome"]["kind"]),
                };
                vec![
                    cell(&a["number"]),
                    time(&a["started_at_ms"]),
                    short(&a["version"]),
                    format!(
                        "{:.1} ms",
                        a["duration_us"].as_f64().unwrap_or(0.0) / 1000.0
                    ),
                    cell(&a["fuel_consumed"]),
                    outcome,
                ]
            })
            .collect();
        out.push_str(&table(
            &["#", "started", "version", "duration", "fuel", "outcome"],
            &rows,
        ));
        for a in d["attempts"].as_array().into_iter().flatten() {
            for line in a["logs"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n  [{}] #{} {}",
                    cell(&line["level"]),
                    cell(&a["number"]),
                    cell(&line["message"])
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

pub fn plugins_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                cell(&p["name"]),
                if p["loaded"] == true {
                    short(&p["version"])
                } else {
                    "-".into()
                },
                p["subscriptions"]
                    .as_array()
                    .map(|s| s.iter().map(cell).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
                time(&p["loaded_at_ms"]),
                p["last_error"]["error"]
                    .as_str()
                    .map_or_else(|| "-".into(), |e| first_line(e).to_owned()),
            ]
        })
        .collect();
    table(
        &["name", "version", "subscriptions", "loaded", "last error"],
        &rows,
    )
}

pub fn dead_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["dead_letters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                cell(&d["delivery"]),
                cell(&d["plugin"]),
                cell(&d["topic"]),
                cell(&d["attempts"]),
                d["last_outcome"]["message"].as_str().map_or_else(
                    || cell(&d["last_outcome"]["kind"]),
                    |m| first_line(m).to_owned(),
                ),
            ]
        })
        .collect();
    let mut out = table(
        &["delivery", "plugin", "topic", "attempts", "last outcome"],
        &rows,
    );
    if let Some(cursor) = v["next_cursor"].as_str() {
        out.push_str(&format!("\nmore: --cursor {cursor}"));
    }
    out
}

pub fn shadow_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let diff = r["differences"]
                .as_array()
                .map(|d| d.iter().map(cell).collect::<Vec<_>>().join(","))
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "same".into());
            vec![
                cell(&r["event"]),
                cell(&r["topic"]),
                cell(&r["live"]["outcome"]["kind"]),
                cell(&r["candidate"]["outcome"]["kind"]),
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
        cell(&v["events"]),
        cell(&v["same"]),
        cell(&v["different"]),
        if v["capped"] == true {
            " (capped: raise --limit)"
        } else {
            ""
        }
    ));
    out
}

pub fn counts_table(v: &Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}: {}", cell(v)))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_else(|| cell(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone as _, Utc};

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

    #[test]
    fn a_query_keeps_the_parameters_that_are_set_and_encodes_them() {
        let set = |v: &str| Some(v.to_owned());
        assert_eq!(with_query("/export", &[("topic", None)]), "/export");
        assert_eq!(
            with_query(
                "/export",
                &[
                    ("topic", set("a b&c")),
                    ("status", None),
                    ("since_ms", set("5"))
                ]
            ),
            "/export?topic=a%20b%26c&since_ms=5"
        );
        assert_eq!(
            with_query("/events?limit=5", &[("topic", set("stripe.*"))]),
            "/events?limit=5&topic=stripe.*"
        );
    }
}
