//! Range leases against the real PostgreSQL: even spread, fencing by epoch, expiry judged
//! by the database's clock, immediate handoff on release.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use outbox_engine::lease::Lease;
use outbox_engine::store::leases::{self, Member, Owned};
use outbox_engine::store::{self, StoreError};
use outbox_engine::{enqueue, NewEvent};
use support::*;

fn member(name: &str, lease_ms: i64) -> Member {
    Member {
        relay_id: name.into(),
        host: "test".into(),
        pid: 1,
        lease_ms,
    }
}

async fn tick(conn: &mut AsyncPgConnection, who: &Member) -> Vec<Owned> {
    leases::tick(conn, who, false, None, std::time::Duration::from_secs(5))
        .await
        .unwrap()
        .owned
}

fn kept(owned: &[Owned]) -> Vec<Owned> {
    owned.iter().filter(|o| o.keep).cloned().collect()
}

#[tokio::test]
async fn ranges_spread_evenly_and_are_never_owned_twice() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let a = member("a", 60_000);
    let b = member("b", 60_000);
    let c = member("c", 60_000);
    let first = leases::tick(
        &mut conn,
        &a,
        false,
        Some(6),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(first.owned.len(), 6, "alone, a relay owns every range");
    // b and c join: the plan gives them two ranges each, a hands four off.
    tick(&mut conn, &b).await;
    tick(&mut conn, &c).await;
    let a_owned = tick(&mut conn, &a).await;
    assert_eq!(kept(&a_owned).len(), 2, "a keeps its share");
    for handed in a_owned.iter().filter(|o| !o.keep) {
        assert!(
            leases::release(&mut conn, "a", handed.range, handed.epoch, false)
                .await
                .unwrap()
        );
    }
    let b_owned = tick(&mut conn, &b).await;
    let c_owned = tick(&mut conn, &c).await;
    let a_owned = tick(&mut conn, &a).await;
    assert_eq!((a_owned.len(), b_owned.len(), c_owned.len()), (2, 2, 2));
    let mut starts = HashSet::new();
    for o in a_owned.iter().chain(&b_owned).chain(&c_owned) {
        assert!(o.keep);
        assert!(
            starts.insert(o.range.start),
            "range {} owned twice",
            o.range
        );
    }
    // Epochs of ranges that changed owner moved past every earlier one.
    let max_first = first.owned.iter().map(|o| o.epoch).max().unwrap();
    assert!(b_owned.iter().all(|o| o.epoch > max_first));
    db.drop_now().await;
}

#[tokio::test]
async fn a_stale_owner_is_fenced_after_expiry_and_takeover() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let slow = member("slow", 1_000);
    let owned = leases::tick(
        &mut conn,
        &slow,
        false,
        Some(1),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap()
    .owned;
    let stale = Lease::new(
        owned[0].range,
        owned[0].epoch,
        Instant::now() + Duration::from_secs(60),
    );
    let seq = enqueue(&mut conn, &NewEvent::new("k", "t", "E", b"x".to_vec()))
        .await
        .unwrap();
    let page = store::read_page(&mut conn, &stale, store::EMPTY_SNAPSHOT, None, 0, 10, None)
        .await
        .unwrap();
    let (snapshot, rows) = (page.snapshot, page.events);
    let tx = rows[0].tx;
    assert_eq!(rows[0].seq, seq);
    let published = store::ProgressUpdate {
        done: snapshot,
        open: None,
        carried: None,
        events_done: 1,
        batch_done: 0,
        published: 1,
        parked: 0,
        completed: None,
    };

    // While "slow" holds a live lease, nobody else can claim it.
    let other = member("other", 60_000);
    assert!(tick(&mut conn, &other).await.is_empty());
    // The lease expires by the database's clock; the other relay takes it over.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let taken = tick(&mut conn, &other).await;
    assert_eq!(taken.len(), 1);
    assert!(taken[0].epoch > stale.epoch);

    // The stale owner's writes change nothing.
    let error = store::save_progress(&mut conn, &stale, "slow", &published)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
    let error = store::park(&mut conn, &stale, seq, tx, "test", 1)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
    assert_eq!(
        pending_count(&mut conn).await,
        1,
        "the fenced writes recorded nothing"
    );
    assert!(
        !leases::release(&mut conn, "slow", stale.range, stale.epoch, false)
            .await
            .unwrap()
    );

    // The new owner's writes go through.
    let fresh = Lease::new(
        taken[0].range,
        taken[0].epoch,
        Instant::now() + Duration::from_secs(60),
    );
    store::save_progress(&mut conn, &fresh, "other", &published)
        .await
        .unwrap();
    assert_eq!(pending_count(&mut conn).await, 0);
    db.drop_now().await;
}

#[tokio::test]
async fn a_released_range_is_taken_at_the_next_tick_and_layout_changes_wait_for_release() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let a = member("a", 60_000);
    let b = member("b", 60_000);
    let owned = leases::tick(
        &mut conn,
        &a,
        false,
        Some(2),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap()
    .owned;
    assert_eq!(owned.len(), 2);
    // a leaves gracefully: b takes both ranges at once, without waiting for expiry.
    leases::leave(&mut conn, "a").await.unwrap();
    assert_eq!(tick(&mut conn, &b).await.len(), 2);

    // b asks for 4 ranges: its two current ones must be released first (no key is ever
    // owned twice), then the table is re-cut and b owns the four new ones.
    let during = leases::tick(
        &mut conn,
        &b,
        false,
        Some(4),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap()
    .owned;
    assert!(
        during.iter().all(|o| !o.keep),
        "mismatched ranges are handed back"
    );
    for o in &during {
        leases::release(&mut conn, "b", o.range, o.epoch, false)
            .await
            .unwrap();
    }
    let after = tick(&mut conn, &b).await;
    assert_eq!(after.len(), 4);
    assert_eq!(after.iter().map(|o| o.range.len()).sum::<i32>(), 1024);
    db.drop_now().await;
}

#[tokio::test]
async fn a_member_stopped_inside_its_tick_does_not_block_the_group() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    // A relay session (as the relay sets it up) that took the group's lock and stopped
    // answering in the middle of its tick.
    let mut stuck = db.connect().await;
    stuck
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = 500; BEGIN; SELECT pg_advisory_xact_lock({})",
            leases::LEASE_LOCK_ID
        ))
        .await
        .unwrap();
    let healthy = member("healthy", 60_000);
    let started = Instant::now();
    let owned = leases::tick(&mut conn, &healthy, false, Some(2), Duration::from_secs(5))
        .await
        .expect("the server ends the stuck transaction, and the tick goes through");
    assert_eq!(owned.owned.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
    // And a tick never waits without bound: with the lock held by a live transaction
    // it gives up at its lock timeout.
    let mut holder = db.connect().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            leases::LEASE_LOCK_ID
        ))
        .await
        .unwrap();
    let error = leases::tick(&mut conn, &healthy, false, None, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("lock timeout"), "{error}");
    diesel::sql_query("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    db.drop_now().await;
}

/// One member takes the single range of a one-partition layout.
async fn whole_range_lease(conn: &mut AsyncPgConnection) -> Lease {
    let me = member("reader", 60_000);
    let owned = leases::tick(conn, &me, false, Some(1), Duration::from_secs(5))
        .await
        .unwrap()
        .owned;
    Lease::new(
        owned[0].range,
        owned[0].epoch,
        Instant::now() + Duration::from_secs(60),
    )
}

/// A batch larger than a page: the first read returns a page of events whole and lists
/// the rest by key, in sequence order; fetching those keys returns exactly the rest.
#[tokio::test]
async fn a_large_batch_is_read_as_a_page_and_a_list_of_the_rest() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let lease = whole_range_lease(&mut conn).await;
    let mut seqs = Vec::new();
    for i in 0..25 {
        let event = NewEvent::new(format!("k{}", i % 3), "t", "E", vec![i as u8]);
        seqs.push(enqueue(&mut conn, &event).await.unwrap());
    }
    let page = store::read_page(&mut conn, &lease, store::EMPTY_SNAPSHOT, None, 0, 10, None)
        .await
        .unwrap();
    let first: Vec<i64> = page.events.iter().map(|e| e.seq).collect();
    let rest: Vec<i64> = page.rest.iter().map(|k| k.0).collect();
    assert_eq!(first, seqs[..10]);
    assert_eq!(rest, seqs[10..]);
    let fetched = store::read_keys(&mut conn, &lease, &page.rest)
        .await
        .unwrap();
    let fetched: Vec<i64> = fetched.iter().map(|e| e.seq).collect();
    assert_eq!(fetched, seqs[10..]);
    // Continuing the open batch after the first ten reads only the rest.
    let next = store::read_page(
        &mut conn,
        &lease,
        store::EMPTY_SNAPSHOT,
        Some(&page.snapshot),
        seqs[9],
        100,
        None,
    )
    .await
    .unwrap();
    let next: Vec<i64> = next.events.iter().map(|e| e.seq).collect();
    assert_eq!(next, seqs[10..]);
    db.drop_now().await;
}

/// Listed keys are fetched exactly, whatever their spread: a dense run by one scan of
/// its sequence span (rows of that span that were not asked for are left out), keys far
/// apart one by one.
#[tokio::test]
async fn listed_keys_are_fetched_exactly_whether_dense_or_spread() {
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let lease = whole_range_lease(&mut conn).await;
    for i in 0..40 {
        let event = NewEvent::new(format!("k{}", i % 4), "t", "E", vec![i as u8]);
        enqueue(&mut conn, &event).await.unwrap();
    }
    let page = store::read_page(&mut conn, &lease, store::EMPTY_SNAPSHOT, None, 0, 4, None)
        .await
        .unwrap();
    assert_eq!(page.rest.len(), 36);
    let seqs_of = |keys: &[(i64, i64)]| keys.iter().map(|k| k.0).collect::<Vec<_>>();
    let cases: [(&str, Vec<(i64, i64)>); 4] = [
        ("a dense run", page.rest[..12].to_vec()),
        (
            "every third key",
            page.rest.iter().step_by(3).copied().collect(),
        ),
        ("two keys far apart", vec![page.rest[0], page.rest[35]]),
        ("one key", vec![page.rest[7]]),
    ];
    for (case, keys) in cases {
        let fetched = store::read_keys(&mut conn, &lease, &keys).await.unwrap();
        let fetched: Vec<i64> = fetched.iter().map(|e| e.seq).collect();
        assert_eq!(fetched, seqs_of(&keys), "{case}");
    }
    let none = store::read_keys(&mut conn, &lease, &[]).await.unwrap();
    assert!(none.is_empty());
    db.drop_now().await;
}
