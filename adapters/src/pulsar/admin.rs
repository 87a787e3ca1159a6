//! What the relay asks the broker's admin REST API: whether deduplication is in force on
//! a topic. Read once per topic and producer, off the hot path.
//!
//! Contract: [`deduplication`] never fails; an unreachable admin API or an unexpected
//! answer is [`Deduplication::Unknown`] with the reason, so publishing never waits on it.

use std::time::Duration;

/// Whether the broker drops re-sent messages of a producer name (Pulsar's
/// `brokerDeduplicationEnabled`, per namespace or topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deduplication {
    On,
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
        .map(|rest| format!("persistent/{rest}"))
    else {
        return Deduplication::Unknown(format!("not a persistent topic: {full_topic}"));
    };
    let url = format!(
        "{}/admin/v2/{path}/deduplicationEnabled?applied=true",
        admin_url.trim_end_matches('/')
    );
    let answer = tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(ADMIN_TIMEOUT).build();
        agent
            .get(&url)
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())
    })
    .await;
    match answer {
        Ok(Ok(body)) => parse(&body),
        Ok(Err(reason)) => Deduplication::Unknown(format!("admin API: {reason}")),
        Err(join) => Deduplication::Unknown(format!("admin API check failed: {join}")),
    }
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
    async fn a_non_persistent_topic_is_unknown_without_asking() {
        let answer = deduplication("http://127.0.0.1:1", "non-persistent://public/default/t").await;
        assert!(matches!(answer, Deduplication::Unknown(r) if r.contains("not a persistent")));
    }
}
