//! The relay under test, run as a child process: the real `outbox-relay` release binary.
//!
//! Contract:
//! - [`locate`] finds the binary: the explicit path, else `outbox-relay` next to this
//!   executable (cargo puts both in target/release), else a clear error saying how to
//!   build it;
//! - [`RelayProcess::spawn`] writes the TOML config into the run's directory and starts
//!   `outbox-relay --config <file> run` with `DATABASE_URL`/`PULSAR_URL` set to the run's
//!   services (environment overrides the file, so inherited values cannot leak in) and
//!   the other `OUTBOX_*` variables removed. Its stderr goes to `relay.log`; warnings and
//!   errors are echoed on our stderr;
//! - [`RelayProcess::wait_ready`] returns once every partition logged "partition
//!   started", or fails with the log's tail if the process exits first;
//! - CPU (utime+stime) and peak RSS (VmHWM) are read from /proc while it runs; [`stop`]
//!   samples them one last time, sends SIGTERM (graceful stop) and SIGKILL after a
//!   timeout. The child is killed if this handle is dropped.
//!
//! [`stop`]: RelayProcess::stop

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::procstat;

const TAIL_LINES: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum RelayProcessError {
    #[error("outbox-relay binary not found at {0}: build it with `cargo build --release -p outbox-engine --features cli` or pass --relay-bin")]
    NotFound(PathBuf),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("cannot start {bin}: {reason}")]
    Spawn { bin: PathBuf, reason: String },
    #[error("the relay exited during start ({status}); last log lines:\n{tail}")]
    ExitedEarly { status: String, tail: String },
    #[error("the relay did not start its {partitions} partitions within {timeout:?} (log: {log}); last log lines:\n{tail}")]
    NotReady {
        partitions: u32,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
}

/// The relay binary to run.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, RelayProcessError> {
    let candidate = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("outbox-relay")))
            .unwrap_or_else(|| PathBuf::from("target/release/outbox-relay")),
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(RelayProcessError::NotFound(candidate))
    }
}

/// What [`RelayProcess::stop`] observed.
#[derive(Debug, Clone)]
pub struct StopReport {
    pub graceful: bool,
    pub status: String,
}

#[derive(Debug)]
pub struct RelayProcess {
    child: Child,
    pid: u32,
    pub log_path: PathBuf,
    started_partitions: Arc<AtomicUsize>,
    tail: Arc<Mutex<VecDeque<String>>>,
    peak_rss_kb: u64,
    pub spawned_at: Instant,
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Relay log lines worth showing on our stderr: errors, and the engine's own warnings
/// (the pulsar crate's retry warnings on topic creation are only in the log file).
fn echo_line(line: &str) -> bool {
    line.contains(" ERROR ")
        || (line.contains(" WARN ")
            && (line.contains("outbox_engine") || line.contains("outbox_relay")))
}

impl RelayProcess {
    pub async fn spawn(
        bin: &Path,
        config_toml: &str,
        dir: &Path,
        database_url: &str,
        pulsar_url: &str,
    ) -> Result<Self, RelayProcessError> {
        let write_error = |path: &Path, e: std::io::Error| RelayProcessError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
        let config_path = dir.join("relay.toml");
        std::fs::write(&config_path, config_toml).map_err(|e| write_error(&config_path, e))?;
        let log_path = dir.join("relay.log");
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await
            .map_err(|e| write_error(&log_path, e))?;
        let mut command = Command::new(bin);
        command
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .env("DATABASE_URL", database_url)
            .env("PULSAR_URL", pulsar_url)
            .env_remove("OUTBOX_CONFIG")
            .env_remove("OUTBOX_PARTITIONS")
            .env_remove("OUTBOX_BATCH_SIZE")
            .env_remove("OUTBOX_POOL_SIZE")
            .env("NO_COLOR", "1")
            .env(
                "RUST_LOG",
                std::env::var("OUTBOX_LOAD_RELAY_LOG")
                    .unwrap_or_else(|_| "info,pulsar=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| RelayProcessError::Spawn {
            bin: bin.to_path_buf(),
            reason: e.to_string(),
        })?;
        let pid = child.id().unwrap_or(0);
        let started_partitions = Arc::new(AtomicUsize::new(0));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        if let Some(stderr) = child.stderr.take() {
            let started = started_partitions.clone();
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = strip_ansi(&line);
                    let _ = log.write_all(line.as_bytes()).await;
                    let _ = log.write_all(b"\n").await;
                    if line.contains("partition started") {
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                    if echo_line(&line) {
                        eprintln!("relay: {line}");
                    }
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
                let _ = log.flush().await;
            });
        }
        Ok(RelayProcess {
            child,
            pid,
            log_path,
            started_partitions,
            tail,
            peak_rss_kb: 0,
            spawned_at: Instant::now(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Waits until all `partitions` started; returns the time since spawn.
    pub async fn wait_ready(
        &mut self,
        partitions: u32,
        timeout: Duration,
    ) -> Result<Duration, RelayProcessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.started_partitions.load(Ordering::Relaxed) >= partitions as usize {
                return Ok(self.spawned_at.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the log reader catch the last lines.
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Err(RelayProcessError::ExitedEarly {
                    status: status.to_string(),
                    tail: self.tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(RelayProcessError::NotReady {
                    partitions,
                    timeout,
                    log: self.log_path.clone(),
                    tail: self.tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU seconds (user + system) used so far.
    pub fn cpu_seconds(&self) -> f64 {
        procstat::cpu_ticks(self.pid).unwrap_or(0) as f64 / procstat::ticks_per_second()
    }

    /// Peak resident memory so far, MB (also remembered, so the value survives exit).
    pub fn peak_rss_mb(&mut self) -> f64 {
        if let Some(kb) = procstat::peak_rss_kb(self.pid) {
            self.peak_rss_kb = self.peak_rss_kb.max(kb);
        }
        self.peak_rss_kb as f64 / 1024.0
    }

    /// Starts a new peak-RSS measurement (for a later phase of the same process).
    pub fn reset_peak_rss(&mut self) {
        if procstat::reset_peak_rss(self.pid) {
            self.peak_rss_kb = 0;
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`.
    pub async fn stop(mut self, timeout: Duration) -> StopReport {
        let _ = self.peak_rss_mb();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => StopReport {
                graceful: status.success(),
                status: status.to_string(),
            },
            Ok(Err(e)) => StopReport {
                graceful: false,
                status: e.to_string(),
            },
            Err(_) => {
                let _ = self.child.kill().await;
                StopReport {
                    graceful: false,
                    status: format!("killed after {timeout:?} without exiting on SIGTERM"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_codes_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[32m INFO\u{1b}[0m partition started"),
            " INFO partition started"
        );
    }

    #[test]
    fn only_errors_and_engine_warnings_are_echoed() {
        assert!(echo_line("2026 ERROR pulsar::x: boom"));
        assert!(echo_line(
            "2026  WARN outbox_engine::relay::partition: cycle failed"
        ));
        assert!(!echo_line("2026  WARN pulsar::retry_op: Retry #0"));
        assert!(!echo_line(
            "2026  INFO outbox_engine::relay::partition: partition started"
        ));
    }

    #[test]
    fn missing_binary_says_how_to_build_it() {
        let error = locate(Some(Path::new("/nonexistent/outbox-relay"))).unwrap_err();
        assert!(error
            .to_string()
            .contains("cargo build --release -p outbox-engine"));
    }
}
