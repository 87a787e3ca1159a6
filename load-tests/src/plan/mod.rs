//! Validated plans: what a `load` or `tune` run will do, every default resolved.
//!
//! Contract: [`LoadPlan::from_args`] and [`TunePlan::from_args`] are pure. They reject
//! contradictory or useless flags with a [`UsageError`] naming the flag (the binary exits
//! with code 2 before touching any service), and resolve every default. Rules:
//! - `--rate` and `--max-rate` exclude each other; counts (`--writers`, `--keys`,
//!   `--events`, ...) must be at least 1;
//! - a flag that has no effect in the chosen mode is an error, not silently ignored
//!   (`--duration`/`--rate`/`--writers` with `--mode drain`, `--fill-*` with
//!   `--mode steady`, `--duration` with `--events` in steady mode, ...);
//! - the drain backlog spreads over every key, so `--keys` may not exceed the events;
//!   when `--keys` is not given it defaults to min(100000, events).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{BaselineArgs, FillArgs, KeyDistArg, Mode, WorkloadArgs, WriterArgs};
use crate::keys::KeyDist;
use crate::relay_config::RelaySettings;

mod load;
mod tune;

pub const DEFAULT_DRAIN_EVENTS: u64 = 1_000_000;
pub const DEFAULT_KEYS: usize = 100_000;
pub const DEFAULT_PAYLOAD_BYTES: usize = 256;
pub const DEFAULT_RATE: u64 = 5_000;
pub const DEFAULT_STEADY_SECONDS: f64 = 30.0;
pub const DEFAULT_WARMUP_SECONDS: f64 = 1.0;
pub const DEFAULT_WRITERS: usize = 8;
pub const DEFAULT_EVENTS_PER_TX: usize = 1;
pub const DEFAULT_FILL_CONNECTIONS: usize = 4;
pub const DEFAULT_FILL_BATCH: usize = 1_000;
pub const DEFAULT_RAW_EVENTS_WITHOUT_DRAIN: u64 = 200_000;
pub const DEFAULT_TEXTBOOK_EVENTS: u64 = 100_000;
pub const DEFAULT_TEXTBOOK_SECONDS: f64 = 30.0;
pub const DEFAULT_TUNE_PARTITIONS: [u32; 5] = [1, 2, 4, 8, 16];
pub const DEFAULT_TUNE_BATCH_SIZES: [u32; 3] = [250, 1000, 4000];
pub const DEFAULT_TUNE_DRAIN_EVENTS: u64 = 200_000;
pub const DEFAULT_TUNE_STEADY_SECONDS: f64 = 10.0;
pub const DEFAULT_TUNE_EVENTS_PER_TX: usize = 10;
/// Largest payload the outbox accepts.
pub const MAX_PAYLOAD_BYTES: usize = outbox_engine::enqueue::MAX_PAYLOAD_BYTES;

/// A flag the driver will not run with; `flag` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct UsageError {
    pub flag: String,
    pub message: String,
}

impl UsageError {
    pub fn new(flag: impl Into<String>, message: impl Into<String>) -> Self {
        UsageError {
            flag: flag.into(),
            message: message.into(),
        }
    }
}

/// The shape of the events.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub keys: usize,
    pub key_dist: KeyDist,
    pub payload_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrainPlan {
    pub events: u64,
    pub fill_connections: usize,
    pub fill_batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(u64),
    Max,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(rate) => write!(f, "{rate}/s"),
            Rate::Max => write!(f, "max"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SteadyStop {
    After(Duration),
    Events(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SteadyPlan {
    pub writers: usize,
    pub events_per_tx: usize,
    pub rate: Rate,
    pub stop: SteadyStop,
    pub warmup: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaselinePlan {
    pub enabled: bool,
    pub pulsar_perf: bool,
    pub raw_events: u64,
    pub raw_producers: usize,
    pub textbook_events: u64,
    pub textbook_time_box: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub mode: Mode,
    pub json: bool,
    pub workload: Workload,
    pub drain: Option<DrainPlan>,
    pub steady: Option<SteadyPlan>,
    pub relay: RelaySettings,
    pub baselines: BaselinePlan,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TunePlan {
    pub quick: bool,
    pub partitions: Vec<u32>,
    pub batch_sizes: Vec<u32>,
    pub workload: Workload,
    pub drain: DrainPlan,
    pub steady: SteadyPlan,
    pub relay: RelaySettings,
    pub baselines: BaselinePlan,
    pub output: PathBuf,
    pub plots_dir: PathBuf,
}

pub(super) fn at_least_one<T: PartialOrd + From<u8> + Copy>(
    flag: &str,
    value: Option<T>,
) -> Result<(), UsageError> {
    match value {
        Some(v) if v < T::from(1u8) => Err(UsageError::new(flag, "must be at least 1")),
        _ => Ok(()),
    }
}

pub(super) fn seconds(flag: &str, value: Option<f64>, allow_zero: bool) -> Result<(), UsageError> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) => Err(UsageError::new(
            flag,
            format!("{v} is not a positive number of seconds"),
        )),
        Some(v) if v > 86_400.0 => Err(UsageError::new(flag, "at most 86400 seconds")),
        _ => Ok(()),
    }
}

pub(super) fn reject(flag: &str, given: bool, why: &str) -> Result<(), UsageError> {
    if given {
        Err(UsageError::new(flag, why))
    } else {
        Ok(())
    }
}

/// Keys and payload; `events` is the smallest event count the keys must spread over
/// (`None` when unbounded).
pub(super) fn workload(args: &WorkloadArgs, events: Option<u64>) -> Result<Workload, UsageError> {
    at_least_one("--keys", args.keys)?;
    if let Some(bytes) = args.payload_bytes {
        if bytes > MAX_PAYLOAD_BYTES {
            return Err(UsageError::new(
                "--payload-bytes",
                format!("{bytes} exceeds the outbox limit of {MAX_PAYLOAD_BYTES} bytes"),
            ));
        }
    }
    let key_dist = match (args.key_dist, args.zipf_exponent) {
        (KeyDistArg::Uniform, Some(_)) => {
            return Err(UsageError::new(
                "--zipf-exponent",
                "only applies with --key-dist zipf",
            ))
        }
        (KeyDistArg::Uniform, None) => KeyDist::Uniform,
        (KeyDistArg::Zipf, exponent) => {
            let exponent = exponent.unwrap_or(1.0);
            if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) {
                return Err(UsageError::new(
                    "--zipf-exponent",
                    format!("{exponent} is out of range: use a number above 0, at most 10"),
                ));
            }
            KeyDist::Zipf { exponent }
        }
    };
    let keys = match (args.keys, events) {
        (Some(keys), Some(events)) if keys as u64 > events => {
            return Err(UsageError::new(
                "--keys",
                format!(
                    "{keys} keys cannot all get an event out of {events}: give at most {events} keys or more events"
                ),
            ))
        }
        (Some(keys), _) => keys,
        (None, Some(events)) => DEFAULT_KEYS.min(events.max(1) as usize),
        (None, None) => DEFAULT_KEYS,
    };
    Ok(Workload {
        keys,
        key_dist,
        payload_bytes: args.payload_bytes.unwrap_or(DEFAULT_PAYLOAD_BYTES),
    })
}

pub(super) fn fill(args: &FillArgs, events: u64, keys: usize) -> Result<DrainPlan, UsageError> {
    at_least_one("--fill-connections", args.fill_connections)?;
    at_least_one("--fill-batch", args.fill_batch)?;
    if let Some(batch) = args.fill_batch {
        if batch > 10_000 {
            return Err(UsageError::new(
                "--fill-batch",
                "at most 10000 events per transaction (each takes a per-key lock slot)",
            ));
        }
    }
    Ok(DrainPlan {
        events,
        // Each connection owns a disjoint set of keys, so there are at most `keys` lanes.
        fill_connections: args
            .fill_connections
            .unwrap_or(DEFAULT_FILL_CONNECTIONS)
            .min(keys.max(1)),
        fill_batch: args.fill_batch.unwrap_or(DEFAULT_FILL_BATCH),
    })
}

pub(super) fn writers(args: &WriterArgs) -> Result<(usize, usize), UsageError> {
    at_least_one("--writers", args.writers)?;
    at_least_one("--events-per-tx", args.events_per_tx)?;
    if let Some(n) = args.events_per_tx {
        if n > 10_000 {
            return Err(UsageError::new("--events-per-tx", "at most 10000"));
        }
    }
    if let Some(n) = args.writers {
        if n > 1_000 {
            return Err(UsageError::new("--writers", "at most 1000"));
        }
    }
    Ok((
        args.writers.unwrap_or(DEFAULT_WRITERS),
        args.events_per_tx.unwrap_or(DEFAULT_EVENTS_PER_TX),
    ))
}

pub(super) fn baselines(
    args: &BaselineArgs,
    default_raw_events: u64,
    default_producers: usize,
    default_textbook_events: u64,
    default_textbook_seconds: f64,
) -> Result<BaselinePlan, UsageError> {
    if args.skip_baselines {
        let why = "has no effect with --skip-baselines";
        reject("--skip-pulsar-perf", args.skip_pulsar_perf, why)?;
        reject("--raw-events", args.raw_events.is_some(), why)?;
        reject("--raw-producers", args.raw_producers.is_some(), why)?;
        reject("--textbook-events", args.textbook_events.is_some(), why)?;
        reject("--textbook-seconds", args.textbook_seconds.is_some(), why)?;
    }
    at_least_one("--raw-events", args.raw_events)?;
    at_least_one("--raw-producers", args.raw_producers)?;
    at_least_one("--textbook-events", args.textbook_events)?;
    seconds("--textbook-seconds", args.textbook_seconds, false)?;
    if let Some(n) = args.raw_producers {
        if n > 64 {
            return Err(UsageError::new("--raw-producers", "at most 64"));
        }
    }
    Ok(BaselinePlan {
        enabled: !args.skip_baselines,
        pulsar_perf: !args.skip_baselines && !args.skip_pulsar_perf,
        raw_events: args.raw_events.unwrap_or(default_raw_events),
        raw_producers: args.raw_producers.unwrap_or(default_producers),
        textbook_events: args.textbook_events.unwrap_or(default_textbook_events),
        textbook_time_box: Duration::from_secs_f64(
            args.textbook_seconds.unwrap_or(default_textbook_seconds),
        ),
    })
}
