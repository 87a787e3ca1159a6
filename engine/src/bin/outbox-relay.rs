//! `outbox-relay`: run the relay standalone, migrate the schema, show the backlog.
//!
//! Configuration, lowest precedence first: defaults, `--config FILE` (TOML), environment
//! variables, flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use outbox_engine::{store, Relay, RelayConfig};

#[derive(Debug, Parser)]
#[command(
    name = "outbox-relay",
    version,
    about = "Publishes committed outbox events from PostgreSQL to Apache Pulsar"
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the embedded schema migrations (idempotent).
    Migrate,
    /// Run the relay until SIGINT/SIGTERM (a second signal exits at once, losing nothing).
    Run,
    /// Show pending events, the relays and their range leases (owner, epoch, expiry,
    /// pending, oldest age), writers holding key locks, and per-range progress.
    Status {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Overrides of the config file; each also reads an environment variable.
#[derive(Debug, Args)]
struct Overrides {
    /// TOML config file (see docs/operations.md for every key).
    #[arg(long, global = true, env = "OUTBOX_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL URL.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Pulsar service URL, pulsar://host:6650.
    #[arg(long, global = true, env = "PULSAR_URL")]
    pulsar_url: Option<String>,
    /// Number of partition actors (1-1024).
    #[arg(long, global = true, env = "OUTBOX_PARTITIONS")]
    partitions: Option<u32>,
    /// Events read and published per partition cycle.
    #[arg(long, global = true, env = "OUTBOX_BATCH_SIZE")]
    batch_size: Option<u32>,
    /// Database connections of the relay.
    #[arg(long, global = true, env = "OUTBOX_POOL_SIZE")]
    pool_size: Option<u32>,
}

fn load_config(overrides: &Overrides) -> anyhow::Result<RelayConfig> {
    let mut config = match &overrides.config {
        Some(path) => RelayConfig::from_file(path)?,
        None => RelayConfig::default(),
    };
    if let Some(url) = &overrides.database_url {
        config.database_url = url.clone();
    }
    if let Some(url) = &overrides.pulsar_url {
        config.pulsar.url = url.clone();
    }
    if let Some(partitions) = overrides.partitions {
        config.partitions = partitions;
    }
    if let Some(batch_size) = overrides.batch_size {
        config.batch_size = batch_size;
    }
    if let Some(pool_size) = overrides.pool_size {
        config.pool_size = pool_size;
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pulsar=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outbox-relay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli.overrides)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Migrate => runtime.block_on(migrate(&config)),
        Command::Status { json } => runtime.block_on(status(&config, json)),
        Command::Run => runtime.block_on(relay(config)),
    }
}

async fn migrate(config: &RelayConfig) -> anyhow::Result<()> {
    let shown = store::redact_url(&config.database_url);
    let applied = store::migrate(&config.database_url)
        .await
        .with_context(|| format!("migrating {shown}"))?;
    if applied.is_empty() {
        println!("schema up to date ({shown})");
    } else {
        println!(
            "applied {} migration(s) to {shown}: {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

async fn status(config: &RelayConfig, json: bool) -> anyhow::Result<()> {
    let shown = store::redact_url(&config.database_url);
    let mut conn = store::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let status = store::status(&mut conn).await?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
        return Ok(());
    }
    println!("pending events:      {}", status.pending);
    match status.oldest_pending_age_s {
        Some(age) => println!("oldest pending age:  {age:.3} s"),
        None => println!("oldest pending age:  -"),
    }
    println!("parked events:       {}", status.parked);
    println!("live relays:         {}", status.relays.len());
    for relay in &status.relays {
        println!(
            "  {}  host {} pid {}  heartbeat {:.1} s ago{}",
            relay.relay_id,
            relay.host,
            relay.pid,
            relay.heartbeat_age_s,
            if relay.leaving { "  (leaving)" } else { "" }
        );
    }
    println!();
    println!(
        "{:>11}  {:<36}  {:>8}  {:>10}  {:>10}  {:>12}",
        "range", "owner", "epoch", "expires in", "pending", "oldest age"
    );
    for lease in &status.leases {
        println!(
            "{:>11}  {:<36}  {:>8}  {:>10}  {:>10}  {:>12}",
            format!("{}-{}", lease.range_start, lease.range_end),
            lease.owner.as_deref().unwrap_or("-"),
            lease.epoch,
            lease
                .expires_in_s
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_else(|| "-".into()),
            lease.pending,
            lease
                .oldest_pending_age_s
                .map(|s| format!("{s:.3} s"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    if !status.key_locks.is_empty() {
        println!();
        println!("writer transactions holding key locks (their keys' events wait for them):");
        for holder in &status.key_locks {
            println!(
                "  pid {}  open {:.1} s  {} key lock(s)  state {}  application {}",
                holder.pid,
                holder.transaction_age_s.unwrap_or(0.0),
                holder.keys_locked,
                holder.state.as_deref().unwrap_or("-"),
                holder.application_name.as_deref().unwrap_or("-"),
            );
        }
    }
    println!();
    println!(
        "{:>11}  {:>14}  {:>12}  {:>8}  updated",
        "slots", "published", "last seq", "parked"
    );
    for range in &status.ranges {
        println!(
            "{:>11}  {:>14}  {:>12}  {:>8}  {}",
            format!("{}-{}", range.range_start, range.range_end),
            range.published_total,
            range.last_seq,
            range.parked_total,
            range.updated_at
        );
    }
    Ok(())
}

async fn relay(config: RelayConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tracing::info!(?config, "starting relay");
    // A database that answers with a schema this build cannot work with is a permanent
    // refusal; an unreachable one is waited for by the relay itself.
    if let Ok(mut conn) = store::connect(&config.database_url).await {
        if let Err(error @ store::StoreError::Schema(_)) = store::check_schema(&mut conn).await {
            anyhow::bail!("refusing to start: {error}");
        }
    }
    let handle = Relay::start(config)?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {},
        _ = interrupt.recv() => {},
    }
    tracing::info!("signal received: shutting down gracefully (a second signal exits at once)");
    let second_signal = async {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
    };
    tokio::select! {
        result = handle.shutdown() => {
            result?;
            tracing::info!("relay stopped");
            Ok(())
        }
        _ = second_signal => {
            tracing::warn!("second signal: exiting now; unacknowledged events will be published again");
            std::process::exit(130);
        }
    }
}
