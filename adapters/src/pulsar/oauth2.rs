//! Pulsar OAuth2 authentication (client credentials), for both producers.
//!
//! The flow is the `pulsar` crate's own (`OAuth2Authentication`: discovery of the
//! issuer's token endpoint, the client-credentials grant, the token cached and fetched
//! again at 90% of its lifetime); this module only checks the configuration and builds
//! the providers: one for the stock client (which drives it itself), and one per
//! publisher, shared by every connection its engine producers open.
//!
//! Contract:
//! - [`check`] refuses, naming the key, an issuer without credentials (or the reverse),
//!   OAuth2 together with a token, and a credentials file that cannot be read or lacks
//!   `client_id` / `client_secret`; nothing secret goes into the message;
//! - [`provider`] returns `None` without OAuth2, else a provider that fetches a token on
//!   first use: an issuer that cannot be reached or refuses the client fails that
//!   connection (retried like an unreachable broker), never an event.

use std::sync::Arc;

use pulsar::authentication::oauth2::{OAuth2Authentication, OAuth2Params};
use pulsar::authentication::Authentication;

use super::PulsarConfig;

/// One OAuth2 provider, shared by every engine-producer connection of a publisher.
pub type SharedProvider = Arc<tokio::sync::Mutex<Box<dyn Authentication>>>;

#[derive(serde::Deserialize)]
struct Credentials {
    client_id: String,
    client_secret: String,
}

/// Checks the OAuth2 keys of `config` (see the module contract).
pub fn check(config: &PulsarConfig) -> Result<(), String> {
    match (&config.oauth2_issuer_url, &config.oauth2_credentials_file) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(
            "pulsar.oauth2_issuer_url is set without pulsar.oauth2_credentials_file: give the client's credentials file".into(),
        ),
        (None, Some(_)) => Err(
            "pulsar.oauth2_credentials_file is set without pulsar.oauth2_issuer_url: give the issuer's URL".into(),
        ),
        (Some(issuer), Some(path)) => {
            if config.auth_token.is_some() || config.auth_token_file.is_some() {
                return Err(
                    "pulsar OAuth2 and a token (PULSAR_AUTH_TOKEN / pulsar.auth_token_file) are both set: keep one".into(),
                );
            }
            let parsed = url::Url::parse(issuer).map_err(|e| {
                format!("pulsar.oauth2_issuer_url {issuer:?} is not a URL ({e})")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "pulsar.oauth2_issuer_url {issuer:?} is not an http(s) URL"
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("pulsar.oauth2_credentials_file {path:?} cannot be read ({e})")
            })?;
            let credentials: Credentials = serde_json::from_str(&text).map_err(|_| {
                format!("pulsar.oauth2_credentials_file {path:?} is not a JSON object with client_id and client_secret")
            })?;
            if credentials.client_id.is_empty() || credentials.client_secret.is_empty() {
                return Err(format!(
                    "pulsar.oauth2_credentials_file {path:?} has an empty client_id or client_secret"
                ));
            }
            Ok(())
        }
    }
}

/// The `pulsar` crate's OAuth2 parameters for `config`; `None` without OAuth2.
fn params(config: &PulsarConfig) -> Result<Option<OAuth2Params>, String> {
    let (Some(issuer), Some(path)) = (&config.oauth2_issuer_url, &config.oauth2_credentials_file)
    else {
        return Ok(None);
    };
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| format!("pulsar.oauth2_credentials_file {path:?} cannot be read ({e})"))?;
    let credentials_url = url::Url::from_file_path(&absolute)
        .map_err(|_| format!("pulsar.oauth2_credentials_file {path:?} is not a file path"))?;
    Ok(Some(OAuth2Params {
        issuer_url: issuer.clone(),
        credentials_url: credentials_url.to_string(),
        audience: config.oauth2_audience.clone(),
        scope: config.oauth2_scope.clone(),
    }))
}

/// A provider for the stock client, which initialises it itself; `None` without OAuth2.
pub fn stock_provider(config: &PulsarConfig) -> Result<Option<Box<dyn Authentication>>, String> {
    Ok(params(config)?.map(OAuth2Authentication::client_credentials))
}

/// The OAuth2 provider `config` asks for, initialised (credentials read, token endpoint
/// discovered); `None` without OAuth2.
pub async fn provider(config: &PulsarConfig) -> Result<Option<SharedProvider>, String> {
    let Some(params) = params(config)? else {
        return Ok(None);
    };
    let issuer = params.issuer_url.clone();
    let mut provider = OAuth2Authentication::client_credentials(params);
    provider
        .initialize()
        .await
        .map_err(|e| format!("OAuth2 with issuer {issuer} failed: {e}"))?;
    Ok(Some(Arc::new(tokio::sync::Mutex::new(provider))))
}

/// The current access token of `provider` (fetched again when it nears expiry).
pub async fn token(provider: &SharedProvider) -> Result<Vec<u8>, String> {
    provider
        .lock()
        .await
        .auth_data()
        .await
        .map_err(|e| format!("cannot get an OAuth2 access token: {e}"))
}
