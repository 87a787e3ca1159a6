//! Per-key quarantine inside a partition (docs/operations.md, "Dead letters and
//! quarantine").
//!
//! Contract:
//! - when an event is dead-lettered (parked), its key joins the range's quarantine; every
//!   later event of that key the range reads is *held*: copied to `outbox_parked` behind
//!   the dead letter, in sequence order, and the range moves on. Other keys never wait;
//! - the hot path pays nothing while no key of the range is quarantined: the set is
//!   loaded when the partition takes the range and re-read (one index probe a second)
//!   only while it is not empty. Only an operator's release request can change it from
//!   outside, and only for keys already in it;
//! - a release (`outbox-relay dlq replay|skip`) is carried out here, at the start of a
//!   cycle, before the range reads anything: the key's unresolved entries are published
//!   in sequence order and acknowledged, then marked replayed and the key lifted in one
//!   fenced statement. The key's later events are read after that, so its order holds.
//!   Releases go through a stock producer (broker-named): a crash between publishing and
//!   recording republishes them (at-least-once, also with broker deduplication on).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use outbox_adapters::{PublishError, PulsarPublisher};

use super::batch::to_events;
use super::cycle::CycleError;
use crate::lease::Lease;
use crate::slots::SlotRange;
use crate::store::{dead_letters, Pool, StoreError};

/// How often a partition with quarantined keys looks for release requests.
const RECHECK: Duration = Duration::from_secs(1);

/// The quarantined keys of one range, as its partition knows them.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    /// Key -> an operator asked to release it.
    keys: HashMap<String, bool>,
    checked: Option<Instant>,
}

impl Quarantine {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// A key whose event was just dead-lettered.
    pub fn add(&mut self, key: String) {
        self.keys.entry(key).or_insert(false);
    }

    /// Loads the set on first use; afterwards re-reads it only while it is not empty.
    pub async fn refresh(&mut self, pool: &Pool, range: SlotRange) -> Result<(), StoreError> {
        let due = match self.checked {
            None => true,
            Some(at) => !self.keys.is_empty() && at.elapsed() >= RECHECK,
        };
        if !due {
            return Ok(());
        }
        let mut conn = pool.get().await?;
        let keys = dead_letters::quarantined(&mut conn, range).await?;
        self.keys = keys
            .into_iter()
            .map(|k| (k.key, k.release_requested))
            .collect();
        self.checked = Some(Instant::now());
        Ok(())
    }

    /// Keys an operator asked to release.
    pub fn releases(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, requested)| **requested)
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys
    }
}

/// What a release did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Released {
    pub published: usize,
    /// An entry failed for good again: the key stays quarantined, the request is withdrawn.
    pub refused: bool,
}

/// Publishes the unresolved entries of `key` in order, then records them and lifts the
/// key (see the module contract).
pub(crate) async fn release(
    pool: &Pool,
    lease: &Lease,
    relay_id: &str,
    publisher: &mut PulsarPublisher,
    quarantine: &mut Quarantine,
    key: &str,
) -> Result<Released, CycleError> {
    let rows = {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        dead_letters::release_entries(&mut conn, key).await?
    };
    let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    let slots: Vec<i32> = rows.iter().map(|row| row.slot).collect();
    let converted = to_events(rows);
    let sendable = converted.events.len();
    let outcome = if sendable == 0 {
        outbox_adapters::PublishOutcome::default()
    } else {
        publisher
            .publish(converted.events, || lease.is_valid())
            .await
    };
    let acknowledged = outcome.acknowledged.min(seqs.len());
    let all_done = acknowledged == seqs.len();
    {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        if acknowledged > 0 || all_done {
            dead_letters::finish_release(
                &mut conn,
                lease,
                relay_id,
                key,
                &seqs[..acknowledged],
                all_done,
            )
            .await?;
        }
        if all_done {
            quarantine.keys.remove(key);
            tracing::info!(range = %lease.range, key, published = acknowledged, "quarantined key released: its held events went out in order");
            return Ok(Released {
                published: acknowledged,
                refused: false,
            });
        }
        let failed_seq = seqs[acknowledged];
        let refusal = match outcome.failure {
            Some(PublishError::Halted) => {
                return Err(CycleError::LeaseExpired(lease.range.to_string()))
            }
            Some(failure) if failure.is_permanent() => Some(failure.to_string()),
            Some(failure) => {
                return Err(CycleError::FailedAt {
                    slot: slots[acknowledged],
                    seq: failed_seq,
                    error: failure,
                })
            }
            None => converted.unreadable.map(|(_, reason)| reason),
        };
        if let Some(reason) = refusal {
            dead_letters::release_failed(&mut conn, lease, key, failed_seq, &reason).await?;
            if let Some(requested) = quarantine.keys.get_mut(key) {
                *requested = false;
            }
            tracing::error!(range = %lease.range, key, seq = failed_seq, %reason, "a released dead letter failed again; its key stays quarantined");
            return Ok(Released {
                published: acknowledged,
                refused: true,
            });
        }
    }
    Ok(Released {
        published: acknowledged,
        refused: false,
    })
}
