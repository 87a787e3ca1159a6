//! The final summary of a `load` run: one JSON object (`--json`) or a table, both built
//! from [`Summary`], plus the targets printed beside the figures.
//!
//! Contract:
//! - the JSON object always has the keys `events, seconds, events_per_s,
//!   raw_events_per_s, ratio_to_raw, textbook_events_per_s, p50_ms, p99_ms, p999_ms,
//!   lost, reordered, duplicated, relay_peak_rss_mb, relay_cpu_s,
//!   pulsar_perf_events_per_s, mode, partitions, batch_size` (null when not measured),
//!   plus details;
//! - the headline (`events`, `seconds`, `events_per_s`) is the drain when one ran, else
//!   the steady phase; checks are summed over phases, peak RSS is the max;
//! - targets are reported, never asserted: PASS/MISS with the gap, or n/a with why.
//!   `passed` is false only when events were lost, reordered or unexpected, or a
//!   phase failed.

use serde::Serialize;

use crate::baselines::Baselines;
use crate::drain::DrainResult;
use crate::steady::SteadyResult;

mod format;
mod render;
mod targets;

pub use format::{ms, pct_of, ratio, thousands, times};
pub use render::render;
pub use targets::{targets, warnings, Target, TARGET_DRAIN_EVENTS_PER_S, TARGET_P99_MS};

/// Where and with what the run happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    pub run_id: String,
    pub work_dir: String,
    pub started_at: String,
    pub postgres_version: String,
    pub pulsar_version: String,
    pub payload_bytes: usize,
    pub keys: usize,
    pub key_dist: String,
    pub relay_settings: String,
    pub relay_stop: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub mode: String,
    pub partitions: u32,
    pub batch_size: u32,
    pub events: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    /// Drain: events / (relay ready → the relay's progress table counts them all), which
    /// leaves the verifying consumer out.
    pub relay_side_events_per_s: Option<f64>,
    pub raw_events_per_s: Option<f64>,
    pub ratio_to_raw: Option<f64>,
    pub textbook_events_per_s: Option<f64>,
    pub ratio_to_textbook: Option<f64>,
    pub pulsar_perf_events_per_s: Option<f64>,
    pub ratio_to_pulsar_perf: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    pub relay_peak_rss_mb: Option<f64>,
    pub relay_cpu_s: f64,
    pub passed: bool,
    pub failures: Vec<String>,
    /// Conditions that make figures pessimistic or limited by something else than the
    /// relay (busy machine, writers below the offered rate, consumer lag).
    pub warnings: Vec<String>,
    pub targets: Vec<Target>,
    pub drain: Option<DrainResult>,
    pub steady: Option<SteadyResult>,
    pub baselines: Baselines,
    pub run: RunInfo,
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        mode: &str,
        partitions: u32,
        batch_size: u32,
        drain: Option<DrainResult>,
        steady: Option<SteadyResult>,
        baselines: Baselines,
        mut failures: Vec<String>,
        run: RunInfo,
    ) -> Summary {
        let (events, seconds, events_per_s) = match (&drain, &steady) {
            (Some(d), _) => (d.events, d.seconds, d.events_per_s),
            (None, Some(s)) => (s.committed, s.seconds, s.events_per_s),
            (None, None) => (0, 0.0, 0.0),
        };
        let checks: Vec<&crate::phase::Checks> = drain
            .iter()
            .map(|d| &d.checks)
            .chain(steady.iter().map(|s| &s.checks))
            .collect();
        let sum = |f: fn(&crate::phase::Checks) -> u64| checks.iter().map(|c| f(c)).sum::<u64>();
        let (lost, reordered, duplicated, unexpected) = (
            sum(|c| c.lost),
            sum(|c| c.reordered),
            sum(|c| c.duplicated),
            sum(|c| c.unexpected),
        );
        if lost > 0 {
            failures.push(format!("{lost} committed events were never received"));
        }
        if reordered > 0 {
            failures.push(format!(
                "{reordered} events arrived behind a later event of their key"
            ));
        }
        if unexpected > 0 {
            failures.push(format!("{unexpected} received events were never committed"));
        }
        let peak_rss = drain
            .iter()
            .map(|d| d.relay_peak_rss_mb)
            .chain(steady.iter().map(|s| s.relay_peak_rss_mb))
            .reduce(f64::max);
        let relay_cpu_s = drain.as_ref().map_or(0.0, |d| d.relay_cpu_s)
            + steady.as_ref().map_or(0.0, |s| s.relay_cpu_s);
        let latency = steady.as_ref().and_then(|s| s.latency);
        let targets = targets(drain.as_ref(), steady.as_ref(), &baselines, peak_rss);
        let warnings = warnings(drain.as_ref(), steady.as_ref());
        Summary {
            mode: mode.to_owned(),
            partitions,
            batch_size,
            events,
            seconds,
            events_per_s,
            relay_side_events_per_s: drain.as_ref().and_then(|d| d.relay_events_per_s),
            raw_events_per_s: baselines.raw_rate(),
            ratio_to_raw: ratio(events_per_s, baselines.raw_rate()),
            textbook_events_per_s: baselines.textbook_rate(),
            ratio_to_textbook: ratio(events_per_s, baselines.textbook_rate()),
            pulsar_perf_events_per_s: baselines.perf_rate(),
            ratio_to_pulsar_perf: ratio(events_per_s, baselines.perf_rate()),
            p50_ms: latency.map(|l| l.p50_ms),
            p99_ms: latency.map(|l| l.p99_ms),
            p999_ms: latency.map(|l| l.p999_ms),
            lost,
            reordered,
            duplicated,
            unexpected,
            relay_peak_rss_mb: peak_rss,
            relay_cpu_s,
            passed: failures.is_empty(),
            failures,
            warnings,
            targets,
            drain,
            steady,
            baselines,
            run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_contract_keys() {
        let summary = Summary::build(
            "drain",
            4,
            1000,
            None,
            None,
            Baselines::skipped("test"),
            vec![],
            RunInfo::default(),
        );
        let value = serde_json::to_value(&summary).unwrap();
        for key in [
            "events",
            "seconds",
            "events_per_s",
            "raw_events_per_s",
            "ratio_to_raw",
            "textbook_events_per_s",
            "p50_ms",
            "p99_ms",
            "p999_ms",
            "lost",
            "reordered",
            "duplicated",
            "relay_peak_rss_mb",
            "relay_cpu_s",
            "pulsar_perf_events_per_s",
            "mode",
            "partitions",
            "batch_size",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert!(summary.passed);
        assert_eq!(summary.targets.len(), 6);
    }
}
