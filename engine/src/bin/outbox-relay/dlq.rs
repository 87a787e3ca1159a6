//! `outbox-relay dlq`: dead letters and quarantined keys (docs/operations.md, "Dead
//! letters and quarantine"). Nothing here publishes or deletes an event: `replay` and
//! `skip` mark entries and ask the relay that owns the key to release it, in order.
//!
//! Exit codes: 0 done; 1 error (connection, bad input); 3 nothing matched (nothing
//! changed).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use outbox_engine::store::dead_letters::{self, DlqError, Entry, Selection};
use outbox_engine::{store, RelayConfig};

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List unresolved dead letters and the events held behind them, per key, in order.
    List(ListArgs),
    /// Show one entry (dead letter or held event) in full: reason, attempts, times,
    /// headers, payload size, and how it was resolved.
    Show {
        /// The entry's sequence number.
        #[arg(long)]
        seq: i64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Republish the selected keys' dead letters and held events, in sequence order
    /// starting with the dead letter, then let the keys flow again. Carried out by the
    /// relay that owns each key within about a second.
    Replay(SelectArgs),
    /// Drop the selected dead letters (recorded with who and when); the events held
    /// behind them then go out in order and their keys flow again.
    Skip(SelectArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this key.
    #[arg(long)]
    key: Option<String>,
    /// Only this topic (short name or persistent://...).
    #[arg(long)]
    topic: Option<String>,
    /// Include resolved entries (replayed or skipped), with who and when.
    #[arg(long)]
    resolved: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["seq", "key", "topic", "all"])))]
pub struct SelectArgs {
    /// One entry, by sequence number (replay: its whole key).
    #[arg(long)]
    seq: Option<i64>,
    /// Every entry of one key.
    #[arg(long)]
    key: Option<String>,
    /// Every entry of one topic (short name or persistent://...).
    #[arg(long)]
    topic: Option<String>,
    /// Every unresolved entry.
    #[arg(long)]
    all: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        match (&self.seq, &self.key, &self.topic) {
            (Some(seq), _, _) => Selection::Seq(*seq),
            (_, Some(key), _) => Selection::Key(key.clone()),
            (_, _, Some(topic)) => Selection::Topic(topic.clone()),
            _ => Selection::All,
        }
    }
}

/// Exit code when nothing matched.
const EXIT_NOTHING_MATCHED: i32 = 3;

pub async fn run(config: &RelayConfig, command: DlqCommand, by: &str) -> anyhow::Result<()> {
    let shown = store::redact_url(&config.database_url);
    let mut conn = store::connect(&config.database_url)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    match command {
        DlqCommand::List(args) => {
            let selection = match (&args.key, &args.topic) {
                (Some(key), _) => Selection::Key(key.clone()),
                (_, Some(topic)) => Selection::Topic(topic.clone()),
                _ => Selection::All,
            };
            let entries = dead_letters::entries(&mut conn, &selection, args.resolved).await?;
            if args.json {
                println!("{}", serde_json::json!({ "entries": entries }));
            } else {
                print_list(&entries);
            }
            Ok(())
        }
        DlqCommand::Show { seq, json } => {
            let entries = dead_letters::entries(&mut conn, &Selection::Seq(seq), true).await?;
            let Some(entry) = entries.first() else {
                eprintln!("outbox-relay: no dead letter or held event has seq {seq} (`outbox-relay dlq list --resolved` shows them all): nothing to show");
                std::process::exit(EXIT_NOTHING_MATCHED);
            };
            if json {
                println!("{}", serde_json::to_string(entry)?);
            } else {
                print_entry(entry);
            }
            Ok(())
        }
        DlqCommand::Replay(args) => {
            let result = dead_letters::request_release(&mut conn, &args.selection(), by).await;
            report(result, args.json, "replay")
        }
        DlqCommand::Skip(args) => {
            let result = dead_letters::skip(&mut conn, &args.selection(), by).await;
            report(result, args.json, "skip")
        }
    }
}

fn report(
    result: Result<dead_letters::Change, DlqError>,
    json: bool,
    verb: &str,
) -> anyhow::Result<()> {
    let change = match result {
        Ok(change) => change,
        Err(error @ (DlqError::NothingMatches(_) | DlqError::HeldNotDead { .. })) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "changed": false, "error": error.to_string() })
                );
            }
            eprintln!("outbox-relay: {error}");
            std::process::exit(EXIT_NOTHING_MATCHED);
        }
        Err(error) => return Err(error.into()),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "changed": true, "command": verb, "released_keys": change.released_keys,
                                "to_publish": change.to_publish, "skipped": change.skipped })
        );
        return Ok(());
    }
    if !change.skipped.is_empty() {
        println!(
            "skipped {} dead letter(s): seq {}",
            change.skipped.len(),
            join(&change.skipped)
        );
    }
    println!(
        "release requested for {} key(s): {}; their relay publishes {} event(s) in order (seq {}) and lets the keys flow again",
        change.released_keys.len(),
        change.released_keys.join(", "),
        change.to_publish.len(),
        join(&change.to_publish),
    );
    Ok(())
}

fn join(seqs: &[i64]) -> String {
    if seqs.is_empty() {
        return "-".into();
    }
    seqs.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_list(entries: &[Entry]) {
    if entries.is_empty() {
        println!("no dead letters");
        return;
    }
    println!(
        "{:>12}  {:<24}  {:<5}  {:>8}  {:<40}  {:<9}  reason",
        "seq", "key", "state", "attempts", "topic", "released"
    );
    for entry in entries {
        let state = entry.resolution.as_deref().unwrap_or(&entry.state);
        println!(
            "{:>12}  {:<24}  {:<5}  {:>8}  {:<40}  {:<9}  {}",
            entry.seq,
            entry.key,
            state,
            entry.attempts,
            entry.topic,
            if entry.release_requested {
                "requested"
            } else {
                "-"
            },
            entry.reason
        );
    }
}

fn print_entry(entry: &Entry) {
    println!("seq:            {}", entry.seq);
    println!("event_id:       {}", entry.event_id);
    println!("key:            {} (slot {})", entry.key, entry.slot);
    println!("topic:          {}", entry.topic);
    println!("event_type:     {}", entry.event_type);
    println!(
        "state:          {}{}",
        entry.state,
        entry
            .held_behind
            .map(|seq| format!(" behind dead letter seq {seq}"))
            .unwrap_or_default()
    );
    println!("attempts:       {}", entry.attempts);
    println!("reason:         {}", entry.reason);
    println!("committed:      {}", entry.created_at);
    println!("dead-lettered:  {}", entry.parked_at);
    println!("payload:        {} bytes", entry.payload_bytes);
    println!("headers:        {}", entry.headers);
    println!(
        "key:            {}",
        match (entry.key_quarantined, entry.release_requested) {
            (true, true) => "quarantined, release requested",
            (true, false) => "quarantined",
            (false, _) => "flowing",
        }
    );
    match &entry.resolution {
        Some(resolution) => println!(
            "resolved:       {resolution} by {} at {}",
            entry.resolved_by.as_deref().unwrap_or("-"),
            entry.resolved_at.as_deref().unwrap_or("-")
        ),
        None => println!("resolved:       no"),
    }
}
