//! Slow and failing egress: the query API the metrics-scaler polls every second answers slowly,
//! then with HTTP 500, then not at all (the scaler's 5 s request timeout fires), then normally
//! again with a new value. Meanwhile the ring operators get changes: their latency, phase by
//! phase, shows whether one operator's stuck egress holds up the others. The scaler must
//! report the metric unavailable while it is, and settle on the new value once it is back.

use std::time::Duration;

use super::scaler::Scaler;
use super::within;
use crate::measure::quantile;
use crate::report::{Report, Window};
use crate::Env;

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    let profile = &env.profile;
    let scaler = Scaler::start(env, "50").await?;
    let mut settings = env.host_settings("egress", "2s");
    settings.operators.push(scaler.operator(env));
    let host = env.start_host_in_sync(settings).await?;
    let (settled, _) = within(profile.converge_within, || scaler.converged(env, 50.0)).await;
    anyhow::ensure!(settled, "the scaler did not settle before the faults");

    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let mut phases = Vec::new();
    let mut unavailable_seen = Vec::new();
    let mut total = crate::rings::Load::default();
    let mut all_latencies = Vec::new();
    for (phase, delay, status) in [
        ("normal", Duration::ZERO, 200),
        ("slow (3 s per answer)", Duration::from_secs(3), 200),
        ("HTTP 500", Duration::ZERO, 500),
        ("hanging", Duration::from_secs(3600), 200),
    ] {
        scaler.api.delay_answers(delay);
        if status == 200 {
            scaler.api.answer_value("50");
        } else {
            scaler.api.answer(status, "upstream failure");
        }
        let load = env
            .rings
            .drive(profile.background_rate, profile.egress_phase_for)
            .await;
        let phase_convergence = env.rings.converge(profile.converge_within).await;
        let latencies = env.rings.take_latencies();
        phases.push(format!(
            "{phase}: ring p50 {:.1} ms, p99 {:.1} ms over {} changes, converged: {}",
            quantile(&latencies, 0.5).as_secs_f64() * 1e3,
            quantile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.len(),
            phase_convergence.converged
        ));
        all_latencies.extend(latencies);
        if status != 200 || delay > Duration::from_secs(5) {
            unavailable_seen.push((
                phase,
                within(profile.converge_within, || scaler.reports_unavailable(env))
                    .await
                    .0,
            ));
        }
        total.applied += load.applied;
        total.refused += load.refused;
        total.elapsed += load.elapsed;
    }
    scaler.api.delay_answers(Duration::ZERO);
    scaler.api.answer_value("1");
    let (recovered, took) = within(profile.converge_within, || scaler.converged(env, 1.0)).await;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators and the metrics-scaler (Rust) polling a loopback query API every \
         second; {} s each of a normal, a slow (3 s), a failing (HTTP 500) and a hanging API, \
         {:.0} ring changes/s offered throughout; then the API answers a new value.",
        profile.rings,
        profile.egress_phase_for.as_secs(),
        profile.background_rate
    );
    let mut report = window
        .close(
            "Slow and failing egress",
            setup,
            &host,
            &env.rings,
            total,
            convergence,
        )
        .await?;
    // The phases took the latencies as they went.
    report.latency_p50 = quantile(&all_latencies, 0.5);
    report.latency_p99 = quantile(&all_latencies, 0.99);
    report.findings.extend(phases);
    report.findings.push(format!(
        "The scaler settled on the new value {:.1} s after the API recovered.",
        took.as_secs_f64()
    ));
    for (phase, seen) in unavailable_seen {
        report.check(seen, format!("the scaler's status did not report the metric unavailable while the API was {phase}"));
    }
    report.check(
        recovered,
        "the scaler did not settle on the new value once the API recovered",
    );
    host.stop()?;
    Ok(vec![report])
}
