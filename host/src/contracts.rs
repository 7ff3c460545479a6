//! Typed contracts: JSON Schemas that bodies of matching topics must meet.
//!
//! Configured as `[contracts]` in `hookhost.toml`, topic pattern → schema
//! file. A body that violates a contract is refused with `422` and the list
//! of violations, and kept in quarantine (`GET /quarantine`) so it can be
//! re-ingested once the schema or the sender is fixed.

use crate::model::topic_matches;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Violations listed per refusal at most.
const MAX_VIOLATIONS: usize = 50;

/// The compiled contracts, in pattern order.
#[derive(Default)]
pub struct Contracts {
    rules: Vec<(String, jsonschema::Validator)>,
}

/// Why the contracts in the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("contract for {pattern:?}: cannot read {path}: {source}")]
    Read {
        pattern: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("contract for {pattern:?}: {path} is not json: {message}")]
    Json {
        pattern: String,
        path: PathBuf,
        message: String,
    },
    #[error("contract for {pattern:?}: {path} is not a valid json schema: {message}")]
    Schema {
        pattern: String,
        path: PathBuf,
        message: String,
    },
}

/// A body that broke a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The contract's topic pattern.
    pub pattern: String,
    /// One line per problem: `<json pointer>: <what is wrong>`.
    pub violations: Vec<String>,
}

impl Contracts {
    /// Reads and compiles every schema; errors name the file.
    pub fn load(configured: &BTreeMap<String, PathBuf>) -> Result<Self, ContractError> {
        let mut rules = Vec::new();
        for (pattern, path) in configured {
            let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
                pattern: pattern.clone(),
                path: path.clone(),
                source,
            })?;
            let schema: Value = serde_json::from_str(&text).map_err(|e| ContractError::Json {
                pattern: pattern.clone(),
                path: path.clone(),
                message: e.to_string(),
            })?;
            let validator =
                jsonschema::validator_for(&schema).map_err(|e| ContractError::Schema {
                    pattern: pattern.clone(),
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            rules.push((pattern.clone(), validator));
        }
        Ok(Self { rules })
    }

    /// Checks `body` against every contract whose pattern matches `topic`.
    pub fn check(&self, topic: &str, body: &[u8]) -> Result<(), Violation> {
        let mut parsed: Option<Value> = None;
        for (pattern, validator) in &self.rules {
            if !topic_matches(pattern, topic) {
                continue;
            }
            let instance = match &parsed {
                Some(v) => v,
                None => match serde_json::from_slice::<Value>(body) {
                    Ok(v) => parsed.insert(v),
                    Err(e) => {
                        return Err(Violation {
                            pattern: pattern.clone(),
                            violations: vec![format!("body is not valid json: {e}")],
                        });
                    }
                },
            };
            let violations: Vec<String> = validator
                .iter_errors(instance)
                .take(MAX_VIOLATIONS)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    format!("{}: {e}", if at.is_empty() { "/" } else { &at })
                })
                .collect();
            if !violations.is_empty() {
                return Err(Violation {
                    pattern: pattern.clone(),
                    violations,
                });
            }
        }
        Ok(())
    }
}

/// Resolves relative schema paths against the directory of the config file.
pub fn rebase(contracts: &mut BTreeMap<String, PathBuf>, config_dir: &Path) {
    for path in contracts.values_mut() {
        if path.is_relative() {
            *path = config_dir.join(&*path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contracts(schema: &str) -> (tempfile::TempDir, Contracts) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("order.json");
        std::fs::write(&path, schema).expect("write schema");
        let loaded =
            Contracts::load(&BTreeMap::from([("orders.*".to_owned(), path)])).expect("load");
        (dir, loaded)
    }

    const ORDER: &str = r#"{"type":"object","required":["id","total_cents"],
        "properties":{"id":{"type":"string"},"total_cents":{"type":"integer","minimum":0}}}"#;

    #[test]
    fn matching_topics_are_checked_and_every_violation_listed() {
        let (_dir, c) = contracts(ORDER);
        assert_eq!(
            c.check("orders.created", br#"{"id":"o1","total_cents":5}"#),
            Ok(())
        );
        assert_eq!(
            c.check("refunds.created", b"not even json"),
            Ok(()),
            "other topics are free"
        );
        let v = c
            .check("orders.created", br#"{"total_cents":-5}"#)
            .expect_err("two problems");
        assert_eq!(v.pattern, "orders.*");
        assert_eq!(v.violations.len(), 2, "{:?}", v.violations);
        assert!(
            v.violations.iter().any(|m| m.starts_with("/total_cents:")),
            "{:?}",
            v.violations
        );
        let v = c.check("orders.created", b"{oops").expect_err("not json");
        assert!(v.violations[0].starts_with("body is not valid json"));
    }

    #[test]
    fn a_broken_schema_file_is_a_clear_startup_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"type": 12}"#).expect("write");
        let err = Contracts::load(&BTreeMap::from([("x".to_owned(), path)]))
            .err()
            .expect("invalid schema");
        assert!(err.to_string().contains("not a valid json schema"), "{err}");
        let missing = Contracts::load(&BTreeMap::from([(
            "x".to_owned(),
            dir.path().join("nope.json"),
        )]));
        assert!(
            missing
                .err()
                .expect("missing")
                .to_string()
                .contains("cannot read")
        );
    }
}
