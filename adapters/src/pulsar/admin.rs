//! The broker's admin REST API: what the relay asks (whether deduplication is in force
//! on a topic, read once per topic and producer, off the hot path) and the one call
//! underneath it, [`request`], which the load driver uses too (health, version,
//! deleting topics).
//!
//! Contract:
//! - [`request`] is one blocking `ureq` call on the blocking pool, bounded as a whole
//!   (connect, send, read) by its timeout; any HTTP status is an answer, and only a
//!   call that got none is an [`AdminError`], naming the URL and what went wrong;
//! - [`deduplication`] never fails; an unreachable admin API or an unexpected answer is
//!   [`Deduplication::Unknown`] with the reason, so publishing never waits on it.

use std::time::Duration;

use ureq::OrAnyStatus;

/// An admin API answer: the HTTP status and the body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResponse {
    /// The HTTP status code (4xx and 5xx included: they are answers too).
    pub status: u16,
    /// The response body, as text.
    pub body: String,
}

/// An admin call that got no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {url}: {reason}")]
pub struct AdminError {
    /// The HTTP method of the call.
    pub method: String,
    /// The full URL called.
    pub url: String,
    /// Why no answer came: refused, timed out, malformed response.
    pub reason: String,
}

/// `method` `admin_url` + `path`, e.g. `request("GET", "http://127.0.0.1:8080",
/// "/admin/v2/brokers/health", timeout)`; `path` starts with `/` and may carry a query.
pub async fn request(
    method: &str,
    admin_url: &str,
    path: &str,
    timeout: Duration,
) -> Result<AdminResponse, AdminError> {
    let url = format!("{}{path}", admin_url.trim_end_matches('/'));
    let failed = {
        let (method, url) = (method.to_owned(), url.clone());
        move |reason: String| AdminError {
            method,
            url,
            reason,
        }
    };
    let call = {
        let method = method.to_owned();
        move || {
            let agent = ureq::AgentBuilder::new().timeout(timeout).build();
            // 4xx and 5xx are answers too: the caller decides what they mean.
            let response = agent
                .request(&method, &url)
                .call()
                .or_any_status()
                .map_err(|transport| without_url(&transport))?;
            let status = response.status();
            let body = response.into_string().map_err(|e| e.to_string())?;
            Ok(AdminResponse { status, body })
        }
    };
    match tokio::task::spawn_blocking(call).await {
        Ok(answer) => answer.map_err(failed),
        Err(join) => Err(failed(format!("the call did not finish: {join}"))),
    }
}

/// Whether the broker drops re-sent messages of a producer name (Pulsar's
/// `brokerDeduplicationEnabled`, per namespace or topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deduplication {
    /// The broker deduplicates: with the engine producer, nothing is published twice.
    On,
    /// It does not: delivery is at-least-once (crashes and takeovers may resend).
    Off,
    /// Not known: no admin URL, the admin API did not answer, or the stock producer
    /// (which cannot set sequence ids, so deduplication cannot help it).
    Unknown(String),
}

impl Deduplication {
    /// The word `status` shows.
    pub fn label(&self) -> String {
        match self {
            Deduplication::On => "on".into(),
            Deduplication::Off => "off".into(),
            Deduplication::Unknown(reason) => format!("unknown ({reason})"),
        }
    }
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks `GET {admin_url}/admin/v2/{domain}/{tenant}/{namespace}/{topic}/deduplicationEnabled?applied=true`:
/// the effective setting (topic policy, else namespace, else broker default). The topic
/// must exist, which it does once a producer has been created on it.
pub async fn deduplication(admin_url: &str, full_topic: &str) -> Deduplication {
    let Some(path) = full_topic
        .strip_prefix("persistent://")
        .map(|rest| format!("/admin/v2/persistent/{rest}/deduplicationEnabled?applied=true"))
    else {
        return Deduplication::Unknown(format!("not a persistent topic: {full_topic}"));
    };
    match request("GET", admin_url, &path, ADMIN_TIMEOUT).await {
        Ok(answer) if answer.status == 200 => parse(&answer.body),
        Ok(answer) => Deduplication::Unknown(format!(
            "admin API answered {} {:?}",
            answer.status,
            answer.body.trim().chars().take(80).collect::<String>()
        )),
        Err(e) => Deduplication::Unknown(format!("admin API: {e}")),
    }
}

/// What went wrong, without the URL (which [`AdminError`] names once).
fn without_url(transport: &ureq::Transport) -> String {
    let mut text = transport.kind().to_string();
    if let Some(message) = transport.message() {
        text = format!("{text}: {message}");
    }
    if let Some(source) = std::error::Error::source(transport) {
        text = format!("{text}: {source}");
    }
    text
}

fn parse(body: &str) -> Deduplication {
    match body.trim() {
        "true" => Deduplication::On,
        "false" => Deduplication::Off,
        other => Deduplication::Unknown(format!(
            "unexpected admin answer {:?}",
            other.chars().take(80).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(parse("true"), Deduplication::On);
        assert_eq!(parse("false\n"), Deduplication::Off);
        assert!(matches!(
            parse("{\"reason\":\"x\"}"),
            Deduplication::Unknown(_)
        ));
        assert!(matches!(parse(""), Deduplication::Unknown(_)));
    }

    #[tokio::test]
    async fn a_call_without_an_answer_names_the_url() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let error = request(
            "DELETE",
            "http://127.0.0.1:1/",
            "/admin/v2/brokers/health",
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("DELETE http://127.0.0.1:1/admin/v2/brokers/health: "),
            "{text}"
        );
        assert_eq!(text.matches("127.0.0.1:1").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_costs_the_timeout_only() {
        // The kernel accepts the connection; nobody ever reads or writes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", silent.local_addr().unwrap());
        let started = std::time::Instant::now();
        let error = request(
            "GET",
            &base,
            "/admin/v2/brokers/version",
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");
        assert!(error.reason.contains("timed out"), "{error}");
    }

    #[tokio::test]
    async fn a_non_persistent_topic_is_unknown_without_asking() {
        let answer = deduplication("http://127.0.0.1:1", "non-persistent://public/default/t").await;
        assert!(matches!(answer, Deduplication::Unknown(r) if r.contains("not a persistent")));
    }
}
