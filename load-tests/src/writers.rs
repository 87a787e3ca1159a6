//! Steady-state writers: what services do.
//!
//! Contract: each of `writers` tasks owns one connection and, per transaction, inserts
//! `events_per_tx` business rows into `load_order` (created by [`create_business_table`])
//! and enqueues one event per row through the public API ([`outbox_engine::enqueue`],
//! or [`outbox_engine::enqueue_batch`] for several), in one transaction. Right after the
//! commit returns it stores `seq -> Instant` in the shared commit map (the start of the
//! latency measurement) and keeps the sequence numbers (the set the consumer must see).
//!
//! Pacing is open-loop: writer `i` runs on a fixed schedule (`writers * events_per_tx /
//! rate` seconds between its transactions, staggered), and catches up at once when it
//! falls behind, so a slow commit does not lower the offered rate (no coordinated
//! omission on the writer side). With `Rate::Max` there is no schedule. Writers stop at
//! the deadline, or when the event budget is used up. A failed transaction is counted
//! and logged (first error kept); its events are not expected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue, enqueue_batch, EnqueueError, NewEvent};
use rand::{Rng, SeedableRng};

use crate::keys::{key_name, KeySampler, PayloadPool};
use crate::plan::{Rate, SteadyPlan, SteadyStop};
use crate::services::{self, ServiceError};

pub const BUSINESS_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS load_order ( \
     id bigserial PRIMARY KEY, customer text NOT NULL, amount_cents bigint NOT NULL, \
     created_at timestamptz NOT NULL DEFAULT now())";

pub async fn create_business_table(
    conn: &mut AsyncPgConnection,
) -> Result<(), diesel::result::Error> {
    diesel::sql_query(BUSINESS_TABLE_SQL).execute(conn).await?;
    Ok(())
}

/// Live counters, read by the progress line.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub committed: AtomicU64,
    pub transactions: AtomicU64,
    pub failed_transactions: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

#[derive(Debug)]
pub struct WriterRun {
    pub seqs: Vec<i64>,
    pub seconds: f64,
}

/// Time between two transactions of one writer.
pub fn interval(rate: Rate, writers: usize, events_per_tx: usize) -> Option<Duration> {
    match rate {
        Rate::Max => None,
        Rate::PerSecond(rate) => Some(Duration::from_secs_f64(
            (writers * events_per_tx) as f64 / rate as f64,
        )),
    }
}

/// The business write and its events, atomically.
async fn transaction(
    conn: &mut AsyncPgConnection,
    events: &[NewEvent],
    amounts: &[i64],
) -> Result<Vec<i64>, EnqueueError> {
    conn.transaction(async |conn| {
        let customers: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
        diesel::sql_query(
            "INSERT INTO load_order (customer, amount_cents) \
             SELECT * FROM unnest($1::text[], $2::bigint[])",
        )
        .bind::<Array<Text>, _>(customers)
        .bind::<Array<BigInt>, _>(amounts)
        .execute(conn)
        .await?;
        if let [event] = events {
            Ok(vec![enqueue(conn, event).await?])
        } else {
            enqueue_batch(conn, events).await
        }
    })
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    database_url: &str,
    topic: &str,
    plan: &SteadyPlan,
    keys: Arc<KeySampler>,
    payload_bytes: usize,
    commits: Arc<DashMap<i64, Instant>>,
    stats: Arc<WriterStats>,
) -> Result<WriterRun, ServiceError> {
    let interval = interval(plan.rate, plan.writers, plan.events_per_tx);
    let payloads = Arc::new(PayloadPool::new(payload_bytes, 1024));
    let claimed = Arc::new(AtomicU64::new(0));
    let mut connections = Vec::with_capacity(plan.writers);
    for _ in 0..plan.writers {
        connections.push(services::connect(database_url).await?);
    }
    let started = Instant::now();
    let deadline = match plan.stop {
        SteadyStop::After(duration) => Some(started + duration),
        SteadyStop::Events(_) => None,
    };
    let budget = match plan.stop {
        SteadyStop::Events(n) => Some(n),
        SteadyStop::After(_) => None,
    };
    let mut tasks = Vec::new();
    for (lane, mut conn) in connections.into_iter().enumerate() {
        let (keys, payloads, commits, stats, claimed) = (
            keys.clone(),
            payloads.clone(),
            commits.clone(),
            stats.clone(),
            claimed.clone(),
        );
        let (topic, per_tx, writers) = (topic.to_owned(), plan.events_per_tx, plan.writers);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + lane as u64);
            let mut due = interval.map(|iv| started + iv.mul_f64(lane as f64 / writers as f64));
            let mut seqs = Vec::new();
            let mut n: u64 = 0;
            loop {
                let count = match budget {
                    Some(total) => {
                        let start = claimed.fetch_add(per_tx as u64, Ordering::Relaxed);
                        if start >= total {
                            break;
                        }
                        (total - start).min(per_tx as u64) as usize
                    }
                    None => per_tx,
                };
                if let (Some(at), Some(iv)) = (due, interval) {
                    tokio::time::sleep_until(at.into()).await;
                    due = Some(at + iv);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let events: Vec<NewEvent> = (0..count)
                    .map(|_| {
                        n += 1;
                        let key = key_name(keys.index(&mut rng));
                        let payload = payloads.get(n + lane as u64 * 7919).to_vec();
                        NewEvent::new(key, topic.as_str(), "OrderPlaced", payload)
                    })
                    .collect();
                let amounts: Vec<i64> = (0..count).map(|_| rng.gen_range(100..100_000)).collect();
                match transaction(&mut conn, &events, &amounts).await {
                    Ok(committed) => {
                        let now = Instant::now();
                        for seq in &committed {
                            commits.insert(*seq, now);
                        }
                        stats
                            .committed
                            .fetch_add(committed.len() as u64, Ordering::Relaxed);
                        stats.transactions.fetch_add(1, Ordering::Relaxed);
                        seqs.extend(committed);
                    }
                    Err(error) => {
                        stats.failed_transactions.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut first) = stats.first_error.lock() {
                            if first.is_none() {
                                eprintln!("writer {lane}: transaction failed: {error}");
                                *first = Some(error.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        if let Ok(part) = task.await {
            seqs.extend(part);
        }
    }
    Ok(WriterRun {
        seqs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_spreads_the_rate_over_writers() {
        assert_eq!(
            interval(Rate::PerSecond(5000), 8, 1),
            Some(Duration::from_secs_f64(8.0 / 5000.0))
        );
        assert_eq!(
            interval(Rate::PerSecond(1000), 2, 10),
            Some(Duration::from_millis(20))
        );
        assert_eq!(interval(Rate::Max, 8, 1), None);
    }
}
