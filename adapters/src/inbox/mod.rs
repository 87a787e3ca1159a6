//! The consumer side: an idempotent inbox (docs/consumers.md).
//!
//! [`Inbox`] subscribes to outbox topics and runs the user's [`Handler`] for each event
//! inside a diesel-async transaction on the consumer's own database, together with
//! recording the event's `event_id` in `outbox_inbox`. Contract:
//! - **exactly-once effects**: an event whose `event_id` is already recorded (a
//!   redelivery, a relay's duplicate, an operator's replay) is acknowledged without
//!   running the handler; the handler's writes and the record commit together;
//! - **acknowledged only after commit**: a crash anywhere before the commit leaves the
//!   message unacknowledged, so it is delivered again;
//! - **per-key order**: at most one event of a key is in flight; different keys run
//!   concurrently (up to `max_in_flight`). A failing event is retried in place with
//!   capped backoff while the key's later events wait behind it; after `max_attempts`
//!   handler failures it goes to the dead-letter topic (with the error and attempts as
//!   properties), is acknowledged, and the key goes on. Database outages (the pool or
//!   the connection failing) never count as attempts;
//! - a message without `event_id` follows [`MissingEventId`]; never a panic;
//! - the inbox table is checked at start: missing or of the wrong shape, [`Inbox::start`]
//!   refuses and names the fix ([`install`]).
//!
//! ```no_run
//! # use outbox_adapters::inbox::{Handler, HandlerError, InboxMessage};
//! # struct CreateShipment;
//! # impl Handler for CreateShipment {
//! #     fn handle<'a>(&'a self, _: &'a mut diesel_async::AsyncPgConnection, _: &'a InboxMessage)
//! #         -> futures::future::BoxFuture<'a, Result<(), HandlerError>> { Box::pin(async { Ok(()) }) }
//! # }
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel_async::pooled_connection::AsyncDieselConnectionManager;
//! use diesel_async::AsyncPgConnection;
//! use outbox_adapters::inbox::{self, Inbox, InboxConfig};
//! use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
//!
//! // The consumer's own database: the inbox table and the handler's writes live there.
//! let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(
//!     "postgres://shipping:secret@db:5432/shipping",
//! );
//! let pool = bb8::Pool::builder().max_size(8).build(manager).await?;
//! inbox::install(&mut *pool.get().await?).await?;
//!
//! let client: Pulsar<TokioExecutor> =
//!     Pulsar::builder("pulsar://broker:6650", TokioExecutor).build().await?;
//! let inbox = Inbox::start(&client, pool, InboxConfig::new(&["orders"], "shipping")).await?;
//! // `CreateShipment`: see `Handler`. Runs until Ctrl-C, then lets running handlers finish.
//! let report = inbox
//!     .run(CreateShipment, async {
//!         tokio::signal::ctrl_c().await.ok();
//!     })
//!     .await?;
//! println!("{} processed, {} duplicates skipped", report.processed, report.duplicates);
//! # Ok(())
//! # }
//! ```

mod run;
mod store;

use std::time::Duration;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncPgConnection;
use futures::future::BoxFuture;

pub use run::{Inbox, InboxReport};
pub use store::{install, INBOX_SQL};

/// The consumer's database pool (the inbox and the handler share its transactions).
pub type InboxPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// One event as the handler sees it.
#[derive(Debug, Clone)]
pub struct InboxMessage {
    /// The full name of the topic it came from.
    pub topic: String,
    /// The event's ordering key (the message key; empty when the message has none).
    pub key: String,
    /// The outbox's `event_id`; `None` only with [`MissingEventId::ProcessWithoutDeduplication`].
    pub event_id: Option<String>,
    /// The outbox's sequence number (`seq` property); `None` when it is missing or not a
    /// number, i.e. the message was not published by the outbox.
    pub seq: Option<i64>,
    /// The `event_type` property; `None` when missing.
    pub event_type: Option<String>,
    /// The event's body, as enqueued.
    pub payload: Vec<u8>,
    /// Every message property: `event_id`, `seq`, `event_type`, the event's headers, and
    /// `outbox-replay = true` on an operator's replay.
    pub properties: std::collections::HashMap<String, String>,
    /// 1 on the first try.
    pub attempt: u32,
}

/// What a handler returns on failure: any error. Database connection failures
/// (`diesel::result::Error` about a closed or broken connection) are treated as an
/// outage, retried without counting; everything else counts as an attempt.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The user's code for one event. It runs inside the inbox's transaction: write through
/// `conn` and the writes commit together with the inbox record, or not at all.
///
/// ```
/// use diesel::sql_types::Text;
/// use diesel_async::{AsyncPgConnection, RunQueryDsl};
/// use futures::future::BoxFuture;
/// use outbox_adapters::inbox::{Handler, HandlerError, InboxMessage};
///
/// struct CreateShipment;
///
/// impl Handler for CreateShipment {
///     fn handle<'a>(
///         &'a self,
///         conn: &'a mut AsyncPgConnection,
///         message: &'a InboxMessage,
///     ) -> BoxFuture<'a, Result<(), HandlerError>> {
///         Box::pin(async move {
///             if message.event_type.as_deref() != Some("OrderPlaced") {
///                 return Ok(()); // recorded as processed: not delivered again
///             }
///             diesel::sql_query("INSERT INTO shipments (order_id, body) VALUES ($1, $2)")
///                 .bind::<Text, _>(&message.key)
///                 .bind::<Text, _>(String::from_utf8(message.payload.clone())?)
///                 .execute(conn)
///                 .await?;
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles one event on `conn`, inside the transaction that records its `event_id`.
    /// `Ok` commits both and acknowledges the message; an error rolls both back and is
    /// retried (see [`HandlerError`]), so effects outside `conn` may happen more than once.
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        message: &'a InboxMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// How the inbox subscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// One active consumer per topic partition, the others on standby.
    Failover,
    /// Keys spread over the subscription's consumers (publish with
    /// `pulsar.batch_by_key`).
    KeyShared,
}

/// What to do with a message that has no `event_id` property (not published by the
/// outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingEventId {
    /// To the dead-letter topic, unprocessed (the default).
    DeadLetter,
    /// Run the handler without deduplication (at-least-once for such messages).
    ProcessWithoutDeduplication,
}

/// Inbox settings.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// Topics to consume, as enqueued: short (`orders`) or full names. At least one.
    pub topics: Vec<String>,
    /// The Pulsar subscription; also the inbox's consumer name (deduplication is per
    /// consumer name, so two services can share one inbox table).
    pub subscription: String,
    /// [`Subscription::Failover`] (the default) or [`Subscription::KeyShared`].
    pub subscription_type: Subscription,
    /// Handler failures of one event before it goes to the dead-letter topic.
    pub max_attempts: u32,
    /// Delay before the first retry of a failed event; it doubles per failure (plus up
    /// to a quarter of jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest delay between two retries of one event.
    pub backoff_max: Duration,
    /// Events processed concurrently (each of a different key).
    pub max_in_flight: usize,
    /// Where failed events go; default: `<topic>-DLQ` of the event's topic.
    pub dead_letter_topic: Option<String>,
    /// What happens to a message without `event_id`.
    pub missing_event_id: MissingEventId,
    /// How long `event_id`s are remembered. Must exceed the longest time a duplicate can
    /// arrive after the original (redeliveries, relay restarts, operator replays).
    pub retention: Duration,
}

impl InboxConfig {
    /// Settings for `subscription` on `topics`, with the defaults: failover, 5 attempts,
    /// backoff from 100 ms to 10 s, 16 events in flight, dead letters to `<topic>-DLQ`,
    /// messages without `event_id` dead-lettered, `event_id`s remembered for 7 days.
    ///
    /// ```
    /// use std::time::Duration;
    /// use outbox_adapters::inbox::{InboxConfig, Subscription};
    ///
    /// let config = InboxConfig {
    ///     subscription_type: Subscription::KeyShared,
    ///     max_attempts: 3,
    ///     ..InboxConfig::new(&["orders", "persistent://acme/billing/invoices"], "shipping")
    /// };
    /// assert_eq!(config.topics.len(), 2);
    /// assert_eq!(config.retention, Duration::from_secs(7 * 24 * 3600));
    /// ```
    pub fn new(topics: &[&str], subscription: &str) -> Self {
        InboxConfig {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            subscription: subscription.to_owned(),
            subscription_type: Subscription::Failover,
            max_attempts: 5,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            max_in_flight: 16,
            dead_letter_topic: None,
            missing_event_id: MissingEventId::DeadLetter,
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let base = self
            .backoff_min
            .saturating_mul(factor)
            .min(self.backoff_max);
        // Jitter: up to a quarter more, so that many failing keys do not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }
}

/// Why the inbox did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The inbox table is missing or has the wrong shape (what is wrong is named): run
    /// [`install`] (or [`INBOX_SQL`]) on the consumer's database.
    #[error("the inbox table is not usable: {0}; create it with outbox_adapters::inbox::install (or run adapters/src/inbox/inbox.sql) on the consumer's database")]
    Table(String),
    /// The [`InboxConfig`] cannot work (no topic, a zero limit, an invalid topic name);
    /// the message names it.
    #[error("bad inbox configuration: {0}")]
    Config(String),
    /// Pulsar could not be reached, or refused the subscription, at start.
    #[error("cannot subscribe to {topics}: {reason}")]
    Subscribe {
        /// The full topic names, comma-separated.
        topics: String,
        /// Pulsar's error.
        reason: String,
    },
    /// The consumer's database failed in [`install`] or [`Inbox::start`]. While the inbox
    /// runs, database outages are retried instead.
    #[error("the consumer's database failed: {0}")]
    Database(String),
    /// Pulsar failed while running (receiving, acknowledging, dead-lettering), or a
    /// handler panicked: [`Inbox::run`] stops. Unacknowledged messages are delivered
    /// again to the next consumer.
    #[error("receiving from Pulsar failed: {0}")]
    Receive(String),
}

impl From<diesel::result::Error> for InboxError {
    fn from(error: diesel::result::Error) -> Self {
        InboxError::Database(error.to_string())
    }
}

impl From<bb8::RunError<diesel_async::pooled_connection::PoolError>> for InboxError {
    fn from(error: bb8::RunError<diesel_async::pooled_connection::PoolError>) -> Self {
        InboxError::Database(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_bounded_jitter() {
        let config = InboxConfig::new(&["t"], "s");
        let first = config.backoff(1);
        assert!(first >= config.backoff_min && first <= config.backoff_min.mul_f64(1.25));
        let late = config.backoff(30);
        assert!(late >= config.backoff_max && late <= config.backoff_max.mul_f64(1.25));
    }
}
