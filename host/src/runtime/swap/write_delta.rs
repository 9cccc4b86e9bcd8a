//! Writing a delta layer: the pages the guest wrote since the last swap-in, from memory, plus
//! the pages of the newer deltas it absorbs, copied from their files.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use super::chain::{Chain, DeltaPage, PageSource};
use super::delta::{DeltaMeta, PageEntry};
use super::write::{NewLayer, Scan, Source};
use super::write_layers::{fill, is_zero, unnamed_io, LayerFiles, LayerWriteError};
use super::{sys, LayerRecord};

/// Writes a delta holding the pages the guest wrote and those of the chain's layers from `keep`
/// on, on top of the chain's first `keep` layers.
pub(super) fn write_delta(
    source: &Source<'_>,
    chain: &Chain,
    keep: usize,
    scan: &Scan,
) -> Result<LayerRecord, LayerWriteError> {
    let page = scan.page_bytes;
    let memory = source.memory;
    // Every page the delta lists, ascending: from memory, or from an absorbed layer.
    let mut entries: Vec<(PageEntry, Option<PageSource>)> = Vec::new();
    let mut absorbed = chain
        .overlay_in(0..u32::MAX)
        .filter(|(_, delta)| delta.layer >= keep)
        .peekable();
    let from_memory = |index: u32, entries: &mut Vec<(PageEntry, Option<PageSource>)>| {
        let start = index as usize * page;
        let bytes = &memory[start..start + page];
        let crc = (!is_zero(bytes)).then(|| crc32fast::hash(bytes));
        entries.push((PageEntry { page: index, crc }, None));
    };
    for &dirty in &scan.dirty {
        while let Some((index, delta)) = absorbed.next_if(|(index, _)| *index < dirty) {
            entries.push(absorbed_entry(index, delta));
        }
        absorbed.next_if(|(index, _)| *index == dirty);
        from_memory(dirty, &mut entries);
    }
    entries.extend(absorbed.map(|(index, delta)| absorbed_entry(index, delta)));

    let meta = DeltaMeta {
        memory_bytes: memory.len() as u64,
        module_digest: source.module_digest,
        operator: source.operator.to_owned(),
        parent_digest: chain.layers[keep - 1].metadata_digest,
        page_bytes: page as u32,
        pages: entries.iter().map(|(entry, _)| *entry).collect(),
        globals: source.globals.clone(),
    };
    let layer = fill(NewLayer::create(source.dir, source.operator)?, |file| {
        write_delta_data(file, &meta, &entries, memory, chain, page)
    })?;
    let (metadata, digest) = meta.encode();
    let data_pages = meta.data_pages();
    let stored = metadata.len() as u64 + data_pages * page as u64;
    Ok(layer.finish(source.dir, &metadata, digest, stored, data_pages)?)
}

fn absorbed_entry(index: u32, delta: DeltaPage) -> (PageEntry, Option<PageSource>) {
    match delta.data {
        Some((offset, crc)) => (
            PageEntry {
                page: index,
                crc: Some(crc),
            },
            Some(PageSource::File {
                layer: delta.layer,
                offset,
            }),
        ),
        None => (
            PageEntry {
                page: index,
                crc: None,
            },
            Some(PageSource::Zero),
        ),
    }
}

fn write_delta_data(
    file: &File,
    meta: &DeltaMeta,
    entries: &[(PageEntry, Option<PageSource>)],
    memory: &[u8],
    chain: &Chain,
    page: usize,
) -> Result<(), LayerWriteError> {
    file.set_len(meta.file_bytes()).map_err(unnamed_io)?;
    let mut files = LayerFiles::new(chain);
    let data_offset = meta.data_offset();
    // Runs of consecutive stored pages that are consecutive in memory (or in one layer file) are
    // written with one call.
    let mut slot = 0u64;
    let mut run: Option<(Option<PageSource>, u32, Range<u64>)> = None;
    let flush = |run: Option<(Option<PageSource>, u32, Range<u64>)>,
                 files: &mut LayerFiles<'_>|
     -> Result<(), LayerWriteError> {
        let Some((from, first_page, slots)) = run else {
            return Ok(());
        };
        let len = (slots.end - slots.start) as usize * page;
        let to = data_offset + slots.start * page as u64;
        match from {
            None => {
                let start = first_page as usize * page;
                file.write_all_at(&memory[start..start + len], to)
                    .map_err(unnamed_io)?;
            }
            Some(PageSource::File { layer, offset }) => {
                let from = files.get(layer)?;
                sys::copy_file_range(from, offset, file, to, len as u64).map_err(unnamed_io)?;
            }
            Some(PageSource::Zero) => {}
        }
        Ok(())
    };
    for (entry, from) in entries {
        if entry.crc.is_none() {
            continue;
        }
        let extends = match (&run, from) {
            (Some((None, first, slots)), None) => {
                u64::from(entry.page) == u64::from(*first) + (slots.end - slots.start)
            }
            (
                Some((Some(PageSource::File { layer, offset }), _, slots)),
                Some(PageSource::File {
                    layer: next_layer,
                    offset: next_offset,
                }),
            ) => {
                layer == next_layer
                    && *offset + (slots.end - slots.start) * page as u64 == *next_offset
            }
            _ => false,
        };
        match (&mut run, extends) {
            (Some((_, _, slots)), true) => slots.end += 1,
            _ => {
                flush(run.take(), &mut files)?;
                run = Some((*from, entry.page, slot..slot + 1));
            }
        }
        slot += 1;
    }
    flush(run.take(), &mut files)?;
    files.recheck()
}
