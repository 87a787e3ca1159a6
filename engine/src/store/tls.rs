//! TLS to PostgreSQL, configured the way libpq is: in the database URL.
//!
//! `sslmode` = `disable` | `allow` | `prefer` | `require` | `verify-ca` | `verify-full`,
//! `sslrootcert` (CA file), `sslcert` / `sslkey` (client certificate, mutual TLS).
//! Semantics follow libpq: `require` encrypts without verifying the server, unless a
//! root certificate is given (then it verifies the chain, like `verify-ca`);
//! `verify-full` also checks the server's name against the host. A URL without any of
//! these parameters connects in plain text, as before.
//!
//! Contract: [`Target::parse`] refuses, naming the parameter or the path, a mode it does
//! not know and a certificate or key file that is missing or unreadable, so that a
//! relay refuses to start instead of retrying a connection that can never work. The
//! URL handed to the driver never carries the file parameters (it does not know them).

use std::path::Path;

use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

use super::StoreError;

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    /// The URL for the driver: `sslmode` mapped to what it knows, file parameters removed.
    url: String,
    /// None: plain text (no TLS parameter in the URL).
    tls: Option<MakeTlsConnector>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &super::redact_url(&self.url))
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

const FILE_PARAMETERS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

fn refused(reason: String) -> StoreError {
    StoreError::Refused(reason)
}

fn readable(parameter: &str, path: &str) -> Result<(), StoreError> {
    std::fs::File::open(Path::new(path)).map(drop).map_err(|e| {
        refused(format!(
            "{parameter}={path} in the database URL cannot be read ({e}): give the path of a readable PEM file"
        ))
    })
}

impl Target {
    /// Reads the TLS parameters of a database URL (see the module documentation).
    /// Refuses ([`StoreError::Refused`]), naming the parameter or path, an unknown
    /// `sslmode`, a certificate or key file that cannot be read or is not PEM, and
    /// `sslcert` without `sslkey` or the reverse. A URL that does not parse is passed on
    /// for the driver to report.
    pub fn parse(url: &str) -> Result<Target, StoreError> {
        let Ok(mut parsed) = url::Url::parse(url) else {
            // Let the driver say what is wrong with it.
            return Ok(Target {
                url: url.to_owned(),
                tls: None,
            });
        };
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mode = get("sslmode");
        let root = get("sslrootcert");
        let cert = get("sslcert");
        let key = get("sslkey");
        if mode.is_none() && root.is_none() && cert.is_none() && key.is_none() {
            return Ok(Target {
                url: url.to_owned(),
                tls: None,
            });
        }
        let mode = mode.unwrap_or_else(|| "prefer".to_owned());
        let (driver_mode, verify_chain, verify_name) = match mode.as_str() {
            "disable" => ("disable", false, false),
            "allow" | "prefer" => ("prefer", root.is_some(), false),
            "require" => ("require", root.is_some(), false),
            "verify-ca" => ("require", true, false),
            "verify-full" => ("require", true, true),
            other => {
                return Err(refused(format!(
                    "sslmode={other} in the database URL is not a mode: use disable, allow, prefer, require, verify-ca or verify-full"
                )))
            }
        };
        for (name, value) in [("sslrootcert", &root), ("sslcert", &cert), ("sslkey", &key)] {
            if let Some(path) = value {
                readable(name, path)?;
            }
        }
        if cert.is_some() != key.is_some() {
            return Err(refused(
                "a client certificate needs both sslcert and sslkey in the database URL".into(),
            ));
        }
        let tls_error = |what: &str, e: openssl::error::ErrorStack| refused(format!("{what}: {e}"));
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| tls_error("cannot set up TLS", e))?;
        if verify_chain {
            match &root {
                Some(path) => builder
                    .set_ca_file(path)
                    .map_err(|e| tls_error(&format!("sslrootcert={path} is not a PEM CA"), e))?,
                None => builder
                    .set_default_verify_paths()
                    .map_err(|e| tls_error("cannot load the system's CA certificates", e))?,
            }
            builder.set_verify(SslVerifyMode::PEER);
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        if let (Some(cert), Some(key)) = (&cert, &key) {
            builder
                .set_certificate_chain_file(cert)
                .map_err(|e| tls_error(&format!("sslcert={cert} is not a PEM certificate"), e))?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| tls_error(&format!("sslkey={key} is not a PEM private key"), e))?;
        }
        let mut connector = MakeTlsConnector::new(builder.build());
        connector.set_callback(move |config, _domain| {
            config.set_verify_hostname(verify_name);
            Ok(())
        });
        let kept: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| !FILE_PARAMETERS.contains(&k.as_str()) && k != "sslmode")
            .chain([("sslmode".to_owned(), driver_mode.to_owned())])
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(kept);
        Ok(Target {
            url: parsed.to_string(),
            tls: Some(connector),
        })
    }

    /// Opens one diesel-async connection.
    pub async fn connect(&self) -> Result<AsyncPgConnection, ConnectionError> {
        use diesel_async::AsyncConnection;
        match &self.tls {
            None => AsyncPgConnection::establish(&self.url).await,
            Some(tls) => {
                let (client, connection) = tokio_postgres::connect(&self.url, tls.clone())
                    .await
                    .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
        }
    }

    /// Opens one raw driver connection (the start-up probe reads SQLSTATEs from it).
    pub async fn probe(&self) -> Result<(), tokio_postgres::Error> {
        match &self.tls {
            None => {
                let (client, connection) =
                    tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
                drop(client);
                let _ = connection.await;
            }
            Some(tls) => {
                let (client, connection) = tokio_postgres::connect(&self.url, tls.clone()).await?;
                drop(client);
                let _ = connection.await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_are_left_alone() {
        let target = Target::parse("postgres://u:p@h:5432/db").unwrap();
        assert!(target.tls.is_none());
        assert_eq!(target.url, "postgres://u:p@h:5432/db");
    }

    #[test]
    fn verify_modes_map_to_require_and_files_are_removed() {
        let target = Target::parse("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert!(target.tls.is_some());
        assert!(target.url.ends_with("sslmode=require"), "{}", target.url);
    }

    #[test]
    fn a_missing_file_is_refused_naming_it() {
        let error =
            Target::parse("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/no/such/ca.pem")
                .unwrap_err()
                .to_string();
        assert!(error.contains("/no/such/ca.pem"), "{error}");
        let error = Target::parse("postgres://u@h/db?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslmode=sometimes"), "{error}");
    }
}
