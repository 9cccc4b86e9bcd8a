//! `wasm-operator-soak`: runs the soak and fault experiments and prints (or writes) the report.
//!
//!     wasm-operator-soak --profile full --host target/release-host/wasm-operator --write docs/reliability.md
//!
//! Exits 1 when an experiment failed (did not converge, or a check did not hold).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use wasm_operator_soak::{experiments, report, Env, Profile};

#[derive(Parser)]
#[command(about = "Soak and fault experiments against a control plane of their own")]
struct Args {
    /// `full` (make soak: 100 operators, 1,000 changes/s) or `short` (a minute or two).
    #[arg(long, default_value = "full")]
    profile: String,
    /// The host binary to test [default: this workspace's debug build, built if needed].
    #[arg(long)]
    host: Option<PathBuf>,
    /// Write the report (markdown) here, e.g. docs/reliability.md.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Only these experiments (load, outage, kill, disk, memory, egress); repeatable.
    #[arg(long)]
    only: Vec<String>,
    /// How the run was started and where, for the report's first lines.
    #[arg(long, default_value = "make soak")]
    command: String,
    #[arg(long, default_value = "")]
    machine: String,
    /// Keep the work directory (host configs and logs) even when every experiment passed.
    #[arg(long)]
    keep_work_dir: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(profile) = Profile::by_name(&args.profile) else {
        eprintln!("unknown profile {:?}: use full or short", args.profile);
        return ExitCode::from(2);
    };
    match run(args, profile).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("wasm-operator-soak: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args, profile: Profile) -> anyhow::Result<bool> {
    let started = Instant::now();
    let host = match args.host {
        Some(host) => host,
        None => tokio::task::spawn_blocking(wasm_operator_soak::env::host_binary).await??,
    };
    let profile_name = profile.name;
    eprintln!(
        "setting up: control plane, {} ring operators, modules",
        profile.rings
    );
    let mut env = Env::start(profile, host).await?;
    let reports = experiments::run(&env, &args.only, |done| {
        eprintln!(
            "[{:>4.0} s] {}",
            started.elapsed().as_secs_f64(),
            report::summary_line(done)
        )
    })
    .await;
    let passed = reports.iter().all(|done| done.passed());
    if !passed {
        eprintln!(
            "host logs and configs kept in {}",
            env.keep_work_dir().display()
        );
    }
    if let Some(path) = args.write {
        let text = report::markdown(
            &reports,
            &args.command,
            &args.machine,
            profile_name,
            started.elapsed(),
        );
        std::fs::write(&path, text)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(passed)
}
