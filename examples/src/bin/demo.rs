//! `make demo`: a small "order service" that embeds the outbox.
//!
//! It migrates the schema, starts the relay inside the process, writes an order row and
//! its `OrderPlaced` event in one transaction every few milliseconds (one in ten is
//! rolled back on purpose), and reads the topic back with a real Pulsar consumer,
//! printing a live line: written, published, received, pending, lost, out of order.
//!
//! Environment: DATABASE_URL, PULSAR_URL, DEMO_SECONDS (default 20), DEMO_RATE (orders
//! per second, default 200).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_adapters::pulsar::EventConsumer;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::verify::DeliveryLedger;
use outbox_engine::{enqueue, EnqueueError, NewEvent, Relay, RelayConfig};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[derive(Debug)]
#[allow(dead_code)] // shown through Debug when the writer fails
enum OrderError {
    Db(diesel::result::Error),
    Enqueue(EnqueueError),
    Cancelled,
}

impl From<diesel::result::Error> for OrderError {
    fn from(e: diesel::result::Error) -> Self {
        OrderError::Db(e)
    }
}

impl From<EnqueueError> for OrderError {
    fn from(e: EnqueueError) -> Self {
        OrderError::Enqueue(e)
    }
}

/// The service's own write: an order row and its event, atomically.
async fn place_order(
    conn: &mut AsyncPgConnection,
    topic: &str,
    n: u64,
    cancel: bool,
) -> Result<i64, OrderError> {
    conn.transaction(async |conn| {
        let customer = format!("customer-{}", n % 25);
        diesel::sql_query("INSERT INTO demo_orders (customer, amount_cents) VALUES ($1, $2)")
            .bind::<Text, _>(&customer)
            .bind::<BigInt, _>((n % 97 * 100) as i64)
            .execute(conn)
            .await?;
        let payload = format!("{{\"order\":{n},\"customer\":\"{customer}\"}}");
        let seq = enqueue(
            conn,
            &NewEvent::new(customer, topic, "OrderPlaced", payload),
        )
        .await?;
        if cancel {
            return Err(OrderError::Cancelled);
        }
        Ok(seq)
    })
    .await
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,pulsar=error".into()))
        .init();
    let database_url = env_or("DATABASE_URL", outbox_engine::config::DEFAULT_DATABASE_URL);
    let pulsar_url = env_or("PULSAR_URL", "pulsar://127.0.0.1:6650");
    let seconds: u64 = env_or("DEMO_SECONDS", "20")
        .parse()
        .context("DEMO_SECONDS must be a number")?;
    let rate: u64 = env_or("DEMO_RATE", "200")
        .parse()
        .context("DEMO_RATE must be a number")?;
    anyhow::ensure!(rate > 0, "DEMO_RATE must be at least 1");

    outbox_engine::migrate(&database_url)
        .await
        .context("migrating the outbox schema")?;
    let mut conn = AsyncPgConnection::establish(&database_url)
        .await
        .context("connecting to PostgreSQL")?;
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS demo_orders (id bigserial PRIMARY KEY, customer text NOT NULL, amount_cents bigint NOT NULL)",
    )
    .execute(&mut conn)
    .await?;

    let client: Pulsar<TokioExecutor> = Pulsar::builder(pulsar_url.clone(), TokioExecutor)
        .build()
        .await
        .with_context(|| format!("connecting to Pulsar at {pulsar_url}"))?;
    // A topic of its own per run, so the count is not mixed with earlier runs' events.
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let topic = format!("demo-orders-{run_id}");
    let mut consumer = EventConsumer::subscribe(&client, &[&topic], "demo").await?;

    let mut config = RelayConfig {
        database_url: database_url.clone(),
        ..Default::default()
    };
    config.pulsar.url = pulsar_url;
    let relay = Relay::start(config)?;

    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let committed = committed.clone();
        let written = written.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let interval = Duration::from_micros(1_000_000 / rate);
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                match place_order(&mut conn, &topic, n, n % 10 == 0).await {
                    Ok(seq) => {
                        committed
                            .lock()
                            .expect("poisoned")
                            .insert(seq, Instant::now());
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(OrderError::Cancelled) => {}
                    Err(other) => return Err(anyhow::anyhow!("writer failed: {other:?}")),
                }
                tokio::time::sleep(interval).await;
            }
            Ok(())
        })
    };

    println!(
        "demo: writing ~{rate} orders/s for {seconds} s (1 in 10 rolled back); Ctrl-C stops early"
    );
    let mut ledger = DeliveryLedger::default();
    let mut latencies_ms: Vec<f64> = Vec::new();
    let mut last_line = Instant::now();
    let mut writer_done = false;
    loop {
        if let Some(event) = consumer.next(Duration::from_millis(100)).await? {
            if !ledger.has_seen(event.seq) {
                if let Some(at) = committed.lock().expect("poisoned").get(&event.seq) {
                    latencies_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                }
            }
            ledger.record(event.delivery());
        }
        if !writer_done && writer.is_finished() {
            writer_done = true;
        }
        let all_in = writer_done && {
            let committed = committed.lock().expect("poisoned");
            committed.keys().all(|seq| ledger.has_seen(*seq))
        };
        if last_line.elapsed() >= Duration::from_secs(1) || all_in {
            last_line = Instant::now();
            println!(
                "written {:>6} | published {:>6} | received {:>6} | commit-to-receive p50 {:>5.1} ms, p99 {:>5.1} ms | duplicates {} | out of order {}",
                AtomicU64::load(&written, Ordering::Relaxed),
                relay.published(),
                ledger.distinct(),
                percentile(&mut latencies_ms, 0.50),
                percentile(&mut latencies_ms, 0.99),
                ledger.duplicates,
                ledger.reorders.len()
            );
        }
        if all_in {
            break;
        }
        if tokio::time::timeout(Duration::from_millis(1), tokio::signal::ctrl_c())
            .await
            .is_ok()
        {
            println!("interrupted");
            break;
        }
    }
    if writer_done {
        writer.await??;
    } else {
        writer.abort();
    }
    relay.shutdown().await?;
    let committed: HashSet<i64> = committed
        .lock()
        .expect("poisoned")
        .keys()
        .copied()
        .collect();
    let unexpected = ledger.unexpected(&committed);
    let missing = ledger.missing(&committed);
    println!(
        "done: {} committed, {} received, {} lost, {} rolled-back events seen, {} out of order",
        committed.len(),
        ledger.distinct(),
        missing.len(),
        unexpected.len(),
        ledger.reorders.len()
    );
    anyhow::ensure!(
        missing.is_empty() && unexpected.is_empty() && ledger.reorders.is_empty(),
        "the demo saw a guarantee broken"
    );
    Ok(())
}
