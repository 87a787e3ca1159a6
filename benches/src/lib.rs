//! Fixtures shared by the benchmarks: rows shaped like a relay read batch.

use outbox_engine::store::EventRow;

/// `n` rows of `payload_bytes` over `keys` keys, in sequence order like a batch page.
pub fn rows(n: usize, keys: usize, payload_bytes: usize) -> Vec<EventRow> {
    (0..n)
        .map(|i| EventRow {
            slot: (i / 64) as i32,
            seq: i as i64 + 1,
            key: format!("customer-{}", i % keys.max(1)),
            topic: "orders".to_owned(),
            event_type: "OrderPlaced".to_owned(),
            payload: vec![b'x'; payload_bytes],
            headers: r#"{"trace_id":"0af7651916cd43dd8448eb211c80319c"}"#.to_owned(),
            event_id: "5f0c7c7e-8f0e-4c1e-9d7a-3f7d1c2b9a10".to_owned(),
            tx: 1_000 + (i / 100) as i64,
            created_s: 0.0,
        })
        .collect()
}
