//! Checks what a consumer received against the outbox guarantees: nothing lost, per-key
//! order, duplicates counted. Used by the integration tests and the load driver, and
//! usable by consumers that want to watch a stream.
//!
//! Order is judged on first deliveries: a redelivered event (same sequence number) is a
//! duplicate, not a reorder, since at-least-once delivery republishes after a crash.

use std::collections::{HashMap, HashSet};

/// One message as the checker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message key (the event's ordering key).
    pub key: String,
    /// The `seq` property.
    pub seq: i64,
}

/// A first delivery of `key` that came after a higher sequence number of the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorder {
    /// The key whose order broke.
    pub key: String,
    /// The event that came late.
    pub seq: i64,
    /// The higher sequence number of the same key received before it.
    pub after_seq: i64,
}

/// Running tally of a stream.
///
/// ```
/// use outbox_adapters::verify::{Delivery, DeliveryLedger};
///
/// let mut ledger = DeliveryLedger::default();
/// for (key, seq) in [("a", 1), ("b", 2), ("a", 4), ("a", 4), ("b", 5)] {
///     ledger.record(Delivery { key: key.into(), seq });
/// }
/// assert_eq!((ledger.received, ledger.distinct(), ledger.duplicates), (5, 4, 1));
/// assert!(ledger.reorders.is_empty());
/// assert_eq!(ledger.missing(&[1, 2, 3, 4, 5]), vec![3]);
///
/// ledger.record(Delivery { key: "a".into(), seq: 3 }); // after a's 4: out of order
/// assert_eq!(ledger.reorders[0].after_seq, 4);
/// ```
#[derive(Debug, Default)]
pub struct DeliveryLedger {
    last_by_key: HashMap<String, i64>,
    seen: HashSet<i64>,
    /// Messages received, duplicates included.
    pub received: u64,
    /// Messages whose sequence number was received before (redeliveries).
    pub duplicates: u64,
    /// First deliveries that came after a higher sequence number of their key.
    pub reorders: Vec<Reorder>,
}

impl DeliveryLedger {
    /// Counts one received message: a duplicate if its `seq` was seen, else checked
    /// against the last first delivery of its key.
    pub fn record(&mut self, delivery: Delivery) {
        self.received += 1;
        if !self.seen.insert(delivery.seq) {
            self.duplicates += 1;
            return;
        }
        let last = self
            .last_by_key
            .entry(delivery.key.clone())
            .or_insert(i64::MIN);
        if delivery.seq < *last {
            self.reorders.push(Reorder {
                key: delivery.key,
                seq: delivery.seq,
                after_seq: *last,
            });
        } else {
            *last = delivery.seq;
        }
    }

    /// Distinct events received.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }

    /// Whether `seq` was received at least once.
    pub fn has_seen(&self, seq: i64) -> bool {
        self.seen.contains(&seq)
    }

    /// Expected sequence numbers never received.
    pub fn missing<'a>(&self, expected: impl IntoIterator<Item = &'a i64>) -> Vec<i64> {
        expected
            .into_iter()
            .filter(|seq| !self.seen.contains(seq))
            .copied()
            .collect()
    }

    /// Received sequence numbers that are not in `allowed` (for example rolled back).
    pub fn unexpected(&self, allowed: &HashSet<i64>) -> Vec<i64> {
        let mut extra: Vec<i64> = self.seen.difference(allowed).copied().collect();
        extra.sort_unstable();
        extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(key: &str, seq: i64) -> Delivery {
        Delivery {
            key: key.into(),
            seq,
        }
    }

    #[test]
    fn redelivery_is_a_duplicate_not_a_reorder() {
        let mut ledger = DeliveryLedger::default();
        for delivery in [
            d("a", 1),
            d("a", 2),
            d("b", 3),
            d("a", 1),
            d("a", 2),
            d("a", 4),
        ] {
            ledger.record(delivery);
        }
        assert_eq!(ledger.duplicates, 2);
        assert!(ledger.reorders.is_empty());
        assert_eq!(ledger.distinct(), 4);
        assert_eq!(ledger.missing(&[1, 2, 3, 4, 5]), vec![5]);
    }

    #[test]
    fn a_first_delivery_behind_a_later_one_is_a_reorder() {
        let mut ledger = DeliveryLedger::default();
        ledger.record(d("a", 5));
        ledger.record(d("b", 1));
        ledger.record(d("a", 3));
        assert_eq!(
            ledger.reorders,
            vec![Reorder {
                key: "a".into(),
                seq: 3,
                after_seq: 5
            }]
        );
        let allowed: HashSet<i64> = [1, 5].into_iter().collect();
        assert_eq!(ledger.unexpected(&allowed), vec![3]);
    }
}
