//! The binary's metrics and health endpoints: scraped during a run, they show what the
//! run did; a metrics port in use is refused at start, naming the port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use outbox_engine::{enqueue_batch, NewEvent};
use support::*;

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

fn relay(db: &TestDb, listen: &str) -> Command {
    // Maintenance rounds (which report the horizon holder) every 200 ms.
    let config = std::env::temp_dir().join(format!("{}.toml", unique("metrics")));
    std::fs::write(&config, "maintenance_interval_ms = 200\n").unwrap();
    let mut command = relay_binary(db);
    command.args([
        "--config",
        config.to_str().unwrap(),
        "--metrics-listen",
        listen,
        "run",
    ]);
    command
}

/// `curl` the path; returns (HTTP status, body).
fn get(address: &str, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            &format!("http://{address}{path}"),
        ])
        .output()
        .expect("curl is needed (installed by scripts/services)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_show_what_the_run_published() {
    let db = TestDb::create().await;
    let address = free_port();
    let relay_process = KilledOnDrop::spawn(relay(&db, &address));
    let topic = format!("persistent://public/default/{}", unique("metrics"));
    let mut conn = db.connect().await;
    let events: Vec<NewEvent> = (0..50)
        .map(|i| NewEvent::new(format!("k{}", i % 7), &topic, "E", vec![1; 16]))
        .collect();
    enqueue_batch(&mut conn, &events).await.unwrap();

    let label = format!("outbox_events_published_total{{topic=\"{topic}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (code, text) = get(&address, "/metrics");
        if code == 200 && sample(&text, &label) == Some(50.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the 50 events published (status {code}):\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(sample(&text, "outbox_publish_latency_seconds_count").unwrap() >= 50.0);
    assert_eq!(sample(&text, "outbox_ready"), Some(1.0));
    assert!(sample(&text, "outbox_leases_held").unwrap() >= 1.0);
    assert_eq!(get(&address, "/readyz").0, 200);

    // A writer that keeps its transaction open holds back the horizon: the metrics name
    // its backend once a maintenance round has seen it.
    let mut holder = db.connect().await;
    diesel::sql_query("BEGIN")
        .execute(&mut holder)
        .await
        .unwrap();
    let pid: Pid =
        diesel::sql_query("SELECT pg_backend_pid() AS pid, pg_current_xact_id()::text AS xid")
            .get_result(&mut holder)
            .await
            .unwrap();
    let wanted = format!("outbox_horizon_holder_pid {}", pid.pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(&address, "/metrics");
        if text.lines().any(|line| line == wanted) {
            assert!(sample(&text, "outbox_horizon_holder_transaction_age_seconds").unwrap() > 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metrics never named the open transaction's backend {}:\n{text}",
            pid.pid
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    diesel::sql_query("COMMIT")
        .execute(&mut holder)
        .await
        .unwrap();
    assert_eq!(get(&address, "/livez").0, 200);
    assert_eq!(get(&address, "/nothing").0, 404);
    drop(relay_process);
    db.drop_now().await;
}

#[tokio::test]
async fn a_metrics_port_in_use_is_refused_at_start() {
    let db = TestDb::create().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = relay(&db, &address)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started on a port in use");
    assert!(
        stderr.contains(&address) && stderr.contains("metrics"),
        "the refusal does not name the port: {stderr}"
    );
    drop(taken);
    db.drop_now().await;
}
