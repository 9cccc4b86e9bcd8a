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
/// What the host logs when a swap-out fails, and when a swap-in does (the state is then lost).
const SWAP_OUT_FAILED: &str = "swap-out failed";
const STATE_LOST: &str = "could not restore the operator's state";
/// Changes are offered this long while the directory takes no writes.
const FAULT_LOAD: Duration = Duration::from_secs(3);

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    // SAFETY: geteuid has no preconditions.
    anyhow::ensure!(
        unsafe { libc::geteuid() } == 0,
        "mounting a tmpfs as the state directory needs root"
    );
    let profile = &env.profile;
    let settings = env.host_settings("disk", "1s");
    let mount = Mount::tmpfs(&settings.state_dir)?;
    let host = env.start_host_in_sync(settings).await?;
    let rings = env.rings.rings.len() as f64;
    let (swapped, _) = within(profile.converge_within, || all_swapped(&host, rings)).await;
    anyhow::ensure!(
        swapped,
        "the operators did not all swap out before the disk filled"
    );
    let filler = mount.path.join("filler");
    let full = unwritable_state_dir(
        env,
        &host,
        "Disk full",
        format!(
            "{} ring operators swapped out after 1 s idle, state directory on a {TMPFS_SIZE} \
             tmpfs; every operator swapped out, then the tmpfs filled to the last byte, {:.0} \
             changes/s offered for {} s; then the filler removed.",
            profile.rings,
            profile.background_rate,
            FAULT_LOAD.as_secs()
        ),
        || fill(&filler),
        || Ok(std::fs::remove_file(&filler)?),
    )
    .await?;
    let read_only = unwritable_state_dir(
        env,
        &host,
        "Read-only state directory",
        format!(
            "The same host: the tmpfs remounted read-only, {:.0} changes/s offered for {} s, \
             then remounted read-write.",
            profile.background_rate,
            FAULT_LOAD.as_secs()
        ),
        || mount.remount("ro"),
        || mount.remount("rw"),
    )
    .await?;
    host.stop()?;
    Ok(vec![full, read_only])
}

/// One fault: `break_it`, changes for [`FAULT_LOAD`] (operators swap in, go idle, and fail to
/// swap out), convergence, `repair`, and every operator swapped out again.
async fn unwritable_state_dir(
    env: &Env,
    host: &Host,
    name: &str,
    setup: String,
    break_it: impl FnOnce() -> anyhow::Result<()>,
    repair: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Report> {
    let within_limit = env.profile.converge_within;
    let operators = env.rings.rings.len() as f64;
    let window = Window::open(host, &env.rings, &env.control_plane_pids()).await?;
    let failures_before = swap_failures(host).await;
    let logged_before = host.log_lines_with(SWAP_OUT_FAILED).len();
    let lost_before = host.log_lines_with(STATE_LOST).len();
    break_it()?;
    let load = env
        .rings
        .drive(env.profile.background_rate, FAULT_LOAD)
        .await;
    let (failed, _) = within(within_limit, || async {
        swap_failures(host).await > failures_before
            && host.log_lines_with(SWAP_OUT_FAILED).len() > logged_before
    })
    .await;
    let convergence = env.rings.converge(within_limit).await;
    let lost = host.log_lines_with(STATE_LOST).len() - lost_before;
    repair()?;
    let (resumed, took) = within(within_limit, || all_swapped(host, operators)).await;
    let mut report = window
        .close(name, setup, host, &env.rings, load, convergence)
        .await?;
    report.check(failed, "no swap-out failure was counted and logged");
    report.check(
        lost == 0,
        format!("{lost} operators could not be swapped in and lost their state"),
    );
    report.check(
        resumed,
        "swapping did not resume once the directory was writable again",
    );
    report.findings.push(format!(
        "Every operator was swapped out again {:.1} s after the directory was writable again.",
        took.as_secs_f64()
    ));
    Ok(report)
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
