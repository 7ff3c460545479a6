//! The shipped configuration, defaults, overrides and every refusal.

use super::*;

#[test]
fn the_shipped_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hookhost.toml");
    let config = Config::from_file(&path).expect("deploy/hookhost.toml parses and validates");
    assert!(config.plugins.contains_key("stripe-ledger"));
    assert!(
        config.resolve_secrets(|_| None).is_ok(),
        "it starts without secrets in the environment"
    );
    // Its contracts are the schemas the examples' types come from.
    let contracts = crate::contracts::Contracts::load(&config.contracts)
        .expect("every contract in deploy/hookhost.toml loads");
    let order = |body: &str| contracts.check("shop.order.paid", body.as_bytes());
    assert!(order(r#"{"order_id": "o-1", "customer": "c-42", "total_cents": 2500}"#).is_ok());
    let refused = order(r#"{"order_id": "o-1", "total_cents": -1}"#).expect_err("refused");
    assert_eq!(refused.pattern, "shop.order.paid");
    assert_eq!(refused.violations.len(), 2, "{:?}", refused.violations);
    let payment = r#"{"id": "evt_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "amount": 2500, "currency": "eur"}}}"#;
    assert!(
        contracts
            .check("stripe.payment_intent.succeeded", payment.as_bytes())
            .is_ok()
    );
    assert!(
        contracts
            .check("form.submitted", br#"{"email": "not an address"}"#)
            .is_err()
    );
}

#[test]
fn the_shipped_cluster_config_is_valid_and_needs_its_database_url() {
    let config = Config::from_toml(include_str!("../../../deploy/cluster/hookhost.toml"))
        .expect("deploy/cluster/hookhost.toml parses and validates");
    assert_eq!(config.store, StoreKind::Postgres);
    let err = config
        .postgres
        .options(|_| None)
        .expect_err("no URL in the environment");
    assert!(err.to_string().contains("HOOKHOST_DATABASE_URL"), "{err}");
    let options = config
        .postgres
        .options(|var| (var == "HOOKHOST_DATABASE_URL").then(|| "postgres://h@db/x".into()))
        .expect("options");
    assert_eq!(options.lease, std::time::Duration::from_secs(60));
    assert!(
        Config::from_toml("store = \"postgres\"\n[postgres]\nlease = \"5s\"").is_err(),
        "a lease no longer than the default 5 s timeout is refused"
    );
    let shorter = "store = \"postgres\"\n[postgres]\nlease = \"3s\"\n\
                   [defaults]\ntimeout_ms = 2900\n[plugins.a]\nfuel = 1000\n";
    assert!(
        Config::from_toml(shorter).is_ok(),
        "a plugin without its own timeout_ms has [defaults]' one"
    );
    assert!(
        Config::from_toml(&format!("{shorter}timeout_ms = 3000\n")).is_err(),
        "a plugin's own timeout_ms counts"
    );
    assert!(Config::from_toml("store = \"mysql\"").is_err());
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let c = Config::from_toml("").expect("empty config is valid");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.body_limit_bytes, 1 << 20);
    assert_eq!(c.store_cache_mb, 64);
    assert!(
        Config::from_toml("store_cache_mb = 0").is_err(),
        "a store with no cache is refused"
    );
    let l = c.limits_for("anything");
    assert_eq!(
        (l.fuel, l.timeout_ms, l.memory_bytes),
        (1_000_000_000, 5_000, 64 << 20)
    );
}

#[test]
fn plugin_settings_override_defaults_field_by_field() {
    let c = Config::from_toml(
        "[defaults]\nfuel = 10\ntimeout_ms = 20\n[plugins.ledger]\nfuel = 5\nconfig = { a = \"b\" }\n",
    )
    .expect("valid");
    let l = c.limits_for("ledger");
    assert_eq!((l.fuel, l.timeout_ms), (5, 20));
    assert_eq!(l.config.get("a").map(String::as_str), Some("b"));
    assert_eq!(c.limits_for("other").fuel, 10);
}

#[test]
fn unknown_keys_and_nonsense_values_are_errors() {
    let err = Config::from_toml("listn = \"x\"").expect_err("typo must fail");
    assert!(err.to_string().contains("listn"), "{err}");
    assert!(Config::from_toml("[plugins.a]\nfuel = 0").is_err());
    assert!(Config::from_toml("[plugins.a]\nmemory_mb = 99999").is_err());
}

#[test]
fn retention_takes_durations_with_units_or_off() {
    use std::time::Duration;
    let c = Config::from_toml("").expect("valid");
    assert_eq!(
        c.retention.max_age(),
        Some(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(c.retention.check_every(), Duration::from_secs(60));
    let c = Config::from_toml("[retention]\nmax_age = \"off\"").expect("valid");
    assert_eq!(c.retention.max_age(), None);
    assert_eq!(
        c.retention.quarantine_max_age(),
        Some(Duration::from_secs(30 * 86_400)),
        "the quarantine keeps its own bound"
    );
    assert_eq!(c.retention.quarantine_max_bytes, 256 << 20);
    let c = Config::from_toml("[retention]\nquarantine_max_age = \"off\"").expect("valid");
    assert_eq!(c.retention.quarantine_max_age(), None);
    let err = Config::from_toml("[retention]\nquarantine_max_age = \"soon\"")
        .expect_err("invalid")
        .to_string();
    assert!(err.contains("quarantine_max_age"), "{err}");
    for (text, ms) in [
        ("500ms", 500),
        ("90s", 90_000),
        ("15m", 900_000),
        ("12h", 43_200_000),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for bad in ["30", "d", "0s", "3w", "-1d", "1.5h"] {
        let err = Config::from_toml(&format!("[retention]\nmax_age = {bad:?}"))
            .expect_err(bad)
            .to_string();
        assert!(err.contains("[retention] max_age"), "{bad}: {err}");
    }
}

#[test]
fn a_retention_batch_is_the_store_s_own_unless_set() {
    let c = Config::from_toml("").expect("valid");
    assert_eq!(c.retention.batch, None, "the store's own");
    let c = Config::from_toml("[retention]\nbatch = 500").expect("valid");
    assert_eq!(c.retention.batch, Some(500));
    let err = Config::from_toml("[retention]\nbatch = 0")
        .expect_err("invalid")
        .to_string();
    assert!(err.contains("[retention] batch"), "{err}");
}
