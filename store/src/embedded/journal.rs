//! Each delivery's journal of answered outbound calls (`journal`), removed
//! with its event.

use super::{SledStore, StoreError, decode, encode, keys};
use crate::model::{DeliveryId, JournalEntry};

impl SledStore {
    pub fn journaled(&self, delivery: DeliveryId) -> Result<Vec<JournalEntry>, StoreError> {
        let live = self.live()?;
        live.t
            .journal
            .scan_prefix(keys::delivery(delivery))
            .values()
            .map(|value| decode("journal", &value?))
            .collect()
    }

    /// Adds an entry; returns once it is on disk.
    pub async fn journal(
        &self,
        delivery: DeliveryId,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        {
            let s = self.writing()?;
            let written =
                s.t.journal
                    .insert(keys::attempt(delivery, entry.index), encode(entry));
            self.noted(written.map(drop).map_err(Into::into))?;
        }
        self.durable().await
    }
}
