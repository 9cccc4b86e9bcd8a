//! Swap: writing an idle operator's instance state to a file and dropping the instance, then
//! restoring that state into a fresh instance when the operator is needed again.
//!
//! # What is saved
//!
//! An instance's state is its linear memory and its mutable globals. The module is instrumented
//! at load ([`instrument`]) so every mutable global is exported; tables are immutable in modules
//! that pass the instrumentation, so they need no saving. The WASI context is rebuilt (operators
//! have no files or sockets), except for the monotonic clock, which continues ([`clock`]).
//! `_initialize` and init are not run again: the restored memory already holds what they built.
//!
//! # Swap-out ([`OperatorInstance::swap_out`](super::OperatorInstance::swap_out))
//!
//! A snapshot is a chain of layer files ([`format`], [`delta`]): one *full* layer, the whole
//! memory in 64 KiB chunks (all-zero chunks are holes of a sparse file), and up to
//! `MAX_DELTAS` (8) *delta* layers on top, each holding only the host pages written since the
//! layer below, with a page table saying which pages it replaces. Nothing is copied into host
//! memory first, so swapping out never doubles the operator's footprint.
//!
//! - From a fresh instance (or one restored by copy) a full layer is written. Untouched pages
//!   are found from the page table ([`pagemap`]) and skipped.
//! - After a lazy swap-in, memory is a copy-on-write mapping of the chain, so the pages the
//!   guest wrote since are exactly the private (anonymous) pages of that mapping. A swap-out
//!   writes a new delta of just those pages: its cost is what the operator changed, not what it
//!   holds. The new delta also absorbs the newest deltas that are no larger than what it already
//!   holds (their pages the guest did not rewrite are copied file to file), like a binary
//!   counter: layers roughly double in size downwards, the chain stays short, and each page is
//!   copied O(log n) times, amortised. Once the deltas would together exceed a quarter of
//!   memory, the chain is compacted into a new full layer instead; that costs the state's size,
//!   but only after at least a quarter of it was written as deltas, so per page written it adds a
//!   constant. The layers a swap-out no longer references are removed once the new one is
//!   durable.
//!
//! Why layers rather than rewriting one file in place: a file mapped into a live instance must
//! not change under it (the guest would see pages it never wrote change), and a new file per
//! layer keeps the crash safety of write-then-rename without a journal. Every layer file is
//! written under a temporary name, fsynced, renamed and the directory fsynced, mode 0600; a
//! swap-out that fails at any point removes its temporary file and leaves the instance resident
//! and its chain as it was. Then the store is dropped and its memory returns to the operating
//! system; compiled code stays shared with the module.
//!
//! Swap-out also records which pages were resident (touched since the swap-in, plus the
//! kernel's fault-around neighbours, or everything a fresh instance touched), as at most 256
//! page ranges and only if they total at most 16 MiB: the working set the next swap-in reads
//! ahead.
//!
//! # Swap-in ([`SwappedInstance::swap_in`])
//!
//! A fresh instance is created without `_initialize`, its memory grown to the saved size, and the
//! chain's image mapped over it copy-on-write (`mmap(MAP_PRIVATE | MAP_FIXED)`), each page from
//! the newest layer that holds it, with one mapping per run of pages contiguous in one file:
//! restoring costs the number of runs, not the state's size, and only the pages the next calls
//! touch are read back in. Zero chunks and pages (holes in the file, pages a delta zeroed) get
//! fresh anonymous zero pages instead of a view of a hole: tmpfs allocates a page when a mapped
//! hole is first read, and a full tmpfs answers with SIGBUS, which would take the host down on a
//! full state directory. The globals (the newest layer's) are set, and the kernel is asked to
//! read the recorded working set into the page cache asynchronously (`MADV_WILLNEED`), so that
//! after a swap-in from a cold cache the first call does not fault its pages in from disk one at
//! a time. [`RestoreMode::Eager`] copies the image into memory instead.
//!
//! File descriptors: a swapped-out operator holds none (its record names its layer files), and
//! a restored one holds none either (the mappings keep the files alive); a swap-out opens only
//! the layers it copies from.
//!
//! # Integrity, and what is checksummed when
//!
//! A snapshot must be detected as damaged before any of its data reaches the guest. Every
//! swap-in checks, for every layer, at a cost independent of the state's size:
//!
//! - the header (magic, format version, sizes, layer kind), and a SHA-256 over header, tables,
//!   globals;
//! - that this metadata digest is the one recorded in memory when the layer was written: a
//!   snapshot of another operator, module or moment is refused, not just a damaged one; a delta
//!   also records its parent's metadata digest, which must be the layer below's;
//! - that the file's length is exactly what its metadata implies (truncation, extension).
//!
//! The data carries a CRC-32 per 64 KiB chunk (full layer) or per page (delta). Verifying those
//! means reading all the data, which is what lazy restore exists to avoid, so it is verified
//! only when a file may have changed since the host wrote it:
//!
//! - right after writing, the host sets the file's modification time to 1970 and records the
//!   file's identity (device, inode, length, modification time, status-change time) once it has
//!   its final name;
//! - any later write, truncation, hole punch or store through a shared mapping makes the kernel
//!   set the modification time to the current time, however soon after and whatever the
//!   filesystem's timestamp granularity, so the identity no longer matches;
//! - when every layer's identity matches, the image is mapped without reading it; when any does
//!   not, the image is read into memory instead of mapped, every chunk's and page's CRC is
//!   checked as it arrives, and a mismatch fails the swap-in with [`SwapError::Corrupt`]. Data
//!   is never used before it is verified, and the verified copy cannot change afterwards.
//! - a swap-out copies pages from a layer file (merging deltas, compacting) only after checking
//!   that layer's identity, and checks it again after copying; if a layer changed, the swap-out
//!   writes a full snapshot from memory instead, so unverified data is never carried into a new
//!   layer that would be trusted by its identity.
//!
//! Resetting the modification time with `utimensat` after a rewrite does not help a tamperer:
//! that moves the status-change time, which nobody can set and which is part of the identity.
//! The state directory must be the host user's own with no access for group or others
//! (checked before every swap-out and at start, see `private_dir`): that is the trust boundary.
//!
//! Layer files keep their names while an instance maps them, because the next swap-out writes a
//! delta that refers to them and a file without a name cannot be given one again (and keeping
//! it open instead would cost a descriptor per swapped-out operator). What this leaves
//! unchecked, deliberately: a process running as the host's user (or root) that changes or
//! truncates a mapped layer while the instance is resident can change pages the guest has not
//! written yet, or make the guest's next touch of a page beyond the new end raise SIGBUS. Such a
//! process can equally write to the files through `/proc/<host pid>/fd` or rewrite the
//! precompiled code the host executes, so this is the same boundary as before; the change is
//! still detected, by identity, at the next swap-out or swap-in. Media errors the disk and
//! filesystem do not report are not detected; a read error the kernel does report while the
//! guest touches a mapped page raises SIGBUS, as for any memory-mapped file.
//!
//! Restoring needs the record held by the [`SwappedInstance`]. Dropping or discarding a
//! `SwappedInstance` removes its files; a restored instance owns the files it maps and removes
//! them when dropped, unless a swap-out handed them to a new snapshot. To outlive the process,
//! the record is written down as a [`SnapshotManifest`] and the files are kept
//! ([`SwappedInstance::keep_files`]); another process rebuilds the `SwappedInstance` from the
//! manifest ([`SwappedInstance::from_manifest`]) after checking that it is for this operator,
//! this module and this snapshot format. Every layer is checked on swap-in exactly as for a
//! snapshot of this process: by metadata digest against the manifest, and by identity before
//! anything is mapped (a file whose identity differs, e.g. copied to another filesystem, is
//! read and verified instead). [`remove_snapshots`] clears a directory, temporary files included.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "swapping operators out maps snapshot files over linear memory and reads /proc/self/pagemap; \
     the host supports Linux only"
);

mod chain;
pub(crate) mod clock;
mod delta;
mod format;
pub(crate) mod instrument;
mod manifest;
mod pagemap;
mod policy;
mod restore;
mod swapped;
mod sys;
#[cfg(test)]
mod tests;
mod write;
mod write_delta;
mod write_layers;

use std::io;
use std::path::{Path, PathBuf};

pub use manifest::{Mismatch as SnapshotMismatch, SnapshotManifest};
pub use swapped::SwappedInstance;

use super::error::CallError;
use super::instance::OperatorInstance;

/// File name extension of snapshot files.
const SNAPSHOT_EXTENSION: &str = "wosnap";

/// How [`SwappedInstance::swap_in_with`] puts the saved memory back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreMode {
    /// Map the snapshot copy-on-write: constant time, pages come back as they are touched.
    /// Falls back to [`RestoreMode::Eager`] when the file's data must be verified first.
    #[default]
    Lazy,
    /// Read the whole image into memory, verifying every chunk's checksum: time and resident
    /// memory proportional to the state's size.
    Eager,
}

/// Why a swap-out or swap-in did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The snapshot file is gone. The operator's state is lost: start it fresh.
    #[error("the snapshot {} does not exist; the operator must start fresh", path.display())]
    Missing { path: PathBuf },
    /// The snapshot file is damaged or is not the one this instance was swapped out to. The
    /// operator's state is lost: start it fresh.
    #[error("the snapshot {} is unusable ({reason}); the operator must start fresh", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// Reading or writing the snapshot failed (disk full, permissions, ...).
    #[error("snapshot I/O on {} failed: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The module cannot be swapped (its state is not fully capturable); keep it resident.
    #[error("this operator's module cannot be swapped out: {0}")]
    Unsupported(String),
    /// The instance failed or was interrupted mid-call, so its state is not worth saving: drop
    /// it and start the operator fresh.
    #[error("the instance cannot be swapped out: {0}")]
    InstanceUnusable(CallError),
    /// Creating the fresh instance to restore into failed (e.g. the memory limit).
    #[error("could not create an instance to restore into: {0}")]
    Instantiate(CallError),
}

impl SwapError {
    /// A short, stable label for logs and metrics: `missing`, `corrupt`, `io`, `unsupported`,
    /// `instance_unusable` or `instantiate`.
    pub fn kind(&self) -> &'static str {
        match self {
            SwapError::Missing { .. } => "missing",
            SwapError::Corrupt { .. } => "corrupt",
            SwapError::Io { .. } => "io",
            SwapError::Unsupported(_) => "unsupported",
            SwapError::InstanceUnusable(_) => "instance_unusable",
            SwapError::Instantiate(_) => "instantiate",
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> SwapError {
        SwapError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> SwapError {
        SwapError::Corrupt {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A failed swap-out: why, and the instance, unchanged and still resident.
pub struct SwapOutError {
    pub error: SwapError,
    pub instance: OperatorInstance,
}

impl std::fmt::Debug for SwapOutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapOutError")
            .field("error", &self.error)
            .field("operator", &self.instance.operator())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for SwapOutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "swapping out operator {}: {}",
            self.instance.operator(),
            self.error
        )
    }
}

impl std::error::Error for SwapOutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A restored instance's memory is a private mapping of this snapshot chain.
pub(crate) struct MappedSnapshot {
    /// Where the mapping starts; if linear memory ever moved, the mapping no longer backs it.
    pub base: usize,
    pub len: u64,
    pub chain: chain::Chain,
    /// Whether dropping this removes the chain's files: cleared once a swap-out has handed them
    /// to the snapshot it wrote.
    pub owns_files: bool,
}

impl Drop for MappedSnapshot {
    fn drop(&mut self) {
        if self.owns_files {
            remove_layer_files(&self.chain.layers);
        }
    }
}

/// One layer file of a snapshot as the host wrote it; see "Integrity" above.
#[derive(Debug, Clone)]
pub(crate) struct LayerRecord {
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub metadata_digest: [u8; 32],
    /// Metadata plus the data actually stored (holes excluded).
    pub stored_bytes: u64,
    /// Data pages a delta layer stores; 0 for the full layer.
    pub delta_pages: u64,
}

/// What the host remembers about a snapshot it wrote: its layers, oldest (the full one) first.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotRecord {
    pub layers: Vec<LayerRecord>,
    pub memory_bytes: u64,
    /// Host pages the instance had resident when it was swapped out, as ascending page ranges:
    /// what swap-in reads ahead.
    pub working_set: Vec<std::ops::Range<u32>>,
}

impl SnapshotRecord {
    /// The newest layer's file.
    pub fn path(&self) -> &Path {
        self.layers
            .last()
            .map_or(Path::new(""), |layer| layer.path.as_path())
    }

    pub fn stored_bytes(&self) -> u64 {
        self.layers.iter().map(|layer| layer.stored_bytes).sum()
    }
}

/// Removes the files of `layers`, logging (not failing on) what cannot be removed: a file left
/// behind holds nothing reusable and goes at the host's next start.
pub(crate) fn remove_layer_files(layers: &[LayerRecord]) {
    for layer in layers {
        match std::fs::remove_file(&layer.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => tracing::warn!(
                path = %layer.path.display(),
                "could not remove a snapshot file: {error}"
            ),
            _ => {}
        }
    }
}

/// The properties of a file that any change to its content through the kernel alters. The
/// status-change time is included because nobody can set it: a process that rewrites a snapshot
/// and puts its modification time back with `utimensat` still moves it forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct FileIdentity {
    device: u64,
    inode: u64,
    len: u64,
    modified_seconds: i64,
    modified_nanoseconds: i64,
    changed_seconds: i64,
    changed_nanoseconds: i64,
}

impl FileIdentity {
    pub fn of(metadata: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified_seconds: metadata.mtime(),
            modified_nanoseconds: metadata.mtime_nsec(),
            changed_seconds: metadata.ctime(),
            changed_nanoseconds: metadata.ctime_nsec(),
        }
    }
}

/// Removes every snapshot and leftover temporary file in `dir` (e.g. at startup, after a crash:
/// snapshots are only usable by the process that wrote them). Returns how many files went.
pub fn remove_snapshots(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if write::is_snapshot_file_name(&name) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    Ok(removed)
}

pub(crate) use write::swap_out;

/// Failures injected into swap-out by unit tests, to check that a swap-out failing at any point
/// leaves the instance and its snapshot as they were.
#[cfg(test)]
pub(crate) mod test_hooks {
    use std::cell::Cell;
    use std::path::Path;

    use super::SwapError;

    thread_local! {
        /// Layer writes on this thread that succeed before one fails (`None`: none fails).
        pub static FAIL_AFTER: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Called before a new layer file is fsynced and renamed.
    pub fn before_sync(path: &Path) -> Result<(), SwapError> {
        FAIL_AFTER.with(|fail| match fail.get() {
            Some(0) => Err(SwapError::io(
                path,
                std::io::Error::other("injected failure"),
            )),
            Some(left) => {
                fail.set(Some(left - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

#[cfg(not(test))]
mod test_hooks {
    #[inline]
    pub fn before_sync(_path: &std::path::Path) -> Result<(), super::SwapError> {
        Ok(())
    }
}
