//! Behind PgBouncer in transaction pooling mode (`scripts/services/pgbouncer.sh`: 1.24,
//! `max_prepared_statements` set, 2 server connections shared by every client): the
//! migrations, the writers (Rust `enqueue` / `enqueue_batch`, the SQL function, the
//! least-privilege writer role) and the relay all go through it, and every committed
//! event arrives once per key in order while none of the relay's session settings leaks
//! to other clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue, enqueue_batch, NewEvent, Relay};
use support::*;

const DEFAULT_PGBOUNCER_URL: &str = "postgres://outbox:outbox@127.0.0.1:56432/outbox";

/// `db`'s URL with PgBouncer's host and port (user, password and database kept).
fn through_pgbouncer(db_url: &str, user: Option<(&str, &str)>) -> String {
    let pgbouncer =
        std::env::var("OUTBOX_PGBOUNCER_URL").unwrap_or_else(|_| DEFAULT_PGBOUNCER_URL.to_owned());
    let pgbouncer = url::Url::parse(&pgbouncer).expect("OUTBOX_PGBOUNCER_URL is not a URL");
    let mut url = url::Url::parse(db_url).unwrap();
    url.set_host(pgbouncer.host_str()).unwrap();
    url.set_port(pgbouncer.port()).unwrap();
    if let Some((name, password)) = user {
        url.set_username(name).unwrap();
        url.set_password(Some(password)).unwrap();
    }
    url.to_string()
}

async fn connect_through(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.unwrap_or_else(|e| {
        panic!(
            "PgBouncer is not reachable at {} ({e}): run `make services` (scripts/services/pgbouncer.sh) or set OUTBOX_PGBOUNCER_URL",
            outbox_engine::store::redact_url(url)
        )
    })
}

#[derive(diesel::QueryableByName)]
struct Seq {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// One writer: `rounds` transactions on its own client session, each enqueueing
/// events for its keys the way `style` says; every third transaction is rolled back.
/// Returns the committed sequence numbers.
async fn writer(url: String, topic: String, writer_id: usize, rounds: usize) -> Vec<i64> {
    let mut conn = connect_through(&url).await;
    let mut committed = Vec::new();
    for round in 0..rounds {
        let keys: Vec<String> = (0..3).map(|k| format!("w{writer_id}-k{k}")).collect();
        let topic = topic.clone();
        let style = (writer_id + round) % 3;
        let roll_back = round % 3 == 2;
        let result: Result<Vec<i64>, diesel::result::Error> = conn
            .transaction(async |conn| {
                let mut seqs = Vec::new();
                match style {
                    0 => {
                        for key in &keys {
                            let event = NewEvent::new(key, &topic, "Rust", b"r".to_vec());
                            seqs.push(enqueue(conn, &event).await.unwrap());
                        }
                    }
                    1 => {
                        let events: Vec<NewEvent> = keys
                            .iter()
                            .map(|key| NewEvent::new(key, &topic, "Batch", b"b".to_vec()))
                            .collect();
                        seqs.extend(enqueue_batch(conn, &events).await.unwrap());
                    }
                    _ => {
                        for key in &keys {
                            let row: Seq = diesel::sql_query(
                                "SELECT outbox_enqueue($1, $2, 'Sql', '\\x73'::bytea) AS seq",
                            )
                            .bind::<diesel::sql_types::Text, _>(key)
                            .bind::<diesel::sql_types::Text, _>(&topic)
                            .get_result(conn)
                            .await?;
                            seqs.push(row.seq);
                        }
                    }
                }
                if roll_back {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                Ok(seqs)
            })
            .await;
        match result {
            Ok(seqs) => committed.extend(seqs),
            Err(diesel::result::Error::RollbackTransaction) => {}
            Err(error) => panic!("writer {writer_id} failed through PgBouncer: {error}"),
        }
    }
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_writers_work_through_pgbouncer_in_transaction_mode() {
    init_tracing();
    // The database is created directly (PgBouncer forwards any database name) and
    // migrated through PgBouncer, by two migrators at once.
    let admin_url = database_url();
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("PostgreSQL is not reachable: run `make services` or set DATABASE_URL");
    let name = unique("outbox_pgb");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut direct = url::Url::parse(&admin_url).unwrap();
    direct.set_path(&format!("/{name}"));
    let db = TestDb {
        name,
        url: direct.to_string(),
    };
    let url = through_pgbouncer(&db.url, None);
    let (first, second) = tokio::join!(outbox_engine::migrate(&url), outbox_engine::migrate(&url));
    let (first, second) = (first.expect("migration"), second.expect("migration"));
    assert!(
        first.is_empty() != second.is_empty(),
        "exactly one migrator applies the migrations: {first:?} / {second:?}"
    );

    // The least-privilege writer role enqueues through PgBouncer too.
    let mut owner = connect_through(&url).await;
    diesel::sql_query("SELECT outbox_grant_writer('outbox_writer')")
        .execute(&mut owner)
        .await
        .unwrap();

    let topic = unique("pgbouncer");
    let mut consumer = subscribe(&[&topic]).await;
    let mut config = db.relay_config();
    config.database_url = url.clone();
    config.transaction_pooler = true;
    config.partitions = 2;
    let relay = Relay::start(config).expect("relay start");

    // Five writers as the owner, one as outbox_writer, all sharing 2 server connections
    // with the relay.
    let mut tasks = Vec::new();
    for writer_id in 0..6 {
        let url = if writer_id == 5 {
            through_pgbouncer(&db.url, Some(("outbox_writer", "outbox")))
        } else {
            url.clone()
        };
        tasks.push(tokio::spawn(writer(url, topic.clone(), writer_id, 30)));
    }
    let mut committed = HashSet::new();
    for task in tasks {
        committed.extend(task.await.expect("writer task"));
    }
    assert_eq!(
        committed.len(),
        6 * 20 * 3,
        "20 of 30 rounds commit 3 events"
    );

    consumer
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    consumer.drain(Duration::from_secs(2)).await;
    consumer.assert_exactly_committed_in_order(&committed);

    // Nothing the relay did stayed on the shared server connections: every client
    // session still commits synchronously and without a statement timeout.
    for _ in 0..8 {
        let mut conn = connect_through(&url).await;
        for setting in [
            "synchronous_commit",
            "statement_timeout",
            "application_name",
        ] {
            let row: Setting =
                diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
                    .get_result(&mut conn)
                    .await
                    .unwrap();
            assert_ne!(
                (setting, row.value.as_str()),
                match setting {
                    "synchronous_commit" => ("synchronous_commit", "off"),
                    "statement_timeout" => ("statement_timeout", "30s"),
                    _ => ("application_name", "outbox-relay"),
                },
                "a relay session setting leaked through PgBouncer"
            );
        }
    }

    relay.shutdown().await.expect("graceful shutdown");
    wait_until_drained(&mut owner).await;
    drop(owner);
    db.drop_now().await;
}
