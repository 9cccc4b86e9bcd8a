//! What one setup's processes use: CPU time from a cgroup v2 of the setup's own (`cpu.stat`
//! `usage_usec`: every thread, exited ones included, to the microsecond), or, where no cgroup v2
//! can be created (not root, no cgroup2 mount), the sum of every thread's
//! `/proc/PID/task/TID/schedstat` (nanoseconds, but a thread that exits in the window takes its
//! time with it); and memory as PSS from `/proc/PID/smaps_rollup`, so that pages shared between
//! the setup's processes (one binary run N times) count once in total, not N times.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A cgroup v2 of one setup: created empty, its processes killed and the group removed on drop.
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates `name` at the root of the cgroup v2 hierarchy; `None` when there is none this
    /// process may write to (the caller falls back to per-thread accounting).
    pub fn create(name: &str) -> Option<Cgroup> {
        let root = cgroup2_mount()?;
        let path = root.join(format!(
            "wasm-operator-density-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir(&path).ok()?;
        let cgroup = Cgroup { path };
        // Without cpu.stat (a kernel before 4.15) there is nothing to gain from it.
        cgroup.usage().ok()?;
        Some(cgroup)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// CPU used by every process that was ever in the group (user + system).
    pub fn usage(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(self.path.join("cpu.stat"))?;
        let usec = stat
            .lines()
            .find_map(|line| line.strip_prefix("usage_usec "))
            .context("cpu.stat has no usage_usec")?
            .trim()
            .parse()?;
        Ok(Duration::from_micros(usec))
    }

    /// Moves process `pid` (all its threads) into the group.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", self.path.display()))
    }

    /// The group's `cgroup.procs`, opened for [`join_in_child`]: a child spawned with it is in
    /// the group before it executes its first instruction.
    pub fn procs_file(&self) -> anyhow::Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.procs"))
            .with_context(|| format!("opening {}/cgroup.procs", self.path.display()))
    }

    /// The processes in the group now.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The setup stopped its processes already; whatever is left is killed (cgroup.kill,
        // Linux 5.14) so that the group can be removed.
        if !self.pids().is_empty() {
            let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// For `CommandExt::pre_exec`: moves the calling (child) process into the group whose
/// `cgroup.procs` is open as `fd` ("0" means the writer itself). Only write(2): safe between
/// fork and exec.
pub fn join_in_child(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: write(2) from a buffer that outlives the call, on a descriptor the parent keeps
    // open until the spawn returns.
    let written = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    if written == 1 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a
/// hybrid system).
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        // Fields: id parent major:minor root mount-point options ... - fstype source options
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        Some(PathBuf::from(before.split_whitespace().nth(4)?))
    })
}

/// How a setup's CPU time is read.
pub enum CpuClock {
    Cgroup(Cgroup),
    /// Per-thread schedstat of these processes.
    Threads(Vec<u32>),
}

/// One reading of a [`CpuClock`].
pub enum CpuReading {
    Total(Duration),
    /// Nanoseconds on CPU per (pid, tid).
    PerThread(HashMap<(u32, u32), u64>),
}

impl CpuClock {
    /// How the figures were taken, for the report.
    pub fn method(&self) -> &'static str {
        match self {
            CpuClock::Cgroup(_) => "cgroup v2 cpu.stat usage_usec",
            CpuClock::Threads(_) => {
                "sum of /proc/PID/task/*/schedstat (threads that exit in the window are missed)"
            }
        }
    }

    pub fn read(&self) -> anyhow::Result<CpuReading> {
        Ok(match self {
            CpuClock::Cgroup(cgroup) => CpuReading::Total(cgroup.usage()?),
            CpuClock::Threads(pids) => {
                let mut threads = HashMap::new();
                for &pid in pids {
                    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                        continue;
                    };
                    for task in tasks.flatten() {
                        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok())
                        else {
                            continue;
                        };
                        let ns = std::fs::read_to_string(task.path().join("schedstat"))
                            .ok()
                            .and_then(|s| s.split_whitespace().next()?.parse().ok());
                        if let Some(ns) = ns {
                            threads.insert((pid, tid), ns);
                        }
                    }
                }
                CpuReading::PerThread(threads)
            }
        })
    }

    /// CPU used since `before`.
    pub fn since(&self, before: &CpuReading) -> anyhow::Result<Duration> {
        Ok(match (before, self.read()?) {
            (CpuReading::Total(before), CpuReading::Total(now)) => now.saturating_sub(*before),
            (CpuReading::PerThread(before), CpuReading::PerThread(now)) => {
                // A thread born in the window counts from zero.
                let ns: u64 = now
                    .iter()
                    .map(|(key, ns)| ns.saturating_sub(before.get(key).copied().unwrap_or(0)))
                    .sum();
                Duration::from_nanos(ns)
            }
            _ => anyhow::bail!("CPU readings of two kinds"),
        })
    }
}

/// Proportional set size of `pid` in bytes (shared pages divided among the processes mapping
/// them), or `None` once the process is gone.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|line| line.starts_with("Pss:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// [`pss_bytes`] summed over `pids`; an error names a process that is gone.
pub fn total_pss(pids: &[u32]) -> anyhow::Result<u64> {
    pids.iter()
        .map(|&pid| pss_bytes(pid).with_context(|| format!("no smaps_rollup for process {pid}")))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_pss_and_its_threads_a_cpu_time() {
        let pss = pss_bytes(std::process::id()).expect("our own smaps_rollup");
        assert!(pss > 1 << 20, "PSS {pss}");
        let clock = CpuClock::Threads(vec![std::process::id()]);
        let before = clock.read().unwrap();
        // Spins until the clock shows 30 ms used (however busy the machine is), at most 30 s.
        let start = Instant::now();
        let mut spin = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            let used = clock.since(&before).unwrap();
            if used >= Duration::from_millis(30) || start.elapsed() > Duration::from_secs(30) {
                break used;
            }
        };
        assert!(
            used >= Duration::from_millis(30),
            "{used:?} after 30 s of spinning"
        );
    }
}
