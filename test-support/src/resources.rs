//! Per-test namespaces and CRD set-up.
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::cluster::control_plane;
use crate::wait::wait_for;

const FIELD_MANAGER: &str = "wasm-operator-tests";

/// A namespace of its own for one test, deleted when dropped (unless
/// `WASM_OPERATOR_KEEP_NAMESPACES` is set, to look at what a failed test left).
pub struct TestNamespace {
    pub name: String,
}

/// Creates a fresh namespace named `<prefix>-<random suffix>`.
pub async fn test_namespace(client: &Client, prefix: &str) -> TestNamespace {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("creating a test namespace: {e}"));
    TestNamespace {
        name: created.metadata.name.expect("the API server names it"),
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("WASM_OPERATOR_KEEP_NAMESPACES").is_some() {
            return;
        }
        // Drop cannot await, so delete from a short-lived runtime on another thread, with a
        // client of its own: a client's background worker lives on the runtime that built it,
        // which is the test's, blocked right here. Best effort: the control plane is thrown
        // away at the end of the run anyway.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let namespaces: Api<Namespace> = Api::all(control_plane().client().await);
                namespaces
                    .delete(&name, &DeleteParams::background())
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Applies a CustomResourceDefinition (YAML) by server-side apply and waits until it is
/// Established, so the caller can create objects of the new kind at once.
pub async fn apply_crd(client: &Client, crd_yaml: &str) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_saphyr::from_str(crd_yaml)?;
    let name = crd
        .metadata
        .name
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the CRD has no metadata.name"))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await?;
    wait_for(
        &format!("CRD {name} to be Established"),
        Duration::from_secs(30),
        || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get(&name).await.ok()?;
                let established = crd
                    .status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                established.then_some(())
            }
        },
    )
    .await;
    Ok(())
}
