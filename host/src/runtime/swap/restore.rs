//! Swap-in: checking a snapshot, creating a fresh instance without `_initialize`, and putting the
//! saved memory and globals back, by mapping (lazy) or by verified copy (eager).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use wasmtime::Val;

use std::path::Path;

use super::chain::{Chain, PageSource};
use super::delta;
use super::format::{self, Chunk, GlobalBits, GlobalValue, CHUNK_BYTES, FIXED_HEADER_BYTES};
use super::instrument::{GlobalType, SwapLayout, SwapSupport};
use super::swapped::SwappedInstance;
use super::{sys, FileIdentity, MappedSnapshot, RestoreMode, SnapshotRecord, SwapError};
use crate::runtime::engine::MEMORIES_HAVE_OWN_MAPPINGS;
use crate::runtime::error::CallError;
use crate::runtime::instance::OperatorInstance;
use crate::runtime::services::HostServices;

const CHUNK: usize = CHUNK_BYTES as usize;

/// A snapshot chain whose metadata has been checked, its files open.
struct CheckedSnapshot {
    /// One per layer, oldest first.
    files: Vec<File>,
    chain: Chain,
    globals: Vec<GlobalValue>,
    /// Every layer is, by its identity, exactly as the host wrote it, so the image may be mapped
    /// without reading it (see "Integrity" in the module docs).
    unchanged: bool,
}

pub(super) async fn restore(
    swapped: &SwappedInstance,
    services: Arc<dyn HostServices>,
    mode: RestoreMode,
) -> Result<OperatorInstance, SwapError> {
    let layout = match &swapped.module.inner.swap {
        SwapSupport::Supported(layout) => layout,
        SwapSupport::Unsupported(reason) => return Err(SwapError::Unsupported(reason.clone())),
    };
    let record = &swapped.record;
    let mut checked = check(record, layout, &swapped.operator)?;
    let globals = std::mem::take(&mut checked.globals);
    let mut instance = OperatorInstance::create(
        swapped.module.clone(),
        &swapped.operator,
        swapped.limits,
        services,
        swapped.clock,
    )
    .await
    .map_err(SwapError::Instantiate)?;
    let fresh_bytes = grow_to(&mut instance, record, checked.chain.memory_bytes)?;
    if mode == RestoreMode::Lazy && checked.unchanged && MEMORIES_HAVE_OWN_MAPPINGS {
        map_image(&mut instance, record, checked, fresh_bytes)?;
        read_ahead(&instance, record);
    } else {
        copy_image(&mut instance, record, &checked, fresh_bytes)?;
    }
    set_globals(&mut instance, record, layout, &globals)?;
    Ok(instance)
}

/// Opens every layer of the snapshot and checks everything but the memory data (see
/// "Integrity").
fn check(
    record: &SnapshotRecord,
    layout: &SwapLayout,
    operator: &str,
) -> Result<CheckedSnapshot, SwapError> {
    let page_bytes = sys::host_page_bytes();
    let mut files = Vec::with_capacity(record.layers.len());
    let mut chain: Option<Chain> = None;
    let mut globals = Vec::new();
    let mut unchanged = true;
    for (index, layer) in record.layers.iter().enumerate() {
        let path = &layer.path;
        let corrupt = |reason: String| SwapError::corrupt(path, reason);
        let file = File::open(path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => SwapError::Missing { path: path.clone() },
            _ => SwapError::io(path, error),
        })?;
        let stat = file
            .metadata()
            .map_err(|error| SwapError::io(path, error))?;
        let mut fixed = [0u8; FIXED_HEADER_BYTES];
        read_exact_at(&file, &mut fixed, 0, path)?;
        let header = format::decode_fixed_header(&fixed).map_err(corrupt)?;
        if header.global_count != layout.globals.len() as u64 {
            return Err(corrupt(format!(
                "it holds {} globals, the module has {}",
                header.global_count,
                layout.globals.len()
            )));
        }
        // Bounded by the header checks: at most a few hundred KiB for a 4 GiB memory (a few MiB
        // for a delta listing every page of it).
        let mut metadata = vec![0u8; header.metadata_bytes() as usize];
        read_exact_at(&file, &mut metadata, 0, path)?;
        let (digest, module_digest, layer_operator, file_bytes) = match chain.as_mut() {
            None => {
                let (meta, digest) =
                    format::decode_metadata(&header, &metadata).map_err(corrupt)?;
                let data_offset = header.data_offset;
                chain = Some(Chain::new(
                    layer.clone(),
                    meta.chunks,
                    data_offset,
                    page_bytes,
                ));
                globals = meta.globals;
                (
                    digest,
                    meta.module_digest,
                    meta.operator,
                    header.file_bytes(),
                )
            }
            Some(chain) => {
                let (meta, digest) = delta::decode_delta(&header, &metadata).map_err(corrupt)?;
                if meta.parent_digest != record.layers[index - 1].metadata_digest {
                    return Err(corrupt(
                        "it is not a delta of the layer below it".to_owned(),
                    ));
                }
                if meta.page_bytes as usize != page_bytes {
                    return Err(corrupt(format!(
                        "its page size {} is not this host's {page_bytes}",
                        meta.page_bytes
                    )));
                }
                if meta.memory_bytes < chain.memory_bytes {
                    return Err(corrupt(
                        "its memory is smaller than the layer below's".to_owned(),
                    ));
                }
                let file_bytes = meta.file_bytes();
                chain.push_delta(layer.clone(), &meta);
                globals = meta.globals;
                (digest, meta.module_digest, meta.operator, file_bytes)
            }
        };
        if stat.len() != file_bytes {
            return Err(corrupt(format!(
                "it is {} bytes long, its metadata says {file_bytes}",
                stat.len()
            )));
        }
        if digest != layer.metadata_digest {
            return Err(corrupt(
                "it is not the snapshot this instance was swapped out to".to_owned(),
            ));
        }
        if module_digest != layout.module_digest || layer_operator != operator {
            return Err(corrupt(
                "it belongs to another module or operator".to_owned(),
            ));
        }
        unchanged &= FileIdentity::of(&stat) == layer.identity;
        files.push(file);
    }
    let Some(chain) = chain else {
        return Err(SwapError::corrupt(record.path(), "it has no layers"));
    };
    for (slot, saved) in layout.globals.iter().zip(&globals) {
        let matches = matches!(
            (slot.ty, saved.value),
            (GlobalType::I32, GlobalBits::I32(_))
                | (GlobalType::I64, GlobalBits::I64(_))
                | (GlobalType::F32, GlobalBits::F32(_))
                | (GlobalType::F64, GlobalBits::F64(_))
                | (GlobalType::V128, GlobalBits::V128(_))
        );
        if saved.index != slot.index || !matches {
            return Err(SwapError::corrupt(
                record.path(),
                format!("its global {} does not match the module's", saved.index),
            ));
        }
    }
    Ok(CheckedSnapshot {
        files,
        chain,
        globals,
        unchanged,
    })
}

fn read_exact_at(
    file: &File,
    buffer: &mut [u8],
    offset: u64,
    path: &Path,
) -> Result<(), SwapError> {
    file.read_exact_at(buffer, offset)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => SwapError::corrupt(path, "it ends early"),
            _ => SwapError::io(path, error),
        })
}

/// Grows the fresh instance's memory to the saved size; returns the fresh size.
fn grow_to(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    memory_bytes: u64,
) -> Result<u64, SwapError> {
    let fresh_bytes = instance.memory.data_size(&instance.store) as u64;
    let Some(grow_bytes) = memory_bytes.checked_sub(fresh_bytes) else {
        return Err(SwapError::corrupt(
            record.path(),
            "its memory is smaller than a fresh instance's",
        ));
    };
    if grow_bytes > 0 {
        if let Err(error) = instance
            .memory
            .grow(&mut instance.store, grow_bytes / CHUNK_BYTES)
        {
            return Err(SwapError::Instantiate(match instance.memory_limit_hit() {
                Some(limit) => CallError::MemoryLimitExceeded { limit },
                None => CallError::Host(format!("growing memory to the saved size: {error}")),
            }));
        }
    }
    let grown_bytes = instance.memory.data_size(&instance.store) as u64;
    if grown_bytes != memory_bytes {
        return Err(SwapError::Instantiate(CallError::Host(format!(
            "memory grew to {grown_bytes} bytes instead of the saved {memory_bytes}"
        ))));
    }
    Ok(fresh_bytes)
}

/// Maps the chain's image over linear memory copy-on-write.
fn map_image(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    checked: CheckedSnapshot,
    fresh_bytes: u64,
) -> Result<(), SwapError> {
    let len = checked.chain.memory_bytes;
    if len == 0 {
        return Ok(());
    }
    let base = instance.memory.data_ptr(&instance.store);
    let byte_len = usize::try_from(len)
        .map_err(|_| SwapError::corrupt(record.path(), "its memory does not fit this host"))?;
    // SAFETY (for each mapping below):
    // - `base..base + len` is exactly the accessible part of this store's linear memory: the
    //   memory was just grown to `len` bytes. The engine uses the on-demand allocator
    //   (`MEMORIES_HAVE_OWN_MAPPINGS`, checked by the caller), so this memory is a mapping of its
    //   own, shared with no other memory or instance and never recycled for another; replacing
    //   its pages affects nothing else. It is read-write and page-aligned (mmap-allocated, runs
    //   are multiples of the host page), as are the file offsets (64 KiB-aligned data, pages at
    //   multiples of the host page size, checked against the layer's page size in `check`).
    // - No Rust reference into the memory is live: we hold `&mut` to the instance, and
    //   `Memory::data` borrows the store.
    // - wasmtime's bookkeeping stays true: it tracks the base, the accessible length and the
    //   protection, all unchanged; growth later makes pages beyond `len` accessible in its own
    //   reservation, and dropping the store unmaps the whole reservation, this included. If the
    //   memory ever moves, wasmtime copies it through ordinary reads.
    // - Every file range mapped lies inside its file: each layer is exactly as long as its
    //   metadata says (checked against fstat in `check`), and runs only cover stored data. The
    //   host never writes a layer file after creating it; see "Integrity" in the module docs
    //   for what a change by someone else can do.
    // - If mmap fails the range may be left unmapped; the error drops the instance without
    //   anything reading its memory.
    // Runs of data come from the files; runs of zero pages (holes, or pages zeroed by a delta)
    // get fresh zero pages, so that no page of the mapping is a hole of a file: on a full tmpfs,
    // the first read of a mapped hole raises SIGBUS. Zero runs past the fresh instance's own
    // pages are zero already and stay as they are.
    let fresh_bytes = usize::try_from(fresh_bytes).unwrap_or(usize::MAX);
    let runs = checked.chain.runs();
    debug_assert_eq!(runs.last().map(|(_, run)| run.end), Some(byte_len));
    for (source, run) in runs {
        if run.end > byte_len {
            return Err(SwapError::corrupt(
                record.path(),
                "a layer lies beyond its memory",
            ));
        }
        // SAFETY: `run` is a page-aligned part of `0..byte_len` (`Chain::runs`, checked just
        // above), so the range is inside the memory described above.
        let mapped = unsafe {
            match source {
                PageSource::File { layer, offset } => sys::map_file_private_fixed(
                    base.add(run.start),
                    run.len(),
                    &checked.files[layer],
                    offset,
                ),
                PageSource::Zero if run.start >= fresh_bytes => continue,
                PageSource::Zero => sys::map_zero_private_fixed(base.add(run.start), run.len()),
            }
        };
        mapped.map_err(|error| SwapError::io(record.path(), error))?;
    }
    // A change made since `check` altered the identity (status-change time included).
    for (file, layer) in checked.files.iter().zip(&record.layers) {
        let stat = file
            .metadata()
            .map_err(|error| SwapError::io(&layer.path, error))?;
        if FileIdentity::of(&stat) != layer.identity {
            return Err(SwapError::corrupt(
                &layer.path,
                "it changed while being restored",
            ));
        }
    }
    // The descriptors close here: the mappings keep the files alive, and a swapped-in instance
    // holds no descriptor.
    instance.mapped = Some(MappedSnapshot {
        base: base as usize,
        len,
        chain: checked.chain,
        owns_files: true,
    });
    Ok(())
}

/// Asks the kernel to read the pages the instance had resident before its swap-out into the
/// page cache, asynchronously, so the first call after a swap-in does not fault them in from
/// disk one at a time. Advisory: failures are ignored.
fn read_ahead(instance: &OperatorInstance, record: &SnapshotRecord) {
    let page = sys::host_page_bytes();
    let len = instance.memory.data_size(&instance.store);
    let base = instance.memory.data_ptr(&instance.store);
    for range in &record.working_set {
        let start = range.start as usize * page;
        let end = (range.end as usize * page).min(len);
        if start < end {
            // SAFETY: the range lies inside this instance's linear memory, mapped above;
            // MADV_WILLNEED only starts reads into the page cache and changes no content.
            unsafe { sys::will_need(base.add(start), end - start) };
        }
    }
}

/// Reads the chain's image into memory, verifying every chunk's and page's checksum as it
/// arrives: the full layer first, then the newest version of every page the deltas hold.
fn copy_image(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    checked: &CheckedSnapshot,
    fresh_bytes: u64,
) -> Result<(), SwapError> {
    let memory = instance.memory.data_mut(&mut instance.store);
    let fresh_chunks = (fresh_bytes / CHUNK_BYTES) as usize;
    let chain = &checked.chain;
    let base_path = &record.layers[0].path;
    let chunk_count = (chain.memory_bytes / CHUNK_BYTES) as usize;
    let base_chunks = (chain.base_memory_bytes() / CHUNK_BYTES) as usize;
    let mut index = 0;
    while index < chunk_count {
        if index >= base_chunks || chain.base_chunk(index) == Chunk::Zero {
            // A fresh instance's initial pages may hold data segments; the rest is zero already.
            if index < fresh_chunks {
                memory[index * CHUNK..(index + 1) * CHUNK].fill(0);
            }
            index += 1;
            continue;
        }
        // One read for a run of stored chunks, then a checksum per chunk.
        let run_end = (index..base_chunks)
            .find(|chunk| chain.base_chunk(*chunk) == Chunk::Zero)
            .unwrap_or(base_chunks);
        let bytes = &mut memory[index * CHUNK..run_end * CHUNK];
        read_exact_at(
            &checked.files[0],
            bytes,
            chain.base_data_offset() + (index * CHUNK) as u64,
            base_path,
        )?;
        for (offset, chunk_bytes) in bytes.chunks_exact(CHUNK).enumerate() {
            if let Chunk::Data { crc } = chain.base_chunk(index + offset) {
                if crc32fast::hash(chunk_bytes) != crc {
                    return Err(SwapError::corrupt(
                        base_path,
                        format!(
                            "memory chunk {} does not match its checksum",
                            index + offset
                        ),
                    ));
                }
            }
        }
        index = run_end;
    }
    let page = chain.page_bytes;
    for (page_index, delta) in chain.overlay_in(0..u32::MAX) {
        let start = page_index as usize * page;
        let Some(bytes) = memory.get_mut(start..start + page) else {
            return Err(SwapError::corrupt(
                record.path(),
                "a layer lies beyond its memory",
            ));
        };
        let path = &record.layers[delta.layer].path;
        match delta.data {
            None => bytes.fill(0),
            Some((offset, crc)) => {
                read_exact_at(&checked.files[delta.layer], bytes, offset, path)?;
                if crc32fast::hash(bytes) != crc {
                    return Err(SwapError::corrupt(
                        path,
                        format!("memory page {page_index} does not match its checksum"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn set_globals(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    layout: &SwapLayout,
    globals: &[GlobalValue],
) -> Result<(), SwapError> {
    for (slot, saved) in layout.globals.iter().zip(globals) {
        let global = instance
            .instance
            .get_global(&mut instance.store, &slot.export)
            .ok_or_else(|| {
                SwapError::Unsupported(format!("the export `{}` is missing", slot.export))
            })?;
        let value = match saved.value {
            GlobalBits::I32(bits) => Val::I32(bits as i32),
            GlobalBits::I64(bits) => Val::I64(bits as i64),
            GlobalBits::F32(bits) => Val::F32(bits),
            GlobalBits::F64(bits) => Val::F64(bits),
            GlobalBits::V128(bits) => Val::V128(bits.into()),
        };
        global.set(&mut instance.store, value).map_err(|error| {
            SwapError::corrupt(
                record.path(),
                format!("restoring global {}: {error}", saved.index),
            )
        })?;
    }
    Ok(())
}
