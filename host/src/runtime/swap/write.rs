//! Swap-out: reading which pages changed, choosing between a delta layer and a full snapshot,
//! and writing the layer file crash-safely.

use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::Val;

use super::format::{GlobalBits, GlobalValue, CHUNK_BYTES};
use super::instrument::{SwapLayout, SwapSupport};
use super::pagemap::{PageState, Pagemap};
use super::swapped::SwappedInstance;
use super::SNAPSHOT_EXTENSION;
use super::{
    remove_layer_files, sys, FileIdentity, LayerRecord, MappedSnapshot, SnapshotRecord, SwapError,
    SwapOutError,
};
use crate::runtime::instance::OperatorInstance;
use crate::runtime::private_dir::ensure_private_dir;

use super::policy::{plan, working_set, Plan};
use super::write_delta::write_delta;
use super::write_layers::{write_full, LayerWriteError};

const CHUNK: usize = CHUNK_BYTES as usize;
/// Pages whose states are read from the pagemap in one system call.
const PAGEMAP_BATCH_PAGES: usize = 4096;
const TEMP_SUFFIX: &str = ".tmp";
/// Distinguishes snapshot files written by this process.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `instance`'s state to `dir` and drops the instance; on failure returns it untouched.
/// `full` forces a complete snapshot even where a delta layer would do.
pub(crate) fn swap_out(
    mut instance: OperatorInstance,
    dir: &Path,
    full: bool,
) -> Result<SwappedInstance, Box<SwapOutError>> {
    match write_snapshot(&mut instance, dir, full) {
        Ok(record) => {
            // The layers the new snapshot keeps are its own now; those it replaced go once the
            // instance (whose memory still maps them) is gone.
            let obsolete: Vec<LayerRecord> = match instance.mapped.as_mut() {
                Some(mapped) => {
                    mapped.owns_files = false;
                    let kept = &record.layers;
                    mapped
                        .chain
                        .layers
                        .iter()
                        .filter(|layer| !kept.iter().any(|keep| keep.path == layer.path))
                        .cloned()
                        .collect()
                }
                None => Vec::new(),
            };
            let swapped = SwappedInstance::new(instance, record);
            remove_layer_files(&obsolete);
            Ok(swapped)
        }
        Err(error) => Err(Box::new(SwapOutError { error, instance })),
    }
}

/// Whether `name` is a snapshot layer or a layer's temporary file written by this module.
pub(crate) fn is_snapshot_file_name(name: &str) -> bool {
    let name = name.strip_suffix(TEMP_SUFFIX).unwrap_or(name);
    name.strip_suffix(SNAPSHOT_EXTENSION)
        .is_some_and(|stem| stem.ends_with('.'))
}

/// What a swap-out writes from.
pub(super) struct Source<'a> {
    pub dir: &'a Path,
    pub operator: &'a str,
    pub module_digest: [u8; 32],
    pub globals: Vec<GlobalValue>,
    pub memory: &'a [u8],
    /// The chain memory is a mapping of, if it still is.
    pub mapped: Option<&'a MappedSnapshot>,
    /// Bytes of the fresh instance's initial memory (data segments), read whatever the pagemap
    /// says when memory is not a mapped snapshot.
    pub image_bytes: u64,
    /// `None` when the pagemap could not be read: every page is then read from memory.
    pub scan: Option<Scan>,
}

/// What the pagemap says about linear memory.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub page_bytes: usize,
    /// Pages whose content only memory holds, ascending: inside a mapped chain, pages the guest
    /// wrote (private copies); elsewhere, every page touched.
    pub dirty: Vec<u32>,
    /// Pages resident or swapped (touched since memory was created or mapped), as ranges.
    pub present: Vec<Range<u32>>,
}

fn write_snapshot(
    instance: &mut OperatorInstance,
    dir: &Path,
    full: bool,
) -> Result<SnapshotRecord, SwapError> {
    let module = instance.module.clone();
    let layout = match &module.inner.swap {
        SwapSupport::Supported(layout) => layout,
        SwapSupport::Unsupported(reason) => return Err(SwapError::Unsupported(reason.clone())),
    };
    if let Some(failure) = instance.failure() {
        return Err(SwapError::InstanceUnusable(failure));
    }
    let globals = read_globals(instance, layout)?;
    // Created 0700, or checked to be the host user's own: see "Integrity" in the module docs.
    ensure_private_dir(dir, "state directory")
        .map_err(|reason| SwapError::io(dir, std::io::Error::other(reason)))?;
    let memory = instance.memory.data(&instance.store);
    let base = memory.as_ptr() as usize;
    let mapped = instance
        .mapped
        .as_ref()
        .filter(|mapped| mapped.base == base);
    if instance.mapped.is_some() && mapped.is_none() {
        tracing::debug!(
            operator = instance.operator(),
            "linear memory moved since it was restored; reading all of it"
        );
    }
    let scan = scan(memory, mapped.map(|mapped| mapped.len));
    let source = Source {
        dir,
        operator: instance.operator(),
        module_digest: layout.module_digest,
        globals,
        memory,
        mapped,
        image_bytes: layout.initial_memory_bytes,
        scan,
    };
    write_layers(&source, full)
}

/// Writes the layer this swap-out needs and returns the snapshot's record.
pub(super) fn write_layers(source: &Source<'_>, full: bool) -> Result<SnapshotRecord, SwapError> {
    let working_set = source
        .scan
        .as_ref()
        .map(|scan| working_set(&scan.present, scan.page_bytes))
        .unwrap_or_default();
    let memory_bytes = source.memory.len() as u64;
    if let (Some(mapped), Some(scan), false) = (source.mapped, &source.scan, full) {
        let chain = &mapped.chain;
        let layer_pages: Vec<u64> = chain.layers.iter().map(|layer| layer.delta_pages).collect();
        let plan = plan(
            &layer_pages,
            scan.dirty.len() as u64,
            scan.page_bytes as u64,
            memory_bytes,
        );
        if let Plan::Delta { keep } = plan {
            match write_delta(source, chain, keep, scan) {
                Ok(layer) => {
                    let mut layers = chain.layers[..keep].to_vec();
                    layers.push(layer);
                    return Ok(SnapshotRecord {
                        layers,
                        memory_bytes,
                        working_set,
                    });
                }
                Err(LayerWriteError::LayerChanged(reason)) => tracing::warn!(
                    operator = source.operator,
                    "{reason}; writing a full snapshot from memory instead"
                ),
                Err(LayerWriteError::Swap(error)) => return Err(error),
            }
        }
    }
    let layer = match write_full(source, true) {
        Err(LayerWriteError::LayerChanged(reason)) => {
            tracing::warn!(
                operator = source.operator,
                "{reason}; writing a full snapshot from memory instead"
            );
            write_full(source, false)
        }
        other => other,
    };
    let layer = layer.map_err(|error| match error {
        LayerWriteError::Swap(error) => error,
        LayerWriteError::LayerChanged(reason) => {
            SwapError::io(source.dir, std::io::Error::other(reason))
        }
    })?;
    Ok(SnapshotRecord {
        layers: vec![layer],
        memory_bytes,
        working_set,
    })
}

/// A new layer file, open under its temporary name.
pub(super) struct NewLayer {
    pub file: File,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl NewLayer {
    pub fn create(dir: &Path, operator: &str) -> Result<NewLayer, SwapError> {
        let final_path = dir.join(file_name(operator));
        let mut temp_name = final_path.clone().into_os_string();
        temp_name.push(TEMP_SUFFIX);
        let temp_path = PathBuf::from(temp_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(|error| SwapError::io(&temp_path, error))?;
        Ok(NewLayer {
            file,
            temp_path,
            final_path,
        })
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Writes `metadata` at the start, stamps the modification time, fsyncs, renames to the final
    /// name and fsyncs the directory: the layer is durable when this returns. On error the file
    /// is removed.
    pub fn finish(
        self,
        dir: &Path,
        metadata: &[u8],
        metadata_digest: [u8; 32],
        stored_bytes: u64,
        delta_pages: u64,
    ) -> Result<LayerRecord, SwapError> {
        use std::os::unix::fs::FileExt;
        let NewLayer {
            file,
            temp_path,
            final_path,
        } = self;
        let named = (|| {
            file.write_all_at(metadata, 0)
                .map_err(|error| SwapError::io(&temp_path, error))?;
            super::test_hooks::before_sync(&temp_path)?;
            // See "Integrity" in the module docs: any later change resets this to the current
            // time.
            sys::set_modification_time(&file, 0, 0)
                .and_then(|()| file.sync_all())
                .map_err(|error| SwapError::io(&temp_path, error))?;
            fs::rename(&temp_path, &final_path).map_err(|error| SwapError::io(&final_path, error))
        })();
        if let Err(error) = named {
            let _ = fs::remove_file(&temp_path);
            return Err(error);
        }
        // After the rename: renaming may move the status-change time, which the identity holds.
        // The rename is durable only once the directory is.
        let finished = file
            .metadata()
            .map(|metadata| FileIdentity::of(&metadata))
            .map_err(|error| SwapError::io(&final_path, error))
            .and_then(|identity| {
                File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map(|()| identity)
                    .map_err(|error| SwapError::io(dir, error))
            });
        match finished {
            Ok(identity) => Ok(LayerRecord {
                path: final_path,
                identity,
                metadata_digest,
                stored_bytes,
                delta_pages,
            }),
            Err(error) => {
                let _ = fs::remove_file(&final_path);
                Err(error)
            }
        }
    }

    /// Removes the unfinished file.
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.temp_path);
    }
}

/// `<operator>-<pid>-<time>-<n>.wosnap`: every layer is a new file, so a file that is mapped
/// somewhere is never rewritten.
fn file_name(operator: &str) -> String {
    let readable: String = operator
        .chars()
        .take(96)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "{readable}-{:x}-{nanos:x}-{:x}.{SNAPSHOT_EXTENSION}",
        std::process::id(),
        FILE_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn read_globals(
    instance: &mut OperatorInstance,
    layout: &SwapLayout,
) -> Result<Vec<GlobalValue>, SwapError> {
    let mut values = Vec::with_capacity(layout.globals.len());
    for slot in &layout.globals {
        let global = instance
            .instance
            .get_global(&mut instance.store, &slot.export)
            .ok_or_else(|| {
                SwapError::Unsupported(format!(
                    "the instrumented export `{}` is missing",
                    slot.export
                ))
            })?;
        let value = match global.get(&mut instance.store) {
            Val::I32(value) => GlobalBits::I32(value as u32),
            Val::I64(value) => GlobalBits::I64(value as u64),
            Val::F32(bits) => GlobalBits::F32(bits),
            Val::F64(bits) => GlobalBits::F64(bits),
            Val::V128(value) => GlobalBits::V128(value.as_u128()),
            _ => {
                return Err(SwapError::Unsupported(format!(
                    "global {} holds a reference, which a snapshot cannot hold",
                    slot.index
                )))
            }
        };
        values.push(GlobalValue {
            index: slot.index,
            value,
        });
    }
    Ok(values)
}

/// Reads the page states of `memory`, `mapped_bytes` of which (from its start) map a chain.
/// `None` when the pagemap is unavailable or the page size does not divide a chunk.
pub(super) fn scan(memory: &[u8], mapped_bytes: Option<u64>) -> Option<Scan> {
    let page = sys::host_page_bytes();
    if page == 0 || CHUNK % page != 0 || CHUNK / page > 64 {
        return None;
    }
    let pagemap = Pagemap::open(page)?;
    let pages = memory.len() / page;
    let mapped_pages = mapped_bytes.map_or(0, |bytes| bytes as usize / page);
    let base = memory.as_ptr() as usize;
    let mut scan = Scan {
        page_bytes: page,
        ..Scan::default()
    };
    let mut states = Vec::new();
    let mut at = 0;
    while at < pages {
        let batch = PAGEMAP_BATCH_PAGES.min(pages - at);
        if let Err(error) = pagemap.read(base + at * page, &mut states, batch) {
            tracing::debug!("reading /proc/self/pagemap failed ({error}); reading pages");
            return None;
        }
        for (offset, state) in states.iter().enumerate() {
            let index = at + offset;
            let dirty = if index < mapped_pages {
                *state == PageState::Private
            } else {
                *state != PageState::Untouched
            };
            if dirty {
                scan.dirty.push(index as u32);
            }
            if *state != PageState::Untouched {
                let index = index as u32;
                match scan.present.last_mut() {
                    Some(range) if range.end == index => range.end += 1,
                    _ => scan.present.push(index..index + 1),
                }
            }
        }
        at += batch;
    }
    Some(scan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_temporary_names_are_recognised_and_nothing_else() {
        let name = file_name("demo/web app");
        assert!(name.starts_with("demo_web_app-"), "{name}");
        assert!(is_snapshot_file_name(&name));
        assert!(is_snapshot_file_name(&format!("{name}{TEMP_SUFFIX}")));
        assert!(!is_snapshot_file_name("notes.txt"));
        assert!(!is_snapshot_file_name("wosnap"));
        assert_ne!(
            file_name("a"),
            file_name("a"),
            "every snapshot gets a new file"
        );
    }
}
