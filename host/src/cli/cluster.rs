//! `wasm-operator cluster`: the host as it runs in a cluster. Operators are `WasmOperator`
//! resources (in `--namespace`, or all namespaces), each acting as its own ServiceAccount;
//! replicas divide the WasmOperators among themselves by shard Leases (one shard: only the
//! leader runs operators). Serves /healthz, /readyz (ready once connected, whatever it holds)
//! and /metrics; on SIGTERM/SIGINT stops its operators, releases its Leases and exits 0.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::process::{
    clear_state_dir, default_cache_dir, run_command, shutdown_signal, LogFormat, OperationsEndpoint,
};
use super::run_config::{parse_bytes, parse_duration, parse_socket_addr, parse_watch_scope};
use crate::cluster::identity::{host_config, pod_namespace};
use crate::cluster::source::SourceLimits;
use crate::cluster::{
    ClusterHost, ClusterSettings, ControllerSettings, LeaseSettings, TenantMaxima,
};
use crate::egress::AdminPolicy;
use crate::metrics::HostMetrics;
use crate::operator::{ManagerConfig, SwapConfig};
use crate::runtime::{InstanceLimits, Runtime, RuntimeConfig};
use crate::scheduler::workqueue::BackoffConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kubeconfig to use; default: the in-cluster ServiceAccount when KUBERNETES_SERVICE_HOST
    /// is set, else $KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Directory of the mounted ServiceAccount (token, ca.crt, namespace) used in a pod.
    #[arg(
        long,
        env = "WASM_OPERATOR_SERVICE_ACCOUNT_DIR",
        value_name = "DIR",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount"
    )]
    pub service_account_dir: PathBuf,
    /// Run the WasmOperators of this namespace only [default: all namespaces].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9100")]
    pub metrics_addr: String,
    /// Directory of precompiled modules [default: ~/.cache/wasm-operator/modules].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Directory for swap snapshots of idle operators, which the next process to run an
    /// operator resumes (a restarted host; with a directory shared by the replicas, the one
    /// taking its shard over); without it operators are never swapped.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Swap an operator out after this long without work (needs --state-dir).
    #[arg(long, value_name = "DURATION")]
    pub swap_after: Option<String>,
    /// Swap out least recently used idle operators beyond this much guest memory.
    #[arg(long, value_name = "SIZE")]
    pub memory_budget: Option<String>,
    /// Swap an operator in this long before its next RequeueAfter or retry timer is due, so
    /// the reconcile does not wait for the swap-in (`0s`: off).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub pre_wake: String,
    /// How operators' watches of one kind in single namespaces are opened: `cluster` shares one
    /// cluster-wide watch among them when the host may list and watch the kind everywhere,
    /// `namespace` opens one per namespace.
    #[arg(long, value_name = "SCOPE", default_value = "cluster")]
    pub watch_scope: String,
    /// Root of WasmOperator `spec.module.path` sources (a volume of the host); unset refuses them.
    #[arg(long, value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// Longest a single call into an operator may run, unless its WasmOperator says otherwise.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub call_deadline: String,
    /// Linear-memory cap of each operator, unless its WasmOperator says otherwise.
    #[arg(long, value_name = "SIZE", default_value = "64Mi")]
    pub memory_limit: String,
    /// Largest `spec.limits.memory` a WasmOperator may set; larger ones are clamped.
    #[arg(long, value_name = "SIZE", default_value = "256Mi")]
    pub max_memory: String,
    /// Largest `spec.limits.callDeadline` a WasmOperator may set; larger ones are clamped.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub max_call_deadline: String,
    /// Largest `spec.swap.afterIdle` a WasmOperator may set; larger ones are clamped.
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub max_swap_after_idle: String,
    /// Run only the WasmOperators matching this label selector (e.g. to shard them over hosts).
    #[arg(long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Retry delay after a first failed reconcile; doubles per failure.
    #[arg(long, value_name = "DURATION", default_value = "5ms")]
    pub backoff_base: String,
    /// Longest retry delay.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub backoff_max: String,
    /// How long in-flight reconciles may take to finish when operators stop.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub shutdown_deadline: String,
    /// Upper bound of an operator's outbound HTTP request.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub http_timeout: String,
    /// How often WasmOperator statuses are refreshed (phase, counts).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub status_interval: String,
    /// How often WasmOperators that failed are tried again.
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    pub resync_interval: String,
    /// Run without Leases, every WasmOperator here: only for a single replica.
    #[arg(long)]
    pub no_leader_election: bool,
    /// The Leases replicas share the operators by: the Lease itself with one shard, the prefix
    /// of `NAME-<shard>` and `NAME-member-<identity>` with more.
    #[arg(long, value_name = "NAME", default_value = "wasm-operator")]
    pub lease_name: String,
    /// How many shards WasmOperators are divided into, each run by one replica at a time
    /// (1: active-passive, the Lease holder runs all). Every replica must use the same number.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub shards: u32,
    /// Namespace of the Lease [default: the pod's namespace, else `default`].
    #[arg(long, value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// How long a Lease is valid without renewal (whole seconds): a replica's shards are taken
    /// over within about this period after it stops renewing.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// This replica's identity in the Leases [default: $POD_NAME, else hostname-pid].
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    pub identity: Option<String>,
    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    // Egress and module-source bounds set by the cluster admin.
    /// Operators' `allowHttp` entries must lie under one of these URL prefixes (repeatable);
    /// a WasmOperator with an entry outside them fails to load [default: any prefix].
    #[arg(long = "egress-allow-prefix", value_name = "PREFIX")]
    pub egress_allow_prefix: Vec<String>,
    /// Let operators reach this non-public network (CIDR; repeatable); loopback, link-local,
    /// private, CGNAT, multicast and similar ranges are denied otherwise.
    #[arg(long = "egress-allow-network", value_name = "CIDR")]
    pub egress_allow_network: Vec<String>,
    /// Largest module accepted from any WasmOperator source (keep it well under the pod's
    /// memory limit: a module is held about twice while it is compiled).
    #[arg(long, value_name = "SIZE", default_value = "64Mi")]
    pub max_module_size: String,
    /// Longest one WasmOperator's module fetch may take (all its requests together); WasmOperators
    /// are fetched one at a time, so this bounds how long a slow source delays the others.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub module_fetch_timeout: String,
}

/// The parsed settings.
struct Settings {
    metrics_addr: std::net::SocketAddr,
    cache_dir: PathBuf,
    manager: ManagerConfig,
    cluster: ClusterSettings,
}

fn resolve(args: &Args) -> Result<Settings, String> {
    let flag = |name: &str, parsed: Result<Duration, String>| {
        parsed.map_err(|error| format!("--{name}: {error}"))
    };
    let backoff = BackoffConfig {
        base: flag("backoff-base", parse_duration(&args.backoff_base))?,
        max: flag("backoff-max", parse_duration(&args.backoff_max))?,
    };
    if backoff.base.is_zero() || backoff.base > backoff.max {
        return Err("--backoff-base must be above zero and at most --backoff-max".into());
    }
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let lease_duration = flag("lease-duration", parse_duration(&args.lease_duration))?;
    if lease_duration < Duration::from_secs(1) || lease_duration.subsec_nanos() != 0 {
        return Err("--lease-duration must be a whole number of seconds, at least 1s".into());
    }
    if !(1..=1024).contains(&args.shards) {
        return Err("--shards must be between 1 and 1024".into());
    }
    let lease = (!args.no_leader_election).then(|| LeaseSettings {
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| pod_namespace(Some(&args.service_account_dir)))
            .unwrap_or_else(|| "default".into()),
        name: args.lease_name.clone(),
        identity: identity.clone(),
        lease_duration,
        shards: args.shards,
    });
    let swap_after = args
        .swap_after
        .as_deref()
        .map(|text| flag("swap-after", parse_duration(text)))
        .transpose()?;
    let memory_budget = args
        .memory_budget
        .as_deref()
        .map(|text| parse_bytes(text).map_err(|error| format!("--memory-budget: {error}")))
        .transpose()?;
    if (swap_after.is_some() || memory_budget.is_some()) && args.state_dir.is_none() {
        return Err(
            "--swap-after and --memory-budget need --state-dir (where snapshots are written)"
                .into(),
        );
    }
    let egress = AdminPolicy::from_flags(&args.egress_allow_prefix, &args.egress_allow_network)?;
    let limits = InstanceLimits {
        call_deadline: flag("call-deadline", parse_duration(&args.call_deadline))?,
        max_memory_bytes: parse_bytes(&args.memory_limit)
            .map_err(|error| format!("--memory-limit: {error}"))?,
    };
    let maxima = TenantMaxima {
        memory_bytes: parse_bytes(&args.max_memory)
            .map_err(|error| format!("--max-memory: {error}"))?,
        call_deadline: flag("max-call-deadline", parse_duration(&args.max_call_deadline))?,
        swap_after_idle: flag(
            "max-swap-after-idle",
            parse_duration(&args.max_swap_after_idle),
        )?,
    };
    if limits.max_memory_bytes > maxima.memory_bytes {
        return Err("--memory-limit must be at most --max-memory".into());
    }
    if limits.call_deadline > maxima.call_deadline {
        return Err("--call-deadline must be at most --max-call-deadline".into());
    }
    Ok(Settings {
        metrics_addr: parse_socket_addr(&args.metrics_addr)?,
        cache_dir: args.cache_dir.clone().map_or_else(default_cache_dir, Ok)?,
        manager: ManagerConfig {
            http_timeout: flag("http-timeout", parse_duration(&args.http_timeout))?,
            egress: egress.clone(),
            stop_deadline: flag("shutdown-deadline", parse_duration(&args.shutdown_deadline))?,
            swap: SwapConfig {
                state_dir: args.state_dir.clone(),
                swap_after,
                memory_budget: memory_budget.map(|bytes| bytes as u64),
                pre_wake: Some(flag("pre-wake", parse_duration(&args.pre_wake))?),
                identity: identity.clone(),
            },
            watch_scope: parse_watch_scope(&args.watch_scope)
                .map_err(|error| format!("--watch-scope: {error}"))?,
            ..ManagerConfig::default()
        },
        cluster: ClusterSettings {
            controller: ControllerSettings {
                namespace: args.namespace.clone(),
                selector: args.selector.clone(),
                identity,
                limits,
                maxima,
                backoff,
                status_interval: flag("status-interval", parse_duration(&args.status_interval))?,
                resync_interval: flag("resync-interval", parse_duration(&args.resync_interval))?,
                access_ttl: crate::cluster::access::DEFAULT_TTL,
            },
            lease,
            modules_dir: args.modules_dir.clone(),
            sources: source_limits(args, &egress)?,
        },
    })
}

fn source_limits(args: &Args, egress: &AdminPolicy) -> Result<SourceLimits, String> {
    let max_module_bytes = parse_bytes(&args.max_module_size)
        .map_err(|error| format!("--max-module-size: {error}"))?;
    let fetch_timeout = parse_duration(&args.module_fetch_timeout)
        .map_err(|error| format!("--module-fetch-timeout: {error}"))?;
    if max_module_bytes == 0 || fetch_timeout.is_zero() {
        return Err("--max-module-size and --module-fetch-timeout must be above zero".into());
    }
    Ok(SourceLimits {
        max_module_bytes,
        fetch_timeout,
        allowed_networks: egress.allowed_networks(),
    })
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "wasm-operator".into());
    format!("{host}-{}", std::process::id())
}

pub fn main(args: Args) -> ExitCode {
    let log_format = args.log_format;
    run_command(
        "cluster",
        log_format,
        move || resolve(&args).map(|settings| (args, settings)),
        |(args, settings)| run(args, settings),
    )
}

async fn run(args: Args, settings: Settings) -> Result<(), String> {
    let metrics = HostMetrics::new();
    let endpoint = OperationsEndpoint::start(settings.metrics_addr, metrics.clone()).await?;

    let config = host_config(args.kubeconfig.as_deref(), Some(&args.service_account_dir)).await?;
    let client = kube::Client::try_from(config.clone())
        .map_err(|error| format!("cannot create the Kubernetes client: {error}"))?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|error| format!("the Kubernetes API server does not answer: {error}"))?;
    tracing::info!(version = %version.git_version, url = %config.cluster_url, "connected to the Kubernetes API server");

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: settings.cache_dir.clone(),
        epoch_tick: Duration::from_millis(10),
    })
    .map_err(|error| format!("cannot start the Wasm runtime: {error:#}"))?;
    if let Some(state_dir) = &args.state_dir {
        clear_state_dir(state_dir)?;
    }
    let host = ClusterHost::new(runtime, config, metrics, settings.manager, settings.cluster)?;
    endpoint.ready();
    let result = host.run(shutdown_signal()).await;
    endpoint.stop(async {}).await;
    result
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

    fn resolve_flags(flags: &[&str]) -> Result<Settings, String> {
        resolve(&Cli::parse_from(std::iter::once("cluster").chain(flags.iter().copied())).args)
    }

    #[test]
    fn flags_give_the_lease_scope_and_defaults() {
        let settings = resolve_flags(&[
            "--namespace",
            "team-a",
            "--lease-namespace",
            "ops",
            "--lease-duration",
            "3s",
            "--identity",
            "host-a",
            "--memory-limit",
            "32Mi",
        ])
        .unwrap();
        let lease = settings.cluster.lease.unwrap();
        assert_eq!(
            (
                lease.namespace.as_str(),
                lease.name.as_str(),
                lease.identity.as_str()
            ),
            ("ops", "wasm-operator", "host-a")
        );
        assert_eq!(lease.lease_duration, Duration::from_secs(3));
        let controller = settings.cluster.controller;
        assert_eq!(controller.namespace.as_deref(), Some("team-a"));
        assert_eq!(controller.limits.max_memory_bytes, 32 << 20);
        assert_eq!(controller.status_interval, Duration::from_secs(10));
        assert!(resolve_flags(&["--no-leader-election"])
            .unwrap()
            .cluster
            .lease
            .is_none());
    }

    #[test]
    fn a_lease_duration_must_be_whole_seconds() {
        for bad in ["500ms", "1500ms", "0s"] {
            let error = resolve_flags(&["--lease-duration", bad]).err().unwrap();
            assert!(error.contains("whole number of seconds"), "{bad}: {error}");
        }
    }

    #[test]
    fn swapping_needs_a_state_dir() {
        let error = resolve_flags(&["--swap-after", "30s"]).err().unwrap();
        assert!(error.contains("--state-dir"), "{error}");
        let settings = resolve_flags(&["--swap-after", "30s", "--state-dir", "/tmp/x"]).unwrap();
        assert_eq!(
            settings.manager.swap.swap_after,
            Some(Duration::from_secs(30))
        );
    }
}
