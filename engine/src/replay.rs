//! Replay: republish retained, already published events of a range, a key or a topic,
//! from a sequence number or a time (`outbox-relay replay`, see docs/operations.md).
//!
//! Replayed messages are the same events: same `event_id`, `seq`, key and properties,
//! plus the property `outbox-replay = true`, so an idempotent consumer skips them unless
//! it asks to see replays. They go out in sequence order (per key, commit order) through
//! a publisher of their own, beside whatever the relay publishes meanwhile.

use std::collections::BTreeMap;

use outbox_adapters::{PublishError, PulsarPublisher};
use serde::Serialize;

use crate::config::RelayConfig;
use crate::relay::batch::to_events;
use crate::store::replay::{self as queries, ReplayFilter};
use crate::store::{self, StoreError};

/// Page size of the replay read and publish.
const PAGE: i64 = 1_000;

/// The property every replayed message carries.
pub const REPLAY_PROPERTY: &str = "outbox-replay";

/// What a replay sent, or with `dry_run` would send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Published events that match (what is, or with `--dry-run` would be, sent).
    pub matched: usize,
    /// Events the broker acknowledged (0 for a dry run; `matched` when it finished).
    pub published: usize,
    /// Matching events not yet published by the relay: left to it.
    pub skipped_pending: usize,
    /// Lowest sequence number among the matched events; `None` when nothing matched.
    pub first_seq: Option<i64>,
    /// Highest sequence number among the matched events; `None` when nothing matched.
    pub last_seq: Option<i64>,
    /// Matched events per topic, as enqueued.
    pub by_topic: BTreeMap<String, usize>,
    /// Whether this was a dry run (counted, nothing sent).
    pub dry_run: bool,
}

/// Why a replay sent nothing, or stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The filter names no range, key or topic: refused, so that a mistake cannot
    /// republish the whole outbox.
    #[error("replay needs --range, --key or --topic: refusing to republish the whole outbox by accident")]
    NoSelection,
    /// The start (`from_seq` or `since`) lies before the oldest retained event; nothing
    /// was sent. Start at or after `oldest_seq`, or accept that older events are gone.
    #[error("{what} is outside the retention window: the oldest retained event is seq {oldest_seq} from {oldest_at}; published events are kept for retention_ms, then retired")]
    OutsideWindow {
        /// The start asked for (`seq N` or `time T`).
        what: String,
        /// The oldest retained sequence number (0 when the outbox is empty).
        oldest_seq: i64,
        /// When that event was written (RFC 3339; `-` when the outbox is empty).
        oldest_at: String,
    },
    /// No published event matches the filter (described in the message); nothing was sent.
    #[error("no published event matches {0}: nothing was sent")]
    NothingMatches(String),
    /// The database failed, before anything was sent or between pages.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker failed part-way: the first `published` matching events, in sequence
    /// order, went out. Running the same replay again sends them again, which consumers
    /// that deduplicate on `event_id` skip.
    #[error("replay stopped after {published} events: {error}")]
    Publish {
        /// Events acknowledged before the failure.
        published: usize,
        /// The broker's failure.
        error: PublishError,
    },
}

fn describe(filter: &ReplayFilter) -> String {
    let mut parts = Vec::new();
    if let Some(range) = filter.range {
        parts.push(format!("range {range}"));
    }
    if let Some(key) = &filter.key {
        parts.push(format!("key {key:?}"));
    }
    if let Some(topic) = &filter.topic {
        parts.push(format!("topic {topic}"));
    }
    if let Some(seq) = filter.from_seq {
        parts.push(format!("from seq {seq}"));
    }
    if let Some(since) = &filter.since {
        parts.push(format!("since {since}"));
    }
    if let Some(seq) = filter.to_seq {
        parts.push(format!("to seq {seq}"));
    }
    parts.join(", ")
}

/// Replays what `filter` selects; with `dry_run` only counts it. Errors before anything
/// is sent when the selection is empty or starts before the retention window.
///
/// Connects to `config.database_url` and `config.pulsar` itself, beside any running
/// relay (the CLI's `outbox-relay replay`).
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::replay::ReplayError> {
/// use outbox_engine::replay::replay;
/// use outbox_engine::store::replay::ReplayFilter;
/// use outbox_engine::RelayConfig;
///
/// let config = RelayConfig {
///     database_url: "postgres://ops:secret@db:5432/orders".into(),
///     ..RelayConfig::default()
/// };
/// let filter = ReplayFilter {
///     topic: Some("orders".into()),
///     since: Some("2026-12-01T00:00:00Z".into()),
///     ..ReplayFilter::default()
/// };
/// let preview = replay(&config, &filter, true).await?;
/// println!("would send {} events, seq {:?} to {:?}", preview.matched, preview.first_seq, preview.last_seq);
/// let report = replay(&config, &filter, false).await?;
/// assert_eq!(report.published, report.matched);
/// # Ok(())
/// # }
/// ```
pub async fn replay(
    config: &RelayConfig,
    filter: &ReplayFilter,
    dry_run: bool,
) -> Result<ReplayReport, ReplayError> {
    // Boxed: the publisher's state machine is large, and callers nest this deeply.
    Box::pin(run(config, filter, dry_run)).await
}

async fn run(
    config: &RelayConfig,
    filter: &ReplayFilter,
    dry_run: bool,
) -> Result<ReplayReport, ReplayError> {
    if filter.range.is_none() && filter.key.is_none() && filter.topic.is_none() {
        return Err(ReplayError::NoSelection);
    }
    let mut conn = store::connect(&config.database_url).await?;
    let window = queries::window(&mut conn, filter.since.as_deref()).await?;
    let oldest_seq = window.oldest_seq.unwrap_or(0);
    let oldest_at = window
        .oldest_created_at
        .clone()
        .unwrap_or_else(|| "-".into());
    if let Some(from) = filter.from_seq {
        if window.oldest_seq.is_none_or(|oldest| from < oldest) {
            return Err(ReplayError::OutsideWindow {
                what: format!("seq {from}"),
                oldest_seq,
                oldest_at,
            });
        }
    }
    if window.since_before_window {
        return Err(ReplayError::OutsideWindow {
            what: format!("time {}", filter.since.as_deref().unwrap_or_default()),
            oldest_seq,
            oldest_at,
        });
    }
    let pending = queries::pending_seqs(&mut conn).await?;
    let mut report = ReplayReport {
        dry_run,
        ..Default::default()
    };
    // Count first: an empty selection sends nothing, not even a producer.
    let mut after = 0;
    loop {
        let rows = queries::page(&mut conn, filter, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in rows {
            if pending.contains(&row.seq) {
                report.skipped_pending += 1;
                continue;
            }
            report.matched += 1;
            report.first_seq.get_or_insert(row.seq);
            report.last_seq = Some(row.seq);
            *report.by_topic.entry(row.topic).or_default() += 1;
        }
    }
    if report.matched == 0 {
        return Err(ReplayError::NothingMatches(describe(filter)));
    }
    if dry_run {
        return Ok(report);
    }
    let mut publisher = PulsarPublisher::connect(config.pulsar.clone())
        .await
        .map_err(|error| ReplayError::Publish {
            published: 0,
            error,
        })?;
    let mut after = 0;
    let last = report.last_seq.unwrap_or(0);
    while after < last {
        let rows = queries::page(&mut conn, filter, after, PAGE).await?;
        let Some(tail) = rows.last() else { break };
        after = tail.seq;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|row| row.seq <= last && !pending.contains(&row.seq))
            .collect();
        let mut converted = to_events(rows);
        for event in &mut converted.events {
            event.headers.insert(REPLAY_PROPERTY.into(), "true".into());
        }
        let count = converted.events.len();
        let outcome = publisher.publish(converted.events, || true).await;
        report.published += outcome.acknowledged;
        if let Some(error) = outcome.failure {
            publisher.close().await;
            return Err(ReplayError::Publish {
                published: report.published,
                error,
            });
        }
        debug_assert_eq!(outcome.acknowledged, count);
    }
    publisher.close().await;
    Ok(report)
}
