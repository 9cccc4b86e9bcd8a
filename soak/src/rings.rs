//! The workload the experiments drive: ring operators, each reading TestResources in a
//! namespace of its own (`soak-<i>-in`) and writing their nonce to a namespace nobody watches
//! (`soak-<i>-out`), in Rust, Go and TinyGo in turn. What an operator must do is known exactly
//! (docs/examples.md, "ring"): every `out/obj-k` carries the nonce of `in/obj-k`. That is how
//! convergence is checked, and one watch on every TestResource times each change from the API
//! server's acknowledgement to the moment the operator's write is visible.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use operators_tests::Lang;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::host::OperatorEntry;

/// Requests of the load generator in flight at most (beyond it, the offered rate is not reached
/// and the report says so).
const MAX_IN_FLIGHT: usize = 64;

pub fn test_resource() -> ApiResource {
    ApiResource {
        group: "demo.wasm-operator.dev".into(),
        version: "v1alpha1".into(),
        api_version: "demo.wasm-operator.dev/v1alpha1".into(),
        kind: "TestResource".into(),
        plural: "testresources".into(),
    }
}

/// One ring operator and its two namespaces.
#[derive(Clone, Debug)]
pub struct Ring {
    pub operator: String,
    pub lang: Lang,
    pub input: String,
    pub output: String,
}

/// The ring operators, their objects, and what has been asked of them.
pub struct Rings {
    client: Client,
    pub rings: Vec<Ring>,
    objects_per_ring: usize,
    index: Arc<KeyIndex>,
    tracker: Arc<Mutex<Tracker>>,
    /// The next nonce of every key, owned by the load generator.
    next_nonce: Mutex<Vec<i64>>,
    watch: tokio::task::JoinHandle<()>,
}

/// Changes sent and not yet seen carried out, per key (ring * objects + object).
#[derive(Default)]
struct Tracker {
    pending: Vec<VecDeque<(i64, Instant)>>,
    /// The highest nonce seen in each key's output object.
    carried_out: Vec<i64>,
    /// Change -> visible result, for every change resolved since the last [`Rings::take_latencies`].
    latencies: Vec<Duration>,
    /// Change -> the change itself visible in the harness's watch: how late the measuring
    /// watch is, which every latency above includes.
    watch_lags: Vec<Duration>,
}

/// What a burst of load did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    pub applied: u64,
    /// Changes the API server refused or never answered (during an outage, say).
    pub refused: u64,
    pub elapsed: Duration,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.applied as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

/// The outcome of waiting for every object to match its spec.
#[derive(Clone, Debug, Default)]
pub struct Convergence {
    pub converged: bool,
    /// Keys whose output does not carry the input's nonce at the deadline.
    pub lost: Vec<String>,
    pub took: Duration,
}

impl Rings {
    /// Creates (or finds) `count` rings of `objects_per_ring` objects each, languages in turn
    /// from `langs`, and starts watching every TestResource.
    pub async fn create(
        client: &Client,
        count: usize,
        objects_per_ring: usize,
        langs: &[Lang],
    ) -> anyhow::Result<Rings> {
        let rings: Vec<Ring> = (0..count)
            .map(|i| {
                let lang = langs[i % langs.len()];
                Ring {
                    operator: format!("ring-{i}-{lang}"),
                    lang,
                    input: format!("soak-{i}-in"),
                    output: format!("soak-{i}-out"),
                }
            })
            .collect();
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for ring in &rings {
            for name in [&ring.input, &ring.output] {
                let namespace: Namespace =
                    serde_json::from_value(json!({"metadata": {"name": name}}))?;
                match namespaces.create(&PostParams::default(), &namespace).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(error) => return Err(error.into()),
                }
            }
            let inputs: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ring.input, &test_resource());
            for object in 0..objects_per_ring {
                let resource: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "demo.wasm-operator.dev/v1alpha1", "kind": "TestResource",
                    "metadata": {"name": format!("obj-{object}"), "namespace": ring.input},
                    "spec": {"nonce": 0},
                }))?;
                match inputs.create(&PostParams::default(), &resource).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 409 => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let keys = count * objects_per_ring;
        let tracker = Arc::new(Mutex::new(Tracker {
            pending: vec![VecDeque::new(); keys],
            carried_out: vec![-1; keys],
            latencies: Vec::new(),
            watch_lags: Vec::new(),
        }));
        let index = Arc::new(KeyIndex::new(&rings, objects_per_ring));
        let watch = tokio::spawn(watch_rings(client.clone(), index.clone(), tracker.clone()));
        // Inputs may have nonces from an earlier run of the workload: continue above them.
        let mut next_nonce = vec![1; keys];
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &test_resource());
        for object in all.list(&ListParams::default()).await?.items {
            if let Some((Side::Input, key)) = index.locate(&object) {
                next_nonce[key] = nonce_of(&object) + 1;
            }
        }
        Ok(Rings {
            client: client.clone(),
            rings,
            objects_per_ring,
            index,
            tracker,
            next_nonce: Mutex::new(next_nonce),
            watch,
        })
    }

    /// The operators for the host's config file.
    pub fn operators(&self) -> Vec<OperatorEntry> {
        self.rings
            .iter()
            .map(|ring| OperatorEntry {
                name: ring.operator.clone(),
                module: ring.lang.module_path("ring"),
                config: json!({"inNamespace": ring.input, "outNamespace": ring.output}),
                allow_http: Vec::new(),
                memory_limit: None,
                swap_after: None,
            })
            .collect()
    }

    pub fn keys(&self) -> usize {
        self.rings.len() * self.objects_per_ring
    }

    /// Sends changes at `rate` per second for `duration`, spread over every key in turn. A
    /// change is a merge patch of one input's `spec.nonce` to a higher value.
    pub async fn drive(&self, rate: f64, duration: Duration) -> Load {
        self.drive_until(rate, tokio::time::sleep(duration)).await
    }

    /// [`Rings::drive`] until `stop` resolves.
    pub async fn drive_until(
        &self,
        rate: f64,
        stop: impl std::future::Future<Output = ()>,
    ) -> Load {
        tokio::pin!(stop);
        // Fewer requests in flight than keys: the keys are visited in turn, so no key can then
        // have two changes in flight, which the API server might apply out of order.
        let in_flight = MAX_IN_FLIGHT.min(self.keys().saturating_sub(1)).max(1);
        let permits = Arc::new(Semaphore::new(in_flight));
        let applied = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0usize;
        let keys = self.keys();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => {}
            }
            // All permits taken means the API server is slower than the offered rate (or gone).
            let permit = tokio::select! {
                _ = &mut stop => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            // Keys in an order that visits every ring before any ring's next object.
            let key = (sent % self.rings.len()) * self.objects_per_ring
                + (sent / self.rings.len()) % self.objects_per_ring;
            sent = (sent + 1) % keys.max(1);
            let (inputs, name, nonce) = self.next_change(key);
            let tracker = self.tracker.clone();
            let (applied, refused) = (applied.clone(), refused.clone());
            tokio::spawn(async move {
                let patch = json!({"spec": {"nonce": nonce}});
                let result = tokio::time::timeout(
                    Duration::from_secs(30),
                    inputs.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                )
                .await;
                match result {
                    Ok(Ok(_)) => {
                        applied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracker.lock().unwrap_or_else(|e| e.into_inner()).sent(
                            key,
                            nonce,
                            Instant::now(),
                        );
                    }
                    _ => {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                drop(permit);
            });
        }
        // Every change sent has been answered (or timed out) before the figures are taken.
        let _ = permits.acquire_many(in_flight as u32).await;
        Load {
            applied: applied.load(std::sync::atomic::Ordering::Relaxed),
            refused: refused.load(std::sync::atomic::Ordering::Relaxed),
            elapsed: start.elapsed(),
        }
    }

    /// The next change of `key`: its ring's input API, the object's name, and a fresh nonce.
    fn next_change(&self, key: usize) -> (Api<DynamicObject>, String, i64) {
        let nonce = {
            let mut next = self.next_nonce.lock().unwrap_or_else(|e| e.into_inner());
            next[key] += 1;
            next[key] - 1
        };
        let ring = &self.rings[key / self.objects_per_ring];
        let inputs = Api::namespaced_with(self.client.clone(), &ring.input, &test_resource());
        (
            inputs,
            format!("obj-{}", key % self.objects_per_ring),
            nonce,
        )
    }

    /// Sends changes at `rate` per second while `work` runs; returns both outcomes.
    pub async fn drive_while<T>(
        &self,
        rate: f64,
        work: impl std::future::Future<Output = T>,
    ) -> (Load, T) {
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let work = async move {
            let output = work.await;
            let _ = done.send(());
            output
        };
        let drive = self.drive_until(rate, async move {
            let _ = finished.await;
        });
        let (output, load) = tokio::join!(work, drive);
        (load, output)
    }

    /// One change to one key, acknowledged by the API server before this returns, and timed
    /// like the load generator's (the density benchmark's single hops).
    pub async fn change(&self, key: usize) -> anyhow::Result<()> {
        anyhow::ensure!(key < self.keys(), "no key {key} among {}", self.keys());
        let (inputs, name, nonce) = self.next_change(key);
        let patch = json!({"spec": {"nonce": nonce}});
        inputs
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.tracker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent(key, nonce, Instant::now());
        Ok(())
    }

    /// Waits until every change sent has been seen carried out (by the watch alone, no list);
    /// false when some are still pending after `timeout`.
    pub async fn wait_carried_out(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let pending = self
                .tracker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending_changes();
            if pending == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Forgets the latencies so far and the changes still pending: an experiment's figures
    /// start from here (an earlier experiment that failed may have left changes unresolved).
    pub fn reset_measurements(&self) {
        let mut tracker = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        tracker.latencies.clear();
        tracker.watch_lags.clear();
        tracker.pending.iter_mut().for_each(VecDeque::clear);
    }

    /// Change -> visible result latencies since the last call.
    pub fn take_latencies(&self) -> Vec<Duration> {
        std::mem::take(
            &mut self
                .tracker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .latencies,
        )
    }

    /// How late the harness's own watch showed each change, since the last call.
    pub fn take_watch_lags(&self) -> Vec<Duration> {
        let mut tracker = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut tracker.watch_lags)
    }

    /// Waits until every change sent has been seen carried out and, in one list of every
    /// TestResource, every output carries its input's nonce; at most `timeout`.
    pub async fn converge(&self, timeout: Duration) -> Convergence {
        let start = Instant::now();
        loop {
            let pending = self
                .tracker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending_changes();
            let lost = if pending == 0 {
                self.mismatches().await
            } else {
                None
            };
            if lost.as_ref().is_some_and(Vec::is_empty) {
                return Convergence {
                    converged: true,
                    lost: Vec::new(),
                    took: start.elapsed(),
                };
            }
            if start.elapsed() >= timeout {
                let lost = match lost {
                    Some(lost) => lost,
                    None => self
                        .mismatches()
                        .await
                        .unwrap_or_else(|| vec!["(the API server did not answer)".into()]),
                };
                return Convergence {
                    converged: false,
                    lost,
                    took: start.elapsed(),
                };
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The keys whose output does not carry its input's nonce, from one list; `None` when the
    /// API server does not answer.
    async fn mismatches(&self) -> Option<Vec<String>> {
        let all: Api<DynamicObject> = Api::all_with(self.client.clone(), &test_resource());
        let objects = all.list(&ListParams::default()).await.ok()?.items;
        let mut inputs = vec![None; self.keys()];
        let mut outputs = vec![None; self.keys()];
        for object in &objects {
            match self.index.locate(object) {
                Some((Side::Input, key)) => inputs[key] = Some(nonce_of(object)),
                Some((Side::Output, key)) => outputs[key] = Some(nonce_of(object)),
                None => {}
            }
        }
        Some(
            (0..self.keys())
                .filter(|&key| inputs[key].is_none() || inputs[key] != outputs[key])
                .map(|key| {
                    let ring = &self.rings[key / self.objects_per_ring];
                    format!(
                        "{}/obj-{}: in {:?}, out {:?}",
                        ring.input,
                        key % self.objects_per_ring,
                        inputs[key],
                        outputs[key]
                    )
                })
                .collect(),
        )
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Tracker {
    fn sent(&mut self, key: usize, nonce: i64, at: Instant) {
        // The watch may have seen the result before the acknowledgement arrived.
        if self.carried_out[key] >= nonce {
            self.latencies.push(Duration::ZERO);
        } else {
            self.pending[key].push_back((nonce, at));
        }
    }

    fn seen(&mut self, key: usize, nonce: i64, at: Instant) {
        self.carried_out[key] = self.carried_out[key].max(nonce);
        // A later nonce carries out every earlier change: the operator may merge them.
        while let Some(&(pending, sent)) = self.pending[key].front() {
            if pending > nonce {
                break;
            }
            self.latencies.push(at.saturating_duration_since(sent));
            self.pending[key].pop_front();
        }
    }

    fn input_seen(&mut self, key: usize, nonce: i64, at: Instant) {
        // Not pending yet: the watch was faster than the acknowledgement.
        let lag = self.pending[key]
            .iter()
            .find(|(pending, _)| *pending == nonce)
            .map_or(Duration::ZERO, |(_, sent)| {
                at.saturating_duration_since(*sent)
            });
        self.watch_lags.push(lag);
    }

    fn pending_changes(&self) -> usize {
        self.pending.iter().map(VecDeque::len).sum()
    }
}

/// Follows every TestResource (one watch, resumed by kube's watcher after errors and outages):
/// resolves the changes each output object's nonce carries out, and times how late the watch
/// itself shows the inputs' changes.
async fn watch_rings(client: Client, index: Arc<KeyIndex>, tracker: Arc<Mutex<Tracker>>) {
    let all: Api<DynamicObject> = Api::all_with(client, &test_resource());
    let config = watcher::Config::default();
    let mut events = watcher(all, config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(watcher::Event::Apply(object)) => object,
            // A relist's objects say nothing about when a change became visible, but may
            // carry out changes the broken watch did not show.
            Ok(watcher::Event::InitApply(object)) => object,
            // Errors are retried by the watcher itself (with backoff, below).
            _ => continue,
        };
        let now = Instant::now();
        let mut tracker = tracker.lock().unwrap_or_else(|e| e.into_inner());
        match index.locate(&object) {
            Some((Side::Output, key)) => tracker.seen(key, nonce_of(&object), now),
            Some((Side::Input, key)) => tracker.input_seen(key, nonce_of(&object), now),
            None => {}
        }
    }
}

/// Which side of a ring an object is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Input,
    Output,
}

/// Where a TestResource belongs: its ring's namespace and its name give the key
/// (ring * objects + object).
struct KeyIndex {
    namespaces: HashMap<String, (Side, usize)>,
    objects_per_ring: usize,
}

impl KeyIndex {
    fn new(rings: &[Ring], objects_per_ring: usize) -> KeyIndex {
        let mut namespaces = HashMap::new();
        for (i, ring) in rings.iter().enumerate() {
            namespaces.insert(ring.input.clone(), (Side::Input, i));
            namespaces.insert(ring.output.clone(), (Side::Output, i));
        }
        KeyIndex {
            namespaces,
            objects_per_ring,
        }
    }

    /// The side and key of `object`, or `None` for an object of no ring.
    fn locate(&self, object: &DynamicObject) -> Option<(Side, usize)> {
        let (side, ring) = *self.namespaces.get(object.metadata.namespace.as_deref()?)?;
        let index: usize = object
            .metadata
            .name
            .as_deref()?
            .strip_prefix("obj-")?
            .parse()
            .ok()?;
        (index < self.objects_per_ring).then_some((side, ring * self.objects_per_ring + index))
    }
}

fn nonce_of(object: &DynamicObject) -> i64 {
    object
        .data
        .pointer("/spec/nonce")
        .and_then(|n| n.as_i64())
        .unwrap_or(-1)
}
