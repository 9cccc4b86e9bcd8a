//! The delta layer format: the pages of linear memory written since the layer below was taken,
//! on top of a full snapshot or another delta.
//!
//! ```text
//! offset 0     fixed header, 128 bytes, as in a full layer ([`super::format`]), with layer kind
//!              1, the page size (the host's, a power of two from 4 KiB to 64 KiB), the number
//!              of page entries, and the metadata digest of the layer this one applies to
//!        128   operator name (UTF-8)
//!              page table: one 12-byte entry per page this layer replaces, by ascending page:
//!                page index (u32), kind (u32: 0 = all zero, 1 = data), CRC-32 (u32, 0 if zero)
//!              globals: as in a full layer (the values at the time this layer was written)
//!              SHA-256 of everything above (32 bytes): the metadata digest
//! data offset  the data pages, in table order: the n-th data entry at data offset + n * page
//!              size. The data offset is a multiple of 64 KiB, so pages can be mapped.
//! ```
//!
//! A page listed nowhere in the chain comes from the full layer, or is zero when it lies beyond
//! the full layer's memory (memory only grows). The file is exactly `data offset + data pages *
//! page size` bytes long. Decoding never panics on damaged input and bounds every allocation by
//! the header's checked sizes.

use sha2::{Digest, Sha256};

use super::format::{
    self, Cursor, FixedHeader, GlobalValue, HeaderFields, LayerKind, FIXED_HEADER_BYTES,
    PAGE_ENTRY_BYTES,
};

/// One page a delta layer replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageEntry {
    pub page: u32,
    /// The CRC-32 of the stored page; `None` for an all-zero page, which takes no space.
    pub crc: Option<u32>,
}

/// Everything in a delta layer except its data pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeltaMeta {
    pub memory_bytes: u64,
    pub module_digest: [u8; 32],
    pub operator: String,
    pub parent_digest: [u8; 32],
    pub page_bytes: u32,
    /// Ascending by page, no page twice.
    pub pages: Vec<PageEntry>,
    pub globals: Vec<GlobalValue>,
}

impl DeltaMeta {
    pub fn metadata_bytes(&self) -> u64 {
        format::metadata_bytes_with(
            self.operator.len() as u64,
            self.pages.len() as u64 * PAGE_ENTRY_BYTES,
            self.globals.len() as u64,
        )
    }

    pub fn data_offset(&self) -> u64 {
        format::data_offset_for(self.metadata_bytes())
    }

    /// How many pages the layer stores data for.
    pub fn data_pages(&self) -> u64 {
        self.pages
            .iter()
            .filter(|entry| entry.crc.is_some())
            .count() as u64
    }

    /// The length the file must have.
    pub fn file_bytes(&self) -> u64 {
        self.data_offset() + self.data_pages() * u64::from(self.page_bytes)
    }

    /// The metadata block, ending with its digest; also returns the digest.
    pub fn encode(&self) -> (Vec<u8>, [u8; 32]) {
        let mut out = Vec::with_capacity(self.metadata_bytes() as usize);
        format::push_header(
            &mut out,
            &HeaderFields {
                kind: LayerKind::Delta,
                memory_bytes: self.memory_bytes,
                global_count: self.globals.len(),
                operator: &self.operator,
                data_offset: self.data_offset(),
                page_bytes: self.page_bytes,
                page_count: self.pages.len() as u32,
                module_digest: &self.module_digest,
                parent_digest: &self.parent_digest,
            },
        );
        out.extend_from_slice(self.operator.as_bytes());
        for entry in &self.pages {
            out.extend_from_slice(&entry.page.to_le_bytes());
            let (kind, crc) = match entry.crc {
                None => (0u32, 0u32),
                Some(crc) => (1, crc),
            };
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
        format::push_globals(&mut out, &self.globals);
        let digest: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        (out, digest)
    }
}

/// Decodes a delta layer's metadata block (`header.metadata_bytes()` long) and verifies its
/// digest. Returns the metadata and its digest.
pub(crate) fn decode_delta(
    header: &FixedHeader,
    bytes: &[u8],
) -> Result<(DeltaMeta, [u8; 32]), String> {
    if header.kind != LayerKind::Delta {
        return Err("it is a full snapshot where a delta layer belongs".to_owned());
    }
    let expected_len = header.metadata_bytes();
    if bytes.len() as u64 != expected_len {
        return Err(format!(
            "its metadata is {} bytes, expected {expected_len}",
            bytes.len()
        ));
    }
    let (body, digest) = format::verify_digest(bytes)?;
    let mut cursor = Cursor {
        bytes: &body[FIXED_HEADER_BYTES..],
    };
    let operator = std::str::from_utf8(cursor.take(header.operator_name_bytes as usize)?)
        .map_err(|_| "its operator name is not UTF-8".to_owned())?
        .to_owned();
    let memory_pages = header.memory_bytes / header.page_bytes;
    let mut pages: Vec<PageEntry> = Vec::with_capacity(header.page_count as usize);
    for _ in 0..header.page_count {
        let page = cursor.u32()?;
        let kind = cursor.u32()?;
        let crc = cursor.u32()?;
        let crc = match (kind, crc) {
            (0, 0) => None,
            (1, crc) => Some(crc),
            _ => return Err(format!("page {page} has an invalid table entry")),
        };
        if u64::from(page) >= memory_pages {
            return Err(format!("page {page} lies beyond its memory"));
        }
        if pages.last().is_some_and(|last| last.page >= page) {
            return Err(format!("page {page} is out of order in its page table"));
        }
        pages.push(PageEntry { page, crc });
    }
    let globals = format::read_globals(&mut cursor, header.global_count)?;
    Ok((
        DeltaMeta {
            memory_bytes: header.memory_bytes,
            module_digest: header.module_digest,
            operator,
            parent_digest: header.parent_digest,
            page_bytes: header.page_bytes as u32,
            pages,
            globals,
        },
        digest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::swap::format::{decode_fixed_header, GlobalBits, CHUNK_BYTES};

    fn sample() -> DeltaMeta {
        DeltaMeta {
            memory_bytes: 4 * CHUNK_BYTES,
            module_digest: [7; 32],
            operator: "webapp".to_owned(),
            parent_digest: [9; 32],
            page_bytes: 4096,
            pages: vec![
                PageEntry {
                    page: 0,
                    crc: Some(0xdead_beef),
                },
                PageEntry { page: 3, crc: None },
                PageEntry {
                    page: 63,
                    crc: Some(1),
                },
            ],
            globals: vec![GlobalValue {
                index: 2,
                value: GlobalBits::I64(42),
            }],
        }
    }

    fn decode(bytes: &[u8]) -> Result<(DeltaMeta, [u8; 32]), String> {
        let header = decode_fixed_header(bytes)?;
        let len = usize::try_from(header.metadata_bytes()).map_err(|e| e.to_string())?;
        if bytes.len() < len {
            return Err("short".to_owned());
        }
        decode_delta(&header, &bytes[..len])
    }

    #[test]
    fn a_delta_round_trips_with_its_sizes() {
        let meta = sample();
        let (bytes, digest) = meta.encode();
        assert_eq!(bytes.len() as u64, meta.metadata_bytes());
        let (decoded, decoded_digest) = decode(&bytes).unwrap();
        assert_eq!(decoded, meta);
        assert_eq!(decoded_digest, digest);
        assert_eq!(meta.data_offset() % CHUNK_BYTES, 0);
        assert_eq!(meta.file_bytes(), meta.data_offset() + 2 * 4096);
    }

    #[test]
    fn a_damaged_or_truncated_delta_is_refused_without_panicking() {
        let (bytes, _) = sample().encode();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "bit {bit} of byte {byte}");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn a_delta_is_not_taken_for_a_full_layer_or_the_reverse() {
        let (bytes, _) = sample().encode();
        let header = decode_fixed_header(&bytes).unwrap();
        assert!(format::decode_metadata(&header, &bytes)
            .unwrap_err()
            .contains("delta"));
    }

    #[test]
    fn out_of_order_pages_and_bad_page_sizes_are_refused() {
        let mut meta = sample();
        meta.pages.swap(0, 2);
        assert!(decode(&meta.encode().0)
            .unwrap_err()
            .contains("out of order"));
        let mut meta = sample();
        meta.pages[2].page = 64;
        assert!(decode(&meta.encode().0).unwrap_err().contains("beyond"));
        let mut meta = sample();
        meta.page_bytes = 3000;
        assert!(decode(&meta.encode().0).unwrap_err().contains("page size"));
    }
}
