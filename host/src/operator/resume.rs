//! Operators that outlive their host process: each swap-out leaves a resume point beside the
//! snapshot, and the next process to run the operator (this host restarted, or the replica that
//! took its shard over) continues from it instead of running init.
//!
//! Layout: every operator has a directory of its own in the state directory, `<state>/<operator>/`,
//! holding its snapshot's layer files and `resume.json`: the snapshot's manifest, the
//! Registration init returned, a digest of what init was given (config and limits), and the
//! replica that wrote it. Only the replica running the operator touches that directory (shard
//! Leases fence it), so the directory can be shared by every replica.
//!
//! When the resume point is valid:
//! - it is written (temporary file, fsync, rename, directory fsync) after every swap-out, once
//!   the snapshot is durable, and the snapshot's files then outlive the process;
//! - it is removed before a swap-in lets the guest run again: from then on the state in memory
//!   is newer, and a crash must start the operator fresh rather than from an older state;
//! - it is removed with the files when the operator is unloaded (its WasmOperator deleted or
//!   changed) and when an operator starts fresh.
//!
//! A resume point is used only if the module digest, the snapshot format and the init input
//! all match; otherwise the operator runs init and the reason is counted (`resumes_total`).
//! Watches are opened anew from the saved Registration, and their initial list reconciles every
//! object, so nothing that changed while no process ran the operator is missed.
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasm_operator_abi::{InitInput, Registration};

use crate::runtime::{InstanceLimits, SnapshotManifest};

const FILE_NAME: &str = "resume.json";
/// Bump when the layout of `resume.json` changes; other versions are not used.
const VERSION: u32 = 1;

/// What a process needs to continue an operator another one swapped out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResumePoint {
    pub version: u32,
    /// The replica (host identity) that wrote it.
    pub writer: String,
    /// [`init_digest`] of what init was given.
    pub init_digest: String,
    pub registration: Registration,
    pub snapshot: SnapshotManifest,
}

impl ResumePoint {
    pub fn new(
        writer: &str,
        init_digest: &str,
        registration: &Registration,
        snapshot: SnapshotManifest,
    ) -> Self {
        ResumePoint {
            version: VERSION,
            writer: writer.to_string(),
            init_digest: init_digest.to_string(),
            registration: registration.clone(),
            snapshot,
        }
    }
}

/// The resume point's file in an operator's directory.
pub(crate) fn point_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Operator `operator`'s directory under the state directory `state_dir`.
pub(crate) fn operator_dir(state_dir: &Path, operator: &str) -> PathBuf {
    state_dir.join(operator)
}

/// A digest of what init is given: a resume point is used only for the same input (the same
/// config, name and ABI version) and limits.
pub(crate) fn init_digest(input: &InitInput, limits: &InstanceLimits) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(input).unwrap_or_default());
    hasher.update(limits.max_memory_bytes.to_le_bytes());
    hasher.update(limits.call_deadline.as_nanos().to_le_bytes());
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Writes `point` durably into `dir`, replacing the one there.
pub(crate) fn write(dir: &Path, point: &ResumePoint) -> io::Result<()> {
    let bytes = serde_json::to_vec(point).map_err(io::Error::other)?;
    let temp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&temp, point_path(dir))?;
    sync_dir(dir)
}

/// The resume point in `dir`: `Ok(None)` if there is none, an error if it cannot be read or
/// is not one this host understands.
pub(crate) fn read(dir: &Path) -> io::Result<Option<ResumePoint>> {
    let bytes = match fs::read(point_path(dir)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let point: ResumePoint = serde_json::from_slice(&bytes)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    if point.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "resume point version {}, this host reads {VERSION}",
                point.version
            ),
        ));
    }
    Ok(Some(point))
}

/// Removes the resume point in `dir`, durably, if there is one.
pub(crate) fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_file(point_path(dir)) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Removes every file in `dir` but `keep` (what a resume point about to be used references):
/// layers of earlier processes' snapshots, temporary files, a resume point not used.
pub(crate) fn remove_all_but(dir: &Path, keep: &[PathBuf]) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry?.path();
        if keep.contains(&path) || !path.is_file() {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(removed)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn the_init_digest_changes_with_the_config_and_the_limits() {
        let input = |config| InitInput {
            abi_version: 1,
            operator_name: "team-web".into(),
            config,
        };
        let limits = InstanceLimits {
            call_deadline: Duration::from_secs(5),
            max_memory_bytes: 64 << 20,
        };
        let base = init_digest(&input(json!({"a": 1})), &limits);
        assert_eq!(base, init_digest(&input(json!({"a": 1})), &limits));
        assert_ne!(base, init_digest(&input(json!({"a": 2})), &limits));
        let more = InstanceLimits {
            max_memory_bytes: 128 << 20,
            ..limits
        };
        assert_ne!(base, init_digest(&input(json!({"a": 1})), &more));
    }

    #[test]
    fn a_damaged_or_foreign_resume_point_is_an_error_and_none_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(FILE_NAME), b"{\"version\": 1, \"writer\"").unwrap();
        assert_eq!(
            read(dir.path()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        remove(dir.path()).unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        remove(dir.path()).unwrap();
    }
}
