//! The ring example in the host against the real control plane: three instances of one module
//! over three namespaces pass a TestResource's nonce all the way round, and a later, higher
//! nonce overtakes the first.

use kube::api::{Patch, PatchParams};
use operators_tests::kinds::{self, field, wait_for_object, Kind};
use operators_tests::{spec, Harness, Lang};
use serde_json::json;
use wasm_operator::operator::OperatorError;
use wasm_operator_test_support::{test_namespace, TestNamespace};

const RING_SIZE: usize = 3;

async fn wait_for_nonce_everywhere(harness: &Harness, ring: &[TestNamespace], nonce: i64) {
    for namespace in ring {
        let api = kinds::api(&harness.client, &namespace.name, Kind::TestResource);
        let what = format!("nonce {nonce} in {}", namespace.name);
        wait_for_object(&api, "token", &what, |token| {
            field(token, "/spec/nonce") == Some(&json!(nonce))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_of_three_namespaces_propagates_the_nonce_around() {
    for lang in Lang::available("ring") {
        let harness = Harness::start().await;
        let mut ring = Vec::new();
        for index in 0..RING_SIZE {
            ring.push(test_namespace(&harness.client, &format!("ring-{lang}-{index}")).await);
        }
        for index in 0..RING_SIZE {
            let config = json!({"inNamespace": ring[index].name, "outNamespace": ring[(index + 1) % RING_SIZE].name});
            harness
                .load(&format!("ring-{lang}-{index}"), lang, "ring", config)
                .await;
        }

        kinds::create(
            &harness.client,
            &ring[0].name,
            Kind::TestResource,
            "token",
            json!({"nonce": 1}),
        )
        .await;
        wait_for_nonce_everywhere(&harness, &ring, 1).await;

        let raise = json!({"spec": {"nonce": 5}});
        kinds::api(&harness.client, &ring[0].name, Kind::TestResource)
            .patch("token", &PatchParams::default(), &Patch::Merge(&raise))
            .await
            .unwrap();
        wait_for_nonce_everywhere(&harness, &ring, 5).await;

        // The last instance found nonce 5 in the first namespace and left it alone.
        let last = format!("ring-{lang}-{}", RING_SIZE - 1);
        let first_key = format!("{}/token", ring[RING_SIZE - 1].name);
        assert!(harness
            .reconciles_of(&last)
            .iter()
            .any(|r| r.key.to_string() == first_key));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_refuses_to_start_without_its_namespaces() {
    for lang in Lang::available("ring") {
        let harness = Harness::start().await;
        let incomplete = spec(
            &format!("ring-{lang}-broken"),
            lang,
            "ring",
            json!({"inNamespace": "somewhere"}),
        );
        match harness.manager.load(incomplete).await {
            Err(OperatorError::Start { reason, .. }) => {
                assert!(reason.contains("outNamespace"), "{reason}")
            }
            other => panic!("expected init to fail naming outNamespace, got {other:?}"),
        }
        harness.stop().await;
    }
}
