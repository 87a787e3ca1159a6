//! Orchestration of a `load` run, and the pieces `tune` reuses.
//!
//! Contract of [`load`]: check the services (nothing is written if one is down), create
//! a throwaway database, run the drain and/or steady phase with the relay as a child
//! process, stop the relay (SIGTERM), measure the baselines (never while the relay
//! runs), then drop the database and delete the run's topics (unless `--keep`) on every
//! path, Ctrl-C included. The relay child is killed if the run is interrupted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};

use crate::baselines::{self, BaselineContext, Baselines};
use crate::cli::ServiceArgs;
use crate::drain::{self, DrainResult};
use crate::keys::KeySampler;
use crate::phase::{PhaseContext, PhaseError};
use crate::plan::{LoadPlan, UsageError};
use crate::procstat;
use crate::progress::Progress;
use crate::relay_process::{self, RelayProcess};
use crate::report::{RunInfo, Summary};
use crate::services::{self, ServiceError, Services, ThrowawayDb};
use crate::steady::{self, SteadyResult};

/// Why a run did not produce a summary; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Phase(#[from] PhaseError),
    #[error(transparent)]
    Relay(#[from] relay_process::RelayProcessError),
    #[error("interrupted (Ctrl-C); the relay was killed and the throwaway database dropped")]
    Interrupted,
    #[error("{0}")]
    Other(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) => 2,
            RunError::Service(ServiceError::Unreachable { .. }) => 3,
            _ => 1,
        }
    }
}

/// The local side of a run: services, binaries, directories.
#[derive(Debug)]
pub struct Env {
    pub services: Services,
    pub relay_bin: PathBuf,
    pub pulsar_home: Result<PathBuf, String>,
    pub work_root: PathBuf,
    pub keep: bool,
}

impl Env {
    /// Locates the relay binary and the Pulsar distribution; touches no service.
    pub fn from_args(args: &ServiceArgs) -> Result<Env, RunError> {
        let relay_bin = relay_process::locate(args.relay_bin.as_deref())?;
        let work_root = args.work_dir.clone().unwrap_or_else(|| {
            relay_bin
                .parent()
                .and_then(Path::parent)
                .map(|target| target.join("outbox-load"))
                .unwrap_or_else(|| std::env::temp_dir().join("outbox-load"))
        });
        Ok(Env {
            services: Services {
                database_url: args.database_url.clone(),
                pulsar_url: args.pulsar_url.clone(),
                admin_url: args.pulsar_admin_url.clone(),
            },
            relay_bin,
            pulsar_home: baselines::pulsar_perf::locate(args.pulsar_home.as_deref()),
            work_root,
            keep: args.keep,
        })
    }

    fn broker_port(&self) -> Option<u16> {
        url::Url::parse(&self.services.pulsar_url)
            .ok()
            .and_then(|u| u.port())
    }
}

/// What is known once the services answered.
pub struct Ready {
    pub postgres_version: String,
    pub pulsar_version: String,
    pub broker_pids: Vec<u32>,
    pub client: Pulsar<TokioExecutor>,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("postgres_version", &self.postgres_version)
            .field("pulsar_version", &self.pulsar_version)
            .field("broker_pids", &self.broker_pids)
            .finish_non_exhaustive()
    }
}

pub async fn check_services(env: &Env, progress: &Progress) -> Result<Ready, RunError> {
    let (postgres_version, pulsar_version) = env.services.check().await?;
    let client = env.services.pulsar_client().await?;
    let broker_pids = procstat::broker_pids(env.broker_port());
    progress.note(&format!(
        "services: PostgreSQL {postgres_version} at {}, Pulsar {pulsar_version} at {} (broker pid {:?})",
        services::redact(&env.services.database_url),
        env.services.pulsar_url,
        broker_pids
    ));
    Ok(Ready {
        postgres_version,
        pulsar_version,
        broker_pids,
        client,
    })
}

/// Drops the database and deletes topics, unless `keep`.
pub async fn clean_up(env: &Env, db: &ThrowawayDb, topics: &[String], progress: &Progress) {
    if env.keep {
        progress.note(&format!(
            "kept database {} and topics {topics:?} (--keep)",
            db.name
        ));
        return;
    }
    db.drop_now().await;
    for topic in topics {
        if let Err(e) = env.services.delete_topic(topic).await {
            progress.note(&format!("warning: could not delete topic {topic}: {e}"));
        }
    }
}

/// Stops the relay gracefully and describes how it went.
pub async fn stop_relay(relay: RelayProcess) -> String {
    let report = relay.stop(Duration::from_secs(30)).await;
    if report.graceful {
        "graceful (SIGTERM)".into()
    } else {
        format!("not graceful: {}", report.status)
    }
}

struct Phases {
    drain: Option<DrainResult>,
    steady: Option<SteadyResult>,
    baselines: Baselines,
    relay_stop: String,
    failures: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
async fn phases(
    plan: &LoadPlan,
    env: &Env,
    ready: &Ready,
    db: &ThrowawayDb,
    run_id: &str,
    work_dir: &Path,
    progress: &Progress,
    topics: &mut Vec<String>,
) -> Result<Phases, RunError> {
    let keys = Arc::new(KeySampler::new(plan.workload.key_dist, plan.workload.keys));
    let ctx = PhaseContext {
        services: &env.services,
        client: &ready.client,
        db,
        workload: &plan.workload,
        keys: keys.clone(),
        relay_bin: &env.relay_bin,
        relay: &plan.relay,
        run_id,
        work_dir,
        progress,
        broker_pids: &ready.broker_pids,
    };
    let mut failures = Vec::new();
    let mut relay = None;
    let mut drain_result = None;
    if let Some(drain_plan) = &plan.drain {
        topics.push(format!("load_{run_id}_drain"));
        let (result, process) = drain::run(&ctx, drain_plan).await?;
        if !result.complete {
            failures.push(format!(
                "drain: the consumer gave up after {:?} without a new event",
                crate::phase::IDLE_TIMEOUT
            ));
        }
        relay = Some(process);
        drain_result = Some(result);
    }
    let mut steady_result = None;
    if let Some(steady_plan) = &plan.steady {
        topics.push(format!("load_{run_id}_steady"));
        let (result, process) = steady::run(&ctx, steady_plan, relay.take()).await?;
        if !result.complete {
            failures.push(format!(
                "steady: the consumer gave up after {:?} without a new event",
                crate::phase::IDLE_TIMEOUT
            ));
        }
        if result.failed_transactions > 0 {
            progress.note(&format!(
                "steady: {} writer transactions failed (first: {})",
                result.failed_transactions,
                result.first_writer_error.as_deref().unwrap_or("?")
            ));
        }
        relay = Some(process);
        steady_result = Some(result);
    }
    let relay_stop = match relay {
        Some(relay) => stop_relay(relay).await,
        None => "not started".into(),
    };
    let mut pulsar = plan.relay.effective.pulsar.clone();
    pulsar.url = env.services.pulsar_url.clone();
    let (baselines, baseline_topics) = baselines::measure(&BaselineContext {
        services: &env.services,
        client: &ready.client,
        database_url: &db.url,
        run_id,
        work_dir,
        keys,
        workload: &plan.workload,
        pulsar: &pulsar,
        plan: &plan.baselines,
        pulsar_home: env.pulsar_home.clone(),
        progress,
    })
    .await;
    topics.extend(baseline_topics);
    Ok(Phases {
        drain: drain_result,
        steady: steady_result,
        baselines,
        relay_stop,
        failures,
    })
}

pub async fn load(plan: LoadPlan, env: Env, progress: &Progress) -> Result<Summary, RunError> {
    let started_at = chrono::Utc::now().to_rfc3339();
    let ready = check_services(&env, progress).await?;
    let run_id = services::run_id();
    let work_dir = env.work_root.join(&run_id);
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| RunError::Other(format!("cannot create {}: {e}", work_dir.display())))?;
    let db = ThrowawayDb::create(&env.services.database_url, &run_id).await?;
    progress.note(&format!(
        "run {run_id}: throwaway database {}, files in {}",
        db.name,
        work_dir.display()
    ));
    let mut topics = Vec::new();
    let outcome = tokio::select! {
        result = phases(&plan, &env, &ready, &db, &run_id, &work_dir, progress, &mut topics) => result,
        _ = tokio::signal::ctrl_c() => Err(RunError::Interrupted),
    };
    clean_up(&env, &db, &topics, progress).await;
    let phases = outcome?;
    let run = RunInfo {
        run_id: run_id.clone(),
        work_dir: work_dir.display().to_string(),
        started_at,
        postgres_version: ready.postgres_version.clone(),
        pulsar_version: ready.pulsar_version.clone(),
        payload_bytes: plan.workload.payload_bytes,
        keys: plan.workload.keys,
        key_dist: plan.workload.key_dist.to_string(),
        relay_settings: plan.relay.describe(),
        relay_stop: phases.relay_stop,
    };
    Ok(Summary::build(
        match plan.mode {
            crate::cli::Mode::Drain => "drain",
            crate::cli::Mode::Steady => "steady",
            crate::cli::Mode::Both => "both",
        },
        plan.relay.partitions(),
        plan.relay.batch_size(),
        phases.drain,
        phases.steady,
        phases.baselines,
        phases.failures,
        run,
    ))
}
