//! Drain mode: a backlog is in the outbox before the relay starts; how fast does the
//! relay empty it into Pulsar?
//!
//! Contract: subscribe the verifying consumer, fill the backlog ([`crate::backlog`]),
//! start the relay process and wait for its partitions, then time from "relay ready"
//! to "last event received by the consumer" (`seconds`, the headline figure) and to
//! "relay's progress table counts every event published" (`relay_seconds`, which
//! leaves the consumer out). Every event is checked (lost, reordered, duplicated).
//! The relay process is returned running, for a steady phase that may follow.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::backlog;
use crate::consumer::{ConsumerStats, VerifyingConsumer};
use crate::phase::{self, Checks, CpuSplit, PhaseContext, PhaseError};
use crate::plan::DrainPlan;
use crate::relay_process::RelayProcess;
use crate::report::thousands;

#[derive(Debug, Clone, Serialize)]
pub struct DrainResult {
    pub events: u64,
    pub fill_seconds: f64,
    pub fill_events_per_s: f64,
    pub relay_startup_s: f64,
    /// Relay ready → last event received.
    pub seconds: f64,
    pub events_per_s: f64,
    /// Relay ready → the relay's progress table counts every event (None if never).
    pub relay_seconds: Option<f64>,
    pub relay_events_per_s: Option<f64>,
    /// Relay ready → first event received.
    pub first_event_s: Option<f64>,
    pub complete: bool,
    pub checks: Checks,
    pub relay_cpu_s: f64,
    pub relay_peak_rss_mb: f64,
    pub cpu: CpuSplit,
}

pub async fn run(
    ctx: &PhaseContext<'_>,
    plan: &DrainPlan,
) -> Result<(DrainResult, RelayProcess), PhaseError> {
    let topic = format!("load_{}_drain", ctx.run_id);
    let consumer = VerifyingConsumer::subscribe(
        ctx.client.clone(),
        &topic,
        &format!("verify_{}_drain", ctx.run_id),
    )
    .await?;
    ctx.progress.note(&format!(
        "drain: filling a backlog of {} events ({} bytes, {} keys, {}) on {} connections",
        plan.events,
        ctx.workload.payload_bytes,
        ctx.workload.keys,
        ctx.workload.key_dist,
        plan.fill_connections
    ));
    let fill = backlog::fill(
        &ctx.db.url,
        &topic,
        plan,
        ctx.keys.clone(),
        ctx.workload.payload_bytes,
        ctx.progress,
    )
    .await?;
    let fill_rate = fill.seqs.len() as f64 / fill.seconds.max(1e-9);
    ctx.progress.note(&format!(
        "drain: backlog filled in {:.1} s ({} events/s); starting the relay",
        fill.seconds,
        thousands(fill_rate)
    ));
    let committed: HashSet<i64> = fill.seqs.iter().copied().collect();
    let total = committed.len() as u64;

    let stats = Arc::new(ConsumerStats::default());
    let (_target_tx, target_rx) = watch::channel(Some(total));
    let mut consumer_task = tokio::spawn(consumer.run(
        stats.clone(),
        None,
        target_rx,
        phase::IDLE_TIMEOUT,
        phase::QUIET,
    ));
    let mut cpu_tracker = ctx.cpu_tracker(None);
    let before_at = Instant::now();
    let (mut relay, startup) = ctx.start_relay().await?;
    cpu_tracker.set_relay(relay.pid());
    let ready_at = Instant::now();

    // Watches the relay's progress table: when it counts everything, the relay is done.
    let published = Arc::new(AtomicU64::new(0));
    let relay_done_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let mut conn = ctx.db.connect().await?;
    let watcher = {
        let (published, relay_done_at) = (published.clone(), relay_done_at.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(n) = phase::relay_published(&mut conn).await {
                    published.store(n as u64, Ordering::Relaxed);
                    if n as u64 >= total {
                        if let Ok(mut done) = relay_done_at.lock() {
                            done.get_or_insert_with(Instant::now);
                        }
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut stats_conn = ctx.db.connect().await?;
    let mut last_tick = Instant::now();
    let mut last_received = 0u64;
    let mut last_cpu = relay.cpu_seconds();
    let outcome = loop {
        tokio::select! {
            outcome = &mut consumer_task => break outcome.map_err(|e| PhaseError::Task(e.to_string()))?,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                cpu_tracker.sample();
                if !relay.running() {
                    consumer_task.abort();
                    watcher.abort();
                    return Err(PhaseError::RelayExited { status: "exited".into(), log: relay.log_path.clone() });
                }
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    cpu_tracker.set_relay_backends(&phase::relay_backend_pids(&mut stats_conn).await);
                    let dt = last_tick.elapsed().as_secs_f64();
                    last_tick = Instant::now();
                    let received = stats.distinct.load(Ordering::Relaxed);
                    let cpu = relay.cpu_seconds();
                    let done = published.load(Ordering::Relaxed);
                    ctx.progress.line(&format!(
                        "[drain {:5.1}s] received {}/{}  {}/s (avg {}/s)  relay published {}  backlog {}  reordered {}  relay CPU {:.0}%  RSS {:.0} MB",
                        ready_at.elapsed().as_secs_f64(),
                        received,
                        total,
                        thousands((received - last_received) as f64 / dt),
                        thousands(received as f64 / ready_at.elapsed().as_secs_f64()),
                        done,
                        total.saturating_sub(done),
                        stats.reorders.load(Ordering::Relaxed),
                        100.0 * (cpu - last_cpu) / dt,
                        relay.peak_rss_mb(),
                    ));
                    last_received = received;
                    last_cpu = cpu;
                }
            }
        }
    };
    ctx.progress.finish();
    let end = Instant::now();
    watcher.abort();
    cpu_tracker.sample();
    let delta = cpu_tracker.used();
    let relay_done = relay_done_at.lock().ok().and_then(|d| *d);
    let last = if outcome.complete {
        outcome.last_new_at.unwrap_or(end)
    } else {
        end
    };
    let seconds = last.saturating_duration_since(ready_at).as_secs_f64();
    let relay_seconds = relay_done.map(|d| d.saturating_duration_since(ready_at).as_secs_f64());
    if let Some(error) = &outcome.error {
        ctx.progress.note(&format!("drain: consumer: {error}"));
    }
    let checks = Checks::from_ledger(
        &outcome.ledger,
        &committed,
        outcome.foreign,
        outcome.resubscribes,
    );
    let result = DrainResult {
        events: total,
        fill_seconds: fill.seconds,
        fill_events_per_s: fill_rate,
        relay_startup_s: startup,
        seconds,
        events_per_s: checks.received_distinct.min(total) as f64 / seconds.max(1e-9),
        relay_seconds,
        relay_events_per_s: relay_seconds.map(|s| total as f64 / s.max(1e-9)),
        first_event_s: outcome
            .first_at
            .map(|f| f.saturating_duration_since(ready_at).as_secs_f64()),
        complete: outcome.complete,
        checks,
        relay_cpu_s: delta.relay,
        relay_peak_rss_mb: relay.peak_rss_mb(),
        cpu: CpuSplit::from_delta(&delta, end.duration_since(before_at).as_secs_f64()),
    };
    Ok((result, relay))
}
