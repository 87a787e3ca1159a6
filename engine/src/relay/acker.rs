//! Recording a range's progress off the critical path.
//!
//! A progress write is one fenced statement per cycle (not per event). It still sits
//! between one page's broker acknowledgement and the next page's read if done inline, so
//! the acker runs it in the background while the partition reads and publishes the next
//! page.
//!
//! Contract:
//! - at most one write runs at a time per partition, and writes are issued in cycle
//!   order, so the recorded progress only moves forward;
//! - every write carries the whole position (done snapshot, open batch, its cursor): a
//!   failed write is simply superseded by the next one. Its counters are carried over;
//! - writes are fenced by the lease's epoch: after a takeover they fail with
//!   `StoreError::Fenced` and change nothing;
//! - an audit row for a completed batch is written by the same statement; if that write
//!   fails, the audit row is retried with the next write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::lease::Lease;
use crate::store::{self, CompletedBatch, Pool, ProgressUpdate, StoreError};

/// An idle range records its moving done snapshot this often, so that retention is never
/// held back by a range with nothing to publish.
pub const IDLE_SAVE_INTERVAL: Duration = Duration::from_secs(1);

type Outcome = (ProgressUpdate, Result<(), StoreError>);

#[derive(Debug)]
pub struct Acker {
    relay_id: Arc<str>,
    running: Option<JoinHandle<Outcome>>,
    /// Counters and audit rows not yet recorded (their write failed).
    carried: (i64, i64, Vec<CompletedBatch>),
    last_saved: Option<Instant>,
}

impl Acker {
    pub fn new(relay_id: Arc<str>) -> Self {
        Acker {
            relay_id,
            running: None,
            carried: (0, 0, Vec::new()),
            last_saved: None,
        }
    }

    /// True when an idle range should record its position now.
    pub fn idle_save_due(&self) -> bool {
        self.last_saved
            .is_none_or(|at| at.elapsed() >= IDLE_SAVE_INTERVAL)
    }

    /// Collects a finished write, if any, without waiting.
    pub async fn reap(&mut self) -> Result<(), StoreError> {
        match &self.running {
            Some(handle) if handle.is_finished() => self.wait().await,
            _ => Ok(()),
        }
    }

    /// Waits for the write in flight, if any.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.running.take() else {
            return Ok(());
        };
        let (update, result) = match handle.await {
            Ok(outcome) => outcome,
            Err(join_error) => {
                return Err(StoreError::Query(format!(
                    "progress write task failed: {join_error}"
                )))
            }
        };
        if result.is_err() {
            self.carried.0 += update.published;
            self.carried.1 += update.parked;
            self.carried.2.extend(update.completed);
        }
        result
    }

    /// Starts recording `update` after the previous write finished.
    pub async fn submit(
        &mut self,
        pool: &Pool,
        lease: &Arc<Lease>,
        mut update: ProgressUpdate,
    ) -> Result<(), StoreError> {
        let previous = self.wait().await;
        if matches!(previous, Err(StoreError::Fenced { .. })) {
            return previous;
        }
        let (published, parked, mut audits) = std::mem::take(&mut self.carried);
        update.published += published;
        update.parked += parked;
        // One audit row per write; older ones that failed go first.
        if let Some(current) = update.completed.take() {
            audits.push(current);
        }
        let mut audits = audits.into_iter();
        update.completed = audits.next();
        self.carried.2.extend(audits);
        self.last_saved = Some(Instant::now());
        let pool = pool.clone();
        let lease = lease.clone();
        let relay_id = self.relay_id.clone();
        self.running = Some(tokio::spawn(async move {
            let result = async {
                let mut conn = pool.get().await?;
                store::save_progress(&mut conn, &lease, &relay_id, &update).await
            }
            .await;
            (update, result)
        }));
        previous
    }
}
