//! Recording acknowledged events off the critical path.
//!
//! Deleting published rows costs as much as reading them; done inline it would sit
//! between one batch's broker acknowledgement and the next batch's read. The acker runs
//! the delete in the background while the partition reads and publishes the next batch.
//!
//! Contract:
//! - at most one delete runs at a time per partition (a new one waits for the previous);
//! - until its delete is confirmed, an acknowledged row may still be read: the partition
//!   must drop such rows from its next batch ([`Acker::is_pending`]), or it would publish
//!   them twice;
//! - deletes are fenced by the lease's epoch: after a takeover they fail with
//!   `StoreError::Fenced` and change nothing;
//! - a failed delete forgets its rows, which are then read and published again
//!   (duplicates, never loss), and reports the error once.

use std::collections::HashSet;

use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::lease::Lease;
use crate::store::{self, Pool, StoreError};

use super::batch::AckedKeys;

type Outcome = (Vec<i64>, Result<(), StoreError>);

#[derive(Debug, Default)]
pub struct Acker {
    pending: HashSet<i64>,
    running: Option<JoinHandle<Outcome>>,
}

impl Acker {
    /// True while the row's delete is not confirmed.
    pub fn is_pending(&self, seq: i64) -> bool {
        self.pending.contains(&seq)
    }

    /// Collects a finished delete, if any, without waiting.
    pub async fn reap(&mut self) -> Result<(), StoreError> {
        match &self.running {
            Some(handle) if handle.is_finished() => self.wait().await,
            _ => Ok(()),
        }
    }

    /// Waits for the delete in flight, if any.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        let Some(handle) = self.running.take() else {
            return Ok(());
        };
        let (seqs, result) = match handle.await {
            Ok(outcome) => outcome,
            Err(join_error) => (
                Vec::new(),
                Err(StoreError::Query(format!(
                    "acknowledgement task failed: {join_error}"
                ))),
            ),
        };
        if result.is_err() && seqs.is_empty() {
            // The task died: nothing tells which rows it covered; forget them all.
            self.pending.clear();
        }
        for seq in &seqs {
            self.pending.remove(seq);
        }
        result
    }

    /// Starts deleting `acked` after the previous delete finished.
    pub async fn submit(
        &mut self,
        pool: &Pool,
        lease: &Arc<Lease>,
        acked: AckedKeys,
    ) -> Result<(), StoreError> {
        let previous = self.wait().await;
        if acked.is_empty() {
            return previous;
        }
        self.pending.extend(acked.seqs.iter().copied());
        let pool = pool.clone();
        let lease = lease.clone();
        self.running = Some(tokio::spawn(async move {
            let result = async {
                let mut conn = pool.get().await?;
                store::acknowledge(&mut conn, &lease, &acked.slots, &acked.seqs).await
            }
            .await;
            (acked.seqs, result)
        }));
        previous
    }
}
