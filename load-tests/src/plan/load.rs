//! `load` flags → [`LoadPlan`] (see the parent module for the rules).

use std::time::Duration;

use super::*;
use crate::cli::LoadArgs;

impl LoadPlan {
    pub fn from_args(args: &LoadArgs) -> Result<Self, UsageError> {
        let drains = matches!(args.mode, Mode::Drain | Mode::Both);
        let steadies = matches!(args.mode, Mode::Steady | Mode::Both);
        let in_drain = "applies to the steady phase: use --mode steady or --mode both";
        if !steadies {
            reject(
                "--duration",
                args.duration.is_some(),
                "applies to the steady phase; a drain ends when its --events backlog is delivered",
            )?;
            reject("--rate", args.rate.is_some(), in_drain)?;
            reject("--max-rate", args.max_rate, in_drain)?;
            reject("--warmup", args.warmup.is_some(), in_drain)?;
            reject(
                "--writers",
                args.writers.writers.is_some(),
                "applies to the steady phase (the drain backlog is filled by --fill-connections)",
            )?;
            reject(
                "--events-per-tx",
                args.writers.events_per_tx.is_some(),
                "applies to the steady phase (the drain backlog uses --fill-batch)",
            )?;
        }
        if !drains {
            let why = "applies to the drain phase: use --mode drain or --mode both";
            reject(
                "--fill-connections",
                args.fill.fill_connections.is_some(),
                why,
            )?;
            reject("--fill-batch", args.fill.fill_batch.is_some(), why)?;
        }
        if args.rate.is_some() && args.max_rate {
            return Err(UsageError::new(
                "--rate/--max-rate",
                "--rate and --max-rate contradict each other: give one",
            ));
        }
        if args.mode == Mode::Steady && args.events.is_some() && args.duration.is_some() {
            return Err(UsageError::new(
                "--duration/--events",
                "the steady phase stops after --duration or after --events, not both",
            ));
        }
        at_least_one("--events", args.events)?;
        at_least_one("--rate", args.rate)?;
        seconds("--duration", args.duration, false)?;
        seconds("--warmup", args.warmup, true)?;
        let (writer_count, events_per_tx) = writers(&args.writers)?;

        let drain_events = drains.then(|| args.events.unwrap_or(DEFAULT_DRAIN_EVENTS));
        let steady_events = (args.mode == Mode::Steady).then_some(args.events).flatten();
        let workload = workload(&args.workload, drain_events.or(steady_events))?;
        let drain = drain_events
            .map(|events| fill(&args.fill, events, workload.keys))
            .transpose()?;
        let steady = if steadies {
            let stop = match steady_events {
                Some(events) => SteadyStop::Events(events),
                None => SteadyStop::After(Duration::from_secs_f64(
                    args.duration.unwrap_or(DEFAULT_STEADY_SECONDS),
                )),
            };
            let warmup = Duration::from_secs_f64(args.warmup.unwrap_or(DEFAULT_WARMUP_SECONDS));
            if let SteadyStop::After(duration) = stop {
                if warmup >= duration {
                    return Err(UsageError::new(
                        "--warmup",
                        format!(
                            "{:.1} s leaves nothing of a {:.1} s steady phase to measure",
                            warmup.as_secs_f64(),
                            duration.as_secs_f64()
                        ),
                    ));
                }
            }
            Some(SteadyPlan {
                writers: writer_count,
                events_per_tx,
                rate: if args.max_rate {
                    Rate::Max
                } else {
                    Rate::PerSecond(args.rate.unwrap_or(DEFAULT_RATE))
                },
                stop,
                warmup,
            })
        } else {
            None
        };
        let relay = RelaySettings::parse(
            args.relay.partitions,
            args.relay.batch_size,
            &args.relay.relay_set,
        )?;
        let default_raw = drain_events.map_or(DEFAULT_RAW_EVENTS_WITHOUT_DRAIN, |e| {
            e.min(DEFAULT_DRAIN_EVENTS)
        });
        let baselines = baselines(
            &args.baselines,
            default_raw,
            relay.partitions() as usize,
            DEFAULT_TEXTBOOK_EVENTS,
            DEFAULT_TEXTBOOK_SECONDS,
        )?;
        Ok(LoadPlan {
            mode: args.mode,
            json: args.json,
            workload,
            drain,
            steady,
            relay,
            baselines,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn load(args: &str) -> Result<LoadPlan, UsageError> {
        let argv: Vec<&str> = ["outbox-load", "load"]
            .into_iter()
            .chain(args.split_whitespace())
            .collect();
        match Cli::try_parse_from(argv).expect("clap parse").command {
            Command::Load(args) => LoadPlan::from_args(&args),
            Command::Tune(_) => unreachable!(),
        }
    }

    fn flag_of(result: Result<impl std::fmt::Debug, UsageError>) -> String {
        result.expect_err("expected a usage error").flag
    }

    #[test]
    fn defaults_resolve() {
        let plan = load("").unwrap();
        assert_eq!(plan.mode, Mode::Both);
        let drain = plan.drain.unwrap();
        assert_eq!(drain.events, 1_000_000);
        assert_eq!(plan.workload.keys, 100_000);
        assert_eq!(plan.workload.payload_bytes, 256);
        let steady = plan.steady.unwrap();
        assert_eq!(steady.rate, Rate::PerSecond(5_000));
        assert_eq!(steady.stop, SteadyStop::After(Duration::from_secs(30)));
        assert_eq!(plan.relay.partitions(), 4);
        assert_eq!(plan.baselines.raw_producers, 4);
        assert_eq!(plan.baselines.raw_events, 1_000_000);
    }

    #[test]
    fn contradictions_name_the_flag() {
        let cases = [
            ("--mode steady --rate 10 --max-rate", "--rate/--max-rate"),
            ("--writers 0", "--writers"),
            ("--events-per-tx 0", "--events-per-tx"),
            ("--mode drain --events 10 --keys 11", "--keys"),
            ("--mode drain --duration 5", "--duration"),
            ("--mode drain --events 100 --duration 5", "--duration"),
            ("--mode drain --rate 100", "--rate"),
            ("--mode drain --writers 3", "--writers"),
            ("--mode steady --fill-batch 10", "--fill-batch"),
            (
                "--mode steady --events 10 --duration 5",
                "--duration/--events",
            ),
            ("--mode steady --events 10 --keys 20", "--keys"),
            ("--keys 0", "--keys"),
            ("--events 0", "--events"),
            ("--rate 0", "--rate"),
            ("--duration=-1", "--duration"),
            ("--duration 0", "--duration"),
            ("--zipf-exponent 1.2", "--zipf-exponent"),
            ("--key-dist zipf --zipf-exponent 0", "--zipf-exponent"),
            ("--payload-bytes 99999999", "--payload-bytes"),
            ("--mode steady --duration 2 --warmup 2", "--warmup"),
            ("--skip-baselines --raw-events 5", "--raw-events"),
            ("--partitions 0", "--partitions"),
            ("--relay-set bogus=1", "--relay-set"),
        ];
        for (args, flag) in cases {
            assert_eq!(flag_of(load(args)), flag, "{args}");
        }
    }

    #[test]
    fn small_backlog_lowers_the_default_key_count() {
        let plan = load("--mode drain --events 5000").unwrap();
        assert_eq!(plan.workload.keys, 5000);
        assert_eq!(plan.baselines.raw_events, 5000);
    }

    #[test]
    fn steady_by_event_count() {
        let plan = load("--mode steady --events 20000 --max-rate --writers 2").unwrap();
        let steady = plan.steady.unwrap();
        assert_eq!(steady.stop, SteadyStop::Events(20_000));
        assert_eq!(steady.rate, Rate::Max);
        assert_eq!(steady.writers, 2);
        assert!(plan.drain.is_none());
        assert_eq!(plan.baselines.raw_events, DEFAULT_RAW_EVENTS_WITHOUT_DRAIN);
    }

    #[test]
    fn zipf_defaults_to_exponent_one() {
        let plan = load("--key-dist zipf").unwrap();
        assert_eq!(plan.workload.key_dist, KeyDist::Zipf { exponent: 1.0 });
    }
}
