//! `wasm-operator-density`: runs the density benchmark and prints (or writes) its section of
//! docs/benchmarks.md.
//!
//!     wasm-operator-density --profile full --write docs/benchmarks.md
//!
//! Binaries come from WASM_OPERATOR_BIN, DENSITY_RING_KUBE_RS and DENSITY_RING_CONTROLLER_RUNTIME,
//! or are built (debug) when unset. Exits 1 when a measurement failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use wasm_operator_density::report::{self, RunInfo};
use wasm_operator_density::setup::Setup;
use wasm_operator_density::{binaries, run, Profile};

#[derive(Parser)]
#[command(about = "Density benchmark: native ring operators against the wasm-operator host")]
struct Args {
    /// `full` (make bench-density), `quick` (short windows, fewer hops) or `test`.
    #[arg(long, default_value = "full")]
    profile: String,
    /// Overrides the profile's idle window, in seconds.
    #[arg(long)]
    window: Option<u64>,
    /// Overrides the profile's ring counts, e.g. `1,10`.
    #[arg(long, value_delimiter = ',')]
    counts: Vec<usize>,
    /// Only these setups (kube-rs, controller-runtime, host-rust-resident, host-go-swapped, ...).
    #[arg(long, value_delimiter = ',')]
    setups: Vec<String>,
    /// Write the section into this markdown file (between its density markers).
    #[arg(long)]
    write: Option<PathBuf>,
    /// How the run was started and where, for the section's first lines.
    #[arg(long, default_value = "make bench-density")]
    command: String,
    #[arg(long, default_value = "")]
    machine: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run_bench(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("wasm-operator-density: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_bench(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut profile = Profile::by_name(&args.profile).with_context(|| {
        format!(
            "unknown profile {:?}: use full, quick or test",
            args.profile
        )
    })?;
    if let Some(seconds) = args.window {
        profile.idle_window = Duration::from_secs(seconds);
    }
    if !args.counts.is_empty() {
        profile.counts = args.counts.clone();
    }
    let setups: Vec<Setup> = if args.setups.is_empty() {
        Setup::all()
    } else {
        let all = Setup::all();
        args.setups
            .iter()
            .map(|key| {
                all.iter()
                    .copied()
                    .find(|s| s.key() == *key)
                    .with_context(|| {
                        let keys: Vec<String> = all.iter().map(|s| s.key()).collect();
                        format!("unknown setup {key:?}: one of {}", keys.join(", "))
                    })
            })
            .collect::<anyhow::Result<_>>()?
    };
    let binaries = tokio::task::spawn_blocking(binaries::binaries).await??;
    let outcomes = run::run(&profile, &binaries, &setups, |outcome| {
        eprintln!(
            "[{:>5.0} s] {}",
            started.elapsed().as_secs_f64(),
            report::summary_line(outcome)
        )
    })
    .await?;
    let info = RunInfo {
        command: &args.command,
        machine: &args.machine,
        load_at_end: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into()),
        took: started.elapsed(),
    };
    let section = report::markdown(&outcomes, &profile, &info);
    match &args.write {
        Some(path) => {
            report::write_section(path, &section)?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{section}"),
    }
    Ok(outcomes.iter().all(|o| o.result.is_ok()))
}
