//! CPU time and memory of processes, read from /proc (Linux).
//!
//! Contract: [`cpu_ticks`] is utime+stime of `/proc/<pid>/stat` in clock ticks;
//! [`peak_rss_kb`] is `VmHWM` of `/proc/<pid>/status` (the high-water mark of resident
//! memory), which [`reset_peak_rss`] resets (writing `5` to `clear_refs`) so that a phase
//! can measure its own peak. [`CpuSnapshot`] samples the relay, the broker (the Pulsar
//! JVM listening on the run's port, else every Pulsar JVM), PostgreSQL (every `postgres` process), this driver and the whole
//! machine at once, so a phase can say where the CPU went. Missing processes read as 0.

use std::path::Path;

/// utime + stime from the text of /proc/<pid>/stat.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Vm*:` line of /proc/<pid>/status, in kB.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// (busy, total) jiffies from the first line of /proc/stat.
pub fn parse_machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    parse_status_kb(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmHWM",
    )
}

pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
pub fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Pids whose `comm` or command line matches.
fn pids_matching(matches: impl Fn(&str, &str) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let dir = Path::new("/proc").join(pid.to_string());
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            matches(comm.trim(), &cmdline)
        })
        .collect()
}

/// Inodes of sockets listening on `port`, from the text of /proc/net/tcp or tcp6.
pub fn parse_listening_inodes(net_tcp: &str, port: u16) -> Vec<u64> {
    net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The Pulsar JVMs on this machine; when one of them listens on `port` (the broker the
/// run talks to), only that one.
pub fn broker_pids(port: Option<u16>) -> Vec<u32> {
    let all = pids_matching(|_, cmdline| {
        cmdline.contains("PulsarStandaloneStarter") || cmdline.contains("PulsarBrokerStarter")
    });
    let Some(port) = port else {
        return all;
    };
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| parse_listening_inodes(&text, port))
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let owner: Vec<u32> = all
        .iter()
        .copied()
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                        .any(|target| inodes.contains(&target.to_string_lossy().into_owned()))
                })
                .unwrap_or(false)
        })
        .collect();
    if owner.is_empty() {
        all
    } else {
        owner
    }
}

pub fn postgres_pids() -> Vec<u32> {
    pids_matching(|comm, _| comm == "postgres")
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
    relay_backends: std::collections::HashSet<u32>,
    /// (party, pid) -> (ticks at start or 0 when it appeared later, last ticks seen)
    seen: std::collections::HashMap<(Party, u32), (u64, u64)>,
    machine_start: (u64, u64),
    machine_last: (u64, u64),
}

fn machine_ticks() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine_ticks(&s))
        .unwrap_or((0, 0))
}

impl CpuTracker {
    /// Starts following; processes alive now count from their current ticks.
    pub fn start(relay_pid: Option<u32>, broker_pids: &[u32]) -> Self {
        let machine = machine_ticks();
        let mut tracker = CpuTracker {
            broker_pids: broker_pids.to_vec(),
            relay_pid,
            relay_backends: std::collections::HashSet::new(),
            seen: std::collections::HashMap::new(),
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

    #[test]
    fn stat_ticks_survive_odd_process_names() {
        let stat = "1234 (outbox (relay) x) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
    }

    #[test]
    fn status_fields_in_kb() {
        let status = "Name:\touter\nVmPeak:\t  99 kB\nVmHWM:\t   41234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(41234));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(40000));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn machine_ticks_count_idle_and_iowait_as_idle() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n";
        assert_eq!(parse_machine_ticks(stat), Some((150, 1000)));
    }

    #[test]
    fn listening_sockets_by_port() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:19FA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n\
   1: 0100007F:19FA 0100007F:D0D0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0\n";
        assert_eq!(parse_listening_inodes(tcp, 6650), vec![4242]);
        assert_eq!(parse_listening_inodes(tcp, 8080), vec![4444]);
    }

    #[test]
    fn tracker_counts_what_the_driver_used_since_start() {
        let mut tracker = CpuTracker::start(None, &[]);
        let start = cpu_ticks(std::process::id()).unwrap();
        let mut x = 0u64;
        while cpu_ticks(std::process::id()).unwrap() < start + 2 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        tracker.sample();
        let used = tracker.used();
        assert!(used.driver > 0.0, "{used:?}");
        assert_eq!(used.relay, 0.0);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(peak_rss_kb(std::process::id()).unwrap_or(0) > 0);
    }
}
