//! A minimal connection to one Pulsar broker, over the `pulsar` crate's public protocol
//! types (`pulsar::proto`) and frame codec (`pulsar::message::Codec`).
//!
//! It exists because the crate's producer cannot set sequence ids (see
//! ../shared/design/pulsar.md): the engine's own producer ([`super::EngineProducer`])
//! needs them for broker-side deduplication.
//!
//! Contract:
//! - [`Wire::open`] connects (over TLS for `pulsar+ssl://`, see [`super::tls`]),
//!   performs the protocol handshake and starts one reader task
//!   that answers the broker's pings and authentication challenges (with fresh
//!   credentials: an OAuth2 token outlives no connection) and routes each response to
//!   its waiter (by request id, or by producer and sequence id for send receipts);
//! - when the connection fails or the broker closes a producer, every waiter gets an
//!   error and the wire reports itself broken ([`Wire::is_broken`]): the caller opens a
//!   new one. Nothing is ever resent by this layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use pulsar::message::{Codec, Message as Frame};
use pulsar::proto::{self, base_command::Type as CommandType};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::codec::Framed;

/// Protocol version spoken: high enough for `highest_sequence_id` on batches.
const PROTOCOL_VERSION: i32 = 19;

/// What went wrong on the wire.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WireError {
    /// The broker could not be reached, the TLS handshake failed (the reason says what to
    /// check), or the URL is not `pulsar://` or `pulsar+ssl://`.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// `host:port`, or the URL as given when it is unusable.
        address: String,
        /// The operating system's or the parser's error.
        reason: String,
    },
    /// The connection closed or failed, or the wire was broken off: open a new one.
    #[error("connection to the broker lost")]
    Lost,
    /// No answer within the timeout carried.
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    /// The broker answered with an error: its code (`proto::ServerError`) and message.
    #[error("broker error {code}: {message}")]
    Server {
        /// The `proto::ServerError` code.
        code: i32,
        /// The broker's message.
        message: String,
    },
    /// The broker's answer was not what the protocol calls for (or the lookup asked for
    /// something unsupported, such as a proxy).
    #[error("unexpected answer from the broker: {0}")]
    Protocol(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Waiter {
    Request(u64),
    Receipt { producer_id: u64, sequence_id: u64 },
}

/// A plain or TLS connection.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Sink = SplitSink<Framed<Box<dyn Stream>, Codec>, Frame>;

/// How to reach the broker: the authentication token to present, and the TLS
/// connector for `pulsar+ssl://` URLs.
#[derive(Clone, Default)]
pub struct Dial {
    /// The Pulsar authentication token (JWT) presented at connect; `None`: none.
    pub token: Option<Vec<u8>>,
    /// OAuth2: asked for the current access token at every connect (wins over `token`).
    pub oauth2: Option<crate::pulsar::oauth2::SharedProvider>,
    /// The connector for `pulsar+ssl://` URLs ([`super::tls::connector`]); `None`
    /// refuses them with [`WireError::Connect`].
    pub tls: Option<tokio_native_tls::TlsConnector>,
    /// Authenticate with the client certificate the TLS connector presents (Pulsar's
    /// `tls` method), when there is neither a token nor OAuth2.
    pub tls_authentication: bool,
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dial")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("oauth2", &self.oauth2.is_some())
            .field("tls", &self.tls.is_some())
            .field("tls_authentication", &self.tls_authentication)
            .finish()
    }
}

type Waiters = Arc<Mutex<HashMap<Waiter, oneshot::Sender<proto::BaseCommand>>>>;

/// One connection to a broker; see the module contract.
pub struct Wire {
    address: String,
    sink: Arc<tokio::sync::Mutex<Sink>>,
    waiters: Waiters,
    broken: Arc<AtomicBool>,
    next_request: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Wire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("address", &self.address)
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn command(r#type: CommandType) -> proto::BaseCommand {
    proto::BaseCommand {
        r#type: r#type as i32,
        ..Default::default()
    }
}

fn frame(command: proto::BaseCommand) -> Frame {
    Frame {
        command,
        payload: None,
    }
}

/// `pulsar://host:port` or `pulsar+ssl://host:port` to `(host, port)`.
fn host_and_port(url: &str) -> Result<(String, u16), WireError> {
    let parsed = url::Url::parse(url).map_err(|e| WireError::Connect {
        address: url.to_owned(),
        reason: e.to_string(),
    })?;
    let default_port = match parsed.scheme() {
        "pulsar" => 6650,
        "pulsar+ssl" => 6651,
        _ => {
            return Err(WireError::Connect {
                address: url.to_owned(),
                reason:
                    "not a Pulsar service URL: use pulsar://host:6650 or pulsar+ssl://host:6651"
                        .into(),
            })
        }
    };
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    Ok((host, parsed.port().unwrap_or(default_port)))
}

/// `pulsar://host:port` (or `pulsar+ssl://`) to `host:port`.
pub fn socket_address(url: &str) -> Result<String, WireError> {
    let (host, port) = host_and_port(url)?;
    Ok(format!("{host}:{port}"))
}

/// TCP to `host:port`, then TLS when `tls`.
async fn connect_stream(
    host: &str,
    address: &str,
    tls: bool,
    dial: &Dial,
) -> Result<Box<dyn Stream>, WireError> {
    let address = address.to_owned();
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|e| WireError::Connect {
            address: address.clone(),
            reason: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let Some(tls) = &dial.tls else {
        return Err(WireError::Connect {
            address,
            reason: "pulsar+ssl:// without a TLS set-up".into(),
        });
    };
    let stream = tls.connect(host, tcp).await.map_err(|e| WireError::Connect {
        address,
        reason: format!(
            "TLS handshake failed ({e}): check pulsar.tls_trust_certs_file (the CA that signed the broker's certificate), that the certificate names {host} (pulsar.tls_hostname_verification), and, if the broker asks for a client certificate, pulsar.tls_cert_file (signed by a CA the broker trusts)"
        ),
    })?;
    Ok(Box::new(stream))
}

/// The broker closed the connection before answering CONNECT: over TLS, most likely a
/// client certificate it does not accept (or none where it requires one).
fn closed_at_connect(address: &str, url: &str, error: Option<impl std::fmt::Display>) -> WireError {
    let what = match error {
        Some(error) => format!("the broker closed the connection before accepting it ({error})"),
        None => "the broker closed the connection before accepting it".to_owned(),
    };
    let reason = if super::tls::is_tls(url) {
        format!("{what}: if it requires client certificates, check pulsar.tls_cert_file and pulsar.tls_key_file (a certificate signed by a CA the broker trusts)")
    } else {
        what
    };
    WireError::Connect {
        address: address.to_owned(),
        reason,
    }
}

impl Wire {
    /// Connects to `url` (`pulsar://host:port` or `pulsar+ssl://host:port`) and
    /// performs the handshake, presenting `dial`'s token (Pulsar token authentication)
    /// when given.
    pub async fn open(url: &str, timeout: Duration, dial: &Dial) -> Result<Wire, WireError> {
        let (host, port) = host_and_port(url)?;
        let address = format!("{host}:{port}");
        let stream = tokio::time::timeout(
            timeout,
            connect_stream(&host, &address, super::tls::is_tls(url), dial),
        )
        .await
        .map_err(|_| WireError::Timeout(timeout))??;
        let fresh = match &dial.oauth2 {
            Some(provider) => Some(crate::pulsar::oauth2::token(provider).await.map_err(
                |reason| WireError::Connect {
                    address: address.clone(),
                    reason,
                },
            )?),
            None => None,
        };
        let token = fresh.as_deref().or(dial.token.as_deref());
        let mut framed = Framed::new(stream, Codec);
        let mut connect = command(CommandType::Connect);
        connect.connect = Some(proto::CommandConnect {
            client_version: client_version(),
            protocol_version: Some(PROTOCOL_VERSION),
            auth_method_name: match token {
                Some(_) => Some("token".to_owned()),
                None if dial.tls_authentication => {
                    Some(crate::pulsar::publisher::TLS_AUTH_METHOD.to_owned())
                }
                None => None,
            },
            auth_data: token.map(<[u8]>::to_vec),
            // Without it, a broker that finds the credentials expired (a token's `exp`,
            // checked every `authenticationRefreshCheckSeconds`) closes the connection;
            // with it, the broker challenges and the reader answers with a fresh token.
            feature_flags: Some(proto::FeatureFlags {
                supports_auth_refresh: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        framed
            .send(frame(connect))
            .await
            .map_err(|_| WireError::Lost)?;
        let answer = tokio::time::timeout(timeout, framed.next())
            .await
            .map_err(|_| WireError::Timeout(timeout))?;
        match answer {
            Some(Ok(message)) if message.command.connected.is_some() => {}
            Some(Ok(message)) => {
                return Err(match message.command.error {
                    Some(error) => WireError::Server {
                        code: error.error,
                        message: error.message,
                    },
                    None => WireError::Protocol(format!(
                        "expected Connected, got type {}",
                        message.command.r#type
                    )),
                })
            }
            // Closed before answering. Over TLS 1.3 the broker checks a client
            // certificate after the client's side of the handshake is done, so a refused
            // one shows up here, as an alert or a bare close.
            Some(Err(error)) => return Err(closed_at_connect(&address, url, Some(error))),
            None => return Err(closed_at_connect(&address, url, None::<std::io::Error>)),
        }
        let (sink, mut stream) = framed.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let waiters: Waiters = Arc::default();
        let broken = Arc::new(AtomicBool::new(false));
        let reader = {
            let sink = sink.clone();
            let waiters = waiters.clone();
            let broken = broken.clone();
            let dial = dial.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    let command = message.command;
                    if command.ping.is_some() {
                        let pong = frame(command_pong());
                        if sink.lock().await.send(pong).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    if command.auth_challenge.is_some() {
                        // Answered here, in line: the broker closes the connection if
                        // no valid answer comes, which is what a failure here leads to.
                        match auth_response(&dial).await {
                            Ok(response) => {
                                if sink.lock().await.send(frame(response)).await.is_err() {
                                    break;
                                }
                                tracing::debug!("answered the broker's authentication challenge");
                            }
                            Err(reason) => tracing::warn!(
                                %reason,
                                "cannot answer the broker's authentication challenge: it will close the connection, which is then opened again"
                            ),
                        }
                        continue;
                    }
                    if command.close_producer.is_some() {
                        // The broker dropped a producer (topic unloaded, fenced): treat the
                        // whole wire as gone so that the owner reconnects and resends.
                        break;
                    }
                    let Some(waiter) = waiter_of(&command) else {
                        continue;
                    };
                    let sender = waiters.lock().expect("waiters lock").remove(&waiter);
                    if let Some(sender) = sender {
                        let _ = sender.send(command);
                    }
                }
                broken.store(true, Ordering::SeqCst);
                waiters.lock().expect("waiters lock").clear();
            })
        };
        Ok(Wire {
            address,
            sink,
            waiters,
            broken,
            next_request: AtomicU64::new(1),
            reader,
        })
    }

    /// True once the connection failed or was broken off: every later call fails with
    /// [`WireError::Lost`].
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// A fresh request id for [`Wire::request`], unique on this connection.
    pub fn request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request and waits for the answer with the same request id.
    pub async fn request(
        &self,
        request_id: u64,
        command: proto::BaseCommand,
        timeout: Duration,
    ) -> Result<proto::BaseCommand, WireError> {
        let answer = self.register(Waiter::Request(request_id));
        self.send(frame(command)).await?;
        self.wait(answer, timeout).await
    }

    /// Sends a message frame and returns the waiter for its receipt.
    pub async fn send_message(
        &self,
        producer_id: u64,
        sequence_id: u64,
        message: Frame,
    ) -> Result<oneshot::Receiver<proto::BaseCommand>, WireError> {
        let receipt = self.register(Waiter::Receipt {
            producer_id,
            sequence_id,
        });
        self.send(message).await?;
        Ok(receipt)
    }

    /// Waits up to `timeout` for an answer registered by [`Wire::send_message`]; a broker
    /// error in it becomes [`WireError::Server`].
    pub async fn wait(
        &self,
        answer: oneshot::Receiver<proto::BaseCommand>,
        timeout: Duration,
    ) -> Result<proto::BaseCommand, WireError> {
        match tokio::time::timeout(timeout, answer).await {
            Err(_) => Err(WireError::Timeout(timeout)),
            Ok(Err(_)) => Err(WireError::Lost),
            Ok(Ok(command)) => match &command.error {
                Some(error) => Err(WireError::Server {
                    code: error.error,
                    message: error.message.clone(),
                }),
                None => Ok(command),
            },
        }
    }

    /// Sends without waiting for any answer (closing a producer on the way out).
    pub async fn send(&self, message: Frame) -> Result<(), WireError> {
        if self.is_broken() {
            return Err(WireError::Lost);
        }
        self.sink
            .lock()
            .await
            .send(message)
            .await
            .map_err(|_| WireError::Lost)
    }

    fn register(&self, waiter: Waiter) -> oneshot::Receiver<proto::BaseCommand> {
        let (sender, receiver) = oneshot::channel();
        self.waiters
            .lock()
            .expect("waiters lock")
            .insert(waiter, sender);
        receiver
    }

    /// Marks the wire unusable (after a timeout: a late answer must not be trusted).
    pub fn break_off(&self) {
        self.broken.store(true, Ordering::SeqCst);
        self.reader.abort();
    }
}

/// How the engine producer names itself to the broker (CONNECT, AUTH_RESPONSE).
fn client_version() -> String {
    format!("outbox-engine-{}", env!("CARGO_PKG_VERSION"))
}

/// The answer to an authentication challenge: the current credentials, fetched again
/// from the OAuth2 issuer when the access token nears expiry.
async fn auth_response(dial: &Dial) -> Result<proto::BaseCommand, String> {
    let (method, data) = match (&dial.oauth2, &dial.token) {
        (Some(provider), _) => ("token", crate::pulsar::oauth2::token(provider).await?),
        (None, Some(token)) => ("token", token.clone()),
        (None, None) if dial.tls_authentication => {
            (crate::pulsar::publisher::TLS_AUTH_METHOD, Vec::new())
        }
        (None, None) => return Err("no credentials are configured".into()),
    };
    let mut response = command(CommandType::AuthResponse);
    response.auth_response = Some(proto::CommandAuthResponse {
        client_version: Some(client_version()),
        response: Some(proto::AuthData {
            auth_method_name: Some(method.to_owned()),
            auth_data: Some(data),
        }),
        protocol_version: Some(PROTOCOL_VERSION),
    });
    Ok(response)
}

fn command_pong() -> proto::BaseCommand {
    let mut pong = command(CommandType::Pong);
    pong.pong = Some(proto::CommandPong {});
    pong
}

fn waiter_of(command: &proto::BaseCommand) -> Option<Waiter> {
    if let Some(receipt) = &command.send_receipt {
        return Some(Waiter::Receipt {
            producer_id: receipt.producer_id,
            sequence_id: receipt.sequence_id,
        });
    }
    if let Some(error) = &command.send_error {
        return Some(Waiter::Receipt {
            producer_id: error.producer_id,
            sequence_id: error.sequence_id,
        });
    }
    let request_id = command
        .producer_success
        .as_ref()
        .map(|c| c.request_id)
        .or(command.lookup_topic_response.as_ref().map(|c| c.request_id))
        .or(command.success.as_ref().map(|c| c.request_id))
        .or(command.error.as_ref().map(|c| c.request_id))?;
    Some(Waiter::Request(request_id))
}
