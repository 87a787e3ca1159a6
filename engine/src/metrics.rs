//! The relay's Prometheus metrics, in the exposition format of `prometheus-client`.
//!
//! Naming (docs/operations.md, "Metrics"): every name starts with `outbox_`; counters end
//! in `_total`; units are in the name (`_seconds`). Labels: `topic` (full topic name),
//! `class` (what failed: `database`, `broker`, `lease`).
//!
//! Contract: updating a metric is a few atomic operations and never fails; [`Metrics::encode`]
//! renders the current values.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `topic` label of per-topic metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// The full topic name (`persistent://tenant/namespace/topic`).
    pub topic: String,
}

/// The `class` label of [`Metrics::retries`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// What failed: `database`, `broker` or `lease`.
    pub class: &'static str,
}

/// Every metric the relay exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events the broker acknowledged, per topic.
    pub published: Family<TopicLabel, Counter>,
    /// Events that could never be published and were set aside (`outbox_parked`).
    pub parked: Counter,
    /// From the writer's transaction (the event's `created_at`) to the broker's
    /// acknowledgement, per event.
    pub latency: Histogram,
    /// Failed cycles (retried with backoff), by what failed.
    pub retries: Family<ClassLabel, Counter>,
    /// Partition actors restarted by the supervisor.
    pub restarts: Counter,
    /// Range leases acquired, released or lost.
    pub lease_changes: Counter,
    /// Range leases held now.
    pub leases: Gauge,
    /// 1 once connected and the first lease round is done.
    pub ready: Gauge,
    /// Slot ranges an operator paused, as this relay last read them.
    pub paused: Gauge,
    /// The session holding back the visibility horizon the most (none: 0): how long its
    /// transaction has been open, in seconds. While it stays open, retention cannot
    /// retire anything newer.
    pub horizon_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// That session's current (or last) statement's age, in seconds (none: 0).
    pub horizon_query_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// That session's backend pid (none: 0).
    pub horizon_pid: Gauge,
    /// 1 while the broker refuses a topic in a way that may heal and its grace period
    /// runs (the alert); 0 once it accepts it again or its events were dead-lettered.
    pub topic_refused: Family<TopicLabel, Gauge>,
    /// Publish attempts the broker refused, per topic.
    pub topic_refusals: Family<TopicLabel, Counter>,
    /// 1 while PostgreSQL refuses the relay's role (permission denied, schema missing)
    /// and `database_refusal_grace_ms` runs: the alert; 0 once it answers again.
    pub database_refused: Gauge,
    /// Keys in quarantine, as last counted by the relay's lease round.
    pub quarantined_keys: Gauge,
    /// Unresolved dead letters, as last counted.
    pub dead_letters: Gauge,
    /// Unresolved events held behind their key's dead letter, as last counted.
    pub held_events: Gauge,
    /// Events of released keys published by their relay.
    pub released: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("outbox");
        let published = Family::<TopicLabel, Counter>::default();
        registry.register(
            "events_published",
            "Events the broker acknowledged",
            published.clone(),
        );
        let parked = Counter::default();
        registry.register(
            "events_parked",
            "Events that can never be published, set aside in outbox_parked",
            parked.clone(),
        );
        // 1 ms to ~65 s.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register_with_unit(
            "publish_latency",
            "From the writer's transaction to the broker's acknowledgement, per event",
            Unit::Seconds,
            latency.clone(),
        );
        let retries = Family::<ClassLabel, Counter>::default();
        registry.register(
            "cycle_retries",
            "Failed cycles, retried with backoff, by what failed (database, broker, lease)",
            retries.clone(),
        );
        let restarts = Counter::default();
        registry.register(
            "partition_restarts",
            "Partition actors restarted by the supervisor",
            restarts.clone(),
        );
        let lease_changes = Counter::default();
        registry.register(
            "lease_changes",
            "Range leases acquired, released or lost",
            lease_changes.clone(),
        );
        let leases = Gauge::default();
        registry.register(
            "leases_held",
            "Range leases this relay holds",
            leases.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 once connected and the first lease round is done",
            ready.clone(),
        );
        let paused = Gauge::default();
        registry.register(
            "paused_ranges",
            "Slot ranges an operator paused (outbox-relay pause), as last read",
            paused.clone(),
        );
        let horizon_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "horizon_holder_transaction_age",
            "How long the transaction holding back the visibility horizon the most has been open (0: none); it stops retention",
            Unit::Seconds,
            horizon_age.clone(),
        );
        let horizon_query_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "horizon_holder_query_age",
            "Age of that session's current or last statement",
            Unit::Seconds,
            horizon_query_age.clone(),
        );
        let horizon_pid = Gauge::default();
        registry.register(
            "horizon_holder_pid",
            "Backend pid of that session (0: none)",
            horizon_pid.clone(),
        );
        let topic_refused = Family::<TopicLabel, Gauge>::default();
        registry.register(
            "topic_refused",
            "1 while the broker refuses the topic (authorisation, not found) and the grace period runs: alert on it",
            topic_refused.clone(),
        );
        let topic_refusals = Family::<TopicLabel, Counter>::default();
        registry.register(
            "topic_refusals",
            "Publish attempts the broker refused for the topic",
            topic_refusals.clone(),
        );
        let database_refused = Gauge::default();
        registry.register(
            "database_refused",
            "1 while PostgreSQL refuses the relay's role (permission denied, schema missing) and the grace period runs: alert on it",
            database_refused.clone(),
        );
        let quarantined_keys = Gauge::default();
        registry.register(
            "quarantined_keys",
            "Keys held behind a dead letter (outbox-relay dlq list)",
            quarantined_keys.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register(
            "dead_letters",
            "Unresolved dead letters: events that failed for good",
            dead_letters.clone(),
        );
        let held_events = Gauge::default();
        registry.register(
            "held_events",
            "Events of quarantined keys waiting behind their dead letter",
            held_events.clone(),
        );
        let released = Counter::default();
        registry.register(
            "events_released",
            "Dead letters and held events published after an operator's dlq replay or skip",
            released.clone(),
        );
        Metrics {
            topic_refused,
            topic_refusals,
            database_refused,
            quarantined_keys,
            dead_letters,
            held_events,
            released,
            horizon_age,
            horizon_query_age,
            horizon_pid,
            paused,
            registry,
            published,
            parked,
            latency,
            retries,
            restarts,
            lease_changes,
            leases,
            ready,
        }
    }
}

impl Metrics {
    /// The current values in the Prometheus text format (with `# EOF`, OpenMetrics).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Counts `events` acknowledged on `topic` (the relay calls it; 0 records nothing).
    pub fn published(&self, topic: &str, events: u64) {
        if events > 0 {
            self.published
                .get_or_create(&TopicLabel {
                    topic: topic.to_owned(),
                })
                .inc_by(events);
        }
    }

    /// A refusal of `topic` was seen; `alert`: its grace period runs.
    pub fn topic_refused(&self, topic: &str, alert: bool) {
        let label = TopicLabel {
            topic: topic.to_owned(),
        };
        self.topic_refusals.get_or_create(&label).inc();
        self.topic_refused.get_or_create(&label).set(alert as i64);
    }

    /// The broker accepts `topic` again.
    pub fn topic_accepted(&self, topic: &str) {
        let label = TopicLabel {
            topic: topic.to_owned(),
        };
        self.topic_refused.get_or_create(&label).set(0);
    }

    /// Counts one failed cycle of `class` ([`ClassLabel::class`]); the relay calls it.
    pub fn retry(&self, class: &'static str) {
        self.retries.get_or_create(&ClassLabel { class }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        let metrics = Metrics::default();
        metrics.published("persistent://public/default/orders", 3);
        metrics.latency.observe(0.004);
        metrics.retry("broker");
        let text = metrics.encode();
        assert!(text.contains(
            "outbox_events_published_total{topic=\"persistent://public/default/orders\"} 3"
        ));
        assert!(text.contains("outbox_publish_latency_seconds_count 1"));
        assert!(text.contains("outbox_cycle_retries_total{class=\"broker\"} 1"));
        assert!(text.contains("outbox_leases_held 0"));
    }
}
