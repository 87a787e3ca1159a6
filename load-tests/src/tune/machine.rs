//! The machine a sweep ran on, for the benchmark page.
//!
//! Contract: read from /proc (CPU model, memory, kernel) and the services' answers;
//! a value that cannot be read is "unknown", never an error.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub postgres_version: String,
    pub pulsar_version: String,
    pub date: String,
}

/// `model name` of /proc/cpuinfo.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// MemTotal of /proc/meminfo, GiB.
pub fn parse_mem_total_gib(meminfo: &str) -> Option<f64> {
    crate::procstat::parse_status_kb(meminfo, "MemTotal").map(|kb| kb as f64 / 1024.0 / 1024.0)
}

impl Machine {
    pub fn describe(postgres_version: &str, pulsar_version: &str) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: parse_cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            memory_gib: parse_mem_total_gib(&read("/proc/meminfo")).unwrap_or(0.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            postgres_version: postgres_version.to_owned(),
            pulsar_version: pulsar_version.to_owned(),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            parse_cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        let meminfo = "MemTotal:       25165824 kB\nMemFree:        1 kB\n";
        assert_eq!(parse_mem_total_gib(meminfo), Some(24.0));
    }
}
