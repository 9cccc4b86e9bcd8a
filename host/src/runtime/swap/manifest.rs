//! [`SnapshotManifest`]: a snapshot's record written down, so that a snapshot outlives the
//! process that wrote it (a host restart, or another replica taking the operator over).
//!
//! The manifest names the layer files (relative to the directory it lies in), each with the
//! identity and metadata digest recorded when it was written; the memory size, the working
//! set and the guest's monotonic clock; and what it must match to be used: the snapshot format
//! version, the module's digest and the operator's name. It is plain serde data: the caller
//! stores it (with whatever else it needs to resume) and hands it back.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::clock::GuestClock;
use super::format::FORMAT_VERSION;
use super::swapped::SwappedInstance;
use super::{FileIdentity, LayerRecord, SnapshotRecord};
use crate::runtime::limits::InstanceLimits;
use crate::runtime::module::LoadedModule;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotManifest {
    /// The layer files' format ([`FORMAT_VERSION`] of the writer).
    pub format_version: u32,
    pub operator: String,
    /// `sha256:<hex>` of the module the snapshot is an instance of.
    pub module_digest: String,
    pub memory_bytes: u64,
    /// The guest's monotonic clock at swap-out, in nanoseconds: it continues from there.
    pub guest_clock_nanos: u64,
    /// Oldest (the full layer) first.
    layers: Vec<ManifestLayer>,
    working_set: Vec<(u32, u32)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ManifestLayer {
    /// A file name in the manifest's directory.
    file: String,
    identity: FileIdentity,
    metadata_digest: String,
    stored_bytes: u64,
    delta_pages: u64,
}

impl SnapshotManifest {
    /// The layer files, as paths under `dir`.
    pub fn files(&self, dir: &Path) -> Vec<PathBuf> {
        self.layers
            .iter()
            .map(|layer| dir.join(&layer.file))
            .collect()
    }

    /// Why this manifest cannot be restored for `operator` running `module`, if it cannot.
    pub fn mismatch(&self, operator: &str, module: &LoadedModule) -> Option<Mismatch> {
        if self.format_version != FORMAT_VERSION {
            return Some(Mismatch::Format {
                found: self.format_version,
            });
        }
        if self.operator != operator {
            return Some(Mismatch::Operator);
        }
        if self.module_digest != module.digest() {
            return Some(Mismatch::Module);
        }
        None
    }
}

/// Why a manifest is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Format { found: u32 },
    Operator,
    Module,
}

impl Mismatch {
    /// A short, stable label for metrics: `format_changed`, `other_operator`, `module_changed`.
    pub fn label(&self) -> &'static str {
        match self {
            Mismatch::Format { .. } => "format_changed",
            Mismatch::Operator => "other_operator",
            Mismatch::Module => "module_changed",
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Format { found } => write!(
                f,
                "the snapshot has format version {found}; this host writes and reads {FORMAT_VERSION}"
            ),
            Mismatch::Operator => write!(f, "the snapshot is another operator's"),
            Mismatch::Module => write!(f, "the snapshot is of another module"),
        }
    }
}

impl SwappedInstance {
    /// The manifest of this snapshot; its layer files must lie in one directory (they do: a
    /// swap-out writes every layer into its state directory).
    pub fn manifest(&self) -> SnapshotManifest {
        let record = &self.record;
        SnapshotManifest {
            format_version: FORMAT_VERSION,
            operator: self.operator.to_string(),
            module_digest: self.module.digest().to_string(),
            memory_bytes: record.memory_bytes,
            guest_clock_nanos: self.clock.now_nanos(),
            layers: record
                .layers
                .iter()
                .map(|layer| ManifestLayer {
                    file: layer
                        .path
                        .file_name()
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    identity: layer.identity,
                    metadata_digest: hex::encode(layer.metadata_digest),
                    stored_bytes: layer.stored_bytes,
                    delta_pages: layer.delta_pages,
                })
                .collect(),
            working_set: record
                .working_set
                .iter()
                .map(|range| (range.start, range.end))
                .collect(),
        }
    }

    /// A swapped-out instance of `module` from a manifest whose files are in `dir`, or why it
    /// cannot be one. The snapshot's files are checked when it is swapped in; from now on this
    /// value owns them (dropping it removes them).
    pub fn from_manifest(
        module: LoadedModule,
        limits: InstanceLimits,
        dir: &Path,
        manifest: &SnapshotManifest,
    ) -> Result<SwappedInstance, String> {
        if let Some(mismatch) = manifest.mismatch(&manifest.operator, &module) {
            return Err(mismatch.to_string());
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            let file = Path::new(&layer.file);
            // A bare file name: a manifest never points outside its directory.
            if layer.file.is_empty() || file.file_name() != Some(file.as_os_str()) {
                return Err(format!("the snapshot names the file {:?}", layer.file));
            }
            let digest = hex::decode(&layer.metadata_digest)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    format!(
                        "the snapshot's digest {:?} is malformed",
                        layer.metadata_digest
                    )
                })?;
            layers.push(LayerRecord {
                path: dir.join(file),
                identity: layer.identity,
                metadata_digest: digest,
                stored_bytes: layer.stored_bytes,
                delta_pages: layer.delta_pages,
            });
        }
        if layers.is_empty() {
            return Err("the snapshot has no layers".into());
        }
        let record = SnapshotRecord {
            layers,
            memory_bytes: manifest.memory_bytes,
            working_set: manifest
                .working_set
                .iter()
                .filter(|(start, end)| start < end)
                .map(|(start, end)| *start..*end)
                .collect(),
        };
        Ok(SwappedInstance::restored_from(
            module,
            manifest.operator.as_str().into(),
            limits,
            GuestClock::continuing_from(manifest.guest_clock_nanos),
            record,
        ))
    }
}
