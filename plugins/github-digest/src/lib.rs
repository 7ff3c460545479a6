//! Counts GitHub activity per repository.
//!
//! Subscribes to `github.*`. Keeps counters in kv per repository and kind
//! (`push`, `issues`, `pull_request`, other events under their own name) and a
//! list of the repositories it has seen, and logs a one-line summary for the
//! repository after each event.
//!
//! Every day at 08:00 UTC (schedule `daily-digest`) it sums up the day's
//! events per repository and posts the summary as `{"text": …}` to the
//! secret `digest_url` (a Slack-style incoming webhook, whose host must be in
//! `allowed_hosts`), or logs it when none is set; then starts a new day.

use hookhost_sdk::{Event, Handler, HandlerError, Manifest, config, http, kv, log};
// `GithubEvent`, `Repository` and `User`, generated at build time from the
// contract the host checks `github.*` bodies against.
typify::import_types!(schema = "../../contracts/github-event.schema.json");

const KINDS: [&str; 3] = ["push", "issues", "pull_request"];

struct GithubDigest;

impl Handler for GithubDigest {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("github.*")
            .schedule("daily-digest", "0 8 * * *")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        if event.topic == "schedule.daily-digest" {
            return digest(&event);
        }
        let payload: GithubEvent = event.json()?;
        // `github.issues.opened` → `issues`; `github.push` → `push`.
        let kind = event
            .topic
            .strip_prefix("github.")
            .and_then(|rest| rest.split('.').next())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| HandlerError::reject(format!("not a github topic: {}", event.topic)))?;
        let Some(repo) = payload.repository else {
            log::debug(&format!("{kind} event without a repository"));
            kv::increment(&format!("count:-:{kind}"), 1)?;
            return Ok(());
        };
        let repo = repo.full_name;

        let mut repos: Vec<String> = kv::get_json("repositories")?.unwrap_or_default();
        if !repos.contains(&repo) {
            repos.push(repo.clone());
            repos.sort();
            kv::set_json("repositories", &repos)?;
        }
        let count = kv::increment(&format!("count:{repo}:{kind}"), 1)?;
        if KINDS.contains(&kind) {
            kv::increment(&format!("today:{repo}:{kind}"), 1)?;
        }

        let mut summary = Vec::new();
        for k in KINDS {
            let n = if k == kind {
                count
            } else {
                kv::get_json::<i64>(&format!("count:{repo}:{k}"))?.unwrap_or(0)
            };
            summary.push(format!("{k}={n}"));
        }
        let sender = payload.sender.map(|s| s.login).unwrap_or_default();
        log::with_fields(
            log::Level::Info,
            &format!("{repo}: {}", summary.join(" ")),
            &[("repository", &repo), ("event", kind), ("sender", &sender)],
        );
        Ok(())
    }
}

/// Posts (or logs) the day's counts per repository, then resets them. The
/// reset commits only if the post succeeded; the post carries the schedule
/// event's id as idempotency key, so a retried digest is not posted twice.
fn digest(event: &Event) -> Result<(), HandlerError> {
    let repos: Vec<String> = kv::get_json("repositories")?.unwrap_or_default();
    let mut lines = Vec::new();
    for repo in &repos {
        let mut parts = Vec::new();
        for kind in KINDS {
            let key = format!("today:{repo}:{kind}");
            let n = kv::get_json::<i64>(&key)?.unwrap_or(0);
            if n > 0 {
                parts.push(format!("{n} {kind}"));
                kv::delete(&key);
            }
        }
        if !parts.is_empty() {
            lines.push(format!("{repo}: {}", parts.join(", ")));
        }
    }
    let text = if lines.is_empty() {
        "GitHub digest: a quiet day.".to_owned()
    } else {
        format!("GitHub digest:\n{}", lines.join("\n"))
    };
    match config::get("digest_url") {
        Some(url) => {
            let response = http::Request::post(&url)
                .json(&serde_json::json!({ "text": text }))?
                .idempotency_key(&event.id)
                .send()?;
            if !response.is_success() {
                return Err(HandlerError::retry(format!(
                    "digest webhook answered {}",
                    response.status
                )));
            }
            log::info(&format!("digest posted ({} repositories)", lines.len()));
        }
        None => log::info(&text),
    }
    Ok(())
}

hookhost_sdk::export!(GithubDigest);
