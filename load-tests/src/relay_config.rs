//! The TOML config file handed to the relay child process.
//!
//! Contract: [`RelaySettings::parse`] turns `--partitions`, `--batch-size` and the
//! repeatable `--relay-set KEY=VALUE` into settings, rejecting (with the flag named)
//! malformed pairs, keys the driver owns (`database_url`, `pulsar.url`), a key given
//! twice, and anything the relay itself would reject — checked with the relay's own
//! [`RelayConfig`] parser and validator, so a bad value fails before any service is
//! touched. [`RelaySettings::render`] writes the file for one database and broker.

use outbox_engine::RelayConfig;

use crate::plan::UsageError;

/// Keys the driver sets itself.
const OWNED_KEYS: [&str; 2] = ["database_url", "pulsar.url"];

/// Validated relay settings, independent of where the services are.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaySettings {
    /// (dotted key, value) in the order given; `pulsar.x` goes to the [pulsar] table.
    sets: Vec<(String, toml::Value)>,
    /// The relay's effective configuration (placeholder URLs).
    pub effective: RelayConfig,
}

/// A value as TOML would read it (`true`, `10`, `1.5`), else a string (`zstd`).
pub fn parse_value(raw: &str) -> toml::Value {
    let raw = raw.trim();
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| raw.into()),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

impl RelaySettings {
    /// `partitions`/`batch_size` come from their own flags (`None` = relay default).
    pub fn parse(
        partitions: Option<u32>,
        batch_size: Option<u32>,
        relay_set: &[String],
    ) -> Result<Self, UsageError> {
        let mut sets: Vec<(String, toml::Value)> = Vec::new();
        if let Some(p) = partitions {
            sets.push(("partitions".into(), toml::Value::Integer(p.into())));
        }
        if let Some(b) = batch_size {
            sets.push(("batch_size".into(), toml::Value::Integer(b.into())));
        }
        for pair in relay_set {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                UsageError::new(
                    "--relay-set",
                    format!("{pair:?} is not KEY=VALUE (e.g. pulsar.compression=lz4)"),
                )
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(UsageError::new(
                    "--relay-set",
                    format!("{pair:?} has an empty key"),
                ));
            }
            if OWNED_KEYS.contains(&key) {
                return Err(UsageError::new(
                    "--relay-set",
                    format!("{key} is set by the driver (throwaway database, --pulsar-url)"),
                ));
            }
            if let Some((previous, _)) = sets.iter().find(|(k, _)| k == key) {
                let flag = match previous.as_str() {
                    "partitions" if partitions.is_some() => "--partitions and --relay-set",
                    "batch_size" if batch_size.is_some() => "--batch-size and --relay-set",
                    _ => "--relay-set",
                };
                return Err(UsageError::new(
                    flag,
                    format!("{key} is given twice: give it once"),
                ));
            }
            sets.push((key.to_owned(), parse_value(value)));
        }
        let effective = check(&sets).map_err(|message| {
            let flag = if message.contains("partitions") && partitions.is_some() {
                "--partitions"
            } else if message.contains("batch_size") && batch_size.is_some() {
                "--batch-size"
            } else {
                "--relay-set"
            };
            UsageError::new(flag, message)
        })?;
        Ok(RelaySettings { sets, effective })
    }

    /// The same settings with `partitions` and `batch_size` replaced (the sweep).
    pub fn with_point(&self, partitions: u32, batch_size: u32) -> Result<Self, UsageError> {
        let mut sets: Vec<(String, toml::Value)> = self
            .sets
            .iter()
            .filter(|(k, _)| k != "partitions" && k != "batch_size")
            .cloned()
            .collect();
        sets.push(("partitions".into(), toml::Value::Integer(partitions.into())));
        sets.push(("batch_size".into(), toml::Value::Integer(batch_size.into())));
        let effective = check(&sets).map_err(|message| {
            let flag = if message.contains("partitions") {
                "--partitions"
            } else if message.contains("batch_size") {
                "--batch-sizes"
            } else {
                "--relay-set"
            };
            UsageError::new(flag, message)
        })?;
        Ok(RelaySettings { sets, effective })
    }

    /// Whether `key` was set explicitly.
    pub fn sets_key(&self, key: &str) -> bool {
        self.sets.iter().any(|(k, _)| k == key)
    }

    pub fn partitions(&self) -> u32 {
        self.effective.partitions
    }

    pub fn batch_size(&self) -> u32 {
        self.effective.batch_size
    }

    /// The relay's TOML for one database and broker.
    pub fn render(&self, database_url: &str, pulsar_url: &str) -> String {
        render(&self.sets, database_url, pulsar_url)
    }

    /// `key=value` pairs, for reports.
    pub fn describe(&self) -> String {
        if self.sets.is_empty() {
            return "relay defaults".into();
        }
        self.sets
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn render(sets: &[(String, toml::Value)], database_url: &str, pulsar_url: &str) -> String {
    let mut root = toml::Table::new();
    let mut pulsar = toml::Table::new();
    root.insert("database_url".into(), database_url.into());
    pulsar.insert("url".into(), pulsar_url.into());
    for (key, value) in sets {
        match key.strip_prefix("pulsar.") {
            Some(inner) => pulsar.insert(inner.to_owned(), value.clone()),
            None => root.insert(key.clone(), value.clone()),
        };
    }
    root.insert("pulsar".into(), toml::Value::Table(pulsar));
    toml::to_string(&root).unwrap_or_default()
}

/// Runs the relay's own parser and validator; the error is the relay's message.
fn check(sets: &[(String, toml::Value)]) -> Result<RelayConfig, String> {
    let text = render(
        sets,
        "postgres://placeholder@localhost/placeholder",
        "pulsar://localhost:6650",
    );
    let config = RelayConfig::from_toml(&text)
        .map_err(|reason| format!("the relay rejects these settings: {}", reason.trim()))?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[&str]) -> Vec<String> {
        pairs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_are_typed_like_toml() {
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(parse_value("250"), toml::Value::Integer(250));
        assert_eq!(parse_value("lz4"), toml::Value::String("lz4".into()));
        assert_eq!(parse_value("\"zstd\""), toml::Value::String("zstd".into()));
    }

    #[test]
    fn settings_reach_the_right_tables() {
        let s = RelaySettings::parse(
            Some(8),
            None,
            &set(&["pulsar.compression=lz4", "wakeup_interval_ms=1"]),
        )
        .unwrap();
        assert_eq!(s.partitions(), 8);
        assert_eq!(s.batch_size(), 1000);
        let text = s.render("postgres://u:p@h/db", "pulsar://b:6650");
        let back = RelayConfig::from_toml(&text).unwrap();
        assert_eq!(back.database_url, "postgres://u:p@h/db");
        assert_eq!(back.pulsar.url, "pulsar://b:6650");
        assert_eq!(back.wakeup_interval_ms, 1);
        assert_eq!(
            back.pulsar.compression,
            outbox_adapters::pulsar::Compression::Lz4
        );
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let cases: [(Option<u32>, Vec<String>, &str); 6] = [
            (None, set(&["nonsense"]), "--relay-set"),
            (None, set(&["database_url=x"]), "--relay-set"),
            (None, set(&["partitons=3"]), "--relay-set"),
            (
                Some(4),
                set(&["partitions=8"]),
                "--partitions and --relay-set",
            ),
            (Some(0), vec![], "--partitions"),
            (None, set(&["pulsar.compression=snappy"]), "--relay-set"),
        ];
        for (partitions, sets, flag) in cases {
            let error = RelaySettings::parse(partitions, None, &sets).unwrap_err();
            assert_eq!(error.flag, flag, "{sets:?}: {error}");
        }
        let error = RelaySettings::parse(None, Some(0), &[]).unwrap_err();
        assert_eq!(error.flag, "--batch-size");
    }

    #[test]
    fn a_sweep_point_replaces_partitions_and_batch_size() {
        let base = RelaySettings::parse(None, None, &set(&["pulsar.batching=false"])).unwrap();
        let point = base.with_point(16, 4000).unwrap();
        assert_eq!((point.partitions(), point.batch_size()), (16, 4000));
        assert!(!point.effective.pulsar.batching);
    }
}
