//! [`SwappedInstance`]: an operator instance whose state lives in a snapshot file, and its way
//! back to a live [`OperatorInstance`].

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::clock::GuestClock;
use super::restore;
use super::{remove_layer_files, RestoreMode, SnapshotRecord, SwapError};
use crate::runtime::instance::OperatorInstance;
use crate::runtime::limits::InstanceLimits;
use crate::runtime::module::LoadedModule;
use crate::runtime::services::HostServices;

/// An operator swapped out to disk: a few hundred bytes of host memory plus its snapshot's files
/// (a full snapshot and up to a few delta layers on top of it); no open file descriptor.
///
/// Dropping it (or [`SwappedInstance::discard`]) removes the snapshot's files. Swapping it in
/// hands them to the restored instance when it maps them (they go when that instance is dropped
/// or swapped out again without them), and removes them otherwise.
pub struct SwappedInstance {
    pub(super) module: LoadedModule,
    pub(super) operator: Arc<str>,
    pub(super) limits: InstanceLimits,
    pub(super) clock: GuestClock,
    pub(super) record: SnapshotRecord,
    /// Cleared once something else decided the files' fate, so `Drop` leaves them alone.
    owns_files: bool,
}

impl SwappedInstance {
    /// Takes over a snapshot just written for `instance`, and drops the instance.
    pub(super) fn new(instance: OperatorInstance, record: SnapshotRecord) -> SwappedInstance {
        SwappedInstance {
            module: instance.module().clone(),
            operator: instance.operator_name(),
            limits: instance.limits(),
            clock: instance.clock(),
            record,
            owns_files: true,
        }
    }

    /// A swapped-out instance rebuilt from a record another process wrote down.
    pub(super) fn restored_from(
        module: LoadedModule,
        operator: Arc<str>,
        limits: InstanceLimits,
        clock: GuestClock,
        record: SnapshotRecord,
    ) -> SwappedInstance {
        SwappedInstance {
            module,
            operator,
            limits,
            clock,
            record,
            owns_files: true,
        }
    }

    /// Leaves the snapshot's files where they are when this value is dropped: they outlive it
    /// (their [`SnapshotManifest`](super::SnapshotManifest) was written down). Swapping in or
    /// [`SwappedInstance::discard`] still deal with them.
    pub fn keep_files(&mut self) {
        self.owns_files = false;
    }

    /// The operator this instance runs for.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// The limits the restored instance runs under (those of the instance swapped out).
    pub fn limits(&self) -> InstanceLimits {
        self.limits
    }

    /// The snapshot's newest file: the one the last swap-out wrote.
    pub fn snapshot_path(&self) -> &Path {
        self.record.path()
    }

    /// Every file of the snapshot, the full snapshot first, then its delta layers in order.
    pub fn snapshot_paths(&self) -> impl Iterator<Item = &Path> {
        self.record.layers.iter().map(|layer| layer.path.as_path())
    }

    /// Bytes the snapshot occupies on disk: the metadata of its files, the memory chunks of its
    /// full snapshot that are not zero, and its delta layers' pages.
    pub fn snapshot_bytes(&self) -> u64 {
        self.record.stored_bytes()
    }

    /// Pages (of the host's size) that the next lazy swap-in will ask the kernel to read ahead:
    /// those the instance had resident when it was swapped out.
    pub fn working_set_pages(&self) -> u64 {
        self.record
            .working_set
            .iter()
            .map(|range| u64::from(range.end - range.start))
            .sum()
    }

    /// Forgets the pages to read ahead, so the next swap-in reads pages only as they are
    /// touched (to compare the two).
    pub fn forget_working_set(&mut self) {
        self.record.working_set.clear();
    }

    /// The size of the linear memory the snapshot restores.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.record.memory_bytes).unwrap_or(usize::MAX)
    }

    /// Restores the state into a fresh instance, mapping it lazily ([`RestoreMode::Lazy`]).
    /// `_initialize` and init are not run: the instance continues where it was swapped out.
    ///
    /// On any error the snapshot is gone and the operator must be started fresh (instantiate and
    /// init); [`SwapError::Missing`] and [`SwapError::Corrupt`] are also logged as warnings.
    pub async fn swap_in(
        self,
        services: Arc<dyn HostServices>,
    ) -> Result<OperatorInstance, SwapError> {
        self.swap_in_with(services, RestoreMode::Lazy).await
    }

    /// [`SwappedInstance::swap_in`] with a choice of how memory is restored.
    pub async fn swap_in_with(
        mut self,
        services: Arc<dyn HostServices>,
        mode: RestoreMode,
    ) -> Result<OperatorInstance, SwapError> {
        // Whoever restores the snapshot decides what becomes of its files, kept or not.
        self.owns_files = true;
        let restored = restore::restore(&self, services, mode).await;
        match &restored {
            // The restored instance maps the files and owns them from now on.
            Ok(instance) if instance.maps_snapshot() => self.owns_files = false,
            // A copied or unusable snapshot is done.
            _ => self.remove_files(),
        }
        if let Err(error @ (SwapError::Missing { .. } | SwapError::Corrupt { .. })) = &restored {
            tracing::warn!(operator = &*self.operator, "swap-in failed: {error}");
        }
        restored
    }

    /// Removes the snapshot without restoring it (e.g. when the operator is unloaded).
    pub fn discard(mut self) -> io::Result<()> {
        self.owns_files = false;
        let mut result = Ok(());
        for layer in &self.record.layers {
            match std::fs::remove_file(&layer.path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => result = Err(error),
                _ => {}
            }
        }
        result
    }

    fn remove_files(&mut self) {
        if std::mem::take(&mut self.owns_files) {
            remove_layer_files(&self.record.layers);
        }
    }
}

impl Drop for SwappedInstance {
    fn drop(&mut self) {
        self.remove_files();
    }
}

impl std::fmt::Debug for SwappedInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwappedInstance")
            .field("operator", &self.operator)
            .field("snapshot", &self.record.path())
            .field("layers", &self.record.layers.len())
            .field("memory_bytes", &self.record.memory_bytes)
            .finish_non_exhaustive()
    }
}
