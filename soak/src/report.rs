//! What one experiment reports, how a [`Window`] collects it from the host and the workload,
//! and how the reports become docs/reliability.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::host::Host;
use crate::measure::{delta_by_label, quantile, CpuWindow, Metrics};
use crate::rings::{Convergence, Load, Rings};

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub name: String,
    /// What was done, in a sentence.
    pub setup: String,
    pub load: Load,
    pub reconciles: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// How late the harness's own watch showed the changes (p50, p99): included in the latency.
    pub watch_lag: (Duration, Duration),
    pub rss_max: u64,
    pub rss_end: u64,
    pub swap_outs: f64,
    pub swap_ins: f64,
    pub swap_failures: Vec<(String, f64)>,
    pub errors: Vec<(String, f64)>,
    /// CPU used over the window, in cores, per process.
    pub cpu: Vec<(String, f64)>,
    pub convergence: Convergence,
    /// Figures and observations particular to the experiment.
    pub findings: Vec<String>,
    /// Expectations the experiment checked that did not hold (empty = passed).
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.convergence.converged && self.failures.is_empty()
    }

    /// Records `expectation` as failed unless `held`.
    pub fn check(&mut self, held: bool, expectation: impl Into<String>) {
        if !held {
            self.failures.push(expectation.into());
        }
    }
}

/// The start of an experiment's measurements: metrics and CPU now, memory samples from now on.
pub struct Window {
    metrics: Metrics,
    cpu: CpuWindow,
    /// The host was restarted in the window: its counters started again from zero.
    restarted: bool,
}

impl Window {
    pub async fn open(
        host: &Host,
        rings: &Rings,
        others: &[(&'static str, u32)],
    ) -> anyhow::Result<Window> {
        let metrics = host.metrics().await?;
        host.reset_rss();
        rings.reset_measurements();
        let mut processes = vec![
            ("wasm-operator (host)", host.pid()),
            ("soak harness", std::process::id()),
        ];
        processes.extend_from_slice(others);
        Ok(Window {
            metrics,
            cpu: CpuWindow::start(&processes),
            restarted: false,
        })
    }

    /// Marks that the host process was replaced in the window (killed and started again).
    pub fn host_restarted(&mut self) {
        self.restarted = true;
    }

    /// The report of everything since [`Window::open`], with the host's metrics as they are now.
    pub async fn close(
        self,
        name: &str,
        setup: String,
        host: &Host,
        rings: &Rings,
        load: Load,
        convergence: Convergence,
    ) -> anyhow::Result<Report> {
        let now = host.metrics().await?;
        let before = if self.restarted {
            Metrics::default()
        } else {
            self.metrics
        };
        let delta = |name: &str| now.sum(name, &[]) - before.sum(name, &[]);
        let latencies = rings.take_latencies();
        let lags = rings.take_watch_lags();
        let (rss_max, rss_end) = host.rss();
        Ok(Report {
            name: name.to_owned(),
            setup,
            load,
            reconciles: delta("wasm_operator_reconciles_total"),
            latency_p50: quantile(&latencies, 0.5),
            latency_p99: quantile(&latencies, 0.99),
            watch_lag: (quantile(&lags, 0.5), quantile(&lags, 0.99)),
            rss_max,
            rss_end,
            swap_outs: delta("wasm_operator_swap_outs_total"),
            swap_ins: delta("wasm_operator_swap_ins_total"),
            swap_failures: delta_by_label(
                &before,
                &now,
                "wasm_operator_swap_failures_total",
                "kind",
            ),
            errors: delta_by_label(
                &before,
                &now,
                "wasm_operator_reconcile_errors_total",
                "reason",
            ),
            cpu: self.cpu.finish(),
            convergence,
            findings: Vec::new(),
            failures: Vec::new(),
        })
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn pairs(list: &[(String, f64)]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|(key, value)| format!("{key} {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per experiment, for a terminal.
pub fn summary_line(report: &Report) -> String {
    format!(
        "{}: {} ({} changes, p50 {}, p99 {}, {} reconciles, converged in {:.1} s{})",
        report.name,
        if report.passed() { "passed" } else { "FAILED" },
        report.load.applied,
        ms(report.latency_p50),
        ms(report.latency_p99),
        report.reconciles,
        report.convergence.took.as_secs_f64(),
        if report.passed() {
            String::new()
        } else {
            format!(
                "; {}; lost: {:?}",
                report.failures.join("; "),
                report.convergence.lost.iter().take(5).collect::<Vec<_>>()
            )
        }
    )
}

/// docs/reliability.md: how to run it, then the table and each experiment's details.
pub fn markdown(
    reports: &[Report],
    command: &str,
    machine: &str,
    profile: &str,
    took: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Reliability under load and faults\n");
    let _ = writeln!(
        out,
        "Written by the soak harness (`soak/`); every figure on this page is from one run of\n\
         `{command}` (profile `{profile}`, {:.1} min), on {machine}.\n\
         Regenerate it with that command; `make test` runs the `short` profile of the same\n\
         experiments and fails when one of them does.\n",
        took.as_secs_f64() / 60.0
    );
    let _ = writeln!(
        out,
        "Each experiment runs the real `wasm-operator run` binary with ring operators (Rust, Go and\n\
         TinyGo in turn; each reads TestResources in a namespace of its own and writes their nonce\n\
         to another) against a control plane of the harness's own. A change is a merge patch of an\n\
         input's nonce; its latency runs from the API server's acknowledgement to the moment the\n\
         operator's write shows in the harness's watch. *Converged* means that every change was\n\
         seen carried out and that one list of every TestResource shows each output carrying its\n\
         input's nonce (what the spec demands, computed by the harness); *lost* counts the keys\n\
         that did not, at the deadline. RSS is the host's, sampled every 250 ms during the\n\
         experiment; reconciles, swaps and errors are the host's own counters over the experiment.\n"
    );
    let _ = writeln!(
        out,
        "| experiment | changes (refused) | reconciles | p50 / p99 | host RSS max / end | swap-outs / -ins | errors by reason | converged (lost) |\n|---|---|---|---|---|---|---|---|"
    );
    for report in reports {
        let _ = writeln!(
            out,
            "| {} | {} ({}) | {} | {} / {} | {} / {} | {} / {} | {} | {} |",
            report.name,
            report.load.applied,
            report.load.refused,
            report.reconciles,
            ms(report.latency_p50),
            ms(report.latency_p99),
            mib(report.rss_max),
            mib(report.rss_end),
            report.swap_outs,
            report.swap_ins,
            pairs(&report.errors),
            if report.convergence.converged {
                format!("yes, {:.1} s (0)", report.convergence.took.as_secs_f64())
            } else {
                format!("**no** ({})", report.convergence.lost.len())
            },
        );
    }
    for report in reports {
        let _ = writeln!(out, "\n## {}\n\n{}\n", report.name, report.setup);
        let _ = writeln!(
            out,
            "- Changes applied {} ({:.0}/s over {:.1} s), refused or unanswered {}.",
            report.load.applied,
            report.load.rate(),
            report.load.elapsed.as_secs_f64(),
            report.load.refused
        );
        let _ = writeln!(
            out,
            "- The harness's own watch showed the changes p50 {} / p99 {} after their \
             acknowledgement (part of every latency above).",
            ms(report.watch_lag.0),
            ms(report.watch_lag.1)
        );
        let cpu: Vec<String> = report
            .cpu
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect();
        let _ = writeln!(
            out,
            "- CPU over the experiment, in cores: {}.",
            cpu.join(", ")
        );
        let _ = writeln!(
            out,
            "- Swap failures by kind: {}.",
            pairs(&report.swap_failures)
        );
        for finding in &report.findings {
            let _ = writeln!(out, "- {finding}");
        }
        if report.passed() {
            let _ = writeln!(
                out,
                "- Passed: converged with nothing lost, and every check held."
            );
        } else {
            for failure in &report.failures {
                let _ = writeln!(out, "- **Failed:** {failure}");
            }
            for lost in report.convergence.lost.iter().take(10) {
                let _ = writeln!(out, "- **Not converged:** {lost}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n## Fuzzing\n\n\
         Untrusted bytes are fuzzed in every `cargo test`, on stable Rust, from checked-in seeds:\n\
         the messages a guest sends (`abi/tests/decode_no_panic.rs`, corpus in `abi/tests/corpus/`),\n\
         `validate` (`abi/tests/validate_no_panic.rs`) and the snapshot file reader (bit flips,\n\
         truncations and random headers in `host/src/runtime/swap/format.rs`). The cargo-fuzz\n\
         targets `validate` and `messages` in `fuzz/` take the same properties further on nightly;\n\
         commands and figures are in [abi.md](abi.md#fuzzing)."
    );
    out
}
