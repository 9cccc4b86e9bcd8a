//! The TestResource custom resource (crds/testresource.yaml): a nonce and nothing else.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// `TestResource.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "demo.wasm-operator.dev",
    version = "v1alpha1",
    kind = "TestResource",
    namespaced,
    // The schema lives in crds/testresource.yaml.
    schema = "disabled"
)]
pub struct TestResourceSpec {
    pub nonce: i64,
}
