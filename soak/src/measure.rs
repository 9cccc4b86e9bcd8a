//! What the experiments measure, and how: the host's Prometheus metrics (summed over label
//! sets), a process's resident memory and CPU time from /proc, and latency percentiles.

use std::time::Duration;

/// One scrape of a Prometheus text endpoint: every sample as (name, labels, value).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    samples: Vec<Sample>,
}

type Sample = (String, Vec<(String, String)>, f64);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value: f64 = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                    None => (series, Vec::new()),
                };
                Some((name.to_owned(), labels, value))
            })
            .collect();
        Metrics { samples }
    }

    /// The sum of `name` over every label set that has all of `matching`.
    pub fn sum(&self, name: &str, matching: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(sample, labels, _)| {
                sample == name
                    && matching
                        .iter()
                        .all(|(key, value)| labels.iter().any(|(k, v)| k == key && v == value))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    /// `name` summed per value of `label`, e.g. reconcile errors per reason.
    pub fn by_label(&self, name: &str, label: &str) -> Vec<(String, f64)> {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for (sample, labels, value) in &self.samples {
            if sample != name {
                continue;
            }
            let Some((_, key)) = labels.iter().find(|(k, _)| k == label) else {
                continue;
            };
            match totals.iter_mut().find(|(k, _)| k == key) {
                Some((_, total)) => *total += value,
                None => totals.push((key.clone(), *value)),
            }
        }
        totals.sort_by(|a, b| a.0.cmp(&b.0));
        totals
    }
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    // Label values here are operator names, states and reasons: no commas or escaped quotes.
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

/// The change of every `name` series (summed per `label`) between two scrapes, non-zero only.
pub fn delta_by_label(
    before: &Metrics,
    after: &Metrics,
    name: &str,
    label: &str,
) -> Vec<(String, f64)> {
    after
        .by_label(name, label)
        .into_iter()
        .map(|(key, value)| {
            let old = before.sum(name, &[(label, key.as_str())]);
            (key, value - old)
        })
        .filter(|(_, change)| *change > 0.0)
        .collect()
}

/// VmRSS of `pid` in bytes, or `None` once the process is gone.
pub fn process_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time `pid` has used so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after its closing paren.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / per_second))
}

/// The pid of the first process whose command line contains every one of `words`.
pub fn find_process(words: &[&str]) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            words
                .iter()
                .all(|word| cmdline.contains(word))
                .then_some(pid)
        })
}

/// CPU used by a set of processes over a window, as a share of one core.
pub struct CpuWindow {
    start: std::time::Instant,
    processes: Vec<(String, u32, Duration)>,
}

impl CpuWindow {
    pub fn start(processes: &[(&str, u32)]) -> CpuWindow {
        CpuWindow {
            start: std::time::Instant::now(),
            processes: processes
                .iter()
                .map(|(name, pid)| {
                    (
                        name.to_string(),
                        *pid,
                        process_cpu(*pid).unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    /// (name, cores used on average) for each process since the start.
    pub fn finish(&self) -> Vec<(String, f64)> {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-3);
        self.processes
            .iter()
            .map(|(name, pid, before)| {
                let used = process_cpu(*pid).unwrap_or(*before).saturating_sub(*before);
                (name.clone(), used.as_secs_f64() / elapsed)
            })
            .collect()
    }
}

/// The `q`-quantile (0..=1) of `samples` by nearest rank; zero when empty.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_groups_samples_across_label_sets() {
        let text =
            "# HELP x y\nwasm_operator_reconcile_errors_total{operator=\"a\",reason=\"host\"} 2\n\
                    wasm_operator_reconcile_errors_total{operator=\"b\",reason=\"host\"} 3\n\
                    wasm_operator_reconcile_errors_total{operator=\"b\",reason=\"guest\"} 1\n\
                    wasm_operator_watches_open 4\n";
        let metrics = Metrics::parse(text);
        assert_eq!(
            metrics.sum("wasm_operator_reconcile_errors_total", &[]),
            6.0
        );
        assert_eq!(
            metrics.sum("wasm_operator_reconcile_errors_total", &[("operator", "b")]),
            4.0
        );
        assert_eq!(metrics.sum("wasm_operator_watches_open", &[]), 4.0);
        assert_eq!(
            metrics.by_label("wasm_operator_reconcile_errors_total", "reason"),
            [("guest".to_string(), 1.0), ("host".to_string(), 5.0)]
        );
        let before = Metrics::parse(
            "wasm_operator_reconcile_errors_total{operator=\"a\",reason=\"host\"} 1\n",
        );
        assert_eq!(
            delta_by_label(
                &before,
                &metrics,
                "wasm_operator_reconcile_errors_total",
                "reason"
            ),
            [("guest".to_string(), 1.0), ("host".to_string(), 4.0)]
        );
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&samples, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
