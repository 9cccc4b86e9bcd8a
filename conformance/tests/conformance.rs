//! The conformance suite as a test: every scenario, every implementation, both passes, against
//! the real control plane; each scenario's transcript and final state are an insta snapshot
//! (`tests/snapshots/<scenario>.snap`) shared by all languages.
//!
//! `CONFORMANCE_SCENARIOS=webapp-create,counter-state` runs only those scenarios. A new
//! scenario's snapshot is written with `INSTA_UPDATE=always` (review it before committing).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::future::join_all;
use wasm_operator_conformance::runner::Suite;
use wasm_operator_conformance::scenario::{load_dir, load_file, Scenario};
use wasm_operator_conformance::subjects::{subject, BROKEN_GO_WEBAPP};
use wasm_operator_conformance::{check_scenario, report, scenarios_dir, ScenarioResult};
use wasm_operator_test_support::{apply_crd, control_plane, workspace_root};

const EXAMPLE_CRDS: [&str; 4] = [
    "crds/webapp.yaml",
    "crds/metricscaler.yaml",
    "crds/testresource.yaml",
    "crds/counter.yaml",
];

/// A suite on the test control plane with the example CRDs applied (once per process).
async fn suite(wait_timeout: Duration) -> Suite {
    static APPLIED: OnceLock<tokio::sync::Mutex<bool>> = OnceLock::new();
    let client = control_plane().client().await;
    {
        let mut applied = APPLIED.get_or_init(Default::default).lock().await;
        if !*applied {
            for path in EXAMPLE_CRDS {
                let yaml =
                    std::fs::read_to_string(workspace_root().join(path)).expect("reading a CRD");
                apply_crd(&client, &yaml)
                    .await
                    .expect("applying an example CRD");
            }
            *applied = true;
        }
    }
    let cache = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("conformance-modules");
    Suite::new(client, cache, wait_timeout).expect("starting the Wasm runtime")
}

/// Writes a line of the suite's report to standard error even when the test passes: the test
/// harness captures `eprintln!`, not writes to the stream itself, and `make test` should show
/// what was compared (every scenario, language and pass), not only that it passed.
fn report_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn selected_scenarios() -> Vec<Scenario> {
    let scenarios = load_dir(&scenarios_dir()).unwrap_or_else(|e| panic!("{e:#}"));
    match std::env::var("CONFORMANCE_SCENARIOS") {
        Ok(names) if !names.trim().is_empty() => {
            let wanted: Vec<&str> = names.split(',').map(str::trim).collect();
            for name in &wanted {
                assert!(
                    scenarios.iter().any(|s| s.name == *name),
                    "CONFORMANCE_SCENARIOS names {name:?}, which is not in {}",
                    scenarios_dir().display()
                );
            }
            scenarios
                .into_iter()
                .filter(|s| wanted.contains(&s.name.as_str()))
                .collect()
        }
        _ => scenarios,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_behaves_the_same_in_every_language_and_pass() {
    let started = Instant::now();
    let scenarios = selected_scenarios();
    let suite = suite(Duration::from_secs(60)).await;

    // Scenarios of different operators run side by side; those of one operator one at a time.
    let mut operators: Vec<&str> = scenarios.iter().map(|s| s.operator.as_str()).collect();
    operators.sort();
    operators.dedup();
    let groups = operators.iter().map(|operator| {
        let suite = &suite;
        let scenarios: Vec<&Scenario> = scenarios
            .iter()
            .filter(|s| s.operator == *operator)
            .collect();
        async move {
            let mut results = Vec::new();
            for scenario in scenarios {
                let result = check_scenario(suite, scenario, None).await;
                report_line(format_args!(
                    "conformance: {} {} in {} runs ({}) ({:.0?} since start)",
                    scenario.name,
                    if result.problems.is_empty() {
                        "ok"
                    } else {
                        "FAILED"
                    },
                    result.runs.len(),
                    result.runs.join("; "),
                    started.elapsed()
                ));
                results.push(result);
            }
            results
        }
    });
    let mut results: Vec<ScenarioResult> = join_all(groups).await.into_iter().flatten().collect();
    results.sort_by(|a, b| a.scenario.cmp(&b.scenario));

    let mut problems = Vec::new();
    for result in &results {
        problems.extend(result.problems.iter().cloned());
        let Some(reference) = &result.reference else {
            continue;
        };
        let text = report::snapshot_text(reference);
        let name = result.scenario.clone();
        let matched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
                insta::assert_snapshot!(name, text);
            });
        }));
        if matched.is_err() {
            problems.push(format!(
                "scenario {}: the transcript differs from its snapshot (see the diff above; `cargo insta review` or INSTA_UPDATE=always after checking it)",
                result.scenario
            ));
        }
    }
    let runs: usize = results.iter().map(|result| result.runs.len()).sum();
    report_line(format_args!(
        "conformance: {} scenarios, {runs} runs, {} problems, {:.1?}",
        results.len(),
        problems.len(),
        started.elapsed()
    ));
    assert!(problems.is_empty(), "\n\n{}\n", problems.join("\n\n"));
}

/// The suite must notice an implementation that differs: a Go webapp that never reports
/// `status.readyReplicas` is run against the Rust one on the creation scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_webapp_that_forgets_a_status_field_is_reported_as_different() {
    let scenario = load_file(&scenarios_dir().join("webapp-create.yaml")).expect("the scenario");
    let suite = suite(Duration::from_secs(10)).await;
    let rust = subject("webapp")
        .expect("webapp is a subject")
        .implementations[0];
    assert_eq!(rust.language, "rust");
    let result = check_scenario(&suite, &scenario, Some(&[rust, BROKEN_GO_WEBAPP])).await;
    let report = result.problems.join("\n\n");
    eprintln!("{report}");

    assert!(
        !report.contains("scenario webapp-create: rust"),
        "the Rust webapp itself failed, so this proves nothing:\n{report}"
    );
    let difference = result
        .problems
        .iter()
        .find(|problem| {
            problem.starts_with("scenario webapp-create: go, swap between steps differs from rust, swap between steps: transcript entry")
        })
        .unwrap_or_else(|| panic!("the broken Go webapp was not reported as different:\n{report}"));
    assert!(
        difference.contains("made during step "),
        "the report does not name the step:\n{difference}"
    );
    assert!(
        difference
            .lines()
            .any(|line| line.starts_with('-') && line.contains("readyReplicas")),
        "the diff does not show the missing readyReplicas:\n{difference}"
    );
}
