//! The fault suite: several real `outbox-relay` processes on one database, under load,
//! against the real PostgreSQL and Pulsar, with faults injected on purpose. Every
//! scenario asserts 0 lost and 0 per-key order violations; failure-free and planned
//! changes also assert 0 duplicates. Each prints one `fault-report |` line (events, lost,
//! reordered, duplicates, recovery time) that docs/reliability.md records.
//!
//! Short in `make test`; `make faults` runs the same scenarios long (`OUTBOX_FAULTS=long`).
//! Scenarios run one at a time (they restart shared services and measure recovery).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fault_support/harness.rs"]
mod harness;
mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use harness::*;
use support::*;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn assert_no_loss_no_reorder(subscription: &Subscription, committed: &HashSet<i64>) {
    let missing = subscription.ledger.missing(committed);
    assert!(
        missing.is_empty(),
        "{} committed events lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        subscription.ledger.reorders.is_empty(),
        "per-key order broken: {:?}",
        &subscription.ledger.reorders[..subscription.ledger.reorders.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_without_faults_publish_everything_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (group, mut subscription) = Group::start("clean", 3, 5_000).await;
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, Duration::from_secs(rounds(6, 60) as u64)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report("3 relays, no faults", &subscription, &committed, "-");
    subscription.assert_exactly_committed_in_order(&committed);
    assert_eq!(
        subscription.ledger.duplicates, 0,
        "no fault, yet duplicates"
    );
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_relay_in_three_repeatedly_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, mut subscription) = Group::start("kill", 3, 5_000).await;
    let writer = group.writer(128).await;
    let mut takeovers = Vec::new();
    for round in 0..rounds(2, 10) {
        keep_reading(&mut subscription, Duration::from_secs(2)).await;
        let victim = group.relays.remove(round % group.relays.len());
        let pid = victim.pid();
        victim.kill();
        let took = read_while(
            &mut subscription,
            wait_for_takeover(&mut group.conn, pid, Duration::from_secs(30)),
        )
        .await;
        takeovers.push(took);
        group.relays.push(RelayProcess::start(
            &group.config,
            &format!("kill-r{round}"),
        ));
    }
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    let worst = takeovers.iter().max().copied().unwrap_or_default();
    report(
        &format!("SIGKILL 1 of 3, {} rounds", takeovers.len()),
        &subscription,
        &committed,
        &format!(
            "takeover <= {:.1} s (lease {} s)",
            worst.as_secs_f64(),
            LEASE_MS / 1000
        ),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_paused_past_its_lease_records_nothing_when_it_wakes() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, mut subscription) = Group::start("stop", 3, 5_000).await;
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let paused = &group.relays[0];
    paused.signal("STOP");
    let took = read_while(
        &mut subscription,
        wait_for_takeover(&mut group.conn, paused.pid(), Duration::from_secs(30)),
    )
    .await;
    keep_reading(&mut subscription, Duration::from_millis(LEASE_MS)).await;
    paused.signal("CONT");
    keep_reading(&mut subscription, Duration::from_secs(4)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report(
        "SIGSTOP past the lease, then SIGCONT",
        &subscription,
        &committed,
        &format!("takeover {:.1} s", took.as_secs_f64()),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    let log = group.relays[0].log_text();
    assert!(
        log.contains("lease") && (log.contains("lost") || log.contains("no longer")),
        "the woken relay must notice it lost its ranges; its log:\n{log}"
    );
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_one_publishes_nothing_twice() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, mut subscription) = Group::start("scale", 1, 5_000).await;
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    group.add_relay();
    group.add_relay();
    let up = read_while(
        &mut subscription,
        wait_for_spread(&mut group.conn, 3, Duration::from_secs(30)),
    )
    .await;
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let started = Instant::now();
    while group.relays.len() > 1 {
        let relay = group.relays.pop().expect("more than one");
        read_while(&mut subscription, async {
            tokio::task::spawn_blocking(move || relay.stop())
                .await
                .unwrap()
        })
        .await;
    }
    read_while(
        &mut subscription,
        wait_for_spread(&mut group.conn, 1, Duration::from_secs(30)),
    )
    .await;
    let down = started.elapsed();
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report(
        "scale 1 -> 3 -> 1 relays",
        &subscription,
        &committed,
        &format!(
            "spread over 3 in {:.1} s, back to 1 in {:.1} s",
            up.as_secs_f64(),
            down.as_secs_f64()
        ),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    assert_eq!(
        subscription.ledger.duplicates, 0,
        "a planned handoff published something twice"
    );
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sessions_terminated_by_the_server_lose_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (group, mut subscription) = Group::start("term", 3, 5_000).await;
    let writer = group.writer(128).await;
    let mut admin = group.db.connect().await;
    let mut terminated = 0usize;
    for _ in 0..rounds(10, 100) {
        keep_reading(&mut subscription, Duration::from_millis(500)).await;
        #[derive(diesel::QueryableByName)]
        struct Killed {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let killed: Killed = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE application_name = 'outbox-relay' AND datname = current_database()",
        )
        .get_result(&mut admin)
        .await
        .unwrap();
        terminated += killed.n as usize;
    }
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report(
        &format!(
            "pg_terminate_backend of relay sessions x{}",
            rounds(10, 100)
        ),
        &subscription,
        &committed,
        &format!("{terminated} sessions terminated"),
    );
    assert!(terminated > 0, "the test terminated no relay session");
    subscription.assert_exactly_committed_in_order(&committed);
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_holding_a_key_open_stalls_only_that_key_and_status_shows_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (group, mut subscription) = Group::start("open", 3, 5_000).await;

    // A transaction enqueues for "stalled" and stays open.
    let hold = Duration::from_secs(rounds(6, 60) as u64);
    let mut holder = group.db.connect().await;
    diesel::sql_query("BEGIN")
        .execute(&mut holder)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT outbox_enqueue('stalled', '{}', 'E', 'v1'::bytea)",
        group.topic
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, hold / 2).await;
    let flowing = subscription.ledger.distinct();
    assert!(
        flowing > 0,
        "other keys must flow while one key's transaction is open"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &group.db.url, "status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let locks = json["key_locks"].as_array().unwrap();
    assert!(
        locks
            .iter()
            .any(|l| l["transaction_age_s"].as_f64().unwrap_or(0.0) >= 1.0),
        "status must show the writer holding a key lock: {json}"
    );
    keep_reading(&mut subscription, hold / 2).await;
    let seq: i64 = {
        #[derive(diesel::QueryableByName)]
        struct Seq {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            seq: i64,
        }
        let row: Seq = diesel::sql_query("SELECT seq FROM outbox_event WHERE key = 'stalled'")
            .get_result(&mut holder)
            .await
            .unwrap();
        row.seq
    };
    diesel::sql_query("COMMIT")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut committed = writer.finish().await;
    committed.insert(seq);
    settle(&mut subscription, &committed).await;
    report(
        &format!("transaction open {} s on one key", hold.as_secs()),
        &subscription,
        &committed,
        &format!("{flowing} events of other keys delivered meanwhile"),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    group.finish().await;
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/services")
        .join(name)
}

fn run_script(name: &str, args: &[&str]) {
    let status = Command::new("bash")
        .arg(script(name))
        .args(args)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{name} {args:?} failed (services you run yourself cannot be restarted by this test)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_database_restarts_under_load_with_three_relays() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (group, mut subscription) = Group::start("restart", 3, 5_000).await;
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, Duration::from_secs(2)).await;

    let started = Instant::now();
    read_while(&mut subscription, async {
        tokio::task::spawn_blocking(|| run_script("pulsar.sh", &["restart"]))
            .await
            .unwrap()
    })
    .await;
    let broker = started.elapsed();
    keep_reading(&mut subscription, Duration::from_secs(3)).await;

    let started = Instant::now();
    read_while(&mut subscription, async {
        tokio::task::spawn_blocking(|| {
            run_script("pg.sh", &["down"]);
            std::thread::sleep(Duration::from_secs(2));
            run_script("pg.sh", &["up"]);
        })
        .await
        .unwrap()
    })
    .await;
    let database = started.elapsed();

    keep_reading(&mut subscription, Duration::from_secs(3)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report(
        "Pulsar restart, then PostgreSQL restart, 3 relays",
        &subscription,
        &committed,
        &format!(
            "broker down+up {:.1} s, database down+up {:.1} s",
            broker.as_secs_f64(),
            database.as_secs_f64()
        ),
    );
    // A writer's commit cut by the database restart may have happened without its
    // answer: such events may arrive without being counted as committed.
    assert_no_loss_no_reorder(&subscription, &committed);
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_paused_mid_batch_longer_than_the_operation_timeout_keeps_key_order() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    // Several-KB payloads and a 2 s operation timeout: a read batch spans many broker
    // batches, and a pause of 5 s expires those in flight.
    let (mut group, mut subscription) = Group::new("pause", 2_000).await;
    let mut backlog = HashSet::new();
    for chunk in 0..40 {
        let events: Vec<outbox_engine::NewEvent> = (0..100)
            .map(|i| {
                outbox_engine::NewEvent::new(
                    format!("k{}", (chunk * 100 + i) % 50),
                    group.topic.as_str(),
                    "Big",
                    vec![b'x'; 6_000],
                )
            })
            .collect();
        backlog.extend(
            outbox_engine::enqueue_batch(&mut group.conn, &events)
                .await
                .unwrap(),
        );
    }
    for _ in 0..3 {
        group.add_relay();
    }
    let broker = Broker::paused_by_this_test();
    subscription
        .collect_at_least(200, Duration::from_secs(60))
        .await;
    for _ in 0..rounds(1, 5) {
        broker.signal("STOP");
        tokio::time::sleep(Duration::from_secs(5)).await;
        broker.signal("CONT");
        subscription
            .collect_at_least(
                subscription.ledger.distinct() + 500,
                Duration::from_secs(60),
            )
            .await;
    }
    settle(&mut subscription, &backlog).await;
    report(
        "broker paused 5 s mid-batch, 6 KB payloads, 2 s timeout",
        &subscription,
        &backlog,
        "-",
    );
    subscription.assert_exactly_committed_in_order(&backlog);
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_connection_cut_and_restored_loses_nothing_and_recovers_quickly() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, mut subscription) = Group::new("cut", 5_000).await;
    let target = {
        let parsed = url::Url::parse(&group.db.url).unwrap();
        let host = parsed.host_str().unwrap().to_owned();
        let found = tokio::net::lookup_host((host.as_str(), parsed.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap();
        found
    };
    // The relays reach the database through the proxy; the writer and the test do not.
    let proxy = TcpProxy::start(target).await;
    group.config = write_config_for(&with_port(&group.db.url, proxy.port), "cut", 5_000);
    for _ in 0..3 {
        group.add_relay();
    }
    wait_for_spread(&mut group.conn, 3, Duration::from_secs(30)).await;
    let writer = group.writer(128).await;
    let outage = Duration::from_secs(rounds(5, 15) as u64);
    let mut recoveries = Vec::new();
    for _ in 0..rounds(1, 3) {
        keep_reading(&mut subscription, Duration::from_secs(2)).await;
        proxy.cut();
        keep_reading(&mut subscription, outage).await;
        let before = subscription.ledger.distinct();
        proxy.restore();
        let restored = Instant::now();
        // Recovery: the first event the relays publish after the database is back.
        while subscription.ledger.distinct() == before {
            assert!(
                restored.elapsed() < Duration::from_secs(60),
                "nothing published within 60 s of the database's return"
            );
            subscription
                .collect_at_least(before + 1, Duration::from_millis(100))
                .await;
        }
        recoveries.push(restored.elapsed());
    }
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    let worst = recoveries.iter().max().copied().unwrap_or_default();
    report(
        &format!(
            "database connection cut {} s and restored, x{}",
            outage.as_secs(),
            recoveries.len()
        ),
        &subscription,
        &committed,
        &format!(
            "publishing again {:.1} s after the return (worst)",
            worst.as_secs_f64()
        ),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    let logs: String = group.relays.iter().map(RelayProcess::log_text).collect();
    assert!(
        logs.contains("PostgreSQL unreachable"),
        "the outage must be logged when it starts"
    );
    assert!(
        logs.contains("PostgreSQL reachable again"),
        "and when it ends"
    );
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_broker_is_paused_exits_within_the_shutdown_limit_without_panicking() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, _subscription) = Group::new("stuck", 30_000).await;
    let text = std::fs::read_to_string(&group.config)
        .unwrap()
        .replace("shutdown_timeout_ms = 20000", "shutdown_timeout_ms = 3000");
    std::fs::write(&group.config, text).unwrap();
    group.add_relay();
    wait_for_spread(&mut group.conn, 1, Duration::from_secs(30)).await;
    let broker = Broker::paused_by_this_test();
    broker.signal("STOP");
    let writer = Writer::start(&group.db, &group.topic, 50, 20, 128).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let committed = writer.finish().await;
    assert!(!committed.is_empty());
    let mut relay = group.relays.pop().expect("one relay");
    let started = Instant::now();
    relay.signal("TERM");
    let status = loop {
        if let Some(status) = relay.child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            broker.signal("CONT");
            panic!("the relay did not exit within 20 s of SIGTERM (shutdown limit 3 s)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    broker.signal("CONT");
    let log = relay.log_text();
    println!(
        "fault-report | SIGTERM with the broker paused | {status} after {:.1} s (shutdown limit 3 s), events kept pending {}",
        took.as_secs_f64(),
        committed.len()
    );
    assert!(
        !log.contains("panicked"),
        "the relay panicked while stopping:\n{log}"
    );
    assert!(
        log.contains("shutdown did not finish"),
        "the log must say the shutdown limit ran out:\n{log}"
    );
    // Nothing was lost: the events stay pending for the next relay.
    assert_eq!(
        pending_count(&mut group.conn).await as usize,
        committed.len()
    );
    group.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_number_of_ranges_under_load_owns_no_key_twice() {
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    let (mut group, mut subscription) = Group::start("ranges", 2, 5_000).await;
    let writer = group.writer(128).await;
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    // A relay configured for 12 ranges joins: the group re-cuts 6 -> 12 while writing.
    let twelve = group.config.with_file_name("ranges-12.toml");
    let text = std::fs::read_to_string(&group.config)
        .unwrap()
        .replace(&format!("partitions = {PARTITIONS}"), "partitions = 12");
    std::fs::write(&twelve, text).unwrap();
    group
        .relays
        .push(RelayProcess::start(&twelve, "ranges-twelve"));
    let started = Instant::now();
    read_while(
        &mut subscription,
        wait_for_ranges(&mut group.conn, 12, Duration::from_secs(60)),
    )
    .await;
    read_while(
        &mut subscription,
        wait_for_spread(&mut group.conn, 3, Duration::from_secs(30)),
    )
    .await;
    let recut = started.elapsed();
    keep_reading(&mut subscription, Duration::from_secs(2)).await;
    let committed = finish_writing(writer, &mut subscription).await;
    report(
        "ranges 6 -> 12 under load, 3 relays",
        &subscription,
        &committed,
        &format!("re-cut and spread in {:.1} s", recut.as_secs_f64()),
    );
    subscription.assert_exactly_committed_in_order(&committed);
    assert_eq!(
        subscription.ledger.duplicates, 0,
        "re-cutting ranges published something twice"
    );
    group.finish().await;
}
