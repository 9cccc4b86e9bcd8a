//! Sustained load: every ring operator (most of them swapped out between their events) while
//! changes arrive at the profile's rate; then convergence. The CPU each process used tells
//! whether the API server or the host is the bottleneck.

use crate::report::{Report, Window};
use crate::Env;

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    let profile = &env.profile;
    let host = env
        .start_host_in_sync(env.host_settings("load", "2s"))
        .await?;
    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let load = env.rings.drive(profile.load_rate, profile.load_for).await;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators ({} objects each), swapped out after 2 s idle; {:.0} changes/s offered \
         for {} s, at most 64 requests in flight.",
        profile.rings,
        profile.objects_per_ring,
        profile.load_rate,
        profile.load_for.as_secs()
    );
    let mut report = window
        .close(
            "Sustained load",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    report.findings.push(format!(
        "Offered {:.0} changes/s, achieved {:.0}/s ({:.0}%).",
        profile.load_rate,
        load.rate(),
        load.rate() / profile.load_rate * 100.0
    ));
    if let Some((busiest, cores)) = report
        .cpu
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
    {
        report.findings.push(format!(
            "Busiest process: {busiest}, {cores:.2} cores of {}; the offered rate was {}.",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            if load.rate() >= profile.load_rate * 0.95 {
                "sustained"
            } else {
                "not reached: every in-flight request was waiting on the API server"
            }
        ));
    }
    report.check(
        load.refused == 0,
        format!(
            "the API server refused {} changes without a fault",
            load.refused
        ),
    );
    report.check(report.reconciles > 0.0, "the host reconciled nothing");
    host.stop()?;
    Ok(vec![report])
}
