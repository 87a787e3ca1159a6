//! Range leases: how several relay processes share one outbox.
//!
//! - [`planner`] decides which live relay should own each range (pure);
//! - [`layout`] decides how ranges are split or merged when their number changes (pure);
//! - [`Lease`] is what a partition holds while it owns a range: its epoch (the fencing
//!   token every write for the range is conditional on) and a local deadline after which
//!   it must not publish, set well inside the lease's expiry so that nobody can have taken
//!   the range over before it stops.
//!
//! The database is the only coordination service: membership, leases and epochs are rows
//! (see `store::leases`), every tick runs under one advisory lock, and expiry is judged by
//! the database's clock. A relay measures its deadline from *before* its renewal was sent
//! with its own monotonic clock, so no two machines' clocks are ever compared.

pub mod layout;
pub mod planner;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::slots::SlotRange;

/// A range held by this relay, shared between the supervisor (which renews it) and the
/// partition (which checks it before every read and publish).
#[derive(Debug)]
pub struct Lease {
    pub range: SlotRange,
    /// Fencing token: the epoch drawn when this relay claimed the range.
    pub epoch: i64,
    base: Instant,
    /// Nanoseconds after `base` until which publishing is allowed.
    deadline_ns: AtomicU64,
    revoked: AtomicBool,
}

impl Lease {
    pub fn new(range: SlotRange, epoch: i64, valid_until: Instant) -> Self {
        let base = Instant::now();
        let lease = Lease {
            range,
            epoch,
            base,
            deadline_ns: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        };
        lease.extend_to(valid_until);
        lease
    }

    /// Moves the deadline (renewal); never backwards.
    pub fn extend_to(&self, valid_until: Instant) {
        let ns = valid_until.saturating_duration_since(self.base).as_nanos() as u64;
        self.deadline_ns.fetch_max(ns, Ordering::AcqRel);
    }

    /// Ends the lease locally at once and for good (released, lost or taken over).
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
    }

    /// True while this relay may still publish for the range.
    pub fn is_valid(&self) -> bool {
        self.remaining() > Duration::ZERO
    }

    pub fn remaining(&self) -> Duration {
        if self.revoked.load(Ordering::Acquire) {
            return Duration::ZERO;
        }
        let deadline = Duration::from_nanos(self.deadline_ns.load(Ordering::Acquire));
        deadline.saturating_sub(self.base.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_valid_until_its_deadline_and_never_moves_back() {
        let range = SlotRange { start: 0, end: 9 };
        let lease = Lease::new(range, 7, Instant::now() + Duration::from_secs(60));
        assert!(lease.is_valid());
        lease.extend_to(Instant::now());
        assert!(lease.is_valid(), "an earlier deadline must not shorten it");
        lease.revoke();
        assert!(!lease.is_valid());
        lease.extend_to(Instant::now() + Duration::from_secs(60));
        assert!(!lease.is_valid(), "a revoked lease stays revoked");
        let expired = Lease::new(range, 8, Instant::now());
        assert!(!expired.is_valid());
    }
}
