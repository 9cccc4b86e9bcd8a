//! The experiments, one per file, each a function from the shared [`Env`] to a [`Report`].
//! They run in this order, each with hosts of its own; the rings' objects carry over (a new
//! host starts by finding them all in sync).

mod disk;
mod egress;
mod kill;
mod load;
mod memory;
mod outage;
mod scaler;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::report::Report;
use crate::Env;

type Experiment =
    for<'a> fn(&'a Env) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<Report>>> + 'a>>;

/// (name for `--only`, experiment).
pub const ALL: [(&str, Experiment); 6] = [
    ("load", |env| Box::pin(load::run(env))),
    ("outage", |env| Box::pin(outage::run(env))),
    ("kill", |env| Box::pin(kill::run(env))),
    ("disk", |env| Box::pin(disk::run(env))),
    ("memory", |env| Box::pin(memory::run(env))),
    ("egress", |env| Box::pin(egress::run(env))),
];

/// Runs the experiments named in `only` (all when empty), in order. An experiment that cannot
/// be carried out (a host that does not start, say) is reported as failed; the next one runs.
pub async fn run(env: &Env, only: &[String], mut progress: impl FnMut(&Report)) -> Vec<Report> {
    let mut reports = Vec::new();
    for (name, experiment) in ALL {
        if !only.is_empty() && !only.iter().any(|wanted| wanted == name) {
            continue;
        }
        match experiment(env).await {
            Ok(done) => {
                for report in done {
                    progress(&report);
                    reports.push(report);
                }
            }
            Err(error) => {
                let report = Report {
                    name: name.to_owned(),
                    failures: vec![format!(
                        "the experiment could not be carried out: {error:#}"
                    )],
                    ..Report::default()
                };
                progress(&report);
                reports.push(report);
            }
        }
    }
    reports
}

/// Waits until `condition` holds, polling every 100 ms, at most `timeout`; returns whether it
/// held and how long it took.
pub(crate) async fn within<F, Fut>(timeout: Duration, mut condition: F) -> (bool, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if condition().await {
            return (true, start.elapsed());
        }
        if start.elapsed() >= timeout {
            return (false, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
