//! The fixed hash space of key slots, and how partitions divide it.
//!
//! A key's slot is computed in PostgreSQL (`outbox_slot(key)`), by every writer the same
//! way, so the relay never hashes keys itself. Partitions own contiguous, disjoint slot
//! ranges that together cover `0..SLOT_COUNT`; a key therefore always belongs to exactly
//! one partition, which is what keeps its events in order.

use std::fmt;

/// Number of slots; must equal the SQL function `outbox_slot_count()` (checked at start).
pub const SLOT_COUNT: i32 = 1024;

/// An inclusive range of slots owned by one partition. Displayed as `start-end`, the
/// form `outbox-relay pause` and `replay --range` take.
///
/// ```
/// use outbox_engine::slots::SlotRange;
///
/// let range = SlotRange { start: 0, end: 255 };
/// assert_eq!(range.to_string(), "0-255");
/// assert_eq!(range.len(), 256);
/// assert!(range.contains(255) && !range.contains(256));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotRange {
    /// First slot of the range, from 0.
    pub start: i32,
    /// Last slot of the range, included; below [`SLOT_COUNT`].
    pub end: i32,
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl SlotRange {
    /// Number of slots in the range (`end - start + 1`).
    pub fn len(&self) -> i32 {
        self.end - self.start + 1
    }

    /// True when `end` is below `start`: the range holds no slot.
    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }

    /// Whether `slot` lies in the range, ends included.
    pub fn contains(&self, slot: i32) -> bool {
        (self.start..=self.end).contains(&slot)
    }
}

/// Splits the slot space into `partitions` contiguous ranges of near-equal size.
///
/// `partitions` must be between 1 and [`SLOT_COUNT`]; the config layer enforces it
/// (values outside are clamped). The first `SLOT_COUNT % partitions` ranges are one
/// slot longer. This is how the relay lays out its ranges: with a key's slot from
/// PostgreSQL (`SELECT outbox_slot('order-42')`; there is no Rust twin, so that every
/// writer hashes alike), it tells which range, and so which partition, holds the key.
///
/// ```
/// use outbox_engine::slots::{split, SlotRange, SLOT_COUNT};
///
/// let ranges = split(4);
/// assert_eq!(ranges[0], SlotRange { start: 0, end: 255 });
/// assert_eq!(ranges[3], SlotRange { start: 768, end: 1023 });
/// // Every slot belongs to exactly one range.
/// assert!((0..SLOT_COUNT).all(|slot| ranges.iter().filter(|r| r.contains(slot)).count() == 1));
///
/// // 1024 slots over 3 partitions: 342 + 341 + 341.
/// let lengths: Vec<i32> = split(3).iter().map(SlotRange::len).collect();
/// assert_eq!(lengths, [342, 341, 341]);
/// ```
pub fn split(partitions: u32) -> Vec<SlotRange> {
    let partitions = partitions.clamp(1, SLOT_COUNT as u32) as i32;
    let base = SLOT_COUNT / partitions;
    let extra = SLOT_COUNT % partitions;
    let mut start = 0;
    (0..partitions)
        .map(|i| {
            let len = base + i32::from(i < extra);
            let range = SlotRange {
                start,
                end: start + len - 1,
            };
            start += len;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_slot_exactly_once() {
        for partitions in [1, 2, 3, 4, 7, 8, 16, 100, 1023, 1024] {
            let ranges = split(partitions);
            assert_eq!(ranges.len(), partitions as usize);
            let mut expected = 0;
            for range in &ranges {
                assert_eq!(range.start, expected, "gap or overlap at {partitions}");
                assert!(!range.is_empty());
                expected = range.end + 1;
            }
            assert_eq!(expected, SLOT_COUNT);
            let sizes: Vec<i32> = ranges.iter().map(SlotRange::len).collect();
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "uneven split for {partitions}: {sizes:?}");
        }
    }

    #[test]
    fn out_of_range_partition_counts_are_clamped() {
        assert_eq!(split(0).len(), 1);
        assert_eq!(split(5000).len(), SLOT_COUNT as usize);
    }
}
