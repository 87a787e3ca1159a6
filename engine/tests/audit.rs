//! `outbox-relay audit` against the real database: a range whose recorded progress passed
//! events that no batch published is reported (with the replay command), a trail that
//! joins up is clean, and so is a stretch with nothing in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use outbox_engine::store::audit::skipped_events;
use outbox_engine::{enqueue, NewEvent};
use support::*;

#[derive(diesel::QueryableByName)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    snap: String,
}

async fn snapshot(conn: &mut AsyncPgConnection) -> String {
    diesel::sql_query("SELECT pg_current_snapshot()::text AS snap")
        .get_result::<Snapshot>(conn)
        .await
        .unwrap()
        .snap
}

/// Records a batch of the whole slot space from `from` to `to`, as the relay does.
async fn audit_row(conn: &mut AsyncPgConnection, from: &str, to: &str, events: i32) {
    diesel::sql_query(
        "INSERT INTO outbox_batch (range_start, range_end, epoch, relay_id, from_snapshot, \
                                   to_snapshot, to_xmax, events, parked) \
         VALUES (0, 1023, 1, 'test', $1::pg_snapshot, $2::pg_snapshot, \
                 pg_snapshot_xmax($2::pg_snapshot), $3, 0)",
    )
    .bind::<Text, _>(from)
    .bind::<Text, _>(to)
    .bind::<Integer, _>(events)
    .execute(conn)
    .await
    .unwrap();
}

/// Records the whole slot space's current position (its done snapshot), as the relay does.
async fn set_done(conn: &mut AsyncPgConnection, done: &str) {
    diesel::sql_query(
        "INSERT INTO outbox_progress (range_start, range_end, done_snapshot) \
         VALUES (0, 1023, $1::pg_snapshot) \
         ON CONFLICT (range_start, range_end) DO UPDATE SET done_snapshot = excluded.done_snapshot",
    )
    .bind::<Text, _>(done)
    .execute(conn)
    .await
    .unwrap();
}

async fn one_event(conn: &mut AsyncPgConnection, topic: &str, key: &str) -> i64 {
    enqueue(conn, &NewEvent::new(key, topic, "E", b"x".to_vec()))
        .await
        .unwrap()
}

fn audit_exit_code(db: &TestDb) -> (i32, String) {
    let output = relay_binary(db)
        .arg("audit")
        .stdout(std::process::Stdio::piped())
        .output()
        .expect("outbox-relay audit runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn audit_reports_events_the_trail_passed_without_publishing() {
    init_tracing();
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let topic = unique("audit");

    let s0 = snapshot(&mut conn).await;
    let first = one_event(&mut conn, &topic, "a").await;
    let s1 = snapshot(&mut conn).await;
    let skipped = one_event(&mut conn, &topic, "b").await;
    let s2 = snapshot(&mut conn).await;
    let third = one_event(&mut conn, &topic, "c").await;
    let s3 = snapshot(&mut conn).await;
    assert!(first < skipped && skipped < third);

    // Batches s0 -> s1 and s2 -> s3 were published; the step s1 -> s2 went through empty
    // batches only (no row), yet the second event became visible in it.
    audit_row(&mut conn, &s0, &s1, 1).await;
    audit_row(&mut conn, &s2, &s3, 1).await;
    let found = skipped_events(&mut conn).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let stretch = &found[0];
    assert_eq!((stretch.range_start, stretch.range_end), (0, 1023));
    assert_eq!(stretch.events, 1);
    assert_eq!((stretch.first_seq, stretch.last_seq), (skipped, skipped));
    assert_eq!(
        (stretch.done_before.as_str(), stretch.done_after.as_str()),
        (s1.as_str(), s2.as_str())
    );
    let (code, stdout) = audit_exit_code(&db);
    assert_eq!(
        code, 4,
        "audit must fail when events were skipped: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "replay --range 0-1023 --from-seq {skipped} --to-seq {skipped}"
        )),
        "{stdout}"
    );

    // Once the step is covered by a batch, the trail joins up: clean.
    audit_row(&mut conn, &s1, &s2, 1).await;
    assert_eq!(skipped_events(&mut conn).await.unwrap(), Vec::new());
    assert_eq!(audit_exit_code(&db).0, 0);

    // A step with no event in it (an idle range moving its done snapshot) is fine.
    let s4 = snapshot(&mut conn).await;
    let s5 = snapshot(&mut conn).await;
    audit_row(&mut conn, &s3, &s4, 0).await;
    audit_row(&mut conn, &s5, &s5, 0).await;
    assert_eq!(skipped_events(&mut conn).await.unwrap(), Vec::new());

    // After the last batch: the range's current done snapshot passed an event that no
    // batch published.
    let tail = one_event(&mut conn, &topic, "d").await;
    let s6 = snapshot(&mut conn).await;
    set_done(&mut conn, &s6).await;
    let found = skipped_events(&mut conn).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].first_seq, found[0].last_seq), (tail, tail));
    assert_eq!(found[0].done_after, s6);

    // Inside a batch: two events became visible in it, it recorded one (a read that
    // missed part of its batch).
    audit_row(&mut conn, &s5, &s6, 1).await;
    let partly = one_event(&mut conn, &topic, "e").await;
    let other = one_event(&mut conn, &topic, "f").await;
    let s7 = snapshot(&mut conn).await;
    audit_row(&mut conn, &s6, &s7, 1).await;
    set_done(&mut conn, &s7).await;
    let found = skipped_events(&mut conn).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].events, 1);
    assert_eq!((found[0].first_seq, found[0].last_seq), (partly, other));
    assert_eq!(
        (found[0].done_before.as_str(), found[0].done_after.as_str()),
        (s6.as_str(), s7.as_str())
    );
    drop(conn);
    db.drop_now().await;
}
