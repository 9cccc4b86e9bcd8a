//! A snapshot chain as a restored instance knows it: the layer files (a full snapshot, then the
//! deltas on top of it, oldest first) and, for every page of linear memory, which layer holds
//! its content. Swap-in maps memory from it; the next swap-out decides from it what a new delta
//! must hold and where the pages it does not rewrite are.

use std::collections::BTreeMap;
use std::ops::Range;

use super::delta::DeltaMeta;
use super::format::{Chunk, CHUNK_BYTES};
use super::LayerRecord;

/// Where a page's content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageSource {
    Zero,
    /// In layer `layer` at byte `offset` of its file.
    File {
        layer: usize,
        offset: u64,
    },
}

/// A page some delta layer of the chain holds, the newest one that does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeltaPage {
    pub layer: usize,
    /// The page's file offset and CRC-32; `None` for an all-zero page.
    pub data: Option<(u64, u32)>,
}

#[derive(Debug)]
pub(crate) struct Chain {
    pub layers: Vec<LayerRecord>,
    pub page_bytes: usize,
    /// The memory size the newest layer restores.
    pub memory_bytes: u64,
    base_chunks: Vec<Chunk>,
    base_data_offset: u64,
    overlay: BTreeMap<u32, DeltaPage>,
}

impl Chain {
    /// A chain of just the full layer `base`.
    pub fn new(
        base: LayerRecord,
        base_chunks: Vec<Chunk>,
        base_data_offset: u64,
        page_bytes: usize,
    ) -> Chain {
        Chain {
            layers: vec![base],
            page_bytes,
            memory_bytes: base_chunks.len() as u64 * CHUNK_BYTES,
            base_chunks,
            base_data_offset,
            overlay: BTreeMap::new(),
        }
    }

    /// Adds a delta layer on top; its pages replace whatever the chain held for them.
    pub fn push_delta(&mut self, record: LayerRecord, meta: &DeltaMeta) {
        let layer = self.layers.len();
        let page = u64::from(meta.page_bytes);
        let mut slot = 0u64;
        for entry in &meta.pages {
            let data = entry.crc.map(|crc| {
                let offset = meta.data_offset() + slot * page;
                slot += 1;
                (offset, crc)
            });
            self.overlay.insert(entry.page, DeltaPage { layer, data });
        }
        self.memory_bytes = self.memory_bytes.max(meta.memory_bytes);
        self.layers.push(record);
    }

    pub fn base_memory_bytes(&self) -> u64 {
        self.base_chunks.len() as u64 * CHUNK_BYTES
    }

    pub fn base_data_offset(&self) -> u64 {
        self.base_data_offset
    }

    /// The full layer's chunk `index` (zero beyond its memory).
    pub fn base_chunk(&self, index: usize) -> Chunk {
        self.base_chunks.get(index).copied().unwrap_or(Chunk::Zero)
    }

    /// Pages of `pages` that some delta holds, ascending.
    pub fn overlay_in(&self, pages: Range<u32>) -> impl Iterator<Item = (u32, DeltaPage)> + '_ {
        self.overlay
            .range(pages)
            .map(|(page, source)| (*page, *source))
    }

    /// Where page `page` of the full layer is.
    fn base_source(&self, page: u64) -> PageSource {
        let byte = page * self.page_bytes as u64;
        match self.base_chunks.get((byte / CHUNK_BYTES) as usize) {
            Some(Chunk::Data { .. }) => PageSource::File {
                layer: 0,
                offset: self.base_data_offset + byte,
            },
            _ => PageSource::Zero,
        }
    }

    /// The memory image as byte ranges of one source each, cut where the source changes or its
    /// file offsets stop being contiguous; together they cover `0..memory_bytes`. Costs the
    /// full layer's chunk count plus the delta pages, not the memory's page count.
    pub fn runs(&self) -> Vec<(PageSource, Range<usize>)> {
        let page = self.page_bytes as u64;
        let mut runs: Vec<(PageSource, Range<usize>)> = Vec::new();
        let mut push = |source: PageSource, pages: Range<u64>| {
            if pages.is_empty() {
                return;
            }
            let bytes = (pages.start * page) as usize..(pages.end * page) as usize;
            if let Some((last, range)) = runs.last_mut() {
                let continues = match (*last, source) {
                    (PageSource::Zero, PageSource::Zero) => true,
                    (
                        PageSource::File { layer, offset },
                        PageSource::File {
                            layer: next_layer,
                            offset: next_offset,
                        },
                    ) => {
                        layer == next_layer
                            && offset + (range.end - range.start) as u64 == next_offset
                    }
                    _ => false,
                };
                if continues && range.end == bytes.start {
                    range.end = bytes.end;
                    return;
                }
            }
            runs.push((source, bytes));
        };
        let pages_per_chunk = CHUNK_BYTES / page;
        // The full layer's pages between delta pages, a chunk at a time.
        let base = |pages: Range<u64>, push: &mut dyn FnMut(PageSource, Range<u64>)| {
            let mut at = pages.start;
            while at < pages.end {
                let chunk_end = ((at / pages_per_chunk) + 1) * pages_per_chunk;
                let end = chunk_end.min(pages.end);
                push(self.base_source(at), at..end);
                at = end;
            }
        };
        let total_pages = self.memory_bytes / page;
        let mut at = 0u64;
        for (&delta_page, source) in &self.overlay {
            let delta_page = u64::from(delta_page);
            if delta_page >= total_pages {
                break;
            }
            base(at..delta_page, &mut push);
            let source = match source.data {
                Some((offset, _)) => PageSource::File {
                    layer: source.layer,
                    offset,
                },
                None => PageSource::Zero,
            };
            push(source, delta_page..delta_page + 1);
            at = delta_page + 1;
        }
        base(at..total_pages, &mut push);
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::swap::delta::PageEntry;
    use crate::runtime::swap::FileIdentity;

    fn record(name: &str, delta_pages: u64) -> LayerRecord {
        LayerRecord {
            path: name.into(),
            identity: FileIdentity::default(),
            metadata_digest: [0; 32],
            stored_bytes: 0,
            delta_pages,
        }
    }

    fn delta(memory_bytes: u64, pages: &[(u32, bool)]) -> DeltaMeta {
        DeltaMeta {
            memory_bytes,
            module_digest: [0; 32],
            operator: String::new(),
            parent_digest: [0; 32],
            page_bytes: 4096,
            pages: pages
                .iter()
                .map(|&(page, data)| PageEntry {
                    page,
                    crc: data.then_some(0),
                })
                .collect(),
            globals: Vec::new(),
        }
    }

    /// Every page's source, by walking the runs.
    fn per_page(chain: &Chain) -> Vec<PageSource> {
        let mut pages = Vec::new();
        for (source, range) in chain.runs() {
            for (index, _) in range.step_by(4096).enumerate() {
                pages.push(match source {
                    PageSource::Zero => PageSource::Zero,
                    PageSource::File { layer, offset } => PageSource::File {
                        layer,
                        offset: offset + index as u64 * 4096,
                    },
                });
            }
        }
        pages
    }

    #[test]
    fn runs_resolve_every_page_to_its_newest_layer() {
        let data = Chunk::Data { crc: 0 };
        // Two chunks: data, zero; 32 pages.
        let mut chain = Chain::new(record("base", 0), vec![data, Chunk::Zero], 65536, 4096);
        // Grows to three chunks; replaces page 1 and 20 (in the zero chunk) and zeroes page 2.
        let first = delta(3 * CHUNK_BYTES, &[(1, true), (2, false), (20, true)]);
        chain.push_delta(record("d1", 2), &first);
        let second = delta(3 * CHUNK_BYTES, &[(2, true), (40, true)]);
        chain.push_delta(record("d2", 2), &second);
        let pages = per_page(&chain);
        assert_eq!(pages.len(), 48);
        let file = |layer, offset| PageSource::File { layer, offset };
        assert_eq!(pages[0], file(0, 65536));
        assert_eq!(pages[1], file(1, first.data_offset()));
        assert_eq!(pages[2], file(2, second.data_offset()));
        assert_eq!(pages[3], file(0, 65536 + 3 * 4096));
        assert_eq!(pages[16], PageSource::Zero);
        assert_eq!(pages[20], file(1, first.data_offset() + 4096));
        assert_eq!(pages[40], file(2, second.data_offset() + 4096));
        assert_eq!(pages[47], PageSource::Zero);
        // Contiguous stretches of one file are one run.
        let runs = chain.runs();
        assert_eq!(runs[0], (file(0, 65536), 0..4096));
        assert_eq!(runs.last().unwrap().1.end, 3 * CHUNK_BYTES as usize);
    }
}
