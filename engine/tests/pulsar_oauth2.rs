//! Pulsar OAuth2 (client credentials) end to end: an OAuth2 issuer served by the test
//! (discovery document and token endpoint, with axum) hands out access tokens that the
//! test broker accepts (it checks tokens, see `scripts/services/pulsar.sh`); both
//! producers fetch one with the client's credentials and publish. Credentials the issuer
//! refuses leave the relay waiting, with nothing dead-lettered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use outbox_adapters::pulsar::ProducerKind;
use support::*;

const CLIENT_ID: &str = "outbox-relay";
const CLIENT_SECRET: &str = "s3cret-client";

#[derive(Clone)]
struct Issuer {
    base: String,
    access_token: String,
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
    (
        StatusCode::OK,
        Json(serde_json::json!({
            "access_token": issuer.access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
        })),
    )
}

/// Serves the issuer on a free port; returns it.
async fn start_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Under a path, as issuers often are (a root URL would be compared with a trailing
    // slash added by URL normalisation).
    let base = format!("http://{}/issuer", listener.local_addr().unwrap());
    let issuer = Issuer {
        base,
        access_token: broker_token(),
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
