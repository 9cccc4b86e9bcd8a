//! How a swap-out bounds the snapshot chain (when a new delta absorbs older ones, when the chain
//! is compacted into a full snapshot) and which working set it records for readahead.

use std::ops::Range;

/// At most this many delta layers sit on a full snapshot: bounds the files a swap-in checks and
/// maps.
pub(crate) const MAX_DELTAS: usize = 8;
/// Delta layers together store at most this fraction of the memory size (1/4) before the chain
/// is compacted into a new full snapshot: bounds the disk a chain takes beyond a full snapshot.
const DELTA_SHARE: u64 = 4;
/// A working set larger than this is not recorded: reading that much ahead would compete with
/// the first call's own faults (and a fresh instance has everything resident anyway).
const WORKING_SET_MAX_BYTES: u64 = 16 << 20;
/// The working set is kept as at most this many page ranges (gaps are merged to get there), so a
/// swapped-out operator's record stays small.
const WORKING_SET_MAX_RANGES: usize = 256;

/// What a swap-out following a lazy swap-in writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// A delta on top of the chain's first `keep` layers; the layers above them are merged into
    /// it (their pages the guest did not rewrite are copied into the new delta).
    Delta { keep: usize },
    /// A new full snapshot replacing the whole chain.
    Full,
}

/// Keeps a swap-out's cost proportional to what changed while bounding the chain: like a binary
/// counter, the new delta absorbs the newest deltas that are no larger than what it already
/// holds, so layer sizes roughly double downwards, merging costs O(log) copies of each page
/// amortised, and the chain stays short. Past [`MAX_DELTAS`], all deltas merge into one; once
/// the deltas would together exceed 1/[`DELTA_SHARE`] of memory, the chain is compacted into a
/// full snapshot, which costs the memory's size but happens only after at least a quarter of it
/// has been written as deltas, so it adds at most a constant factor per page written.
pub(super) fn plan(
    layer_pages: &[u64],
    new_pages: u64,
    page_bytes: u64,
    memory_bytes: u64,
) -> Plan {
    let mut keep = layer_pages.len();
    let mut merged = new_pages;
    while keep > 1 && layer_pages[keep - 1] <= merged {
        merged += layer_pages[keep - 1];
        keep -= 1;
    }
    if keep > MAX_DELTAS {
        merged += layer_pages[1..keep].iter().sum::<u64>();
        keep = 1;
    }
    let delta_pages = layer_pages[1..keep].iter().sum::<u64>() + merged;
    if delta_pages * page_bytes > memory_bytes / DELTA_SHARE {
        Plan::Full
    } else {
        Plan::Delta { keep }
    }
}

/// The pages to read ahead at the next swap-in: `present`, unless it is too large to be worth
/// it, with gaps merged until it fits in [`WORKING_SET_MAX_RANGES`] ranges.
pub(super) fn working_set(present: &[Range<u32>], page_bytes: usize) -> Vec<Range<u32>> {
    let pages: u64 = present
        .iter()
        .map(|range| u64::from(range.end - range.start))
        .sum();
    if pages * page_bytes as u64 > WORKING_SET_MAX_BYTES {
        return Vec::new();
    }
    let mut ranges = present.to_vec();
    let mut gap = 1u32;
    while ranges.len() > WORKING_SET_MAX_RANGES {
        let mut merged: Vec<Range<u32>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start - last.end <= gap => last.end = range.end,
                _ => merged.push(range),
            }
        }
        ranges = merged;
        gap = gap.saturating_mul(2);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_merges_like_a_binary_counter_and_compacts_past_a_quarter() {
        let page = 4096;
        let memory = 64 << 20; // 16384 pages; deltas may hold 4096
                               // Only a full layer: a first delta on top of it.
        assert_eq!(plan(&[0], 20, page, memory), Plan::Delta { keep: 1 });
        // A delta as large as the new one is merged into it; a larger one stays.
        assert_eq!(plan(&[0, 20], 20, page, memory), Plan::Delta { keep: 1 });
        assert_eq!(plan(&[0, 40], 20, page, memory), Plan::Delta { keep: 2 });
        assert_eq!(
            plan(&[0, 40, 20], 20, page, memory),
            Plan::Delta { keep: 1 }
        );
        // Never more than MAX_DELTAS deltas.
        let mut layers = vec![0];
        layers.extend((0..MAX_DELTAS as u64).map(|i| 1000 >> i));
        assert_eq!(plan(&layers, 1, page, memory), Plan::Delta { keep: 1 });
        // Compacted once the deltas would exceed a quarter of memory.
        assert_eq!(plan(&[0, 4000], 97, page, memory), Plan::Full);
        assert_eq!(plan(&[0], 5000, page, memory), Plan::Full);
    }

    #[test]
    fn chained_plans_stay_short_and_cost_little_per_page() {
        // 16 pages a cycle for a long time: the chain never exceeds its bound, and the pages
        // written (new plus merged) stay within a small factor of the pages changed.
        let (page, memory) = (4096, 64 << 20);
        let mut layers = vec![0u64];
        let (mut written, mut compactions) = (0u64, 0);
        for _ in 0..2000 {
            match plan(&layers, 16, page, memory) {
                Plan::Delta { keep } => {
                    let merged: u64 = layers[keep..].iter().sum::<u64>() + 16;
                    written += merged;
                    layers.truncate(keep);
                    layers.push(merged);
                }
                Plan::Full => {
                    compactions += 1;
                    layers = vec![0];
                }
            }
            assert!(layers.len() <= MAX_DELTAS + 1);
        }
        assert!(written <= 2000 * 16 * 8, "{written} pages written");
        assert!(compactions <= 16, "{compactions} compactions");
    }

    #[test]
    fn the_working_set_is_bounded_in_ranges_and_size() {
        let scattered: Vec<Range<u32>> = (0..1000).map(|i| i * 4..i * 4 + 1).collect();
        let set = working_set(&scattered, 4096);
        assert!(set.len() <= WORKING_SET_MAX_RANGES, "{}", set.len());
        for range in &scattered {
            assert!(set
                .iter()
                .any(|kept| kept.start <= range.start && range.end <= kept.end));
        }
        assert!(
            working_set(std::slice::from_ref(&(0..8192)), 4096).is_empty(),
            "32 MiB is not read ahead"
        );
        assert_eq!(working_set(&[0..2, 5..9], 4096), vec![0..2, 5..9]);
    }
}
