//! The database-refusal clock: how long PostgreSQL has refused the relay's role, and the
//! relay's stop once that outlasts `database_refusal_grace_ms`.
//!
//! Contract:
//! - A refusal is a [`StoreError`] with [`StoreError::is_refusal`]: SQLSTATE 42501
//!   ("permission denied"), class 28, or a table, function or schema missing. A grant or
//!   a migration that lags a deploy heals it, so it is retried with backoff for the
//!   grace period, with `outbox_database_refused = 1`, and nothing is published
//!   meanwhile (nothing is lost or reordered either: the events stay pending).
//! - Each [`Source`] keeps its own clock, so a lease round that succeeds does not reset
//!   the clock of cycles refused on the event table, and the other way round.
//!   [`DatabaseRefusal::answered`] clears a source's clock; it costs one atomic load
//!   while nothing is refused (it runs after every successful cycle).
//! - Past the grace period the reason is recorded once ([`DatabaseRefusal::reason`]),
//!   logged once as an error, and the supervisor shuts the relay down;
//!   [`crate::RelayHandle::failure`] returns the reason, `/livez` turns 503 and the
//!   binary exits 1.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// Which of the relay's database users saw the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The supervisor's lease round.
    Leases = 0,
    /// The partitions' cycles (reads, progress, dead letters).
    Cycles = 1,
}

/// See the module documentation.
#[derive(Debug)]
pub struct DatabaseRefusal {
    /// Per [`Source`]: refused since.
    since: Mutex<[Option<Instant>; 2]>,
    /// Whether a clock runs: read after every successful cycle without the lock.
    any: AtomicBool,
    /// Why the relay stopped, once it did.
    reason: tokio::sync::watch::Sender<Option<String>>,
}

impl Default for DatabaseRefusal {
    fn default() -> Self {
        DatabaseRefusal {
            since: Mutex::default(),
            any: AtomicBool::new(false),
            reason: tokio::sync::watch::Sender::new(None),
        }
    }
}

impl DatabaseRefusal {
    /// Records a refusal seen by `source`. True once it has lasted `grace` or more: the
    /// relay must stop (the reason is then recorded and logged, once).
    pub(crate) fn refused(
        &self,
        source: Source,
        error: &StoreError,
        grace: Duration,
        metrics: &crate::metrics::Metrics,
    ) -> bool {
        let now = Instant::now();
        let first = {
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            self.any.store(true, Ordering::Relaxed);
            *since[source as usize].get_or_insert(now)
        };
        let refused_for = now.duration_since(first);
        if refused_for < grace {
            metrics.database_refused.set(1);
            tracing::warn!(source = ?source, refused_for_ms = refused_for.as_millis() as u64, grace_ms = grace.as_millis() as u64, %error,
                "PostgreSQL refuses the relay's role; retrying until the grace period (database_refusal_grace_ms) ends");
            return false;
        }
        let reason = format!(
            "PostgreSQL has refused the relay for {} ms (database_refusal_grace_ms = {}): {error}",
            refused_for.as_millis(),
            grace.as_millis()
        );
        let first_time = self.reason.send_if_modified(|stored| {
            if stored.is_some() {
                return false;
            }
            *stored = Some(reason.clone());
            true
        });
        if first_time {
            tracing::error!(%reason, "the relay stops: fix the grant or run the migration, then start it again");
        }
        true
    }

    /// `source` got an answer: its refusal, if any, is over.
    pub(crate) fn answered(&self, source: Source, metrics: &crate::metrics::Metrics) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if since[source as usize].take().is_some() {
            tracing::info!(source = ?source, "PostgreSQL answers the relay's role again");
        }
        if since.iter().all(Option::is_none) {
            self.any.store(false, Ordering::Relaxed);
            metrics.database_refused.set(0);
        }
    }

    /// Why the relay stopped for good, once it did.
    pub fn reason(&self) -> Option<String> {
        self.reason.borrow().clone()
    }

    /// Resolves with the reason once the relay stops for good.
    pub async fn stopped(&self) -> String {
        let mut receiver = self.reason.subscribe();
        let reason = match receiver.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives as long as `self`: unreachable while borrowed.
            Err(_) => futures::future::pending().await,
        };
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_stops_the_relay_only_after_the_grace_period_and_per_source() {
        let metrics = crate::metrics::Metrics::default();
        let clock = DatabaseRefusal::default();
        let denied = StoreError::Refused("permission denied (SQLSTATE 42501)".into());
        let grace = Duration::from_millis(50);
        assert!(!clock.refused(Source::Cycles, &denied, grace, &metrics));
        assert_eq!(metrics.database_refused.get(), 1);
        // The lease round answering does not reset the cycles' clock.
        clock.answered(Source::Leases, &metrics);
        std::thread::sleep(Duration::from_millis(60));
        assert!(clock.refused(Source::Cycles, &denied, grace, &metrics));
        let reason = clock.reason().expect("recorded");
        assert!(reason.contains("42501") && reason.contains("database_refusal_grace_ms"));
    }

    #[test]
    fn an_answer_ends_the_refusal_and_the_alert() {
        let metrics = crate::metrics::Metrics::default();
        let clock = DatabaseRefusal::default();
        let denied = StoreError::Schema("relation does not exist (SQLSTATE 42P01)".into());
        assert!(!clock.refused(Source::Leases, &denied, Duration::from_secs(60), &metrics));
        clock.answered(Source::Leases, &metrics);
        assert_eq!(metrics.database_refused.get(), 0);
        assert!(clock.reason().is_none());
        // Zero grace: at once.
        assert!(clock.refused(Source::Leases, &denied, Duration::ZERO, &metrics));
    }
}
