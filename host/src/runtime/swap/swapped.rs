//! [`SwappedInstance`]: an operator instance whose state lives in a snapshot file, and its way
//! back to a live [`OperatorInstance`].

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::clock::GuestClock;
use super::restore;
use super::{RestoreMode, SnapshotRecord, SwapError};
use crate::runtime::instance::OperatorInstance;
use crate::runtime::limits::InstanceLimits;
use crate::runtime::module::LoadedModule;
use crate::runtime::services::HostServices;

/// An operator swapped out to disk: a few hundred bytes of host memory plus its snapshot file.
///
/// Dropping it (or [`SwappedInstance::discard`]) removes the snapshot file; so does swapping it
/// in, whether that succeeds or not.
pub struct SwappedInstance {
    pub(super) module: LoadedModule,
    pub(super) operator: Arc<str>,
    pub(super) limits: InstanceLimits,
    pub(super) clock: GuestClock,
    pub(super) record: SnapshotRecord,
    /// Cleared once something else decided the file's fate, so `Drop` leaves it alone.
    owns_file: bool,
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
            owns_file: true,
        }
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

    /// The snapshot file.
    pub fn snapshot_path(&self) -> &Path {
        &self.record.path
    }

    /// Bytes the snapshot occupies on disk: its metadata and the memory chunks that are not zero.
    pub fn snapshot_bytes(&self) -> u64 {
        self.record.stored_bytes
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
        let restored = restore::restore(&self, services, mode).await;
        // A mapped snapshot stays alive through its mapping; a copied or unusable one is done.
        self.remove_file();
        if let Err(error @ (SwapError::Missing { .. } | SwapError::Corrupt { .. })) = &restored {
            tracing::warn!(operator = &*self.operator, "swap-in failed: {error}");
        }
        restored
    }

    /// Removes the snapshot without restoring it (e.g. when the operator is unloaded).
    pub fn discard(mut self) -> io::Result<()> {
        self.owns_file = false;
        match std::fs::remove_file(&self.record.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn remove_file(&mut self) {
        if !std::mem::take(&mut self.owns_file) {
            return;
        }
        match std::fs::remove_file(&self.record.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => tracing::warn!(
                operator = &*self.operator,
                path = %self.record.path.display(),
                "could not remove a snapshot: {error}"
            ),
            _ => {}
        }
    }
}

impl Drop for SwappedInstance {
    fn drop(&mut self) {
        self.remove_file();
    }
}

impl std::fmt::Debug for SwappedInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwappedInstance")
            .field("operator", &self.operator)
            .field("snapshot", &self.record.path)
            .field("memory_bytes", &self.record.memory_bytes)
            .finish_non_exhaustive()
    }
}
