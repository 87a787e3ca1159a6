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

/// Supervisor → itself: renew leases, follow the plan.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Tick;

/// Watcher → supervisor: the outbox sequence moved.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct NewEvents;

/// Partition → supervisor, after every cycle that published or parked something.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Progress {
    pub range: SlotRange,
    pub published: u64,
    pub parked: u64,
    pub last_seq: i64,
}

/// Why a partition stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Asked to stop (shutdown).
    Requested,
    /// Too many failed cycles in a row, a panic, or a cycle past its deadline; the last error.
    Failed(String),
    /// The lease ran out before it was renewed, or another relay took the range over.
    LeaseLost(String),
}

/// Partition → supervisor, from the partition's `stopped` hook.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PartitionStopped {
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

/// Handle → supervisor: the outbox's status (`outbox-relay status`), read through the
/// relay's pool.
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::store::Status, crate::store::StoreError>")]
pub struct GetStatus;

/// What the supervisor knows of one partition (one leased range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The slot range the partition publishes.
    pub range: SlotRange,
    /// The lease's fencing token.
    pub epoch: i64,
    /// How long this relay may still publish for the range without a renewal.
    pub lease_remaining_ms: u64,
    /// Its actor runs (false between a failure and the supervisor's restart).
    pub running: bool,
    /// The plan gave the range to another relay (or the relay stops): it is being released.
    pub releasing: bool,
    /// Restarts by the supervisor since the partition last made progress; past
    /// `max_partition_restarts` the relay gives the range up.
    pub restarts: u32,
    /// Events of the range this relay published since it took the range.
    pub published: u64,
    /// Events of the range this relay parked since it took the range.
    pub parked: u64,
    /// Highest sequence number published or parked so far (0: none yet).
    pub last_seq: i64,
}
