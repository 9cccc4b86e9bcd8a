//! The counter example in the host against the real control plane: across many spec updates it
//! keeps its in-memory map, so the status lists every generation, counts them and carries the
//! FNV-1a checksum of all of them; deleting and re-creating a Counter starts its list afresh
//! while the count and checksum go on.

use kube::api::{DeleteParams, Patch, PatchParams};
use operators_tests::counter::{checksum_over, checksum_text, observed, CHECKSUM_START};
use operators_tests::kinds::{self, field, wait_for_absence, wait_for_object, Kind};
use operators_tests::{Harness, Lang, PROMPTLY};
use serde_json::json;
use wasm_operator_test_support::{test_namespace, wait_for};

const UPDATES: i64 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_keeps_its_map_across_many_updates() {
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let namespace = test_namespace(&harness.client, &format!("counter-{lang}")).await;
        let ns = namespace.name.as_str();
        harness
            .load(&format!("counter-{lang}"), lang, "counter", json!({}))
            .await;
        let counters = kinds::api(&harness.client, ns, Kind::Counter);
        kinds::create(
            &harness.client,
            ns,
            Kind::Counter,
            "tally",
            json!({"step": 1}),
        )
        .await;
        wait_for_object(&counters, "tally", "generation 1 in the status", |c| {
            observed(c) == [1]
        })
        .await;

        // One update at a time: updates faster than reconciles would be merged into one
        // reconcile of the latest generation, and the list would rightly skip some.
        for step in 2..=UPDATES {
            let update = json!({"spec": {"step": step}});
            counters
                .patch("tally", &PatchParams::default(), &Patch::Merge(&update))
                .await
                .unwrap();
            let expected: Vec<i64> = (1..=step).collect();
            wait_for_object(
                &counters,
                "tally",
                &format!("generations 1..={step}"),
                |c| observed(c) == expected,
            )
            .await;
        }

        let checksum = checksum_over(CHECKSUM_START, ns, "tally", 1..=UPDATES);
        let counter = counters.get("tally").await.unwrap();
        assert_eq!(field(&counter, "/status/totalSeen"), Some(&json!(UPDATES)));
        assert_eq!(
            field(&counter, "/status/checksum"),
            Some(&json!(checksum_text(checksum)))
        );

        counters
            .delete("tally", &DeleteParams::default())
            .await
            .unwrap();
        wait_for_absence(&counters, "tally", "the Counter to be deleted").await;
        // Re-created before the operator saw the deletion, the new Counter would look like the
        // old one at generation 1, which it has seen.
        let operator = format!("counter-{lang}");
        let key = format!("{ns}/tally");
        wait_for(
            "the operator to reconcile the deletion",
            PROMPTLY,
            || async {
                harness
                    .reconciles_of(&operator)
                    .iter()
                    .any(|r| r.key.to_string() == key && !r.had_object)
                    .then_some(())
            },
        )
        .await;
        kinds::create(
            &harness.client,
            ns,
            Kind::Counter,
            "tally",
            json!({"step": 1}),
        )
        .await;
        let counter = wait_for_object(&counters, "tally", "the new Counter's first status", |c| {
            field(c, "/status/totalSeen") == Some(&json!(UPDATES + 1))
        })
        .await;
        assert_eq!(
            observed(&counter),
            [1],
            "the deleted Counter's list was forgotten"
        );
        let checksum = checksum_over(checksum, ns, "tally", [1]);
        assert_eq!(
            field(&counter, "/status/checksum"),
            Some(&json!(checksum_text(checksum)))
        );
        // The next language's operator watches every namespace and counts every Counter it
        // sees: leave none behind (a namespace's deletion finishes in the background).
        counters
            .delete("tally", &DeleteParams::default())
            .await
            .unwrap();
        wait_for_absence(
            &counters,
            "tally",
            "the Counter to be gone before the next language",
        )
        .await;
        harness.stop().await;
    }
}
