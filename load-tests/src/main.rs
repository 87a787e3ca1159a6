//! `outbox-load`: end-to-end load runs and the tuning sweep of the outbox relay, against
//! the real PostgreSQL and Pulsar, with the real `outbox-relay` binary as a child process.
//!
//! ```text
//! outbox-load load --mode drain --events 200000
//! outbox-load load --mode steady --rate 5000 --duration 15 --json
//! outbox-load tune --quick
//! ```
//!
//! Layout: [`cli`] parses, [`plan`] validates (exit 2 before any service is touched),
//! [`run`] orchestrates a load run ([`drain`], [`steady`], [`baselines`]), [`tune`] the
//! sweep, [`report`] prints. Exit codes: 0 verified, 1 failed (lost/reordered events or
//! an error), 2 bad flags, 3 a service unreachable.

mod backlog;
mod baselines;
mod cli;
mod consumer;
mod drain;
mod keys;
mod phase;
mod plan;
mod procstat;
mod progress;
mod relay_config;
mod relay_process;
mod report;
mod run;
mod services;
mod steady;
mod tune;
mod writers;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::plan::{LoadPlan, TunePlan};
use crate::progress::Progress;
use crate::run::{Env, RunError};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,pulsar=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match execute(cli) {
        Ok(code) => code,
        Err(error) => {
            Progress::new().finish();
            eprintln!("outbox-load: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, RunError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Other(format!("cannot start the async runtime: {e}")))
}

fn execute(cli: Cli) -> Result<ExitCode, RunError> {
    let progress = Progress::new();
    match cli.command {
        Command::Load(args) => {
            let plan = LoadPlan::from_args(&args)?;
            let env = Env::from_args(&args.services)?;
            let json = plan.json;
            let summary = runtime()?.block_on(run::load(plan, env, &progress))?;
            progress.finish();
            let human = report::render(&summary);
            if json {
                eprint!("{human}");
                println!(
                    "{}",
                    serde_json::to_string(&summary).map_err(|e| RunError::Other(e.to_string()))?
                );
            } else {
                print!("{human}");
            }
            Ok(if summary.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Tune(args) => {
            let plan = TunePlan::from_args(&args)?;
            let env = Env::from_args(&args.services)?;
            let report = runtime()?.block_on(tune::tune(plan, env, &progress))?;
            let failed: Vec<String> = report
                .points
                .iter()
                .filter(|p| !p.passed())
                .map(|p| format!("p={} b={}", p.partitions, p.batch_size))
                .collect();
            println!("{}", tune::markdown::render(&report));
            if failed.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "outbox-load: points that lost, reordered or errored: {}",
                    failed.join(", ")
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
