//! Command-line surface of `outbox-load`.
//!
//! Contract: these structs only *parse*. Every flag whose default depends on other flags
//! is an `Option`, so [`crate::plan`] can tell "given" from "defaulted", reject
//! contradictions with the flag named, and resolve defaults. Nothing here touches a
//! service.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "postgres://outbox:outbox@127.0.0.1:55432/outbox";
pub const DEFAULT_PULSAR_URL: &str = "pulsar://127.0.0.1:6650";
pub const DEFAULT_PULSAR_ADMIN_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "outbox-load",
    version,
    about = "End-to-end load driver for the outbox relay (real PostgreSQL, real Pulsar, the relay as a child process)",
    after_help = "Exit codes: 0 run completed and verified; 1 run failed (events lost or reordered, or an error); \
                  2 bad flags (no service touched); 3 a service is unreachable."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One run: drain a backlog and/or hold a steady offered rate, verify every event,
    /// compare with baselines measured in the same run.
    Load(Box<LoadArgs>),
    /// The sweep: partitions x batch size, drain and steady state per point; writes
    /// docs/benchmarks.md (between markers) and SVG plots.
    Tune(Box<TuneArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Pre-fill a backlog, then start the relay and time until every event is received.
    Drain,
    /// Relay running, writers at a constant offered rate; commit-to-delivery latency.
    Steady,
    /// Drain, then steady state with the same relay process.
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyDistArg {
    Uniform,
    /// Skewed: key of rank r drawn with probability proportional to 1/r^s.
    Zipf,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// What to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub mode: Mode,
    /// Print only the final summary, as one JSON object, on stdout.
    #[arg(long)]
    pub json: bool,
    /// Drain: the backlog size (default 1000000). Steady: stop after this many events
    /// (instead of --duration). Both: the drain backlog.
    #[arg(long)]
    pub events: Option<u64>,
    /// Steady state: how long the writers run, in seconds (default 30).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Steady state: offered rate in events per second, across all writers (default 5000).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Steady state: writers go as fast as they can.
    #[arg(long)]
    pub max_rate: bool,
    /// Steady state: seconds at the start whose events are verified but left out of the
    /// latency histogram (default 1).
    #[arg(long)]
    pub warmup: Option<f64>,
    #[command(flatten)]
    pub relay: RelayArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub writers: WriterArgs,
    #[command(flatten)]
    pub fill: FillArgs,
    #[command(flatten)]
    pub baselines: BaselineArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// A small sweep (partitions 1,4 x batch 1000, tiny backlog, short steady phase,
    /// small baselines) to test the sweep end to end in about two minutes. Explicit
    /// flags still win.
    #[arg(long)]
    pub quick: bool,
    /// Partition counts to sweep, comma separated (default 1,2,4,8,16).
    #[arg(long, value_delimiter = ',')]
    pub partitions: Option<Vec<u32>>,
    /// Relay batch sizes to sweep, comma separated (default 250,1000,4000).
    #[arg(long, value_delimiter = ',')]
    pub batch_sizes: Option<Vec<u32>>,
    /// Backlog drained per point (default 200000).
    #[arg(long)]
    pub drain_events: Option<u64>,
    /// Steady-state seconds per point (default 10).
    #[arg(long)]
    pub steady_seconds: Option<f64>,
    /// Steady-state offered rate per point, events/s (default 5000).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Steady-state warm-up seconds left out of the latency histogram (default 1).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Extra relay setting for every point, KEY=VALUE (repeatable), e.g.
    /// pulsar.batch_max_delay_ms=5. partitions and batch_size are swept.
    #[arg(long = "relay-set", value_name = "KEY=VALUE")]
    pub relay_set: Vec<String>,
    /// Markdown file whose `<!-- tune:begin -->`..`<!-- tune:end -->` section is
    /// replaced (created if missing).
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub output: PathBuf,
    /// Where the SVG plots go.
    #[arg(long, default_value = "docs/plots")]
    pub plots_dir: PathBuf,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub writers: WriterArgs,
    #[command(flatten)]
    pub fill: FillArgs,
    #[command(flatten)]
    pub baselines: BaselineArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// Settings handed to the relay process.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Relay partitions (default: the relay's default, 4).
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Relay batch size (default: the relay's default, 1000).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Any relay config key, KEY=VALUE (repeatable), written into the TOML file given to
    /// the relay; `pulsar.` prefixes keys of the [pulsar] table, e.g.
    /// --relay-set pulsar.compression=lz4 --relay-set wakeup_interval_ms=1.
    #[arg(long = "relay-set", value_name = "KEY=VALUE")]
    pub relay_set: Vec<String>,
}

/// What the events look like.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Distinct event keys (default 100000, at most the number of events).
    #[arg(long)]
    pub keys: Option<usize>,
    /// How keys are drawn.
    #[arg(long, value_enum, default_value = "uniform")]
    pub key_dist: KeyDistArg,
    /// Exponent s of the zipf distribution (default 1.0); only with --key-dist zipf.
    #[arg(long)]
    pub zipf_exponent: Option<f64>,
    /// Payload bytes per event (default 256).
    #[arg(long)]
    pub payload_bytes: Option<usize>,
}

/// The steady-state writers: what services do (a business row and its events, one
/// transaction).
#[derive(Debug, Args)]
pub struct WriterArgs {
    /// Concurrent writer connections (default 8).
    #[arg(long)]
    pub writers: Option<usize>,
    /// Events (and business rows) per writer transaction (default 1; `tune`: 10, so the
    /// offered rate is reached on 2 cores).
    #[arg(long)]
    pub events_per_tx: Option<usize>,
}

/// How the drain backlog is inserted (fast, before the relay starts).
#[derive(Debug, Args)]
pub struct FillArgs {
    /// Connections filling the backlog (default 4).
    #[arg(long)]
    pub fill_connections: Option<usize>,
    /// Events per fill transaction, one outbox_enqueue_batch call (default 1000).
    #[arg(long)]
    pub fill_batch: Option<usize>,
}

/// Baselines measured in the same run, same payload size and producer batching.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Measure no baseline (ratios are then not printed).
    #[arg(long)]
    pub skip_baselines: bool,
    /// Skip only `bin/pulsar-perf produce`.
    #[arg(long)]
    pub skip_pulsar_perf: bool,
    /// Messages sent by the raw producer loop and by pulsar-perf (default: the drain
    /// backlog, or 200000 without a drain phase).
    #[arg(long)]
    pub raw_events: Option<u64>,
    /// Concurrent producers of the raw loop and of pulsar-perf (default: the relay's
    /// partitions, so both sides use as many producers).
    #[arg(long)]
    pub raw_producers: Option<usize>,
    /// Rows pre-filled for the textbook relay (default 100000).
    #[arg(long)]
    pub textbook_events: Option<u64>,
    /// Time box of the textbook relay in seconds (default 30); its rate is what it
    /// published in that time.
    #[arg(long)]
    pub textbook_seconds: Option<f64>,
}

/// Where the services are and where the binaries are.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// PostgreSQL URL; the run creates (and drops) a throwaway database next to it, so
    /// the role needs CREATEDB.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// Pulsar service URL.
    #[arg(long, env = "PULSAR_URL", default_value = DEFAULT_PULSAR_URL)]
    pub pulsar_url: String,
    /// Pulsar admin URL (health, version, deleting the run's topics).
    #[arg(long, env = "PULSAR_ADMIN_URL", default_value = DEFAULT_PULSAR_ADMIN_URL)]
    pub pulsar_admin_url: String,
    /// Unpacked Pulsar distribution holding bin/pulsar-perf (default: newest
    /// ~/.cache/outbox-engine/apache-pulsar-*).
    #[arg(long, env = "PULSAR_HOME")]
    pub pulsar_home: Option<PathBuf>,
    /// The outbox-relay binary (default: next to this executable; build it with
    /// `cargo build --release -p outbox-engine`).
    #[arg(long, env = "OUTBOX_RELAY_BIN")]
    pub relay_bin: Option<PathBuf>,
    /// Keep the throwaway database (and the run's topics) for inspection.
    #[arg(long)]
    pub keep: bool,
    /// Directory for the run's files: relay.toml, relay.log, pulsar-perf.log (default:
    /// target/outbox-load/<run id>).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}
