//! Errors of the Pulsar adapter. Driver errors are translated here, and only here.

use std::time::Duration;

/// A topic name Pulsar would reject.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// Not a valid name (bad characters, wrong number of parts, a `-partition-`
    /// suffix, too long): the topic as given.
    #[error(
        "topic {0:?} is not a valid Pulsar topic name: use a short name of letters, digits and _-=:.% \
         (mapped to persistent://public/default/<name>) or persistent://tenant/namespace/topic, without \"-partition-\""
    )]
    Invalid(String),
    /// A `non-persistent://` topic, refused so that no committed event can be dropped:
    /// the topic as given.
    #[error(
        "topic {0:?} is non-persistent: the broker drops its messages while no subscriber is connected, \
         which would lose committed events; use a persistent:// topic (or a short name)"
    )]
    NonPersistent(String),
}

/// Why a publish did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Cannot reach the broker or build a client: retried with backoff.
    #[error("cannot connect to Pulsar at {url}: {reason}")]
    Connect {
        /// The broker's service URL.
        url: String,
        /// The client's error.
        reason: String,
    },
    /// The producer could not be created (broker unreachable, lookup failed): retried with
    /// backoff; says nothing about the events themselves.
    #[error("cannot create a producer for {topic}: {reason}")]
    ProducerUnavailable {
        /// The full topic name.
        topic: String,
        /// The broker's or client's error.
        reason: String,
    },
    /// A send or its acknowledgement failed: retried from the first unacknowledged event.
    #[error("publishing to {topic} failed: {reason}")]
    Send {
        /// The full topic name.
        topic: String,
        /// The broker's or client's error.
        reason: String,
    },
    /// The broker does not accept events for this topic as configured (invalid name,
    /// not authorised, topic absent with auto-creation off). `may_heal`: an authorisation
    /// or a topic that may arrive with a deploy; the relay retries those for a grace
    /// period before it dead-letters the events.
    #[error("the broker refuses topic {topic}: {reason}")]
    TopicRefused {
        /// The full topic name.
        topic: String,
        /// The broker's answer.
        reason: String,
        /// True for a refusal that a fix on the broker's side can lift (authorisation,
        /// topic not found); false when only other events or another configuration can
        /// help. (Refused credentials are not a refusal of the topic: they are
        /// [`PublishError::ProducerUnavailable`], waited out.)
        may_heal: bool,
    },
    /// The event alone is larger than the broker accepts: parked, never sent.
    #[error("event of about {bytes} bytes exceeds the broker's message size limit of {limit} bytes (pulsar.max_message_bytes) on {topic}")]
    TooLarge {
        /// The full topic name.
        topic: String,
        /// The encoded message's approximate size, in bytes.
        bytes: usize,
        /// [`PulsarConfig::max_message_bytes`](super::PulsarConfig::max_message_bytes).
        limit: usize,
    },
    /// The broker did not acknowledge within the configured time.
    #[error("no acknowledgement from Pulsar for {topic} within {0:?}", .timeout)]
    Timeout {
        /// The full topic name.
        topic: String,
        /// [`PulsarConfig::operation_timeout_ms`](super::PulsarConfig::operation_timeout_ms).
        timeout: Duration,
    },
    /// The caller withdrew its permission to send (its lease ran out) between chunks.
    #[error("publishing halted by the caller before the next chunk")]
    Halted,
    /// The event's topic name is invalid or non-persistent: permanent, nothing was sent.
    #[error(transparent)]
    Topic(#[from] TopicError),
}

impl PublishError {
    /// True when retrying the same events can never succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            PublishError::TopicRefused { .. }
                | PublishError::Topic(_)
                | PublishError::TooLarge { .. }
        )
    }

    /// The topic the broker refuses, when this is a refusal that may heal.
    pub fn refused_topic_that_may_heal(&self) -> Option<&str> {
        match self {
            PublishError::TopicRefused {
                topic,
                may_heal: true,
                ..
            } => Some(topic),
            _ => None,
        }
    }

    /// A producer for `topic` could not be created, the broker answering with server
    /// error `code` (if any): a refusal (see [`refusal`]) or a transient failure.
    pub(crate) fn producer_refused(topic: &str, code: Option<i32>, reason: String) -> Self {
        // Credentials the broker does not accept concern the connection, not the topic or
        // its events: waited out like an unreachable broker, never dead-lettered.
        if code == Some(pulsar::message::proto::ServerError::AuthenticationError as i32) {
            return PublishError::ProducerUnavailable {
                topic: topic.to_owned(),
                reason: format!(
                    "the broker refused the client's credentials ({reason}): check PULSAR_AUTH_TOKEN / pulsar.auth_token_file"
                ),
            };
        }
        match code.and_then(refusal) {
            Some(may_heal) => PublishError::TopicRefused {
                topic: topic.to_owned(),
                reason,
                may_heal,
            },
            None => PublishError::ProducerUnavailable {
                topic: topic.to_owned(),
                reason,
            },
        }
    }

    pub(crate) fn from_producer_creation(topic: &str, error: pulsar::Error) -> Self {
        use pulsar::error::{ConnectionError, Error, ProducerError};
        let code = match &error {
            Error::Connection(ConnectionError::PulsarError(code, _))
            | Error::Producer(ProducerError::Connection(ConnectionError::PulsarError(code, _)))
            | Error::ServiceDiscovery(pulsar::error::ServiceDiscoveryError::Query(code, _)) => {
                code.map(|c| c as i32)
            }
            _ => None,
        };
        Self::producer_refused(topic, code, error.to_string())
    }
}

/// Whether the broker's server error `code`, answering a producer request, refuses the
/// topic: `Some(true)` when it may heal (authorisation, authentication, topic not found:
/// an ACL or a topic that arrives with a deploy), `Some(false)` when only a change of the
/// events or the configuration helps, `None` when it is not a refusal (retried).
pub(crate) fn refusal(code: i32) -> Option<bool> {
    use pulsar::message::proto::ServerError;
    let healing = [ServerError::AuthorizationError, ServerError::TopicNotFound];
    let final_ = [
        ServerError::InvalidTopicName,
        ServerError::NotAllowedError,
        ServerError::IncompatibleSchema,
    ];
    if healing.iter().any(|e| *e as i32 == code) {
        Some(true)
    } else if final_.iter().any(|e| *e as i32 == code) {
        Some(false)
    } else {
        None
    }
}

impl PublishError {
    /// True when the events were on their way to a broker that took a producer for them:
    /// a failure that, repeated for the same event, points at the event.
    pub fn implicates_event(&self) -> bool {
        matches!(
            self,
            PublishError::Send { .. } | PublishError::Timeout { .. }
        )
    }

    pub(crate) fn from_send(topic: &str, error: pulsar::Error) -> Self {
        PublishError::Send {
            topic: topic.to_owned(),
            reason: error.to_string(),
        }
    }
}
