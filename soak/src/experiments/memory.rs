//! Memory pressure: a memory budget far below what the operators hold when all resident, so
//! the host keeps swapping the least recently used out while changes arrive. Reported: how many
//! swap-ins per second that costs at worst (a thrash storm would show as swap-ins close to one
//! per reconcile and growing), and whether everything converges.

use std::time::Duration;

use crate::measure::quantile;
use crate::report::{Report, Window};
use crate::Env;

pub async fn run(env: &Env) -> anyhow::Result<Vec<Report>> {
    let profile = &env.profile;
    // What every operator holds resident, measured with nothing swapped.
    let probe = env
        .start_host(env.host_settings("memory-probe", "never"))
        .await?;
    let resident = probe
        .metrics()
        .await?
        .sum("wasm_operator_memory_bytes", &[]);
    probe.stop()?;
    let budget = (resident * profile.budget_fraction) as u64;

    let mut settings = env.host_settings("memory", "never");
    settings.memory_budget = Some(budget.to_string());
    let host = env.start_host_in_sync(settings).await?;
    let window = Window::open(&host, &env.rings, &env.control_plane_pids()).await?;
    let rate = profile.load_rate / 4.0;
    let duration = profile.load_for / 2;
    let mut per_second = Vec::new();
    let (load, sampled) = env
        .rings
        .drive_while(rate, async {
            let start = std::time::Instant::now();
            let mut last = host
                .metrics()
                .await?
                .sum("wasm_operator_swap_ins_total", &[]);
            while start.elapsed() < duration {
                // One sample a second: the schedule of the measurement, not a wait.
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = host
                    .metrics()
                    .await?
                    .sum("wasm_operator_swap_ins_total", &[]);
                per_second.push(now - last);
                last = now;
            }
            anyhow::Ok(())
        })
        .await;
    sampled?;
    let convergence = env.rings.converge(profile.converge_within).await;
    let setup = format!(
        "{} ring operators, no idle swap-out, memory budget {:.1} MiB = {:.0}% of the {:.1} MiB \
         they hold when all resident; {rate:.0} changes/s offered for {} s.",
        profile.rings,
        budget as f64 / (1 << 20) as f64,
        profile.budget_fraction * 100.0,
        resident / (1 << 20) as f64,
        duration.as_secs()
    );
    let mut report = window
        .close(
            "Memory pressure",
            setup,
            &host,
            &env.rings,
            load,
            convergence,
        )
        .await?;
    let as_durations: Vec<Duration> = per_second
        .iter()
        .map(|n| Duration::from_secs_f64(*n))
        .collect();
    let max = per_second.iter().copied().fold(0.0, f64::max);
    report.findings.push(format!(
        "Swap-ins per second: median {:.0}, max {max:.0}; {:.2} swap-ins per reconcile.",
        quantile(&as_durations, 0.5).as_secs_f64(),
        report.swap_ins / report.reconciles.max(1.0)
    ));
    let resident_now = host.metrics().await?.sum("wasm_operator_memory_bytes", &[]);
    report.findings.push(format!(
        "Resident linear memory at the end: {:.1} MiB (budget {:.1} MiB).",
        resident_now / (1 << 20) as f64,
        budget as f64 / (1 << 20) as f64
    ));
    report.check(
        report.swap_ins > 0.0,
        "nothing was swapped in: the budget did not bite",
    );
    report.check(
        report.swap_ins <= report.reconciles,
        "more swap-ins than reconciles: operators were brought back without work",
    );
    host.stop()?;
    Ok(vec![report])
}
