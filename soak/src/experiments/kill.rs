//! The host is SIGKILLed twice while changes keep coming, and restarted each time on the same
//! state directory and config:
//!
//! - mid-swap-out: an operator holding a large state (the stateful test guest) is caught while
//!   its snapshot's temporary file is being written (the harness polls the state directory and
//!   kills the moment it appears);
//! - mid-reconcile: the metrics-scaler is inside a reconcile, waiting on a query API that the
//!   harness holds the answer of.
//!
//! After each restart: the host starts, clears what the dead process left in the state
//! directory (a snapshot belongs to the process that wrote it, so none is ever restored), no
//! snapshot is reported corrupt, and every object converges; the scaler too, to a new value.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use wasm_operator_test_support::GRANTS_HTTP_ONLY;

use super::scaler::Scaler;
use super::within;
use crate::host::{Host, OperatorEntry};
use crate::report::{Report, Window};
use crate::Env;

const BIG_STATE: &str = "big-state";
/// The big state is swapped out this long after its init; the harness is watching by then.
/// (Long enough for the other operators to load and the workload to be checked in sync, even
/// with a hundred of them on a loaded machine.)
const BIG_STATE_SWAP_AFTER: &str = "8s";

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    let profile = &env.profile;
    let scaler = Scaler::start(env, "50").await?;
    let mut settings = env.host_settings("kill", "2s");
    settings.operators.push(scaler.operator(env));
    settings.operators.push(big_state_operator(env));
    let state_dir = settings.state_dir.clone();
    let mut reports = Vec::new();

    // Mid-swap-out.
    let host = env.start_host_in_sync(settings.clone()).await?;
    let mut window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    window.host_restarted();
    let (load, restarted) = env
        .rings
        .drive_while(profile.background_rate, async {
            let caught = tokio::task::spawn_blocking({
                let state_dir = state_dir.clone();
                let pid = host.pid();
                move || {
                    kill_when_temporary_snapshot_appears(&state_dir, pid, Duration::from_secs(120))
                }
            })
            .await?;
            let killed_settings = host.kill()?;
            let left = leftover_files(&state_dir);
            let host = env.start_host(killed_settings).await?;
            anyhow::Ok((caught, left, host))
        })
        .await;
    let (caught, left, host) = restarted?;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators and an operator holding {} MiB (swapped out {BIG_STATE_SWAP_AFTER} \
         after init); {:.0} changes/s offered; SIGKILL the moment the big snapshot's temporary \
         file appears, then the same host started again.",
        profile.rings,
        profile.big_state_bytes >> 20,
        profile.background_rate
    );
    let mut report = window
        .close(
            "Host kill mid-swap-out",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    report.check(
        caught,
        "no temporary snapshot file appeared to kill the host over",
    );
    report.check(
        left.iter()
            .any(|name| name.starts_with(BIG_STATE) && name.ends_with(".tmp")),
        format!("the kill did not land mid-swap-out: the state directory held {left:?}"),
    );
    check_restart(&mut report, &host, &state_dir, &left).await?;
    report.findings.push(format!(
        "Left in the state directory by the killed host: {left:?}."
    ));
    reports.push(report);

    // Mid-reconcile.
    let mut window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    window.host_restarted();
    scaler.api.delay_answers(Duration::from_secs(3600));
    let (load, restarted) = env
        .rings
        .drive_while(profile.background_rate, async {
            let asked = scaler.api.requests().len();
            let (waiting, _) = within(Duration::from_secs(60), || async {
                scaler.api.requests().len() > asked
            })
            .await;
            let killed_settings = host.kill()?;
            let left = leftover_files(&state_dir);
            scaler.api.delay_answers(Duration::ZERO);
            scaler.api.answer_value("1");
            let host = env.start_host(killed_settings).await?;
            anyhow::Ok((waiting, left, host, std::time::Instant::now()))
        })
        .await;
    let (waiting, left, host, restarted_at) = restarted?;
    let convergence = env.rings.converge(profile.converge_within).await;
    let checking_from = restarted_at.elapsed();
    let (scaled, took) = within(profile.converge_within, || scaler.converged(env, 1.0)).await;
    let settled_after = checking_from + took;
    let setup = format!(
        "The same host: the query API holds its answers; once the scaler's request has arrived \
         (its reconcile is in flight), SIGKILL; restart with the API answering a new value \
         while {:.0} changes/s are offered.",
        profile.background_rate
    );
    let mut report = window
        .close(
            "Host kill mid-reconcile",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    report.check(waiting, "the scaler's request never reached the query API");
    report.check(
        scaled,
        "the scaler did not settle on the new value after the restart",
    );
    report.findings.push(format!(
        "The scaler settled on the new value within {:.1} s of the restart.",
        settled_after.as_secs_f64()
    ));
    check_restart(&mut report, &host, &state_dir, &left).await?;
    reports.push(report);
    host.stop()?;
    Ok(reports)
}

/// The stateful test guest with `big_state_bytes` of live state, swapped out soon after init.
fn big_state_operator(env: &Env) -> OperatorEntry {
    let bytes = env.profile.big_state_bytes;
    OperatorEntry {
        name: BIG_STATE.into(),
        module: wasm_operator_test_support::guest_module("test-guest-stateful"),
        config: json!({"stateBytes": bytes}),
        // It imports `http_request`; a module loads only for an operator granted what it imports.
        allow_http: vec![GRANTS_HTTP_ONLY.into()],
        memory_limit: Some(format!("{}Mi", (bytes >> 20) * 2 + 64)),
        swap_after: Some(BIG_STATE_SWAP_AFTER.into()),
    }
}

/// Polls `dir` every millisecond until a temporary snapshot of the big state appears, then
/// SIGKILLs `pid` at once. Returns whether it appeared within `timeout`.
fn kill_when_temporary_snapshot_appears(dir: &Path, pid: u32, timeout: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if leftover_files(dir)
            .iter()
            .any(|name| name.starts_with(&format!("{BIG_STATE}/")) && name.ends_with(".tmp"))
        {
            // SAFETY: kill(2) on the host, our child, not yet reaped (Host::kill reaps it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The files in the state directory and the operators' directories in it, as
/// `<operator>/<file>` (or `<file>` at the top).
fn leftover_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            let inner = std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten();
            names
                .extend(inner.map(|file| format!("{name}/{}", file.file_name().to_string_lossy())));
        } else {
            names.push(name);
        }
    }
    names.sort();
    names
}

/// After a restart: of what the dead process left, only snapshots resumed remain (a swapped-out
/// operator continues from its snapshot; an interrupted swap-out leaves nothing to resume and
/// its files go), the host says it removed the rest, and no snapshot was reported corrupt.
async fn check_restart(
    report: &mut Report,
    host: &Host,
    state_dir: &Path,
    left: &[String],
) -> anyhow::Result<()> {
    let now = leftover_files(state_dir);
    let stale: Vec<&String> = left
        .iter()
        .filter(|name| now.contains(name))
        .filter(|name| name.ends_with(".tmp") || name.starts_with(&format!("{BIG_STATE}/")))
        .collect();
    report.check(
        stale.is_empty(),
        format!(
            "files of the killed host nobody resumes are still in the state directory: {stale:?}"
        ),
    );
    report.check(
        !left.iter().any(|name| name.ends_with(".tmp"))
            || !host
                .log_lines_with("removed snapshot files nobody will resume")
                .is_empty(),
        "the restarted host did not report clearing what the killed one left",
    );
    let metrics = host.metrics().await?;
    report.check(
        metrics.sum("wasm_operator_swap_failures_total", &[("kind", "corrupt")]) == 0.0,
        "a snapshot was reported corrupt after the restart",
    );
    Ok(())
}
