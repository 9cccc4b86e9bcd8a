//! Running one scenario against one implementation in one pass.
//!
//! The host runs in this process as a library: a [`Runtime`] and an [`OperatorManager`] per run,
//! with swapping enabled (a snapshot directory of the run's own) but never by idleness, so that
//! swaps happen exactly where the runner forces them. Each run has namespaces and a fake HTTP
//! server of its own; what it leaves is removed afterwards, with the operator still running so
//! that it releases its finalizers.

mod cluster;
mod steps;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::Value;
use wasm_operator::egress::AdminPolicy;
use wasm_operator::metrics::{HostMetrics, OperatorLabels};
use wasm_operator::operator::{ManagerConfig, OperatorManager, OperatorSpec, SwapConfig};
use wasm_operator::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use wasm_operator::scheduler::workqueue::BackoffConfig;

use crate::fake_http::{closed_url, FakeHttp};
use crate::normalize::Normalizer;
use crate::scenario::{Scenario, Step};
use crate::subjects::{Implementation, Subject};
use crate::transcript::{Entry, Recorder};

/// The two passes every scenario runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A forced swap-out and swap-in of the operator between every two steps.
    SwapBetweenSteps,
    /// No swapping.
    NoSwap,
}

impl Pass {
    pub const ALL: [Pass; 2] = [Pass::SwapBetweenSteps, Pass::NoSwap];

    pub fn label(self) -> &'static str {
        match self {
            Pass::SwapBetweenSteps => "swap between steps",
            Pass::NoSwap => "no swap",
        }
    }
}

/// What the runs of a test process share.
pub struct Suite {
    pub client: Client,
    runtime: Runtime,
    /// How long a waiting step waits.
    pub wait_timeout: Duration,
}

impl Suite {
    /// A suite on `client`, with precompiled modules cached in `module_cache`.
    pub fn new(
        client: Client,
        module_cache: PathBuf,
        wait_timeout: Duration,
    ) -> anyhow::Result<Suite> {
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: module_cache,
            epoch_tick: Duration::from_millis(10),
        })?;
        Ok(Suite {
            client,
            runtime,
            wait_timeout,
        })
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub scenario: String,
    pub language: &'static str,
    pub pass: Pass,
    /// `step N (label)` for each step, for reports.
    pub step_labels: Vec<String>,
    pub transcript: Vec<Entry>,
    /// The reconciled kind's objects at the end, normalized.
    pub final_state: Vec<Value>,
    /// Why loading the operator failed, in scenarios where it must (normalized).
    pub load_error: Option<String>,
    /// What went wrong, if anything did.
    pub failure: Option<String>,
}

impl RunReport {
    /// `go, swap between steps`.
    pub fn who(&self) -> String {
        format!("{}, {}", self.language, self.pass.label())
    }
}

/// The state of a run in progress, used by the steps.
struct Run<'a> {
    client: &'a Client,
    manager: &'a OperatorManager,
    recorder: &'a Recorder,
    http: &'a FakeHttp,
    operator_name: String,
    /// `${ns}`.
    namespace: String,
    /// Every role's namespace name.
    namespaces: BTreeMap<String, String>,
    wait_timeout: Duration,
}

impl Run<'_> {
    fn namespace_of(&self, role: &str) -> anyhow::Result<String> {
        self.namespaces
            .get(role)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no namespace role {role:?}"))
    }
}

/// Namespace names of a run: `c<counter><random>-<role>`, unique in the cluster.
fn namespace_names(roles: &[String]) -> BTreeMap<String, String> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let prefix = format!(
        "c{run}{:05x}{:x}",
        nanos & 0xfffff,
        std::process::id() & 0xfff
    );
    roles
        .iter()
        .map(|role| (role.clone(), format!("{prefix}-{role}")))
        .collect()
}

/// Runs `scenario` with `implementation` of `subject` in `pass`.
pub async fn run(
    suite: &Suite,
    scenario: &Scenario,
    subject: &Subject,
    implementation: &Implementation,
    module: Arc<[u8]>,
    pass: Pass,
) -> RunReport {
    let mut report = RunReport {
        scenario: scenario.name.clone(),
        language: implementation.language,
        pass,
        step_labels: scenario
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| format!("step {} ({})", index + 1, step.label()))
            .collect(),
        transcript: Vec::new(),
        final_state: Vec::new(),
        load_error: None,
        failure: None,
    };
    if let Err(error) = run_into(suite, scenario, subject, module, pass, &mut report).await {
        report.failure.get_or_insert_with(|| format!("{error:#}"));
    }
    report
}

async fn run_into(
    suite: &Suite,
    scenario: &Scenario,
    subject: &Subject,
    module: Arc<[u8]>,
    pass: Pass,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let client = &suite.client;
    let roles = scenario.namespace_roles();
    let namespaces = namespace_names(&roles);
    let http = FakeHttp::start().await?;
    let closed = closed_url()?;
    let mut vars = namespaces.clone();
    vars.insert("http".into(), http.url().to_owned());
    vars.insert("closed".into(), closed.clone());
    let normalizer = Normalizer::new(
        vars.iter()
            .map(|(key, value)| (value.clone(), format!("${{{key}}}")))
            .collect(),
    );
    let scenario = scenario.expanded(&vars)?;
    let namespace_list: Vec<String> = namespaces.values().cloned().collect();
    let up_front: Vec<&String> = std::iter::once(&"ns".to_owned())
        .chain(scenario.namespaces.iter())
        .filter_map(|role| namespaces.get(role))
        .collect();
    for name in up_front {
        cluster::create_namespace(client, name).await?;
    }

    let recorder = Recorder::new();
    let _logs = crate::logs::capture(&scenario.operator, &recorder);
    let state_dir = tempfile::tempdir()?;
    let config = ManagerConfig {
        http_timeout: Duration::from_secs(2),
        http_max_response_bytes: 64 * 1024,
        // The scenarios' HTTP servers are on loopback, which the host denies by default.
        egress: AdminPolicy::allowing_networks(&["127.0.0.0/8"]),
        stop_deadline: Duration::from_secs(10),
        reconcile_observer: Some(recorder.reconcile_observer()),
        host_call_observer: Some(recorder.host_call_observer()),
        swap: SwapConfig {
            state_dir: Some(state_dir.path().to_owned()),
            swap_after: None,
            memory_budget: None,
            pre_wake: None,
            ..SwapConfig::default()
        },
        ..ManagerConfig::default()
    };
    let manager = OperatorManager::new(
        suite.runtime.clone(),
        client.clone(),
        HostMetrics::new(),
        config,
    );
    // The same instance name in every language: the host uses it as the default field manager,
    // which shows in managedFields that operators send back.
    let operator_name = scenario.operator.clone();
    let spec = OperatorSpec {
        name: operator_name.clone(),
        wasm: module,
        allow_http: scenario.allow_http.clone(),
        limits: InstanceLimits {
            max_memory_bytes: 128 << 20,
            call_deadline: Duration::from_secs(10),
        },
        config: scenario.config.clone(),
        backoff: BackoffConfig {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        },
        client: None,
        swap_after: None,
        read_access: None,
    };
    let run = Run {
        client,
        manager: &manager,
        recorder: &recorder,
        http: &http,
        operator_name: operator_name.clone(),
        namespace: namespaces["ns"].clone(),
        namespaces: namespaces.clone(),
        wait_timeout: suite.wait_timeout,
    };

    let outcome = async {
        let loaded = manager.load(spec).await;
        match (loaded, &scenario.load_error) {
            (Ok(()), None) => {}
            (Err(error), None) => anyhow::bail!("loading the operator: {error}"),
            (Ok(()), Some(expected)) => {
                anyhow::bail!(
                    "loading the operator succeeded; expected it to fail with {expected:?}"
                )
            }
            (Err(error), Some(expected)) => {
                let message = error.to_string();
                anyhow::ensure!(
                    message.contains(expected.as_str()),
                    "loading the operator failed with {message:?}, expected {expected:?}"
                );
                report.load_error = Some(normalizer.text(&message));
            }
        }
        let last = scenario.steps.len().saturating_sub(1);
        let mut previous_started = Instant::now();
        for (index, step) in scenario.steps.iter().enumerate() {
            recorder.set_step(index);
            let label = &report.step_labels[index];
            let started = Instant::now();
            run.step(step, previous_started)
                .await
                .map_err(|e| anyhow::anyhow!("{label}: {e:#}"))?;
            previous_started = started;
            if pass == Pass::SwapBetweenSteps && index < last {
                steps::swap(&manager, &operator_name)
                    .await
                    .map_err(|e| anyhow::anyhow!("after {label}: {e:#}"))?;
            }
        }
        // The last step may have been satisfied halfway through a reconcile: let it finish, so
        // that its remaining calls and its outcome are in the transcript whatever the timing.
        steps::settle(&manager, &operator_name, &recorder, suite.wait_timeout).await?;
        // Every forced swap-out wrote a snapshot (an already swapped-out operator would not
        // count, but the runner swaps it back in each time).
        let forced = scenario
            .steps
            .iter()
            .filter(|step| matches!(step, Step::Swap {}))
            .count()
            + match pass {
                Pass::SwapBetweenSteps => last,
                Pass::NoSwap => 0,
            };
        let labels = OperatorLabels {
            operator: operator_name.clone(),
        };
        let swapped = manager.metrics().swap_outs.get_or_create(&labels).get();
        anyhow::ensure!(
            swapped == forced as u64,
            "the runner forced {forced} swap-outs but the host counted {swapped}"
        );
        anyhow::Ok(())
    }
    .await;
    recorder.stop();
    report.transcript =
        recorder.transcript(&namespace_list, &normalizer, scenario.reconcile_messages);
    if let Err(error) = outcome {
        report.failure = Some(format!("{error:#}"));
    }
    match cluster::final_state(client, subject.reconciles, &namespace_list).await {
        Ok(objects) => report.final_state = objects.iter().map(|o| normalizer.value(o)).collect(),
        Err(error) => {
            report
                .failure
                .get_or_insert_with(|| format!("reading the final state: {error:#}"));
        }
    }

    // Clean-up, with the operator still running so that it lets go of its finalizers.
    let cleanup = cluster::remove_all(
        client,
        subject.reconciles,
        &namespace_list,
        Duration::from_secs(20),
    )
    .await;
    manager.shutdown().await;
    cluster::delete_namespaces(client, &namespace_list).await;
    cleanup
}
