//! The rings' output objects: removed before a setup starts, so that the first one to appear
//! afterwards is the setup's first reconcile, and watched to time when each appears.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::runtime::watcher;
use kube::Client;
use wasm_operator_soak::rings::{test_resource, Ring};

/// Deletes every TestResource in the rings' output namespaces and waits until they are gone
/// (at most `timeout`).
pub async fn clear(client: &Client, rings: &[Ring], timeout: Duration) -> anyhow::Result<()> {
    for ring in rings {
        let outputs: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ring.output, &test_resource());
        outputs
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .with_context(|| format!("deleting the TestResources of {}", ring.output))?;
    }
    let deadline = Instant::now() + timeout;
    for ring in rings {
        let outputs: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ring.output, &test_resource());
        while !outputs.list(&ListParams::default()).await?.items.is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the TestResources of {} were not gone within {timeout:?}",
                ring.output
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// When the first output object of each ring appeared, from one watch of every TestResource.
pub struct FirstOutputs {
    seen: Arc<Mutex<Vec<Option<Instant>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FirstOutputs {
    /// Starts the watch and returns once its initial list is done, so nothing written after
    /// this returns can be missed.
    pub async fn watch(client: &Client, rings: &[Ring]) -> anyhow::Result<FirstOutputs> {
        let index: HashMap<String, usize> = rings
            .iter()
            .enumerate()
            .map(|(i, ring)| (ring.output.clone(), i))
            .collect();
        let seen = Arc::new(Mutex::new(vec![None; rings.len()]));
        let (ready, listed) = tokio::sync::oneshot::channel();
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &test_resource());
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                let mut ready = Some(ready);
                let mut events = watcher(all, watcher::Config::default()).boxed();
                while let Some(event) = events.next().await {
                    let object = match event {
                        Ok(watcher::Event::InitDone) => {
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(());
                            }
                            continue;
                        }
                        Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                            object
                        }
                        _ => continue,
                    };
                    let now = Instant::now();
                    let ring = object
                        .metadata
                        .namespace
                        .as_ref()
                        .and_then(|ns| index.get(ns));
                    if let Some(&ring) = ring {
                        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                        seen[ring].get_or_insert(now);
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), listed)
            .await
            .context("the watch of the output objects did not start within 60 s")?
            .context("the watch of the output objects ended")?;
        Ok(FirstOutputs { seen, task })
    }

    /// (first, last) appearance once every ring has an output object; `None` before.
    pub fn all_seen(&self) -> Option<(Instant, Instant)> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let times: Option<Vec<Instant>> = seen.iter().copied().collect();
        let times = times?;
        Some((*times.iter().min()?, *times.iter().max()?))
    }

    /// Rings with an output object so far.
    pub fn count(&self) -> usize {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter().filter(|time| time.is_some()).count()
    }
}

impl Drop for FirstOutputs {
    fn drop(&mut self) {
        self.task.abort();
    }
}
