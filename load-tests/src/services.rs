//! The services a run needs, checked before anything is written, and the throwaway
//! database each run (or sweep point) works in.
//!
//! Contract:
//! - [`Services::check`] tries PostgreSQL, the Pulsar admin API and the Pulsar binary
//!   protocol, each with a short timeout, and fails with a [`ServiceError`] naming the
//!   service, the URL (password hidden) and what to do;
//! - admin REST calls (health, version, deleting topics) go through
//!   [`outbox_adapters::pulsar::admin::request`], each bounded by a timeout;
//! - [`ThrowawayDb::create`] makes a fresh database next to `DATABASE_URL` and migrates
//!   it; [`ThrowawayDb::drop_now`] drops it with `WITH (FORCE)`. Callers drop it on
//!   every path, including failures.

use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use outbox_adapters::pulsar::admin;
use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};

const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{service} is not reachable at {url} ({reason}): start it with `make services` or set {env}")]
    Unreachable {
        service: &'static str,
        url: String,
        reason: String,
        env: &'static str,
    },
    #[error("PostgreSQL at {url}: {action} failed: {reason}")]
    Database {
        url: String,
        action: String,
        reason: String,
    },
}

/// Where the services are.
#[derive(Debug, Clone)]
pub struct Services {
    pub database_url: String,
    pub pulsar_url: String,
    pub admin_url: String,
}

pub fn redact(url: &str) -> String {
    outbox_engine::store::redact_url(url)
}

pub async fn connect(url: &str) -> Result<AsyncPgConnection, ServiceError> {
    match tokio::time::timeout(CHECK_TIMEOUT, AsyncPgConnection::establish(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ServiceError::Unreachable {
            service: "PostgreSQL",
            url: redact(url),
            reason: e.to_string().trim().to_owned(),
            env: "DATABASE_URL",
        }),
        Err(_) => Err(ServiceError::Unreachable {
            service: "PostgreSQL",
            url: redact(url),
            reason: format!("no answer within {CHECK_TIMEOUT:?}"),
            env: "DATABASE_URL",
        }),
    }
}

#[derive(diesel::QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    value: String,
}

impl Services {
    /// Checks all three endpoints; returns (PostgreSQL version, Pulsar version).
    pub async fn check(&self) -> Result<(String, String), ServiceError> {
        let mut conn = connect(&self.database_url).await?;
        let pg_version = diesel::sql_query("SELECT current_setting('server_version') AS value")
            .get_result::<TextRow>(&mut conn)
            .await
            .map(|r| r.value)
            .unwrap_or_else(|_| "unknown".into());
        let admin_down = |reason: String| ServiceError::Unreachable {
            service: "Pulsar (admin API)",
            url: self.admin_url.clone(),
            reason,
            env: "PULSAR_ADMIN_URL",
        };
        match admin::request(
            "GET",
            &self.admin_url,
            "/admin/v2/brokers/health",
            CHECK_TIMEOUT,
        )
        .await
        {
            Ok(r) if r.status == 200 && r.body.trim() == "ok" => {}
            Ok(r) => {
                return Err(admin_down(format!(
                    "health check answered {} {:?}; it may still be starting",
                    r.status,
                    r.body.trim()
                )))
            }
            Err(e) => return Err(admin_down(e.to_string())),
        }
        let pulsar_version = self.pulsar_version().await;
        self.pulsar_client().await?;
        Ok((pg_version, pulsar_version))
    }

    pub async fn pulsar_version(&self) -> String {
        match admin::request(
            "GET",
            &self.admin_url,
            "/admin/v2/brokers/version",
            CHECK_TIMEOUT,
        )
        .await
        {
            Ok(r) if r.status == 200 => r.body.trim().trim_matches('"').to_owned(),
            _ => "unknown".into(),
        }
    }

    /// A client for consumers and baselines.
    pub async fn pulsar_client(&self) -> Result<Pulsar<TokioExecutor>, ServiceError> {
        let config = outbox_adapters::PulsarConfig {
            url: self.pulsar_url.clone(),
            ..Default::default()
        };
        let unreachable = |reason: String| ServiceError::Unreachable {
            service: "Pulsar",
            url: self.pulsar_url.clone(),
            reason,
            env: "PULSAR_URL",
        };
        match tokio::time::timeout(CHECK_TIMEOUT * 2, outbox_adapters::pulsar::connect(&config))
            .await
        {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {:?}",
                CHECK_TIMEOUT * 2
            ))),
        }
    }

    /// Deletes a topic of the run (best effort: the caller only warns).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), String> {
        let path = format!("/admin/v2/persistent/public/default/{topic}?force=true");
        match admin::request("DELETE", &self.admin_url, &path, Duration::from_secs(30)).await {
            Ok(r) if r.status < 300 || r.status == 404 => Ok(()),
            Ok(r) => Err(format!("{} {}", r.status, r.body.trim())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A database created for one run and dropped after it.
#[derive(Debug)]
pub struct ThrowawayDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

fn with_database(url: &str, database: &str) -> Result<String, ServiceError> {
    let mut parsed = url::Url::parse(url).map_err(|e| ServiceError::Database {
        url: redact(url),
        action: "parsing DATABASE_URL".into(),
        reason: e.to_string(),
    })?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

impl ThrowawayDb {
    /// Creates and migrates `outbox_load_<run id>`.
    pub async fn create(admin_url: &str, run_id: &str) -> Result<ThrowawayDb, ServiceError> {
        let name = format!("outbox_load_{run_id}");
        let mut admin = connect(admin_url).await?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| ServiceError::Database {
                url: redact(admin_url),
                action: format!("CREATE DATABASE {name} (the role needs CREATEDB)"),
                reason: e.to_string(),
            })?;
        let db = ThrowawayDb {
            url: with_database(admin_url, &name)?,
            name,
            admin_url: admin_url.to_owned(),
        };
        if let Err(e) = outbox_engine::migrate(&db.url).await {
            db.drop_now().await;
            return Err(ServiceError::Database {
                url: redact(admin_url),
                action: "migrating the throwaway database".into(),
                reason: e.to_string(),
            });
        }
        Ok(db)
    }

    pub async fn connect(&self) -> Result<AsyncPgConnection, ServiceError> {
        connect(&self.url).await
    }

    pub async fn drop_now(&self) {
        match connect(&self.admin_url).await {
            Ok(mut admin) => {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = diesel::sql_query(sql).execute(&mut admin).await {
                    eprintln!("warning: could not drop database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("warning: could not drop database {}: {e}", self.name),
        }
    }
}

/// A short unique id for the run: process id and time.
pub fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}_{}", std::process::id(), now.as_millis() % 1_000_000_000)
}
