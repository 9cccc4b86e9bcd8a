//! Writing a full snapshot layer (every chunk, from memory or copied from the chain's files), and
//! the chain's layer files as a swap-out reads them.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use super::chain::Chain;
use super::format::{self, Chunk, SnapshotMeta, CHUNK_BYTES};
use super::write::{NewLayer, Source};
use super::{sys, FileIdentity, LayerRecord, SwapError};

const CHUNK: usize = CHUNK_BYTES as usize;

pub(super) enum LayerWriteError {
    Swap(SwapError),
    /// A layer file of the chain is not as the host wrote it: its data must not be copied.
    LayerChanged(String),
}

impl From<SwapError> for LayerWriteError {
    fn from(error: SwapError) -> LayerWriteError {
        LayerWriteError::Swap(error)
    }
}

/// Writes a new layer's data with `write`; on failure removes the temporary file and names it
/// in the I/O error.
pub(super) fn fill(
    layer: NewLayer,
    write: impl FnOnce(&File) -> Result<(), LayerWriteError>,
) -> Result<NewLayer, LayerWriteError> {
    match write(&layer.file) {
        Ok(()) => Ok(layer),
        Err(error) => {
            let error = match error {
                LayerWriteError::Swap(SwapError::Io { source, .. }) => {
                    LayerWriteError::Swap(SwapError::io(layer.temp_path(), source))
                }
                other => other,
            };
            layer.abandon();
            Err(error)
        }
    }
}

pub(super) fn is_zero(bytes: &[u8]) -> bool {
    // No early exit: the OR reduction vectorises, and a chunk about to be checksummed is read in
    // full anyway.
    bytes.iter().fold(0u8, |acc, &byte| acc | byte) == 0
}

/// The chain's layer files, opened by name on first use and checked to be exactly as written.
pub(super) struct LayerFiles<'a> {
    chain: &'a Chain,
    open: Vec<Option<File>>,
}

impl<'a> LayerFiles<'a> {
    pub fn new(chain: &'a Chain) -> LayerFiles<'a> {
        LayerFiles {
            chain,
            open: (0..chain.layers.len()).map(|_| None).collect(),
        }
    }

    fn changed(&self, layer: usize, what: &str) -> LayerWriteError {
        LayerWriteError::LayerChanged(format!(
            "the snapshot layer {} {what}",
            self.chain.layers[layer].path.display()
        ))
    }

    pub fn get(&mut self, layer: usize) -> Result<&File, LayerWriteError> {
        if self.open[layer].is_none() {
            let record = &self.chain.layers[layer];
            let file = File::open(&record.path)
                .map_err(|error| self.changed(layer, &format!("cannot be opened ({error})")))?;
            let identity = file
                .metadata()
                .map(|metadata| FileIdentity::of(&metadata))
                .map_err(|error| SwapError::io(&record.path, error))?;
            if identity != record.identity {
                return Err(self.changed(layer, "changed since it was written"));
            }
            self.open[layer] = Some(file);
        }
        Ok(self.open[layer].as_ref().expect("opened above"))
    }

    /// After copying: a change during the copy moved the file's times.
    pub fn recheck(&self) -> Result<(), LayerWriteError> {
        for (layer, file) in self.open.iter().enumerate() {
            if let Some(file) = file {
                let record = &self.chain.layers[layer];
                let identity = file
                    .metadata()
                    .map(|metadata| FileIdentity::of(&metadata))
                    .map_err(|error| SwapError::io(&record.path, error))?;
                if identity != record.identity {
                    return Err(self.changed(layer, "changed while being copied"));
                }
            }
        }
        Ok(())
    }
}

/// Where one chunk's bytes come from in a full snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkSource {
    /// Never touched in an anonymous region: zero, nothing to read.
    Zero,
    /// Read from linear memory.
    Memory,
    /// Unchanged since the full layer: its chunk, copied file to file.
    Base,
    /// Assembled page by page: from the full layer, the deltas, and memory for the pages in this
    /// bit mask.
    Mixed(u64),
}

/// The source of each chunk of a full snapshot. With `use_chain` and a mapped chain, pages the
/// guest did not write come from the chain's files rather than through memory, which would make
/// them resident again.
pub(super) fn plan_chunks(source: &Source<'_>, use_chain: bool) -> Vec<ChunkSource> {
    let chunk_count = source.memory.len() / CHUNK;
    let Some(scan) = &source.scan else {
        return vec![ChunkSource::Memory; chunk_count];
    };
    let page = scan.page_bytes;
    let pages_per_chunk = (CHUNK / page) as u32;
    let chain = source
        .mapped
        .filter(|_| use_chain)
        .map(|mapped| &mapped.chain);
    let mapped_chunks = match (chain, source.mapped) {
        (Some(_), Some(mapped)) => (mapped.len / CHUNK_BYTES) as usize,
        _ => 0,
    };
    // Without a chain, the fresh instance's initial pages may be backed by the module's data
    // segments rather than zero, so they are always read.
    let image_chunks = if chain.is_some() {
        0
    } else {
        source.image_bytes.div_ceil(CHUNK_BYTES) as usize
    };
    // Outside a chain, the pagemap's "dirty" is every touched page, and a scan taken for a chain
    // counts only private pages there: without the chain, such chunks are read.
    let scan_had_chain = source
        .mapped
        .map_or(0, |mapped| (mapped.len / CHUNK_BYTES) as usize);
    let mut plan = Vec::with_capacity(chunk_count);
    let mut dirty = scan.dirty.iter().peekable();
    for index in 0..chunk_count {
        let first = index as u32 * pages_per_chunk;
        let mut mask = 0u64;
        while let Some(page) = dirty.next_if(|page| **page < first + pages_per_chunk) {
            mask |= 1 << (page - first);
        }
        let all = if pages_per_chunk == 64 {
            u64::MAX
        } else {
            (1u64 << pages_per_chunk) - 1
        };
        plan.push(if index < mapped_chunks {
            let chain = chain.expect("mapped chunks come with a chain");
            let overlaid = chain
                .overlay_in(first..first + pages_per_chunk)
                .next()
                .is_some();
            match mask {
                all_pages if all_pages == all => ChunkSource::Memory,
                0 if !overlaid => match chain.base_chunk(index) {
                    Chunk::Data { .. } => ChunkSource::Base,
                    Chunk::Zero => ChunkSource::Zero,
                },
                some => ChunkSource::Mixed(some),
            }
        } else if index < image_chunks || index < scan_had_chain || mask != 0 {
            ChunkSource::Memory
        } else {
            ChunkSource::Zero
        });
    }
    plan
}

/// Writes a full snapshot; `use_chain` as in [`plan_chunks`].
pub(super) fn write_full(
    source: &Source<'_>,
    use_chain: bool,
) -> Result<LayerRecord, LayerWriteError> {
    let plan = plan_chunks(source, use_chain);
    let mut meta = SnapshotMeta {
        memory_bytes: source.memory.len() as u64,
        module_digest: source.module_digest,
        operator: source.operator.to_owned(),
        chunks: Vec::new(),
        globals: source.globals.clone(),
    };
    let chain = source
        .mapped
        .filter(|_| use_chain)
        .map(|mapped| &mapped.chain);
    let page = source.scan.as_ref().map_or(CHUNK, |scan| scan.page_bytes);
    let layer = fill(NewLayer::create(source.dir, source.operator)?, |file| {
        write_image(file, &mut meta, source.memory, &plan, chain, page)
    })?;
    let (metadata, digest) = meta.encode();
    let data_chunks = meta
        .chunks
        .iter()
        .filter(|chunk| **chunk != Chunk::Zero)
        .count() as u64;
    let stored = metadata.len() as u64 + data_chunks * CHUNK_BYTES;
    Ok(layer.finish(source.dir, &metadata, digest, stored, 0)?)
}

/// Writes the memory image per `plan` and fills in `meta`'s chunk table.
/// An I/O error of a layer being written; [`fill`] names the file.
pub(super) fn unnamed_io(error: io::Error) -> LayerWriteError {
    LayerWriteError::Swap(SwapError::io(std::path::Path::new(""), error))
}

/// Writes the chunks `run` of memory to the same place in the new layer.
fn write_memory_run(
    file: &File,
    data_offset: u64,
    run: Option<Range<usize>>,
    memory: &[u8],
) -> Result<(), LayerWriteError> {
    let Some(run) = run else { return Ok(()) };
    file.write_all_at(
        &memory[run.start * CHUNK..run.end * CHUNK],
        data_offset + (run.start * CHUNK) as u64,
    )
    .map_err(unnamed_io)
}

/// Copies the base layer's chunks `run` into the new layer inside the kernel.
fn copy_base_run(
    file: &File,
    data_offset: u64,
    run: Option<Range<usize>>,
    files: Option<&mut LayerFiles>,
    chain: Option<&Chain>,
) -> Result<(), LayerWriteError> {
    let (Some(run), Some(files), Some(chain)) = (run, files, chain) else {
        return Ok(());
    };
    sys::copy_file_range(
        files.get(0)?,
        chain.base_data_offset() + (run.start * CHUNK) as u64,
        file,
        data_offset + (run.start * CHUNK) as u64,
        (run.len() * CHUNK) as u64,
    )
    .map_err(unnamed_io)
}

fn write_image(
    file: &File,
    meta: &mut SnapshotMeta,
    memory: &[u8],
    plan: &[ChunkSource],
    chain: Option<&Chain>,
    page: usize,
) -> Result<(), LayerWriteError> {
    let chunk_count = plan.len();
    let data_offset =
        format::data_offset_for_counts(meta.operator.len(), chunk_count, meta.globals.len());
    meta.chunks = Vec::with_capacity(chunk_count);
    file.set_len(data_offset + meta.memory_bytes)
        .map_err(unnamed_io)?;
    let mut files = chain.map(LayerFiles::new);
    let mut memory_run: Option<Range<usize>> = None;
    let mut copy_run: Option<Range<usize>> = None;
    let mut buffer = Vec::new();
    for (index, source) in plan.iter().enumerate() {
        let range = index * CHUNK..(index + 1) * CHUNK;
        // Flush whichever run this chunk does not extend.
        if *source != ChunkSource::Memory || memory_run.as_ref().is_some_and(|run| run.end != index)
        {
            write_memory_run(file, data_offset, memory_run.take(), memory)?;
        }
        if *source != ChunkSource::Base || copy_run.as_ref().is_some_and(|run| run.end != index) {
            copy_base_run(file, data_offset, copy_run.take(), files.as_mut(), chain)?;
        }
        let chunk = match *source {
            ChunkSource::Zero => Chunk::Zero,
            ChunkSource::Memory => {
                let bytes = &memory[range];
                if is_zero(bytes) {
                    Chunk::Zero
                } else {
                    extend(&mut memory_run, index);
                    Chunk::Data {
                        crc: crc32fast::hash(bytes),
                    }
                }
            }
            ChunkSource::Base => {
                let chain = chain.expect("planned from a chain");
                extend(&mut copy_run, index);
                chain.base_chunk(index)
            }
            ChunkSource::Mixed(dirty) => {
                let chain = chain.expect("planned from a chain");
                let files = files.as_mut().expect("planned from a chain");
                buffer.resize(CHUNK, 0);
                assemble_chunk(&mut buffer, index, dirty, memory, chain, files, page)?;
                if is_zero(&buffer) {
                    Chunk::Zero
                } else {
                    file.write_all_at(&buffer, data_offset + range.start as u64)
                        .map_err(unnamed_io)?;
                    Chunk::Data {
                        crc: crc32fast::hash(&buffer),
                    }
                }
            }
        };
        meta.chunks.push(chunk);
    }
    write_memory_run(file, data_offset, memory_run.take(), memory)?;
    copy_base_run(file, data_offset, copy_run.take(), files.as_mut(), chain)?;
    match files {
        Some(files) => files.recheck(),
        None => Ok(()),
    }
}

/// Fills `buffer` with chunk `index` as the guest sees it: the full layer's chunk, then the
/// deltas' pages, then the pages the guest wrote (`dirty`, a bit per page) from memory.
fn assemble_chunk(
    buffer: &mut [u8],
    index: usize,
    dirty: u64,
    memory: &[u8],
    chain: &Chain,
    files: &mut LayerFiles<'_>,
    page: usize,
) -> Result<(), LayerWriteError> {
    match chain.base_chunk(index) {
        Chunk::Data { .. } => files
            .get(0)?
            .read_exact_at(buffer, chain.base_data_offset() + (index * CHUNK) as u64)
            .map_err(unnamed_io)?,
        Chunk::Zero => buffer.fill(0),
    }
    let pages_per_chunk = (CHUNK / page) as u32;
    let first = index as u32 * pages_per_chunk;
    for (delta_page, delta) in chain.overlay_in(first..first + pages_per_chunk) {
        let within = (delta_page - first) as usize * page;
        let target = &mut buffer[within..within + page];
        match delta.data {
            Some((offset, _)) => files
                .get(delta.layer)?
                .read_exact_at(target, offset)
                .map_err(unnamed_io)?,
            None => target.fill(0),
        }
    }
    for page_index in 0..pages_per_chunk as usize {
        if dirty & (1 << page_index) != 0 {
            let within = page_index * page..(page_index + 1) * page;
            let start = index * CHUNK;
            buffer[within.clone()]
                .copy_from_slice(&memory[start + within.start..start + within.end]);
        }
    }
    Ok(())
}

fn extend(run: &mut Option<Range<usize>>, index: usize) {
    match run {
        Some(range) if range.end == index => range.end += 1,
        _ => *run = Some(index..index + 1),
    }
}
