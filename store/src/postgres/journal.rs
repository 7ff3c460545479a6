//! Each delivery's journal of answered outbound calls (`journal`), removed
//! with its delivery.

use super::{PgStore, decode, encode, id_bytes};
use crate::StoreError;
use crate::model::{DeliveryId, JournalEntry};

impl PgStore {
    pub async fn journaled(&self, delivery: DeliveryId) -> Result<Vec<JournalEntry>, StoreError> {
        let c = self.work.get().await?;
        c.query(
            "SELECT entry::text FROM journal WHERE event = $1 AND seq = $2 ORDER BY idx",
            &[&id_bytes(delivery.event), &(delivery.seq as i32)],
        )
        .await?
        .iter()
        .map(|row| decode("journal", row.get(0)))
        .collect()
    }

    /// Adds an entry, in place of one at the same place (an earlier
    /// attempt's call there, which this attempt's call did not match).
    pub async fn journal(
        &self,
        delivery: DeliveryId,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        let c = self.work.get().await?;
        c.execute(
            "INSERT INTO journal (event, seq, idx, entry) VALUES ($1, $2, $3, $4::text::json)
             ON CONFLICT (event, seq, idx) DO UPDATE SET entry = EXCLUDED.entry",
            &[
                &id_bytes(delivery.event),
                &(delivery.seq as i32),
                &(entry.index as i32),
                &encode(entry),
            ],
        )
        .await?;
        Ok(())
    }
}
