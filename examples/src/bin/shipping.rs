//! `shipping`: a consumer that creates one shipment per `OrderCreated`, exactly once,
//! through the idempotent inbox of `outbox-adapters` (docs/consumers.md).
//!
//! Each event runs in one transaction on the shipping database: the inbox records the
//! event's `event_id` and the handler inserts the shipment; a redelivered or replayed
//! event is acknowledged without a second shipment. Runs until SIGINT / SIGTERM.
//!
//! Environment: `SHIPPING_DATABASE_URL` (default `DATABASE_URL`), `PULSAR_URL`,
//! `ORDERS_TOPIC` (default `orders`), `SHIPPING_SUBSCRIPTION` (default `shipping`).

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::future::BoxFuture;
use outbox_adapters::inbox::{self, Handler, HandlerError, Inbox, InboxConfig, InboxMessage};
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_engine::store::{self, SessionKind};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct OrderCreated {
    order_id: String,
    customer: String,
    amount_cents: i64,
}

struct CreateShipment;

impl Handler for CreateShipment {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        message: &'a InboxMessage,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let order: OrderCreated = serde_json::from_slice(&message.payload)?;
            diesel::sql_query(
                "INSERT INTO shipments (order_id, customer, amount_cents) VALUES ($1::uuid, $2, $3)",
            )
            .bind::<Text, _>(&order.order_id)
            .bind::<Text, _>(&order.customer)
            .bind::<BigInt, _>(order.amount_cents)
            .execute(conn)
            .await?;
            tracing::info!(order = %order.order_id, customer = %order.customer, "shipment created");
            Ok(())
        })
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shipping: stopping");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pulsar=warn".into()),
        )
        .init();
    let database_url = std::env::var("SHIPPING_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .map_err(|_| anyhow::anyhow!("set SHIPPING_DATABASE_URL or DATABASE_URL"))?;
    let pulsar_url =
        std::env::var("PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let topic = std::env::var("ORDERS_TOPIC").unwrap_or_else(|_| "orders".into());
    let subscription = std::env::var("SHIPPING_SUBSCRIPTION").unwrap_or_else(|_| "shipping".into());

    let pool = store::pool(&database_url, 8, SessionKind::Plain).await?;
    {
        let mut conn = pool.get().await?;
        inbox::install(&mut conn).await?;
        // Instances may start together: the advisory lock keeps their CREATE ... IF NOT
        // EXISTS from racing on the catalog.
        conn.batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('shipping example setup', 0)); \
             CREATE TABLE IF NOT EXISTS shipments ( \
               id bigserial PRIMARY KEY, order_id uuid NOT NULL, customer text NOT NULL, \
               amount_cents bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); \
             COMMIT",
        )
        .await?;
    }
    let client: Pulsar<TokioExecutor> = Pulsar::builder(pulsar_url, TokioExecutor).build().await?;
    let inbox = Inbox::start(&client, pool, InboxConfig::new(&[&topic], &subscription)).await?;
    tracing::info!(%topic, %subscription, "shipping: consuming");
    let report = inbox.run(CreateShipment, shutdown_signal()).await?;
    tracing::info!(?report, "shipping: stopped");
    Ok(())
}
