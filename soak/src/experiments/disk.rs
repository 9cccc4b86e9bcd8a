//! The state directory stops taking writes: a tmpfs mounted for the experiment is filled to the
//! last byte, and later remounted read-only. Swap-outs must fail cleanly (the operator stays
//! resident and keeps reconciling; the failure is counted and logged), nothing is lost, and
//! swapping resumes once space (or write access) returns. Needs root, for the mount.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::within;
use crate::host::Host;
use crate::report::{Report, Window};
use crate::Env;

/// The tmpfs: room for every ring's snapshot many times over, until the filler takes it.
const TMPFS_SIZE: &str = "1g";

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    // SAFETY: geteuid has no preconditions.
    anyhow::ensure!(
        unsafe { libc::geteuid() } == 0,
        "mounting a tmpfs as the state directory needs root"
    );
    let profile = &env.profile;
    let settings = env.host_settings("disk", "1s");
    let mount = Mount::tmpfs(&settings.state_dir)?;
    let host = env.start_host(settings).await?;
    let initial = env.rings.converge(profile.converge_within).await;
    anyhow::ensure!(
        initial.converged,
        "the rings did not start in sync: {:?}",
        initial.lost
    );
    let rings = env.rings.rings.len() as f64;
    let (swapped, _) = within(profile.converge_within, || all_swapped(&host, rings)).await;
    anyhow::ensure!(
        swapped,
        "the operators did not all swap out before the disk filled"
    );
    let mut reports = Vec::new();

    // Full.
    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let failures_before = swap_failures(&host).await;
    let filler = mount.path.join("filler");
    fill(&filler)?;
    let load = env
        .rings
        .drive(profile.background_rate, Duration::from_secs(3))
        .await;
    let (failed, _) = within(profile.converge_within, || async {
        swap_failures(&host).await > failures_before
    })
    .await;
    let convergence = env.rings.converge(profile.converge_within).await;
    std::fs::remove_file(&filler)?;
    let (resumed, took) = within(profile.converge_within, || all_swapped(&host, rings)).await;
    let setup = format!(
        "{} ring operators swapped out after 1 s idle, state directory on a {TMPFS_SIZE} tmpfs; \
         every operator swapped out, then the tmpfs filled to the last byte, {:.0} changes/s \
         offered for 3 s; then the filler removed.",
        profile.rings, profile.background_rate
    );
    let mut report = window
        .close("Disk full", setup, &host, &env.rings, load, convergence)
        .await?;
    report.check(failed, "no swap-out failed on a full disk");
    report.check(resumed, "swapping did not resume once space returned");
    report.check(
        !host.log_lines_with("swap-out failed").is_empty(),
        "no swap-out failure was logged",
    );
    report.findings.push(format!(
        "Every operator was swapped out again {:.1} s after space returned.",
        took.as_secs_f64()
    ));
    reports.push(report);

    // Read-only.
    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let failures_before = swap_failures(&host).await;
    mount.remount("ro")?;
    let load = env
        .rings
        .drive(profile.background_rate, Duration::from_secs(3))
        .await;
    let (failed, _) = within(profile.converge_within, || async {
        swap_failures(&host).await > failures_before
    })
    .await;
    let convergence = env.rings.converge(profile.converge_within).await;
    mount.remount("rw")?;
    let (resumed, took) = within(profile.converge_within, || all_swapped(&host, rings)).await;
    let setup = format!(
        "The same host: the tmpfs remounted read-only, {:.0} changes/s offered for 3 s, then \
         remounted read-write.",
        profile.background_rate
    );
    let mut report = window
        .close(
            "Read-only state directory",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    report.check(failed, "no swap-out failed on a read-only state directory");
    report.check(
        resumed,
        "swapping did not resume once the directory was writable again",
    );
    report.findings.push(format!(
        "Every operator was swapped out again {:.1} s after write access returned.",
        took.as_secs_f64()
    ));
    reports.push(report);
    host.stop()?;
    Ok(reports)
}

async fn all_swapped(host: &Host, operators: f64) -> bool {
    host.metrics().await.is_ok_and(|metrics| {
        metrics.sum("wasm_operator_operators", &[("state", "swapped")]) >= operators
    })
}

async fn swap_failures(host: &Host) -> f64 {
    host.metrics()
        .await
        .map(|metrics| metrics.sum("wasm_operator_swap_failures_total", &[]))
        .unwrap_or(0.0)
}

/// Writes `path` until the filesystem has no space left.
fn fill(path: &Path) -> anyhow::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let block = vec![0x5au8; 1 << 20];
    loop {
        match file.write(&block) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => {
                // The last partial block: fill what is left byte-exactly.
                for size in [4096usize, 1] {
                    while file.write(&block[..size]).is_ok_and(|written| written > 0) {}
                }
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A tmpfs mounted for the experiment, unmounted when dropped.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn tmpfs(path: &Path) -> anyhow::Result<Mount> {
        std::fs::create_dir_all(path)?;
        let options = format!("size={TMPFS_SIZE},mode=0700");
        run_command(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &options, "soak-state"])
                .arg(path),
        )?;
        Ok(Mount {
            path: path.to_owned(),
        })
    }

    fn remount(&self, mode: &str) -> anyhow::Result<()> {
        run_command(
            Command::new("mount")
                .args(["-o", &format!("remount,{mode}")])
                .arg(&self.path),
        )
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Lazily: a host killed by a failed experiment may still be going away.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
