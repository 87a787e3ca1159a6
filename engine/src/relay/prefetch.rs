//! Reading a range's next page while the current one is being published.
//!
//! A cycle is a read followed by a publish, and both are round trips to another process
//! (PostgreSQL, then the broker). Done one after the other, the range waits for the
//! database while the broker is idle and the other way round. So, once a page is read and
//! about to be sent, the cycle starts the read the *next* cycle would make if this page
//! is published whole: the next listed keys of a large batch, or a new batch after this
//! one's snapshot.
//!
//! Contract:
//! - a prefetch is only a read made early: it changes nothing in the database, and the
//!   next cycle uses it only when the range's position is exactly the one it was made
//!   for (same open batch and the same listed keys at its front, or the same done
//!   snapshot with no batch open and nothing carried). Whenever the page was not
//!   published whole (a failure, a parked event that left keys behind, a lease lost),
//!   the position differs, the prefetch is dropped and the cycle reads as usual;
//! - reading early is sound because events never change once committed, and a batch cut
//!   at an earlier snapshot is still a batch: the next one starts from that snapshot;
//! - a failed prefetch costs nothing but the read itself: the cycle reads again;
//! - at most one prefetch per range runs at a time, on its own pooled connection (the
//!   pool is sized for it, see `RelayConfig::effective_pool_size`).

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::lease::Lease;
use crate::store::{self, BatchPage, EventRow, Pool, SnapshotText, StoreError};

/// The position a prefetch was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    /// The open batch `snapshot` continues with these keys at the front of its list.
    Listed {
        snapshot: SnapshotText,
        keys: Vec<(i64, i64)>,
    },
    /// The open batch completed: a new one starts after `done`.
    NewBatch { done: SnapshotText },
}

/// What a prefetch read.
#[derive(Debug)]
pub(crate) enum Fetched {
    Rows(Vec<EventRow>),
    Page(BatchPage),
}

/// A read started ahead of its cycle.
#[derive(Debug)]
pub(crate) struct Prefetch {
    pub expected: Expected,
    handle: JoinHandle<Result<Fetched, StoreError>>,
}

impl Prefetch {
    /// Starts the read `expected` describes, on its own connection.
    pub fn start(pool: &Pool, lease: &Arc<Lease>, expected: Expected, batch_size: usize) -> Self {
        let pool = pool.clone();
        let lease = lease.clone();
        let read = expected.clone();
        let handle = tokio::spawn(async move {
            let mut conn = pool.get().await?;
            match read {
                Expected::Listed { keys, .. } => Ok(Fetched::Rows(
                    store::read_keys(&mut conn, &lease, &keys).await?,
                )),
                Expected::NewBatch { done } => Ok(Fetched::Page(
                    store::read_page(&mut conn, &lease, &done, None, 0, batch_size, None).await?,
                )),
            }
        });
        Prefetch { expected, handle }
    }

    /// The prefetched rows, if the read succeeded. A failure is only logged: the caller
    /// reads again.
    pub async fn result(self) -> Option<Fetched> {
        match self.handle.await {
            Ok(Ok(fetched)) => Some(fetched),
            Ok(Err(error)) => {
                tracing::debug!(%error, "prefetched read failed; reading again");
                None
            }
            Err(error) => {
                tracing::debug!(%error, "prefetched read did not finish; reading again");
                None
            }
        }
    }
}
