//! TLS to PostgreSQL against the real server: `scripts/services/pg.sh` sets the test
//! cluster up with its own CA, a role that may connect only over TLS (`outbox_tls`) and
//! one that must show a client certificate (`outbox_cert`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use outbox_engine::store::{self, StoreError};
use outbox_engine::{enqueue, NewEvent, Relay};
use support::*;

fn file(name: &str) -> String {
    service_file("OUTBOX_PG_TLS_DIR", "pg-tls", name)
        .to_str()
        .unwrap()
        .to_owned()
}

/// The test database's URL as `user` (password `outbox`, or none) with `query`.
fn url_as(db: &TestDb, user: &str, password: Option<&str>, query: &str) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(user).unwrap();
    url.set_password(password).unwrap();
    url.set_query(Some(query));
    url.to_string()
}

#[derive(diesel::QueryableByName)]
struct Session {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
    #[diesel(sql_type = diesel::sql_types::Text)]
    who: String,
}

async fn session(url: &str) -> Result<Session, StoreError> {
    let mut conn = store::connect(url).await?;
    Ok(diesel::sql_query(
        "SELECT ssl, current_user::text AS who FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .get_result(&mut conn)
    .await
    .unwrap())
}

fn run_relay(url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
        .args(["--database-url", url, "--pulsar-url", &pulsar_url(), "run"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("cannot run outbox-relay");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_tls_only_postgres_delivers_in_order_and_plain_text_is_refused() {
    init_tracing();
    let db = TestDb::create().await;
    let verified = url_as(
        &db,
        "outbox_tls",
        Some("outbox"),
        &format!("sslmode=verify-full&sslrootcert={}", file("ca.crt")),
    );
    let tls = session(&verified).await.expect("TLS connection");
    assert!(tls.ssl && tls.who == "outbox_tls");
    store::migrate(&verified).await.expect("migrate over TLS");

    // The relay over TLS, end to end.
    let topic = unique("tls");
    let mut subscription = subscribe(&[&topic]).await;
    let mut conn = store::connect(&verified).await.unwrap();
    let mut committed = HashSet::new();
    for i in 0..30 {
        committed.insert(
            enqueue(
                &mut conn,
                &NewEvent::new(format!("k{}", i % 3), topic.as_str(), "T", vec![i as u8]),
            )
            .await
            .unwrap(),
        );
    }
    let mut config = db.relay_config();
    config.database_url = verified.clone();
    let relay = Relay::start(config).expect("relay start");
    subscription
        .collect_until_seen(&committed, Duration::from_secs(60))
        .await;
    subscription.assert_exactly_committed_in_order(&committed);
    relay.shutdown().await.unwrap();

    // Plain text is refused by the server, permanently (no endless retry).
    let plain = url_as(&db, "outbox_tls", Some("outbox"), "sslmode=disable");
    match store::probe(&plain).await {
        Err(StoreError::Refused(reason)) => assert!(reason.contains("28000"), "{reason}"),
        other => panic!("plain text to a TLS-only role must be refused: {other:?}"),
    }
    // `require` encrypts without verifying the server.
    let required = url_as(&db, "outbox_tls", Some("outbox"), "sslmode=require");
    assert!(session(&required).await.unwrap().ssl);
    db.drop_now().await;
}

#[tokio::test]
async fn certificate_problems_are_refused_at_start_naming_them() {
    let db = TestDb::create().await;
    // A CA file that is not there.
    let missing = url_as(
        &db,
        "outbox_tls",
        Some("outbox"),
        "sslmode=verify-full&sslrootcert=/no/such/ca.crt",
    );
    let (ok, stderr) = run_relay(&missing);
    assert!(!ok && stderr.contains("/no/such/ca.crt"), "{stderr}");
    // A CA that did not sign the server's certificate.
    let wrong = url_as(
        &db,
        "outbox_tls",
        Some("outbox"),
        &format!("sslmode=verify-full&sslrootcert={}", file("client.crt")),
    );
    let (ok, stderr) = run_relay(&wrong);
    assert!(!ok && stderr.contains("TLS handshake"), "{stderr}");
    assert!(!stderr.contains(":outbox@"), "password leaked: {stderr}");
    // An unknown mode.
    let (ok, stderr) = run_relay(&url_as(&db, "outbox_tls", None, "sslmode=sometimes"));
    assert!(!ok && stderr.contains("sslmode=sometimes"), "{stderr}");
    db.drop_now().await;
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let db = TestDb::create().await;
    let with_cert = url_as(
        &db,
        "outbox_cert",
        None,
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            file("ca.crt"),
            file("client.crt"),
            file("client.key")
        ),
    );
    let session = session(&with_cert)
        .await
        .expect("client certificate accepted");
    assert!(session.ssl && session.who == "outbox_cert");
    let without = url_as(
        &db,
        "outbox_cert",
        None,
        &format!("sslmode=verify-full&sslrootcert={}", file("ca.crt")),
    );
    match store::probe(&without).await {
        Err(StoreError::Refused(_)) => {}
        other => panic!("no client certificate must be refused: {other:?}"),
    }
    db.drop_now().await;
}
