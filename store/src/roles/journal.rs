//! The journal: each delivery's answered outbound calls, so that a retry
//! is answered from it instead of calling again.

use crate::model::{DeliveryId, Journal, JournalEntry};
use crate::{Backend, Store, StoreError};
use std::future::Future;
use std::pin::Pin;

impl Store {
    /// The delivery's journaled calls, in order.
    pub async fn journaled(&self, delivery: DeliveryId) -> Result<Vec<JournalEntry>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.journaled(delivery),
            Backend::Postgres(p) => p.journaled(delivery).await,
        }
    }

    /// Adds `entry` to the delivery's journal; returns once it is durable.
    pub async fn journal(
        &self,
        delivery: DeliveryId,
        entry: &JournalEntry,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.journal(delivery, entry).await,
            Backend::Postgres(p) => p.journal(delivery, entry).await,
        }
    }
}

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

impl Journal for Store {
    fn journaled(&self, delivery: DeliveryId) -> Answer<'_, Vec<JournalEntry>> {
        Box::pin(async move {
            Store::journaled(self, delivery)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn journal<'a>(&'a self, delivery: DeliveryId, entry: &'a JournalEntry) -> Answer<'a, ()> {
        Box::pin(async move {
            Store::journal(self, delivery, entry)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
