//! Enqueue: add events to the outbox inside the caller's own transaction.
//!
//! ```text
//! conn.transaction(async |conn| {
//!     diesel::sql_query("UPDATE accounts SET ...").execute(conn).await?;
//!     outbox_engine::enqueue(conn, &NewEvent::new("account-7", "accounts", "Debited", body)).await?;
//!     Ok::<_, anyhow::Error>(())
//! }).await?;
//! ```
//!
//! Contract:
//! - nothing is visible to the relay unless the caller's transaction commits; a rollback
//!   removes the event with everything else;
//! - per key, sequence order equals commit order, whatever locks the application takes:
//!   the SQL functions lock the key (transaction-scoped advisory lock on a 64-bit hash)
//!   before drawing the sequence number, and hold it until commit. Writers of different
//!   keys do not wait for each other. Two transactions that enqueue for the same key are
//!   therefore serialised from their first enqueue of that key to their commit;
//! - called outside a transaction, each call commits on its own;
//! - invalid input is rejected before anything is written, with an error naming the field.
//!
//! Rust and other languages share one code path: these functions call the SQL functions
//! `outbox_enqueue` and `outbox_enqueue_batch`, which are the public SQL interface.

use std::collections::BTreeMap;

use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::store::prepared::prepared;
use crate::store::StoreError;

/// Largest payload accepted; equals the SQL function `outbox_max_payload_bytes()`.
pub const MAX_PAYLOAD_BYTES: usize = 5_177_344;
/// Largest whole message accepted (payload, key twice, event type, headers); equals the
/// SQL function `outbox_max_message_bytes()`, and stays below the broker's default 5 MiB
/// message limit with room for the relay's own properties and framing.
pub const MAX_MESSAGE_BYTES: usize = 5_177_344;
/// Header names reserved for the message properties the relay sets itself.
pub const RESERVED_HEADERS: [&str; 3] = ["event_id", "seq", "event_type"];

/// An event to add to the outbox.
///
/// ```
/// # fn main() -> Result<(), outbox_engine::EnqueueError> {
/// use outbox_engine::NewEvent;
///
/// let event = NewEvent::new("order-42", "orders", "OrderPlaced", br#"{"total":1999}"#.to_vec())
///     .with_header("trace_id", "4bf92f3577b34da6");
/// assert_eq!(event.headers["trace_id"], "4bf92f3577b34da6");
/// event.validate()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Ordering key: events of one key are published in commit order.
    pub key: String,
    /// Short topic name (`orders` → `persistent://public/default/orders`) or full name.
    pub topic: String,
    /// What happened (`OrderPlaced`); published as the `event_type` property. Not empty.
    pub event_type: String,
    /// The body, opaque to the outbox (JSON, protobuf, ...): the message payload. At
    /// most [`MAX_PAYLOAD_BYTES`].
    pub payload: Vec<u8>,
    /// Published as message properties.
    pub headers: BTreeMap<String, String>,
}

impl NewEvent {
    /// An event without headers: `key` orders it, `topic` routes it, `event_type` and
    /// `payload` are what consumers read. Nothing is checked until [`Self::validate`] or
    /// [`enqueue`].
    pub fn new(
        key: impl Into<String>,
        topic: impl Into<String>,
        event_type: impl Into<String>,
        payload: impl Into<Vec<u8>>,
    ) -> Self {
        NewEvent {
            key: key.into(),
            topic: topic.into(),
            event_type: event_type.into(),
            payload: payload.into(),
            headers: BTreeMap::new(),
        }
    }

    /// Adds a header, published as a message property; the same name again replaces the
    /// value. The names in [`RESERVED_HEADERS`] are refused by [`Self::validate`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Checks what the relay could never publish. The SQL functions check the same.
    ///
    /// ```
    /// use outbox_engine::{EnqueueError, NewEvent};
    ///
    /// let event = NewEvent::new("order-42", "orders", "OrderPlaced", Vec::new())
    ///     .with_header("seq", "7"); // reserved: the relay sets it
    /// assert!(matches!(
    ///     event.validate(),
    ///     Err(EnqueueError::Invalid { field: "headers", .. })
    /// ));
    /// ```
    pub fn validate(&self) -> Result<(), EnqueueError> {
        if self.key.is_empty() {
            return Err(EnqueueError::Invalid {
                field: "key",
                reason:
                    "must not be empty: pass the id of the entity whose events must stay in order"
                        .into(),
            });
        }
        outbox_adapters::full_topic_name(&self.topic).map_err(|e| EnqueueError::Invalid {
            field: "topic",
            reason: e.to_string(),
        })?;
        if self.event_type.is_empty() {
            return Err(EnqueueError::Invalid {
                field: "event_type",
                reason: "must not be empty".into(),
            });
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(EnqueueError::Invalid {
                field: "payload",
                reason: format!(
                    "{} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes: store large bodies elsewhere and put a reference in the event",
                    self.payload.len()
                ),
            });
        }
        let message_bytes = self.message_bytes();
        if message_bytes > MAX_MESSAGE_BYTES {
            return Err(EnqueueError::Invalid {
                field: "event",
                reason: format!(
                    "message of {message_bytes} bytes (payload, key twice, event type, headers) exceeds the broker limit of {MAX_MESSAGE_BYTES} bytes: shorten the key and headers, or store large bodies elsewhere"
                ),
            });
        }
        if let Some(name) = self
            .headers
            .keys()
            .find(|name| name.is_empty() || RESERVED_HEADERS.contains(&name.as_str()))
        {
            return Err(EnqueueError::Invalid {
                field: "headers",
                reason: format!(
                    "header name {name:?} is empty or reserved (event_id, seq, event_type are set by the relay)"
                ),
            });
        }
        Ok(())
    }

    /// The size the SQL function `outbox_message_bytes` computes (headers as JSON text,
    /// approximated here; the database has the last word).
    pub fn message_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
            + 2;
        self.payload.len() + 2 * self.key.len() + self.event_type.len() + headers + 128
    }

    fn headers_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

/// Why an event was not enqueued. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The event breaks a rule of [`NewEvent::validate`]: permanent, change the event.
    #[error("invalid event: {field} {reason}")]
    Invalid {
        /// `key`, `topic`, `event_type`, `payload`, `headers`, or `event` (the whole
        /// message is too large).
        field: &'static str,
        /// What is wrong and what to do instead.
        reason: String,
    },
    /// PostgreSQL failed or refused the call (see [`StoreError`]; a refusal by the SQL
    /// function's own checks is [`StoreError::Rejected`]). Whatever the caller's
    /// transaction wrote must be rolled back; [`StoreError::is_transient`] says whether
    /// running it again can help.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lets `EnqueueError` be the error type of the caller's `conn.transaction(..)`.
impl From<diesel::result::Error> for EnqueueError {
    fn from(error: diesel::result::Error) -> Self {
        EnqueueError::Store(error.into())
    }
}

#[derive(diesel::QueryableByName)]
struct Seq {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

#[derive(diesel::QueryableByName)]
struct Seqs {
    #[diesel(sql_type = Array<BigInt>)]
    seqs: Vec<i64>,
}

/// Adds one event inside the caller's transaction; returns its sequence number.
///
/// The event becomes visible to the relay when the transaction commits, and disappears
/// with it on rollback.
///
/// ```no_run
/// # async fn f() -> Result<(), outbox_engine::EnqueueError> {
/// use diesel_async::{AsyncConnection, RunQueryDsl};
/// use outbox_engine::{enqueue, EnqueueError, NewEvent};
///
/// // A connection of your own (a pooled one works the same).
/// let mut conn = outbox_engine::store::connect("postgres://app:secret@db:5432/bank").await?;
/// // The debit and its event commit together, or neither does.
/// let seq = conn
///     .transaction::<_, EnqueueError, _>(async |conn| {
///         diesel::sql_query("UPDATE accounts SET balance = balance - 100 WHERE id = 7")
///             .execute(conn)
///             .await?;
///         let event = NewEvent::new("account-7", "accounts", "Debited", br#"{"cents":100}"#.to_vec());
///         enqueue(conn, &event).await
///     })
///     .await?;
/// println!("enqueued as seq {seq}");
/// # Ok(())
/// # }
/// ```
pub async fn enqueue(conn: &mut AsyncPgConnection, event: &NewEvent) -> Result<i64, EnqueueError> {
    event.validate()?;
    let row: Seq = prepared("SELECT outbox_enqueue($1, $2, $3, $4, $5) AS seq")
        .bind::<Text, _>(&event.key)
        .bind::<Text, _>(&event.topic)
        .bind::<Text, _>(&event.event_type)
        .bind::<Bytea, _>(&event.payload)
        .bind::<Jsonb, _>(event.headers_json())
        .get_result(conn)
        .await
        .map_err(StoreError::from)?;
    Ok(row.seq)
}

/// Adds several events, in order, inside the caller's transaction; returns their
/// sequence numbers in the same order. All or nothing: one invalid event rejects the call.
/// One round trip, however many events; an empty slice costs none.
///
/// ```no_run
/// # async fn f(conn: &mut diesel_async::AsyncPgConnection) -> Result<(), outbox_engine::EnqueueError> {
/// use outbox_engine::{enqueue_batch, NewEvent};
///
/// let events = [
///     NewEvent::new("order-42", "orders", "OrderPlaced", br#"{"total":1999}"#.to_vec()),
///     NewEvent::new("order-42", "orders", "OrderPaid", br#"{"method":"card"}"#.to_vec()),
/// ];
/// // Inside the caller's transaction when `conn` has one open; else committed at once.
/// let seqs = enqueue_batch(conn, &events).await?;
/// assert!(seqs[0] < seqs[1], "published in this order");
/// # Ok(())
/// # }
/// ```
pub async fn enqueue_batch(
    conn: &mut AsyncPgConnection,
    events: &[NewEvent],
) -> Result<Vec<i64>, EnqueueError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    for event in events {
        event.validate()?;
    }
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<&[u8]> = events.iter().map(|e| e.payload.as_slice()).collect();
    let headers: Vec<serde_json::Value> = events.iter().map(NewEvent::headers_json).collect();
    let row: Seqs = prepared("SELECT outbox_enqueue_batch($1, $2, $3, $4, $5) AS seqs")
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<Text>, _>(topics)
        .bind::<Array<Text>, _>(types)
        .bind::<Array<Bytea>, _>(payloads)
        .bind::<Array<Jsonb>, _>(headers)
        .get_result(conn)
        .await
        .map_err(StoreError::from)?;
    Ok(row.seqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> NewEvent {
        NewEvent::new("k", "orders", "Placed", b"x".to_vec())
    }

    #[test]
    fn valid_event_passes() {
        event().with_header("trace", "1").validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                NewEvent {
                    key: String::new(),
                    ..event()
                },
                "key",
            ),
            (
                NewEvent {
                    topic: "bad topic".into(),
                    ..event()
                },
                "topic",
            ),
            (
                NewEvent {
                    event_type: String::new(),
                    ..event()
                },
                "event_type",
            ),
            (
                NewEvent {
                    payload: vec![0; MAX_PAYLOAD_BYTES + 1],
                    ..event()
                },
                "payload",
            ),
            (event().with_header("seq", "1"), "headers"),
        ];
        for (bad, field) in cases {
            match bad.validate() {
                Err(EnqueueError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: expected Invalid, got {other:?}"),
            }
        }
    }
}
