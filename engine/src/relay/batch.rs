//! Turning a read page into messages.
//! Pure functions on the hot path (benchmarked in `benches/`).

use std::collections::BTreeMap;

use outbox_adapters::OutgoingEvent;

use crate::store::EventRow;

/// Where a row lives: what acknowledging or parking it needs once its event is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowKey {
    pub slot: i32,
    pub seq: i64,
    /// The writer's transaction (parking finds the row by it and `seq`).
    pub tx: i64,
}

/// A read batch split into what goes to the broker and what stays for bookkeeping.
#[derive(Debug, Default)]
pub struct Converted {
    /// The rows up to (not including) the first one that cannot become a message.
    pub events: Vec<OutgoingEvent>,
    /// The key of every row read, in order (also those after an unreadable one).
    pub keys: Vec<RowKey>,
    /// The first unreadable row's index and the reason.
    pub unreadable: Option<(usize, String)>,
}

/// Moves the rows' fields into events: no payload or string is copied on the way.
pub fn to_events(rows: Vec<EventRow>) -> Converted {
    let mut converted = Converted {
        events: Vec::with_capacity(rows.len()),
        keys: rows
            .iter()
            .map(|row| RowKey {
                slot: row.slot,
                seq: row.seq,
                tx: row.tx,
            })
            .collect(),
        unreadable: None,
    };
    for (index, row) in rows.into_iter().enumerate() {
        // Most events carry no headers: skip the JSON parser for them.
        let parsed = if row.headers == "{}" {
            Ok(BTreeMap::new())
        } else {
            serde_json::from_str(&row.headers)
        };
        let headers: BTreeMap<String, String> = match parsed {
            Ok(headers) => headers,
            Err(e) => {
                converted.unreadable = Some((
                    index,
                    format!("headers are not a JSON object of strings: {e}"),
                ));
                break;
            }
        };
        converted.events.push(OutgoingEvent {
            seq: row.seq,
            event_id: row.event_id,
            key: row.key,
            topic: row.topic,
            event_type: row.event_type,
            payload: row.payload,
            headers,
            sequence_id: 0,
        });
    }
    converted
}

/// Groups the readable events by topic, stably, so that each topic goes out in as few
/// broker batches (round trips) as possible. Per key and topic the order is unchanged;
/// `keys` is reordered alongside, so the acknowledged prefix still names the right rows.
/// Order across topics was never kept (different producers), so nothing is lost.
pub fn group_by_topic(converted: &mut Converted) {
    let n = converted.events.len();
    let Some(first) = converted.events.first() else {
        return;
    };
    if converted.events.iter().all(|e| e.topic == first.topic) {
        return; // the common case: one topic, nothing to move
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| converted.events[a].topic.cmp(&converted.events[b].topic));
    let keys: Vec<RowKey> = order.iter().map(|&i| converted.keys[i]).collect();
    converted.keys[..n].copy_from_slice(&keys);
    let mut slots: Vec<Option<OutgoingEvent>> = std::mem::take(&mut converted.events)
        .into_iter()
        .map(Some)
        .collect();
    converted.events = order
        .iter()
        .map(|&i| slots[i].take().expect("each index once"))
        .collect();
}

/// How far a page got: the rows are done up to `through` (every row with a lower or
/// equal sequence number is done), and `complete` when no row of the page is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DonePrefix {
    pub through: Option<i64>,
    /// The first row not done, if any.
    pub first_open: Option<i64>,
}

/// The sequence prefix of a page that is done (acknowledged or parked). Topics are sent
/// grouped, so the acknowledged events are a prefix of the *send* order, not of the
/// sequence order; the range's position may only move past a sequence prefix.
pub fn done_prefix(rows: &[RowKey], done: &std::collections::HashSet<i64>) -> DonePrefix {
    let mut seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    seqs.sort_unstable();
    let mut through = None;
    for seq in seqs {
        if done.contains(&seq) {
            through = Some(seq);
        } else {
            return DonePrefix {
                through,
                first_open: Some(seq),
            };
        }
    }
    DonePrefix {
        through,
        first_open: None,
    }
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
            tx: 100,
            created_s: 0.0,
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
        let converted = to_events(rows);
        assert_eq!(converted.events.len(), 2);
        assert_eq!(converted.events[1].headers["a"], "b");
        assert_eq!(converted.keys.len(), 4, "every row keeps its key");
        let (index, reason) = converted.unreadable.unwrap();
        assert_eq!(index, 2);
        assert!(reason.contains("headers"));
    }

    #[test]
    fn grouping_by_topic_keeps_each_topics_order_and_the_keys_alongside() {
        let mut rows = vec![
            row(1, "{}"),
            row(2, "{}"),
            row(3, "{}"),
            row(4, "{}"),
            row(5, r#"{"a":1}"#),
        ];
        rows[1].topic = "b".into();
        rows[3].topic = "b".into();
        rows[2].topic = "a".into();
        let mut converted = to_events(rows);
        group_by_topic(&mut converted);
        let seqs: Vec<i64> = converted.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 2, 4, 1]);
        let keys: Vec<i64> = converted.keys.iter().map(|k| k.seq).collect();
        assert_eq!(keys, vec![3, 2, 4, 1, 5], "the unreadable row stays last");
    }

    #[test]
    fn the_done_prefix_stops_at_the_first_open_sequence_number() {
        let keys = to_events(vec![row(5, "{}"), row(9, "{}"), row(11, "{}")]).keys;
        let done = |seqs: &[i64]| seqs.iter().copied().collect();
        assert_eq!(
            done_prefix(&keys, &done(&[5, 11])),
            DonePrefix {
                through: Some(5),
                first_open: Some(9)
            }
        );
        assert_eq!(
            done_prefix(&keys, &done(&[9, 11])),
            DonePrefix {
                through: None,
                first_open: Some(5)
            }
        );
        assert_eq!(
            done_prefix(&keys, &done(&[5, 9, 11])),
            DonePrefix {
                through: Some(11),
                first_open: None
            }
        );
    }

    #[test]
    fn all_readable_rows_become_events_in_order() {
        let converted = to_events(vec![row(5, "{}"), row(9, "{}")]);
        assert!(converted.unreadable.is_none());
        let seqs: Vec<i64> = converted.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![5, 9]);
        assert_eq!(converted.events[0].event_id, "id-5");
    }
}
