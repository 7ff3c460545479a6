//! A claim's lease: renewed while its attempt runs, given back early when
//! the dispatcher stops running it without a result.
//!
//! A lease outlasts one attempt's deadline, but one claim can take longer
//! than one attempt: kv-conflict re-runs, the compile of a pinned version,
//! waits for a plugin's slot between re-runs. The dispatcher renews the
//! lease every third of its length while it holds the claim, so only a host
//! that stopped or stalled loses a delivery to another.

use super::{DB_NOW_MS, PgStore, id_bytes, ms};
use crate::StoreError;
use crate::model::DeliveryId;
use std::time::Duration;

impl PgStore {
    /// How long a claim holds its delivery.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// Extends this host's lease on delivery `id` to a full lease from now;
    /// `false` when this host no longer holds it (it finished, or its lease
    /// ran out and another host took it).
    pub async fn renew_lease(&self, id: DeliveryId) -> Result<bool, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(&format!(
                "UPDATE deliveries SET lease_until = {DB_NOW_MS} + $3
                 WHERE event = $1 AND seq = $2 AND status = 'running' AND leased_by = $4"
            ))
            .await?;
        let renewed = c
            .execute(
                &st,
                &[
                    &id_bytes(id.event),
                    &(id.seq as i32),
                    &ms(self.lease_ms),
                    &self.me,
                ],
            )
            .await?;
        Ok(renewed == 1)
    }

    /// Gives back this host's claim on delivery `id` without recording an
    /// attempt: it is due again at once, for any host. `false` when this
    /// host no longer holds it.
    pub async fn give_back(&self, id: DeliveryId) -> Result<bool, StoreError> {
        let c = self.work.get().await?;
        let st = c
            .prepare_cached(
                "UPDATE deliveries SET status = 'pending', lease_until = NULL, leased_by = NULL
                 WHERE event = $1 AND seq = $2 AND status = 'running' AND leased_by = $3",
            )
            .await?;
        let given = c
            .execute(&st, &[&id_bytes(id.event), &(id.seq as i32), &self.me])
            .await?;
        Ok(given == 1)
    }
}
