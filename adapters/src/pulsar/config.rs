//! Configuration of the Pulsar publisher. Every field has a named default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const DEFAULT_PULSAR_URL: &str = "pulsar://127.0.0.1:6650";
pub const DEFAULT_OPERATION_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_BATCHING: bool = true;
pub const DEFAULT_BATCH_MAX_MESSAGES: u32 = 1_000;
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1024 * 1024;
pub const DEFAULT_BATCH_MAX_DELAY_MS: u64 = 10;
/// The broker's default `maxMessageSize` (5 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 5 * 1024 * 1024;

/// How events are sent to Pulsar. Start from [`PulsarConfig::default`] and set what
/// differs; in the relay it is the engine's `RelayConfig::pulsar` (`[pulsar]` in the
/// config file).
///
/// ```
/// use outbox_adapters::pulsar::{PulsarConfig, Secret};
///
/// let config = PulsarConfig {
///     url: "pulsar://broker.internal:6650".into(),
///     // Key_Shared consumers: one key per broker batch (needs the default engine producer).
///     batch_by_key: true,
///     auth_token: Some(Secret::new("eyJhbGciOiJIUzI1NiJ9.e30.sig")),
///     ..PulsarConfig::default()
/// };
/// assert_eq!(config.validate(), Ok(()));
/// assert!(!format!("{config:?}").contains("eyJ"), "the token is never printed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PulsarConfig {
    /// Broker service URL, `pulsar://host:6650` (env `PULSAR_URL`).
    pub url: String,
    /// How long a message may wait for its acknowledgement, resends included, before it
    /// counts as failed and is published again from the first unacknowledged event.
    pub operation_timeout_ms: u64,
    /// Group messages into broker batches. The relay flushes at the end of every read
    /// batch, so this adds no latency; it cuts the broker's per-message cost.
    pub batching: bool,
    /// Most messages in one broker batch.
    pub batch_max_messages: u32,
    /// Most bytes in one broker batch.
    pub batch_max_bytes: usize,
    /// Kept for compatibility: the relay ends every broker batch itself (one per chunk of
    /// a read batch), so no message waits for a batch timer.
    pub batch_max_delay_ms: u64,
    /// The broker's `maxMessageSize`: an event larger than this is parked at once (the
    /// broker would drop the connection on it), and a broker batch never exceeds it.
    pub max_message_bytes: usize,
    /// `none`, `lz4` or `zstd` (the crate's Snappy is unreadable by Java consumers).
    pub compression: Compression,
    /// `stock`: the `pulsar` crate's producer (at-least-once). `engine`: the engine's
    /// own producer, with a stable name per range and sequence ids from the outbox, so
    /// that with deduplication enabled on the namespace a crash, restart or takeover
    /// publishes nothing twice (docs/guarantees.md). Without deduplication on the broker
    /// both are at-least-once. `engine` sends uncompressed.
    pub producer: ProducerKind,
    /// End a broker batch wherever the key changes (engine producer only), so that every
    /// batch carries its key and `Key_Shared` subscriptions route each key to one
    /// consumer; without it a batch of mixed keys goes to one consumer whole, and a key
    /// can move between consumers. Costs batching: events of interleaved keys go one
    /// batch each, and one batch is in flight at a time.
    pub batch_by_key: bool,
    /// The broker's admin REST URL, `http://host:8080` (env `PULSAR_ADMIN_URL`). Used
    /// only to learn whether deduplication is in force on each topic the relay publishes
    /// to (reported per range in `status`); without it that state is "unknown".
    pub admin_url: Option<String>,
    /// The operator expects effectively-once: when the broker reports deduplication off
    /// for a topic (or it cannot be checked), the relay warns, at the topic's first
    /// publish and in `status`, and goes on at-least-once.
    pub require_deduplication: bool,
    /// A file holding the Pulsar authentication token (JWT), read at start; an empty or
    /// unreadable file is refused naming the path. The environment variable
    /// `PULSAR_AUTH_TOKEN` (read by the binary into [`Self::auth_token`]) wins over it.
    pub auth_token_file: Option<String>,
    /// OAuth2 (client credentials) instead of a static token: the issuer's URL, whose
    /// `/.well-known/openid-configuration` names the token endpoint. Needs
    /// [`Self::oauth2_credentials_file`]; not together with a token.
    pub oauth2_issuer_url: Option<String>,
    /// The OAuth2 client's credentials: a JSON file `{"client_id": ..., "client_secret":
    /// ...}` (the format of Pulsar's other clients), read at start; never printed.
    pub oauth2_credentials_file: Option<String>,
    /// The OAuth2 audience to ask the token for (the broker's, e.g. `urn:pulsar:...`).
    pub oauth2_audience: Option<String>,
    /// The OAuth2 scope to ask for, if the issuer wants one.
    pub oauth2_scope: Option<String>,
    /// For `pulsar+ssl://` URLs: a PEM file of the certificate authorities to trust for
    /// the broker's certificate (a bundle may hold several); unset: the system's roots.
    /// An unreadable or empty file is refused at start, naming the path.
    pub tls_trust_certs_file: Option<String>,
    /// For `pulsar+ssl://` URLs: check that the broker's certificate names the host of
    /// `url`. On by default; turn it off only for a broker whose certificate cannot name
    /// the address clients use (the connection is then open to impersonation).
    pub tls_hostname_verification: bool,
    /// For `pulsar+ssl://` URLs: a PEM file of the client certificate (chain) to present
    /// to brokers that ask for one (mutual TLS). Needs [`Self::tls_key_file`]. Without a
    /// token or OAuth2, the relay also authenticates with it (Pulsar's `tls` method: the
    /// broker's `AuthenticationProviderTls` takes the role from the certificate).
    pub tls_cert_file: Option<String>,
    /// The PEM PKCS#8 private key of [`Self::tls_cert_file`]; read at start, never printed.
    pub tls_key_file: Option<String>,
    /// The token itself, for embedding services that hold it already; never written to a
    /// config file, never printed (its `Debug` is `***`).
    #[serde(skip)]
    pub auth_token: Option<Secret>,
}

/// A secret string: compared and cloned like one, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, such as an authentication token.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Which producer publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerKind {
    /// The `pulsar` crate's producer: at-least-once; honours [`PulsarConfig::compression`].
    Stock,
    /// The engine's own producer (the default): stable names and sequence ids, so that
    /// with broker deduplication on nothing is published twice. Sends uncompressed.
    #[default]
    Engine,
}

/// Payload compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed (the default; the engine producer always sends uncompressed).
    None,
    /// LZ4: fast, moderate ratio.
    Lz4,
    /// Zstandard: better ratio, more CPU.
    Zstd,
}

impl Default for PulsarConfig {
    fn default() -> Self {
        PulsarConfig {
            url: DEFAULT_PULSAR_URL.to_owned(),
            operation_timeout_ms: DEFAULT_OPERATION_TIMEOUT_MS,
            batching: DEFAULT_BATCHING,
            batch_max_messages: DEFAULT_BATCH_MAX_MESSAGES,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_max_delay_ms: DEFAULT_BATCH_MAX_DELAY_MS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            producer: ProducerKind::default(),
            compression: Compression::None,
            batch_by_key: false,
            admin_url: None,
            require_deduplication: false,
            auth_token_file: None,
            tls_trust_certs_file: None,
            tls_hostname_verification: true,
            tls_cert_file: None,
            tls_key_file: None,
            oauth2_issuer_url: None,
            oauth2_credentials_file: None,
            oauth2_audience: None,
            oauth2_scope: None,
            auth_token: None,
        }
    }
}

impl PulsarConfig {
    /// Checks every field; the error names the field and what to do.
    pub fn validate(&self) -> Result<(), String> {
        let scheme_ok = self.url.starts_with("pulsar://") || self.url.starts_with("pulsar+ssl://");
        let host = self
            .url
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or("");
        if !scheme_ok || host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!(
                "pulsar.url {:?} is not a Pulsar service URL: use pulsar://host:6650",
                self.url
            ));
        }
        if !(100..=600_000).contains(&self.operation_timeout_ms) {
            return Err(format!(
                "pulsar.operation_timeout_ms = {} is out of range: use 100 to 600000",
                self.operation_timeout_ms
            ));
        }
        if !(1..=100_000).contains(&self.batch_max_messages) {
            return Err(format!(
                "pulsar.batch_max_messages = {} is out of range: use 1 to 100000",
                self.batch_max_messages
            ));
        }
        if !(1024..=5 * 1024 * 1024).contains(&self.batch_max_bytes) {
            return Err(format!(
                "pulsar.batch_max_bytes = {} is out of range: use 1024 to 5242880",
                self.batch_max_bytes
            ));
        }
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(format!(
                "pulsar.max_message_bytes = {} is out of range: use 65536 to 1073741824 (the broker's maxMessageSize)",
                self.max_message_bytes
            ));
        }
        if self.batch_by_key && self.producer != ProducerKind::Engine {
            return Err(
                "pulsar.batch_by_key needs pulsar.producer = \"engine\" (the stock producer batches keys together)"
                    .into(),
            );
        }
        if let Some(admin) = &self.admin_url {
            if !admin.starts_with("http://") {
                return Err(format!(
                    "pulsar.admin_url = {admin:?} is not supported: use the broker's plain http:// admin URL (webServicePort, 8080 by default)"
                ));
            }
        }
        self.token()?;
        super::oauth2::check(self)?;
        if let Some(path) = &self.tls_trust_certs_file {
            if !self.url.starts_with("pulsar+ssl://") {
                return Err(format!(
                    "pulsar.tls_trust_certs_file is set but pulsar.url {:?} is not TLS: use pulsar+ssl://host:6651",
                    self.url
                ));
            }
            super::engine::tls::read_trust_certs(path)?;
        }
        if super::engine::tls::read_client_identity(self)?.is_some()
            && !self.url.starts_with("pulsar+ssl://")
        {
            return Err(format!(
                "pulsar.tls_cert_file is set but pulsar.url {:?} is not TLS: use pulsar+ssl://host:6651",
                self.url
            ));
        }
        if !(1..=10_000).contains(&self.batch_max_delay_ms) {
            return Err(format!(
                "pulsar.batch_max_delay_ms = {} is out of range: use 1 to 10000",
                self.batch_max_delay_ms
            ));
        }
        Ok(())
    }

    /// The authentication token: [`Self::auth_token`], else read from
    /// [`Self::auth_token_file`]; `None` without either. An empty or unreadable file is an
    /// error naming the path.
    pub fn token(&self) -> Result<Option<Secret>, String> {
        if let Some(token) = &self.auth_token {
            if token.expose().trim().is_empty() {
                return Err("the Pulsar auth token (PULSAR_AUTH_TOKEN) is empty".into());
            }
            return Ok(Some(token.clone()));
        }
        let Some(path) = &self.auth_token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("pulsar.auth_token_file {path:?} cannot be read ({e}): give the path of a file holding the token")
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "pulsar.auth_token_file {path:?} is empty: it must hold the token"
            ));
        }
        Ok(Some(Secret::new(token)))
    }

    /// [`Self::operation_timeout_ms`] as a [`Duration`].
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_never_printed_and_an_empty_file_is_refused() {
        let config = PulsarConfig {
            auth_token: Some(Secret::new("eyJhbGciOiJIUzI1NiJ9.secret")),
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("secret"));
        let path = std::env::temp_dir().join(format!("empty-token-{}", std::process::id()));
        std::fs::write(&path, "\n").unwrap();
        let config = PulsarConfig {
            auth_token_file: Some(path.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let error = config.validate().unwrap_err();
        assert!(
            error.contains("is empty") && error.contains("empty-token"),
            "{error}"
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn defaults_are_valid() {
        PulsarConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad_url = PulsarConfig {
            url: "http://x".into(),
            ..Default::default()
        };
        assert!(bad_url.validate().unwrap_err().contains("pulsar.url"));
        let zero_batch = PulsarConfig {
            batch_max_messages: 0,
            ..Default::default()
        };
        assert!(zero_batch
            .validate()
            .unwrap_err()
            .contains("pulsar.batch_max_messages"));
    }
}
