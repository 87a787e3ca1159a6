//! Turning a read batch into messages, and a broker outcome into what to delete.
//! Pure functions on the hot path (benchmarked in `benches/`).

use std::collections::BTreeMap;

use outbox_adapters::OutgoingEvent;

use crate::store::EventRow;

/// The events to publish: the rows up to (not including) the first one that cannot be
/// turned into a message, and that row with the reason, if any.
pub fn to_events(rows: &[EventRow]) -> (Vec<OutgoingEvent>, Option<(usize, String)>) {
    let mut events = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        // Most events carry no headers: skip the JSON parser for them.
        let parsed = if row.headers == "{}" {
            Ok(BTreeMap::new())
        } else {
            serde_json::from_str(&row.headers)
        };
        let headers: BTreeMap<String, String> = match parsed {
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

/// Primary keys of the rows the broker acknowledged: the first `acknowledged` rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckedKeys {
    pub slots: Vec<i32>,
    pub seqs: Vec<i64>,
}

impl AckedKeys {
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
}

pub fn acknowledged_keys(rows: &[EventRow], acknowledged: usize) -> AckedKeys {
    let prefix = &rows[..acknowledged.min(rows.len())];
    AckedKeys {
        slots: prefix.iter().map(|row| row.slot).collect(),
        seqs: prefix.iter().map(|row| row.seq).collect(),
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
    fn acknowledged_keys_are_the_prefix() {
        let rows = vec![row(5, "{}"), row(9, "{}"), row(11, "{}")];
        let acked = acknowledged_keys(&rows, 2);
        assert_eq!(acked.seqs, vec![5, 9]);
        assert_eq!(acked.slots, vec![1, 1]);
        assert!(acknowledged_keys(&rows, 0).is_empty());
        assert_eq!(acknowledged_keys(&rows, 7).seqs.len(), 3);
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
