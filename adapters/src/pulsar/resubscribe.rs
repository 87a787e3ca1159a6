//! A subscription that outlives broker restarts: an [`EventConsumer`] that, on a
//! receive error, subscribes again under the same name and reads on from the broker's
//! cursor. Shared by the integration tests and the load driver.
//!
//! Contract:
//! - [`ResubscribingConsumer::subscribe`] subscribes once;
//!   [`ResubscribingConsumer::subscribe_until`] retries until a deadline, pausing
//!   [`ResubscribePolicy::pause`] between attempts (right after a broker restart the
//!   bookie may refuse new ledgers for a moment);
//! - [`ResubscribingConsumer::next`] is [`EventConsumer::next`], except that a receive
//!   error drops the consumer, pauses and subscribes again, and so on until an event
//!   arrives, `wait` passes quietly, or [`ResubscribePolicy::max_resubscribes`]
//!   resubscribes (failed attempts included) have been spent over the consumer's life:
//!   the next error is then [`ConsumeError::GaveUp`]. A call can so take up to that many
//!   pauses and subscribe attempts. A message that is not an outbox event is returned as
//!   [`ConsumeError::NotAnOutboxEvent`] and the stream goes on, nothing resubscribed;
//! - nothing is lost across a resubscribe: [`EventConsumer`] acknowledges whole entries
//!   it has handed out, so the new consumer starts at the first entry not handed out
//!   whole (some events may arrive twice);
//! - [`ResubscribingConsumer::resubscribes`] counts resubscribes so far.

use std::time::{Duration, Instant};

use pulsar::{Pulsar, TokioExecutor};

use super::{connect, ConsumeError, EventConsumer, PulsarConfig, ReceivedEvent};

/// How hard a [`ResubscribingConsumer`] tries.
#[derive(Debug, Clone)]
pub struct ResubscribePolicy {
    /// Resubscribes allowed over the consumer's life.
    pub max_resubscribes: u32,
    /// Pause before each resubscribe, and between initial subscribe attempts.
    pub pause: Duration,
    /// Connect a new client before each retry: after a broker restart, an old client
    /// can hold on to a connection the broker no longer serves. `None` keeps the one
    /// client.
    pub reconnect: Option<PulsarConfig>,
}

impl Default for ResubscribePolicy {
    fn default() -> Self {
        ResubscribePolicy {
            max_resubscribes: 20,
            pause: Duration::from_millis(500),
            reconnect: None,
        }
    }
}

/// See the module docs.
pub struct ResubscribingConsumer {
    client: Pulsar<TokioExecutor>,
    topics: Vec<String>,
    subscription: String,
    policy: ResubscribePolicy,
    /// `None` after a receive error, until subscribing again succeeds.
    consumer: Option<EventConsumer>,
    resubscribes: u32,
}

impl std::fmt::Debug for ResubscribingConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResubscribingConsumer")
            .field("topics", &self.topics)
            .field("subscription", &self.subscription)
            .field("policy", &self.policy)
            .field("resubscribes", &self.resubscribes)
            .finish_non_exhaustive()
    }
}

impl ResubscribingConsumer {
    /// Subscribes to `topics` (short or full names) as the only consumer of
    /// `subscription`, from the earliest retained message; one attempt.
    pub async fn subscribe(
        client: Pulsar<TokioExecutor>,
        topics: &[&str],
        subscription: &str,
        policy: ResubscribePolicy,
    ) -> Result<Self, ConsumeError> {
        Self::subscribe_until(client, topics, subscription, policy, Instant::now()).await
    }

    /// As [`Self::subscribe`], retrying until `deadline`; the error is the last attempt's.
    pub async fn subscribe_until(
        client: Pulsar<TokioExecutor>,
        topics: &[&str],
        subscription: &str,
        policy: ResubscribePolicy,
        deadline: Instant,
    ) -> Result<Self, ConsumeError> {
        let mut consumer = Self::unsubscribed(client, topics, subscription, policy);
        let mut retry = false;
        loop {
            match consumer.open(retry).await {
                Ok(opened) => {
                    consumer.consumer = Some(opened);
                    return Ok(consumer);
                }
                Err(error) if Instant::now() < deadline => {
                    tracing::warn!(%error, "cannot subscribe yet; retrying");
                    tokio::time::sleep(consumer.policy.pause).await;
                    retry = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn unsubscribed(
        client: Pulsar<TokioExecutor>,
        topics: &[&str],
        subscription: &str,
        policy: ResubscribePolicy,
    ) -> Self {
        ResubscribingConsumer {
            client,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            subscription: subscription.to_owned(),
            policy,
            consumer: None,
            resubscribes: 0,
        }
    }

    /// One subscribe attempt; a retry first connects a new client if the policy says so.
    async fn open(&mut self, retry: bool) -> Result<EventConsumer, ConsumeError> {
        if let (true, Some(config)) = (retry, &self.policy.reconnect) {
            self.client = connect(config).await.map_err(|e| ConsumeError::Subscribe {
                topic: self.topics.join(","),
                reason: e.to_string(),
            })?;
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        EventConsumer::subscribe(&self.client, &topics, &self.subscription).await
    }

    /// Resubscribes so far.
    pub fn resubscribes(&self) -> u32 {
        self.resubscribes
    }

    /// The next event, or `None` when nothing arrives within `wait` (see the module docs
    /// for what happens on errors).
    pub async fn next(&mut self, wait: Duration) -> Result<Option<ReceivedEvent>, ConsumeError> {
        loop {
            let failure = match self.consumer.as_mut() {
                Some(consumer) => match consumer.next(wait).await {
                    Err(failure @ ConsumeError::Receive(_)) => failure,
                    answer => return answer,
                },
                None => match self.open(true).await {
                    Ok(opened) => {
                        self.consumer = Some(opened);
                        continue;
                    }
                    Err(failure) => failure,
                },
            };
            if self.resubscribes >= self.policy.max_resubscribes {
                return Err(ConsumeError::GaveUp {
                    resubscribes: self.resubscribes,
                    last: failure.to_string(),
                });
            }
            self.resubscribes += 1;
            tracing::warn!(
                subscription = %self.subscription,
                error = %failure,
                "consumer failed; subscribing again"
            );
            // An exclusive subscription takes one consumer: the failed one goes first.
            self.consumer = None;
            tokio::time::sleep(self.policy.pause).await;
        }
    }
}
