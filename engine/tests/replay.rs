//! Replay end to end against the real services: `outbox-relay replay` republishes
//! retained, published events of a key, range or topic, unchanged (same event_id and
//! seq, in order), marked with `outbox-replay=true`; a dry run and bad requests send
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use outbox_engine::replay::{replay, ReplayError, REPLAY_PROPERTY};
use outbox_engine::store::replay::ReplayFilter;
use outbox_engine::{enqueue, NewEvent, Relay};
use support::*;

#[tokio::test]
async fn replay_republishes_a_keys_events_in_order_and_refuses_bad_requests() {
    init_tracing();
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    let topic = unique("replay");
    let mut subscription = subscribe(&[&topic]).await;
    let mut committed = HashSet::new();
    let mut of_a = Vec::new();
    for i in 0..30 {
        let key = ["a", "b", "c"][i % 3];
        let seq = enqueue(
            &mut conn,
            &NewEvent::new(key, topic.as_str(), "E", format!("v{i}").into_bytes()),
        )
        .await
        .unwrap();
        committed.insert(seq);
        if key == "a" {
            of_a.push(seq);
        }
    }
    let config = db.relay_config();
    let relay = Relay::start(config.clone()).expect("relay start");
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    wait_until_drained(&mut conn).await;
    relay.shutdown().await.unwrap();
    let originals: Vec<_> = subscription.events.clone();
    subscription.drain(Duration::from_secs(1)).await;
    let before = subscription.events.len();

    // A dry run counts and sends nothing.
    let by_key = ReplayFilter {
        key: Some("a".into()),
        from_seq: Some(of_a[1]),
        ..Default::default()
    };
    let dry = replay(&config, &by_key, true).await.unwrap();
    assert_eq!(dry.matched, of_a.len() - 1);
    assert_eq!(dry.published, 0);
    subscription.drain(Duration::from_secs(2)).await;
    assert_eq!(subscription.events.len(), before, "a dry run published");

    // The real one: the same events, in order, marked as replays.
    let done = replay(&config, &by_key, false).await.unwrap();
    assert_eq!(done.published, of_a.len() - 1);
    subscription
        .collect_at_least(committed.len(), Duration::from_secs(30))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while subscription.events.len() < before + done.published
        && std::time::Instant::now() < deadline
    {
        subscription.drain(Duration::from_millis(500)).await;
    }
    let replayed: Vec<_> = subscription.events[before..].to_vec();
    let seqs: Vec<i64> = replayed.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        of_a[1..].to_vec(),
        "replayed events in order, nothing else"
    );
    for event in &replayed {
        assert_eq!(event.key, "a");
        assert_eq!(
            event.properties.get(REPLAY_PROPERTY).map(String::as_str),
            Some("true")
        );
        let original = originals.iter().find(|o| o.seq == event.seq).unwrap();
        assert_eq!(
            event.event_id, original.event_id,
            "a replay keeps the event id"
        );
        assert_eq!(event.payload, original.payload);
    }

    // Bad requests: an explicit error, nothing sent.
    let sent = subscription.events.len();
    let nothing = ReplayFilter {
        key: Some("no-such-key".into()),
        ..Default::default()
    };
    assert!(matches!(
        replay(&config, &nothing, false).await,
        Err(ReplayError::NothingMatches(_))
    ));
    let too_old = ReplayFilter {
        topic: Some(topic.clone()),
        from_seq: Some(0),
        ..Default::default()
    };
    let error = replay(&config, &too_old, false).await.unwrap_err();
    assert!(
        matches!(error, ReplayError::OutsideWindow { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("retention window"), "{error}");
    assert!(matches!(
        replay(&config, &ReplayFilter::default(), false).await,
        Err(ReplayError::NoSelection)
    ));
    // The binary exits non-zero and names the problem.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &db.url, "replay", "--key", "no-such-key"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no published event matches"), "{stderr}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", &db.url, "replay", "--range", "9-3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a slot range"));
    subscription.drain(Duration::from_secs(1)).await;
    assert_eq!(
        subscription.events.len(),
        sent,
        "a refused replay published"
    );
    db.drop_now().await;
}
