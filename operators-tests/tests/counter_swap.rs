//! Swap in the host with the counter example, in Rust and in Go, against the real control plane:
//! its in-memory map survives forced swap cycles between events; events that arrive while it is
//! being swapped out or in are all reconciled; a damaged snapshot is detected, counted and the
//! operator starts fresh; an idle operator swaps out on its own and the next event brings it
//! back; the memory budget swaps out the least recently used first; unloading removes the
//! snapshot.

use std::time::Duration;

use operators_tests::counter::{
    checksum_over, checksum_text, observed, CounterRun, CHECKSUM_START,
};
use operators_tests::kinds::{field, wait_for_object};
use operators_tests::{Harness, Lang, SwapSettings, PROMPTLY};
use serde_json::json;
use wasm_operator::operator::OperatorState;
use wasm_operator_test_support::wait_for;

fn operator_labels(operator: &str) -> String {
    format!("operator=\"{operator}\"")
}

async fn wait_for_state(harness: &Harness, operator: &str, wanted: OperatorState) {
    wait_for(&format!("{operator} to be {wanted}"), PROMPTLY, || async {
        (harness.manager.state(operator) == Some(wanted.clone())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_keeps_its_map_across_forced_swaps_between_events() {
    const UPDATES: i64 = 20;
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let run = CounterRun::start(&harness, lang, "swap-counter").await;
        let operator = run.operator.clone();
        run.create_seen(&harness.client, "tally").await;

        let labels = operator_labels(&operator);
        for step in 2..=UPDATES {
            harness.manager.swap_out(&operator).await.unwrap();
            // (An event may already have brought it back: the state is not asserted here.)
            assert_eq!(
                harness.metric("wasm_operator_swap_outs_total", &labels),
                Some((step - 1) as f64)
            );
            // Every third cycle is restored on request; the others by the next event.
            if step % 3 == 0 {
                harness.manager.swap_in(&operator).await.unwrap();
                assert_ne!(
                    harness.manager.state(&operator),
                    Some(OperatorState::Swapped)
                );
            }
            run.set_step("tally", step).await;
            let expected: Vec<i64> = (1..=step).collect();
            run.wait_for_generations("tally", &expected).await;
        }

        let counter = run.counters.get("tally").await.unwrap();
        let checksum = checksum_over(CHECKSUM_START, run.ns(), "tally", 1..=UPDATES);
        assert_eq!(field(&counter, "/status/totalSeen"), Some(&json!(UPDATES)));
        assert_eq!(
            field(&counter, "/status/checksum"),
            Some(&json!(checksum_text(checksum)))
        );
        let swap_outs = harness.metric("wasm_operator_swap_outs_total", &labels);
        let swap_ins = harness.metric("wasm_operator_swap_ins_total", &labels);
        assert_eq!(swap_outs, Some((UPDATES - 1) as f64));
        assert_eq!(swap_ins, Some((UPDATES - 1) as f64));
        assert_eq!(
            harness.metric("wasm_operator_swap_in_duration_seconds_count", &labels),
            Some((UPDATES - 1) as f64)
        );

        run.delete(&["tally"]).await;
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arriving_while_the_operator_swaps_are_all_reconciled() {
    const COUNTERS: usize = 8;
    const UPDATES: i64 = 6;
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let run = CounterRun::start(&harness, lang, "swap-events").await;
        let operator = run.operator.clone();
        let names: Vec<String> = (0..COUNTERS).map(|i| format!("c{i}")).collect();

        // Swap out and in without pause while the Counters are created and updated, so events
        // keep arriving mid swap-out and mid swap-in. Each burst of updates waits for a swap
        // cycle that ended after the burst was sent: however slow the machine, cycles and
        // events interleave, at least once per burst.
        let (stop_swapping, mut stop) = tokio::sync::watch::channel(false);
        let (cycle_done, mut cycles) = tokio::sync::watch::channel(0u32);
        let manager = harness.manager.clone();
        let swapper_operator = operator.clone();
        let swapper = tokio::spawn(async move {
            while !*stop.borrow_and_update() {
                manager.swap_out(&swapper_operator).await.unwrap();
                manager.swap_in(&swapper_operator).await.unwrap();
                cycle_done.send_modify(|cycles| *cycles += 1);
            }
        });
        let mut next_cycle = async || {
            let after = *cycles.borrow_and_update();
            cycles
                .wait_for(|&done| done > after)
                .await
                .expect("the swapper stopped early");
        };
        for name in &names {
            run.create(&harness.client, name).await;
        }
        next_cycle().await;
        for step in 2..=UPDATES {
            for name in &names {
                run.set_step(name, step).await;
            }
            next_cycle().await;
        }
        // Updates may be merged into one reconcile of the latest generation, so the list may
        // skip some; the latest one must be there for every Counter.
        for name in &names {
            wait_for_object(
                &run.counters,
                name,
                "the last generation in the status",
                |c| observed(c).last() == Some(&UPDATES),
            )
            .await;
        }
        stop_swapping.send(true).unwrap();
        swapper.await.unwrap();
        eprintln!(
            "{lang}: {} swap cycles ran while the events arrived",
            *cycles.borrow()
        );

        // totalSeen counts every (Counter, generation) pair the operator's map ever held, and
        // the last status written carries the latest total: with no state lost it equals the
        // pairs in all the lists. A restored instance that forgot its map would restart the
        // count while the lists it did not rewrite keep their old entries.
        let mut pairs = 0;
        let mut latest_total = 0;
        for name in &names {
            let counter = run.counters.get(name).await.unwrap();
            pairs += observed(&counter).len() as u64;
            let total = field(&counter, "/status/totalSeen").and_then(|v| v.as_u64());
            latest_total = latest_total.max(total.unwrap_or_default());
        }
        assert_eq!(
            latest_total, pairs,
            "totalSeen against the pairs in the lists"
        );
        assert_eq!(
            harness.metric(
                "wasm_operator_swap_failures_total",
                &format!("operator=\"{operator}\",kind=\"corrupt\"")
            ),
            None
        );

        run.delete(&names.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_is_counted_and_the_operator_starts_fresh() {
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let run = CounterRun::start(&harness, lang, "swap-damaged").await;
        let operator = run.operator.clone();
        run.create_seen(&harness.client, "tally").await;
        run.set_step("tally", 2).await;
        run.wait_for_generations("tally", &[1, 2]).await;

        harness.manager.swap_out(&operator).await.unwrap();
        let snapshots = harness.snapshots();
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        // Flip one byte in every 4 KiB after the first: the memory image, not just the header.
        // (Flipping bytes only in a hole, where the image is all zeros, would change nothing
        // restored: zero chunks are not read from the file.)
        let mut bytes = std::fs::read(&snapshots[0]).unwrap();
        for offset in (4096..bytes.len()).step_by(4096) {
            bytes[offset] ^= 0x5a;
        }
        std::fs::write(&snapshots[0], &bytes).unwrap();

        run.set_step("tally", 3).await;
        let counter = wait_for_object(&run.counters, "tally", "generation 3 in the status", |c| {
            observed(c).contains(&3)
        })
        .await;
        // A fresh instance has an empty map: generation 3 is the first it sees.
        assert_eq!(observed(&counter), [3], "{:?}", counter.data.get("status"));
        assert_eq!(field(&counter, "/status/totalSeen"), Some(&json!(1)));
        let failures = format!("operator=\"{operator}\",kind=\"corrupt\"");
        assert_eq!(
            harness.metric("wasm_operator_swap_failures_total", &failures),
            Some(1.0)
        );
        assert_eq!(harness.manager.state(&operator), Some(OperatorState::Idle));
        assert!(harness.snapshots().is_empty(), "{:?}", harness.snapshots());

        run.delete(&["tally"]).await;
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_operator_swaps_out_on_its_own_and_unloading_removes_its_snapshot() {
    for lang in Lang::available("counter") {
        let harness = Harness::start_with(SwapSettings {
            swap_after: Some(Duration::from_millis(300)),
            memory_budget: None,
        })
        .await;
        let mut changes = harness.manager.state_changes();
        let run = CounterRun::start(&harness, lang, "swap-idle").await;
        let operator = run.operator.clone();
        wait_for_state(&harness, &operator, OperatorState::Swapped).await;
        let mut seen = Vec::new();
        while let Ok(change) = changes.try_recv() {
            seen.push((change.operator, change.state.label()));
        }
        // Loading -> Idle when started, then Idle -> Swapped, as the stream reports them.
        assert_eq!(
            seen,
            [(operator.clone(), "idle"), (operator.clone(), "swapped")]
        );
        let labels = operator_labels(&operator);
        assert_eq!(
            harness.metric("wasm_operator_memory_bytes", &labels),
            Some(0.0)
        );
        let on_disk = harness.metric("wasm_operator_snapshot_bytes", &labels);
        assert!(on_disk.is_some_and(|bytes| bytes > 0.0), "{on_disk:?}");

        run.create_seen(&harness.client, "tally").await;
        assert!(harness
            .metric("wasm_operator_swap_ins_total", &labels)
            .is_some_and(|n| n >= 1.0));
        // Idle again, it goes back to disk; the state it had is restored for the next event.
        wait_for_state(&harness, &operator, OperatorState::Swapped).await;
        run.set_step("tally", 2).await;
        run.wait_for_generations("tally", &[1, 2]).await;
        wait_for_state(&harness, &operator, OperatorState::Swapped).await;
        // A snapshot is a full layer and at most 8 deltas (docs/running.md); layers of earlier
        // swap-outs that it no longer builds on are gone.
        let layers = harness.snapshots();
        assert!((1..=9).contains(&layers.len()), "{layers:?}");

        run.delete(&["tally"]).await;
        wait_for_state(&harness, &operator, OperatorState::Swapped).await;
        harness.manager.unload(&operator).await.unwrap();
        assert!(harness.snapshots().is_empty(), "{:?}", harness.snapshots());
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_budget_the_least_recently_used_idle_operator_swaps_out_first() {
    for lang in Lang::available("counter") {
        // One operator's linear memory, measured: the budget holds two and a half of them.
        let probe = Harness::start().await;
        probe.load("budget-probe", lang, "counter", json!({})).await;
        let one = wait_for("the probe's memory to be published", PROMPTLY, || async {
            probe.metric(
                "wasm_operator_memory_bytes",
                &operator_labels("budget-probe"),
            )
        })
        .await as u64;
        probe.stop().await;

        let harness = Harness::start_with(SwapSettings {
            swap_after: None,
            memory_budget: Some(one * 5 / 2),
        })
        .await;
        let names = ["lru-a", "lru-b", "lru-c"].map(|name| format!("{name}-{lang}"));
        for name in &names {
            harness.load(name, lang, "counter", json!({})).await;
        }
        // a, b, c were used in that order: a is the least recently used.
        wait_for_state(&harness, &names[0], OperatorState::Swapped).await;
        assert_eq!(harness.manager.state(&names[1]), Some(OperatorState::Idle));
        assert_eq!(harness.manager.state(&names[2]), Some(OperatorState::Idle));

        // Using a again makes b the least recently used.
        harness.manager.swap_in(&names[0]).await.unwrap();
        wait_for_state(&harness, &names[1], OperatorState::Swapped).await;
        assert_eq!(harness.manager.state(&names[0]), Some(OperatorState::Idle));
        assert_eq!(harness.manager.state(&names[2]), Some(OperatorState::Idle));
        harness.stop().await;
    }
}

/// A host that shuts down leaves each operator swapped out with a resume point; the next
/// process on the same state directory continues from it instead of running init, so the
/// counter still knows the generations it saw. With another config it starts fresh instead,
/// and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_resumes_the_counter_where_it_left_off() {
    for lang in Lang::available("counter") {
        let harness = Harness::start().await;
        let run = CounterRun::start(&harness, lang, "resume").await;
        let operator = run.operator.clone();
        run.create_seen(&harness.client, "tally").await;
        run.set_step("tally", 2).await;
        run.wait_for_generations("tally", &[1, 2]).await;

        // Resident at shutdown: swapped out on the way down.
        let harness = harness.restart().await;
        harness.load(&operator, lang, "counter", json!({})).await;
        let resumed = format!("operator=\"{operator}\",result=\"resumed\"");
        assert_eq!(
            harness.metric("wasm_operator_resumes_total", &resumed),
            Some(1.0)
        );
        run.set_step("tally", 3).await;
        // A fresh instance would know only generation 3 (see the damaged-snapshot test).
        run.wait_for_generations("tally", &[1, 2, 3]).await;

        // Swapped out at shutdown, and started with another config: init runs.
        harness.manager.swap_out(&operator).await.unwrap();
        let harness = harness.restart().await;
        harness
            .load(&operator, lang, "counter", json!({"unused": true}))
            .await;
        let refused = format!("operator=\"{operator}\",result=\"init_changed\"");
        assert_eq!(
            harness.metric("wasm_operator_resumes_total", &refused),
            Some(1.0)
        );
        run.set_step("tally", 4).await;
        let counter = wait_for_object(&run.counters, "tally", "generation 4 in the status", |c| {
            observed(c).contains(&4)
        })
        .await;
        // Fresh: it saw generation 3 when its watch listed, then 4; nothing from before.
        assert_eq!(
            observed(&counter),
            [3, 4],
            "{:?}",
            counter.data.get("status")
        );
        // What the refused resume point named is gone; only the new instance's files remain.
        assert!(harness.snapshots().is_empty(), "{:?}", harness.snapshots());

        run.delete(&["tally"]).await;
        harness.stop().await;
    }
}
