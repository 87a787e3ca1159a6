//! The two example services end to end against the real PostgreSQL and Pulsar: orders
//! posted to two `orders` replicas turn into exactly one shipment each, through a
//! `shipping` consumer killed and restarted and an `orders` replica killed, in the
//! middle. Also: a malformed order gets 400 naming the field, and nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use support::*;

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn service(binary: &str, db: &TestDb, topic: &str, envs: &[(&str, &str)]) -> KilledOnDrop {
    let mut command = Command::new(binary);
    command
        .env("DATABASE_URL", &db.url)
        .env("PULSAR_URL", pulsar_url())
        .env("ORDERS_TOPIC", topic)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (name, value) in envs {
        command.env(name, value);
    }
    KilledOnDrop::spawn(command)
}

/// POSTs `body`; returns (HTTP status, response body).
fn post(address: &str, body: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &format!("http://{address}/orders"),
        ])
        .output()
        .expect("curl is needed (installed by scripts/services)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn wait_until_up(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new("curl")
            .args(["-sf", "-m", "2", &format!("http://{address}/healthz")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "orders at {address} did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create_order(address: &str, i: usize) -> String {
    let (status, body) = post(
        address,
        &format!(
            r#"{{"customer": "customer-{i}", "amount_cents": {}}}"#,
            100 + i
        ),
    );
    assert_eq!(status, 201, "order {i}: {body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    created["id"].as_str().unwrap().to_owned()
}

#[derive(diesel::QueryableByName)]
struct PerOrder {
    #[diesel(sql_type = Text)]
    order_id: String,
    #[diesel(sql_type = BigInt)]
    shipments: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_become_exactly_one_shipment_each_through_restarts() {
    let db = TestDb::create().await;
    let topic = unique("orders");
    let subscription = unique("shipping");
    let orders_bin = env!("CARGO_BIN_EXE_orders");
    let shipping_bin = env!("CARGO_BIN_EXE_shipping");
    let a = free_address();
    let b = free_address();
    let _orders_a = service(orders_bin, &db, &topic, &[("ORDERS_LISTEN", &a)]);
    let mut orders_b = service(orders_bin, &db, &topic, &[("ORDERS_LISTEN", &b)]);
    let shipping_env = [("SHIPPING_SUBSCRIPTION", subscription.as_str())];
    let mut shipping = service(shipping_bin, &db, &topic, &shipping_env);
    wait_until_up(&a);
    wait_until_up(&b);

    // Bad input first: 400 naming the field, nothing written.
    let (status, body) = post(&a, r#"{"amount_cents": 5}"#);
    assert!(
        status == 400 && body.contains("customer"),
        "{status} {body}"
    );
    let (status, body) = post(&a, r#"{"customer": "x", "amount_cents": "lots"}"#);
    assert!(
        status == 400 && body.contains("amount_cents"),
        "{status} {body}"
    );
    let (status, body) = post(&a, r#"{"customer": "x", "amount_cents": -3}"#);
    assert!(
        status == 400 && body.contains("amount_cents"),
        "{status} {body}"
    );

    let mut ids = Vec::new();
    for i in 0..60 {
        let replica = if i % 2 == 0 { &a } else { &b };
        if i == 20 {
            // The consumer dies without a goodbye and comes back.
            let _ = shipping.0.kill();
            let _ = shipping.0.wait();
            shipping = service(shipping_bin, &db, &topic, &shipping_env);
        }
        if i == 40 {
            // One of the two orders replicas (and its embedded relay) dies; the other's
            // relay takes its ranges over once their leases expire.
            let _ = orders_b.0.kill();
            let _ = orders_b.0.wait();
        }
        let replica = if i >= 40 { &a } else { replica };
        ids.push(create_order(replica, i));
    }

    let mut conn = db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let per_order: Vec<PerOrder> = loop {
        let rows: Vec<PerOrder> = diesel::sql_query(
            "SELECT o.id::text AS order_id, count(s.id) AS shipments \
               FROM orders o LEFT JOIN shipments s ON s.order_id = o.id GROUP BY o.id",
        )
        .load(&mut conn)
        .await
        .unwrap();
        let done = rows.len() == ids.len() && rows.iter().all(|r| r.shipments >= 1);
        if done || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        per_order.len(),
        60,
        "orders written: malformed ones must not be"
    );
    let counts: HashMap<&str, i64> = per_order
        .iter()
        .map(|r| (r.order_id.as_str(), r.shipments))
        .collect();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| counts.get(id.as_str()) == Some(&0))
        .collect();
    assert!(
        missing.is_empty(),
        "{} orders without a shipment",
        missing.len()
    );
    let twice: Vec<&PerOrder> = per_order.iter().filter(|r| r.shipments > 1).collect();
    assert!(
        twice.is_empty(),
        "{} orders shipped more than once",
        twice.len()
    );
    drop(shipping);
    db.drop_now().await;
}
