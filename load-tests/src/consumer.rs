//! The verifying consumer: a real Pulsar subscription (the adapters'
//! [`ResubscribingConsumer`])
//! that feeds every delivery into a [`DeliveryLedger`] and, in steady state, into the
//! commit-to-delivery latency histogram.
//!
//! Contract:
//! - subscribe *before* the relay publishes (position Earliest, a fresh subscription
//!   name per run), then [`VerifyingConsumer::run`] reads until the target count of
//!   distinct events (sent on the `target` channel, possibly later) has arrived, then
//!   keeps reading for `quiet` to catch duplicates; it gives up when nothing new arrived
//!   for `idle_timeout` (the caller then reports what is missing);
//! - latency = receive instant − commit instant, where writers store the commit instant
//!   in the shared map right after their commit returned. An event received before its
//!   commit was stored (possible: the relay can publish before the writer's commit call
//!   returns) is retried later and recorded as 0. Events committed before
//!   `measure_from` (warm-up) are verified but not recorded;
//! - a receive error subscribes again under the same name (the broker's cursor keeps
//!   the position), at most [`MAX_RESUBSCRIBES`] times; after that the run ends with
//!   the error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use hdrhistogram::Histogram;
use outbox_adapters::pulsar::{ConsumeError, ResubscribePolicy, ResubscribingConsumer};
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::verify::DeliveryLedger;
use tokio::sync::watch;

pub const MAX_RESUBSCRIBES: u32 = 20;

/// Latency histogram in microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Live counters, read by the progress line.
#[derive(Debug)]
pub struct ConsumerStats {
    pub distinct: AtomicU64,
    pub received: AtomicU64,
    pub duplicates: AtomicU64,
    pub reorders: AtomicU64,
    pub latency_us: Mutex<Histogram<u64>>,
}

impl Default for ConsumerStats {
    fn default() -> Self {
        ConsumerStats {
            distinct: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            reorders: AtomicU64::new(0),
            latency_us: Mutex::new(new_histogram()),
        }
    }
}

/// Where commit instants are found, and from when latencies count.
#[derive(Debug, Clone)]
pub struct LatencyProbe {
    pub commits: Arc<DashMap<i64, Instant>>,
    pub measure_from: Instant,
}

/// What the consumer saw.
#[derive(Debug)]
pub struct ConsumerOutcome {
    pub ledger: DeliveryLedger,
    pub first_at: Option<Instant>,
    /// When the last new (not duplicate) event arrived.
    pub last_new_at: Option<Instant>,
    /// The target was reached (else it gave up after `idle_timeout`).
    pub complete: bool,
    pub foreign: u64,
    pub resubscribes: u32,
    pub latency_us: Histogram<u64>,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct VerifyingConsumer {
    consumer: ResubscribingConsumer,
}

impl VerifyingConsumer {
    pub async fn subscribe(
        client: Pulsar<TokioExecutor>,
        topic: &str,
        subscription: &str,
    ) -> Result<Self, ConsumeError> {
        let policy = ResubscribePolicy {
            max_resubscribes: MAX_RESUBSCRIBES,
            pause: Duration::from_millis(500),
            reconnect: None,
        };
        let consumer =
            ResubscribingConsumer::subscribe(client, &[topic], subscription, policy).await?;
        Ok(VerifyingConsumer { consumer })
    }

    pub async fn run(
        mut self,
        stats: Arc<ConsumerStats>,
        latency: Option<LatencyProbe>,
        mut target: watch::Receiver<Option<u64>>,
        idle_timeout: Duration,
        quiet: Duration,
    ) -> ConsumerOutcome {
        let mut ledger = DeliveryLedger::default();
        let mut histogram = new_histogram();
        let mut early: Vec<(i64, Instant)> = Vec::new();
        let mut outcome_error = None;
        let (mut first_at, mut last_new_at) = (None, None);
        let mut foreign = 0u64;
        let started = Instant::now();
        let mut last_retry = Instant::now();
        let mut complete = false;
        loop {
            let goal = *target.borrow_and_update();
            if goal.is_some_and(|goal| ledger.distinct() as u64 >= goal) {
                complete = true;
                break;
            }
            let idle_since = last_new_at.unwrap_or(started);
            if idle_since.elapsed() >= idle_timeout {
                break;
            }
            match self.consumer.next(Duration::from_millis(100)).await {
                Ok(Some(event)) => {
                    let now = Instant::now();
                    first_at.get_or_insert(now);
                    let new = !ledger.has_seen(event.seq);
                    let reorders_before = ledger.reorders.len();
                    ledger.record(event.delivery());
                    stats.received.fetch_add(1, Ordering::Relaxed);
                    if new {
                        last_new_at = Some(now);
                        stats.distinct.fetch_add(1, Ordering::Relaxed);
                        if ledger.reorders.len() > reorders_before {
                            stats.reorders.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(probe) = &latency {
                            match probe.commits.remove(&event.seq) {
                                Some((_, committed)) => {
                                    record(&mut histogram, &stats, probe, committed, now)
                                }
                                None => early.push((event.seq, now)),
                            }
                        }
                    } else {
                        stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) => {}
                Err(ConsumeError::NotAnOutboxEvent { .. }) => foreign += 1,
                Err(error) => {
                    outcome_error = Some(error.to_string());
                    break;
                }
            }
            if !early.is_empty() && last_retry.elapsed() >= Duration::from_millis(100) {
                last_retry = Instant::now();
                if let Some(probe) = &latency {
                    early.retain(|(seq, received)| match probe.commits.remove(seq) {
                        Some((_, committed)) => {
                            record(&mut histogram, &stats, probe, committed, *received);
                            false
                        }
                        None => true,
                    });
                }
            }
        }
        if complete && !quiet.is_zero() {
            // Stragglers: duplicates, or events that should not exist.
            while let Ok(Some(event)) = self.consumer.next(quiet).await {
                ledger.record(event.delivery());
                stats.received.fetch_add(1, Ordering::Relaxed);
            }
            stats.duplicates.store(ledger.duplicates, Ordering::Relaxed);
        }
        if let Some(probe) = &latency {
            // Commits stored after the event arrived.
            for (seq, received) in early {
                if let Some((_, committed)) = probe.commits.remove(&seq) {
                    record(&mut histogram, &stats, probe, committed, received);
                }
            }
        }
        ConsumerOutcome {
            ledger,
            first_at,
            last_new_at,
            complete,
            foreign,
            resubscribes: self.consumer.resubscribes(),
            latency_us: histogram,
            error: outcome_error,
        }
    }
}

fn record(
    histogram: &mut Histogram<u64>,
    stats: &ConsumerStats,
    probe: &LatencyProbe,
    committed: Instant,
    received: Instant,
) {
    if committed < probe.measure_from {
        return;
    }
    let micros = received.saturating_duration_since(committed).as_micros() as u64;
    let micros = micros.clamp(1, 3_600_000_000);
    histogram.saturating_record(micros);
    if let Ok(mut shared) = stats.latency_us.lock() {
        shared.saturating_record(micros);
    }
}
