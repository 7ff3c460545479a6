//! Counts GitHub activity per repository.
//!
//! Subscribes to `github.*`. Keeps counters in kv per repository and kind
//! (`push`, `issues`, `pull_request`, other events under their own name) and a
//! list of the repositories it has seen, and logs a one-line summary for the
//! repository after each event.

use hookhost_sdk::{Event, Handler, HandlerError, Manifest, kv, log};
use serde::Deserialize;

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

const KINDS: [&str; 3] = ["push", "issues", "pull_request"];

struct GithubDigest;

impl Handler for GithubDigest {
    fn describe() -> Manifest {
        Manifest::new().subscribe("github.*")
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let payload: Payload = event.json()?;
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

hookhost_sdk::export!(GithubDigest);
