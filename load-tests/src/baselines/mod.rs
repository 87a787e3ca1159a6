//! Baselines measured in the same run as the relay, same payload size and producer
//! batching, on the same broker, one after the other (never while the relay runs):
//! - [`raw`]: the `pulsar` crate's producer alone, the relay's ceiling;
//! - [`pulsar_perf`]: the broker's own Java load generator;
//! - [`textbook`]: a naive polling relay, the design to beat.
//!
//! Contract: [`measure`] never fails the run; a baseline that fails or is skipped is
//! reported with its reason and its ratios are left out.

pub mod pulsar_perf;
pub mod raw;
pub mod textbook;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use outbox_adapters::pulsar_client::{Pulsar, TokioExecutor};
use outbox_adapters::PulsarConfig;
use serde::Serialize;

use crate::keys::KeySampler;
use crate::plan::{BaselinePlan, Workload};
use crate::progress::Progress;
use crate::report::thousands;
use crate::services::{self, Services};

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("Pulsar: {0}")]
    Pulsar(String),
    #[error("pulsar-perf: {0}")]
    PulsarPerf(String),
    #[error("PostgreSQL: {0}")]
    Database(String),
}

/// Results, or why each is missing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Baselines {
    pub raw: Option<raw::RawResult>,
    pub raw_missing: Option<String>,
    pub pulsar_perf: Option<pulsar_perf::PerfResult>,
    pub pulsar_perf_missing: Option<String>,
    pub textbook: Option<textbook::TextbookResult>,
    pub textbook_missing: Option<String>,
}

impl Baselines {
    pub fn skipped(reason: &str) -> Self {
        Baselines {
            raw_missing: Some(reason.into()),
            pulsar_perf_missing: Some(reason.into()),
            textbook_missing: Some(reason.into()),
            ..Default::default()
        }
    }

    pub fn raw_rate(&self) -> Option<f64> {
        self.raw.as_ref().map(|r| r.events_per_s)
    }

    pub fn perf_rate(&self) -> Option<f64> {
        self.pulsar_perf.as_ref().map(|r| r.events_per_s)
    }

    pub fn textbook_rate(&self) -> Option<f64> {
        self.textbook.as_ref().map(|r| r.events_per_s)
    }
}

/// Everything the baselines need.
pub struct BaselineContext<'a> {
    pub services: &'a Services,
    pub client: &'a Pulsar<TokioExecutor>,
    pub database_url: &'a str,
    pub run_id: &'a str,
    pub work_dir: &'a Path,
    pub keys: Arc<KeySampler>,
    pub workload: &'a Workload,
    /// The relay's producer settings (batching, compression), URL included.
    pub pulsar: &'a PulsarConfig,
    pub plan: &'a BaselinePlan,
    pub pulsar_home: Result<PathBuf, String>,
    pub progress: &'a Progress,
}

impl std::fmt::Debug for BaselineContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaselineContext")
            .field("run_id", &self.run_id)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// Runs the baselines in turn; returns them and the topics they wrote to.
pub async fn measure(ctx: &BaselineContext<'_>) -> (Baselines, Vec<String>) {
    let mut out = Baselines::default();
    let mut topics = Vec::new();
    let plan = ctx.plan;
    if !plan.enabled {
        return (Baselines::skipped("--skip-baselines"), topics);
    }
    let note = |text: String| ctx.progress.note(&text);

    let topic = format!("load_{}_raw", ctx.run_id);
    note(format!(
        "baseline: raw producer loop, {} messages, {} producer(s), batching {}",
        plan.raw_events, plan.raw_producers, ctx.pulsar.batching
    ));
    match raw::run(
        ctx.client,
        &topic,
        plan.raw_events,
        plan.raw_producers,
        ctx.pulsar,
        ctx.keys.clone(),
        ctx.workload.payload_bytes,
    )
    .await
    {
        Ok(result) => {
            note(format!(
                "baseline: raw producer {} events/s",
                thousands(result.events_per_s)
            ));
            out.raw = Some(result);
        }
        Err(e) => {
            note(format!("baseline: raw producer failed: {e}"));
            out.raw_missing = Some(e.to_string());
        }
    }
    topics.push(topic);

    if !plan.pulsar_perf {
        out.pulsar_perf_missing = Some("--skip-pulsar-perf".into());
    } else {
        match &ctx.pulsar_home {
            Err(reason) => {
                note(format!("baseline: pulsar-perf skipped: {reason}"));
                out.pulsar_perf_missing = Some(reason.clone());
            }
            Ok(home) => {
                let topic = format!("load_{}_perf", ctx.run_id);
                note(format!(
                    "baseline: {}/bin/pulsar-perf produce, {} messages",
                    home.display(),
                    plan.raw_events
                ));
                let log = ctx.work_dir.join("pulsar-perf.log");
                match pulsar_perf::run(
                    home,
                    &ctx.services.pulsar_url,
                    &ctx.services.admin_url,
                    &topic,
                    plan.raw_events,
                    plan.raw_producers,
                    ctx.workload.payload_bytes,
                    ctx.pulsar,
                    &log,
                    Duration::from_secs(600),
                )
                .await
                {
                    Ok(result) => {
                        note(format!(
                            "baseline: pulsar-perf {} events/s",
                            thousands(result.events_per_s)
                        ));
                        out.pulsar_perf = Some(result);
                    }
                    Err(e) => {
                        note(format!("baseline: pulsar-perf failed: {e}"));
                        out.pulsar_perf_missing = Some(e.to_string());
                    }
                }
                topics.push(topic);
            }
        }
    }

    let topic = format!("load_{}_textbook", ctx.run_id);
    note(format!(
        "baseline: textbook relay, {} rows, time box {:.0} s",
        plan.textbook_events,
        plan.textbook_time_box.as_secs_f64()
    ));
    let result = match services::connect(ctx.database_url).await {
        Ok(mut conn) => textbook::run(
            &mut conn,
            ctx.client,
            &topic,
            plan.textbook_events,
            ctx.workload.keys,
            ctx.workload.payload_bytes,
            plan.textbook_time_box,
        )
        .await
        .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(result) => {
            note(format!(
                "baseline: textbook relay {} events/s ({} of {} rows{})",
                thousands(result.events_per_s),
                result.published,
                result.prefilled,
                if result.time_boxed {
                    ", time-boxed"
                } else {
                    ""
                }
            ));
            out.textbook = Some(result);
        }
        Err(e) => {
            note(format!("baseline: textbook relay failed: {e}"));
            out.textbook_missing = Some(e);
        }
    }
    topics.push(topic);
    (out, topics)
}
