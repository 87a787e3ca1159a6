//! `orders`: an HTTP service that creates an order and its `OrderCreated` event in one
//! transaction, with the relay embedded (docs/getting-started.md).
//!
//! `POST /orders` with `{"customer": "...", "amount_cents": 1250}` answers 201 with the
//! order's id; a malformed body answers 400 naming the field, and nothing is written.
//! `GET /healthz` answers 200. Run several replicas on one database: their embedded
//! relays share the work through leases.
//!
//! Environment: `DATABASE_URL`, `PULSAR_URL`, `ORDERS_LISTEN` (default
//! `127.0.0.1:8081`), `ORDERS_TOPIC` (default `orders`).

use actix_web::{web, App, HttpResponse, HttpServer};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use outbox_engine::store::{self, Pool, SessionKind};
use outbox_engine::{enqueue, NewEvent, Relay, RelayConfig};
use serde::{Deserialize, Serialize};

/// What clients send. Unknown fields are refused, so a typo is not silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    customer: String,
    amount_cents: i64,
}

/// The event's payload (JSON), what `shipping` reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    pub customer: String,
    pub amount_cents: i64,
}

struct State {
    pool: Pool,
    topic: String,
}

fn bad_request(field: &str, reason: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "error": reason, "field": field }))
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

async fn create_order(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    let mut reader = serde_json::Deserializer::from_slice(&body);
    let order: NewOrder = match serde_path_to_error::deserialize(&mut reader) {
        Ok(order) => order,
        Err(error) => {
            // The path names a field of the wrong type; a missing or unknown field is
            // named in the message ("missing field `customer`").
            let path = error.path().to_string();
            let text = error.inner().to_string();
            let field = if path != "." {
                path
            } else {
                ["customer", "amount_cents"]
                    .into_iter()
                    .find(|f| text.contains(f))
                    .unwrap_or("body")
                    .to_owned()
            };
            return bad_request(&field, &format!("malformed order: {field}: {text}"));
        }
    };
    if order.customer.trim().is_empty() {
        return bad_request("customer", "customer must not be empty");
    }
    if order.amount_cents <= 0 {
        return bad_request("amount_cents", "amount_cents must be a positive integer");
    }
    let mut conn = match state.pool.get().await {
        Ok(conn) => conn,
        Err(error) => {
            return HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "error": format!("database unavailable: {error}") }))
        }
    };
    let topic = state.topic.clone();
    // The order and its event commit together, or neither does.
    let created = conn
        .transaction::<String, anyhow::Error, _>(async move |conn| {
            let row: Id = diesel::sql_query(
                "INSERT INTO orders (customer, amount_cents) VALUES ($1, $2) RETURNING id::text AS id",
            )
            .bind::<Text, _>(&order.customer)
            .bind::<BigInt, _>(order.amount_cents)
            .get_result(conn)
            .await?;
            let payload = serde_json::to_vec(&OrderCreated {
                order_id: row.id.clone(),
                customer: order.customer.clone(),
                amount_cents: order.amount_cents,
            })?;
            enqueue(
                conn,
                &NewEvent::new(row.id.clone(), topic.as_str(), "OrderCreated", payload),
            )
            .await?;
            Ok(row.id)
        })
        .await;
    match created {
        Ok(id) => HttpResponse::Created().json(serde_json::json!({ "id": id })),
        Err(error) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "error": format!("order not created: {error}") })),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pulsar=warn".into()),
        )
        .init();
    let database_url = std::env::var("DATABASE_URL")
        .map_err(|_| anyhow::anyhow!("set DATABASE_URL (make example does)"))?;
    let pulsar_url =
        std::env::var("PULSAR_URL").unwrap_or_else(|_| "pulsar://127.0.0.1:6650".into());
    let listen = std::env::var("ORDERS_LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let topic = std::env::var("ORDERS_TOPIC").unwrap_or_else(|_| "orders".into());

    outbox_engine::migrate(&database_url).await?;
    let pool = store::pool(&database_url, 8, SessionKind::Plain).await?;
    // Replicas start together: the advisory lock keeps their CREATE ... IF NOT EXISTS
    // from racing on the catalog.
    pool.get()
        .await?
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('orders example setup', 0)); \
             CREATE TABLE IF NOT EXISTS orders ( \
               id uuid PRIMARY KEY DEFAULT gen_random_uuid(), customer text NOT NULL, \
               amount_cents bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now()); \
             COMMIT",
        )
        .await?;

    // The relay, embedded: it publishes what this service (and its replicas) enqueue.
    let mut config = RelayConfig {
        database_url,
        ..Default::default()
    };
    config.pulsar.url = pulsar_url;
    let relay = Relay::start(config)?;

    let state = web::Data::new(State { pool, topic });
    tracing::info!(%listen, "orders: listening");
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/orders", web::post().to(create_order))
            .route("/healthz", web::get().to(healthz))
    })
    .workers(2)
    .bind(&listen)?
    .run()
    .await?;
    // SIGTERM / SIGINT: the server has stopped taking requests; the relay drains.
    relay.shutdown().await?;
    Ok(())
}
