//! CPU time and memory of processes, read from /proc (Linux) with the `procfs` crate.
//!
//! Contract: [`cpu_ticks`] is utime+stime of `/proc/<pid>/stat` in clock ticks
//! ([`ticks_per_second`] of them per second); [`peak_rss_kb`] is `VmHWM` of
//! `/proc/<pid>/status` (the high-water mark of resident memory), which
//! [`reset_peak_rss`] resets (`clear_refs`) so that a phase can measure its own peak;
//! [`mem_total_gib`] is `MemTotal`. [`CpuSnapshot`] samples the relay, the broker (the
//! Pulsar JVM listening on the run's port, else every Pulsar JVM), PostgreSQL (every
//! `postgres` process), this driver and the whole machine at once, so a phase can say
//! where the CPU went. Missing processes read as 0; nothing here fails.

use std::collections::{HashMap, HashSet};

use procfs::net::TcpState;
use procfs::process::{ClearRefs, FDTarget, Process};
use procfs::{Current, CurrentSI, KernelStats, Meminfo};

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = process(pid)?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    process(pid)?.status().ok()?.vmhwm
}

/// Resets `VmHWM` to the current resident size (Linux 4.0+; needs the right to write
/// the process's `clear_refs`, which its owner and root have).
pub fn reset_peak_rss(pid: u32) -> bool {
    process(pid).is_some_and(|p| p.clear_refs(ClearRefs::PeakRSS).is_ok())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

/// `MemTotal` of /proc/meminfo, GiB.
pub fn mem_total_gib() -> Option<f64> {
    let bytes = Meminfo::current().ok()?.mem_total;
    Some(bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

/// (busy, total) ticks of the whole machine since boot; idle and iowait are not busy.
fn machine_ticks() -> (u64, u64) {
    let Ok(stats) = KernelStats::current() else {
        return (0, 0);
    };
    let t = stats.total;
    let idle = t.idle + t.iowait.unwrap_or(0);
    // guest time is already in user (guest_nice in nice): not added again.
    let total = t.user
        + t.nice
        + t.system
        + t.idle
        + [t.iowait, t.irq, t.softirq, t.steal]
            .iter()
            .map(|v| v.unwrap_or(0))
            .sum::<u64>();
    (total.saturating_sub(idle), total)
}

/// Pids of the processes `wanted` accepts (processes that exit meanwhile are skipped).
fn pids_where(wanted: impl Fn(&Process) -> bool) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter(|p| wanted(p))
        .filter_map(|p| u32::try_from(p.pid()).ok())
        .collect()
}

/// Inodes of the sockets listening on `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> HashSet<u64> {
    let tcp = procfs::net::tcp().unwrap_or_default();
    let tcp6 = procfs::net::tcp6().unwrap_or_default();
    tcp.into_iter()
        .chain(tcp6)
        .filter(|e| e.state == TcpState::Listen && e.local_address.port() == port)
        .map(|e| e.inode)
        .collect()
}

/// Those of `pids` that hold a socket listening on `port`.
fn listening_on(pids: &[u32], port: u16) -> Vec<u32> {
    let inodes = listening_inodes(port);
    pids.iter()
        .copied()
        .filter(|&pid| {
            let Some(fds) = process(pid).and_then(|p| p.fd().ok()) else {
                return false;
            };
            fds.filter_map(Result::ok)
                .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)))
        })
        .collect()
}

/// The Pulsar JVMs on this machine; when one of them listens on `port` (the broker the
/// run talks to), only that one.
pub fn broker_pids(port: Option<u16>) -> Vec<u32> {
    let all = pids_where(|p| {
        p.cmdline().is_ok_and(|args| {
            args.iter().any(|arg| {
                arg.contains("PulsarStandaloneStarter") || arg.contains("PulsarBrokerStarter")
            })
        })
    });
    let Some(port) = port else {
        return all;
    };
    let owner = listening_on(&all, port);
    if owner.is_empty() {
        all
    } else {
        owner
    }
}

pub fn postgres_pids() -> Vec<u32> {
    pids_where(|p| p.stat().is_ok_and(|stat| stat.comm == "postgres"))
}

/// CPU seconds used by each party over a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSnapshot {
    pub relay: f64,
    pub broker: f64,
    /// All PostgreSQL processes, the relay's sessions included.
    pub postgres: f64,
    /// The PostgreSQL backends serving the relay's own sessions.
    pub relay_postgres: f64,
    pub driver: f64,
    /// Busy CPU seconds of the whole machine (all cores).
    pub machine_busy: f64,
    /// Elapsed CPU seconds of the whole machine (all cores).
    pub machine_total: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Party {
    Relay,
    Broker,
    Postgres,
    RelayPostgres,
    Driver,
}

/// Follows the CPU time of the parties over a phase, including processes that start
/// (PostgreSQL backends of new connections, the relay) or exit (backends of closed
/// connections) during it: a process first seen after the start counts from zero, and
/// an exited one keeps its last sample. Call [`CpuTracker::sample`] often (every 250
/// ms): what an exiting process used since its last sample is lost.
#[derive(Debug, Clone)]
pub struct CpuTracker {
    broker_pids: Vec<u32>,
    relay_pid: Option<u32>,
    relay_backends: HashSet<u32>,
    /// (party, pid) -> (ticks at start or 0 when it appeared later, last ticks seen)
    seen: HashMap<(Party, u32), (u64, u64)>,
    machine_start: (u64, u64),
    machine_last: (u64, u64),
}

impl CpuTracker {
    /// Starts following; processes alive now count from their current ticks.
    pub fn start(relay_pid: Option<u32>, broker_pids: &[u32]) -> Self {
        let machine = machine_ticks();
        let mut tracker = CpuTracker {
            broker_pids: broker_pids.to_vec(),
            relay_pid,
            relay_backends: HashSet::new(),
            seen: HashMap::new(),
            machine_start: machine,
            machine_last: machine,
        };
        for (party, pid) in tracker.parties() {
            if let Some(ticks) = cpu_ticks(pid) {
                tracker.seen.insert((party, pid), (ticks, ticks));
            }
        }
        tracker
    }

    /// The relay started after [`Self::start`]: it counts from zero.
    pub fn set_relay(&mut self, pid: u32) {
        self.relay_pid = Some(pid);
        self.sample();
    }

    /// Marks PostgreSQL backends as serving the relay (from `pg_stat_activity`).
    pub fn set_relay_backends(&mut self, pids: &[u32]) {
        for &pid in pids {
            if self.relay_backends.insert(pid) {
                if let Some(entry) = self.seen.remove(&(Party::Postgres, pid)) {
                    self.seen.insert((Party::RelayPostgres, pid), entry);
                }
            }
        }
    }

    fn parties(&self) -> Vec<(Party, u32)> {
        let mut parties: Vec<(Party, u32)> = postgres_pids()
            .into_iter()
            .map(|pid| {
                if self.relay_backends.contains(&pid) {
                    (Party::RelayPostgres, pid)
                } else {
                    (Party::Postgres, pid)
                }
            })
            .collect();
        parties.extend(self.broker_pids.iter().map(|&pid| (Party::Broker, pid)));
        parties.extend(self.relay_pid.map(|pid| (Party::Relay, pid)));
        parties.push((Party::Driver, std::process::id()));
        parties
    }

    pub fn sample(&mut self) {
        for (party, pid) in self.parties() {
            if let Some(ticks) = cpu_ticks(pid) {
                self.seen
                    .entry((party, pid))
                    .and_modify(|(_, last)| *last = (*last).max(ticks))
                    .or_insert((0, ticks));
            }
        }
        self.machine_last = machine_ticks();
    }

    /// CPU seconds used since the start, per party.
    pub fn used(&self) -> CpuSnapshot {
        let hz = ticks_per_second();
        let sum = |wanted: Party| {
            self.seen
                .iter()
                .filter(|((party, _), _)| *party == wanted)
                .map(|(_, (start, last))| last.saturating_sub(*start))
                .sum::<u64>() as f64
                / hz
        };
        CpuSnapshot {
            relay: sum(Party::Relay),
            broker: sum(Party::Broker),
            postgres: sum(Party::Postgres) + sum(Party::RelayPostgres),
            relay_postgres: sum(Party::RelayPostgres),
            driver: sum(Party::Driver),
            machine_busy: self.machine_last.0.saturating_sub(self.machine_start.0) as f64 / hz,
            machine_total: self.machine_last.1.saturating_sub(self.machine_start.1) as f64 / hz,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU until this process used at least `ticks` more.
    fn burn(ticks: u64) {
        let start = cpu_ticks(std::process::id()).unwrap();
        let mut x = 0u64;
        while cpu_ticks(std::process::id()).unwrap() < start + ticks {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(peak_rss_kb(me).unwrap_or(0) > 0);
        assert!(ticks_per_second() >= 1.0);
        assert!(mem_total_gib().unwrap_or(0.0) > 0.0);
        assert_eq!(
            cpu_ticks(u32::MAX),
            None,
            "a pid that cannot exist reads as none"
        );
    }

    #[test]
    fn machine_ticks_grow_and_busy_stays_within_total() {
        let before = machine_ticks();
        burn(2);
        let after = machine_ticks();
        assert!(before.1 > 0 && before.0 <= before.1, "{before:?}");
        assert!(
            after.0 > before.0 && after.1 > before.1,
            "{before:?} {after:?}"
        );
        assert!(after.0 - before.0 <= after.1 - before.1);
    }

    #[test]
    fn peak_rss_resets_to_the_current_size() {
        let me = std::process::id();
        // 64 MiB touched, then freed (a block this large is unmapped when dropped).
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        drop(block);
        let peak = peak_rss_kb(me).unwrap();
        assert!(reset_peak_rss(me), "cannot write /proc/{me}/clear_refs");
        let after = peak_rss_kb(me).unwrap();
        assert!(
            after + 32 * 1024 < peak,
            "peak {peak} kB, after reset {after} kB"
        );
    }

    #[test]
    fn the_owner_of_a_listening_socket_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(listening_on(&[me], port), vec![me]);
        drop(listener);
        assert!(listening_on(&[me], port).is_empty());
    }

    #[test]
    fn tracker_counts_what_the_driver_used_since_start() {
        let mut tracker = CpuTracker::start(None, &[]);
        burn(2);
        tracker.sample();
        let used = tracker.used();
        assert!(used.driver > 0.0, "{used:?}");
        assert_eq!(used.relay, 0.0);
        assert!(used.machine_busy >= used.driver * 0.5, "{used:?}");
    }
}
