//! Filling the drain backlog before the relay starts.
//!
//! Contract: [`fill`] enqueues exactly `events` events to `topic` through the public
//! enqueue path ([`outbox_engine::enqueue_batch`], i.e. `outbox_enqueue_batch`), one
//! call of `fill_batch` events per transaction, on `fill_connections` connections in
//! parallel. Each connection draws keys from its own lane of the key space (see
//! [`KeySampler::index_in_lane`]), so fill transactions never wait on each other's
//! per-key locks. Returns every sequence number (the set the consumer must receive).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outbox_engine::{enqueue_batch, NewEvent};
use rand::SeedableRng;

use crate::keys::{key_name, KeySampler, PayloadPool};
use crate::plan::DrainPlan;
use crate::progress::Progress;
use crate::services;

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Service(#[from] services::ServiceError),
    #[error("filling the backlog failed: {0}")]
    Enqueue(#[from] outbox_engine::EnqueueError),
    #[error("a fill task ended abnormally: {0}")]
    Task(String),
}

/// What the fill did.
#[derive(Debug, Clone)]
pub struct FillReport {
    pub seqs: Vec<i64>,
    pub seconds: f64,
}

pub async fn fill(
    database_url: &str,
    topic: &str,
    plan: &DrainPlan,
    keys: Arc<KeySampler>,
    payload_bytes: usize,
    progress: &Progress,
) -> Result<FillReport, FillError> {
    let claimed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let payloads = Arc::new(PayloadPool::new(payload_bytes, 1024));
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Lanes own disjoint keys: never more lanes than keys.
    let lanes = plan.fill_connections.min(keys.keys()).max(1);
    for lane in 0..lanes {
        let mut conn = services::connect(database_url).await?;
        let (claimed, done, keys, payloads) = (
            claimed.clone(),
            done.clone(),
            keys.clone(),
            payloads.clone(),
        );
        let (topic, total, batch) = (topic.to_owned(), plan.events, plan.fill_batch as u64);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(lane as u64 + 1);
            let mut seqs = Vec::new();
            loop {
                let start = claimed.fetch_add(batch, Ordering::Relaxed);
                if start >= total {
                    break;
                }
                let count = batch.min(total - start);
                let events: Vec<NewEvent> = (start..start + count)
                    .map(|n| {
                        let key = key_name(keys.index_in_lane(&mut rng, lane, lanes));
                        NewEvent::new(key, topic.as_str(), "LoadTick", payloads.get(n).to_vec())
                    })
                    .collect();
                seqs.extend(enqueue_batch(&mut conn, &events).await?);
                done.fetch_add(count, Ordering::Relaxed);
            }
            Ok::<_, FillError>(seqs)
        }));
    }
    let ticker = {
        let (done, progress, total) = (done.clone(), progress.clone(), plan.events);
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                let elapsed = started.elapsed().as_secs_f64();
                progress.line(&format!(
                    "[fill {elapsed:5.1}s] enqueued {now}/{total}  {}/s  (avg {}/s)",
                    crate::report::thousands((now - last) as f64),
                    crate::report::thousands(now as f64 / elapsed.max(1e-9)),
                ));
                last = now;
            }
        })
    };
    let mut seqs = Vec::with_capacity(plan.events as usize);
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(part)) => seqs.extend(part),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(FillError::Task(e.to_string()))),
        }
    }
    ticker.abort();
    progress.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(FillReport {
        seqs,
        seconds: started.elapsed().as_secs_f64(),
    })
}
