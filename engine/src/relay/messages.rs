//! Messages between the relay's actors. Data stays inside a partition; only control
//! (wake, stop) and reports (progress, stopped) cross actor boundaries.

use actix::Message;

use crate::slots::SlotRange;

/// Supervisor → partition: there may be new events; look now if idle.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Supervisor → partition: finish the cycle in flight, then stop.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Partition → itself: run one read-publish-acknowledge cycle.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Cycle;

/// Watcher → supervisor: the outbox sequence moved.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct NewEvents;

/// Partition → supervisor, after every cycle that published or parked something.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Progress {
    pub partition: usize,
    pub published: u64,
    pub parked: u64,
    pub last_seq: i64,
}

/// Why a partition stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Asked to stop (shutdown).
    Requested,
    /// Too many failed cycles in a row; the last error.
    Failed(String),
}

/// Partition → supervisor, from the partition's `stopped` hook.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PartitionStopped {
    pub partition: usize,
    pub range: SlotRange,
    pub reason: StopReason,
}

/// Handle → supervisor: stop everything gracefully; answered when all partitions stopped.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Handle → supervisor: a snapshot of each partition.
#[derive(Debug, Message)]
#[rtype(result = "Vec<PartitionState>")]
pub struct GetPartitions;

/// What the supervisor knows of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub partition: usize,
    pub range: SlotRange,
    pub running: bool,
    pub restarts: u32,
    pub published: u64,
    pub parked: u64,
    pub last_seq: i64,
}
