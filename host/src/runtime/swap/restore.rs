//! Swap-in: checking a snapshot, creating a fresh instance without `_initialize`, and putting the
//! saved memory and globals back, by mapping (lazy) or by verified copy (eager).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use wasmtime::Val;

use super::format::{
    self, Chunk, GlobalBits, GlobalValue, SnapshotMeta, CHUNK_BYTES, FIXED_HEADER_BYTES,
};
use super::instrument::{GlobalType, SwapLayout, SwapSupport};
use super::swapped::SwappedInstance;
use super::{sys, FileIdentity, MappedSnapshot, RestoreMode, SnapshotRecord, SwapError};
use crate::runtime::engine::MEMORIES_HAVE_OWN_MAPPINGS;
use crate::runtime::error::CallError;
use crate::runtime::instance::OperatorInstance;
use crate::runtime::services::HostServices;

const CHUNK: usize = CHUNK_BYTES as usize;

/// A snapshot whose metadata has been checked.
struct CheckedSnapshot {
    file: File,
    meta: SnapshotMeta,
    data_offset: u64,
    /// The file is, by its identity, exactly as the host wrote it, so its image may be mapped
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
    let globals = std::mem::take(&mut checked.meta.globals);
    let mut instance = OperatorInstance::create(
        swapped.module.clone(),
        &swapped.operator,
        swapped.limits,
        services,
        swapped.clock,
    )
    .await
    .map_err(SwapError::Instantiate)?;
    let fresh_bytes = grow_to(&mut instance, record, checked.meta.memory_bytes)?;
    // A mapped snapshot's name must be removed (see `map_image`), which a read-only filesystem
    // refuses: its image is read instead, so that the state is restored all the same.
    let mappable = checked.unchanged
        && MEMORIES_HAVE_OWN_MAPPINGS
        && !sys::on_read_only_filesystem(&checked.file);
    if mode == RestoreMode::Lazy && mappable {
        map_image(&mut instance, record, checked, fresh_bytes)?;
    } else {
        copy_image(&mut instance, record, &checked, fresh_bytes)?;
    }
    set_globals(&mut instance, record, layout, &globals)?;
    Ok(instance)
}

/// Opens the snapshot and checks everything but the memory image (see "Integrity").
fn check(
    record: &SnapshotRecord,
    layout: &SwapLayout,
    operator: &str,
) -> Result<CheckedSnapshot, SwapError> {
    let path = &record.path;
    let file = File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => SwapError::Missing { path: path.clone() },
        _ => SwapError::io(path, error),
    })?;
    let stat = file
        .metadata()
        .map_err(|error| SwapError::io(path, error))?;
    let mut fixed = [0u8; FIXED_HEADER_BYTES];
    read_exact_at(&file, &mut fixed, 0, record)?;
    let header =
        format::decode_fixed_header(&fixed).map_err(|reason| SwapError::corrupt(path, reason))?;
    if header.global_count != layout.globals.len() as u64 {
        return Err(SwapError::corrupt(
            path,
            format!(
                "it holds {} globals, the module has {}",
                header.global_count,
                layout.globals.len()
            ),
        ));
    }
    if stat.len() != header.file_bytes() {
        return Err(SwapError::corrupt(
            path,
            format!(
                "it is {} bytes long, its header says {}",
                stat.len(),
                header.file_bytes()
            ),
        ));
    }
    // Bounded by the header checks: at most a few hundred KiB for a 4 GiB memory.
    let mut metadata = vec![0u8; header.metadata_bytes() as usize];
    read_exact_at(&file, &mut metadata, 0, record)?;
    let (meta, digest) = format::decode_metadata(&header, &metadata)
        .map_err(|reason| SwapError::corrupt(path, reason))?;
    if digest != record.metadata_digest {
        return Err(SwapError::corrupt(
            path,
            "it is not the snapshot this instance was swapped out to",
        ));
    }
    if meta.module_digest != layout.module_digest || meta.operator != operator {
        return Err(SwapError::corrupt(
            path,
            "it belongs to another module or operator",
        ));
    }
    for (slot, saved) in layout.globals.iter().zip(&meta.globals) {
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
                path,
                format!("its global {} does not match the module's", saved.index),
            ));
        }
    }
    Ok(CheckedSnapshot {
        file,
        data_offset: header.data_offset,
        meta,
        unchanged: FileIdentity::of(&stat) == record.identity,
    })
}

fn read_exact_at(
    file: &File,
    buffer: &mut [u8],
    offset: u64,
    record: &SnapshotRecord,
) -> Result<(), SwapError> {
    file.read_exact_at(buffer, offset)
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => SwapError::corrupt(&record.path, "it ends early"),
            _ => SwapError::io(&record.path, error),
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
            &record.path,
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

/// Maps the image over linear memory copy-on-write, then removes the file's name.
fn map_image(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    checked: CheckedSnapshot,
    fresh_bytes: u64,
) -> Result<(), SwapError> {
    let len = checked.meta.memory_bytes;
    if len > 0 {
        let base = instance.memory.data_ptr(&instance.store);
        let byte_len = usize::try_from(len)
            .map_err(|_| SwapError::corrupt(&record.path, "its memory does not fit this host"))?;
        // SAFETY:
        // - `base..base + len` is exactly the accessible part of this store's linear memory: the
        //   memory was just grown to `len` bytes. The engine uses the on-demand allocator
        //   (`MEMORIES_HAVE_OWN_MAPPINGS`, checked by the caller), so this memory is a mapping of
        //   its own, shared with no other memory or instance and never recycled for another;
        //   replacing its pages affects nothing else. It is read-write and page-aligned (mmap-allocated,
        //   `len` is a multiple of 64 KiB), as is the file offset (format: 64 KiB aligned).
        // - No Rust reference into the memory is live: we hold `&mut` to the instance, and
        //   `Memory::data` borrows the store.
        // - wasmtime's bookkeeping stays true: it tracks the base, the accessible length and the
        //   protection, all unchanged; growth later makes pages beyond `len` accessible in its
        //   own reservation, and dropping the store unmaps the whole reservation, this included.
        //   If the memory ever moves, wasmtime copies it through ordinary reads.
        // - The file is exactly `data_offset + len` bytes long (checked against fstat in
        //   `check`), so no page of the mapping lies beyond its end; its name is removed below, so
        //   it cannot be shortened through the filesystem while mapped, and the host never writes
        //   a snapshot file after creating it.
        // - If mmap fails the range may be left unmapped; the error drops the instance without
        //   anything reading its memory.
        // Runs of data chunks come from the file; runs of zero chunks (holes in the file) get
        // fresh zero pages, so that no page of the mapping is a hole of the file: on a full
        // tmpfs, the first read of a mapped hole raises SIGBUS.
        // Zero runs past the fresh instance's own pages are zero already and stay as they are.
        let fresh_bytes = usize::try_from(fresh_bytes).unwrap_or(usize::MAX);
        let runs = chunk_runs(&checked.meta.chunks);
        debug_assert_eq!(runs.last().map(|(_, run)| run.end), Some(byte_len));
        for (is_data, run) in runs {
            if !is_data && run.start >= fresh_bytes {
                continue;
            }
            // SAFETY: `run` is a 64 KiB-aligned part of `0..byte_len` (`chunk_runs`; the chunk
            // count matches the length, checked with the metadata), so the range is inside the
            // memory described above; the file offset is aligned likewise.
            let mapped = unsafe {
                if is_data {
                    sys::map_file_private_fixed(
                        base.add(run.start),
                        run.len(),
                        &checked.file,
                        checked.data_offset + run.start as u64,
                    )
                } else {
                    sys::map_zero_private_fixed(base.add(run.start), run.len())
                }
            };
            mapped.map_err(|error| SwapError::io(&record.path, error))?;
        }
        // A change made since `check` altered the full identity (status-change time included).
        let stat = checked
            .file
            .metadata()
            .map_err(|error| SwapError::io(&record.path, error))?;
        if FileIdentity::of(&stat) != record.identity {
            return Err(SwapError::corrupt(
                &record.path,
                "it changed while being restored",
            ));
        }
        // No other process can open the file by name from here on. Removing the name moves the
        // status-change time, so the last check compares everything else.
        std::fs::remove_file(&record.path).map_err(|error| SwapError::io(&record.path, error))?;
        let stat = checked
            .file
            .metadata()
            .map_err(|error| SwapError::io(&record.path, error))?;
        if !FileIdentity::of(&stat).same_content(&record.identity) {
            return Err(SwapError::corrupt(
                &record.path,
                "it changed while being restored",
            ));
        }
        instance.mapped = Some(MappedSnapshot {
            file: checked.file,
            base: base as usize,
            len,
            data_offset: checked.data_offset,
            chunks: checked.meta.chunks,
        });
    }
    Ok(())
}

/// The image's byte ranges, cut where chunks change between data and zero, with whether each
/// holds data; together they cover the image (one chunk per 64 KiB).
fn chunk_runs(chunks: &[Chunk]) -> Vec<(bool, std::ops::Range<usize>)> {
    let mut runs: Vec<(bool, std::ops::Range<usize>)> = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let is_data = matches!(chunk, Chunk::Data { .. });
        let range = index * CHUNK..(index + 1) * CHUNK;
        match runs.last_mut() {
            Some((kind, run)) if *kind == is_data => run.end = range.end,
            _ => runs.push((is_data, range)),
        }
    }
    runs
}

/// Reads the image into memory, verifying every chunk's checksum as it arrives.
fn copy_image(
    instance: &mut OperatorInstance,
    record: &SnapshotRecord,
    checked: &CheckedSnapshot,
    fresh_bytes: u64,
) -> Result<(), SwapError> {
    let memory = instance.memory.data_mut(&mut instance.store);
    let fresh_chunks = (fresh_bytes / CHUNK_BYTES) as usize;
    let chunks = &checked.meta.chunks;
    let mut index = 0;
    while index < chunks.len() {
        if chunks[index] == Chunk::Zero {
            // A fresh instance's initial pages may hold data segments; the rest is zero already.
            if index < fresh_chunks {
                memory[index * CHUNK..(index + 1) * CHUNK].fill(0);
            }
            index += 1;
            continue;
        }
        // One read for a run of stored chunks, then a checksum per chunk.
        let run_end = chunks[index..]
            .iter()
            .position(|chunk| *chunk == Chunk::Zero)
            .map_or(chunks.len(), |offset| index + offset);
        let bytes = &mut memory[index * CHUNK..run_end * CHUNK];
        read_exact_at(
            &checked.file,
            bytes,
            checked.data_offset + (index * CHUNK) as u64,
            record,
        )?;
        for (offset, chunk_bytes) in bytes.chunks_exact(CHUNK).enumerate() {
            if let Chunk::Data { crc } = chunks[index + offset] {
                if crc32fast::hash(chunk_bytes) != crc {
                    return Err(SwapError::corrupt(
                        &record.path,
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
                &record.path,
                format!("restoring global {}: {error}", saved.index),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_runs_cut_where_data_and_zero_alternate_and_cover_the_image() {
        let data = Chunk::Data { crc: 0 };
        let chunks = [data, data, Chunk::Zero, data, Chunk::Zero, Chunk::Zero];
        assert_eq!(
            chunk_runs(&chunks),
            [
                (true, 0..2 * CHUNK),
                (false, 2 * CHUNK..3 * CHUNK),
                (true, 3 * CHUNK..4 * CHUNK),
                (false, 4 * CHUNK..6 * CHUNK),
            ]
        );
        assert!(chunk_runs(&[]).is_empty());
    }
}
