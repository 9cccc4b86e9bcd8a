//! The counter example in the host against the real control plane: across many spec updates it
//! keeps its in-memory map, so the status lists every generation, counts them and carries the
//! FNV-1a checksum of all of them; deleting and re-creating a Counter starts its list afresh
//! while the count and checksum go on.

use operators_tests::counter::{
    checksum_over, checksum_text, observed, CounterRun, CHECKSUM_START,
};
use operators_tests::kinds::{field, wait_for_object};
use operators_tests::{Harness, Lang, PROMPTLY};
use serde_json::json;
use wasm_operator_test_support::wait_for;

const UPDATES: i64 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_keeps_its_map_across_many_updates() {
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let run = CounterRun::start(&harness, lang, "counter").await;
        let (ns, counters) = (run.ns(), &run.counters);
        run.create_seen(&harness.client, "tally").await;

        // One update at a time: updates faster than reconciles would be merged into one
        // reconcile of the latest generation, and the list would rightly skip some.
        for step in 2..=UPDATES {
            run.set_step("tally", step).await;
            let expected: Vec<i64> = (1..=step).collect();
            run.wait_for_generations("tally", &expected).await;
        }

        let checksum = checksum_over(CHECKSUM_START, ns, "tally", 1..=UPDATES);
        let counter = counters.get("tally").await.unwrap();
        assert_eq!(field(&counter, "/status/totalSeen"), Some(&json!(UPDATES)));
        assert_eq!(
            field(&counter, "/status/checksum"),
            Some(&json!(checksum_text(checksum)))
        );

        run.delete(&["tally"]).await;
        // Re-created before the operator saw the deletion, the new Counter would look like the
        // old one at generation 1, which it has seen.
        let operator = &run.operator;
        let key = format!("{ns}/tally");
        wait_for(
            "the operator to reconcile the deletion",
            PROMPTLY,
            || async {
                harness
                    .reconciles_of(operator)
                    .iter()
                    .any(|r| r.key.to_string() == key && !r.had_object())
                    .then_some(())
            },
        )
        .await;
        run.create(&harness.client, "tally").await;
        let counter = wait_for_object(counters, "tally", "the new Counter's first status", |c| {
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
        run.delete(&["tally"]).await;
        harness.stop().await;
    }
}
