//! `outbox-load tune`: the sweep over relay partitions x batch size.
//!
//! Contract: check the services once, measure the baselines once (in a throwaway
//! database of their own), then for every point: a fresh throwaway database, a drain of
//! the configured backlog, then steady state at the configured rate with the same relay
//! process, the relay stopped, the database dropped and the topics deleted. A failed
//! point is recorded and the sweep goes on. At the end it writes the markdown section
//! (between markers, see [`markdown::splice`]) and the SVG plots, and returns whether
//! every point delivered everything in order.

pub mod machine;
pub mod markdown;
pub mod plots;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::baselines::{self, BaselineContext, Baselines};
use crate::drain::{self, DrainResult};
use crate::keys::KeySampler;
use crate::phase::PhaseContext;
use crate::plan::{Rate, SteadyStop, TunePlan};
use crate::progress::Progress;
use crate::relay_config::RelaySettings;
use crate::report::{ms, thousands, TARGET_DRAIN_EVENTS_PER_S, TARGET_P99_MS};
use crate::run::{self, Env, Ready, RunError};
use crate::services::{self, ThrowawayDb};
use crate::steady::{self, SteadyResult};

/// One sweep point.
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    pub partitions: u32,
    pub batch_size: u32,
    pub drain: Option<DrainResult>,
    pub steady: Option<SteadyResult>,
    pub error: Option<String>,
}

impl PointResult {
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self
                .drain
                .as_ref()
                .is_some_and(|d| d.complete && d.checks.passed())
            && self
                .steady
                .as_ref()
                .is_some_and(|s| s.complete && s.checks.passed())
    }
}

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    pub command: String,
    pub machine: machine::Machine,
    pub partitions: Vec<u32>,
    pub batch_sizes: Vec<u32>,
    pub drain_events: u64,
    pub payload_bytes: usize,
    pub keys: usize,
    pub key_dist: String,
    pub writers: usize,
    pub events_per_tx: usize,
    pub rate: u64,
    pub steady_seconds: f64,
    pub warmup_seconds: f64,
    pub relay_settings: String,
    pub baselines: Baselines,
    pub points: Vec<PointResult>,
    /// (path relative to the markdown file, alt text)
    pub plots: Vec<(String, String)>,
}

/// `target` relative to `base_dir` when it is inside it, else as given.
pub fn relative_to(target: &Path, base_dir: &Path) -> String {
    let base = if base_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base_dir
    };
    let clean = |p: &Path| {
        p.components()
            .filter(|c| c.as_os_str() != ".")
            .collect::<PathBuf>()
    };
    match clean(target).strip_prefix(clean(base)) {
        Ok(rest) => rest.display().to_string(),
        Err(_) => std::fs::canonicalize(target)
            .unwrap_or_else(|_| target.to_path_buf())
            .display()
            .to_string(),
    }
}

async fn point(
    env: &Env,
    ready: &Ready,
    plan: &TunePlan,
    settings: &RelaySettings,
    keys: Arc<KeySampler>,
    run_id: &str,
    progress: &Progress,
) -> PointResult {
    let (partitions, batch_size) = (settings.partitions(), settings.batch_size());
    let mut result = PointResult {
        partitions,
        batch_size,
        drain: None,
        steady: None,
        error: None,
    };
    let work_dir = env.work_root.join(run_id);
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        result.error = Some(format!("cannot create {}: {e}", work_dir.display()));
        return result;
    }
    let db = match ThrowawayDb::create(&env.services.database_url, run_id).await {
        Ok(db) => db,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    let ctx = PhaseContext {
        services: &env.services,
        client: &ready.client,
        db: &db,
        workload: &plan.workload,
        keys,
        relay_bin: &env.relay_bin,
        relay: settings,
        run_id,
        work_dir: &work_dir,
        progress,
        broker_pids: &ready.broker_pids,
    };
    let topics = vec![
        format!("load_{run_id}_drain"),
        format!("load_{run_id}_steady"),
    ];
    let work = async {
        let (drain, relay) = drain::run(&ctx, &plan.drain).await?;
        result.drain = Some(drain);
        let (steady, relay) = steady::run(&ctx, &plan.steady, Some(relay)).await?;
        result.steady = Some(steady);
        run::stop_relay(relay).await;
        Ok::<_, crate::phase::PhaseError>(())
    };
    let outcome = tokio::select! {
        outcome = work => outcome.map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    if let Err(e) = outcome {
        result.error = Some(e);
    }
    run::clean_up(env, &db, &topics, progress).await;
    result
}

fn point_line(p: &PointResult) -> String {
    if let Some(error) = &p.error {
        return format!(
            "point p={} b={}: error: {error}",
            p.partitions, p.batch_size
        );
    }
    let drain = p
        .drain
        .as_ref()
        .map_or("-".into(), |d| format!("{}/s", thousands(d.events_per_s)));
    let latency = p
        .steady
        .as_ref()
        .and_then(|s| s.latency)
        .map_or("-".into(), |l| {
            format!("p50 {} p99 {}", ms(l.p50_ms), ms(l.p99_ms))
        });
    format!(
        "point p={} b={}: drain {drain}, steady {latency}, checks {}",
        p.partitions,
        p.batch_size,
        if p.passed() { "ok" } else { "FAILED" }
    )
}

fn write_plots(
    report: &TuneReport,
    plots_dir: &Path,
    output: &Path,
) -> Result<Vec<(String, String)>, String> {
    std::fs::create_dir_all(plots_dir)
        .map_err(|e| format!("cannot create {}: {e}", plots_dir.display()))?;
    let series = |value: &dyn Fn(&PointResult) -> Option<f64>| -> Vec<plots::Series> {
        report
            .batch_sizes
            .iter()
            .map(|b| plots::Series {
                label: format!("batch size {b}"),
                points: report
                    .points
                    .iter()
                    .filter(|p| p.batch_size == *b && p.error.is_none())
                    .filter_map(|p| value(p).map(|v| (p.partitions as f64, v)))
                    .collect(),
            })
            .collect()
    };
    let base = output.parent().unwrap_or(Path::new("."));
    let throughput = plots_dir.join("tune_drain_throughput.svg");
    plots::line_chart(
        &throughput,
        &format!(
            "Drain of {} events: throughput vs partitions",
            report.drain_events
        ),
        "relay partitions",
        "events/s (relay ready -> last received)",
        &series(&|p| p.drain.as_ref().map(|d| d.events_per_s)),
        Some(&plots::Reference {
            y: TARGET_DRAIN_EVENTS_PER_S,
            label: format!("target {}/s", thousands(TARGET_DRAIN_EVENTS_PER_S)),
        }),
    )?;
    let p99 = plots_dir.join("tune_steady_p99.svg");
    plots::line_chart(
        &p99,
        &format!(
            "Steady state, offered {}/s: p99 commit-to-delivery latency vs partitions",
            report.rate
        ),
        "relay partitions",
        "p99 latency, ms",
        &series(&|p| p.steady.as_ref().and_then(|s| s.latency).map(|l| l.p99_ms)),
        Some(&plots::Reference {
            y: TARGET_P99_MS,
            label: format!("target {TARGET_P99_MS} ms"),
        }),
    )?;
    Ok(vec![
        (
            relative_to(&throughput, base),
            "drain throughput vs partitions".into(),
        ),
        (
            relative_to(&p99, base),
            "steady p99 latency vs partitions".into(),
        ),
    ])
}

/// Runs the sweep and writes the page; returns the report.
pub async fn tune(plan: TunePlan, env: Env, progress: &Progress) -> Result<TuneReport, RunError> {
    let ready = run::check_services(&env, progress).await?;
    let sweep_id = services::run_id();
    let keys = Arc::new(KeySampler::new(plan.workload.key_dist, plan.workload.keys));

    let base_id = format!("{sweep_id}_base");
    let base_dir = env.work_root.join(&base_id);
    std::fs::create_dir_all(&base_dir)
        .map_err(|e| RunError::Other(format!("cannot create {}: {e}", base_dir.display())))?;
    let db = ThrowawayDb::create(&env.services.database_url, &base_id).await?;
    let mut pulsar = plan.relay.effective.pulsar.clone();
    pulsar.url = env.services.pulsar_url.clone();
    let baseline_ctx = BaselineContext {
        services: &env.services,
        client: &ready.client,
        database_url: &db.url,
        run_id: &base_id,
        work_dir: &base_dir,
        keys: keys.clone(),
        workload: &plan.workload,
        pulsar: &pulsar,
        plan: &plan.baselines,
        pulsar_home: env.pulsar_home.clone(),
        progress,
    };
    let measured = tokio::select! {
        measured = baselines::measure(&baseline_ctx) => Some(measured),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some((baselines, topics)) = measured else {
        run::clean_up(&env, &db, &[], progress).await;
        return Err(RunError::Interrupted);
    };
    run::clean_up(&env, &db, &topics, progress).await;

    let mut points = Vec::new();
    let total = plan.partitions.len() * plan.batch_sizes.len();
    for &p in &plan.partitions {
        for &b in &plan.batch_sizes {
            let settings = plan.relay.with_point(p, b)?;
            progress.note(&format!(
                "=== point {}/{total}: {p} partitions, batch size {b}",
                points.len() + 1
            ));
            let result = point(
                &env,
                &ready,
                &plan,
                &settings,
                keys.clone(),
                &format!("{sweep_id}_p{p}_b{b}"),
                progress,
            )
            .await;
            progress.note(&point_line(&result));
            let interrupted = result.error.as_deref() == Some("interrupted");
            points.push(result);
            if interrupted {
                return Err(RunError::Interrupted);
            }
        }
    }

    let mut report = TuneReport {
        command: std::iter::once("outbox-load".to_owned())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        machine: machine::Machine::describe(&ready.postgres_version, &ready.pulsar_version),
        partitions: plan.partitions.clone(),
        batch_sizes: plan.batch_sizes.clone(),
        drain_events: plan.drain.events,
        payload_bytes: plan.workload.payload_bytes,
        keys: plan.workload.keys,
        key_dist: plan.workload.key_dist.to_string(),
        writers: plan.steady.writers,
        events_per_tx: plan.steady.events_per_tx,
        rate: match plan.steady.rate {
            Rate::PerSecond(r) => r,
            Rate::Max => 0,
        },
        steady_seconds: match plan.steady.stop {
            SteadyStop::After(d) => d.as_secs_f64(),
            SteadyStop::Events(_) => 0.0,
        },
        warmup_seconds: plan.steady.warmup.as_secs_f64(),
        relay_settings: plan.relay.describe(),
        baselines,
        points,
        plots: Vec::new(),
    };
    report.plots = write_plots(&report, &plan.plots_dir, &plan.output).map_err(RunError::Other)?;
    let existing = std::fs::read_to_string(&plan.output).ok();
    let page = markdown::splice(existing.as_deref(), &markdown::render(&report))
        .map_err(|e| RunError::Other(format!("{}: {e}", plan.output.display())))?;
    if let Some(dir) = plan.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| RunError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(&plan.output, page)
        .map_err(|e| RunError::Other(format!("cannot write {}: {e}", plan.output.display())))?;
    progress.note(&format!(
        "wrote {} and {} plots in {}",
        plan.output.display(),
        report.plots.len(),
        plan.plots_dir.display()
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_paths_are_relative_to_the_page() {
        assert_eq!(
            relative_to(Path::new("docs/plots/a.svg"), Path::new("docs")),
            "plots/a.svg"
        );
        assert_eq!(
            relative_to(Path::new("./docs/plots/a.svg"), Path::new("docs")),
            "plots/a.svg"
        );
        assert_eq!(
            relative_to(Path::new("plots/a.svg"), Path::new("")),
            "plots/a.svg"
        );
    }
}
