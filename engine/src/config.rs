//! Relay configuration: typed, every field documented, defaults as named constants,
//! invalid values rejected at start with the field named.
//!
//! Sources, lowest precedence first: built-in defaults, a TOML file, environment
//! variables, command-line flags (the binary applies the last two).

use std::time::Duration;

use outbox_adapters::PulsarConfig;
use serde::{Deserialize, Serialize};

use crate::slots::SLOT_COUNT;

/// Default of [`RelayConfig::database_url`]: the local development cluster that
/// `scripts/services/pg.sh` starts. Set your own outside development.
pub const DEFAULT_DATABASE_URL: &str = "postgres://outbox:outbox@127.0.0.1:55432/outbox";
/// Default of [`RelayConfig::partitions`].
pub const DEFAULT_PARTITIONS: u32 = 4;
/// Default of [`RelayConfig::batch_size`], in events.
pub const DEFAULT_BATCH_SIZE: u32 = 1_000;
/// Default of [`RelayConfig::pool_size`], in connections.
pub const DEFAULT_POOL_SIZE: u32 = 12;
/// Default of [`RelayConfig::wakeup_interval_ms`], in milliseconds.
pub const DEFAULT_WAKEUP_INTERVAL_MS: u64 = 2;
/// Default of [`RelayConfig::idle_poll_min_ms`], in milliseconds.
pub const DEFAULT_IDLE_POLL_MIN_MS: u64 = 1;
/// Default of [`RelayConfig::idle_poll_max_ms`], in milliseconds.
pub const DEFAULT_IDLE_POLL_MAX_MS: u64 = 100;
/// Default of [`RelayConfig::retry_backoff_min_ms`], in milliseconds.
pub const DEFAULT_RETRY_BACKOFF_MIN_MS: u64 = 100;
/// Default of [`RelayConfig::retry_backoff_max_ms`], in milliseconds.
pub const DEFAULT_RETRY_BACKOFF_MAX_MS: u64 = 2_000;
/// Default of [`RelayConfig::max_consecutive_failures`].
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 5;
/// Default of [`RelayConfig::shutdown_timeout_ms`], in milliseconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 10_000;
/// Default of [`RelayConfig::worker_threads`].
pub const DEFAULT_WORKER_THREADS: usize = 2;
/// Default of [`RelayConfig::lease_ms`], in milliseconds.
pub const DEFAULT_LEASE_MS: u64 = 10_000;
/// Default of [`RelayConfig::lease_renew_interval_ms`], in milliseconds.
pub const DEFAULT_LEASE_RENEW_INTERVAL_MS: u64 = 1_000;
/// Default of [`RelayConfig::cycle_timeout_ms`], in milliseconds.
pub const DEFAULT_CYCLE_TIMEOUT_MS: u64 = 60_000;
/// Default of [`RelayConfig::max_event_attempts`].
pub const DEFAULT_MAX_EVENT_ATTEMPTS: u32 = 10;
/// Default of [`RelayConfig::topic_refusal_grace_ms`], in milliseconds.
pub const DEFAULT_TOPIC_REFUSAL_GRACE_MS: u64 = 60_000;
/// Default of [`RelayConfig::database_refusal_grace_ms`], in milliseconds.
pub const DEFAULT_DATABASE_REFUSAL_GRACE_MS: u64 = 60_000;
/// Default of [`RelayConfig::max_partition_restarts`].
pub const DEFAULT_MAX_PARTITION_RESTARTS: u32 = 5;
/// Default of [`RelayConfig::retention_ms`], in milliseconds (24 hours).
pub const DEFAULT_RETENTION_MS: u64 = 24 * 3_600_000;
/// Default of [`RelayConfig::maintenance_interval_ms`], in milliseconds.
pub const DEFAULT_MAINTENANCE_INTERVAL_MS: u64 = 5_000;

/// Everything the relay needs to run. Start from [`RelayConfig::default`] and set what
/// differs; [`Relay::start`](crate::Relay::start) validates it.
///
/// ```
/// # fn main() -> Result<(), outbox_engine::ConfigError> {
/// use outbox_engine::{PulsarConfig, RelayConfig};
///
/// let config = RelayConfig {
///     database_url: "postgres://relay:secret@db.internal:5432/orders".into(),
///     partitions: 8,
///     pulsar: PulsarConfig {
///         url: "pulsar://broker.internal:6650".into(),
///         ..PulsarConfig::default()
///     },
///     ..RelayConfig::default()
/// };
/// config.validate()?;
/// // 8 partitions need at least 3 x 8 + 3 connections: the pool grows to fit.
/// assert_eq!(config.effective_pool_size(), 27);
/// // The password never reaches logs.
/// assert!(!format!("{config:?}").contains("secret"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// PostgreSQL URL (env `DATABASE_URL`). Never logged with its password.
    pub database_url: String,
    /// Partition actors; each owns a contiguous range of the 1024 key slots. More
    /// partitions publish more in parallel; a key always stays in one partition.
    pub partitions: u32,
    /// Most events one partition reads and publishes per cycle; also its in-flight bound.
    pub batch_size: u32,
    /// Database connections for the relay (reads, acknowledgements, wake-up watcher).
    /// Raised to `3 x partitions + 3` when smaller: each partition may hold a read, the
    /// next page's read (started while it publishes) and a background progress write at
    /// once; the wake-up watcher, the lease tick and maintenance use the rest.
    pub pool_size: u32,
    /// How often the wake-up watcher reads the outbox sequence to notice new events.
    /// Writers never notify; this one cheap query replaces per-insert NOTIFY.
    pub wakeup_interval_ms: u64,
    /// After a wake-up that found nothing (the writer had not committed yet), a
    /// partition looks again after this delay, doubling up to `idle_poll_max_ms`.
    pub idle_poll_min_ms: u64,
    /// Longest an idle partition waits before looking again without a wake-up (it
    /// catches events committed long after their sequence number was drawn).
    pub idle_poll_max_ms: u64,
    /// First delay after a failed cycle (database or broker error), doubling.
    pub retry_backoff_min_ms: u64,
    /// Cap of that delay.
    pub retry_backoff_max_ms: u64,
    /// Failed cycles in a row after which a partition stops and the supervisor restarts
    /// it with fresh connections and producers.
    pub max_consecutive_failures: u32,
    /// On shutdown, how long to wait for in-flight acknowledgements. Events not
    /// acknowledged by then stay pending and are published again after restart.
    pub shutdown_timeout_ms: u64,
    /// Threads of the relay's tokio runtime (I/O, encoding); actors run on one more.
    pub worker_threads: usize,
    /// How long a range lease lasts without renewal, judged by the database's clock. A
    /// relay that dies has its ranges taken over after this; a relay that cannot renew
    /// stops publishing after three quarters of it, so before anyone can take over.
    pub lease_ms: u64,
    /// How often a relay renews its leases and follows the plan (also how soon ranges
    /// released by a relay that stops are taken by the others). At most `lease_ms / 4`.
    pub lease_renew_interval_ms: u64,
    /// Longest one partition cycle may run before the watchdog aborts it and the
    /// supervisor restarts the partition. Longer than `pulsar.operation_timeout_ms`.
    pub cycle_timeout_ms: u64,
    /// How long published events stay in the outbox (the audit trail, and what `replay`
    /// can republish). Storage is freed by whole partitions afterwards, never row by
    /// row. At least `lease_ms` and `cycle_timeout_ms`.
    pub retention_ms: u64,
    /// How often one relay of the group creates partitions ahead and retires old ones.
    pub maintenance_interval_ms: u64,
    /// The longest any statement of the relay may run (PostgreSQL `statement_timeout` on
    /// its sessions): a hung query fails the cycle, which is retried, instead of holding
    /// it. Below `cycle_timeout_ms`; unset: half of it.
    pub statement_timeout_ms: Option<u64>,
    /// `database_url` leads to a transaction-pooling proxy (PgBouncer with `pool_mode =
    /// transaction`, 1.21 or later with `max_prepared_statements` set): the relay then
    /// sets nothing on its sessions, because a session setting would stay on a shared
    /// server connection and reach other clients (asynchronous commit on a writer's
    /// connection would make its commits lose durability). Put the settings on the
    /// relay's role instead (docs/operations.md, "Behind PgBouncer").
    pub transaction_pooler: bool,
    /// Where the `outbox-relay` binary serves `/metrics` (Prometheus), `/livez` and
    /// `/readyz`, e.g. `127.0.0.1:9464`; unset: no HTTP endpoint. A port in use is
    /// refused at start.
    pub metrics_listen: Option<String>,
    /// Failed attempts in a row at one event, on a broker that accepted a producer for
    /// it, after which the event is parked so that its range goes on.
    pub max_event_attempts: u32,
    /// How long a refusal that may heal (not authorised, topic not found: an ACL or a
    /// topic that lags a deploy) is retried with backoff, with the `outbox_topic_refused`
    /// alert up, before the refused events are dead-lettered. The range waits meanwhile
    /// (nothing is reordered); 0 dead-letters at once.
    pub topic_refusal_grace_ms: u64,
    /// How long the database may refuse the relay's role (SQLSTATE 42501 "permission
    /// denied", class 28, a table or function missing: a grant or a migration that lags
    /// a deploy) while the relay retries with backoff, with the
    /// `outbox_database_refused` alert up; after that the relay stops with the reason
    /// (the binary exits 1). Nothing is published meanwhile; 0: stop at once.
    pub database_refusal_grace_ms: u64,
    /// Restarts of a partition without progress after which the relay gives its range
    /// up, so that a healthy relay takes it (alone, it takes it back after a minute).
    pub max_partition_restarts: u32,
    /// The broker.
    pub pulsar: PulsarConfig,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field(
                "database_url",
                &crate::store::redact_url(&self.database_url),
            )
            .field("partitions", &self.partitions)
            .field("batch_size", &self.batch_size)
            .field("pool_size", &self.pool_size)
            .field("wakeup_interval_ms", &self.wakeup_interval_ms)
            .field("idle_poll_min_ms", &self.idle_poll_min_ms)
            .field("idle_poll_max_ms", &self.idle_poll_max_ms)
            .field("retry_backoff_min_ms", &self.retry_backoff_min_ms)
            .field("retry_backoff_max_ms", &self.retry_backoff_max_ms)
            .field("max_consecutive_failures", &self.max_consecutive_failures)
            .field("shutdown_timeout_ms", &self.shutdown_timeout_ms)
            .field("worker_threads", &self.worker_threads)
            .field("lease_ms", &self.lease_ms)
            .field("lease_renew_interval_ms", &self.lease_renew_interval_ms)
            .field("cycle_timeout_ms", &self.cycle_timeout_ms)
            .field("max_event_attempts", &self.max_event_attempts)
            .field("topic_refusal_grace_ms", &self.topic_refusal_grace_ms)
            .field("database_refusal_grace_ms", &self.database_refusal_grace_ms)
            .field("max_partition_restarts", &self.max_partition_restarts)
            .field("retention_ms", &self.retention_ms)
            .field("maintenance_interval_ms", &self.maintenance_interval_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("transaction_pooler", &self.transaction_pooler)
            .field("metrics_listen", &self.metrics_listen)
            .field("pulsar", &self.pulsar)
            .finish()
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            partitions: DEFAULT_PARTITIONS,
            batch_size: DEFAULT_BATCH_SIZE,
            pool_size: DEFAULT_POOL_SIZE,
            wakeup_interval_ms: DEFAULT_WAKEUP_INTERVAL_MS,
            idle_poll_min_ms: DEFAULT_IDLE_POLL_MIN_MS,
            idle_poll_max_ms: DEFAULT_IDLE_POLL_MAX_MS,
            retry_backoff_min_ms: DEFAULT_RETRY_BACKOFF_MIN_MS,
            retry_backoff_max_ms: DEFAULT_RETRY_BACKOFF_MAX_MS,
            max_consecutive_failures: DEFAULT_MAX_CONSECUTIVE_FAILURES,
            shutdown_timeout_ms: DEFAULT_SHUTDOWN_TIMEOUT_MS,
            worker_threads: DEFAULT_WORKER_THREADS,
            lease_ms: DEFAULT_LEASE_MS,
            lease_renew_interval_ms: DEFAULT_LEASE_RENEW_INTERVAL_MS,
            cycle_timeout_ms: DEFAULT_CYCLE_TIMEOUT_MS,
            max_event_attempts: DEFAULT_MAX_EVENT_ATTEMPTS,
            topic_refusal_grace_ms: DEFAULT_TOPIC_REFUSAL_GRACE_MS,
            database_refusal_grace_ms: DEFAULT_DATABASE_REFUSAL_GRACE_MS,
            max_partition_restarts: DEFAULT_MAX_PARTITION_RESTARTS,
            retention_ms: DEFAULT_RETENTION_MS,
            maintenance_interval_ms: DEFAULT_MAINTENANCE_INTERVAL_MS,
            statement_timeout_ms: None,
            transaction_pooler: false,
            metrics_listen: None,
            pulsar: PulsarConfig::default(),
        }
    }
}

/// A configuration that cannot be used; the message names the field or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (missing, no permission): fix the path.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file as given.
        path: String,
        /// The operating system's error.
        reason: String,
    },
    /// The config file is not valid TOML for [`RelayConfig`] (a syntax error, a wrong
    /// type, or an unknown key, which is refused rather than ignored).
    #[error("config file {path} is invalid: {reason}")]
    Parse {
        /// The file as given.
        path: String,
        /// The parser's message, naming the key and line.
        reason: String,
    },
    /// A value is out of range or contradicts another; the message names the field and
    /// the accepted range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Invalid(format!(
            "{field} = {value} is out of range: use {min} to {max}"
        )));
    }
    Ok(())
}

impl RelayConfig {
    /// Reads a TOML file on top of the defaults. Unknown keys are errors. Needs the
    /// `config-file` feature.
    #[cfg(feature = "config-file")]
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|reason| ConfigError::Parse {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Parses TOML text on top of the defaults. Needs the `config-file` feature.
    ///
    /// ```
    /// use outbox_engine::RelayConfig;
    ///
    /// let config = RelayConfig::from_toml("partitions = 8\n[pulsar]\nbatching = false\n")?;
    /// assert_eq!(config.partitions, 8);
    /// assert!(!config.pulsar.batching);
    /// // A misspelt key is an error, not ignored.
    /// assert!(RelayConfig::from_toml("partitons = 8").is_err());
    /// # Ok::<(), String>(())
    /// ```
    #[cfg(feature = "config-file")]
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every field, and the fields that must agree (lease and renewal, cycle and
    /// broker timeouts, retention); the error names the field and the accepted values.
    /// Reads nothing but `pulsar.auth_token_file`, if set: the database and broker are
    /// first reached at start.
    ///
    /// ```
    /// use outbox_engine::RelayConfig;
    ///
    /// assert!(RelayConfig::default().validate().is_ok());
    /// // Renewing every second is too rare for a 2 s lease: at least 4 renewals per lease.
    /// let config = RelayConfig {
    ///     lease_ms: 2_000,
    ///     lease_renew_interval_ms: 1_000,
    ///     ..RelayConfig::default()
    /// };
    /// let Err(error) = config.validate() else { panic!("accepted") };
    /// assert!(error.to_string().contains("lease_renew_interval_ms"), "{error}");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        match url::Url::parse(&self.database_url) {
            Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") && url.host().is_some() => {}
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "database_url {} is not a PostgreSQL URL: use postgres://user:password@host:port/database",
                    crate::store::redact_url(&self.database_url)
                )))
            }
        }
        check_range("partitions", self.partitions, 1, SLOT_COUNT as u32)?;
        check_range("batch_size", self.batch_size, 1, 100_000)?;
        check_range("pool_size", self.pool_size, 2, 1_000)?;
        check_range("wakeup_interval_ms", self.wakeup_interval_ms, 1, 60_000)?;
        check_range("idle_poll_min_ms", self.idle_poll_min_ms, 1, 60_000)?;
        check_range(
            "idle_poll_max_ms",
            self.idle_poll_max_ms,
            self.idle_poll_min_ms,
            600_000,
        )?;
        check_range("retry_backoff_min_ms", self.retry_backoff_min_ms, 1, 60_000)?;
        check_range(
            "retry_backoff_max_ms",
            self.retry_backoff_max_ms,
            self.retry_backoff_min_ms,
            3_600_000,
        )?;
        check_range(
            "max_consecutive_failures",
            self.max_consecutive_failures,
            1,
            1_000,
        )?;
        check_range(
            "shutdown_timeout_ms",
            self.shutdown_timeout_ms,
            0,
            3_600_000,
        )?;
        check_range("worker_threads", self.worker_threads, 1, 256)?;
        self.pulsar.validate().map_err(ConfigError::Invalid)?;
        check_range("lease_ms", self.lease_ms, 1_000, 3_600_000)?;
        check_range(
            "lease_renew_interval_ms",
            self.lease_renew_interval_ms,
            50,
            600_000,
        )?;
        if self.lease_renew_interval_ms.saturating_mul(4) > self.lease_ms {
            return Err(ConfigError::Invalid(format!(
                "lease_renew_interval_ms = {} is too long for lease_ms = {}: renew at least 4 times per lease (lease_renew_interval_ms <= lease_ms / 4)",
                self.lease_renew_interval_ms, self.lease_ms
            )));
        }
        if self.cycle_timeout_ms <= self.pulsar.operation_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "cycle_timeout_ms = {} must be longer than pulsar.operation_timeout_ms = {}: a cycle waits for the broker that long",
                self.cycle_timeout_ms, self.pulsar.operation_timeout_ms
            )));
        }
        check_range("cycle_timeout_ms", self.cycle_timeout_ms, 1_000, 3_600_000)?;
        check_range("max_event_attempts", self.max_event_attempts, 1, 1_000)?;
        check_range(
            "topic_refusal_grace_ms",
            self.topic_refusal_grace_ms,
            0,
            86_400_000,
        )?;
        check_range(
            "database_refusal_grace_ms",
            self.database_refusal_grace_ms,
            0,
            86_400_000,
        )?;
        let longest_wait = self.lease_ms.max(self.cycle_timeout_ms);
        if self.retention_ms < longest_wait {
            return Err(ConfigError::Invalid(format!(
                "retention_ms = {} is shorter than the longest lease or batch (lease_ms = {}, cycle_timeout_ms = {}): keep published events at least {longest_wait} ms",
                self.retention_ms, self.lease_ms, self.cycle_timeout_ms
            )));
        }
        check_range(
            "retention_ms",
            self.retention_ms,
            1_000,
            366 * 24 * 3_600_000,
        )?;
        check_range(
            "maintenance_interval_ms",
            self.maintenance_interval_ms,
            100,
            3_600_000,
        )?;
        if let Some(timeout) = self.statement_timeout_ms {
            check_range("statement_timeout_ms", timeout, 1_000, 3_600_000)?;
            if timeout >= self.cycle_timeout_ms {
                return Err(ConfigError::Invalid(format!(
                    "statement_timeout_ms = {timeout} must be below cycle_timeout_ms = {}: a statement may not outlast its cycle",
                    self.cycle_timeout_ms
                )));
            }
        }
        if let Some(listen) = &self.metrics_listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "metrics_listen = {listen:?} is not an address: use host:port, e.g. 127.0.0.1:9464"
                )));
            }
        }
        check_range(
            "max_partition_restarts",
            self.max_partition_restarts,
            1,
            1_000,
        )
    }

    /// The relay sessions' `statement_timeout`: as configured, else half the cycle
    /// timeout.
    pub fn effective_statement_timeout_ms(&self) -> u64 {
        self.statement_timeout_ms
            .unwrap_or(self.cycle_timeout_ms / 2)
    }

    /// The pool size actually used: at least three connections per partition plus three.
    pub fn effective_pool_size(&self) -> u32 {
        self.pool_size
            .max(self.partitions.saturating_mul(3).saturating_add(3))
    }

    /// Delay before retry number `attempt` (1-based): `retry_backoff_min_ms` doubling,
    /// capped at `retry_backoff_max_ms`, then jittered down to between half and all of
    /// that, so that partitions and relays that failed together (a database restart) do
    /// not retry in step. Never above the cap: the cap stays the worst-case resume delay.
    pub fn retry_backoff(&self, attempt: u32) -> Duration {
        use rand::Rng;
        self.retry_ceiling(attempt)
            .mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    /// [`Self::retry_backoff`] before jitter.
    fn retry_ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let delay = self.retry_backoff_min_ms.saturating_mul(1 << exponent);
        Duration::from_millis(delay.min(self.retry_backoff_max_ms))
    }

    /// How long after a renewal was *sent* this relay may publish: three quarters of the
    /// lease, measured on the relay's monotonic clock from before the renewal, so it ends
    /// before the database can consider the lease expired.
    pub fn publish_window(&self) -> Duration {
        Duration::from_millis(self.lease_ms * 3 / 4)
    }

    /// Longest a lease tick waits for the group's lock, and longest a relay session may
    /// sit idle inside a transaction: a quarter of the lease, so a relay stopped in the
    /// middle of its tick delays the others' renewals well inside their publish window.
    pub fn lease_lock_timeout(&self) -> Duration {
        Duration::from_millis((self.lease_ms / 4).max(250))
    }

    /// [`Self::shutdown_timeout_ms`] as a [`Duration`].
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RelayConfig::default().validate().unwrap();
    }

    #[test]
    #[cfg(feature = "config-file")]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let config =
            RelayConfig::from_toml("partitions = 8\n[pulsar]\nbatching = false\n").unwrap();
        assert_eq!(config.partitions, 8);
        assert!(!config.pulsar.batching);
        assert_eq!(config.batch_size, DEFAULT_BATCH_SIZE);
        let error = RelayConfig::from_toml("partitons = 8\n").unwrap_err();
        assert!(error.contains("partitons"), "{error}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let cases = [
            (
                RelayConfig {
                    partitions: 0,
                    ..Default::default()
                },
                "partitions",
            ),
            (
                RelayConfig {
                    partitions: 5000,
                    ..Default::default()
                },
                "partitions",
            ),
            (
                RelayConfig {
                    batch_size: 0,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                RelayConfig {
                    database_url: "mysql://x".into(),
                    ..Default::default()
                },
                "database_url",
            ),
            (
                RelayConfig {
                    database_url: "not a url".into(),
                    ..Default::default()
                },
                "database_url",
            ),
        ];
        for (config, field) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{field}: {message}");
        }
    }

    #[test]
    fn contradicting_timings_are_rejected_with_the_field_named() {
        let cases = [
            (
                RelayConfig {
                    lease_ms: 2_000,
                    lease_renew_interval_ms: 1_000,
                    ..Default::default()
                },
                "lease_renew_interval_ms",
            ),
            (
                RelayConfig {
                    lease_ms: 500,
                    lease_renew_interval_ms: 100,
                    ..Default::default()
                },
                "lease_ms",
            ),
            (
                RelayConfig {
                    cycle_timeout_ms: 30_000,
                    ..Default::default()
                },
                "cycle_timeout_ms",
            ),
            (
                RelayConfig {
                    statement_timeout_ms: Some(60_000),
                    ..Default::default()
                },
                "statement_timeout_ms",
            ),
            (
                RelayConfig {
                    metrics_listen: Some("localhost".into()),
                    ..Default::default()
                },
                "metrics_listen",
            ),
        ];
        for (config, field) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{field}: {message}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = RelayConfig {
            retry_backoff_min_ms: 100,
            retry_backoff_max_ms: 1000,
            ..Default::default()
        };
        let delays: Vec<u64> = (1..=6)
            .map(|a| config.retry_ceiling(a).as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(config.retry_ceiling(u32::MAX).as_millis(), 1000);
        for attempt in 1..=6 {
            let ceiling = config.retry_ceiling(attempt);
            for _ in 0..50 {
                let delay = config.retry_backoff(attempt);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "{delay:?} vs {ceiling:?}"
                );
            }
        }
    }

    #[test]
    fn pool_grows_with_partitions() {
        let config = RelayConfig {
            partitions: 16,
            pool_size: 12,
            ..Default::default()
        };
        assert_eq!(config.effective_pool_size(), 51);
        let small = RelayConfig {
            partitions: 3,
            pool_size: 12,
            ..Default::default()
        };
        assert_eq!(small.effective_pool_size(), 12);
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config = RelayConfig {
            database_url: "postgres://u:hunter2@db/x".into(),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
