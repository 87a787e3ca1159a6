//! The human-readable summary of a `load` run (stdout, or stderr with `--json`).
//!
//! Contract: every throughput figure is shown with its ratio to the raw producer and
//! its multiple of the textbook relay; then latency, delivery checks, resources (with
//! the CPU split), warnings, targets and the verdict.

use super::format::{ms, opt, pct_of, thousands, times};
use super::Summary;
use crate::baselines::Baselines;

/// One throughput row: figure, ratio to raw, multiple of textbook.
fn rate_row(out: &mut String, label: &str, rate: f64, b: &Baselines) {
    out.push_str(&format!(
        "  {label:<48} {:>12}  {:>7}  {:>9}\n",
        thousands(rate),
        pct_of(rate, b.raw_rate()),
        times(rate, b.textbook_rate())
    ));
}

/// The human-readable summary.
pub fn render(s: &Summary) -> String {
    let b = &s.baselines;
    let mut out = String::new();
    out.push_str(&format!(
        "\noutbox-load {} — {} partitions, batch size {}, {}-byte payloads, {} keys ({}); relay settings: {}\n",
        s.mode, s.partitions, s.batch_size, s.run.payload_bytes, s.run.keys, s.run.key_dist, s.run.relay_settings
    ));
    out.push_str(&format!(
        "PostgreSQL {}, Pulsar {}, run {} ({})\n\n",
        s.run.postgres_version, s.run.pulsar_version, s.run.run_id, s.run.work_dir
    ));
    out.push_str(&format!(
        "  {:<48} {:>12}  {:>7}  {:>9}\n",
        "throughput", "events/s", "vs raw", "vs textbk"
    ));
    if let Some(d) = &s.drain {
        rate_row(
            &mut out,
            &format!("drain {} events: relay ready -> last received", d.events),
            d.events_per_s,
            b,
        );
        if let Some(r) = d.relay_events_per_s {
            rate_row(
                &mut out,
                "drain: relay ready -> relay's progress counts all",
                r,
                b,
            );
        }
        rate_row(
            &mut out,
            "backlog fill (outbox_enqueue_batch)",
            d.fill_events_per_s,
            b,
        );
    }
    if let Some(st) = &s.steady {
        rate_row(
            &mut out,
            &format!(
                "steady: received (offered {})",
                opt(st.offered_rate, |r| format!("{}/s", thousands(r as f64)))
            ),
            st.events_per_s,
            b,
        );
        rate_row(
            &mut out,
            "steady: committed by writers",
            st.committed_per_s,
            b,
        );
    }
    match &b.raw {
        Some(r) => rate_row(
            &mut out,
            &format!(
                "raw producer loop ({} producers, pulsar crate)",
                r.producers
            ),
            r.events_per_s,
            b,
        ),
        None => out.push_str(&format!(
            "  {:<48} {:>12}  ({})\n",
            "raw producer loop",
            "-",
            b.raw_missing.as_deref().unwrap_or("?")
        )),
    }
    match &b.pulsar_perf {
        Some(r) => rate_row(
            &mut out,
            &format!(
                "pulsar-perf produce ({} producers, Java){}",
                r.producers,
                r.aggregated_events_per_s
                    .map_or(String::new(), |a| format!(" [own aggr. {}]", thousands(a)))
            ),
            r.events_per_s,
            b,
        ),
        None => out.push_str(&format!(
            "  {:<48} {:>12}  (skipped: {})\n",
            "pulsar-perf produce",
            "-",
            b.pulsar_perf_missing.as_deref().unwrap_or("?")
        )),
    }
    match &b.textbook {
        Some(t) => rate_row(
            &mut out,
            &format!(
                "textbook relay ({} of {} rows{})",
                t.published,
                t.prefilled,
                if t.time_boxed {
                    format!(", {:.0} s box", t.time_box_s)
                } else {
                    String::new()
                }
            ),
            t.events_per_s,
            b,
        ),
        None => out.push_str(&format!(
            "  {:<48} {:>12}  ({})\n",
            "textbook relay",
            "-",
            b.textbook_missing.as_deref().unwrap_or("?")
        )),
    }
    if let Some(st) = &s.steady {
        out.push_str("\nsteady-state latency, writer commit returned -> consumer received\n");
        out.push_str(
            "(an upper bound on commit -> broker ack: it adds the broker -> consumer hop)\n",
        );
        match &st.latency {
            Some(l) => out.push_str(&format!(
                "  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples, first {:.1} s excluded)\n",
                ms(l.p50_ms), ms(l.p90_ms), ms(l.p99_ms), ms(l.p999_ms), ms(l.max_ms), l.samples, st.warmup_s
            )),
            None => out.push_str("  no samples\n"),
        }
        out.push_str(&format!(
            "  writers: {} x {} event(s)/tx, {} committed in {:.1} s, {} failed transactions; last event {:.2} s after the writers stopped\n",
            st.writers, st.events_per_tx, st.committed, st.seconds, st.failed_transactions, st.tail_s
        ));
    }
    out.push_str("\ndelivery checks (a Pulsar consumer verified every event)\n");
    for (name, checks) in s
        .drain
        .iter()
        .map(|d| ("drain", &d.checks))
        .chain(s.steady.iter().map(|st| ("steady", &st.checks)))
    {
        out.push_str(&format!(
            "  {name:<7} expected {}, received {}, lost {}, reordered {}, duplicated {}, unexpected {}{}\n",
            checks.expected,
            checks.received_distinct,
            checks.lost,
            checks.reordered,
            checks.duplicated,
            checks.unexpected,
            if checks.first_lost.is_empty() { String::new() } else { format!(" (first lost seqs {:?})", checks.first_lost) }
        ));
    }
    out.push_str("\nresources\n");
    if let Some(d) = &s.drain {
        out.push_str(&format!(
            "  drain:  relay CPU {:.1} s, peak RSS {:.1} MB, startup {:.2} s; CPU split: {}\n",
            d.relay_cpu_s,
            d.relay_peak_rss_mb,
            d.relay_startup_s,
            d.cpu.describe()
        ));
    }
    if let Some(st) = &s.steady {
        out.push_str(&format!(
            "  steady: relay CPU {:.1} s ({:.0}% of a core), peak RSS {:.1} MB; CPU split: {}\n",
            st.relay_cpu_s,
            100.0 * st.relay_cpu_s / st.cpu.seconds.max(1e-9),
            st.relay_peak_rss_mb,
            st.cpu.describe()
        ));
    }
    out.push_str(&format!("  relay stop: {}\n", s.run.relay_stop));
    if !s.warnings.is_empty() {
        out.push_str("\nwarnings\n");
        for w in &s.warnings {
            out.push_str(&format!("  ! {w}\n"));
        }
    }
    out.push_str("\ntargets (reported, not asserted)\n");
    for t in &s.targets {
        let verdict = match t.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        out.push_str(&format!(
            "  {verdict}  {:<40} {:>14}  goal {:<18} {}\n",
            t.name,
            t.measured.map_or("-".into(), |m| format!("{m:.2}")),
            t.goal,
            t.gap
        ));
    }
    out.push_str(&format!(
        "\nverdict: {}\n",
        if s.passed {
            "OK — nothing lost, per-key order held".to_owned()
        } else {
            format!("FAILED — {}", s.failures.join("; "))
        }
    ));
    out
}
