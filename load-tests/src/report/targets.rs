//! The targets printed beside the figures, and the warnings that say when a figure does
//! not show the relay's own limit.
//!
//! Contract: targets are reported, never asserted: PASS/MISS with the gap, or n/a with
//! the reason. Warnings flag a busy machine (other processes above
//! [`BUSY_MACHINE_SHARE`] of the CPU), writers below the offered rate, and a drain whose
//! headline is bounded by the verifying consumer rather than the relay.

use serde::Serialize;

use super::format::{ms, ratio, thousands};
use crate::baselines::Baselines;
use crate::drain::DrainResult;
use crate::steady::SteadyResult;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

/// One target beside the figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: Option<f64>,
    /// None: not measured in this run.
    pub pass: Option<bool>,
    /// How far from the goal, or why n/a.
    pub gap: String,
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "events/s" => format!("{} events/s", thousands(value)),
        "ms" => ms(value),
        "MB" => format!("{value:.1} MB"),
        "%" => format!("{value:.0}%"),
        "x" => format!("{value:.1}x"),
        _ => format!("{value} {unit}"),
    }
}

pub fn target(name: &str, goal: Goal, unit: &str, measured: Result<f64, &str>) -> Target {
    let goal_text = match goal {
        Goal::AtLeast(g) => format!(">= {}", show(g, unit)),
        Goal::AtMost(g) => format!("<= {}", show(g, unit)),
    };
    let (measured, pass, gap) = match measured {
        Err(why) => (None, None, why.to_owned()),
        Ok(value) => {
            let (pass, gap) = match goal {
                Goal::AtLeast(g) if value >= g => {
                    (true, format!("{} above", show(value - g, unit)))
                }
                Goal::AtLeast(g) => (
                    false,
                    format!(
                        "{} short ({:.0}% of target)",
                        show(g - value, unit),
                        100.0 * value / g
                    ),
                ),
                Goal::AtMost(g) if value <= g => (true, format!("{} under", show(g - value, unit))),
                Goal::AtMost(g) => (
                    false,
                    format!(
                        "{} over ({:.1}x the limit)",
                        show(value - g, unit),
                        value / g
                    ),
                ),
            };
            (Some(value), Some(pass), gap)
        }
    };
    Target {
        name: name.to_owned(),
        goal: goal_text,
        measured,
        pass,
        gap,
    }
}

pub const TARGET_DRAIN_EVENTS_PER_S: f64 = 50_000.0;
pub const TARGET_DRAIN_PCT_OF_RAW: f64 = 80.0;
pub const TARGET_STEADY_RATE: u64 = 5_000;
pub const TARGET_P99_MS: f64 = 25.0;
pub const TARGET_P50_MS: f64 = 5.0;
pub const TARGET_RSS_MB: f64 = 100.0;
pub const TARGET_TIMES_TEXTBOOK: f64 = 5.0;

/// The targets for whatever phases ran.
pub fn targets(
    drain: Option<&DrainResult>,
    steady: Option<&SteadyResult>,
    baselines: &Baselines,
    peak_rss: Option<f64>,
) -> Vec<Target> {
    let no_drain = "n/a: no drain phase";
    let drain_rate = drain.map(|d| d.events_per_s).ok_or(no_drain);
    let raw_pct = drain_rate.and_then(|r| {
        ratio(r, baselines.raw_rate())
            .map(|x| 100.0 * x)
            .ok_or("n/a: raw baseline not measured")
    });
    let textbook_x = drain_rate.and_then(|r| {
        ratio(r, baselines.textbook_rate()).ok_or("n/a: textbook baseline not measured")
    });
    let latency = steady
        .ok_or("n/a: no steady phase")
        .and_then(|s| s.latency.ok_or("n/a: no latency samples"));
    let rate_note = match steady.map(|s| s.offered_rate) {
        Some(Some(rate)) if rate != TARGET_STEADY_RATE => {
            format!(" (target set at {TARGET_STEADY_RATE}/s; this run offered {rate}/s)")
        }
        Some(None) => format!(" (target set at {TARGET_STEADY_RATE}/s; this run used --max-rate)"),
        _ => String::new(),
    };
    vec![
        target(
            "drain throughput",
            Goal::AtLeast(TARGET_DRAIN_EVENTS_PER_S),
            "events/s",
            drain_rate,
        ),
        target(
            "drain vs raw producer",
            Goal::AtLeast(TARGET_DRAIN_PCT_OF_RAW),
            "%",
            raw_pct,
        ),
        target(
            &format!("steady p99 at 5,000/s{rate_note}"),
            Goal::AtMost(TARGET_P99_MS),
            "ms",
            latency.map(|l| l.p99_ms),
        ),
        target(
            &format!("steady p50 at 5,000/s{rate_note}"),
            Goal::AtMost(TARGET_P50_MS),
            "ms",
            latency.map(|l| l.p50_ms),
        ),
        target(
            "relay peak RSS",
            Goal::AtMost(TARGET_RSS_MB),
            "MB",
            peak_rss.ok_or("n/a: relay not measured"),
        ),
        target(
            "drain vs textbook relay",
            Goal::AtLeast(TARGET_TIMES_TEXTBOOK),
            "x",
            textbook_x,
        ),
    ]
}

/// Share of the machine's CPU used by processes outside the run (compilers, other
/// tests) above which a phase's figures are flagged.
pub const BUSY_MACHINE_SHARE: f64 = 0.15;

fn busy_warning(phase: &str, cpu: &crate::phase::CpuSplit) -> Option<String> {
    let other = cpu.other_share();
    (other > BUSY_MACHINE_SHARE).then(|| {
        format!(
            "{phase}: other processes used {:.0}% of the machine's CPU: figures are pessimistic, run again on a quiet machine",
            100.0 * other
        )
    })
}

/// Why figures may not show the relay's own limits.
pub fn warnings(drain: Option<&DrainResult>, steady: Option<&SteadyResult>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = drain {
        out.extend(busy_warning("drain", &d.cpu));
        if let Some(relay_s) = d.relay_seconds {
            if d.seconds > relay_s * 1.15 {
                out.push(format!(
                    "drain: the relay had published everything after {relay_s:.1} s, the verifying consumer received the last event after {:.1} s: the consumer, not the relay, bounds the headline figure (relay-side {} events/s)",
                    d.seconds,
                    thousands(d.events as f64 / relay_s.max(1e-9))
                ));
            }
        }
    }
    if let Some(s) = steady {
        out.extend(busy_warning("steady", &s.cpu));
        if let Some(offered) = s.offered_rate {
            if s.committed_per_s < 0.95 * offered as f64 {
                out.push(format!(
                    "steady: the writers committed only {}/s of the offered {}/s ({:.0}%): PostgreSQL commits are the limit; latency is measured at the rate reached (try more --writers or --events-per-tx)",
                    thousands(s.committed_per_s),
                    thousands(offered as f64),
                    100.0 * s.committed_per_s / offered as f64
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_report_pass_miss_and_gap() {
        let pass = target("t", Goal::AtLeast(50_000.0), "events/s", Ok(60_000.0));
        assert_eq!(pass.pass, Some(true));
        assert_eq!(pass.gap, "10,000 events/s above");
        let miss = target("t", Goal::AtLeast(50_000.0), "events/s", Ok(40_000.0));
        assert_eq!(miss.pass, Some(false));
        assert_eq!(miss.gap, "10,000 events/s short (80% of target)");
        let over = target("t", Goal::AtMost(25.0), "ms", Ok(50.0));
        assert_eq!(over.pass, Some(false));
        assert_eq!(over.gap, "25.0 ms over (2.0x the limit)");
        let na = target("t", Goal::AtMost(25.0), "ms", Err("n/a: no steady phase"));
        assert_eq!(na.pass, None);
        assert_eq!(na.goal, "<= 25.0 ms");
    }
}
