//! The control plane fails under the host: the API server stops for the profile's outage (etcd
//! keeps running) while changes keep being offered, then comes back; later etcd restarts. The
//! host's watches must resume, its failed requests be retried, and every object converge.

use std::time::Duration;

use crate::report::{Report, Window};
use crate::Env;

/// Load before the fault and after it, so that both sides of it are exercised.
const AROUND: Duration = Duration::from_secs(3);

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    let profile = &env.profile;
    let host = env
        .start_host_in_sync(env.host_settings("outage", "2s"))
        .await?;
    let mut reports = Vec::new();

    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let schedule = async {
        // The experiment's schedule, not a wait for a condition: the outage lasts this long.
        tokio::time::sleep(AROUND).await;
        env.inject_fault("stop kube-apiserver").await?;
        let probe =
            tokio::time::timeout(Duration::from_secs(5), env.client.apiserver_version()).await;
        let was_down = !matches!(probe, Ok(Ok(_)));
        tokio::time::sleep(profile.outage_for).await;
        env.inject_fault("start kube-apiserver").await?;
        anyhow::Ok(was_down)
    };
    let (load, restarted) = tokio::join!(
        env.rings
            .drive(profile.background_rate, AROUND * 3 + profile.outage_for),
        schedule
    );
    let was_down = restarted?;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators; {:.0} changes/s offered throughout; {} s into it kube-apiserver is \
         stopped (SIGTERM; etcd keeps running) for {} s, then started again.",
        profile.rings,
        profile.background_rate,
        AROUND.as_secs(),
        profile.outage_for.as_secs()
    );
    let mut report = window
        .close(
            "API server outage",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    report.check(host.is_running(), "the host exited during the outage");
    report.check(
        was_down,
        "the API server still answered after it was stopped",
    );
    reports.push(report);

    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let schedule = async {
        tokio::time::sleep(AROUND).await;
        env.inject_fault("restart etcd").await
    };
    let (load, restarted) = tokio::join!(
        env.rings.drive(profile.background_rate, AROUND * 3),
        schedule
    );
    restarted?;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators; {:.0} changes/s offered; {} s into it etcd is closed and started \
         again on the same data (the API server keeps running).",
        profile.rings,
        profile.background_rate,
        AROUND.as_secs()
    );
    let mut report = window
        .close("etcd restart", setup, &host, &env.rings, load, convergence)
        .await?;
    report.check(host.is_running(), "the host exited during the etcd restart");
    reports.push(report);
    host.stop()?;
    Ok(reports)
}
