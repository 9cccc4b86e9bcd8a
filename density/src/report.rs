//! The figures as markdown: one table per N with ratios against both native setups, and how
//! each figure was taken; written into docs/benchmarks.md between `<!-- density:begin -->` and
//! `<!-- density:end -->`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::measure::Measurement;
use crate::run::Outcome;
use crate::setup::Setup;
use crate::Profile;

const BEGIN: &str = "<!-- density:begin -->";
const END: &str = "<!-- density:end -->";

/// How the run was made, for the section's first lines.
pub struct RunInfo<'a> {
    pub command: &'a str,
    pub machine: &'a str,
    pub load_at_end: String,
    pub took: Duration,
}

/// One line per outcome, for progress output.
pub fn summary_line(outcome: &Outcome) -> String {
    match &outcome.result {
        Ok(m) => format!(
            "{}, N={}: PSS {:.1} MiB, idle CPU {:.2} ms/min ({:.0} s window, settled in {:.0} s{}), hop p50 {:.1} ms p99 {:.1} ms ({} hops{}), startup {:.0} / {:.0} ms",
            outcome.setup,
            outcome.n,
            mib(m.pss),
            ms(m.idle_cpu_per_minute),
            m.window.as_secs_f64(),
            m.settle.as_secs_f64(),
            if m.settled { "" } else { ", NOT quiet" },
            ms(m.hop_p50),
            ms(m.hop_p99),
            m.hops,
            m.swap_ins_in_hops.map(|s| format!(", {s} swap-ins")).unwrap_or_default(),
            ms(m.startup_first),
            ms(m.startup_all),
        ),
        Err(error) => format!("{}, N={}: FAILED: {error}", outcome.setup, outcome.n),
    }
}

/// The section, markers included.
pub fn markdown(outcomes: &[Outcome], profile: &Profile, info: &RunInfo) -> String {
    let mut out = String::new();
    let counts: Vec<String> = profile.counts.iter().map(usize::to_string).collect();
    let cpu_method = outcomes
        .iter()
        .find_map(|o| o.result.as_ref().ok().map(|m| m.cpu_method))
        .unwrap_or("(nothing measured)");
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(
        out,
        "## Density: native operators against the host (`density`)\n"
    );
    let _ = writeln!(
        out,
        "Command: `{}` (profile `{}`: N = {}; a {} s idle window per setup and N; {} one-hop \
         samples per resident setup, {} per swapped one; swapped setups run with `swapAfter: {}`). \
         Machine: {}; load average {} at the end. The run took {:.0} min. Written by \
         `wasm-operator-density` (density/).\n",
        info.command,
        profile.name,
        counts.join(", "),
        profile.idle_window.as_secs(),
        profile.resident_hops,
        profile.swapped_hops,
        profile.swap_after,
        info.machine,
        info.load_at_end,
        info.took.as_secs_f64() / 60.0,
    );
    let _ = writeln!(
        out,
        "Setups, each alone on the machine's control plane and the same N rings (instance *i* reads \
         namespace `soak-i-in`, writes `soak-i-out`): **native kube-rs**, N processes of \
         `density/native-rust` (kube {}, `kube::runtime::Controller`, built with the \
         `release-host` profile like the host); **native controller-runtime**, N processes of \
         `density/native-go` (controller-runtime {}, {}, `-trimpath -ldflags=\"-s -w\"`); and one \
         `wasm-operator run` host (`release-host` profile) running N ring operators built from the \
         Rust, Go or TinyGo example, **resident** (`swapAfter: never`) or **swapped** (every \
         operator swapped out before the window, and again before each round of hops). All \
         three implementations send the same requests (docs/examples.md, \"ring\"); the same \
         check (every output carries its input's nonce) accepts all of them.\n",
        dependency_version(include_str!("../../Cargo.toml"), "kube = { version = \""),
        dependency_version(include_str!("../native-go/go.mod"), "sigs.k8s.io/controller-runtime "),
        go_version(),
    );
    let _ = writeln!(
        out,
        "- **PSS**: `Pss` of `/proc/PID/smaps_rollup`, summed over the setup's processes, taken \
         after the idle window (shared pages, such as one binary's code run N times, count once in \
         the sum).\n\
         - **Idle CPU**: {cpu_method} of a cgroup holding only the setup's processes, over the \
         quiet window, scaled to a minute. The window starts once the setup converged (and, \
         swapped, every operator is out) and then had a second under 5 ms + 0.2 ms per instance \
         of CPU (*settled*); nothing is sent to it during the window.\n\
         - **Hop p50 / p99**: one change at a time to ring input *i* (a merge patch of its \
         nonce), from the API server's acknowledgement to operator *i*'s write showing in the \
         harness's watch (the soak's timing, `soak/src/rings.rs`). Swapped: every hop's operator \
         was swapped out, so the hop includes its swap-in. Nearest-rank percentiles of all \
         samples; with {} samples a swapped p99 is close to the worst hop.\n\
         - **Startup**: from starting the setup's processes to the first output object of any \
         ring (*first*) and to every ring's first output object (*all*), output objects removed \
         before the start; the host's compiled-module cache is warm, as after a restart.\n\
         - Not counted: the control plane (kube-apiserver, etcd) and the harness. A ratio \
         is the setup's figure over the native one at the same N (– where the native one used no \
         measurable CPU); *not settled*: the setup never had such a quiet second within {} s \
         after converging, so its steady idle use is above the threshold and the window started \
         anyway.\n",
        profile.swapped_hops,
        profile.settle_within.as_secs(),
    );
    for &n in &profile.counts {
        let at_n: Vec<&Outcome> = outcomes.iter().filter(|o| o.n == n).collect();
        if at_n.is_empty() {
            continue;
        }
        let native = |setup: Setup| {
            at_n.iter()
                .find(|o| o.setup == setup)
                .and_then(|o| o.result.as_ref().ok())
        };
        let (kube_rs, controller_runtime) =
            (native(Setup::KubeRs), native(Setup::ControllerRuntime));
        let _ = writeln!(out, "### N = {n}\n");
        let _ = writeln!(
            out,
            "| setup | processes | PSS (MiB) | vs kube-rs | vs controller-runtime | idle CPU (ms/min) | vs kube-rs | vs controller-runtime | hop p50 (ms) | hop p99 (ms) | startup: first (ms) | all (ms) |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for outcome in &at_n {
            let m = match &outcome.result {
                Ok(m) => m,
                Err(_) => {
                    let _ = writeln!(
                        out,
                        "| {} | failed (below) | | | | | | | | | | |",
                        outcome.setup
                    );
                    continue;
                }
            };
            let pss_ratio =
                |base: Option<&Measurement>| ratio(m.pss as f64, base.map(|b| b.pss as f64));
            let cpu_ratio = |base: Option<&Measurement>| {
                ratio(
                    ms(m.idle_cpu_per_minute),
                    base.map(|b| ms(b.idle_cpu_per_minute)),
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {} | {:.2}{} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} |",
                outcome.setup,
                m.processes,
                mib(m.pss),
                pss_ratio(kube_rs),
                pss_ratio(controller_runtime),
                ms(m.idle_cpu_per_minute),
                if m.settled { "" } else { " (not settled)" },
                cpu_ratio(kube_rs),
                cpu_ratio(controller_runtime),
                ms(m.hop_p50),
                ms(m.hop_p99),
                ms(m.startup_first),
                ms(m.startup_all),
            );
        }
        let _ = writeln!(out);
    }
    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "Failed measurements:\n");
        for outcome in failures {
            if let Err(error) = &outcome.result {
                let first = error.lines().next().unwrap_or_default();
                let _ = writeln!(out, "- {}, N={}: {first}", outcome.setup, outcome.n);
            }
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "{END}");
    out
}

/// Replaces the density section of the markdown file at `path` (appends it when absent).
pub fn write_section(path: &Path, section: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = &text[end + END.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &text[..begin])
        }
        _ => format!(
            "{}\n{section}",
            text.trim_end_matches('\n').to_owned() + "\n"
        ),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

fn ratio(value: f64, base: Option<f64>) -> String {
    match base {
        Some(base) if base > 0.0 && value / base < 0.01 => "<0.01x".into(),
        Some(base) if base > 0.0 => format!("{:.2}x", value / base),
        _ => "–".into(),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The version after `prefix` on its line of `manifest` (a Cargo.toml or go.mod).
fn dependency_version(manifest: &str, prefix: &str) -> String {
    manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split(['"', ' ']).next())
        .unwrap_or("?")
        .to_owned()
}

/// The Go toolchain the controller-runtime binary is built with.
fn go_version() -> String {
    std::process::Command::new("go")
        .arg("env")
        .arg("GOVERSION")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|v| v.trim().replace("go", "Go "))
        .unwrap_or_else(|| "Go".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_replaces_the_old_one_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("benchmarks.md");
        std::fs::write(&path, format!("# B\n\n{BEGIN}\nold\n{END}\nafter\n")).unwrap();
        write_section(&path, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("# B\n\n{BEGIN}\nnew\n{END}\nafter\n")
        );
        std::fs::write(&path, "# B\n").unwrap();
        write_section(&path, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("# B\n\n{BEGIN}\nnew\n{END}\n")
        );
    }

    #[test]
    fn versions_come_from_the_manifests() {
        assert_eq!(
            dependency_version(
                "a\nkube = { version = \"5\", x }\n",
                "kube = { version = \""
            ),
            "5"
        );
        assert_eq!(
            dependency_version(
                "require (\n\tsigs.k8s.io/controller-runtime v0.25.3\n)",
                "sigs.k8s.io/controller-runtime "
            ),
            "v0.25.3"
        );
        assert_eq!(ratio(3.0, Some(2.0)), "1.50x");
        assert_eq!(ratio(3.0, Some(0.0)), "–");
        assert_eq!(ratio(0.5, Some(100.0)), "<0.01x");
    }
}
