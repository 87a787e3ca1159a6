//! The textbook polling relay, the design most outbox write-ups show: its own table
//! `textbook_outbox(id bigserial primary key, key, topic, payload, published_at)` with a
//! partial index on pending rows, and one loop that selects 1000 pending rows by id,
//! then for each row sends it, awaits the broker's receipt, and marks that row
//! `published_at = now()` in its own statement.
//!
//! Contract: [`run`] pre-fills `events` rows (server-side, one INSERT ... SELECT) and
//! runs the loop until every row is published or `time_box` is over, whichever comes
//! first; the rate is rows published / time spent. Its producer does not batch: it
//! awaits every receipt before the next send, so a batching producer would only add
//! its batch delay to each message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Bytea, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use outbox_adapters::pulsar_client::{Producer, ProducerOptions, Pulsar, TokioExecutor};
use serde::Serialize;

use super::raw::outbox_like_message;
use super::BaselineError;

const SCHEMA: [&str; 2] = [
    "CREATE TABLE textbook_outbox (id bigserial PRIMARY KEY, key text NOT NULL, \
     topic text NOT NULL, payload bytea NOT NULL, published_at timestamptz)",
    "CREATE INDEX textbook_outbox_pending ON textbook_outbox (id) WHERE published_at IS NULL",
];

#[derive(Debug, Clone, Serialize)]
pub struct TextbookResult {
    pub prefilled: u64,
    pub published: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    /// The time box ended the run before every row was published.
    pub time_boxed: bool,
    pub time_box_s: f64,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    topic: String,
    #[diesel(sql_type = Bytea)]
    payload: Vec<u8>,
}

fn db_error(e: diesel::result::Error) -> BaselineError {
    BaselineError::Database(e.to_string())
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    conn: &mut AsyncPgConnection,
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    events: u64,
    keys: usize,
    payload_bytes: usize,
    time_box: Duration,
) -> Result<TextbookResult, BaselineError> {
    for statement in SCHEMA {
        diesel::sql_query(statement)
            .execute(conn)
            .await
            .map_err(db_error)?;
    }
    // md5 hex repeated, decoded: `payload_bytes` bytes per row, different per row.
    diesel::sql_query(
        "INSERT INTO textbook_outbox (key, topic, payload) \
         SELECT 'k' || (i % $2), $3, decode(lpad('', 2 * $4, md5(i::text)), 'hex') \
         FROM generate_series(1, $1) AS i",
    )
    .bind::<BigInt, _>(events as i64)
    .bind::<BigInt, _>(keys.max(1) as i64)
    .bind::<Text, _>(topic)
    .bind::<Integer, _>(payload_bytes as i32)
    .execute(conn)
    .await
    .map_err(db_error)?;
    diesel::sql_query("ANALYZE textbook_outbox")
        .execute(conn)
        .await
        .map_err(db_error)?;
    let mut producers: HashMap<String, Producer<TokioExecutor>> = HashMap::new();
    let pulsar_error =
        |e: outbox_adapters::pulsar_client::Error| BaselineError::Pulsar(e.to_string());
    let started = Instant::now();
    let mut published = 0u64;
    let mut time_boxed = false;
    'outer: loop {
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT id, key, topic, payload FROM textbook_outbox \
             WHERE published_at IS NULL ORDER BY id LIMIT 1000",
        )
        .load(conn)
        .await
        .map_err(db_error)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if started.elapsed() >= time_box {
                time_boxed = true;
                break 'outer;
            }
            if !producers.contains_key(&row.topic) {
                let full_topic = outbox_adapters::full_topic_name(&row.topic)
                    .map_err(|e| BaselineError::Pulsar(e.to_string()))?;
                let producer = client
                    .producer()
                    .with_topic(&full_topic)
                    .with_options(ProducerOptions::default())
                    .build()
                    .await
                    .map_err(pulsar_error)?;
                producers.insert(row.topic.clone(), producer);
            }
            let producer = producers
                .get_mut(&row.topic)
                .ok_or_else(|| BaselineError::Pulsar("producer vanished".into()))?;
            let message = outbox_like_message(row.key, row.id as u64, row.payload);
            producer
                .send_non_blocking(message)
                .await
                .map_err(pulsar_error)?
                .await
                .map_err(pulsar_error)?;
            diesel::sql_query("UPDATE textbook_outbox SET published_at = now() WHERE id = $1")
                .bind::<BigInt, _>(row.id)
                .execute(conn)
                .await
                .map_err(db_error)?;
            published += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    for (_, mut producer) in producers {
        let _ = producer.close().await;
    }
    Ok(TextbookResult {
        prefilled: events,
        published,
        seconds,
        events_per_s: published as f64 / seconds.max(1e-9),
        time_boxed,
        time_box_s: time_box.as_secs_f64(),
    })
}
