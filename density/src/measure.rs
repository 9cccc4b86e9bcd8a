//! One measurement: a setup with N ring instances, from a clean start to stopped. In order:
//! startup (process start to the first and to the last ring's first output object), convergence,
//! every operator swapped out (swapped setups), a settle (until the setup's CPU use drops), the
//! quiet window for idle CPU, PSS, then one-hop latencies, one change at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kube::Client;
use wasm_operator_soak::measure::quantile;
use wasm_operator_soak::rings::Rings;

use crate::outputs::{self, FirstOutputs};
use crate::setup::{Context, Running, Setup};
use crate::Profile;

/// The figures of one setup at one N.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub setup: Setup,
    pub n: usize,
    pub processes: usize,
    /// PSS summed over the setup's processes, after the idle window.
    pub pss: u64,
    /// CPU over the quiet window, scaled to one minute.
    pub idle_cpu_per_minute: Duration,
    pub window: Duration,
    pub cpu_method: &'static str,
    /// How long the setup took to go quiet after converging; `false`: it never did within the
    /// profile's limit and the window started anyway.
    pub settle: Duration,
    pub settled: bool,
    pub hop_p50: Duration,
    pub hop_p99: Duration,
    pub hops: usize,
    /// Swap-ins the host counted during the hops (swapped setups; each hop should add one).
    pub swap_ins_in_hops: Option<f64>,
    /// Process start to the first output object of any ring, and of every ring.
    pub startup_first: Duration,
    pub startup_all: Duration,
}

/// A setup's CPU use counts as quiet below this per second, plus a little per instance.
const QUIET_PER_SECOND: Duration = Duration::from_millis(5);
const QUIET_PER_INSTANCE: Duration = Duration::from_micros(200);

pub async fn measure(
    setup: Setup,
    rings: &Rings,
    client: &Client,
    context: &Context<'_>,
    profile: &Profile,
    dir: &Path,
) -> anyhow::Result<Measurement> {
    let n = rings.rings.len();
    outputs::clear(client, &rings.rings, profile.converge_within).await?;
    let first_outputs = FirstOutputs::watch(client, &rings.rings).await?;

    let started = Instant::now();
    let mut running = Running::start(setup, &rings.rings, context, dir).await?;
    let (first, last) = loop {
        if let Some(times) = first_outputs.all_seen() {
            break times;
        }
        running.check_alive()?;
        if started.elapsed() > profile.converge_within {
            bail!(
                "{setup}, N={n}: {} of {n} rings had an output object after {:?}",
                first_outputs.count(),
                profile.converge_within
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    drop(first_outputs);
    let convergence = rings.converge(profile.converge_within).await;
    anyhow::ensure!(
        convergence.converged,
        "{setup}, N={n}: the rings did not converge: {:?}",
        convergence.lost
    );
    if matches!(setup, Setup::Host { swapped: true, .. }) {
        wait_all_swapped(&mut running, n, profile.converge_within).await?;
    }

    let (settle, settled) = settle(&mut running, n, profile.settle_within).await?;
    let swap_ins_before = swap_ins(&running).await?;
    let before = running.clock.read()?;
    let window_start = Instant::now();
    // The quiet window itself: nothing is sent to the setup while it runs.
    tokio::time::sleep(profile.idle_window).await;
    let cpu = running.clock.since(&before)?;
    let window = window_start.elapsed();
    running.check_alive()?;
    if let (Some(before), Some(after)) = (swap_ins_before, swap_ins(&running).await?) {
        anyhow::ensure!(
            after == before,
            "{setup}, N={n}: {} swap-ins during the quiet window",
            after - before
        );
    }
    let pss = running.pss()?;
    let processes = running.pids().len();

    let swap_ins_before = swap_ins(&running).await?;
    let latencies = hops(setup, &mut running, rings, profile).await?;
    let swap_ins_in_hops = match (swap_ins_before, swap_ins(&running).await?) {
        (Some(before), Some(after)) if matches!(setup, Setup::Host { swapped: true, .. }) => {
            Some(after - before)
        }
        _ => None,
    };
    running.check_alive()?;
    let cpu_method = running.clock.method();
    running.stop()?;

    Ok(Measurement {
        setup,
        n,
        processes,
        pss,
        idle_cpu_per_minute: cpu.mul_f64(60.0 / window.as_secs_f64()),
        window,
        cpu_method,
        settle,
        settled,
        hop_p50: quantile(&latencies, 0.5),
        hop_p99: quantile(&latencies, 0.99),
        hops: latencies.len(),
        swap_ins_in_hops,
        startup_first: first.saturating_duration_since(started),
        startup_all: last.saturating_duration_since(started),
    })
}

/// Waits until the host reports all `n` operators swapped out.
async fn wait_all_swapped(running: &mut Running, n: usize, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        running.check_alive()?;
        let swapped = running.swapped().await?;
        if swapped >= n {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{}: {swapped} of {n} operators swapped out after {within:?}",
                running.setup
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until one second passes in which the setup uses less than the quiet threshold
/// (startup work such as a Go runtime's first collections or a swap-out's trailing I/O done);
/// returns how long that took and whether it happened within `within`.
async fn settle(
    running: &mut Running,
    n: usize,
    within: Duration,
) -> anyhow::Result<(Duration, bool)> {
    let quiet = QUIET_PER_SECOND + QUIET_PER_INSTANCE * n as u32;
    let start = Instant::now();
    loop {
        let before = running.clock.read()?;
        let second = Instant::now();
        // One second of CPU accounting: the settle condition is measured over it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = running
            .clock
            .since(&before)?
            .div_f64(second.elapsed().as_secs_f64());
        running.check_alive()?;
        if used < quiet {
            return Ok((start.elapsed(), true));
        }
        if start.elapsed() >= within {
            return Ok((start.elapsed(), false));
        }
    }
}

/// The host's swap-in count (a host setup), `None` for a native one.
async fn swap_ins(running: &Running) -> anyhow::Result<Option<f64>> {
    if running.setup.is_native() {
        return Ok(None);
    }
    Ok(Some(
        running
            .metrics()
            .await?
            .sum("wasm_operator_swap_ins_total", &[]),
    ))
}

/// One change at a time, each to the next ring, timed from the API server's acknowledgement
/// to the operator's write visible in the harness's watch. In a swapped setup every round of N
/// changes starts with every operator swapped out, so each hop includes a swap-in.
async fn hops(
    setup: Setup,
    running: &mut Running,
    rings: &Rings,
    profile: &Profile,
) -> anyhow::Result<Vec<Duration>> {
    let n = rings.rings.len();
    let swapped = matches!(setup, Setup::Host { swapped: true, .. });
    let wanted = if swapped {
        profile.swapped_hops
    } else {
        profile.resident_hops
    };
    rings.reset_measurements();
    let mut sent = 0;
    while sent < wanted {
        if swapped && sent % n == 0 {
            wait_all_swapped(running, n, profile.converge_within).await?;
        }
        rings
            .change(sent % n)
            .await
            .context("changing a ring's input")?;
        if !rings.wait_carried_out(Duration::from_secs(60)).await {
            running.check_alive()?;
            bail!(
                "{setup}: ring {} did not carry a change out within 60 s",
                sent % n
            );
        }
        sent += 1;
    }
    let latencies = rings.take_latencies();
    anyhow::ensure!(
        latencies.len() == wanted,
        "{setup}: {} latencies for {wanted} changes",
        latencies.len()
    );
    Ok(latencies)
}
