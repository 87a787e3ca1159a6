//! The assignment planner: which live relay should own each range. A pure function, so
//! every relay computes the same plan from the same rows (each tick runs under one
//! advisory lock), and so its properties are tested without a database.
//!
//! Contract, for ranges `R` and live relays `M > 0`:
//! - every range gets exactly one desired owner, a live relay (none when `M = 0`);
//! - each relay gets `R / M` or `R / M + 1` ranges;
//! - a relay keeps the ranges it holds up to its quota, and quotas' `+1` go to the relays
//!   holding most, so only ranges that must move do (few moves per change);
//! - a range a relay gave up as unhealthy (`avoid`) goes to another relay when one can
//!   take it.

use std::collections::BTreeMap;

/// One range as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeView {
    /// The live relay holding it now, if any (a dead or leaving holder counts as none).
    pub holder: Option<String>,
    /// A relay that gave this range up recently and should not get it back if another can.
    pub avoid: Option<String>,
}

/// Desired owner of each range, index for index. `live` need not be sorted.
pub fn plan(ranges: &[RangeView], live: &[String]) -> Vec<Option<String>> {
    let mut relays: Vec<&str> = live.iter().map(String::as_str).collect();
    relays.sort_unstable();
    relays.dedup();
    if relays.is_empty() {
        return vec![None; ranges.len()];
    }
    let is_live = |name: &str| relays.binary_search(&name).is_ok();

    // What each live relay holds now, ranges in order.
    let mut held: BTreeMap<&str, Vec<usize>> = relays.iter().map(|r| (*r, Vec::new())).collect();
    for (index, range) in ranges.iter().enumerate() {
        if let Some(holder) = range.holder.as_deref().filter(|h| is_live(h)) {
            held.entry(holder).or_default().push(index);
        }
    }

    // Quotas: the `+1`s go to the relays holding most, so fewer ranges move.
    let base = ranges.len() / relays.len();
    let extra = ranges.len() % relays.len();
    let mut by_holdings = relays.clone();
    by_holdings.sort_by(|a, b| held[b].len().cmp(&held[a].len()).then(a.cmp(b)));
    let quota: BTreeMap<&str, usize> = by_holdings
        .iter()
        .enumerate()
        .map(|(rank, relay)| (*relay, base + usize::from(rank < extra)))
        .collect();

    let mut desired: Vec<Option<String>> = vec![None; ranges.len()];
    let mut load: BTreeMap<&str, usize> = relays.iter().map(|r| (*r, 0)).collect();
    let others_exist = relays.len() > 1;
    for relay in &relays {
        for &index in &held[relay] {
            let avoided = others_exist && ranges[index].avoid.as_deref() == Some(*relay);
            if !avoided && load[relay] < quota[relay] {
                desired[index] = Some((*relay).to_owned());
                *load.get_mut(relay).expect("every live relay has a load") += 1;
            }
        }
    }
    for index in 0..ranges.len() {
        if desired[index].is_some() {
            continue;
        }
        let avoid = ranges[index].avoid.as_deref();
        let with_room: Vec<&str> = relays
            .iter()
            .copied()
            .filter(|relay| load[relay] < quota[relay])
            .collect();
        let chosen = with_room
            .iter()
            .find(|relay| Some(**relay) != avoid)
            .or_else(|| with_room.first())
            .copied();
        if let Some(relay) = chosen {
            desired[index] = Some(relay.to_owned());
            *load.get_mut(relay).expect("every live relay has a load") += 1;
        }
    }
    desired
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn view(holder: Option<&str>) -> RangeView {
        RangeView {
            holder: holder.map(str::to_owned),
            avoid: None,
        }
    }

    fn counts(desired: &[Option<String>]) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for owner in desired.iter().flatten() {
            *counts.entry(owner.clone()).or_default() += 1;
        }
        counts
    }

    /// The fewest ranges that must change owner: those without a live holder, plus what
    /// relays hold beyond the largest possible quota.
    fn necessary_moves(ranges: &[RangeView], live: &[String]) -> usize {
        let m = live.len();
        let (base, extra) = (ranges.len() / m, ranges.len() % m);
        let mut held: HashMap<&str, usize> = HashMap::new();
        let mut unheld = 0;
        for range in ranges {
            match range
                .holder
                .as_deref()
                .filter(|h| live.iter().any(|l| l == h))
            {
                Some(h) => *held.entry(h).or_default() += 1,
                None => unheld += 1,
            }
        }
        let mut holdings: Vec<usize> = held.values().copied().collect();
        holdings.sort_unstable_by(|a, b| b.cmp(a));
        let excess: usize = holdings
            .iter()
            .enumerate()
            .map(|(rank, h)| h.saturating_sub(base + usize::from(rank < extra)))
            .sum();
        unheld + excess
    }

    fn scenario() -> impl Strategy<Value = (Vec<RangeView>, Vec<String>)> {
        (1usize..40, 0usize..8, 0usize..4).prop_flat_map(|(ranges, live, dead)| {
            let names: Vec<String> = (0..live + dead).map(|i| format!("relay-{i}")).collect();
            let live_names: Vec<String> = names[..live].to_vec();
            let holder = proptest::option::of(proptest::sample::select(
                names
                    .clone()
                    .into_iter()
                    .chain(["gone".to_owned()])
                    .collect::<Vec<_>>(),
            ));
            (
                proptest::collection::vec(holder, ranges).prop_map(|holders| {
                    holders
                        .into_iter()
                        .map(|holder| RangeView {
                            holder,
                            avoid: None,
                        })
                        .collect()
                }),
                Just(live_names),
            )
        })
    }

    proptest! {
        #[test]
        fn every_range_has_one_live_owner_and_spread_is_even((ranges, live) in scenario()) {
            let desired = plan(&ranges, &live);
            prop_assert_eq!(desired.len(), ranges.len());
            if live.is_empty() {
                prop_assert!(desired.iter().all(Option::is_none));
                return Ok(());
            }
            for owner in &desired {
                let owner = owner.as_ref().expect("a range left unowned while relays are live");
                prop_assert!(live.contains(owner), "owner {} is not live", owner);
            }
            let counts = counts(&desired);
            let min = live.iter().map(|r| counts.get(r).copied().unwrap_or(0)).min().unwrap();
            let max = live.iter().map(|r| counts.get(r).copied().unwrap_or(0)).max().unwrap();
            prop_assert!(max - min <= 1, "uneven: {:?}", counts);
        }

        #[test]
        fn only_ranges_that_must_move_do((ranges, live) in scenario()) {
            prop_assume!(!live.is_empty());
            let desired = plan(&ranges, &live);
            let moved = ranges
                .iter()
                .zip(&desired)
                .filter(|(range, owner)| range.holder.as_ref() != owner.as_ref())
                .count();
            prop_assert_eq!(moved, necessary_moves(&ranges, &live));
        }

        #[test]
        fn a_settled_plan_is_stable((ranges, live) in scenario()) {
            prop_assume!(!live.is_empty());
            let first = plan(&ranges, &live);
            let settled: Vec<RangeView> = first.iter().map(|o| view(o.as_deref())).collect();
            prop_assert_eq!(plan(&settled, &live), first);
        }
    }

    #[test]
    fn a_joining_relay_takes_its_share_from_the_others() {
        let ranges: Vec<RangeView> = (0..6).map(|_| view(Some("a"))).collect();
        let live = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let counts = counts(&plan(&ranges, &live));
        assert_eq!(counts["a"], 2);
        assert_eq!(counts["b"], 2);
        assert_eq!(counts["c"], 2);
    }

    #[test]
    fn ranges_of_a_dead_relay_go_to_the_live_ones() {
        let ranges = vec![
            view(Some("a")),
            view(Some("dead")),
            view(Some("b")),
            view(None),
        ];
        let desired = plan(&ranges, &["a".to_owned(), "b".to_owned()]);
        assert_eq!(desired[0].as_deref(), Some("a"));
        assert_eq!(desired[2].as_deref(), Some("b"));
        let counts = counts(&desired);
        assert_eq!((counts["a"], counts["b"]), (2, 2));
    }

    #[test]
    fn a_range_given_up_goes_elsewhere_unless_nobody_else_is_there() {
        let given_up = RangeView {
            holder: None,
            avoid: Some("a".to_owned()),
        };
        let ranges = vec![given_up.clone(), view(None)];
        let desired = plan(&ranges, &["a".to_owned(), "b".to_owned()]);
        assert_eq!(desired[0].as_deref(), Some("b"));
        assert_eq!(desired[1].as_deref(), Some("a"));
        let alone = plan(&[given_up], &["a".to_owned()]);
        assert_eq!(alone[0].as_deref(), Some("a"));
    }
}
