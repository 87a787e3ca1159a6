//! Shared helpers for the integration tests. They run against the real PostgreSQL and
//! Pulsar that `make services` starts (or those named by DATABASE_URL / PULSAR_URL), and
//! fail, naming the service, when one cannot be reached.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_adapters::pulsar::{
    ConsumeError, ReceivedEvent, ResubscribePolicy, ResubscribingConsumer,
};
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::verify::DeliveryLedger;
use outbox_adapters::PulsarConfig;
use outbox_engine::RelayConfig;

pub const DEFAULT_DATABASE_URL: &str = "postgres://outbox:outbox@127.0.0.1:55432/outbox";
pub const DEFAULT_PULSAR_URL: &str = "pulsar://127.0.0.1:6650";

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

pub fn pulsar_url() -> String {
    std::env::var("PULSAR_URL").unwrap_or_else(|_| DEFAULT_PULSAR_URL.to_owned())
}

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 10_000_000_000)
}

fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("DATABASE_URL is not a URL");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A throwaway database, migrated, dropped by [`TestDb::drop_now`].
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let admin_url = database_url();
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                "PostgreSQL is not reachable at {} ({e}): run `make services` or set DATABASE_URL",
                outbox_engine::store::redact_url(&admin_url)
            )
            });
        let name = unique("outbox_t");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("cannot create a test database: the role needs CREATEDB");
        let url = with_database(&admin_url, &name);
        outbox_engine::migrate(&url)
            .await
            .expect("migration failed");
        TestDb { name, url }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("cannot connect to the test database")
    }

    pub async fn drop_now(self) {
        if let Ok(mut admin) = AsyncPgConnection::establish(&database_url()).await {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
        }
    }

    pub fn relay_config(&self) -> RelayConfig {
        let mut config = RelayConfig {
            database_url: self.url.clone(),
            partitions: 4,
            shutdown_timeout_ms: 20_000,
            ..Default::default()
        };
        config.pulsar.url = pulsar_url();
        config
    }
}

/// A spawned relay process that is killed when dropped, so a failing test leaves no
/// relay running behind it.
pub struct KilledOnDrop(pub std::process::Child);

impl KilledOnDrop {
    pub fn spawn(mut command: std::process::Command) -> KilledOnDrop {
        KilledOnDrop(command.spawn().expect("cannot start outbox-relay"))
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `outbox-relay` binary pointed at `db` and the test broker, logging warnings to
/// stderr, stdout discarded: add flags and a subcommand, then spawn or run it.
pub fn relay_binary(db: &TestDb) -> std::process::Command {
    // option_env: the examples include this module too, without the binary.
    let Some(binary) = option_env!("CARGO_BIN_EXE_outbox-relay") else {
        panic!("the outbox-relay binary is built only for the engine's tests");
    };
    let mut command = std::process::Command::new(binary);
    command
        .args(["--database-url", &db.url, "--pulsar-url", &pulsar_url()])
        .env("RUST_LOG", "warn,pulsar=error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    command
}

pub async fn pulsar() -> Pulsar<TokioExecutor> {
    let url = pulsar_url();
    Pulsar::builder(url.clone(), TokioExecutor)
        .build()
        .await
        .unwrap_or_else(|e| {
            panic!("Pulsar is not reachable at {url} ({e}): run `make services` or set PULSAR_URL")
        })
}

/// A durable subscription that survives broker restarts (the adapters'
/// [`ResubscribingConsumer`]: on a receive error it subscribes again under the same name
/// and goes on from the broker's cursor, up to 50 times), collecting what arrives. A
/// consumer that keeps failing fails the test.
pub struct Subscription {
    consumer: ResubscribingConsumer,
    pub ledger: DeliveryLedger,
    pub events: Vec<ReceivedEvent>,
    pub resubscribes: u32,
}

/// Subscribes, retrying for up to 60 s: right after a broker restart (the fault suite
/// restarts it) the bookie may refuse new ledgers for a moment. Each retry and
/// resubscribe connects a new client.
pub async fn subscribe(topics: &[&str]) -> Subscription {
    let policy = ResubscribePolicy {
        max_resubscribes: 50,
        pause: Duration::from_secs(1),
        reconnect: Some(PulsarConfig {
            url: pulsar_url(),
            ..Default::default()
        }),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let consumer = ResubscribingConsumer::subscribe_until(
        pulsar().await,
        topics,
        &unique("sub"),
        policy,
        deadline,
    )
    .await
    .unwrap_or_else(|error| panic!("cannot subscribe: {error}"));
    Subscription {
        consumer,
        ledger: DeliveryLedger::default(),
        events: Vec::new(),
        resubscribes: 0,
    }
}

impl Subscription {
    /// The next event, `None` after `wait` without one; a message that is not an outbox
    /// event is skipped (with a warning), and a consumer that keeps failing panics.
    async fn next(&mut self, wait: Duration) -> Option<ReceivedEvent> {
        loop {
            let answer = self.consumer.next(wait).await;
            self.resubscribes = self.consumer.resubscribes();
            match answer {
                Ok(event) => return event,
                Err(error @ ConsumeError::NotAnOutboxEvent { .. }) => {
                    tracing::warn!(%error, "skipping a message that is not an outbox event");
                }
                Err(error) => panic!("{error}"),
            }
        }
    }

    /// Reads until every `expected` sequence number was seen, or nothing new arrived for
    /// `idle` (the caller then fails on what is missing).
    pub async fn collect_until_seen(&mut self, expected: &HashSet<i64>, idle: Duration) {
        let mut last_new = Instant::now();
        while expected.iter().any(|seq| !self.ledger.has_seen(*seq)) && last_new.elapsed() < idle {
            if let Some(event) = self.next(Duration::from_millis(500)).await {
                if !self.ledger.has_seen(event.seq) {
                    last_new = Instant::now();
                }
                self.ledger.record(event.delivery());
                self.events.push(event);
            }
        }
    }

    /// Reads until at least `count` distinct events arrived (or `idle` without news).
    pub async fn collect_at_least(&mut self, count: usize, idle: Duration) {
        let mut last_new = Instant::now();
        while self.ledger.distinct() < count && last_new.elapsed() < idle {
            if let Some(event) = self.next(Duration::from_millis(500)).await {
                if !self.ledger.has_seen(event.seq) {
                    last_new = Instant::now();
                }
                self.ledger.record(event.delivery());
                self.events.push(event);
            }
        }
    }

    /// Fails unless every committed event arrived, nothing else did, and no key's
    /// events arrived out of order (first deliveries; redeliveries are duplicates).
    pub fn assert_exactly_committed_in_order(&self, committed: &HashSet<i64>) {
        let ledger = &self.ledger;
        let missing = ledger.missing(committed);
        assert!(
            missing.is_empty(),
            "{} committed events lost, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        let extra = ledger.unexpected(committed);
        assert!(
            extra.is_empty(),
            "events that were never committed arrived: {extra:?}"
        );
        assert!(
            ledger.reorders.is_empty(),
            "per-key order broken: {:?}",
            &ledger.reorders[..ledger.reorders.len().min(10)]
        );
    }

    /// Keeps reading until nothing arrives for `quiet`, to catch stragglers (events that
    /// must not exist, duplicates).
    pub async fn drain(&mut self, quiet: Duration) {
        while let Some(event) = self.next(quiet).await {
            self.ledger.record(event.delivery());
            self.events.push(event);
        }
    }
}

pub async fn pending_count(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: Count = diesel::sql_query("SELECT count(*) AS n FROM outbox_pending")
        .get_result(conn)
        .await
        .expect("count failed");
    row.n
}

/// Waits (bounded) until the relay recorded every event as published.
pub async fn wait_until_drained(conn: &mut AsyncPgConnection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = pending_count(conn).await;
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} rows still pending after everything was received"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,pulsar=error,outbox_engine=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A file the service scripts made under `~/.cache/outbox-engine/<dir>` (or under the
/// directory `env` names): TLS material, test tokens. Fails saying how to make it.
pub fn service_file(env: &str, dir: &str, name: &str) -> std::path::PathBuf {
    let base = std::env::var(env)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/outbox-engine")
                .join(dir)
        });
    let path = base.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make services` (scripts/services/ make it), or set {env}",
        path.display()
    );
    path
}

/// With a relay configured by `configure` (on a fresh database and topic), 30 events
/// over 3 keys all arrive, in order per key, nothing else.
pub async fn relay_delivers_in_order(configure: impl FnOnce(&mut RelayConfig)) {
    let db = TestDb::create().await;
    let topic = unique("delivers");
    let mut consumer = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    let events: Vec<outbox_engine::NewEvent> = (0..30)
        .map(|i| outbox_engine::NewEvent::new(format!("k{}", i % 3), &topic, "Sent", vec![i as u8]))
        .collect();
    let committed: HashSet<i64> = outbox_engine::enqueue_batch(&mut conn, &events)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let mut config = db.relay_config();
    configure(&mut config);
    let relay = outbox_engine::Relay::start(config).expect("relay start");
    consumer
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    consumer.assert_exactly_committed_in_order(&committed);
    relay.shutdown().await.expect("graceful shutdown");
    drop(conn);
    db.drop_now().await;
}

/// A relay configured by `configure` (with no refusal grace at all) that cannot get
/// through to the broker stays unready for 5 s, its 5 events pending, none dead-lettered.
pub async fn relay_waits_without_dead_letters(configure: impl FnOnce(&mut RelayConfig)) {
    let db = TestDb::create().await;
    let topic = unique("waits");
    let mut conn = db.connect().await;
    let events: Vec<outbox_engine::NewEvent> = (0..5)
        .map(|i| outbox_engine::NewEvent::new("k", &topic, "Sent", vec![i as u8]))
        .collect();
    outbox_engine::enqueue_batch(&mut conn, &events)
        .await
        .unwrap();
    let mut config = db.relay_config();
    // A refusal of the topic would dead-letter at once.
    config.topic_refusal_grace_ms = 0;
    configure(&mut config);
    let relay = outbox_engine::Relay::start(config).expect("relay start");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !relay.health().ready,
        "ready although the broker is out of reach"
    );
    relay.shutdown().await.expect("graceful shutdown");
    assert_eq!(pending_count(&mut conn).await, 5, "events left the outbox");
    let status = outbox_engine::store::status(&mut conn).await.unwrap();
    assert_eq!(status.parked, 0, "events were dead-lettered");
    drop(conn);
    db.drop_now().await;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The single bigint column `n` of `sql`'s one row.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

/// The batch audit trail of `db` joins up: no range passed an event without publishing
/// or parking it (`outbox-relay audit`, `outbox_engine::store::audit`).
pub async fn assert_audit_trail_clean(db: &TestDb) {
    let mut conn = db.connect().await;
    let skipped = outbox_engine::store::audit::skipped_events(&mut conn)
        .await
        .expect("audit trail");
    assert!(
        skipped.is_empty(),
        "events passed without publishing: {skipped:?}"
    );
}
