//! The PostgreSQL schema, as versioned migrations the host applies itself.
//!
//! Each migration runs once, in its own transaction, recorded in
//! `hookhost_migrations`; hosts starting at the same time take an advisory
//! lock first, so one of them migrates and the others find it done. A
//! released migration is never edited: changes go in a new one.

/// `(version, SQL)`, in order.
pub const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3)];

/// Taken for the duration of a migration run.
pub const MIGRATION_LOCK: i64 = 0x686f_6f6b_686f_7374; // "hookhost"

/// Ids are ULIDs as 16 big-endian bytes, so byte order is time order. Whole
/// records are kept as `json` (what the embedded store keeps as values) next
/// to the columns that are indexed or constrained; `json`, not `jsonb`,
/// because captured logs may hold `\u0000`, which `jsonb` refuses.
const V1: &str = r#"
CREATE TABLE events (
    id          bytea PRIMARY KEY,
    topic       text NOT NULL,
    received_ms bigint NOT NULL,
    record      json NOT NULL,
    body        bytea NOT NULL,
    -- The body again when it is JSON, to query with SQL.
    body_json   jsonb
);
CREATE INDEX events_topic ON events (topic, id);

CREATE TABLE idempotency (
    key   text PRIMARY KEY,
    event bytea NOT NULL REFERENCES events (id) ON DELETE CASCADE
);
CREATE INDEX idempotency_event ON idempotency (event);

-- status: pending (due at due_ms), running (leased to leased_by until
-- lease_until), paused (plugin not loaded), dead, succeeded.
CREATE TABLE deliveries (
    event       bytea NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    plugin      text NOT NULL,
    status      text NOT NULL,
    due_ms      bigint,
    lease_until bigint,
    leased_by   text,
    -- When it was claimed, while running.
    claimed_ms  bigint,
    order_key   text,
    record      json NOT NULL,
    PRIMARY KEY (event, seq)
);
CREATE INDEX deliveries_due ON deliveries (due_ms, event, seq) WHERE status = 'pending';
CREATE INDEX deliveries_leases ON deliveries (lease_until) WHERE status = 'running';
CREATE INDEX deliveries_paused ON deliveries (plugin) WHERE status = 'paused';
CREATE INDEX deliveries_dead ON deliveries (event, seq) WHERE status = 'dead';
CREATE INDEX deliveries_plugin ON deliveries (plugin, event);
-- A per-key line: its unfinished deliveries in order.
CREATE INDEX deliveries_lines ON deliveries (plugin, order_key, event, seq)
    WHERE order_key IS NOT NULL AND status IN ('pending', 'running', 'paused');

CREATE TABLE attempts (
    event  bytea NOT NULL,
    seq    integer NOT NULL,
    number integer NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (event, seq, number),
    FOREIGN KEY (event, seq) REFERENCES deliveries (event, seq) ON DELETE CASCADE
);

CREATE SEQUENCE kv_versions;
CREATE TABLE kv (
    plugin  text NOT NULL,
    key     text NOT NULL,
    version bigint NOT NULL,
    value   bytea NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE quarantine (
    id     bytea PRIMARY KEY,
    record json NOT NULL
);

CREATE TABLE plugin_versions (
    plugin    text NOT NULL,
    loaded_ms bigint NOT NULL,
    sha256    text NOT NULL,
    record    json NOT NULL,
    PRIMARY KEY (plugin, loaded_ms, sha256)
);

CREATE TABLE schedules (
    plugin  text NOT NULL,
    name    text NOT NULL,
    last_ms bigint NOT NULL,
    PRIMARY KEY (plugin, name)
);
"#;

/// Plugin versions shared by every host: the bytes of each version
/// published, and which version is current for each plugin (`NULL`: the
/// plugin was removed). `seq` grows with every change, so a host knows
/// which changes it has not applied yet.
const V2: &str = r#"
CREATE TABLE plugin_blobs (
    sha256 text PRIMARY KEY,
    bytes  bytea NOT NULL
);

CREATE SEQUENCE plugin_changes;
CREATE TABLE plugin_current (
    plugin     text PRIMARY KEY,
    sha256     text REFERENCES plugin_blobs (sha256),
    changed_ms bigint NOT NULL,
    seq        bigint NOT NULL
);
"#;

/// Each delivery's journal of answered outbound calls, in call order,
/// removed with its delivery.
const V3: &str = r#"
CREATE TABLE journal (
    event bytea NOT NULL,
    seq   integer NOT NULL,
    idx   integer NOT NULL,
    entry json NOT NULL,
    PRIMARY KEY (event, seq, idx),
    FOREIGN KEY (event, seq) REFERENCES deliveries (event, seq) ON DELETE CASCADE
);
"#;
