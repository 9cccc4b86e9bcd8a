//! `wasm-operator run`: runs a set of operators against a cluster until SIGTERM or SIGINT.
//!
//! Operators come from `--operator NAME=FILE.wasm` flags and/or the `operators` of a YAML
//! `--config` file (flags override the file's host-wide settings). On SIGTERM/SIGINT the host
//! turns not-ready, stops taking work, lets in-flight reconciles finish within
//! `--shutdown-deadline`, and exits 0.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::process::{
    clear_state_dir, default_cache_dir, default_state_dir, run_command, shutdown_signal, LogFormat,
    OperationsEndpoint,
};
use super::run_config::{
    allow_http_by_operator, parse_bytes, parse_duration, parse_socket_addr, parse_swap_after,
    parse_watch_scope, split_assignment, ConfigFile,
};
use crate::egress::AdminPolicy;
use crate::kube::watch_scope::WatchScope;
use crate::metrics::HostMetrics;
use crate::operator::{ManagerConfig, OperatorManager, OperatorSpec, SwapConfig};
use crate::replay::record::Recorder;
use crate::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use crate::scheduler::workqueue::BackoffConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kubeconfig to use; default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// An operator to run (repeatable).
    #[arg(long = "operator", value_name = "NAME=FILE.wasm")]
    pub operators: Vec<String>,
    /// Let operator NAME make HTTP requests to URLs starting with PREFIX (repeatable).
    #[arg(long = "allow-http", value_name = "NAME=PREFIX")]
    pub allow_http: Vec<String>,
    /// Admin egress bound: operators' HTTP prefixes must lie under one of these URL prefixes
    /// (repeatable) [default: any prefix].
    #[arg(long = "egress-allow-prefix", value_name = "PREFIX")]
    pub egress_allow_prefix: Vec<String>,
    /// Let operators reach this non-public network (CIDR, e.g. 127.0.0.1/32; repeatable);
    /// loopback, link-local, private, CGNAT, multicast and similar ranges are denied otherwise.
    #[arg(long = "egress-allow-network", value_name = "CIDR")]
    pub egress_allow_network: Vec<String>,
    /// YAML file with the same settings and an `operators` list.
    #[arg(long, value_name = "FILE.yaml")]
    pub config: Option<PathBuf>,
    /// Where /metrics, /healthz and /readyz are served [default: 127.0.0.1:9100].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Directory of precompiled modules [default: ~/.cache/wasm-operator/modules].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Longest a single call into an operator may run [default: 5s].
    #[arg(long, value_name = "DURATION")]
    pub call_deadline: Option<String>,
    /// Linear-memory cap of each operator [default: 64Mi].
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,
    /// Retry delay after a first failed reconcile; doubles per failure [default: 5ms].
    #[arg(long, value_name = "DURATION")]
    pub backoff_base: Option<String>,
    /// Longest retry delay [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub backoff_max: Option<String>,
    /// How long in-flight reconciles may take to finish at shutdown [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub shutdown_deadline: Option<String>,
    /// Upper bound of an operator's outbound HTTP request [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub http_timeout: Option<String>,
    /// Directory for the snapshots of swapped-out operators, which the next host process on it
    /// resumes (created with mode 0700) [default: $XDG_STATE_HOME/wasm-operator/snapshots or
    /// ~/.local/state/...].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Swap an operator out after it has been idle this long, or `never` [default: 60s].
    #[arg(long, value_name = "DURATION")]
    pub swap_after: Option<String>,
    /// Swap out the least recently used idle operators while the linear memory of resident
    /// ones exceeds SIZE (e.g. 256Mi) [default: no budget].
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<String>,
    /// Swap an operator in this long before its next RequeueAfter or retry timer is due, so
    /// the reconcile does not wait for the swap-in (`0s`: off) [default: 1s].
    #[arg(long, value_name = "DURATION")]
    pub pre_wake: Option<String>,
    /// How operators' watches of one kind in single namespaces are opened: `cluster` shares one
    /// cluster-wide watch among them when the host may list and watch the kind everywhere,
    /// `namespace` opens one per namespace [default: cluster].
    #[arg(long, value_name = "SCOPE")]
    pub watch_scope: Option<String>,
    /// Record every operator's reconciles and host calls, with the answers, to DIR/NAME.jsonl:
    /// a tape that `wasm-operator test MODULE --replay DIR/NAME.jsonl` replays offline.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// One operator to start.
#[derive(Debug)]
pub struct PlannedOperator {
    pub name: String,
    pub module: PathBuf,
    pub allow_http: Vec<String>,
    pub config: Value,
    pub limits: InstanceLimits,
    /// `None`: the host-wide swap period.
    pub swap_after: Option<Duration>,
}

/// Everything `run` needs, after merging the file and the flags.
#[derive(Debug)]
pub struct RunSettings {
    pub kubeconfig: Option<PathBuf>,
    pub metrics_addr: std::net::SocketAddr,
    pub cache_dir: PathBuf,
    pub backoff: BackoffConfig,
    pub shutdown_deadline: Duration,
    pub http_timeout: Duration,
    /// The admin's bounds on outbound HTTP (`--egress-allow-prefix`, `--egress-allow-network`).
    pub egress: AdminPolicy,
    pub swap: SwapConfig,
    pub watch_scope: WatchScope,
    /// Where to write tapes (`--record`); `None`: no recording.
    pub record: Option<PathBuf>,
    pub operators: Vec<PlannedOperator>,
}

/// Why 60 s: swapping out costs a few milliseconds per MiB the operator changed (written and
/// fsynced) and swapping in about a millisecond, so an operator woken more than about once
/// a minute is cheaper kept resident, while one waiting for people or slow timers gives its
/// memory back within a minute of its last reconcile.
const DEFAULT_SWAP_AFTER: &str = "60s";

/// Why 1 s: a swap-in takes about a millisecond with the snapshot in the page cache and its
/// first reconcile tens of milliseconds more with the snapshot on disk; a second ahead covers both with room for a loaded
/// machine, and keeping an operator resident one second longer per timer costs nothing that
/// matters.
const DEFAULT_PRE_WAKE: &str = "1s";

/// Merges the config file (if any) and the flags; the error says which setting is wrong.
pub fn resolve(args: &Args) -> Result<RunSettings, String> {
    let file = match &args.config {
        Some(path) => ConfigFile::read(path)?,
        None => ConfigFile::default(),
    };
    let pick = |flag: &Option<String>, from_file: &Option<String>, default: &str| {
        flag.clone()
            .or_else(|| from_file.clone())
            .unwrap_or_else(|| default.to_string())
    };
    let call_deadline = parse_duration(&pick(&args.call_deadline, &file.call_deadline, "5s"))?;
    let memory_limit = parse_bytes(&pick(&args.memory_limit, &file.memory_limit, "64Mi"))?;
    let backoff = BackoffConfig {
        base: parse_duration(&pick(&args.backoff_base, &file.backoff_base, "5ms"))?,
        max: parse_duration(&pick(&args.backoff_max, &file.backoff_max, "5m"))?,
    };
    if backoff.base.is_zero() || backoff.base > backoff.max {
        return Err(format!(
            "--backoff-base ({:?}) must be above zero and at most --backoff-max ({:?})",
            backoff.base, backoff.max
        ));
    }
    let swap_after = parse_swap_after(&pick(
        &args.swap_after,
        &file.swap_after,
        DEFAULT_SWAP_AFTER,
    ))?;
    let memory_budget = args
        .memory_budget
        .clone()
        .or_else(|| file.memory_budget.clone())
        .map(|text| parse_bytes(&text).map(|bytes| bytes as u64))
        .transpose()?;
    let swap = SwapConfig {
        state_dir: Some(
            args.state_dir
                .clone()
                .or_else(|| file.state_dir.clone())
                .map_or_else(default_state_dir, Ok)?,
        ),
        swap_after,
        memory_budget,
        pre_wake: Some(parse_duration(&pick(
            &args.pre_wake,
            &file.pre_wake,
            DEFAULT_PRE_WAKE,
        ))?),
        identity: "wasm-operator run".into(),
    };
    let mut operators = Vec::new();
    for entry in file.operators {
        let limits = InstanceLimits {
            call_deadline: entry
                .call_deadline
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .unwrap_or(call_deadline),
            max_memory_bytes: entry
                .memory_limit
                .as_deref()
                .map(parse_bytes)
                .transpose()?
                .unwrap_or(memory_limit),
        };
        let operator_swap_after = match entry.swap_after.as_deref() {
            // `never` for one operator must win over the host's period (see OperatorSpec).
            Some(text) => Some(parse_swap_after(text)?.unwrap_or(Duration::MAX)),
            None => None,
        };
        operators.push(PlannedOperator {
            name: entry.name,
            module: entry.module,
            allow_http: entry.allow_http,
            config: entry
                .config
                .unwrap_or_else(|| Value::Object(Default::default())),
            limits,
            swap_after: operator_swap_after,
        });
    }
    for flag in &args.operators {
        let (name, module) = split_assignment("--operator", flag)?;
        if operators.iter().any(|planned| planned.name == name) {
            return Err(format!(
                "operator {name:?} is given twice: each operator needs its own name"
            ));
        }
        operators.push(PlannedOperator {
            name: name.to_string(),
            module: PathBuf::from(module),
            allow_http: Vec::new(),
            config: Value::Object(Default::default()),
            limits: InstanceLimits {
                call_deadline,
                max_memory_bytes: memory_limit,
            },
            swap_after: None,
        });
    }
    for (name, prefixes) in allow_http_by_operator(&args.allow_http)? {
        let planned = operators
            .iter_mut()
            .find(|planned| planned.name == name)
            .ok_or_else(|| {
                format!(
                    "--allow-http names operator {name:?}, which is not among the operators to run"
                )
            })?;
        planned.allow_http.extend(prefixes);
    }
    if operators.is_empty() {
        return Err(
            "no operators to run: pass --operator NAME=FILE.wasm or a --config file with operators"
                .into(),
        );
    }
    // Flags replace the file's lists rather than adding to them, like every other setting.
    let pick_list = |flag: &Vec<String>, from_file: &Vec<String>| {
        if flag.is_empty() {
            from_file.clone()
        } else {
            flag.clone()
        }
    };
    let egress = AdminPolicy::from_flags(
        &pick_list(&args.egress_allow_prefix, &file.egress_allow_prefixes),
        &pick_list(&args.egress_allow_network, &file.egress_allow_networks),
    )?;
    Ok(RunSettings {
        egress,
        kubeconfig: args.kubeconfig.clone().or(file.kubeconfig),
        metrics_addr: parse_socket_addr(&pick(
            &args.metrics_addr,
            &file.metrics_addr,
            "127.0.0.1:9100",
        ))?,
        cache_dir: args
            .cache_dir
            .clone()
            .or(file.cache_dir)
            .map_or_else(default_cache_dir, Ok)?,
        backoff,
        shutdown_deadline: parse_duration(&pick(
            &args.shutdown_deadline,
            &file.shutdown_deadline,
            "10s",
        ))?,
        http_timeout: parse_duration(&pick(&args.http_timeout, &file.http_timeout, "10s"))?,
        swap,
        watch_scope: parse_watch_scope(&pick(&args.watch_scope, &file.watch_scope, "cluster"))?,
        record: args.record.clone(),
        operators,
    })
}

pub fn main(args: Args) -> ExitCode {
    run_command(
        "run",
        args.log_format,
        || resolve(&args),
        |settings| run(settings, shutdown_signal()),
    )
}

async fn kube_client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|error| format!("cannot read kubeconfig {}: {error}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|error| format!("kubeconfig {} is not usable: {error}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|error| {
            format!("no Kubernetes configuration found ({error}); pass --kubeconfig PATH")
        })?,
    };
    kube::Client::try_from(config)
        .map_err(|error| format!("cannot create the Kubernetes client: {error}"))
}

/// Runs the host with `settings` until `shutdown` resolves.
pub async fn run(
    settings: RunSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let metrics = HostMetrics::new();
    let endpoint = OperationsEndpoint::start(settings.metrics_addr, metrics.clone()).await?;

    let client = kube_client(settings.kubeconfig.as_ref()).await?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|error| format!("the Kubernetes API server does not answer: {error}"))?;
    tracing::info!(version = %version.git_version, "connected to the Kubernetes API server");

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: settings.cache_dir.clone(),
        epoch_tick: Duration::from_millis(10),
    })
    .map_err(|error| format!("cannot start the Wasm runtime: {error:#}"))?;
    if let Some(state_dir) = &settings.swap.state_dir {
        clear_state_dir(state_dir)?;
    }
    let recorder = match &settings.record {
        Some(dir) => Some(Recorder::create(dir).map_err(|error| {
            format!(
                "cannot create the recording directory {}: {error}",
                dir.display()
            )
        })?),
        None => None,
    };
    let (reconcile_observer, host_call_observer) =
        recorder.as_ref().map(Recorder::observers).unzip();
    let manager_config = ManagerConfig {
        http_timeout: settings.http_timeout,
        egress: settings.egress.clone(),
        stop_deadline: settings.shutdown_deadline,
        swap: settings.swap.clone(),
        watch_scope: settings.watch_scope,
        reconcile_observer,
        host_call_observer,
        ..ManagerConfig::default()
    };
    let manager = OperatorManager::new(runtime, client, metrics, manager_config);
    for planned in settings.operators {
        let wasm = match std::fs::read(&planned.module) {
            Ok(wasm) => wasm,
            Err(error) => {
                tracing::error!(operator = %planned.name, "cannot read {}: {error}", planned.module.display());
                continue;
            }
        };
        let spec = OperatorSpec {
            name: planned.name.clone(),
            wasm: Arc::from(wasm),
            allow_http: planned.allow_http,
            limits: planned.limits,
            config: planned.config,
            backoff: settings.backoff,
            client: None,
            swap_after: planned.swap_after,
            read_access: None,
        };
        if let Some(recorder) = &recorder {
            if let Err(error) = recorder.add_operator(&spec.name, spec.init_input()) {
                return Err(format!(
                    "cannot write {}: {error}",
                    recorder.tape_path(&spec.name).display()
                ));
            }
        }
        match manager.load(spec).await {
            Ok(()) => tracing::info!(operator = %planned.name, "operator loaded"),
            // One broken operator must not keep the others from running; its state says why.
            Err(error) => tracing::error!(operator = %planned.name, "{error}"),
        }
    }
    endpoint.ready();

    shutdown.await;
    endpoint.stop(manager.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(flags: &[&str]) -> Args {
        Cli::parse_from(std::iter::once("run").chain(flags.iter().copied())).args
    }

    #[test]
    fn flags_give_operators_allowlists_and_limits() {
        let settings = resolve(&args(&[
            "--operator",
            "web=web.wasm",
            "--operator",
            "db=db.wasm",
            "--allow-http",
            "web=http://127.0.0.1:9090/",
            "--call-deadline",
            "2s",
            "--memory-limit",
            "32Mi",
            "--metrics-addr",
            "127.0.0.1:0",
        ]))
        .unwrap();
        assert_eq!(settings.operators.len(), 2);
        assert_eq!(settings.operators[0].allow_http, ["http://127.0.0.1:9090/"]);
        assert!(settings.operators[1].allow_http.is_empty());
        assert_eq!(
            settings.operators[0].limits.call_deadline,
            Duration::from_secs(2)
        );
        assert_eq!(settings.operators[1].limits.max_memory_bytes, 32 << 20);
        assert_eq!(settings.metrics_addr.port(), 0);
    }

    #[test]
    fn allow_http_for_an_unknown_operator_is_an_error() {
        let error = resolve(&args(&[
            "--operator",
            "web=web.wasm",
            "--allow-http",
            "wbe=http://x/",
        ]))
        .unwrap_err();
        assert!(error.contains("\"wbe\""), "{error}");
    }

    #[test]
    fn egress_policy_comes_from_the_file_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.yaml");
        std::fs::write(
            &path,
            "egressAllowNetworks: [127.0.0.1/32]\negressAllowPrefixes: [\"http://127.0.0.1:9/\"]\n\
             operators:\n  - {name: web, module: web.wasm}\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let settings = resolve(&args(&["--config", config])).unwrap();
        assert_eq!(
            settings.egress.allowed_networks(),
            ["127.0.0.1/32".parse().unwrap()]
        );
        let settings = resolve(&args(&[
            "--config",
            config,
            "--egress-allow-network",
            "10.96.0.0/12",
        ]))
        .unwrap();
        assert_eq!(
            settings.egress.allowed_networks(),
            ["10.96.0.0/12".parse().unwrap()]
        );
        let error = resolve(&args(&[
            "--operator",
            "web=web.wasm",
            "--egress-allow-network",
            "10.0.0.0/40",
        ]))
        .unwrap_err();
        assert!(error.starts_with("--egress-allow-network: "), "{error}");
        let error = resolve(&args(&[
            "--operator",
            "web=web.wasm",
            "--egress-allow-prefix",
            "metrics:9090",
        ]))
        .unwrap_err();
        assert!(error.starts_with("--egress-allow-prefix: "), "{error}");
    }

    #[test]
    fn running_nothing_is_an_error_that_says_what_to_pass() {
        assert!(resolve(&args(&[]))
            .unwrap_err()
            .contains("--operator NAME=FILE.wasm"));
    }

    #[test]
    fn the_config_file_gives_defaults_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.yaml");
        std::fs::write(
            &path,
            "callDeadline: 3s\nbackoffBase: 10ms\nbackoffMax: 1s\noperators:\n  - name: web\n    module: web.wasm\n    \
             memoryLimit: 16Mi\n    config: {mode: fast}\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let settings = resolve(&args(&[
            "--config",
            config,
            "--backoff-max",
            "2s",
            "--operator",
            "db=db.wasm",
        ]))
        .unwrap();
        assert_eq!(
            settings.backoff,
            BackoffConfig {
                base: Duration::from_millis(10),
                max: Duration::from_secs(2)
            }
        );
        let web = &settings.operators[0];
        assert_eq!(web.module, dir.path().join("web.wasm"));
        assert_eq!(
            web.limits,
            InstanceLimits {
                call_deadline: Duration::from_secs(3),
                max_memory_bytes: 16 << 20
            }
        );
        assert_eq!(web.config["mode"], "fast");
        assert_eq!(settings.operators[1].limits.max_memory_bytes, 64 << 20);
    }

    #[test]
    fn backoff_base_above_max_is_refused() {
        let error = resolve(&args(&[
            "--operator",
            "a=a.wasm",
            "--backoff-base",
            "2s",
            "--backoff-max",
            "1s",
        ]))
        .unwrap_err();
        assert!(error.contains("at most --backoff-max"), "{error}");
    }
}
