//! The documentation cannot drift from the code: the configuration reference in
//! docs/operations.md lists exactly the keys `RelayConfig` has, with the same defaults,
//! and every command and flag of `outbox-relay --help` is described there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use outbox_engine::RelayConfig;

const OPERATIONS: &str = include_str!("../../docs/operations.md");

/// key -> documented default, from the table under "## Configuration".
fn documented() -> BTreeMap<String, String> {
    let section = OPERATIONS
        .split("\n## Configuration")
        .nth(1)
        .expect("docs/operations.md has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            // | key | environment / flag | default | meaning |
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells[1].replace('`', "").replace("[pulsar] ", "pulsar.");
            (key, cells.get(3).map(|d| d.to_string()).unwrap_or_default())
        })
        .collect()
}

/// key -> default, from the code.
fn in_code() -> BTreeMap<String, serde_json::Value> {
    let value = serde_json::to_value(RelayConfig::default()).unwrap();
    let mut keys = BTreeMap::new();
    for (key, value) in value.as_object().unwrap() {
        match value.as_object() {
            Some(nested) => {
                for (inner, value) in nested {
                    keys.insert(format!("{key}.{inner}"), value.clone());
                }
            }
            None => {
                keys.insert(key.clone(), value.clone());
            }
        }
    }
    keys
}

#[test]
fn the_configuration_reference_lists_every_key_with_its_default() {
    let documented = documented();
    let code = in_code();
    let missing: Vec<&String> = code
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys not in docs/operations.md: {missing:?}"
    );
    let stale: Vec<&String> = documented
        .keys()
        .filter(|k| !code.contains_key(*k) && !k.starts_with("(logs)"))
        .collect();
    assert!(
        stale.is_empty(),
        "documented keys the code does not have: {stale:?}"
    );
    for (key, value) in &code {
        let shown = documented[key].trim_matches('`');
        let expected = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue, // unset: described in words
            other => other.to_string(),
        };
        if key == "database_url" {
            continue; // shown with its password
        }
        assert_eq!(shown, expected, "default of {key} in docs/operations.md");
    }
}

#[test]
fn every_command_and_flag_of_the_binary_is_documented() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
            .args(args)
            .output()
            .expect("cannot run outbox-relay");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| *word != "help")
        .collect();
    assert!(commands.len() >= 7, "{top}");
    for command in &commands {
        assert!(
            OPERATIONS.contains(&format!("outbox-relay {command}")),
            "`outbox-relay {command}` is not in docs/operations.md"
        );
    }
    let mut flags: Vec<String> = Vec::new();
    for args in [
        vec!["--help"],
        vec!["dlq", "replay", "--help"],
        vec!["replay", "--help"],
    ] {
        for word in help(&args).split_whitespace() {
            let Some(name) = word.strip_prefix("--") else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !name.is_empty() && name != "help" && name != "version" {
                flags.push(format!("--{name}"));
            }
        }
    }
    flags.sort();
    flags.dedup();
    for flag in &flags {
        assert!(
            OPERATIONS.contains(flag.as_str()),
            "flag {flag} of `outbox-relay --help` is not in docs/operations.md"
        );
    }
}
