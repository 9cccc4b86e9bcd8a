//! The conformance suite: every scenario of `conformance/scenarios/` against every implementation
//! of the operator it names, in two passes (a forced swap-out and swap-in between every two
//! steps, and none), on the real control plane. All runs of a scenario must make the same host
//! calls with the same bodies and leave the same final state; the first implementation's
//! transcript is the scenario's snapshot. docs/conformance.md is the guide.
//!
//! - [`scenario`]: the YAML format.
//! - [`subjects`]: operators, their implementations per language, and build rules.
//! - [`runner`]: one run (host in-process, steps, swaps, clean-up).
//! - [`transcript`], [`normalize`], [`logs`]: recording and normalizing host calls and logs.
//! - [`report`]: snapshots and readable diffs.
//! - [`fake_http`]: the loopback HTTP server scenarios serve answers from.

pub mod fake_http;
pub mod logs;
pub mod normalize;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod subjects;
pub mod transcript;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use runner::{Pass, RunReport, Suite};
use scenario::Scenario;
use subjects::{Implementation, Subject};

/// The directory of the scenario files.
pub fn scenarios_dir() -> PathBuf {
    wasm_operator_test_support::workspace_root()
        .join("conformance")
        .join("scenarios")
}

/// Every run of one scenario, and what was wrong with them.
pub struct ScenarioResult {
    pub scenario: String,
    /// The reference run: the first implementation, first pass.
    pub reference: Option<RunReport>,
    /// Failed steps and differences from the reference, one readable report each.
    pub problems: Vec<String>,
    /// Every run made, as `<language>, <pass>`.
    pub runs: Vec<String>,
}

/// Runs of one operator must not overlap: the examples watch their kind in every namespace.
pub async fn operator_turn(operator: &str) -> tokio::sync::OwnedMutexGuard<()> {
    static TURNS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let turn = TURNS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(operator.to_owned())
        .or_default()
        .clone();
    turn.lock_owned().await
}

/// Runs `scenario` with each of `implementations` (default: all of its subject's) in both
/// passes, and compares every run with the first.
pub async fn check_scenario(
    suite: &Suite,
    scenario: &Scenario,
    implementations: Option<&[Implementation]>,
) -> ScenarioResult {
    let mut result = ScenarioResult {
        scenario: scenario.name.clone(),
        reference: None,
        problems: Vec::new(),
        runs: Vec::new(),
    };
    let subject: &Subject = match subjects::subject(&scenario.operator) {
        Ok(subject) => subject,
        Err(error) => {
            result
                .problems
                .push(format!("scenario {}: {error:#}", scenario.name));
            return result;
        }
    };
    let implementations = implementations.unwrap_or(subject.implementations);
    let _turn = operator_turn(subject.operator).await;
    for implementation in implementations {
        let source = implementation.source;
        let module = match tokio::task::spawn_blocking(move || source.build()).await {
            Ok(module) => module,
            Err(error) => {
                result.problems.push(format!(
                    "scenario {}: building the {} implementation failed: {error}",
                    scenario.name, implementation.language
                ));
                continue;
            }
        };
        for pass in Pass::ALL {
            let report = runner::run(
                suite,
                scenario,
                subject,
                implementation,
                module.clone(),
                pass,
            )
            .await;
            result.runs.push(report.who());
            if let Some(failure) = &report.failure {
                result.problems.push(format!(
                    "scenario {}: {} failed: {failure}",
                    scenario.name,
                    report.who()
                ));
            }
            match &result.reference {
                None => result.reference = Some(report),
                Some(reference) => {
                    if let Some(difference) = report::compare(reference, &report) {
                        result.problems.push(difference);
                    }
                }
            }
        }
    }
    result
}
