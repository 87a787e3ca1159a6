//! Steady mode: the relay runs, writers commit at a constant offered rate; how long
//! from a writer's commit to the consumer's receipt?
//!
//! Contract: start the relay if it is not running (else reset its peak-RSS mark, so the
//! phase reports its own peak), subscribe the verifying consumer, run the writers
//! ([`crate::writers`]) for the duration or event budget, then wait until every
//! committed event arrived. Latency = consumer receive instant − commit-returned
//! instant, per event, into an HDR histogram (µs, 3 significant digits), excluding the
//! warm-up. It is an upper bound on commit → broker acknowledgement: it adds the
//! broker → consumer hop and the consumer's own scheduling. The relay is returned
//! running.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::consumer::{ConsumerStats, LatencyProbe, VerifyingConsumer};
use crate::phase::{self, Checks, CpuSplit, PhaseContext, PhaseError};
use crate::plan::{Rate, SteadyPlan};
use crate::relay_process::RelayProcess;
use crate::report::{ms, thousands};
use crate::writers::{self, WriterStats};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let at = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        Some(Percentiles {
            samples: histogram.len(),
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: histogram.max() as f64 / 1000.0,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SteadyResult {
    /// None with --max-rate.
    pub offered_rate: Option<u64>,
    pub writers: usize,
    pub events_per_tx: usize,
    pub warmup_s: f64,
    /// How long the writers ran.
    pub seconds: f64,
    pub committed: u64,
    pub committed_per_s: f64,
    pub failed_transactions: u64,
    pub first_writer_error: Option<String>,
    /// Distinct events received per second of writing.
    pub events_per_s: f64,
    pub latency: Option<Percentiles>,
    /// Last commit → last event received.
    pub tail_s: f64,
    pub complete: bool,
    pub checks: Checks,
    pub relay_startup_s: Option<f64>,
    pub relay_cpu_s: f64,
    pub relay_peak_rss_mb: f64,
    pub cpu: CpuSplit,
}

pub async fn run(
    ctx: &PhaseContext<'_>,
    plan: &SteadyPlan,
    relay: Option<RelayProcess>,
) -> Result<(SteadyResult, RelayProcess), PhaseError> {
    let topic = format!("load_{}_steady", ctx.run_id);
    let consumer = VerifyingConsumer::subscribe(
        ctx.client.clone(),
        &topic,
        &format!("verify_{}_steady", ctx.run_id),
    )
    .await?;
    writers::create_business_table(&mut ctx.db.connect().await?).await?;
    let (mut relay, startup) = match relay {
        Some(mut relay) => {
            relay.reset_peak_rss();
            (relay, None)
        }
        None => {
            let (relay, startup) = ctx.start_relay().await?;
            (relay, Some(startup))
        }
    };
    ctx.progress.note(&format!(
        "steady: {} writers x {} event(s)/tx at {} for {}, warm-up {:.1} s",
        plan.writers,
        plan.events_per_tx,
        plan.rate,
        match plan.stop {
            crate::plan::SteadyStop::After(d) => format!("{:.0} s", d.as_secs_f64()),
            crate::plan::SteadyStop::Events(n) => format!("{n} events"),
        },
        plan.warmup.as_secs_f64()
    ));
    let mut cpu_tracker = ctx.cpu_tracker(Some(&relay));
    let started = Instant::now();
    let commits = Arc::new(DashMap::<i64, Instant>::new());
    let stats = Arc::new(ConsumerStats::default());
    let (target_tx, target_rx) = watch::channel(None);
    let probe = LatencyProbe {
        commits: commits.clone(),
        measure_from: started + plan.warmup,
    };
    let mut consumer_task = tokio::spawn(consumer.run(
        stats.clone(),
        Some(probe),
        target_rx,
        phase::IDLE_TIMEOUT,
        phase::QUIET,
    ));
    let writer_stats = Arc::new(WriterStats::default());
    let mut writer_task = {
        let (url, topic, plan, keys, payload, commits, writer_stats) = (
            ctx.db.url.clone(),
            topic.clone(),
            plan.clone(),
            ctx.keys.clone(),
            ctx.workload.payload_bytes,
            commits.clone(),
            writer_stats.clone(),
        );
        tokio::spawn(async move {
            writers::run(&url, &topic, &plan, keys, payload, commits, writer_stats).await
        })
    };

    let mut stats_conn = ctx.db.connect().await?;
    cpu_tracker.set_relay_backends(&phase::relay_backend_pids(&mut stats_conn).await);
    let mut last_tick = Instant::now();
    let (mut last_committed, mut last_received) = (0u64, 0u64);
    let mut last_cpu = relay.cpu_seconds();
    let mut writers_done: Option<(Vec<i64>, f64, Instant)> = None;
    let outcome = loop {
        tokio::select! {
            outcome = &mut consumer_task => break outcome.map_err(|e| PhaseError::Task(e.to_string()))?,
            run = &mut writer_task, if writers_done.is_none() => {
                let run = run.map_err(|e| PhaseError::Task(e.to_string()))??;
                let _ = target_tx.send(Some(run.seqs.len() as u64));
                writers_done = Some((run.seqs, run.seconds, Instant::now()));
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                cpu_tracker.sample();
                if !relay.running() {
                    consumer_task.abort();
                    writer_task.abort();
                    return Err(PhaseError::RelayExited { status: "exited".into(), log: relay.log_path.clone() });
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    cpu_tracker.set_relay_backends(&phase::relay_backend_pids(&mut stats_conn).await);
                    let dt = last_tick.elapsed().as_secs_f64();
                    last_tick = Instant::now();
                    let committed = writer_stats.committed.load(Ordering::Relaxed);
                    let received = stats.distinct.load(Ordering::Relaxed);
                    let cpu = relay.cpu_seconds();
                    let (p50, p99) = stats
                        .latency_us
                        .lock()
                        .map(|h| if h.is_empty() { (0.0, 0.0) } else {
                            (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0)
                        })
                        .unwrap_or((0.0, 0.0));
                    ctx.progress.line(&format!(
                        "[steady {:5.1}s] offered {}  committed {}/s  received {}/s  backlog {}  p50 {} p99 {} (so far)  reordered {}  relay CPU {:.0}%  RSS {:.0} MB",
                        started.elapsed().as_secs_f64(),
                        plan.rate,
                        thousands((committed - last_committed) as f64 / dt),
                        thousands((received.saturating_sub(last_received)) as f64 / dt),
                        committed.saturating_sub(received),
                        ms(p50),
                        ms(p99),
                        stats.reorders.load(Ordering::Relaxed),
                        100.0 * (cpu - last_cpu) / dt,
                        relay.peak_rss_mb(),
                    ));
                    last_committed = committed;
                    last_received = received;
                    last_cpu = cpu;
                }
            }
        }
    };
    ctx.progress.finish();
    if writers_done.is_none() {
        // The consumer gave up while writers were still running.
        let run = writer_task
            .await
            .map_err(|e| PhaseError::Task(e.to_string()))??;
        writers_done = Some((run.seqs, run.seconds, Instant::now()));
    }
    let Some((seqs, writer_seconds, writers_end)) = writers_done else {
        return Err(PhaseError::Task("the writers did not report".into()));
    };
    let end = Instant::now();
    cpu_tracker.sample();
    let delta = cpu_tracker.used();
    if let Some(error) = &outcome.error {
        ctx.progress.note(&format!("steady: consumer: {error}"));
    }
    let committed: HashSet<i64> = seqs.iter().copied().collect();
    let checks = Checks::from_ledger(
        &outcome.ledger,
        &committed,
        outcome.foreign,
        outcome.resubscribes,
    );
    let first_writer_error = writer_stats.first_error.lock().ok().and_then(|e| e.clone());
    let tail_end = outcome.last_new_at.unwrap_or(end);
    let result = SteadyResult {
        offered_rate: match plan.rate {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        },
        writers: plan.writers,
        events_per_tx: plan.events_per_tx,
        warmup_s: plan.warmup.as_secs_f64(),
        seconds: writer_seconds,
        committed: committed.len() as u64,
        committed_per_s: committed.len() as f64 / writer_seconds.max(1e-9),
        failed_transactions: writer_stats.failed_transactions.load(Ordering::Relaxed),
        first_writer_error,
        events_per_s: checks.received_distinct.min(committed.len() as u64) as f64
            / writer_seconds.max(1e-9),
        latency: Percentiles::of(&outcome.latency_us),
        tail_s: tail_end
            .saturating_duration_since(writers_end)
            .as_secs_f64(),
        complete: outcome.complete,
        checks,
        relay_startup_s: startup,
        relay_cpu_s: delta.relay,
        relay_peak_rss_mb: relay.peak_rss_mb(),
        cpu: CpuSplit::from_delta(&delta, end.duration_since(started).as_secs_f64()),
    };
    Ok((result, relay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = crate::consumer::new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap(); // 10 µs .. 10 ms, uniform
        }
        let p = Percentiles::of(&h).unwrap();
        assert_eq!(p.samples, 1000);
        assert!((p.p50_ms - 5.0).abs() < 0.01, "{p:?}");
        assert!((p.p99_ms - 9.9).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 10.0).abs() < 0.01, "{p:?}");
        assert!(Percentiles::of(&crate::consumer::new_histogram()).is_none());
    }
}
