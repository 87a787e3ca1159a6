//! `outbox-relay`: run the relay standalone, migrate the schema, show the backlog.
//!
//! Configuration, lowest precedence first: defaults, `--config FILE` (TOML), environment
//! variables, flags.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use outbox_engine::{store, Relay, RelayConfig};

mod dlq;

#[derive(Debug, Parser)]
#[command(
    name = "outbox-relay",
    version,
    about = "Publishes committed outbox events from PostgreSQL to Apache Pulsar"
)]
struct Cli {
    /// Log format on stderr: `text` (human-readable) or `json` (one object per line).
    #[arg(long, global = true, env = "OUTBOX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
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
    /// Republish retained, already published events of a slot range, a key or a topic
    /// (same event_id and seq, plus the property outbox-replay=true).
    Replay(ReplayArgs),
    /// Hold a slot range (or all): the relays leave its events pending, in order, until
    /// `resume`. Takes effect within one lease round (`lease_renew_interval_ms`).
    /// Exit 0 paused (or already paused).
    Pause(PauseArgs),
    /// Release a range paused with `pause` (the same range, or --all). Exit 0 resumed;
    /// exit 3 when that range was not paused (nothing changed).
    Resume(PauseArgs),
    /// Dead letters and quarantined keys: list, show, replay (in order) or skip. Exit 0
    /// done; exit 3 when nothing matched (nothing changed).
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Check the retained batch audit trail for events a range passed without publishing
    /// or parking them. Exit 0 when there are none; exit 4 when there are, each stretch
    /// printed with the `replay` command that republishes it.
    Audit,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["range", "all"])))]
struct PauseArgs {
    /// Slots FIRST-LAST (0-1023), as `status` shows ranges.
    #[arg(long)]
    range: Option<String>,
    /// Every slot.
    #[arg(long)]
    all: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Exit code of `resume` when the range was not paused.
const EXIT_NOTHING_TO_DO: u8 = 3;

#[derive(Debug, Args)]
struct ReplayArgs {
    /// Slots FIRST-LAST (0-1023), as `status` shows ranges.
    #[arg(long)]
    range: Option<String>,
    /// One key.
    #[arg(long)]
    key: Option<String>,
    /// One topic, as enqueued (short name or persistent://...).
    #[arg(long)]
    topic: Option<String>,
    /// First sequence number (inclusive).
    #[arg(long)]
    from_seq: Option<i64>,
    /// Last sequence number (inclusive).
    #[arg(long)]
    to_seq: Option<i64>,
    /// Events of transactions started at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Print what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_range(text: &str) -> anyhow::Result<outbox_engine::slots::SlotRange> {
    let bad = || {
        anyhow::anyhow!(
            "--range {text:?} is not a slot range: use FIRST-LAST within 0-{}, as `outbox-relay status` prints",
            outbox_engine::slots::SLOT_COUNT - 1
        )
    };
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let start: i32 = first.trim().parse().map_err(|_| bad())?;
    let end: i32 = last.trim().parse().map_err(|_| bad())?;
    if start < 0 || end < start || end >= outbox_engine::slots::SLOT_COUNT {
        return Err(bad());
    }
    Ok(outbox_engine::slots::SlotRange { start, end })
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
    /// Pulsar admin REST URL, http://host:8080: lets the relay report whether the broker
    /// deduplicates each topic (`status`).
    #[arg(long, global = true, env = "PULSAR_ADMIN_URL")]
    pulsar_admin_url: Option<String>,
    /// Serve /metrics, /livez and /readyz on this address (host:port).
    #[arg(long, global = true, env = "OUTBOX_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Number of partition actors (1-1024).
    #[arg(long, global = true, env = "OUTBOX_PARTITIONS")]
    partitions: Option<u32>,
    /// Events read and published per partition cycle.
    #[arg(long, global = true, env = "OUTBOX_BATCH_SIZE")]
    batch_size: Option<u32>,
    /// Database connections of the relay.
    #[arg(long, global = true, env = "OUTBOX_POOL_SIZE")]
    pool_size: Option<u32>,
    /// The database URL leads to PgBouncer in transaction mode: set nothing on sessions.
    #[arg(long, global = true, env = "OUTBOX_TRANSACTION_POOLER")]
    transaction_pooler: bool,
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
    if let Some(listen) = &overrides.metrics_listen {
        config.metrics_listen = Some(listen.clone());
    }
    if let Some(url) = &overrides.pulsar_admin_url {
        config.pulsar.admin_url = Some(url.clone());
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
    if overrides.transaction_pooler {
        config.transaction_pooler = true;
    }
    // Secrets come from the environment or a file, never from a flag (visible in `ps`).
    if let Ok(token) = std::env::var("PULSAR_AUTH_TOKEN") {
        config.pulsar.auth_token = Some(outbox_adapters::pulsar::Secret::new(token));
    }
    config.validate()?;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,pulsar=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // One JSON object per line, ids as fields, for log shippers.
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.init(),
    }
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
        Command::Replay(args) => runtime.block_on(replay(&config, args)),
        Command::Pause(args) => runtime.block_on(pause(&config, args, true)),
        Command::Resume(args) => runtime.block_on(pause(&config, args, false)),
        Command::Dlq(command) => runtime.block_on(dlq::run(&config, command, &operator())),
        Command::Audit => runtime.block_on(audit(&config)),
    }
}

/// Exit status of `audit` when events were skipped.
const EXIT_EVENTS_SKIPPED: u8 = 4;

/// `audit`: stretches of the batch trail that passed events nobody published.
async fn audit(config: &RelayConfig) -> anyhow::Result<()> {
    let shown = store::redact_url(&config.database_url);
    let mut conn = store::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let skipped = store::audit::skipped_events(&mut conn)
        .await
        .context("reading the batch audit trail")?;
    if skipped.is_empty() {
        println!("audit: every event the ranges passed in the retained trail was published or parked ({shown})");
        return Ok(());
    }
    let total: i64 = skipped.iter().map(|s| s.events).sum();
    for stretch in &skipped {
        println!(
            "range {}-{}: {} event(s), seq {}..={}, passed without publishing between {} and {} (recorded {}); republish: outbox-relay replay --range {}-{} --from-seq {} --to-seq {}",
            stretch.range_start,
            stretch.range_end,
            stretch.events,
            stretch.first_seq,
            stretch.last_seq,
            stretch.done_before,
            stretch.done_after,
            stretch.recorded_at,
            stretch.range_start,
            stretch.range_end,
            stretch.first_seq,
            stretch.last_seq,
        );
    }
    eprintln!(
        "outbox-relay: audit found {total} event(s) in {} stretch(es) recorded as done but never published; \
         replay them with the commands above (the seq bounds may include published events: consumers see those as duplicates)",
        skipped.len()
    );
    std::process::exit(EXIT_EVENTS_SKIPPED.into());
}

/// Who runs an operator command, for the record: user@host.
fn operator() -> String {
    format!(
        "{}@{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    )
}

/// `pause` / `resume`: one row of `outbox_pause`.
async fn pause(config: &RelayConfig, args: PauseArgs, pause: bool) -> anyhow::Result<()> {
    let range = match &args.range {
        Some(text) => parse_range(text)?,
        None => outbox_engine::slots::SlotRange {
            start: 0,
            end: outbox_engine::slots::SLOT_COUNT - 1,
        },
    };
    let shown = store::redact_url(&config.database_url);
    let mut conn = store::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let by = operator();
    let changed = if pause {
        store::pause::pause(&mut conn, range, &by).await?
    } else {
        store::pause::resume(&mut conn, range).await?
    };
    let state = match (pause, changed) {
        (true, true) => "paused",
        (true, false) => "already paused",
        (false, true) => "resumed",
        (false, false) => "not paused",
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "range": range.to_string(), "state": state, "changed": changed })
        );
    } else if pause {
        println!("slots {range}: {state}; relays hold its events within one lease round");
    } else if changed {
        println!("slots {range}: {state}; its pending events go out in order");
    } else {
        println!(
            "slots {range}: {state} (pause lists exact ranges: see `status`); nothing changed"
        );
    }
    if !pause && !changed {
        std::process::exit(EXIT_NOTHING_TO_DO.into());
    }
    Ok(())
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
    if status.pending_capped {
        println!(
            "pending events:      more than {} (counting stops there)",
            status.pending
        );
    } else {
        println!("pending events:      {}", status.pending);
    }
    match status.oldest_pending_age_s {
        Some(age) => println!("oldest pending age:  {age:.3} s"),
        None => println!("oldest pending age:  -"),
    }
    println!("parked events:       {}", status.parked);
    let quarantine = &status.quarantine;
    if quarantine.quarantined_keys > 0 || quarantine.dead_letters > 0 {
        println!(
            "QUARANTINED keys:    {} ({} dead letter(s), {} event(s) held behind them): see `outbox-relay dlq list`",
            quarantine.quarantined_keys, quarantine.dead_letters, quarantine.held
        );
    }
    for paused in &status.paused {
        println!(
            "PAUSED slots {}-{} since {} by {}: events wait until `outbox-relay resume`",
            paused.lo, paused.hi, paused.paused_at, paused.paused_by
        );
    }
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
            if lease.pending_capped {
                format!(">{}", lease.pending)
            } else {
                lease.pending.to_string()
            },
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
        "{:>11}  {:>14}  {:>8}  {:>24}  {:>12}  updated",
        "slots", "published", "parked", "done snapshot", "open batch"
    );
    for range in &status.ranges {
        println!(
            "{:>11}  {:>14}  {:>8}  {:>24}  {:>12}  {}",
            format!("{}-{}", range.range_start, range.range_end),
            range.published_total,
            range.parked_total,
            shorten(&range.done_snapshot, 24),
            range
                .batch_snapshot
                .as_ref()
                .map(|_| format!("at seq {}", range.batch_seq))
                .unwrap_or_else(|| "-".into()),
            range.updated_at
        );
    }
    let failing: Vec<&store::RangeProgress> = status
        .ranges
        .iter()
        .filter(|range| range.last_error.is_some())
        .collect();
    if !failing.is_empty() {
        println!();
        println!("ranges whose cycles fail (retried with backoff; cleared on the next success):");
        for range in failing {
            println!(
                "  {:>11}  since {}: {}",
                format!("{}-{}", range.range_start, range.range_end),
                range.last_error_at.as_deref().unwrap_or("-"),
                range.last_error.as_deref().unwrap_or("-")
            );
        }
    }
    let dedup: Vec<String> = status
        .ranges
        .iter()
        .filter_map(|range| {
            let states = range.deduplication.as_deref()?;
            let states: std::collections::BTreeMap<String, String> =
                serde_json::from_str(states).ok()?;
            (!states.is_empty()).then(|| {
                let listed: Vec<String> = states
                    .iter()
                    .map(|(topic, state)| format!("{topic} {state}"))
                    .collect();
                format!(
                    "  {:>11}  {}",
                    format!("{}-{}", range.range_start, range.range_end),
                    listed.join(", ")
                )
            })
        })
        .collect();
    if !dedup.is_empty() {
        println!();
        println!("broker deduplication per range and topic (on: effectively-once; otherwise at-least-once):");
        for line in dedup {
            println!("{line}");
        }
    }
    Ok(())
}

async fn replay(config: &RelayConfig, args: ReplayArgs) -> anyhow::Result<()> {
    let filter = outbox_engine::store::replay::ReplayFilter {
        range: args.range.as_deref().map(parse_range).transpose()?,
        key: args.key,
        topic: args.topic,
        from_seq: args.from_seq,
        since: args.since,
        to_seq: args.to_seq,
    };
    let report = outbox_engine::replay::replay(config, &filter, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let verb = if report.dry_run {
        "would republish"
    } else {
        "republished"
    };
    let count = if report.dry_run {
        report.matched
    } else {
        report.published
    };
    println!(
        "{verb} {count} events, seq {} to {}",
        report.first_seq.unwrap_or_default(),
        report.last_seq.unwrap_or_default()
    );
    for (topic, n) in &report.by_topic {
        println!("  {topic}: {n}");
    }
    if report.skipped_pending > 0 {
        println!(
            "  {} matching events are not published yet and were left to the relay",
            report.skipped_pending
        );
    }
    Ok(())
}

/// A snapshot's text can list many running transactions; the table shows its start.
fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let head: String = text.chars().take(width - 3).collect();
        format!("{head}...")
    }
}

/// `/metrics` (Prometheus text format), `/livez` (the process answers) and `/readyz`
/// (connected, and the first lease round done).
fn endpoints(stats: std::sync::Arc<outbox_engine::relay::RelayStats>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::routing::get;
    let for_metrics = stats.clone();
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = for_metrics.metrics_text();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route("/livez", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = stats.ready.load(std::sync::atomic::Ordering::Acquire);
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: connecting or taking leases\n",
                        )
                    }
                }
            }),
        )
}

async fn relay(config: RelayConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tracing::info!(?config, "starting relay");
    // A database that answers with a schema this build cannot work with is a permanent
    // refusal; an unreachable one is waited for by the relay itself.
    // Wrong credentials or an unknown database: refused now, with that reason, rather
    // than retried forever as "unreachable".
    if let Err(error @ store::StoreError::Refused(_)) = store::probe(&config.database_url).await {
        anyhow::bail!("refusing to start: {error}");
    }
    if let Ok(mut conn) = store::connect(&config.database_url).await {
        match store::check_schema(&mut conn).await {
            Err(error) if error.is_refusal() => anyhow::bail!("refusing to start: {error}"),
            _ => {}
        }
    }
    // Bound before the relay starts: a port in use is a refusal, not a silent gap.
    let listener = match &config.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| {
                    format!("refusing to start: cannot listen on {address} for metrics (metrics_listen / OUTBOX_METRICS_LISTEN): is the port in use?")
                })?,
        ),
        None => None,
    };
    let handle = Relay::start(config)?;
    if let Some(listener) = listener {
        let address = listener.local_addr()?;
        let stats = handle.stats().clone();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, endpoints(stats)).await {
                tracing::error!(%error, "the metrics endpoint stopped");
            }
        });
        tracing::info!(%address, "serving /metrics, /livez and /readyz");
    }
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let failure = tokio::select! {
        _ = terminate.recv() => None,
        _ = interrupt.recv() => None,
        reason = handle.failed() => Some(reason),
    };
    if let Some(reason) = failure {
        // Logged once where it was decided; the supervisor is already shutting down.
        let _ = handle.shutdown().await;
        anyhow::bail!("the relay stopped: {reason}");
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
