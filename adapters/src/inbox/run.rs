//! The inbox's dispatcher: reads messages, keeps at most one per key in flight, runs
//! each in its own task, acknowledges after commit (a broker batch once all of its
//! messages are committed), dead-letters after `max_attempts`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::TryStreamExt;
use pulsar::consumer::Message;
use pulsar::{Consumer, Producer, Pulsar, SubType, TokioExecutor};
use tokio::task::JoinSet;

use super::{store, Handler, InboxConfig, InboxError, InboxMessage, InboxPool, MissingEventId};
use crate::pulsar::consume::{build_consumer, properties_of};
use crate::pulsar::{full_topic_name, PROPERTY_EVENT_ID, PROPERTY_EVENT_TYPE, PROPERTY_SEQ};

/// Messages held at once (running and waiting behind their key): reading pauses there.
const MAX_BUFFERED: usize = 10_000;
/// How long a graceful stop waits for running handlers before it abandons them (their
/// transactions roll back; the messages are delivered again).
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often expired inbox records are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// What a run did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxReport {
    /// Handler committed.
    pub processed: u64,
    /// Already in the inbox: acknowledged without running the handler.
    pub duplicates: u64,
    /// Sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Handler failures retried.
    pub retries: u64,
}

/// A subscription with its handler's database; see the module contract.
pub struct Inbox {
    client: Pulsar<TokioExecutor>,
    pool: InboxPool,
    config: Arc<InboxConfig>,
    consumer: Consumer<Vec<u8>, TokioExecutor>,
    dead_letter_producers: HashMap<String, Producer<TokioExecutor>>,
    /// Finished messages of broker batches not finished yet, per entry: a broker that
    /// does not acknowledge by batch index takes the acknowledgement of one message as
    /// that of its whole batch, so a batch is acknowledged only once all its messages
    /// are done (else a crash would lose the rest of it).
    entries: HashMap<Entry, Unfinished>,
}

/// Messages of a broker batch not finished yet, and those finished.
type Unfinished = (i32, Vec<Message<Vec<u8>>>);

/// A broker entry: topic, ledger, entry.
type Entry = (String, u64, u64);

fn entry_of(message: &Message<Vec<u8>>) -> Option<(Entry, i32)> {
    let size = message.metadata().num_messages_in_batch?;
    if size <= 1 {
        return None;
    }
    let id = message.message_id();
    Some(((message.topic.clone(), id.ledger_id, id.entry_id), size))
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("config", &self.config)
            .finish()
    }
}

enum Outcome {
    Processed { retries: u32 },
    Duplicate,
    DeadLetter { reason: String, attempts: u32 },
}

enum AttemptError {
    /// The database, not the event: retried without counting.
    Outage(String),
    Handler(String),
}

enum TxError {
    Database(DieselError),
    Handler(super::HandlerError),
}

impl From<DieselError> for TxError {
    fn from(error: DieselError) -> Self {
        TxError::Database(error)
    }
}

fn is_outage(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure,
            _
        ) | DieselError::BrokenTransactionManager
    )
}

impl Inbox {
    /// Checks the inbox table and subscribes. Refuses a missing or misshapen table, and a
    /// configuration that cannot work, naming the problem. Nothing is received until
    /// [`Inbox::run`].
    ///
    /// ```no_run
    /// # async fn f(pool: outbox_adapters::inbox::InboxPool) -> Result<(), Box<dyn std::error::Error>> {
    /// use outbox_adapters::inbox::{Inbox, InboxConfig};
    /// use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
    ///
    /// let client: Pulsar<TokioExecutor> =
    ///     Pulsar::builder("pulsar://broker:6650", TokioExecutor).build().await?;
    /// // `pool`: the consumer database's pool, where `inbox::install` created the table.
    /// let inbox = Inbox::start(&client, pool, InboxConfig::new(&["orders"], "shipping")).await?;
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(
        client: &Pulsar<TokioExecutor>,
        pool: InboxPool,
        config: InboxConfig,
    ) -> Result<Inbox, InboxError> {
        if config.topics.is_empty() {
            return Err(InboxError::Config("topics: name at least one".into()));
        }
        if config.max_attempts == 0 || config.max_in_flight == 0 {
            return Err(InboxError::Config(
                "max_attempts and max_in_flight must be at least 1".into(),
            ));
        }
        {
            let mut conn = pool.get().await?;
            store::check(&mut conn).await?;
        }
        let topics = config
            .topics
            .iter()
            .map(|t| full_topic_name(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| InboxError::Config(e.to_string()))?;
        let sub_type = match config.subscription_type {
            super::Subscription::Failover => SubType::Failover,
            super::Subscription::KeyShared => SubType::KeyShared,
        };
        let consumer = build_consumer(client, &topics, &config.subscription, sub_type)
            .await
            .map_err(|e| InboxError::Subscribe {
                topics: topics.join(","),
                reason: e.to_string(),
            })?;
        Ok(Inbox {
            client: client.clone(),
            pool,
            config: Arc::new(config),
            consumer,
            dead_letter_producers: HashMap::new(),
            entries: HashMap::new(),
        })
    }

    /// Runs until `shutdown` completes (then lets running handlers finish, bounded) or
    /// Pulsar fails for good.
    ///
    /// ```no_run
    /// # use outbox_adapters::inbox::{Handler, HandlerError, InboxMessage};
    /// # struct CreateShipment;
    /// # impl Handler for CreateShipment {
    /// #     fn handle<'a>(&'a self, _: &'a mut diesel_async::AsyncPgConnection, _: &'a InboxMessage)
    /// #         -> futures::future::BoxFuture<'a, Result<(), HandlerError>> { Box::pin(async { Ok(()) }) }
    /// # }
    /// # async fn f(inbox: outbox_adapters::inbox::Inbox) -> Result<(), outbox_adapters::inbox::InboxError> {
    /// // `CreateShipment` implements `Handler`.
    /// let report = inbox
    ///     .run(CreateShipment, async {
    ///         tokio::signal::ctrl_c().await.ok();
    ///     })
    ///     .await?;
    /// println!("{report:?}");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run<H: Handler>(
        mut self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<InboxReport, InboxError> {
        let handler = Arc::new(handler);
        let mut report = InboxReport::default();
        // Per key: the message in flight first, then those waiting behind it.
        let mut keys: HashMap<String, VecDeque<Message<Vec<u8>>>> = HashMap::new();
        let mut buffered = 0usize;
        let mut tasks: JoinSet<(String, Outcome)> = JoinSet::new();
        let mut retention = tokio::time::interval(RETENTION_EVERY);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    let (key, outcome) = joined.map_err(|e| InboxError::Receive(format!("a handler task failed: {e}")))?;
                    self.finish(&mut keys, &key, outcome, &mut report).await?;
                    buffered -= 1;
                    if let Some(next) = keys.get(&key).and_then(|queue| queue.front()) {
                        tasks.spawn(process(self.pool.clone(), handler.clone(), self.config.clone(), inbox_message(next)));
                    } else {
                        keys.remove(&key);
                    }
                }
                next = self.consumer.try_next(), if buffered < MAX_BUFFERED => {
                    let message = match next {
                        Ok(Some(message)) => message,
                        Ok(None) => return Err(InboxError::Receive("the consumer stream ended".into())),
                        Err(e) => return Err(InboxError::Receive(e.to_string())),
                    };
                    buffered += 1;
                    let key = message.key().unwrap_or_default();
                    let queue = keys.entry(key).or_default();
                    queue.push_back(message);
                    if queue.len() == 1 {
                        tasks.spawn(process(self.pool.clone(), handler.clone(), self.config.clone(), inbox_message(&queue[0])));
                    }
                }
                _ = retention.tick() => self.expire().await,
            }
        }
        // Graceful stop: read nothing more; let running handlers finish, bounded.
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(Ok((key, outcome)))) => {
                    self.finish(&mut keys, &key, outcome, &mut report).await?;
                }
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        running = tasks.len(),
                        "inbox stop: abandoning running handlers; their events are delivered again"
                    );
                    tasks.abort_all();
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Acknowledges the key's message in flight (after dead-lettering it if need be) and
    /// takes it off the key's queue.
    async fn finish(
        &mut self,
        keys: &mut HashMap<String, VecDeque<Message<Vec<u8>>>>,
        key: &str,
        outcome: Outcome,
        report: &mut InboxReport,
    ) -> Result<(), InboxError> {
        let Some(message) = keys.get_mut(key).and_then(|queue| queue.pop_front()) else {
            return Ok(());
        };
        match outcome {
            Outcome::Processed { retries } => {
                report.processed += 1;
                report.retries += u64::from(retries);
            }
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::DeadLetter { reason, attempts } => {
                report.dead_lettered += 1;
                report.retries += u64::from(attempts.saturating_sub(1));
                self.dead_letter(&message, &reason, attempts).await?;
            }
        }
        self.acknowledge(message).await
    }

    /// Acknowledges a finished message, or keeps it until the rest of its broker batch
    /// is finished too (see `entries`); then every message of the batch is acknowledged.
    async fn acknowledge(&mut self, message: Message<Vec<u8>>) -> Result<(), InboxError> {
        let done = match entry_of(&message) {
            None => vec![message],
            Some((entry, size)) => {
                let (left, held) = self
                    .entries
                    .entry(entry.clone())
                    .or_insert((size, Vec::new()));
                *left -= 1;
                held.push(message);
                if *left > 0 {
                    return Ok(());
                }
                self.entries
                    .remove(&entry)
                    .map(|(_, held)| held)
                    .unwrap_or_default()
            }
        };
        for message in &done {
            self.consumer
                .ack(message)
                .await
                .map_err(|e| InboxError::Receive(format!("acknowledging failed: {e}")))?;
        }
        Ok(())
    }

    async fn dead_letter(
        &mut self,
        message: &Message<Vec<u8>>,
        reason: &str,
        attempts: u32,
    ) -> Result<(), InboxError> {
        let topic = self
            .config
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}-DLQ", message.topic));
        tracing::error!(topic = %message.topic, dead_letter_topic = %topic, key = ?message.key(), attempts, %reason, "inbox: event sent to the dead-letter topic");
        if !self.dead_letter_producers.contains_key(&topic) {
            let producer = self
                .client
                .producer()
                .with_topic(&topic)
                .build()
                .await
                .map_err(|e| InboxError::Receive(format!("dead-letter topic {topic}: {e}")))?;
            self.dead_letter_producers.insert(topic.clone(), producer);
        }
        let producer = self
            .dead_letter_producers
            .get_mut(&topic)
            .expect("inserted just above");
        let mut properties = properties_of(message);
        properties.insert("outbox-inbox-error".into(), reason.to_owned());
        properties.insert("outbox-inbox-attempts".into(), attempts.to_string());
        properties.insert("outbox-inbox-origin-topic".into(), message.topic.clone());
        let outgoing = pulsar::producer::Message {
            payload: message.payload.data.clone(),
            properties,
            partition_key: message.key(),
            ..Default::default()
        };
        producer
            .send_non_blocking(outgoing)
            .await
            .map_err(|e| InboxError::Receive(format!("dead-letter topic {topic}: {e}")))?
            .await
            .map_err(|e| InboxError::Receive(format!("dead-letter topic {topic}: {e}")))?;
        Ok(())
    }

    async fn expire(&self) {
        let Ok(mut conn) = self.pool.get().await else {
            return;
        };
        let retention = self.config.retention.as_secs_f64();
        match store::expire(&mut conn, &self.config.subscription, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "inbox records past retention deleted"),
            Err(error) => tracing::warn!(%error, "inbox retention failed; retried later"),
        }
    }
}

fn inbox_message(message: &Message<Vec<u8>>) -> InboxMessage {
    let properties = properties_of(message);
    InboxMessage {
        topic: message.topic.clone(),
        key: message.key().unwrap_or_default(),
        event_id: properties.get(PROPERTY_EVENT_ID).cloned(),
        seq: properties.get(PROPERTY_SEQ).and_then(|s| s.parse().ok()),
        event_type: properties.get(PROPERTY_EVENT_TYPE).cloned(),
        payload: message.payload.data.clone(),
        properties,
        attempt: 1,
    }
}

/// Runs one message to an outcome: retried in place (the key's later messages wait).
async fn process<H: Handler>(
    pool: InboxPool,
    handler: Arc<H>,
    config: Arc<InboxConfig>,
    mut message: InboxMessage,
) -> (String, Outcome) {
    let key = message.key.clone();
    if message.event_id.is_none() && config.missing_event_id == MissingEventId::DeadLetter {
        return (
            key,
            Outcome::DeadLetter {
                reason: "the message has no event_id property: not published by the outbox".into(),
                attempts: 0,
            },
        );
    }
    let mut failures = 0u32;
    let mut outages = 0u32;
    loop {
        message.attempt = failures + 1;
        match attempt(&pool, handler.as_ref(), &config.subscription, &message).await {
            Ok(true) => return (key, Outcome::Processed { retries: failures }),
            Ok(false) => return (key, Outcome::Duplicate),
            Err(AttemptError::Outage(reason)) => {
                outages += 1;
                tracing::warn!(%reason, "inbox: the database failed; retrying the event");
                tokio::time::sleep(config.backoff(outages.min(8))).await;
            }
            Err(AttemptError::Handler(reason)) => {
                failures += 1;
                if failures >= config.max_attempts {
                    return (
                        key,
                        Outcome::DeadLetter {
                            reason,
                            attempts: failures,
                        },
                    );
                }
                tracing::warn!(key = %message.key, attempt = failures, %reason, "inbox: handler failed; retrying, the key's later events wait");
                tokio::time::sleep(config.backoff(failures)).await;
            }
        }
    }
}

/// One transaction: record the event_id (a duplicate ends here), run the handler, commit.
async fn attempt<H: Handler>(
    pool: &InboxPool,
    handler: &H,
    consumer: &str,
    message: &InboxMessage,
) -> Result<bool, AttemptError> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| AttemptError::Outage(e.to_string()))?;
    let result = run_in_transaction(&mut conn, handler, consumer, message).await;
    match result {
        Ok(fresh) => Ok(fresh),
        Err(TxError::Database(error)) => Err(AttemptError::Outage(error.to_string())),
        Err(TxError::Handler(error)) => match error.downcast_ref::<DieselError>() {
            Some(db) if is_outage(db) => Err(AttemptError::Outage(db.to_string())),
            _ => Err(AttemptError::Handler(error.to_string())),
        },
    }
}

async fn run_in_transaction<H: Handler>(
    conn: &mut AsyncPgConnection,
    handler: &H,
    consumer: &str,
    message: &InboxMessage,
) -> Result<bool, TxError> {
    conn.transaction::<bool, TxError, _>(async |conn| {
        if let Some(event_id) = &message.event_id {
            if !store::record(conn, consumer, event_id, message).await? {
                return Ok(false);
            }
        }
        handler
            .handle(conn, message)
            .await
            .map_err(TxError::Handler)?;
        Ok(true)
    })
    .await
}
