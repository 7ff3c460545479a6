//! Plugins published to every host, their versions, kv reads, and bodies
//! held back by a contract.

use super::{PgStore, decode, encode, id_bytes, ms};
use crate::StoreError;
use crate::model::{PluginVersion, Quarantined, now_ms};
use crate::types::Published;
use deadpool_postgres::GenericClient;
use ulid::Ulid;

impl PgStore {
    pub async fn kv_get(
        &self,
        plugin: &str,
        key: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached("SELECT version, value FROM kv WHERE plugin = $1 AND key = $2")
            .await?;
        Ok(c.query_opt(&st, &[&plugin, &key])
            .await?
            .map(|row| (row.get::<_, i64>(0) as u64, row.get(1))))
    }

    pub async fn record_version(
        &self,
        plugin: &str,
        version: &PluginVersion,
    ) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO plugin_versions (plugin, loaded_ms, sha256, record) VALUES ($1, $2, $3, $4::text::json)
             ON CONFLICT DO NOTHING",
            &[&plugin, &ms(version.loaded_at_ms), &version.sha256, &encode(version)],
        )
        .await?;
        Ok(())
    }

    pub async fn versions(&self, plugin: &str) -> Result<Vec<PluginVersion>, StoreError> {
        let c = self.pool.get().await?;
        c.query(
            "SELECT record::text FROM plugin_versions WHERE plugin = $1 ORDER BY loaded_ms, sha256",
            &[&plugin],
        )
        .await?
        .iter()
        .map(|row| decode("plugin_versions", row.get(0)))
        .collect()
    }

    /// Makes `sha256` the current version of `plugin` for every host,
    /// keeping its bytes, unless it already is, or (with `unless_since`) the
    /// current version changed at or after that time. Returns whether it
    /// changed.
    pub async fn publish_plugin(
        &self,
        plugin: &str,
        sha256: &str,
        bytes: &[u8],
        unless_since: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // Serialises publications of one plugin (the row may not exist yet).
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('plugin'), hashtext($1))",
            &[&plugin],
        )
        .await?;
        let current = tx
            .query_opt(
                "SELECT sha256, changed_ms FROM plugin_current WHERE plugin = $1",
                &[&plugin],
            )
            .await?;
        if let Some(row) = &current {
            let (sha, changed): (Option<String>, i64) = (row.get(0), row.get(1));
            if sha.as_deref() == Some(sha256)
                || unless_since.is_some_and(|since| ms(since) <= changed)
            {
                return Ok(false);
            }
        }
        tx.execute(
            "INSERT INTO plugin_blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&sha256, &bytes],
        )
        .await?;
        tx.execute(
            "INSERT INTO plugin_current (plugin, sha256, changed_ms, seq)
             VALUES ($1, $2, $3, nextval('plugin_changes'))
             ON CONFLICT (plugin) DO UPDATE SET sha256 = EXCLUDED.sha256,
                 changed_ms = EXCLUDED.changed_ms, seq = EXCLUDED.seq",
            &[&plugin, &sha256, &ms(now_ms())],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks `plugin` removed for every host; returns whether it was there.
    pub async fn unpublish_plugin(&self, plugin: &str) -> Result<bool, StoreError> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE plugin_current SET sha256 = NULL, changed_ms = $2, seq = nextval('plugin_changes')
                 WHERE plugin = $1 AND sha256 IS NOT NULL",
                &[&plugin, &ms(now_ms())],
            )
            .await?;
        Ok(n > 0)
    }

    /// Every plugin's current version.
    pub async fn published_plugins(&self) -> Result<Vec<Published>, StoreError> {
        let c = self.pool.get().await?;
        let st = c
            .prepare_cached(
                "SELECT plugin, sha256, changed_ms, seq FROM plugin_current ORDER BY plugin",
            )
            .await?;
        Ok(c.query(&st, &[])
            .await?
            .iter()
            .map(|row| Published {
                plugin: row.get(0),
                sha256: row.get(1),
                changed_ms: row.get::<_, i64>(2).max(0) as u64,
                seq: row.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    /// The bytes of a published version.
    pub async fn plugin_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT bytes FROM plugin_blobs WHERE sha256 = $1",
            &[&sha256],
        )
        .await?
        .map(|row| row.get(0)))
    }

    pub async fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute(
            "INSERT INTO quarantine (id, record) VALUES ($1, $2::text::json) ON CONFLICT DO NOTHING",
            &[&id_bytes(record.id), &encode(record)],
        )
        .await?;
        Ok(())
    }

    pub async fn quarantined(
        &self,
        before: Option<Ulid>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, StoreError> {
        let c = self.pool.get().await?;
        let before = before.map_or_else(|| vec![0xff; 17], id_bytes);
        c.query(
            "SELECT record::text FROM quarantine WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before, &(limit.clamp(1, 1000) as i64)],
        )
        .await?
        .iter()
        .map(|row| decode("quarantine", row.get(0)))
        .collect()
    }

    pub async fn quarantined_one(&self, id: Ulid) -> Result<Option<Quarantined>, StoreError> {
        let c = self.pool.get().await?;
        c.query_opt(
            "SELECT record::text FROM quarantine WHERE id = $1",
            &[&id_bytes(id)],
        )
        .await?
        .map(|row| decode("quarantine", row.get(0)))
        .transpose()
    }

    pub async fn release(&self, id: Ulid) -> Result<(), StoreError> {
        let c = self.pool.get().await?;
        c.execute("DELETE FROM quarantine WHERE id = $1", &[&id_bytes(id)])
            .await?;
        Ok(())
    }
}
