//! `bin/pulsar-perf produce` from the Pulsar distribution: the broker's own load
//! generator (Java client), same payload size, message count, producer count and
//! batching limits as the relay.
//!
//! Contract: [`locate`] finds the distribution (explicit dir, else the newest
//! `~/.cache/outbox-engine/apache-pulsar-*`) or returns the reason to skip (not an
//! error; `OUTBOX_CACHE_DIR` replaces the cache dir as for the service scripts).
//! [`run`] runs it with a time limit, keeps its output in the run's directory
//! and computes messages / sending time from its log timestamps ([`parse_output`]): its
//! own "Aggregated throughput stats" clock runs through JVM shutdown, which undercounts
//! short runs by half or more (that figure is kept for reference).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use outbox_adapters::pulsar::Compression;
use outbox_adapters::PulsarConfig;
use serde::Serialize;
use tokio::process::Command;

use super::BaselineError;

#[derive(Debug, Clone, Serialize)]
pub struct PerfResult {
    pub events: u64,
    pub producers: usize,
    /// Messages / sending time (from its log timestamps).
    pub events_per_s: f64,
    /// Its own aggregated figure (clock includes shutdown), for reference.
    pub aggregated_events_per_s: Option<f64>,
}

/// The distribution directory holding `bin/pulsar-perf`, or why it is skipped.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        return if dir.join("bin/pulsar-perf").is_file() {
            Ok(dir.to_path_buf())
        } else {
            Err(format!("{} has no bin/pulsar-perf", dir.display()))
        };
    }
    let cache = match std::env::var_os("OUTBOX_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cache/outbox-engine"))
            .ok_or("HOME is not set")?,
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map_err(|_| {
            format!(
                "no Pulsar distribution in {} (set PULSAR_HOME)",
                cache.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("apache-pulsar-"))
                && path.join("bin/pulsar-perf").is_file()
        })
        .collect();
    candidates.sort();
    candidates.pop().ok_or_else(|| {
        format!(
            "no apache-pulsar-*/bin/pulsar-perf in {} (set PULSAR_HOME)",
            cache.display()
        )
    })
}

/// Seconds since midnight of a log line starting `2026-11-30T09:32:51,664+0000`.
fn log_time(line: &str) -> Option<f64> {
    let time = line.get(11..23)?; // 09:32:51,664
    let mut parts = time.split([':', ',']);
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    let ms: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s + ms / 1000.0)
}

/// What pulsar-perf's output says.
#[derive(Debug, Clone, PartialEq)]
pub struct PerfOutput {
    /// Messages / (log time of "DONE (reached the maximum number" − log time of
    /// "Created N producers"): the sending time alone.
    pub events_per_s: Option<f64>,
    /// Its own "Aggregated throughput stats" figure, whose clock also runs through
    /// JVM shutdown (it undercounts short runs).
    pub aggregated_per_s: Option<f64>,
    pub aggregated_line: Option<String>,
}

pub fn parse_output(output: &str, events: u64) -> PerfOutput {
    let created = output
        .lines()
        .find(|l| {
            l.contains("PerformanceProducer") && l.contains("Created") && l.contains("producers")
        })
        .and_then(log_time);
    let done = output
        .lines()
        .find(|l| l.contains("DONE (reached the maximum number"))
        .and_then(log_time);
    let events_per_s = match (created, done) {
        (Some(c), Some(d)) => {
            // Runs across midnight wrap around.
            let seconds = if d >= c { d - c } else { d + 86_400.0 - c };
            (seconds > 0.0).then(|| events as f64 / seconds)
        }
        _ => None,
    };
    let aggregated = output
        .lines()
        .rev()
        .find(|line| line.contains("Aggregated throughput stats"));
    let aggregated_per_s = aggregated.and_then(|line| {
        line.split("---")
            .find(|part| part.contains("msg/s"))?
            .replace("msg/s", "")
            .replace(',', "")
            .trim()
            .parse()
            .ok()
    });
    PerfOutput {
        events_per_s,
        aggregated_per_s,
        aggregated_line: aggregated
            .map(|l| l[l.find("Aggregated").unwrap_or(0)..].trim().to_owned()),
    }
}

/// The produce command's arguments.
pub fn arguments(
    pulsar_url: &str,
    admin_url: &str,
    topic: &str,
    events: u64,
    producers: usize,
    payload_bytes: usize,
    config: &PulsarConfig,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "produce".into(),
        "-u".into(),
        pulsar_url.into(),
        "-au".into(),
        admin_url.into(),
        "-r".into(),
        "10000000".into(),
        "-s".into(),
        payload_bytes.to_string(),
        "-m".into(),
        events.to_string(),
        "-n".into(),
        producers.to_string(),
        "-threads".into(),
        "1".into(),
        "-mk".into(),
        "random".into(),
        "-z".into(),
        match config.compression {
            Compression::None => "NONE",
            Compression::Lz4 => "LZ4",
            Compression::Zstd => "ZSTD",
        }
        .into(),
    ];
    if config.batching {
        args.extend([
            "-b".into(),
            config.batch_max_delay_ms.to_string(),
            "-bm".into(),
            config.batch_max_messages.to_string(),
            "-bb".into(),
            config.batch_max_bytes.to_string(),
        ]);
    } else {
        args.push("-db".into());
    }
    args.push(format!("persistent://public/default/{topic}"));
    args
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    home: &Path,
    pulsar_url: &str,
    admin_url: &str,
    topic: &str,
    events: u64,
    producers: usize,
    payload_bytes: usize,
    config: &PulsarConfig,
    log_path: &Path,
    time_limit: Duration,
) -> Result<PerfResult, BaselineError> {
    let args = arguments(
        pulsar_url,
        admin_url,
        topic,
        events,
        producers,
        payload_bytes,
        config,
    );
    let child = Command::new(home.join("bin/pulsar-perf"))
        .args(&args)
        .env(
            "PULSAR_EXTRA_OPTS",
            "-Xms256m -Xmx1g -XX:+UseG1GC -XX:ParallelGCThreads=2 -XX:ConcGCThreads=1",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| BaselineError::PulsarPerf(format!("cannot start pulsar-perf: {e}")))?;
    let output = tokio::time::timeout(time_limit, child.wait_with_output())
        .await
        .map_err(|_| BaselineError::PulsarPerf(format!("did not finish within {time_limit:?}")))?
        .map_err(|e| BaselineError::PulsarPerf(e.to_string()))?;
    let text = format!(
        "$ pulsar-perf {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::write(log_path, &text);
    let parsed = parse_output(&text, events);
    let rate = parsed
        .events_per_s
        .or(parsed.aggregated_per_s)
        .ok_or_else(|| {
            BaselineError::PulsarPerf(format!(
                "no DONE / aggregated throughput line in its output ({}; see {})",
                output.status,
                log_path.display()
            ))
        })?;
    Ok(PerfResult {
        events,
        producers,
        events_per_s: rate,
        aggregated_events_per_s: parsed.aggregated_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_comes_from_the_sending_time() {
        let output = "\
2026-11-30T09:32:51,664+0000 [exec-1-1] INFO  org.apache.pulsar.testclient.PerformanceProducer - Created 4 producers
2026-11-30T09:32:55,664+0000 [exec-1-1] INFO  org.apache.pulsar.testclient.PerformanceProducer - ------------- DONE (reached the maximum number: 200000 of production) --------------
2026-11-30T09:32:59,590+0000 [perf-client-shutdown] INFO  org.apache.pulsar.testclient.PerformanceProducer - Aggregated throughput stats --- 203271 records sent --- 20292.984 msg/s --- 39.635 Mbit/s
";
        let parsed = parse_output(output, 200_000);
        assert!((parsed.events_per_s.unwrap() - 50_000.0).abs() < 1e-6);
        assert!((parsed.aggregated_per_s.unwrap() - 20292.984).abs() < 1e-6);
        assert!(parsed
            .aggregated_line
            .unwrap()
            .starts_with("Aggregated throughput stats"));
        let nothing = parse_output("nothing here", 1);
        assert_eq!(nothing.events_per_s, None);
        assert_eq!(nothing.aggregated_per_s, None);
    }

    #[test]
    fn arguments_mirror_the_relay_batching() {
        let args = arguments(
            "pulsar://h:6650",
            "http://h:8080",
            "t",
            1000,
            4,
            256,
            &PulsarConfig::default(),
        );
        let joined = args.join(" ");
        assert!(joined.contains("-m 1000"));
        assert!(joined.contains("-s 256"));
        assert!(joined.contains("-n 4"));
        assert!(joined.contains("-bm 1000"));
        assert!(joined.ends_with("persistent://public/default/t"));
        let plain = arguments(
            "u",
            "a",
            "t",
            1,
            1,
            1,
            &PulsarConfig {
                batching: false,
                ..Default::default()
            },
        );
        assert!(plain.contains(&"-db".to_owned()));
    }

    #[test]
    fn a_missing_distribution_is_a_reason_to_skip() {
        let reason = locate(Some(Path::new("/nonexistent"))).unwrap_err();
        assert!(reason.contains("bin/pulsar-perf"));
    }
}
