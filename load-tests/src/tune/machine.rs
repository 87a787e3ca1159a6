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

/// `model name` of the first CPU in /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    use procfs::Current;
    let info = procfs::CpuInfo::current().ok()?;
    info.model_name(0).map(|name| name.trim().to_owned())
}

impl Machine {
    pub fn describe(postgres_version: &str, pulsar_version: &str) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            memory_gib: crate::procstat::mem_total_gib().unwrap_or(0.0),
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
    fn describes_this_machine() {
        let machine = Machine::describe("17", "4.0");
        assert!(machine.cpus > 0);
        assert!(machine.memory_gib > 0.0, "{machine:?}");
        assert!(!machine.kernel.is_empty(), "{machine:?}");
        // Not every architecture has `model name` (ARM says `Processor` or nothing).
        if cfg!(target_arch = "x86_64") {
            assert_ne!(machine.cpu_model, "unknown");
        }
    }
}
