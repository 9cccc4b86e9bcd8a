//! The soak and fault experiments in their short profile, as part of `cargo test`: every one
//! must converge with nothing lost and every check holding. (`make soak` runs the full profile
//! and writes docs/reliability.md.)

use wasm_operator_soak::{experiments, report, Env, Profile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_experiment_converges_with_nothing_lost() {
    let host = tokio::task::spawn_blocking(wasm_operator_soak::env::host_binary)
        .await
        .unwrap()
        .expect("building the host binary");
    let mut env = Env::start(Profile::short(), host)
        .await
        .expect("setting up the soak environment");
    let reports = experiments::run(&env, &[], |done| {
        eprintln!("{}", report::summary_line(done))
    })
    .await;
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(report::summary_line)
        .collect();
    if !failed.is_empty() {
        let kept = env.keep_work_dir();
        panic!(
            "experiments failed (host logs in {}):\n{}",
            kept.display(),
            failed.join("\n")
        );
    }
    assert_eq!(reports.len(), 9, "every experiment reported");
}
