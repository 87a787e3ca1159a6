//! One partition cycle: read a batch, publish it, record what the broker acknowledged.
//!
//! The rule that keeps order and loses nothing: only the acknowledged *prefix* of a
//! batch is deleted. After a transient failure the rest stays pending and the next
//! cycle reads it again from its lowest sequence number. A permanent failure (the
//! broker refuses the topic, unreadable headers) parks that one event with the reason
//! and the cycle counts as a success, so a poison event never blocks the range forever.

use std::collections::BTreeMap;

use outbox_adapters::{OutgoingEvent, PublishError, PulsarPublisher};

use crate::slots::SlotRange;
use crate::store::{self, EventRow, Pool, StoreError};

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub read: usize,
    pub published: usize,
    pub parked: usize,
    pub last_seq: i64,
    /// Where the next read should start.
    pub next_start: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// The events to publish: the rows up to (not including) the first one that cannot be
/// turned into a message, and that row with the reason, if any.
pub(crate) fn to_events(rows: &[EventRow]) -> (Vec<OutgoingEvent>, Option<(usize, String)>) {
    let mut events = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let headers: BTreeMap<String, String> = match serde_json::from_str(&row.headers) {
            Ok(headers) => headers,
            Err(e) => {
                return (
                    events,
                    Some((
                        index,
                        format!("headers are not a JSON object of strings: {e}"),
                    )),
                )
            }
        };
        events.push(OutgoingEvent {
            seq: row.seq,
            event_id: row.event_id.clone(),
            key: row.key.clone(),
            topic: row.topic.clone(),
            event_type: row.event_type.clone(),
            payload: row.payload.clone(),
            headers,
        });
    }
    (events, None)
}

/// Runs one cycle. Returns the publisher so the caller keeps its producers.
pub(crate) async fn run_cycle(
    pool: Pool,
    range: SlotRange,
    start: i32,
    batch_size: usize,
    mut publisher: PulsarPublisher,
) -> (PulsarPublisher, Result<CycleReport, CycleError>) {
    let result = cycle(&pool, range, start, batch_size, &mut publisher).await;
    (publisher, result)
}

async fn cycle(
    pool: &Pool,
    range: SlotRange,
    start: i32,
    batch_size: usize,
    publisher: &mut PulsarPublisher,
) -> Result<CycleReport, CycleError> {
    let rows = {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        store::read_batch(&mut conn, range, start, batch_size).await?
    };
    let Some(last_row) = rows.last() else {
        return Ok(CycleReport {
            next_start: start,
            ..Default::default()
        });
    };
    let next_start = if rows.len() >= batch_size {
        range.next_start(last_row.slot)
    } else {
        start
    };
    let (events, unreadable) = to_events(&rows);
    let outcome = publisher.publish(events).await;
    let acknowledged: Vec<(i32, i64)> = rows[..outcome.acknowledged]
        .iter()
        .map(|row| (row.slot, row.seq))
        .collect();
    let mut report = CycleReport {
        read: rows.len(),
        published: acknowledged.len(),
        parked: 0,
        last_seq: acknowledged.last().map_or(0, |(_, seq)| *seq),
        next_start,
    };
    let mut conn = pool.get().await.map_err(StoreError::from)?;
    store::acknowledge(&mut conn, range, &acknowledged).await?;
    let failed = &rows.get(outcome.acknowledged);
    match (outcome.failure, unreadable) {
        (Some(error), _) if error.is_permanent() => {
            if let Some(row) = failed {
                tracing::error!(slot = row.slot, seq = row.seq, key = %row.key, topic = %row.topic, %error, "parking event the broker will never accept");
                store::park(&mut conn, range, row.slot, row.seq, &error.to_string()).await?;
                report.parked = 1;
            }
        }
        (Some(error), _) => return Err(error.into()),
        (None, Some((index, reason))) if index == outcome.acknowledged => {
            let row = &rows[index];
            tracing::error!(slot = row.slot, seq = row.seq, key = %row.key, %reason, "parking unreadable event");
            store::park(&mut conn, range, row.slot, row.seq, &reason).await?;
            report.parked = 1;
        }
        (None, _) => {}
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, headers: &str) -> EventRow {
        EventRow {
            slot: 1,
            seq,
            key: "k".into(),
            topic: "t".into(),
            event_type: "e".into(),
            payload: vec![1, 2],
            headers: headers.into(),
            event_id: format!("id-{seq}"),
        }
    }

    #[test]
    fn events_stop_at_the_first_unreadable_row() {
        let rows = vec![
            row(1, "{}"),
            row(2, r#"{"a":"b"}"#),
            row(3, r#"{"a":1}"#),
            row(4, "{}"),
        ];
        let (events, unreadable) = to_events(&rows);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].headers["a"], "b");
        let (index, reason) = unreadable.unwrap();
        assert_eq!(index, 2);
        assert!(reason.contains("headers"));
    }

    #[test]
    fn all_readable_rows_become_events_in_order() {
        let rows = vec![row(5, "{}"), row(9, "{}")];
        let (events, unreadable) = to_events(&rows);
        assert!(unreadable.is_none());
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 9]);
        assert_eq!(events[0].event_id, "id-5");
    }
}
