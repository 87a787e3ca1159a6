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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Published events that match (what is, or with `--dry-run` would be, sent).
    pub matched: usize,
    pub published: usize,
    /// Matching events not yet published by the relay: left to it.
    pub skipped_pending: usize,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub by_topic: BTreeMap<String, usize>,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay needs --range, --key or --topic: refusing to republish the whole outbox by accident")]
    NoSelection,
    #[error("{what} is outside the retention window: the oldest retained event is seq {oldest_seq} from {oldest_at}; published events are kept for retention_ms, then retired")]
    OutsideWindow {
        what: String,
        oldest_seq: i64,
        oldest_at: String,
    },
    #[error("no published event matches {0}: nothing was sent")]
    NothingMatches(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("replay stopped after {published} events: {error}")]
    Publish {
        published: usize,
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
