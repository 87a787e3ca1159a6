//! Many writers on overlapping keys, transactions that commit out of sequence order on
//! purpose (one holds a low sequence number open for seconds), multi-key transactions,
//! writers that take an xid long before they enqueue, and rollbacks. Every committed
//! event must arrive, per key in commit order, and no rolled-back event may.
//!
//! Commit order per key is made visible by the application itself: each transaction
//! bumps a per-key `version` row (a row lock held to commit) and puts the version in the
//! payload, so per key the payloads must arrive as exactly 1, 2, 3, ... .

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue, EnqueueError, NewEvent, Relay};
use rand::{rngs::StdRng, Rng, SeedableRng};
use support::*;

const KEYS: usize = 12;
const WRITERS: u64 = 8;
const TRANSACTIONS_PER_WRITER: usize = 60;

#[derive(Debug)]
#[allow(dead_code)] // read through Debug in panics
enum TxError {
    Db(diesel::result::Error),
    Enqueue(EnqueueError),
    RolledBack(Vec<i64>),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<EnqueueError> for TxError {
    fn from(e: EnqueueError) -> Self {
        TxError::Enqueue(e)
    }
}

#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = Integer)]
    version: i32,
}

#[derive(diesel::QueryableByName)]
struct KeyVersion {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Integer)]
    version: i32,
}

fn key(i: usize) -> String {
    format!("acct-{i}")
}

/// Bumps each key's version and enqueues one event per key; the caller decides the fate.
async fn change(
    conn: &mut AsyncPgConnection,
    topic: &str,
    keys: &[String],
    early_xid_pause: Option<Duration>,
    hold_open: Duration,
    roll_back: bool,
) -> Result<Vec<i64>, TxError> {
    conn.transaction(async |conn| {
        if let Some(pause) = early_xid_pause {
            // Takes an xid now, enqueues much later: the trap for xid-horizon relays.
            diesel::sql_query("INSERT INTO audit (note) VALUES ('early write')")
                .execute(conn)
                .await?;
            tokio::time::sleep(pause).await;
        }
        let mut seqs = Vec::new();
        for key in keys {
            let row: Version = diesel::sql_query(
                "UPDATE accounts SET version = version + 1 WHERE key = $1 RETURNING version",
            )
            .bind::<Text, _>(key)
            .get_result(conn)
            .await?;
            let payload = format!("{key}:{}", row.version);
            seqs.push(enqueue(conn, &NewEvent::new(key.clone(), topic, "Changed", payload)).await?);
        }
        tokio::time::sleep(hold_open).await;
        if roll_back {
            return Err(TxError::RolledBack(seqs));
        }
        Ok(seqs)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_out_of_order_commits_and_rollbacks() {
    init_tracing();
    let db = TestDb::create().await;
    let topic = unique("ordering");
    let mut subscription = subscribe(&[&topic]).await;
    {
        let mut conn = db.connect().await;
        diesel::sql_query(
            "CREATE TABLE accounts (key text PRIMARY KEY, version int NOT NULL DEFAULT 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query("CREATE TABLE audit (id bigserial PRIMARY KEY, note text)")
            .execute(&mut conn)
            .await
            .unwrap();
        for i in 0..KEYS {
            diesel::sql_query("INSERT INTO accounts (key) VALUES ($1)")
                .bind::<Text, _>(key(i))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let relay = Relay::start(db.relay_config()).expect("relay start");

    // Holds a low sequence number of acct-0 open for 3 s while everyone else commits.
    let long = {
        let url = db.url.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            change(
                &mut conn,
                &topic,
                &[key(0)],
                None,
                Duration::from_secs(3),
                false,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let url = db.url.clone();
        let topic = topic.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(writer);
            let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
            let (mut committed, mut rolled_back) = (Vec::new(), Vec::new());
            for _ in 0..TRANSACTIONS_PER_WRITER {
                let mut keys: Vec<String> = (0..rng.gen_range(1..=2))
                    .map(|_| key(rng.gen_range(0..KEYS)))
                    .collect();
                keys.sort();
                keys.dedup();
                let early = rng
                    .gen_bool(0.2)
                    .then(|| Duration::from_millis(rng.gen_range(0..30)));
                let hold = Duration::from_millis(rng.gen_range(0..5));
                let roll_back = rng.gen_bool(0.15);
                match change(&mut conn, &topic, &keys, early, hold, roll_back).await {
                    Ok(seqs) => committed.extend(seqs),
                    Err(TxError::RolledBack(seqs)) => rolled_back.extend(seqs),
                    Err(other) => panic!("writer {writer} failed: {other:?}"),
                }
            }
            (committed, rolled_back)
        }));
    }
    let mut committed: HashSet<i64> = long
        .await
        .unwrap()
        .expect("long transaction")
        .into_iter()
        .collect();
    let mut rolled_back = HashSet::new();
    for writer in writers {
        let (c, r) = writer.await.unwrap();
        committed.extend(c);
        rolled_back.extend(r);
    }
    assert!(
        !rolled_back.is_empty(),
        "the test must roll some transactions back"
    );

    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.drain(Duration::from_secs(2)).await;
    subscription.assert_exactly_committed_in_order(&committed);
    let ledger = &subscription.ledger;

    // Commit order per key, as the application saw it: versions 1..=final, in order.
    let mut conn = db.connect().await;
    let finals: Vec<KeyVersion> = diesel::sql_query("SELECT key, version FROM accounts")
        .load(&mut conn)
        .await
        .unwrap();
    let mut delivered: HashMap<String, Vec<i32>> = HashMap::new();
    let mut first_seen = HashSet::new();
    for event in &subscription.events {
        if first_seen.insert(event.seq) {
            let text = String::from_utf8(event.payload.clone()).unwrap();
            let (k, v) = text.split_once(':').unwrap();
            assert_eq!(k, event.key, "payload and message key disagree");
            delivered
                .entry(event.key.clone())
                .or_default()
                .push(v.parse().unwrap());
        }
    }
    let finals: BTreeMap<String, i32> = finals.into_iter().map(|r| (r.key, r.version)).collect();
    for (key, last) in &finals {
        let expected: Vec<i32> = (1..=*last).collect();
        assert_eq!(
            delivered.get(key).cloned().unwrap_or_default(),
            expected,
            "commit order of {key}"
        );
    }
    println!(
        "ordering: {} committed, {} rolled back, {} received, {} duplicates",
        committed.len(),
        rolled_back.len(),
        ledger.received,
        ledger.duplicates
    );
    relay.shutdown().await.expect("graceful shutdown");
    assert_audit_trail_clean(&db).await;
    db.drop_now().await;
}
