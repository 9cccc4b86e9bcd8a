//! What the host's benches share: reading this process's memory from /proc, medians, units,
//! the machine line, host services that do nothing, and writing a report into its section of
//! docs/benchmarks.md.
#![allow(dead_code)] // each bench uses a different subset

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use wasm_operator::runtime::HostServices;
use wasm_operator_abi::{HostError, HostResponse, HttpRequest, KubeRequest, LogRecord};
use wasm_operator_test_support::workspace_root;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;

/// A `kB` field of /proc/self/status (`"VmRSS:"`, `"VmHWM:"`), in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// This process's resident memory, in bytes.
pub fn rss() -> u64 {
    status_kib("VmRSS:") * KIB
}

/// The peak of this process's resident memory since start or [`reset_peak_rss`], in bytes.
pub fn peak_rss() -> u64 {
    status_kib("VmHWM:") * KIB
}

/// Resets VmHWM to the current RSS, so the next reading is the peak of what follows.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (clear_refs)");
}

pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

/// `<CPU model>, <n> cores available`.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

/// Host services that answer every call with "denied" and keep nothing, so neither time nor
/// RSS figures count host work.
pub struct NoServices;

impl HostServices for NoServices {
    fn kube(&self, _request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(HostResponse::Error(HostError::capability_denied(
            "no services in this benchmark",
        )))
        .boxed()
    }
    fn http(&self, _request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        futures::future::ready(HostResponse::Error(HostError::capability_denied(
            "no services in this benchmark",
        )))
        .boxed()
    }
    fn log(&self, _record: LogRecord) {}
}

/// Replaces the text between `<!-- {name}:begin -->` and `<!-- {name}:end -->` in
/// docs/benchmarks.md with `report`, or appends the marked section if it is not there yet.
pub fn write_report(name: &str, report: &str) {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let path = workspace_root().join("docs").join("benchmarks.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let section = format!("{begin}\n{report}{end}\n\n");
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(start), Some(stop)) if start < stop => format!(
            "{}{section}{}",
            &existing[..start],
            existing[stop + end.len()..].trim_start_matches('\n')
        ),
        _ => format!(
            "{}\n\n{}\n",
            existing.trim_end_matches('\n'),
            section.trim_end_matches('\n')
        ),
    };
    std::fs::write(&path, updated).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    eprintln!("wrote {}", path.display());
}
