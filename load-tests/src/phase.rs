//! What the drain and steady phases share: their context, their error type, the
//! delivery checks and the CPU split, and the relay's progress as the database sees it.
//!
//! Contract: [`Checks::from_ledger`] judges a consumer's ledger against the set of
//! committed sequence numbers: `lost` = committed but never received, `reordered` = first
//! deliveries behind a later event of the same key, `duplicated` = deliveries beyond the
//! first, `unexpected` = received but never committed. A run fails when lost, reordered
//! or unexpected is non-zero.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::verify::DeliveryLedger;
use serde::Serialize;

use crate::keys::KeySampler;
use crate::plan::Workload;
use crate::procstat::{CpuSnapshot, CpuTracker};
use crate::progress::Progress;
use crate::relay_config::RelaySettings;
use crate::relay_process::{RelayProcess, RelayProcessError};
use crate::services::{ServiceError, Services, ThrowawayDb};

/// How long the consumer waits for a new event before declaring the rest lost.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the consumer keeps reading after the last expected event (duplicates).
pub const QUIET: Duration = Duration::from_secs(1);
/// How long the relay may take to start its partitions.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Relay(#[from] RelayProcessError),
    #[error("cannot subscribe the verifying consumer: {0}")]
    Consume(#[from] outbox_adapters::pulsar::ConsumeError),
    #[error(transparent)]
    Fill(#[from] crate::backlog::FillError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("the relay process exited during the run ({status}); see {log}")]
    RelayExited { status: String, log: PathBuf },
    #[error("a task of the run failed: {0}")]
    Task(String),
}

/// Everything a phase needs.
pub struct PhaseContext<'a> {
    pub services: &'a Services,
    pub client: &'a Pulsar<TokioExecutor>,
    pub db: &'a ThrowawayDb,
    pub workload: &'a Workload,
    pub keys: Arc<KeySampler>,
    pub relay_bin: &'a Path,
    pub relay: &'a RelaySettings,
    pub run_id: &'a str,
    pub work_dir: &'a Path,
    pub progress: &'a Progress,
    pub broker_pids: &'a [u32],
}

impl std::fmt::Debug for PhaseContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhaseContext")
            .field("run_id", &self.run_id)
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl PhaseContext<'_> {
    /// Starts the relay and waits for its partitions.
    pub async fn start_relay(&self) -> Result<(RelayProcess, f64), PhaseError> {
        let toml = self.relay.render(&self.db.url, &self.services.pulsar_url);
        let mut relay = RelayProcess::spawn(
            self.relay_bin,
            &toml,
            self.work_dir,
            &self.db.url,
            &self.services.pulsar_url,
        )
        .await?;
        let startup = relay
            .wait_ready(self.relay.partitions(), READY_TIMEOUT)
            .await?;
        self.progress.note(&format!(
            "relay: pid {}, {} partitions, batch size {}, started in {:.2} s (log {})",
            relay.pid(),
            self.relay.partitions(),
            self.relay.batch_size(),
            startup.as_secs_f64(),
            relay.log_path.display()
        ));
        Ok((relay, startup.as_secs_f64()))
    }

    /// Starts following CPU time for a phase.
    pub fn cpu_tracker(&self, relay: Option<&RelayProcess>) -> CpuTracker {
        CpuTracker::start(relay.map(RelayProcess::pid), self.broker_pids)
    }
}

/// Delivery verdict of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checks {
    pub expected: u64,
    pub received_distinct: u64,
    pub lost: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    /// Messages on the topic that were not outbox events.
    pub foreign: u64,
    /// Times the consumer had to subscribe again after a receive error.
    pub consumer_resubscribes: u32,
    /// First lost sequence numbers, for the report.
    pub first_lost: Vec<i64>,
}

impl Checks {
    pub fn from_ledger(
        ledger: &DeliveryLedger,
        committed: &HashSet<i64>,
        foreign: u64,
        consumer_resubscribes: u32,
    ) -> Self {
        let mut lost = ledger.missing(committed);
        lost.sort_unstable();
        Checks {
            expected: committed.len() as u64,
            received_distinct: ledger.distinct() as u64,
            lost: lost.len() as u64,
            reordered: ledger.reorders.len() as u64,
            duplicated: ledger.duplicates,
            unexpected: ledger.unexpected(committed).len() as u64,
            foreign,
            consumer_resubscribes,
            first_lost: lost.into_iter().take(10).collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.lost == 0 && self.reordered == 0 && self.unexpected == 0
    }
}

/// Where the CPU went during a phase, in CPU seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuSplit {
    pub seconds: f64,
    pub relay_s: f64,
    pub broker_s: f64,
    pub postgres_s: f64,
    /// Part of `postgres_s` spent serving the relay's own sessions.
    pub relay_postgres_s: f64,
    pub driver_s: f64,
    pub machine_busy_s: f64,
    pub machine_capacity_s: f64,
}

impl CpuSplit {
    pub fn from_delta(delta: &CpuSnapshot, seconds: f64) -> Self {
        CpuSplit {
            seconds,
            relay_s: delta.relay,
            broker_s: delta.broker,
            postgres_s: delta.postgres,
            relay_postgres_s: delta.relay_postgres,
            driver_s: delta.driver,
            machine_busy_s: delta.machine_busy,
            machine_capacity_s: delta.machine_total,
        }
    }

    /// CPU used by processes outside the run, as a share of the machine's capacity.
    pub fn other_share(&self) -> f64 {
        if self.machine_capacity_s <= 0.0 {
            return 0.0;
        }
        let other =
            self.machine_busy_s - self.relay_s - self.broker_s - self.postgres_s - self.driver_s;
        (other / self.machine_capacity_s).max(0.0)
    }

    /// "relay 31%, broker 42%, ..." of the machine's capacity.
    pub fn describe(&self) -> String {
        if self.machine_capacity_s <= 0.0 {
            return "n/a".into();
        }
        let pct = |v: f64| 100.0 * v / self.machine_capacity_s;
        let other =
            (self.machine_busy_s - self.relay_s - self.broker_s - self.postgres_s - self.driver_s)
                .max(0.0);
        format!(
            "relay {:.0}%, broker {:.0}%, PostgreSQL {:.0}% (serving the relay {:.0}%), driver (writers+consumer) {:.0}%, other {:.0}%, idle {:.0}% of {:.1} CPU-s",
            pct(self.relay_s),
            pct(self.broker_s),
            pct(self.postgres_s),
            pct(self.relay_postgres_s),
            pct(self.driver_s),
            pct(other),
            pct((self.machine_capacity_s - self.machine_busy_s).max(0.0)),
            self.machine_capacity_s
        )
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Server process ids of the relay's sessions (it names them `outbox-relay`).
pub async fn relay_backend_pids(conn: &mut AsyncPgConnection) -> Vec<u32> {
    diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'outbox-relay' \
         AND datname = current_database()",
    )
    .load::<Pid>(conn)
    .await
    .map(|rows| rows.into_iter().map(|r| r.pid as u32).collect())
    .unwrap_or_default()
}

/// Events the relay has published and removed (its own progress table).
pub async fn relay_published(conn: &mut AsyncPgConnection) -> Result<i64, diesel::result::Error> {
    let row: Count = diesel::sql_query(
        "SELECT coalesce(sum(published_total), 0)::bigint AS n FROM outbox_progress",
    )
    .get_result(conn)
    .await?;
    Ok(row.n)
}

#[cfg(test)]
mod tests {
    use outbox_adapters::verify::Delivery;

    use super::*;

    #[test]
    fn checks_count_lost_reordered_duplicated_unexpected() {
        let mut ledger = DeliveryLedger::default();
        for (key, seq) in [("a", 1), ("a", 3), ("a", 2), ("b", 4), ("b", 4), ("c", 99)] {
            ledger.record(Delivery {
                key: key.into(),
                seq,
            });
        }
        let committed: HashSet<i64> = [1, 2, 3, 4, 5].into_iter().collect();
        let checks = Checks::from_ledger(&ledger, &committed, 0, 0);
        assert_eq!(checks.lost, 1);
        assert_eq!(checks.first_lost, vec![5]);
        assert_eq!(checks.reordered, 1);
        assert_eq!(checks.duplicated, 1);
        assert_eq!(checks.unexpected, 1);
        assert!(!checks.passed());
    }

    #[test]
    fn cpu_split_in_percent_of_capacity() {
        let split = CpuSplit {
            seconds: 10.0,
            relay_s: 5.0,
            broker_s: 8.0,
            postgres_s: 3.0,
            relay_postgres_s: 1.0,
            driver_s: 2.0,
            machine_busy_s: 19.0,
            machine_capacity_s: 20.0,
        };
        let text = split.describe();
        assert!(
            text.starts_with("relay 25%, broker 40%, PostgreSQL 15% (serving the relay 5%)"),
            "{text}"
        );
        assert!(text.contains("other 5%, idle 5%"), "{text}");
    }
}
