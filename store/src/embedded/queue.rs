//! The queue: due deliveries, claims, and an attempt's finish (through
//! the finisher, which records many attempts in one transaction).

use super::super::types::{Claimed, DueEntry, Effects, Finish, Next, record_of};
use super::tx::{Abort, EventRows, EventTx, MoveTx, apply_kv, finish_tx};
use super::{SledStore, StoreError, decode, encode, keys};
use crate::model::{Attempt, Delivery, DeliveryId, DeliveryStatus, now_ms};
use sled::{IVec, Transactional};
use ulid::Ulid;

impl SledStore {
    /// Pending deliveries due at or before `now_ms`, earliest first,
    /// starting after `after` (the last entry of the previous batch),
    /// leaving out those claimed. A first batch (`after` is `None`) starts
    /// at the scan floor (`floor.rs`), below which every entry is claimed,
    /// and moves the floor up past the claimed entries it meets.
    pub fn due(
        &self,
        now_ms: u64,
        after: Option<&DueEntry>,
        limit: usize,
    ) -> Result<Vec<DueEntry>, StoreError> {
        let live = self.live()?;
        // One hold of sled's lock for the whole scan, not one per entry: a
        // transaction holds it alone, and under load each step of the scan
        // would wait for one.
        let _together = sled::read_together();
        let end = keys::due(
            now_ms,
            DeliveryId {
                event: Ulid(u128::MAX),
                seq: u32::MAX,
            },
        );
        let scan = after.is_none().then(|| live.floor.scan());
        let start = match (after, scan.as_ref().and_then(|s| s.from)) {
            (Some(e), _) => std::ops::Bound::Excluded(keys::due(e.at_ms, e.delivery)),
            (None, Some(floor)) => std::ops::Bound::Included(floor),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        // The first unclaimed entry met, else the last claimed one; and the
        // unclaimed entries returned.
        let mut floor: Option<super::floor::DueKey> = None;
        let mut run = Vec::new();
        for item in live.t.due.range((start, std::ops::Bound::Included(end))) {
            if out.len() == limit {
                break;
            }
            let (k, v) = item?;
            let (at_ms, delivery) = keys::parse_due(&k).ok_or(StoreError::Corrupt {
                tree: "due",
                message: "bad key".into(),
            })?;
            let key = keys::due(at_ms, delivery);
            if out.is_empty() {
                floor = Some(key);
            }
            if self.claims().contains_key(&delivery) {
                continue;
            }
            if scan.is_some() {
                run.push(key);
            }
            out.push(DueEntry {
                at_ms,
                delivery,
                plugin: String::from_utf8_lossy(&v).into_owned(),
            });
        }
        if let (Some(scan), Some(floor)) = (scan, floor) {
            live.floor.raise(&scan, floor, run);
        }
        Ok(out)
    }

    /// When the first pending delivery due strictly after `now_ms` is due.
    pub fn next_due_after(&self, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let start = keys::due(
            now_ms.saturating_add(1),
            DeliveryId {
                event: Ulid(0),
                seq: 0,
            },
        );
        match self.live()?.t.due.range(start..).next() {
            None => Ok(None),
            Some(item) => Ok(keys::parse_due(&item?.0).map(|(at, _)| at)),
        }
    }

    /// Whether a due delivery must wait for an earlier one with its ordering
    /// key to end.
    pub fn blocked(&self, entry: &DueEntry) -> Result<bool, StoreError> {
        let Some(d) = self.delivery(entry.delivery)? else {
            return Ok(false);
        };
        let Some(key) = &d.order_key else {
            return Ok(false);
        };
        let prefix = keys::ordered_prefix(&d.plugin, key);
        let first = self
            .live()?
            .t
            .ordered
            .scan_prefix(&prefix)
            .keys()
            .next()
            .transpose()?;
        Ok(first
            .and_then(|k| keys::parse_delivery(&k[prefix.len()..]))
            .is_some_and(|head| head != d.id))
    }

    /// Claims a due delivery for an attempt and returns it with its event,
    /// or `None` if it is no longer due (claimed or changed meanwhile). The
    /// claim is kept in memory only (see the module's invariants): nothing is
    /// written until the attempt's record.
    pub fn claim(&self, entry: &DueEntry) -> Result<Option<Claimed>, StoreError> {
        if let Some(reason) = self.failure() {
            return Err(StoreError::Unavailable(reason));
        }
        let live = self.live()?;
        let _together = sled::read_together(); // one wait for its reads (see `due`)
        let id = entry.delivery;
        // The claims are never held while sled is called: a sled transaction
        // holds a global lock that every read waits for, and readers look
        // the claims up. Only the dispatcher claims, and a due entry leaves
        // `due` only by its claim's record or the dispatcher's own pause, so
        // what is read here still holds when the claim is taken.
        if self.claims().contains_key(&id) || live.t.due.get(keys::due(entry.at_ms, id))?.is_none()
        {
            return Ok(None);
        }
        let Some(raw) = live.t.deliveries.get(keys::delivery(id))? else {
            return Ok(None);
        };
        let mut delivery: Delivery = decode("deliveries", &raw)?;
        if delivery.status != DeliveryStatus::Pending {
            return Ok(None);
        }
        {
            let mut claims = self.claims();
            if claims.contains_key(&id) {
                return Ok(None);
            }
            claims.insert(id, entry.at_ms);
        }
        live.floor.claimed(keys::due(entry.at_ms, id));
        delivery.status = DeliveryStatus::Running;
        delivery.updated_at_ms = now_ms();
        let event = match self.event(id.event) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(StoreError::Corrupt {
                tree: "events",
                message: format!("delivery {id} has no event"),
            }),
            Err(e) => Err(e),
        };
        match event {
            Ok((event, body)) => Ok(Some(Claimed {
                delivery,
                event,
                body,
            })),
            Err(e) => {
                self.unclaim(id);
                Err(e)
            }
        }
    }

    /// Claims each of `entries` in order, as `claim` does, with sled's lock
    /// held once for all their reads (see `due`).
    pub fn claim_many(&self, entries: &[DueEntry]) -> Vec<Result<Option<Claimed>, StoreError>> {
        let _together = sled::read_together();
        entries.iter().map(|e| self.claim(e)).collect()
    }

    /// Gives up the claim of an attempt whose result could not be recorded:
    /// its delivery is due again.
    pub fn unclaim(&self, id: DeliveryId) {
        let due_at = self.claims().remove(&id);
        // Once the claim is gone: the next scan must reach its entry.
        if let (Some(at), Ok(live)) = (due_at, self.live()) {
            live.floor.lower_to(at, id);
        }
    }

    /// Drops the claim of an attempt whose record removed its `due` entry:
    /// nothing is left for a scan to reach, so the floor stays.
    fn drop_claim(&self, id: DeliveryId) {
        self.claims().remove(&id);
    }

    /// Records an attempt and moves its delivery on, committing a successful
    /// attempt's effects in the same transaction. A result without effects
    /// is recorded in a batch with others (see `finish.rs`).
    pub async fn finish_attempt(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: Option<&Effects>,
    ) -> Result<Finish, StoreError> {
        let id = attempt.delivery;
        // Only the attempt holding the claim may record a result. The other
        // claims are the attempts still running.
        let (claim, running) = {
            let claims = self.claims();
            (claims.get(&id).copied(), claims.len())
        };
        let Some(due_at) = claim else {
            return Ok(Finish::Stale);
        };
        let effects = effects
            .filter(|e| !(e.reads.is_empty() && e.writes.is_empty() && e.emitted.is_empty()));
        let Some(effects) = effects else {
            if let Some(reason) = self.failure() {
                return Err(StoreError::Unavailable(reason));
            }
            let live = self.live()?;
            // A lone attempt is recorded at once. With others running, it
            // joins their batch: every sled transaction costs two log
            // writes, each synced, whatever its size.
            if running == 1
                && let Some(result) = live.finisher.record_alone(attempt, next, due_at)
            {
                return result;
            }
            let (done, answer) = tokio::sync::oneshot::channel();
            live.finisher.submit(super::finish::Job {
                encoded: encode(attempt).into(),
                attempt: attempt.clone(),
                next,
                due_at,
                done,
            })?;
            return answer.await.map_err(|_| StoreError::Closed)?;
        };
        self.finish_with_effects(attempt, next, effects, due_at)
    }

    /// [`SledStore::finish_attempt`] of a result with effects, in its own
    /// transaction: its kv reads may conflict.
    fn finish_with_effects(
        &self,
        attempt: &Attempt,
        next: Next,
        effects: &Effects,
        due_at: u64,
    ) -> Result<Finish, StoreError> {
        let id = attempt.delivery;
        let s = self.writing()?;
        let t = &s.t;
        let now = now_ms();
        let encoded: IVec = encode(attempt).into();
        let emitted_rows: Vec<EventRows> = effects
            .emitted
            .iter()
            .map(|em| {
                let mut record = record_of(self.new_id(), &em.event, now);
                record.emitted_by = Some(id);
                EventRows::new(&record, &em.event.body, &em.subscribers)
            })
            .collect();
        let result = {
            let trees = (
                &t.deliveries,
                &t.due,
                &t.dead,
                &t.attempts,
                &t.kv,
                &t.events,
                &t.idempotency,
                &t.ordered,
            );
            trees.transaction(
                |(deliveries, due, dead, attempts, kv, events, idempotency, ordered)| {
                    let moves = MoveTx {
                        deliveries,
                        due,
                        dead,
                        attempts,
                        ordered: Some(ordered),
                    };
                    let d = moves.claimed_delivery(id, due_at)?;
                    apply_kv(kv, &d.plugin, effects)?;
                    let tx = EventTx {
                        events,
                        idempotency,
                        deliveries,
                        due,
                        ordered: Some(ordered),
                    };
                    let mut added = 0;
                    for rows in &emitted_rows {
                        if tx.insert(rows)?.is_none() {
                            added += rows.deliveries();
                        }
                    }
                    moves.record(d, due_at, (attempt, &encoded), next, now)?;
                    Ok(added)
                },
            )
        };
        Ok(match self.noted(finish_tx(result))? {
            Ok(added) => {
                self.drop_claim(id);
                if let Ok(live) = self.live() {
                    if let Next::RetryAt(at) = next {
                        live.floor.lower_to(at, id);
                    }
                    if let Some(first) = emitted_rows.iter().filter_map(EventRows::first_due).min()
                    {
                        live.floor.lower(first);
                    }
                }
                self.queued_add(added);
                if !matches!(next, Next::RetryAt(_)) {
                    self.queued_sub(1);
                }
                Finish::Committed
            }
            // The claim holds: the attempt runs again.
            Err(Abort::Conflict) => Finish::Conflict,
            Err(_) => {
                self.unclaim(id);
                Finish::Stale
            }
        })
    }
}
