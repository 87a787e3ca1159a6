//! Pulsar OAuth2 (client credentials) end to end: an OAuth2 issuer served by the test
//! (discovery document and token endpoint, with axum) hands out access tokens that the
//! test broker accepts (it checks tokens, see `scripts/services/pulsar.sh`); both
//! producers fetch one with the client's credentials and publish. Credentials the issuer
//! refuses leave the relay waiting, with nothing dead-lettered. Access tokens that expire
//! every few seconds are renewed on the broker's challenge, on the same connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};

use outbox_adapters::pulsar::ProducerKind;
use outbox_engine::{enqueue, NewEvent};
use support::*;

const CLIENT_ID: &str = "outbox-relay";
const CLIENT_SECRET: &str = "s3cret-client";

#[derive(Clone)]
struct Issuer {
    base: String,
    access_token: String,
    /// When set, every token request gets a new JWT signed with the broker's secret and
    /// expiring after this many seconds (and `expires_in` says so).
    lifetime_s: Option<u64>,
    tokens_issued: Arc<AtomicUsize>,
}

#[derive(serde::Deserialize)]
struct TokenRequest {
    grant_type: String,
    client_id: String,
    client_secret: String,
}

async fn discovery(State(issuer): State<Issuer>) -> Json<serde_json::Value> {
    let base = &issuer.base;
    Json(serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn token(
    State(issuer): State<Issuer>,
    Form(request): Form<TokenRequest>,
) -> (StatusCode, Json<serde_json::Value>) {
    if request.grant_type != "client_credentials"
        || request.client_id != CLIENT_ID
        || request.client_secret != CLIENT_SECRET
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "invalid_client"})),
        );
    }
    issuer.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let (access_token, expires_in) = match issuer.lifetime_s {
        Some(lifetime) => (expiring_broker_token(lifetime), lifetime),
        None => (issuer.access_token.clone(), 3600),
    };
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        })),
    )
}

/// An HS256 JWT for the broker's secret (scripts/services/pulsar.sh), subject
/// `outbox-relay`, expiring `lifetime` seconds from now.
fn expiring_broker_token(lifetime: u64) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let secret = std::fs::read(service_file(
        "OUTBOX_PULSAR_AUTH_DIR",
        "pulsar-auth",
        "secret.key",
    ))
    .unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + lifetime;
    let signed = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(format!(r#"{{"sub":"outbox-relay","exp":{exp}}}"#).as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

/// Serves the issuer on a free port; returns it.
async fn start_issuer() -> Issuer {
    start_issuer_with(None).await
}

/// [`start_issuer`], its tokens expiring after `lifetime_s` seconds when given.
async fn start_issuer_with(lifetime_s: Option<u64>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Under a path, as issuers often are (a root URL would be compared with a trailing
    // slash added by URL normalisation).
    let base = format!("http://{}/issuer", listener.local_addr().unwrap());
    let issuer = Issuer {
        base,
        access_token: broker_token(),
        lifetime_s,
        tokens_issued: Arc::default(),
    };
    let app = Router::new()
        .route("/issuer/.well-known/openid-configuration", get(discovery))
        .route("/issuer/token", post(token))
        // Discovery reads the signing keys too (none needed: access tokens are opaque
        // to the client).
        .route(
            "/issuer/jwks",
            get(|| async { Json(serde_json::json!({"keys": []})) }),
        )
        .fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                tracing::warn!(%method, %uri, "the test issuer has no such route");
                StatusCode::NOT_FOUND
            },
        )
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    issuer
}

/// A token the test broker accepts (made by scripts/services/pulsar.sh).
fn broker_token() -> String {
    let path = service_file("OUTBOX_PULSAR_AUTH_DIR", "pulsar-auth", "relay.token");
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

fn credentials_file(secret: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.json", unique("oauth2")));
    std::fs::write(
        &path,
        serde_json::json!({"client_id": CLIENT_ID, "client_secret": secret}).to_string(),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_producers_publish_with_an_oauth2_access_token() {
    init_tracing();
    let issuer = start_issuer().await;
    let credentials = credentials_file(CLIENT_SECRET);
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        let before = issuer.tokens_issued.load(Ordering::SeqCst);
        relay_delivers_in_order(|config| {
            config.pulsar.oauth2_issuer_url = Some(issuer.base.clone());
            config.pulsar.oauth2_credentials_file = Some(credentials.clone());
            config.pulsar.oauth2_audience = Some("urn:pulsar:test".into());
            config.pulsar.producer = producer;
        })
        .await;
        assert!(
            issuer.tokens_issued.load(Ordering::SeqCst) > before,
            "no token was fetched from the issuer ({producer:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_issuer_refuses_leave_the_relay_waiting_with_nothing_dead_lettered() {
    init_tracing();
    let issuer = start_issuer().await;
    let credentials = credentials_file("wrong-secret");
    let mut pulsar = outbox_adapters::PulsarConfig {
        url: pulsar_url(),
        oauth2_issuer_url: Some(issuer.base.clone()),
        oauth2_credentials_file: Some(credentials.clone()),
        ..Default::default()
    };
    pulsar.validate().expect("a valid configuration");
    let Err(error) = outbox_adapters::pulsar::connect(&pulsar).await else {
        panic!("the stock client connected with credentials the issuer refuses");
    };
    let message = error.to_string();
    assert!(
        !message.contains("wrong-secret"),
        "the secret leaked: {message}"
    );
    pulsar.producer = ProducerKind::Engine;
    relay_waits_without_dead_letters(|config| config.pulsar = pulsar).await;
    assert_eq!(issuer.tokens_issued.load(Ordering::SeqCst), 0);
}

/// When the broker connected the producer of `topic` (its admin API's `connectedSince`),
/// once there is one.
async fn producer_connected_since(topic: &str) -> String {
    let admin_url =
        std::env::var("PULSAR_ADMIN_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let path = format!("/admin/v2/persistent/public/default/{topic}/stats");
    for _ in 0..100 {
        let answer = outbox_adapters::pulsar::admin::request(
            "GET",
            &admin_url,
            &path,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let stats: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
        if let Some(since) = stats["publishers"][0]["connectedSince"].as_str() {
            return since.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no producer on {topic} in the broker's stats");
}

/// The test broker checks credentials every 2 s (`authenticationRefreshCheckSeconds`,
/// scripts/services/pulsar.sh) and challenges a client whose token has expired; both
/// producers answer with a token the issuer renews. Over three token lifetimes each
/// keeps its connection and every event arrives in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_access_tokens_are_renewed_on_the_brokers_challenge_without_reconnecting() {
    init_tracing();
    for producer in [ProducerKind::Engine, ProducerKind::Stock] {
        renewed_without_reconnecting(producer).await;
    }
}

async fn renewed_without_reconnecting(producer: ProducerKind) {
    let issuer = start_issuer_with(Some(4)).await;
    let credentials = credentials_file(CLIENT_SECRET);
    let db = TestDb::create().await;
    let topic = unique("reauth");
    let mut consumer = subscribe(&[&topic]).await;
    let mut conn = db.connect().await;
    let mut config = db.relay_config();
    config.pulsar.oauth2_issuer_url = Some(issuer.base.clone());
    config.pulsar.oauth2_credentials_file = Some(credentials);
    config.pulsar.oauth2_audience = Some("urn:pulsar:test".into());
    config.pulsar.producer = producer;
    let relay = outbox_engine::Relay::start(config).expect("relay start");

    let mut committed = HashSet::new();
    let mut connected_since = None;
    let started = std::time::Instant::now();
    let mut i = 0u32;
    while started.elapsed() < Duration::from_secs(14) {
        let event = NewEvent::new(
            format!("k{}", i % 3),
            topic.as_str(),
            "T",
            i.to_be_bytes().to_vec(),
        );
        committed.insert(enqueue(&mut conn, &event).await.unwrap());
        i += 1;
        if connected_since.is_none() {
            consumer
                .collect_until_seen(&committed, Duration::from_secs(30))
                .await;
            connected_since = Some(producer_connected_since(&topic).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    consumer.assert_exactly_committed_in_order(&committed);
    let issued = issuer.tokens_issued.load(Ordering::SeqCst);
    assert!(
        issued >= 3,
        "{producer:?}: only {issued} tokens were issued over 14 s of 4 s tokens: the broker never challenged (is authenticationRefreshCheckSeconds set?)"
    );
    assert_eq!(
        producer_connected_since(&topic).await,
        connected_since.unwrap(),
        "{producer:?}: the producer reconnected: the broker closed the connection instead of renewing its credentials"
    );
    relay.shutdown().await.expect("graceful shutdown");
    drop(conn);
    db.drop_now().await;
}
