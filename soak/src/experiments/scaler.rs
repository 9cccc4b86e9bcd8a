//! The metrics-scaler (Rust) beside the rings, for the experiments that need a reconcile
//! waiting on the outside world: a Deployment `web` in `soak-scaler`, a MetricScaler `rps`
//! polling every second a query API on loopback that the experiment makes slow, failing or
//! hanging. What the scaler must converge to is computed here from docs/examples.md.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use operators_tests::kinds::{self, Kind};
use operators_tests::metrics_api::MetricsApi;
use serde_json::json;

use crate::host::OperatorEntry;
use crate::Env;

const NAMESPACE: &str = "soak-scaler";
const TARGET_VALUE: f64 = 10.0;
const MIN_REPLICAS: i64 = 1;
const MAX_REPLICAS: i64 = 5;

pub struct Scaler {
    pub api: MetricsApi,
}

impl Scaler {
    /// Starts the query API answering `value`, and creates (or resets) the namespace, the
    /// Deployment at one replica and the MetricScaler pointing at the API.
    pub async fn start(env: &Env, value: &str) -> anyhow::Result<Scaler> {
        let api = MetricsApi::start().await;
        api.answer_value(value);
        let namespaces: Api<Namespace> = Api::all(env.client.clone());
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
        ignore_conflict(namespaces.create(&PostParams::default(), &namespace).await)?;
        let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), NAMESPACE);
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
        });
        deployments
            .patch(
                "web",
                &PatchParams::apply("soak").force(),
                &Patch::Apply(&deployment),
            )
            .await?;
        let scalers = kinds::api(&env.client, NAMESPACE, Kind::MetricScaler);
        let scaler = json!({
            "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "MetricScaler",
            "metadata": {"name": "rps", "namespace": NAMESPACE},
            "spec": {"targetRef": {"name": "web"}, "metricsUrl": api.url(""), "query": "up",
                     "targetValue": TARGET_VALUE, "minReplicas": MIN_REPLICAS,
                     "maxReplicas": MAX_REPLICAS, "intervalSeconds": 1}
        });
        scalers
            .patch(
                "rps",
                &PatchParams::apply("soak").force(),
                &Patch::Apply(&scaler),
            )
            .await?;
        Ok(Scaler { api })
    }

    /// The scaler operator, allowed to reach the query API only.
    pub fn operator(&self, env: &Env) -> OperatorEntry {
        OperatorEntry {
            allow_http: vec![self.api.url("/")],
            ..env.example("scaler", "metrics-scaler", json!({}))
        }
    }

    /// Whether the scaler has settled on `value`: the Deployment at the replicas that value
    /// leads to and stays at (`ceil(current * value / target)` clamped to [min, max] is a fixed
    /// point there), and the status reporting the value as available.
    pub async fn converged(&self, env: &Env, value: f64) -> bool {
        let desired = settled_replicas(value);
        let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), NAMESPACE);
        let scalers: Api<DynamicObject> = kinds::api(&env.client, NAMESPACE, Kind::MetricScaler);
        let (Ok(deployment), Ok(scaler)) = (deployments.get("web").await, scalers.get("rps").await)
        else {
            return false;
        };
        let replicas = deployment.spec.replicas.unwrap_or(1) as i64;
        let status = &scaler.data["status"];
        replicas == desired
            && status["desiredReplicas"] == json!(desired)
            && status["lastValue"]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                == Some(value)
            && status["conditions"][0]["status"] == json!("True")
    }

    /// Whether the MetricScaler's status reports the metric as unavailable.
    pub async fn reports_unavailable(&self, env: &Env) -> bool {
        let scalers: Api<DynamicObject> = kinds::api(&env.client, NAMESPACE, Kind::MetricScaler);
        let Ok(scaler) = scalers.get("rps").await else {
            return false;
        };
        scaler.data["status"]["conditions"][0]["status"] == json!("False")
    }
}

/// Where the replica count settles for a constant `value`: the scaler's step repeated until
/// it no longer moves.
fn settled_replicas(value: f64) -> i64 {
    let mut replicas = 1;
    loop {
        let next = ((replicas.max(1) as f64 * value / TARGET_VALUE).ceil() as i64)
            .clamp(MIN_REPLICAS, MAX_REPLICAS);
        if next == replicas {
            return replicas;
        }
        replicas = next;
    }
}

fn ignore_conflict<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}
