//! The queue: due deliveries, claims and leases, an attempt's finish, and
//! moving deliveries by hand (replay, retry, pause, resume, requeue).

use crate::model::{Attempt, DeliveryId};
use crate::{Backend, Claimed, DueEntry, Effects, Finish, Next, Route, Store, StoreError};
use ulid::Ulid;

impl Store {
    /// Pending deliveries due at or before `now_ms`, earliest first,
    /// starting after `after` (the last entry of the previous batch).
    pub async fn due(
        &self,
        now_ms: u64,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.due(now_ms, after, limit),
            Backend::Postgres(p) => p.due(now_ms, after, limit).await,
        }
    }

    /// When the first pending delivery due strictly after `now_ms` is due.
    pub async fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.next_due_after(now_ms),
            Backend::Postgres(p) => p.next_due_after(now_ms).await,
        }
    }

    /// Whether a due delivery must wait for an earlier one with its ordering
    /// key to end.
    pub async fn blocked(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.blocked(entry),
            Backend::Postgres(p) => p.blocked(entry).await,
        }
    }

    /// Claims a due delivery for an attempt and returns it with its event,
    /// or `None` if it is no longer due (claimed or changed meanwhile).
    pub async fn claim(&self, entry: &DueEntry) -> Result<Option<Claimed>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.claim(entry),
            Backend::Postgres(p) => p.claim(entry).await,
        }
    }

    /// Claims each of `entries` as [`Store::claim`] does, in order, and
    /// answers each apart: an entry's error leaves the others' claims.
    pub async fn claim_many(
        &self,
        entries: &[DueEntry],
    ) -> Vec<Result<Option<Claimed>, StoreError>> {
        match &self.backend {
            Backend::Embedded(s) => s.claim_many(entries),
            Backend::Postgres(p) => p.claim_many(entries).await,
        }
    }

    /// Records an attempt and moves its delivery on, committing a successful
    /// attempt's effects in the same transaction.
    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.finish_attempt(attempt, next, effects).await,
            Backend::Postgres(p) => p.finish_attempt(attempt, next, effects).await,
        }
    }

    /// How long a claim holds its delivery: `None` where claims do not
    /// expire.
    pub fn lease(&self) -> Option<std::time::Duration> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Postgres(p) => Some(p.lease()),
        }
    }

    /// How often a held claim must be renewed: `None` where claims do not
    /// expire (the embedded store holds them in memory).
    pub fn lease_renewal(&self) -> Option<std::time::Duration> {
        self.lease().map(|lease| lease / 3)
    }

    /// Extends this host's claim on `id` (see [`Store::lease_renewal`]);
    /// `false` when it no longer holds it.
    pub async fn renew_lease(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(_) => Ok(true),
            Backend::Postgres(p) => p.renew_lease(id).await,
        }
    }

    /// Gives back a claim the dispatcher stops running without a result (a
    /// kv conflict that persisted): the delivery is due again at once, on
    /// any host, and no attempt is recorded. `false` when this host no
    /// longer held it.
    pub async fn give_back(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => {
                s.unclaim(id);
                Ok(true)
            }
            Backend::Postgres(p) => p.give_back(id).await,
        }
    }

    /// Gives up the claim of an attempt whose result could not be recorded,
    /// so the delivery can run again: at once on sled; on PostgreSQL when
    /// its lease runs out (a lease is not released early: the result may
    /// still commit on its connection).
    pub fn unclaim(&self, id: DeliveryId) {
        match &self.backend {
            Backend::Embedded(s) => s.unclaim(id),
            Backend::Postgres(_) => {}
        }
    }

    /// Adds a pending delivery of stored event `event` for each route,
    /// optionally pinned to a version; returns their ids, or `None` if there
    /// is no such event.
    pub async fn replay(
        &self,
        event: Ulid,
        routes: &[Route],
        pinned_version: Option<&str>,
    ) -> Result<Option<Vec<DeliveryId>>, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.replay(event, routes, pinned_version),
            Backend::Postgres(p) => p.replay(event, routes, pinned_version).await,
        }
    }

    /// Sends a dead letter back to the queue, due now, with the retry
    /// policy's full budget. Returns false if it is not a dead letter.
    pub async fn retry_dead(&self, id: DeliveryId) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.retry_dead(id),
            Backend::Postgres(p) => p.retry_dead(id).await,
        }
    }

    /// Parks a due delivery whose plugin is not loaded.
    pub async fn pause(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.pause(entry),
            Backend::Postgres(p) => p.pause(entry).await,
        }
    }

    /// Makes every paused delivery of `plugin` due now; returns how many.
    pub async fn resume_paused(&self, plugin: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.resume_paused(plugin),
            Backend::Postgres(p) => p.resume_paused(plugin).await,
        }
    }

    /// Makes the deliveries left running by an unclean stop due again;
    /// returns how many. Call at startup, before any worker runs.
    pub async fn requeue_running(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Embedded(s) => s.requeue_running(),
            Backend::Postgres(p) => p.requeue_running().await,
        }
    }
}
