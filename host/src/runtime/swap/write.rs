//! Swap-out: deciding where each chunk of memory comes from, and writing the snapshot file
//! crash-safely.

use std::fs::{self, File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::Val;

use super::format::{self, Chunk, GlobalBits, GlobalValue, SnapshotMeta, CHUNK_BYTES};
use super::instrument::{SwapLayout, SwapSupport};
use super::pagemap::{PageState, Pagemap};
use super::swapped::SwappedInstance;
use super::SNAPSHOT_EXTENSION;
use super::{sys, FileIdentity, MappedSnapshot, SnapshotRecord, SwapError, SwapOutError};
use crate::runtime::instance::OperatorInstance;
use crate::runtime::private_dir::ensure_private_dir;

const CHUNK: usize = CHUNK_BYTES as usize;
/// Chunks whose page states are read from the pagemap in one system call.
const PAGEMAP_BATCH_CHUNKS: usize = 64;
const TEMP_SUFFIX: &str = ".tmp";

/// Distinguishes snapshot files written by this process.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `instance`'s state to a new file in `dir` and drops the instance; on failure returns it
/// untouched.
pub(crate) fn swap_out(
    mut instance: OperatorInstance,
    dir: &Path,
) -> Result<SwappedInstance, Box<SwapOutError>> {
    match write_snapshot(&mut instance, dir) {
        Ok(record) => Ok(SwappedInstance::new(instance, record)),
        Err(error) => Err(Box::new(SwapOutError { error, instance })),
    }
}

/// Whether `name` is a snapshot or a snapshot's temporary file written by this module.
pub(crate) fn is_snapshot_file_name(name: &str) -> bool {
    let name = name.strip_suffix(TEMP_SUFFIX).unwrap_or(name);
    name.strip_suffix(SNAPSHOT_EXTENSION)
        .is_some_and(|stem| stem.ends_with('.'))
}

fn write_snapshot(
    instance: &mut OperatorInstance,
    dir: &Path,
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
    let memory_bytes = instance.memory.data_size(&instance.store) as u64;
    let plan = plan_chunks(instance, layout);

    // Created 0700, or checked to be the host user's own: see "Integrity" in the module docs.
    ensure_private_dir(dir, "state directory")
        .map_err(|reason| SwapError::io(dir, std::io::Error::other(reason)))?;
    let final_path = dir.join(file_name(instance.operator()));
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

    let written = (|| {
        let meta = SnapshotMeta {
            memory_bytes,
            module_digest: layout.module_digest,
            operator: instance.operator().to_owned(),
            chunks: Vec::new(),
            globals,
        };
        let memory = instance.memory.data(&instance.store);
        let meta = write_image(&file, meta, memory, &plan, instance.mapped.as_ref())
            .map_err(|error| SwapError::io(&temp_path, error))?;
        let (metadata, metadata_digest) = meta.encode();
        file.write_all_at(&metadata, 0)
            .map_err(|error| SwapError::io(&temp_path, error))?;
        // See "Integrity" in the module docs: any later change resets this to the current time.
        sys::set_modification_time(&file, 0, 0)
            .and_then(|()| file.sync_all())
            .map_err(|error| SwapError::io(&temp_path, error))?;
        fs::rename(&temp_path, &final_path).map_err(|error| SwapError::io(&final_path, error))?;
        // After the rename: renaming may move the status-change time, which the identity holds.
        let identity = file
            .metadata()
            .map(|metadata| FileIdentity::of(&metadata))
            .map_err(|error| SwapError::io(&final_path, error))?;
        let data_chunks = meta
            .chunks
            .iter()
            .filter(|chunk| **chunk != Chunk::Zero)
            .count();
        Ok(SnapshotRecord {
            path: final_path.clone(),
            identity,
            metadata_digest,
            memory_bytes,
            stored_bytes: metadata.len() as u64 + data_chunks as u64 * CHUNK_BYTES,
        })
    })();
    let record = match written {
        Ok(record) => record,
        Err(error) => {
            let _ = fs::remove_file(&temp_path);
            return Err(error);
        }
    };
    // The rename is durable only once the directory is.
    if let Err(error) = File::open(dir).and_then(|dir| dir.sync_all()) {
        let _ = fs::remove_file(&final_path);
        return Err(SwapError::io(dir, error));
    }
    Ok(record)
}

/// `<operator>-<pid>-<time>-<n>.wosnap`: every snapshot is a new file, so a file that is mapped
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

/// Where one chunk's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Never touched in an anonymous region: zero, nothing to read.
    Zero,
    /// Read from linear memory.
    Memory,
    /// Not written since a lazy restore: the previous snapshot's chunk, copied file to file.
    Previous,
    /// Partly written since a lazy restore: the previous chunk with these host pages (a bit per
    /// page) taken from memory.
    Mixed(u64),
}

fn plan_chunks(instance: &OperatorInstance, layout: &SwapLayout) -> Vec<Source> {
    let memory_bytes = instance.memory.data_size(&instance.store);
    let base = instance.memory.data_ptr(&instance.store) as usize;
    let chunk_count = memory_bytes / CHUNK;
    let page = sys::host_page_bytes();
    let pages_per_chunk = CHUNK / page.max(1);
    let pagemap = if (1..=64).contains(&pages_per_chunk) && CHUNK % page == 0 {
        Pagemap::open(page)
    } else {
        None
    };
    // Chunks backed by the previous snapshot, if memory still sits where it was mapped.
    let mapped_chunks = instance
        .mapped
        .as_ref()
        .filter(|mapped| mapped.base == base)
        .map(|mapped| (mapped.len / CHUNK_BYTES) as usize);
    if instance.mapped.is_some() && mapped_chunks.is_none() {
        tracing::debug!(
            operator = instance.operator(),
            "linear memory moved since it was restored; reading all of it"
        );
    }
    // Without a mapped snapshot, the fresh instance's initial pages may be backed by the
    // module's data segments rather than zero, so they are always read.
    let image_chunks = match mapped_chunks {
        Some(_) => 0,
        None => layout.initial_memory_bytes.div_ceil(CHUNK_BYTES) as usize,
    };

    let mut plan = Vec::with_capacity(chunk_count);
    let mut states = Vec::new();
    let mut chunk = 0;
    while chunk < chunk_count {
        let batch = PAGEMAP_BATCH_CHUNKS.min(chunk_count - chunk);
        let known = match &pagemap {
            Some(pagemap) => pagemap
                .read(base + chunk * CHUNK, &mut states, batch * pages_per_chunk)
                .map(|()| true)
                .unwrap_or_else(|error| {
                    tracing::debug!("reading /proc/self/pagemap failed ({error}); reading pages");
                    false
                }),
            None => false,
        };
        for offset in 0..batch {
            let index = chunk + offset;
            let pages = if known {
                &states[offset * pages_per_chunk..(offset + 1) * pages_per_chunk]
            } else {
                &[][..]
            };
            plan.push(source_of(index, pages, known, mapped_chunks, image_chunks));
        }
        chunk += batch;
    }
    plan
}

fn source_of(
    index: usize,
    pages: &[PageState],
    known: bool,
    mapped_chunks: Option<usize>,
    image_chunks: usize,
) -> Source {
    if !known {
        return Source::Memory;
    }
    if mapped_chunks.is_some_and(|mapped| index < mapped) {
        let mut dirty = 0u64;
        for (page, state) in pages.iter().enumerate() {
            if *state == PageState::Private {
                dirty |= 1 << page;
            }
        }
        return match dirty {
            0 => Source::Previous,
            all if all.count_ones() as usize == pages.len() => Source::Memory,
            some => Source::Mixed(some),
        };
    }
    if index < image_chunks {
        return Source::Memory;
    }
    if pages.iter().all(|state| *state == PageState::Untouched) {
        Source::Zero
    } else {
        Source::Memory
    }
}

fn is_zero(bytes: &[u8]) -> bool {
    // No early exit: the OR reduction vectorises, and a chunk about to be checksummed is read in
    // full anyway.
    bytes.iter().fold(0u8, |acc, &byte| acc | byte) == 0
}

/// Writes the memory image per `plan` and returns `meta` with its chunk table filled in.
fn write_image(
    file: &File,
    mut meta: SnapshotMeta,
    memory: &[u8],
    plan: &[Source],
    previous: Option<&MappedSnapshot>,
) -> std::io::Result<SnapshotMeta> {
    let chunk_count = plan.len();
    let data_offset =
        format::data_offset_for_counts(meta.operator.len(), chunk_count, meta.globals.len());
    meta.chunks = Vec::with_capacity(chunk_count);
    file.set_len(data_offset + meta.memory_bytes)?;

    let mut writer = RunWriter {
        file,
        memory,
        previous,
        data_offset,
        memory_run: None,
        copy_run: None,
    };
    let mut mixed_buffer = Vec::new();
    let page = sys::host_page_bytes();
    for (index, source) in plan.iter().enumerate() {
        let range = index * CHUNK..(index + 1) * CHUNK;
        let previous_chunk = previous
            .and_then(|previous| previous.chunks.get(index))
            .copied();
        let chunk = match *source {
            Source::Zero => {
                writer.flush()?;
                Chunk::Zero
            }
            Source::Memory => {
                let bytes = &memory[range];
                if is_zero(bytes) {
                    writer.flush()?;
                    Chunk::Zero
                } else {
                    writer.extend_memory_run(index)?;
                    Chunk::Data {
                        crc: crc32fast::hash(bytes),
                    }
                }
            }
            Source::Previous => match previous_chunk {
                Some(Chunk::Data { crc }) => {
                    writer.extend_copy_run(index)?;
                    Chunk::Data { crc }
                }
                _ => {
                    writer.flush()?;
                    Chunk::Zero
                }
            },
            Source::Mixed(dirty) => {
                writer.flush()?;
                mixed_buffer.resize(CHUNK, 0);
                match (previous, previous_chunk) {
                    (Some(previous), Some(Chunk::Data { .. })) => previous.file.read_exact_at(
                        &mut mixed_buffer,
                        previous.data_offset + (index * CHUNK) as u64,
                    )?,
                    _ => mixed_buffer.fill(0),
                }
                for page_index in 0..CHUNK / page {
                    if dirty & (1 << page_index) != 0 {
                        let within = page_index * page..(page_index + 1) * page;
                        mixed_buffer[within.clone()].copy_from_slice(
                            &memory[range.start + within.start..range.start + within.end],
                        );
                    }
                }
                if is_zero(&mixed_buffer) {
                    Chunk::Zero
                } else {
                    file.write_all_at(&mixed_buffer, data_offset + range.start as u64)?;
                    Chunk::Data {
                        crc: crc32fast::hash(&mixed_buffer),
                    }
                }
            }
        };
        meta.chunks.push(chunk);
    }
    writer.flush()?;
    Ok(meta)
}

/// Coalesces consecutive chunks into one write from memory or one file-to-file copy.
struct RunWriter<'a> {
    file: &'a File,
    memory: &'a [u8],
    previous: Option<&'a MappedSnapshot>,
    data_offset: u64,
    memory_run: Option<Range<usize>>,
    copy_run: Option<Range<usize>>,
}

impl RunWriter<'_> {
    fn extend_memory_run(&mut self, index: usize) -> std::io::Result<()> {
        self.flush_copy()?;
        extend(&mut self.memory_run, index);
        Ok(())
    }

    fn extend_copy_run(&mut self, index: usize) -> std::io::Result<()> {
        self.flush_memory()?;
        extend(&mut self.copy_run, index);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_memory()?;
        self.flush_copy()
    }

    fn flush_memory(&mut self) -> std::io::Result<()> {
        if let Some(run) = self.memory_run.take() {
            let bytes = &self.memory[run.start * CHUNK..run.end * CHUNK];
            self.file
                .write_all_at(bytes, self.data_offset + (run.start * CHUNK) as u64)?;
        }
        Ok(())
    }

    fn flush_copy(&mut self) -> std::io::Result<()> {
        if let Some(run) = self.copy_run.take() {
            let previous = self.previous.ok_or_else(|| {
                std::io::Error::other(
                    "a chunk was planned from a previous snapshot there is none of",
                )
            })?;
            sys::copy_file_range(
                &previous.file,
                previous.data_offset + (run.start * CHUNK) as u64,
                self.file,
                self.data_offset + (run.start * CHUNK) as u64,
                (run.len() * CHUNK) as u64,
            )?;
        }
        Ok(())
    }
}

fn extend(run: &mut Option<Range<usize>>, index: usize) {
    match run {
        Some(range) if range.end == index => range.end += 1,
        _ => *run = Some(index..index + 1),
    }
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

    #[test]
    fn chunks_are_sourced_by_region_and_page_state() {
        use PageState::*;
        let (untouched, file, private) = ([Untouched; 4], [FilePage; 4], [Private; 4]);
        let mixed = [FilePage, Private, Untouched, Private];
        // A lazily restored memory of 4 chunks.
        assert_eq!(source_of(0, &untouched, true, Some(4), 0), Source::Previous);
        assert_eq!(source_of(1, &file, true, Some(4), 0), Source::Previous);
        assert_eq!(source_of(2, &private, true, Some(4), 0), Source::Memory);
        assert_eq!(
            source_of(3, &mixed, true, Some(4), 0),
            Source::Mixed(0b1010)
        );
        // Grown since: anonymous.
        assert_eq!(source_of(4, &untouched, true, Some(4), 0), Source::Zero);
        assert_eq!(source_of(5, &mixed, true, Some(4), 0), Source::Memory);
        // A fresh instance: the initial image is always read.
        assert_eq!(source_of(0, &untouched, true, None, 2), Source::Memory);
        assert_eq!(source_of(2, &untouched, true, None, 2), Source::Zero);
        // Without a page table, everything is read.
        assert_eq!(source_of(7, &[], false, Some(4), 0), Source::Memory);
    }
}
