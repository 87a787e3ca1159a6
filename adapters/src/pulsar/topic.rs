//! Topic names: validation and the short-name mapping.

use super::error::TopicError;

const DEFAULT_PREFIX: &str = "persistent://public/default/";
const MAX_TOPIC_LEN: usize = 512;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | ':' | '.' | '%')
}

fn check_part(topic: &str, part: &str) -> Result<(), TopicError> {
    if part.is_empty() || !part.chars().all(is_name_char) {
        return Err(TopicError::Invalid(topic.to_owned()));
    }
    Ok(())
}

/// Validates a topic as enqueued and returns its full Pulsar name.
///
/// Accepts a short name (`orders`) or a full one (`persistent://tenant/ns/orders`). The
/// same rule is enforced by the SQL function `outbox_validate`, so what enqueue accepts
/// the relay can publish. `non-persistent://` topics are refused: the broker drops their
/// messages when no subscriber is connected, which would lose committed events.
///
/// ```
/// # fn main() -> Result<(), outbox_adapters::TopicError> {
/// use outbox_adapters::{full_topic_name, TopicError};
///
/// assert_eq!(full_topic_name("orders")?, "persistent://public/default/orders");
/// assert_eq!(
///     full_topic_name("persistent://acme/billing/invoices")?,
///     "persistent://acme/billing/invoices"
/// );
/// assert!(matches!(
///     full_topic_name("non-persistent://acme/billing/invoices"),
///     Err(TopicError::NonPersistent(_))
/// ));
/// assert!(matches!(full_topic_name("orders/eu"), Err(TopicError::Invalid(_))));
/// # Ok(())
/// # }
/// ```
pub fn full_topic_name(topic: &str) -> Result<String, TopicError> {
    if topic.starts_with("non-persistent://") {
        return Err(TopicError::NonPersistent(topic.to_owned()));
    }
    if topic.len() > MAX_TOPIC_LEN || topic.contains("-partition-") {
        return Err(TopicError::Invalid(topic.to_owned()));
    }
    let rest = topic.strip_prefix("persistent://");
    match rest {
        None => {
            check_part(topic, topic)?;
            Ok(format!("{DEFAULT_PREFIX}{topic}"))
        }
        Some(rest) => {
            let parts: Vec<&str> = rest.split('/').collect();
            if parts.len() != 3 {
                return Err(TopicError::Invalid(topic.to_owned()));
            }
            for part in parts {
                check_part(topic, part)?;
            }
            Ok(topic.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_map_to_public_default() {
        assert_eq!(
            full_topic_name("orders").unwrap(),
            "persistent://public/default/orders"
        );
    }

    #[test]
    fn full_names_are_kept() {
        let name = "persistent://acme/billing/invoices.v1";
        assert_eq!(full_topic_name(name).unwrap(), name);
    }

    #[test]
    fn non_persistent_topics_are_refused_saying_why() {
        let error = full_topic_name("non-persistent://acme/billing/invoices").unwrap_err();
        assert!(matches!(error, TopicError::NonPersistent(_)));
        assert!(error.to_string().contains("persistent://"), "{error}");
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in [
            "",
            "a b",
            "a/b",
            "persistent://only/two",
            "persistent://a/b/c/d",
            "orders-partition-0",
            "ünïcode",
            "kafka://a/b/c",
        ] {
            assert!(full_topic_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(full_topic_name(&"x".repeat(513)).is_err());
    }
}
