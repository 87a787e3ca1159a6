//! `tune` flags → [`TunePlan`] (see the parent module for the rules).

use std::time::Duration;

use super::*;
use crate::cli::TuneArgs;

fn sweep_values(
    flag: &str,
    values: &Option<Vec<u32>>,
    default: &[u32],
) -> Result<Vec<u32>, UsageError> {
    let values = values.clone().unwrap_or_else(|| default.to_vec());
    if values.is_empty() {
        return Err(UsageError::new(flag, "give at least one value"));
    }
    if values.contains(&0) {
        return Err(UsageError::new(flag, "values must be at least 1"));
    }
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != values.len() {
        return Err(UsageError::new(flag, "a value is given twice"));
    }
    Ok(sorted)
}

impl TunePlan {
    pub fn from_args(args: &TuneArgs) -> Result<Self, UsageError> {
        let quick = args.quick;
        let partitions = sweep_values(
            "--partitions",
            &args.partitions,
            if quick {
                &[1, 4]
            } else {
                &DEFAULT_TUNE_PARTITIONS
            },
        )?;
        let batch_sizes = sweep_values(
            "--batch-sizes",
            &args.batch_sizes,
            if quick {
                &[1000]
            } else {
                &DEFAULT_TUNE_BATCH_SIZES
            },
        )?;
        at_least_one("--drain-events", args.drain_events)?;
        at_least_one("--rate", args.rate)?;
        seconds("--steady-seconds", args.steady_seconds, false)?;
        seconds("--warmup", args.warmup, true)?;
        let drain_events = args.drain_events.unwrap_or(if quick {
            20_000
        } else {
            DEFAULT_TUNE_DRAIN_EVENTS
        });
        let workload = workload(&args.workload, Some(drain_events))?;
        let drain = fill(&args.fill, drain_events, workload.keys)?;
        let (writer_count, _) = writers(&args.writers)?;
        // Several events per transaction, so that the writers reach the offered rate on
        // 2 cores (one event per transaction commits about 1,500/s there) and every
        // point is measured at the same rate.
        let events_per_tx = args
            .writers
            .events_per_tx
            .unwrap_or(DEFAULT_TUNE_EVENTS_PER_TX);
        let steady_seconds = args.steady_seconds.unwrap_or(if quick {
            5.0
        } else {
            DEFAULT_TUNE_STEADY_SECONDS
        });
        let warmup = args.warmup.unwrap_or(DEFAULT_WARMUP_SECONDS);
        if warmup >= steady_seconds {
            return Err(UsageError::new(
                "--warmup",
                format!("{warmup} s leaves nothing of a {steady_seconds} s steady phase"),
            ));
        }
        let steady = SteadyPlan {
            writers: writer_count,
            events_per_tx,
            rate: Rate::PerSecond(args.rate.unwrap_or(DEFAULT_RATE)),
            stop: SteadyStop::After(Duration::from_secs_f64(steady_seconds)),
            warmup: Duration::from_secs_f64(warmup),
        };
        let relay = RelaySettings::parse(None, None, &args.relay_set)?;
        if relay.sets_key("partitions") || relay.sets_key("batch_size") {
            return Err(UsageError::new(
                "--relay-set",
                "partitions and batch_size are swept: use --partitions and --batch-sizes",
            ));
        }
        for &p in &partitions {
            for &b in &batch_sizes {
                relay.with_point(p, b)?;
            }
        }
        let baselines = baselines(
            &args.baselines,
            drain_events,
            // The relay's default partition count: the sweep's middle ground.
            outbox_engine::config::DEFAULT_PARTITIONS as usize,
            if quick {
                10_000
            } else {
                DEFAULT_TEXTBOOK_EVENTS
            },
            if quick {
                10.0
            } else {
                DEFAULT_TEXTBOOK_SECONDS
            },
        )?;
        Ok(TunePlan {
            quick,
            partitions,
            batch_sizes,
            workload,
            drain,
            steady,
            relay,
            baselines,
            output: args.output.clone(),
            plots_dir: args.plots_dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn tune(args: &str) -> Result<TunePlan, UsageError> {
        let argv: Vec<&str> = ["outbox-load", "tune"]
            .into_iter()
            .chain(args.split_whitespace())
            .collect();
        match Cli::try_parse_from(argv).expect("clap parse").command {
            Command::Tune(args) => TunePlan::from_args(&args),
            Command::Load(_) => unreachable!(),
        }
    }

    fn flag_of(result: Result<impl std::fmt::Debug, UsageError>) -> String {
        result.expect_err("expected a usage error").flag
    }

    #[test]
    fn tune_quick_is_small_and_explicit_flags_win() {
        let plan = tune("--quick").unwrap();
        assert_eq!(plan.partitions, vec![1, 4]);
        assert_eq!(plan.batch_sizes, vec![1000]);
        assert!(plan.drain.events <= 20_000);
        let plan = tune("--quick --partitions 2,8").unwrap();
        assert_eq!(plan.partitions, vec![2, 8]);
        let full = tune("").unwrap();
        assert_eq!(full.partitions, vec![1, 2, 4, 8, 16]);
        assert_eq!(full.batch_sizes, vec![250, 1000, 4000]);
        assert_eq!(full.drain.events, 200_000);
        assert_eq!(full.steady.events_per_tx, DEFAULT_TUNE_EVENTS_PER_TX);
        assert_eq!(tune("--events-per-tx 1").unwrap().steady.events_per_tx, 1);
    }

    #[test]
    fn tune_rejects_bad_sweeps() {
        assert_eq!(flag_of(tune("--partitions 1,0")), "--partitions");
        assert_eq!(flag_of(tune("--partitions 2,2")), "--partitions");
        assert_eq!(flag_of(tune("--partitions 2000")), "--partitions");
        assert_eq!(flag_of(tune("--batch-sizes 0")), "--batch-sizes");
        assert_eq!(flag_of(tune("--relay-set partitions=3")), "--relay-set");
    }
}
