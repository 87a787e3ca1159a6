//! Changing the number of ranges without ever owning a key twice. Pure, like the planner.
//!
//! The target layout is `slots::split(target)`. A current range that is also a target
//! range stays as it is (its owner keeps publishing). Every other range is *mismatched*:
//! nobody may claim it, its owner releases it, and once every mismatched range is free
//! they are all replaced at once by the target ranges covering the same slots. A key's
//! slot is thus covered by one held range at every moment, and a new range resumes where
//! the outbox says (pending rows are the progress).

use crate::slots::{self, SlotRange};

/// What the lease table needs to reach the target layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutStep {
    /// The rows already are the target layout.
    Settled,
    /// These ranges must be released before the layout can change; nobody may claim them.
    Drain(Vec<SlotRange>),
    /// Delete these free rows and insert these ranges (unowned) in one transaction.
    Recut {
        delete: Vec<SlotRange>,
        insert: Vec<SlotRange>,
    },
}

/// `current` must cover the slot space exactly once (the lease table's invariant);
/// `is_free(range)` says whether nobody holds a live lease on it.
pub fn next_step(
    current: &[SlotRange],
    target_ranges: u32,
    is_free: impl Fn(&SlotRange) -> bool,
) -> LayoutStep {
    let target = slots::split(target_ranges);
    if current.is_empty() {
        return LayoutStep::Recut {
            delete: Vec::new(),
            insert: target,
        };
    }
    let mismatched: Vec<SlotRange> = current
        .iter()
        .filter(|range| !target.contains(range))
        .copied()
        .collect();
    if mismatched.is_empty() {
        return LayoutStep::Settled;
    }
    if !mismatched.iter().all(&is_free) {
        return LayoutStep::Drain(mismatched);
    }
    let insert = target
        .into_iter()
        .filter(|range| !current.contains(range))
        .collect();
    LayoutStep::Recut {
        delete: mismatched,
        insert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SLOT_COUNT;

    fn covers_once(ranges: &[SlotRange]) -> bool {
        let mut sorted = ranges.to_vec();
        sorted.sort_by_key(|r| r.start);
        let mut next = 0;
        for range in sorted {
            if range.start != next || range.end < range.start {
                return false;
            }
            next = range.end + 1;
        }
        next == SLOT_COUNT
    }

    fn apply(current: &[SlotRange], delete: &[SlotRange], insert: &[SlotRange]) -> Vec<SlotRange> {
        current
            .iter()
            .filter(|r| !delete.contains(r))
            .chain(insert)
            .copied()
            .collect()
    }

    #[test]
    fn an_empty_table_gets_the_target() {
        match next_step(&[], 4, |_| true) {
            LayoutStep::Recut { delete, insert } => {
                assert!(delete.is_empty());
                assert_eq!(insert, slots::split(4));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_change_of_count_keeps_the_cover_and_waits_for_held_ranges() {
        for from in [1, 2, 3, 4, 8, 16] {
            for to in [1, 2, 3, 4, 8, 16] {
                let current = slots::split(from);
                let held = |_: &SlotRange| false;
                let step = next_step(&current, to, held);
                if from == to {
                    assert_eq!(step, LayoutStep::Settled);
                    continue;
                }
                let LayoutStep::Drain(mismatched) = step else {
                    panic!("{from}->{to}: held ranges must be drained first");
                };
                assert!(mismatched.iter().all(|r| !slots::split(to).contains(r)));
                let LayoutStep::Recut { delete, insert } = next_step(&current, to, |_| true) else {
                    panic!("{from}->{to}: free ranges are re-cut");
                };
                let after = apply(&current, &delete, &insert);
                assert!(covers_once(&after), "{from}->{to}: {after:?}");
                assert_eq!(next_step(&after, to, |_| false), LayoutStep::Settled);
            }
        }
    }

    #[test]
    fn ranges_shared_by_both_layouts_are_not_touched() {
        // 2 -> 4 splits both halves; 4 -> 2 merges; 3 -> 6 keeps nothing; 4 -> 8 nothing.
        let current = slots::split(4);
        let LayoutStep::Drain(mismatched) = next_step(&current, 4, |_| false) else {
            return;
        };
        assert!(mismatched.is_empty(), "same layout drains nothing");
    }
}
