//! The worker's side of swap: where its instance is ([`Slot`]), the requests it takes from the
//! manager and the memory budget ([`Control`]), and the two moves between memory and disk.
//!
//! The worker's task owns the instance, so only it swaps: requests from elsewhere are messages it
//! handles between reconciles. Events that arrive meanwhile wait in the operator's workqueue and
//! are delivered once the instance is back; none is lost.
//!
//! A swap-in that fails (snapshot missing or damaged, instance cannot be created) loses the
//! operator's in-memory state, never its work: the operator starts fresh (instantiate and init,
//! as at load) with a warning and the `swap_failures` metric, and the reconcile goes ahead.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wasm_operator_abi::Registration;

use crate::metrics::SwapFailureLabels;
use crate::runtime::{OperatorInstance, SwapOutError, SwappedInstance};

use super::state::OperatorState;
use super::worker::Worker;

/// Where an operator's instance is.
// One slot per operator, moved only when the operator changes state: boxing the resident
// instance to even out the variants would cost an allocation per swap-in for no gain.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Slot {
    Resident(OperatorInstance),
    Swapped(SwappedInstance),
    /// Nothing to restore (a swap-out thread failed, or the operator has not started): the next
    /// use creates a fresh instance.
    Lost,
}

/// A request to the worker, answered between reconciles.
pub(crate) enum Control {
    /// Swap out now (forced, or chosen by the memory budget when `reply` is `None`).
    SwapOut {
        reply: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// Restore now without a reconcile.
    SwapIn {
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// When this operator is swapped out.
#[derive(Clone, Debug)]
pub(crate) struct SwapPolicy {
    /// This operator's directory in the host's state directory (its snapshots and resume
    /// point); `None`: swapping is disabled.
    pub state_dir: Option<PathBuf>,
    /// Idle period; `None`: only the budget or a forced swap swaps it out.
    pub after: Option<Duration>,
    /// How long before a timer is due a swapped-out operator is swapped in; `None`: off.
    pub pre_wake: Option<Duration>,
    /// This host's identity, written into resume points.
    pub identity: String,
    /// [`super::resume::init_digest`] of this operator's init input and limits.
    pub init_digest: String,
    /// Whether an operator stopping now leaves its state for the next process (the host is
    /// shutting down) rather than discarding it (the operator is unloaded).
    pub keep_on_stop: Arc<std::sync::atomic::AtomicBool>,
    /// Held while a swap-out of this operator is written, resume point included, so that
    /// aborting the operator can wait for the write to end (see `OperatorHandle::writes_done`).
    pub writing: Arc<std::sync::Mutex<()>>,
    /// Swap-outs written at once, host-wide: one per core. Operators started together go idle
    /// together; a hundred simultaneous swap-outs would otherwise occupy a hundred blocking
    /// threads (each exits again after ten idle seconds: CPU spent while nothing happens) and
    /// a hundred concurrent fsyncs, for no gain on a disk that writes one file at a time.
    pub writers: Arc<tokio::sync::Semaphore>,
}

impl Slot {
    pub fn resident(&self) -> Option<&OperatorInstance> {
        match self {
            Slot::Resident(instance) => Some(instance),
            _ => None,
        }
    }

    /// Linear memory held in the host's memory.
    pub fn resident_bytes(&self) -> u64 {
        self.resident()
            .map_or(0, |instance| instance.memory_bytes() as u64)
    }
}

impl Worker {
    /// Whether this operator can be swapped at all: the host has a state directory and the
    /// module's state can be captured.
    fn swappable(&self) -> bool {
        self.swap.state_dir.is_some() && self.module.swappable()
    }

    /// When the resident instance should be swapped out for idleness, if ever.
    ///
    /// With pre-wake, not while a timer is due within the lead of that moment: the operator
    /// would be swapped in again at once, and after a pre-wake it must stay until its timer.
    pub(super) fn idle_deadline(&self, slot: &Slot, last_active: Instant) -> Option<Instant> {
        let after = self.swap.after?;
        slot.resident()?;
        if !self.swappable() {
            return None;
        }
        // `Duration::MAX` (never) does not fit in an Instant: no deadline.
        let deadline = last_active.checked_add(after)?;
        let timer_within_lead = self.swap.pre_wake.is_some_and(|lead| {
            self.queue
                .next_timer()
                .is_some_and(|timer| timer <= deadline + lead)
        });
        (!timer_within_lead).then_some(deadline)
    }

    /// When to swap the operator in ahead of its next timer, and that timer's deadline: only
    /// while it is swapped out, and once per deadline (a budget swap-out after a pre-wake must
    /// not be undone at once).
    pub(super) fn pre_wake_at(
        &self,
        slot: &Slot,
        woken_for: Option<Instant>,
    ) -> Option<(Instant, Instant)> {
        let lead = self.swap.pre_wake?;
        if !matches!(slot, Slot::Swapped(_)) {
            return None;
        }
        let timer = self.queue.next_timer()?;
        if woken_for == Some(timer) {
            return None;
        }
        Some((timer.checked_sub(lead).unwrap_or(timer), timer))
    }

    /// Reports the slot to the memory budget and the metrics after the operator went idle.
    pub(super) fn settle(&self, slot: &Slot) {
        self.residency
            .idle(&self.name, slot.resident_bytes(), self.swappable());
        self.metrics
            .memory_bytes
            .get_or_create(&self.labels())
            .set(slot.resident_bytes() as i64);
    }

    /// Writes the resident instance to a snapshot and drops it. Already swapped out or lost:
    /// nothing to do. On failure the instance stays resident and the reason is returned.
    pub(super) async fn swap_out(&mut self, slot: &mut Slot) -> Result<(), String> {
        let Some(dir) = self.swap.state_dir.clone() else {
            return Err(
                "swapping is disabled on this host: start it with a state directory (--state-dir)"
                    .into(),
            );
        };
        if let Some(reason) = self.module.swap_unsupported_reason() {
            return Err(format!(
                "its module cannot be swapped out ({reason}); it stays resident"
            ));
        }
        if slot.resident().is_none() {
            return Ok(());
        }
        // The semaphore is never closed; were it, the swap-out would just run unbounded.
        let _writer = self.swap.writers.clone().acquire_owned().await.ok();
        let instance = match std::mem::replace(slot, Slot::Lost) {
            Slot::Resident(instance) => instance,
            other => {
                *slot = other;
                return Ok(());
            }
        };
        let resident_bytes = instance.memory_bytes();
        let started = Instant::now();
        let resume = self.resume_point_writer();
        let writing = self.swap.writing.clone();
        let written = tokio::task::spawn_blocking(move || {
            let _writing = writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let written = instance.swap_out(&dir).map(|mut swapped| {
                // Once durable, the snapshot outlives this process (see `resume`).
                if let Some(point) = resume(&swapped) {
                    match super::resume::write(&dir, &point) {
                        Ok(()) => swapped.keep_files(),
                        Err(error) => tracing::warn!(
                            operator = swapped.operator(),
                            "cannot write the resume point; the snapshot will not outlive this process: {error}"
                        ),
                    }
                }
                swapped
            });
            release_free_heap();
            written
        })
        .await;
        let failure = match written {
            Ok(Ok(swapped)) => {
                let snapshot_bytes = swapped.snapshot_bytes();
                tracing::info!(
                    operator = %self.name,
                    resident_bytes,
                    snapshot_bytes,
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "operator swapped out"
                );
                self.metrics.swap_outs.get_or_create(&self.labels()).inc();
                self.metrics
                    .snapshot_bytes
                    .get_or_create(&self.labels())
                    .set(snapshot_bytes as i64);
                *slot = Slot::Swapped(swapped);
                self.board.set(&self.name, OperatorState::Swapped);
                return Ok(());
            }
            Ok(Err(failure)) => {
                let SwapOutError { error, instance } = *failure;
                self.count_swap_failure(error.kind());
                *slot = Slot::Resident(instance);
                error.to_string()
            }
            Err(panicked) => {
                // The instance went down with the thread; the next event starts it fresh.
                self.count_swap_failure("io");
                format!("the swap-out thread failed ({panicked}); the operator's state is lost")
            }
        };
        tracing::warn!(operator = %self.name, "swap-out failed: {failure}");
        Err(failure)
    }

    /// Makes sure an instance is resident: restores a swapped-out one, or starts a fresh one if
    /// there is nothing (usable) to restore. `None`: the operator was stopped meanwhile.
    pub(super) async fn make_resident<'slot>(
        &mut self,
        slot: &'slot mut Slot,
        registration: &Registration,
    ) -> Option<&'slot mut OperatorInstance> {
        *slot = match std::mem::replace(slot, Slot::Lost) {
            Slot::Swapped(swapped) => self.restore(swapped).await,
            other => other,
        };
        if let Slot::Lost = slot {
            let mut failures = 0;
            *slot = Slot::Resident(self.recreate(registration, &mut failures).await?);
        }
        match slot {
            Slot::Resident(instance) => Some(instance),
            _ => None,
        }
    }

    /// What a swap-out leaves for the next process: a resume point for the snapshot just
    /// written, if the operator has started (its Registration is known).
    fn resume_point_writer(
        &self,
    ) -> impl FnOnce(&SwappedInstance) -> Option<super::resume::ResumePoint> + Send + 'static {
        let registration = self.registration.clone();
        let identity = self.swap.identity.clone();
        let init_digest = self.swap.init_digest.clone();
        move |swapped| {
            let registration = registration?;
            Some(super::resume::ResumePoint::new(
                &identity,
                &init_digest,
                &registration,
                swapped.manifest(),
            ))
        }
    }

    /// Restores a swapped-out instance: [`Slot::Resident`], or [`Slot::Lost`] if it cannot be.
    async fn restore(&self, swapped: SwappedInstance) -> Slot {
        // From the moment the guest runs again, memory is newer than the snapshot: a process
        // that dies from here on must not leave the next one an older state to resume.
        if let Some(dir) = &self.swap.state_dir {
            if let Err(error) = super::resume::remove(dir) {
                tracing::warn!(operator = %self.name, "cannot remove the resume point: {error}");
            }
        }
        let started = Instant::now();
        let restored = swapped.swap_in(self.services.clone()).await;
        self.metrics
            .snapshot_bytes
            .get_or_create(&self.labels())
            .set(0);
        match restored {
            Ok(instance) => {
                let took = started.elapsed();
                self.metrics.swap_ins.get_or_create(&self.labels()).inc();
                self.metrics
                    .swap_in_duration
                    .get_or_create(&self.labels())
                    .observe(took.as_secs_f64());
                tracing::debug!(
                    operator = %self.name,
                    took_us = took.as_micros() as u64,
                    "operator swapped in"
                );
                Slot::Resident(instance)
            }
            Err(error) => {
                self.count_swap_failure(error.kind());
                tracing::warn!(
                    operator = %self.name,
                    "could not restore the operator's state ({error}); starting it fresh"
                );
                Slot::Lost
            }
        }
    }

    fn count_swap_failure(&self, kind: &str) {
        self.metrics
            .swap_failures
            .get_or_create(&SwapFailureLabels {
                operator: self.name.clone(),
                kind: kind.to_string(),
            })
            .inc();
    }
}

/// Gives the heap memory the allocator holds free back to the operating system.
///
/// glibc's malloc keeps memory freed inside its arenas (one per thread that allocated) for
/// reuse, and returns only what lies at the top of an arena. Instantiating and running an
/// operator allocates and frees tens of KiB on whichever threads ran it (wasmtime's store,
/// JSON documents, the ABI's buffers); once the operator is swapped out that memory is free,
/// but it stays resident, scattered between live allocations. `malloc_trim` releases every
/// whole free page in every arena (MADV_DONTNEED), which is what makes a swapped-out operator
/// cost only its live bookkeeping. It walks the arenas' free lists: microseconds for a host's
/// heap, small beside the swap-out's own write and fsync.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory; it is
    // thread-safe (it takes each arena's lock).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What became of a resume point found at start.
enum Found {
    Usable(SwappedInstance, Registration, String),
    /// Not usable: the metric label and the reason.
    Unusable(&'static str, String),
}

impl Worker {
    /// The operator as an earlier process left it, if its directory holds a usable resume point
    /// (same module, snapshot format and init input); the snapshot's files are kept, everything
    /// else in the directory (an unusable resume point, files of snapshots nobody will resume)
    /// is removed. `None`: start fresh.
    pub(super) fn resumed(&self) -> Option<(SwappedInstance, Registration)> {
        let dir = self.swap.state_dir.as_ref()?;
        if !self.module.swappable() {
            return None;
        }
        let found = match super::resume::read(dir) {
            Ok(None) => None,
            Err(error) => Some(Found::Unusable("unreadable", error.to_string())),
            Ok(Some(point)) => Some(if point.init_digest != self.swap.init_digest {
                Found::Unusable(
                    "init_changed",
                    "the operator's config or limits changed since".into(),
                )
            } else if let Some(mismatch) = point.snapshot.mismatch(&self.name, &self.module) {
                Found::Unusable(mismatch.label(), mismatch.to_string())
            } else {
                match SwappedInstance::from_manifest(
                    self.module.clone(),
                    self.limits,
                    dir,
                    &point.snapshot,
                ) {
                    Ok(swapped) => Found::Usable(swapped, point.registration, point.writer),
                    Err(reason) => Found::Unusable("unreadable", reason),
                }
            }),
        };
        let (result, resumed) = match found {
            None => {
                self.remove_files_but(dir, &[]);
                return None;
            }
            Some(Found::Unusable(label, reason)) => {
                tracing::warn!(operator = %self.name, "not resuming from the snapshot left by an earlier process ({reason}); starting fresh");
                self.remove_files_but(dir, &[]);
                (label, None)
            }
            Some(Found::Usable(mut swapped, registration, writer)) => {
                tracing::info!(operator = %self.name, %writer, "resuming from the snapshot an earlier process left; init is not run");
                let mut keep: Vec<PathBuf> = swapped.snapshot_paths().map(PathBuf::from).collect();
                keep.push(super::resume::point_path(dir));
                self.remove_files_but(dir, &keep);
                // The resume point stays valid until the guest runs again.
                swapped.keep_files();
                ("resumed", Some((swapped, registration)))
            }
        };
        self.metrics
            .resumes
            .get_or_create(&crate::metrics::ResumeLabels {
                operator: self.name.clone(),
                result: result.into(),
            })
            .inc();
        resumed
    }

    /// Leaves the operator's state as it stops: for the next process when the host is shutting
    /// down (swapped out, its resume point written), or discarded when the operator is
    /// unloaded (its WasmOperator deleted or changed).
    pub(super) async fn leave(&mut self, mut slot: Slot) {
        let Some(dir) = self.swap.state_dir.clone() else {
            return;
        };
        if self.fenced() {
            // The shard is another replica's now: its directory too. A snapshot left there
            // is for the new holder to resume.
            return;
        }
        if self
            .swap
            .keep_on_stop
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            if self.swappable() && slot.resident().is_some() {
                if let Err(reason) = self.swap_out(&mut slot).await {
                    tracing::warn!(operator = %self.name, "its state is lost with this process: {reason}");
                }
            }
            // A swapped-out instance keeps its files when dropped once its resume point exists.
            return;
        }
        if let Err(error) = super::resume::remove(&dir) {
            tracing::warn!(operator = %self.name, "cannot remove the resume point: {error}");
        }
        drop(slot);
        self.remove_files_but(&dir, &[]);
    }

    fn remove_files_but(&self, dir: &std::path::Path, keep: &[PathBuf]) {
        match super::resume::remove_all_but(dir, keep) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(operator = %self.name, removed, dir = %dir.display(), "removed snapshot files nobody will resume")
            }
            Err(error) => {
                tracing::warn!(operator = %self.name, dir = %dir.display(), "cannot clear the operator's state directory: {error}")
            }
        }
    }
}
