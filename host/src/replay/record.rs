//! Writes one tape per operator while the host runs: the host's reconcile and host-call
//! observers feed a [`Recorder`], which groups each operator's host calls by the reconcile they
//! were made in and appends one line per reconcile to `DIR/<operator>.jsonl`.
//!
//! Host calls reach the recorder as they finish, a reconcile when it has returned; calls that
//! finished before the reconcile started belong to no reconcile (init's) and are written as an
//! episode of their own.
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasm_operator_abi::tape::{Call, Episode, Header, Outcome, FORMAT};
use wasm_operator_abi::InitInput;

use crate::operator::{
    HostCall, HostCallObserver, HostCallRecord, ReconcileObserver, ReconcileOutcome,
    ReconcileRecord,
};

/// Writes the tapes of the operators it was told about.
pub struct Recorder {
    dir: PathBuf,
    tracks: Mutex<HashMap<String, Track>>,
}

/// One operator's tape being written.
struct Track {
    file: BufWriter<File>,
    /// Host calls not yet written, with when they finished.
    pending: Vec<(Instant, Call)>,
    /// The first write error, reported once.
    failed: bool,
}

impl Recorder {
    /// A recorder writing into `dir` (created if missing).
    pub fn create(dir: &Path) -> std::io::Result<Arc<Recorder>> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(Recorder {
            dir: dir.to_path_buf(),
            tracks: Mutex::default(),
        }))
    }

    /// The tape of operator `name`.
    pub fn tape_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.jsonl"))
    }

    /// Starts the tape of operator `name`, started with `init`; replaces an earlier tape.
    pub fn add_operator(&self, name: &str, init: InitInput) -> std::io::Result<()> {
        let mut file = BufWriter::new(File::create(self.tape_path(name))?);
        let header = Header {
            format: FORMAT.into(),
            operator: name.into(),
            init,
        };
        write_line(&mut file, &header)?;
        let track = Track {
            file,
            pending: Vec::new(),
            failed: false,
        };
        lock(&self.tracks).insert(name.into(), track);
        Ok(())
    }

    /// The observers to put in the host's `ManagerConfig`.
    pub fn observers(self: &Arc<Self>) -> (ReconcileObserver, HostCallObserver) {
        let reconciles = self.clone();
        let calls = self.clone();
        (
            Arc::new(move |record: &ReconcileRecord| reconciles.on_reconcile(record)),
            Arc::new(move |record: &HostCallRecord| calls.on_call(record)),
        )
    }

    fn on_call(&self, record: &HostCallRecord) {
        let call = match &record.call {
            HostCall::Kube(request) => Call::Kube {
                request: request.clone(),
                response: record.response.clone(),
            },
            HostCall::Http(request) => Call::Http {
                request: request.clone(),
                response: record.response.clone(),
            },
        };
        if let Some(track) = lock(&self.tracks).get_mut(&record.operator) {
            track.pending.push((Instant::now(), call));
        }
    }

    fn on_reconcile(&self, record: &ReconcileRecord) {
        let mut tracks = lock(&self.tracks);
        let Some(track) = tracks.get_mut(&record.operator) else {
            return;
        };
        let pending = std::mem::take(&mut track.pending);
        let (before, during): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(finished, _)| *finished < record.started_at);
        let outside = Episode {
            reconcile: None,
            calls: before.into_iter().map(|(_, call)| call).collect(),
            outcome: None,
        };
        let outcome = match &record.outcome {
            ReconcileOutcome::Succeeded { result } => Outcome::Result(result.clone()),
            ReconcileOutcome::Failed { reason, message } => Outcome::Error {
                reason: (*reason).into(),
                message: message.clone(),
            },
        };
        let episode = Episode {
            reconcile: Some(record.request.clone()),
            calls: during.into_iter().map(|(_, call)| call).collect(),
            outcome: Some(outcome),
        };
        let written = (!outside.calls.is_empty())
            .then(|| write_line(&mut track.file, &outside))
            .unwrap_or(Ok(()))
            .and_then(|()| write_line(&mut track.file, &episode));
        if let Err(error) = written {
            if !track.failed {
                track.failed = true;
                tracing::error!(operator = %record.operator, %error, "could not write the operator's recording");
            }
        }
    }
}

fn write_line(file: &mut BufWriter<File>, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *file, value)?;
    file.write_all(b"\n")?;
    file.flush()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
