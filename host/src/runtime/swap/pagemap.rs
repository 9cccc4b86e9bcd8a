//! Which host pages of a linear memory hold anything worth reading, from `/proc/self/pagemap`.
//!
//! Swap-out asks this before reading memory, for two reasons:
//!
//! - A page that was never touched is not resident, and reads as zero in an anonymous mapping.
//!   Skipping it saves the scan and keeps the snapshot sparse.
//! - After a lazy restore, linear memory is a private mapping of the previous snapshot. A page the
//!   guest never wrote is still the file's page (or not resident at all), so its content is the
//!   previous snapshot's, which the new delta layer simply refers to; reading it through memory
//!   would make it resident again, so swapping out an operator that touched 5 MiB of a 64 MiB
//!   state would pull all 64 MiB back in. Only pages the guest wrote became private (anonymous)
//!   copies: they are what a delta holds.
//! - Pages resident at swap-out (file pages and private ones) are the working set that the next
//!   swap-in reads ahead.
//!
//! Each pagemap entry is 64 bits: bit 63 "present", bit 62 "swapped", bit 61 "file page or shared
//! anonymous". These flags are readable by any process for its own address space.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_OR_SHARED: u64 = 1 << 61;

/// What a host page of a private mapping holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageState {
    /// Not resident and not in swap: the mapping's backing (zero, or the mapped file's page).
    Untouched,
    /// Resident and still the mapped file's page.
    FilePage,
    /// A private page (anonymous or written): resident or in swap; its content is only in memory.
    Private,
}

fn state_of(entry: u64) -> PageState {
    if entry & SWAPPED != 0 {
        PageState::Private
    } else if entry & PRESENT == 0 {
        PageState::Untouched
    } else if entry & FILE_OR_SHARED != 0 {
        PageState::FilePage
    } else {
        PageState::Private
    }
}

/// This process's page table, readable page by page.
pub(crate) struct Pagemap {
    file: File,
    page_bytes: usize,
}

impl Pagemap {
    /// Opens `/proc/self/pagemap`; `None` when it is not available (then every page is read).
    pub fn open(page_bytes: usize) -> Option<Pagemap> {
        match File::open("/proc/self/pagemap") {
            Ok(file) => Some(Pagemap { file, page_bytes }),
            Err(error) => {
                tracing::debug!(
                    "/proc/self/pagemap is not readable ({error}); swap-out reads every page"
                );
                None
            }
        }
    }

    /// Replaces `out` with the states of the `pages` host pages from address `start`
    /// (page-aligned).
    pub fn read(&self, start: usize, out: &mut Vec<PageState>, pages: usize) -> io::Result<()> {
        let mut raw = vec![0u8; pages * 8];
        let offset = (start / self.page_bytes) as u64 * 8;
        self.file.read_exact_at(&mut raw, offset)?;
        out.clear();
        out.extend(raw.chunks_exact(8).map(|entry| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(entry);
            state_of(u64::from_ne_bytes(bytes))
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_classified_by_their_flag_bits() {
        assert_eq!(state_of(0), PageState::Untouched);
        assert_eq!(state_of(FILE_OR_SHARED), PageState::Untouched);
        assert_eq!(
            state_of(PRESENT | FILE_OR_SHARED | 1234),
            PageState::FilePage
        );
        assert_eq!(state_of(PRESENT | 1234), PageState::Private);
        assert_eq!(state_of(SWAPPED), PageState::Private);
        assert_eq!(state_of(SWAPPED | FILE_OR_SHARED), PageState::Private);
    }

    #[test]
    fn a_written_page_is_private_and_an_untouched_one_is_not() {
        let page = crate::runtime::swap::sys::host_page_bytes();
        let pagemap = Pagemap::open(page).expect("/proc/self/pagemap is readable on Linux");
        let pages = 16;
        // SAFETY: a new anonymous private mapping; nothing else refers to it, and it is only
        // accessed inside its bounds below before being unmapped.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page * pages,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the first byte of the mapping created above.
        unsafe { base.cast::<u8>().write(1) };
        let mut states = Vec::new();
        let read = pagemap.read(base as usize, &mut states, pages);
        // SAFETY: unmaps exactly the mapping created above; nothing refers to it any more.
        unsafe { libc::munmap(base, page * pages) };
        read.unwrap();
        assert_eq!(states.len(), pages);
        assert_eq!(states[0], PageState::Private);
        assert!(
            states[1..]
                .iter()
                .all(|state| *state == PageState::Untouched),
            "{states:?}"
        );
    }
}
