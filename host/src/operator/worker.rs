//! The task that runs one operator: it owns the operator's instance, initialises it, subscribes
//! its watches, then reconciles one key at a time from its workqueue until it is stopped. Between
//! reconciles it swaps the instance out when it has been idle for its swap period or when asked
//! (see `swapping`), and back in when the next key arrives.
//!
//! Failures stay inside the operator. A guest error retries the key with backoff. A trap, a
//! deadline overrun, a memory-cap hit or an ABI violation also drops the instance, which is
//! recreated (and initialised again) after a backoff that grows while recreation keeps failing.
//! A failed first init is retried the same way until it succeeds or the operator is unloaded.
//! What the guest asks of the host is bounded per operator: the Registration is checked against
//! the host's limits before any watch is opened, and guest-requested requeues go through a
//! minimum interval and the operator's token bucket ([`RegistrationLimits`]).
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use wasm_operator_abi::{InitInput, ReconcileRequest, ReconcileResult, Registration};

use crate::kube::absence::absent_reason;
use crate::kube::watches::WatchManager;
use crate::metrics::{ErrorLabels, HostMetrics, OperatorLabels, ReconcileLabels};
use crate::runtime::{CallError, InstanceLimits, LoadedModule, OperatorInstance};
use crate::scheduler::mapping::ObjectKey;
use crate::scheduler::ratelimit::TokenBucket;
use crate::scheduler::workqueue::BackoffConfig;

use super::queue::OperatorQueue;
use super::registration::{self, OperatorWatches, RegistrationLimits};
use super::residency::Residency;
use super::services::OperatorServices;
use super::state::{OperatorState, StateBoard};
use super::swapping::Slot;
pub(crate) use super::swapping::{Control, SwapPolicy};
use super::{ReconcileObserver, ReconcileOutcome, ReconcileRecord};

pub(crate) struct Worker {
    pub name: String,
    pub module: LoadedModule,
    pub limits: InstanceLimits,
    pub init_input: InitInput,
    pub services: Arc<OperatorServices>,
    pub queue: Arc<OperatorQueue>,
    pub watches: WatchManager,
    pub board: StateBoard,
    pub metrics: HostMetrics,
    pub backoff: BackoffConfig,
    pub observer: Option<ReconcileObserver>,
    pub stop: watch::Receiver<bool>,
    pub controls: mpsc::UnboundedReceiver<Control>,
    pub swap: SwapPolicy,
    pub residency: Residency,
    pub registration_limits: RegistrationLimits,
    pub fence: Option<super::Fence>,
    /// What init returned (or the resume point carried), once the operator has started.
    pub registration: Option<Registration>,
    /// Bounds this operator's guest-requested requeues, all keys together.
    pub requeue_bucket: TokenBucket,
}

/// What woke the worker up.
enum Wake {
    Key(Option<ObjectKey>),
    Control(Control),
    IdleTooLong,
    /// A timer is due within the pre-wake lead (its deadline).
    TimerSoon(Instant),
}

/// Why a reconcile runs, as far as the observer cares.
struct Trigger {
    timer_deadline: Option<Instant>,
    swapped_in_first: bool,
}

impl Worker {
    /// Runs the operator. `ready` learns whether init and the watches came up (with the reason
    /// if not); after that the task reconciles until stopped.
    pub async fn run(mut self, ready: oneshot::Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        let (slot, registration) = match self.resumed() {
            Some((swapped, registration)) => (Slot::Swapped(swapped), registration),
            None => {
                let Some((instance, registration)) = self.start_with_retries(&mut ready).await
                else {
                    return; // stopped while init was failing
                };
                (Slot::Resident(instance), registration)
            }
        };
        self.registration = Some(registration.clone());
        // Checked before any watch is opened: nothing beyond the host's limits or what its
        // identity may read reaches it.
        let refused = match registration::check_limits(&registration, &self.registration_limits) {
            Err(error) => Some(format!("its registration exceeds a host limit: {error}")),
            Ok(()) => self
                .services
                .registration_refused(&registration)
                .await
                .map(|refused| format!("its registration cannot be served: {refused}")),
        };
        if let Some(reason) = refused {
            self.start_failed(&mut ready, reason);
            return;
        }
        let watches =
            match registration::subscribe(&self.watches, &registration, self.queue.clone()).await {
                Ok(watches) => watches,
                Err(error) => {
                    let reason = format!("its registration cannot be served: {error}");
                    self.start_failed(&mut ready, reason);
                    return;
                }
            };
        self.services.set_watches(watches.all.clone());
        let state = match slot {
            Slot::Swapped(_) => OperatorState::Swapped,
            _ => OperatorState::Idle,
        };
        self.board.set(&self.name, state);
        tracing::info!(operator = %self.name, digest = self.module.digest(), "operator running");
        if let (Some(_), Some(reason)) =
            (&self.swap.state_dir, self.module.swap_unsupported_reason())
        {
            tracing::warn!(operator = %self.name, "the operator stays resident: {reason}");
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        let slot = self.reconcile_loop(slot, registration, watches).await;
        self.leave(slot).await;
        tracing::info!(operator = %self.name, "operator stopped");
    }

    /// Instantiates and initialises the first instance. A failed init (the guest returned 1, or
    /// trapped, overran its deadline, ...) is retried in a fresh instance after the operator's
    /// backoff, or after the GuestError's `requeueAfterMs` (at least the host's minimum); the
    /// state is Failed with the error meanwhile, and `ready` learns of the first failure so
    /// `load` does not wait. `None`: the operator was stopped while init was failing.
    async fn start_with_retries(
        &mut self,
        ready: &mut Option<oneshot::Sender<Result<(), String>>>,
    ) -> Option<(OperatorInstance, Registration)> {
        let mut failures: u32 = 0;
        loop {
            let error = match self.start_instance().await {
                Ok(started) => return Some(started),
                Err(error) => error,
            };
            failures = failures.saturating_add(1);
            let retry_in = match &error {
                CallError::Guest(guest) if guest.requeue_after_ms.is_some() => {
                    self.requested_delay(guest.requeue_after_ms.unwrap_or_default())
                }
                _ => self.backoff.delay(failures),
            };
            let reason = format!(
                "init failed: {error}; retrying in a fresh instance in {} ms (attempt {failures})",
                retry_in.as_millis()
            );
            tracing::warn!(operator = %self.name, "{reason}");
            self.start_failed(ready, reason);
            tokio::select! {
                _ = tokio::time::sleep(retry_in) => {}
                _ = self.stop.wait_for(|stopped| *stopped) => return None,
            }
            self.board.set(&self.name, OperatorState::Loading);
        }
    }

    /// Records that starting failed: the operator is Failed with `reason`, and `load` (if still
    /// waiting) learns why.
    fn start_failed(
        &self,
        ready: &mut Option<oneshot::Sender<Result<(), String>>>,
        reason: String,
    ) {
        self.board.set(
            &self.name,
            OperatorState::Failed {
                reason: reason.clone(),
            },
        );
        if let Some(ready) = ready.take() {
            let _ = ready.send(Err(reason));
        }
    }

    async fn start_instance(&self) -> Result<(OperatorInstance, Registration), CallError> {
        let services: Arc<dyn crate::runtime::HostServices> = self.services.clone();
        let mut instance = self
            .module
            .instantiate(&self.name, self.limits, services)
            .await?;
        let registration = instance.init(&self.init_input).await?;
        Ok((instance, registration))
    }

    /// Reconciles until the operator is stopped; returns where its instance is then.
    async fn reconcile_loop(
        &mut self,
        mut slot: Slot,
        registration: Registration,
        watches: OperatorWatches,
    ) -> Slot {
        let mut restart_failures: u32 = 0;
        let mut last_active = Instant::now();
        // The timer deadline the last pre-wake was for.
        let mut pre_woken_for = None;
        self.settle(&slot);
        loop {
            let idle_deadline = self.idle_deadline(&slot, last_active);
            let pre_wake = self.pre_wake_at(&slot, pre_woken_for);
            let queue = self.queue.clone();
            let wake = tokio::select! {
                // Work first: an operator with keys waiting is not idle.
                biased;
                key = queue.next() => Wake::Key(key),
                Some(control) = self.controls.recv() => Wake::Control(control),
                _ = sleep_until_if(idle_deadline) => Wake::IdleTooLong,
                _ = sleep_until_if(pre_wake.map(|(at, _)| at)) => {
                    Wake::TimerSoon(pre_wake.map_or_else(Instant::now, |(_, timer)| timer))
                }
            };
            if self.fenced() {
                // This host gave the operator's shard up: another may run it now, so nothing
                // runs here any more, not even a swap (its abort follows).
                tracing::info!(operator = %self.name, "fenced off: not running here any more");
                if let Wake::Key(Some(key)) = &wake {
                    self.queue.done(key);
                }
                break;
            }
            match wake {
                Wake::Key(None) => break,
                Wake::Key(Some(key)) => {
                    // RBAC may have changed since load (answers are cached for a while): an
                    // operator that may no longer read what it watches stops here.
                    if let Some(refused) = self.services.registration_refused(&registration).await {
                        let reason = format!("its registration cannot be served: {refused}");
                        tracing::warn!(operator = %self.name, "{reason}");
                        self.queue.done(&key);
                        self.board.set(&self.name, OperatorState::Failed { reason });
                        break;
                    }
                    self.residency.busy(&self.name);
                    self.board.set(&self.name, OperatorState::Running);
                    let trigger = Trigger {
                        timer_deadline: self.queue.take_timer_deadline(&key),
                        swapped_in_first: matches!(slot, Slot::Swapped(_)),
                    };
                    let Some(instance) = self.make_resident(&mut slot, &registration).await else {
                        break; // stopped while starting a fresh instance
                    };
                    let outcome = self.reconcile(instance, &watches, &key, trigger).await;
                    self.queue.done(&key);
                    match outcome {
                        Ok(()) => restart_failures = 0,
                        Err(error) if error.instance_unusable() => {
                            // The instance may be inconsistent: replace it now, so the next key
                            // (and the operator's state) does not wait on a broken instance.
                            self.metrics
                                .instance_restarts
                                .get_or_create(&self.labels())
                                .inc();
                            self.board.set(&self.name, OperatorState::Loading);
                            restart_failures += 1;
                            match self.recreate(&registration, &mut restart_failures).await {
                                Some(fresh) => slot = Slot::Resident(fresh),
                                None => break, // stopped while waiting to recreate
                            }
                        }
                        Err(_) => {}
                    }
                    self.board.set(&self.name, OperatorState::Idle);
                }
                Wake::Control(Control::SwapOut { reply }) => {
                    let swapped = self.swap_out(&mut slot).await;
                    if swapped.is_err() {
                        // Still resident: the budget must count it again, and may ask again
                        // after a backoff.
                        self.residency.swap_out_failed(&self.name);
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(swapped);
                    }
                }
                Wake::Control(Control::SwapIn { reply }) => {
                    self.residency.busy(&self.name);
                    if self.make_resident(&mut slot, &registration).await.is_none() {
                        break;
                    }
                    self.board.set(&self.name, OperatorState::Idle);
                    let _ = reply.send(Ok(()));
                }
                Wake::IdleTooLong => {
                    // On failure the reason is logged; retry after another idle period.
                    let _ = self.swap_out(&mut slot).await;
                }
                Wake::TimerSoon(timer) => {
                    pre_woken_for = Some(timer);
                    self.residency.busy(&self.name);
                    if self.make_resident(&mut slot, &registration).await.is_none() {
                        break;
                    }
                    self.metrics.pre_wakes.get_or_create(&self.labels()).inc();
                    self.board.set(&self.name, OperatorState::Idle);
                }
            }
            last_active = Instant::now();
            self.settle(&slot);
        }
        slot
    }

    /// Instantiates and initialises a fresh instance, retrying with backoff until it works or
    /// the operator is stopped.
    pub(super) async fn recreate(
        &mut self,
        registration: &Registration,
        failures: &mut u32,
    ) -> Option<OperatorInstance> {
        loop {
            // The first attempt after a lost swap-in is immediate; retries back off.
            let delay = match *failures {
                0 => Duration::ZERO,
                failures => self.backoff.delay(failures),
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.stop.wait_for(|stopped| *stopped) => return None,
            }
            match self.start_instance().await {
                Ok((instance, new_registration)) => {
                    if &new_registration != registration {
                        tracing::warn!(
                            operator = %self.name,
                            "the recreated instance registered different watches; the host keeps the ones from \
                             the first init (unload and load the operator to change them)"
                        );
                    }
                    tracing::info!(operator = %self.name, "instance recreated");
                    return Some(instance);
                }
                Err(error) => {
                    *failures += 1;
                    let retry = self.backoff.delay(*failures);
                    let reason = format!(
                        "its instance cannot be recreated: {error}; retrying in {} ms",
                        retry.as_millis()
                    );
                    tracing::error!(operator = %self.name, %reason, "instance recreation failed");
                    self.board.set(&self.name, OperatorState::Failed { reason });
                }
            }
        }
    }

    async fn reconcile(
        &mut self,
        instance: &mut OperatorInstance,
        watches: &OperatorWatches,
        key: &ObjectKey,
        trigger: Trigger,
    ) -> Result<(), CallError> {
        let resource = &watches.primary.resolved().resource;
        let object = watches.object(key);
        let absent_reason = match object {
            Some(_) => None,
            None => {
                Some(absent_reason(&watches.primary, key.namespace.as_deref(), &key.name).await)
            }
        };
        let request = ReconcileRequest {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            object,
            absent_reason,
            attempt: self.queue.failures(key),
        };
        let started_at = Instant::now();
        let result = instance.reconcile(&request).await;
        let duration = started_at.elapsed();
        self.metrics
            .reconcile_duration
            .get_or_create(&self.labels())
            .observe(duration.as_secs_f64());
        let outcome = match &result {
            Ok(result) => {
                self.queue.forget(key);
                self.schedule_after_success(key, result);
                ReconcileOutcome::Succeeded {
                    result: result.clone(),
                }
            }
            Err(error) => {
                let retry_in = match error {
                    CallError::Guest(guest) if guest.requeue_after_ms.is_some() => {
                        let delay = self.requeue_delay(guest.requeue_after_ms.unwrap_or_default());
                        self.queue.add_failed_after(key.clone(), delay);
                        delay
                    }
                    _ => self.queue.add_rate_limited(key.clone()),
                };
                tracing::error!(
                    operator = %self.name,
                    key = %key,
                    reason = error.reason_label(),
                    retry_in_ms = retry_in.as_millis() as u64,
                    "reconcile failed: {error}"
                );
                self.metrics
                    .reconcile_errors
                    .get_or_create(&ErrorLabels {
                        operator: self.name.clone(),
                        reason: error.reason_label().into(),
                    })
                    .inc();
                ReconcileOutcome::Failed {
                    reason: error.reason_label(),
                    message: error.to_string(),
                }
            }
        };
        let result_label = if result.is_ok() { "success" } else { "error" };
        self.metrics
            .reconciles
            .get_or_create(&ReconcileLabels {
                operator: self.name.clone(),
                result: result_label.into(),
            })
            .inc();
        if let Some(observer) = &self.observer {
            observer(&ReconcileRecord {
                operator: self.name.clone(),
                key: key.clone(),
                request,
                started_at,
                duration,
                outcome,
                timer_deadline: trigger.timer_deadline,
                swapped_in_first: trigger.swapped_in_first,
            });
        }
        result.map(|_| ())
    }

    fn schedule_after_success(&mut self, key: &ObjectKey, result: &ReconcileResult) {
        if let Some(delay) = result.requeue_after_ms {
            let delay = self.requeue_delay(delay);
            self.queue.add_after(key.clone(), delay);
        } else if result.requeue {
            // The workqueue keeps a key's earliest timer, so a rate-limited requeue must not
            // schedule the short backoff first.
            let limited = self.requeue_bucket.reserve(Instant::now());
            if limited.is_zero() {
                self.queue.add_rate_limited(key.clone());
            } else {
                self.queue.add_after(key.clone(), limited);
            }
        }
    }

    /// The delay of a guest-requested requeue: at least the host's minimum, and later still when
    /// the operator requeues faster than its rate limit (see [`RegistrationLimits`]).
    fn requeue_delay(&mut self, requested_ms: u64) -> Duration {
        let limited = self.requeue_bucket.reserve(Instant::now());
        self.requested_delay(requested_ms).max(limited)
    }

    /// A guest-requested delay (`requeueAfterMs`) within the host's bounds: at least its minimum,
    /// at most the workqueue's longest delay.
    fn requested_delay(&self, requested_ms: u64) -> Duration {
        Duration::from_millis(requested_ms)
            .min(crate::scheduler::workqueue::MAX_DELAY)
            .max(self.registration_limits.min_requeue_after)
    }

    /// Whether this host gave the operator's shard up (see [`super::Fence`]).
    pub(super) fn fenced(&self) -> bool {
        self.fence
            .as_ref()
            .is_some_and(|may_run| !may_run(&self.name))
    }

    pub(super) fn labels(&self) -> OperatorLabels {
        OperatorLabels {
            operator: self.name.clone(),
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_if(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
