//! The snapshot file format: a small checksummed metadata block, then memory data. A snapshot is
//! one *full* layer, the whole linear memory image, optionally followed by *delta* layers that
//! each hold only the pages written since the layer below ([`super::delta`] has their layout).
//!
//! A full layer:
//!
//! ```text
//! offset 0     fixed header, 128 bytes, little-endian, shared by both kinds of layer:
//!                0  magic "WOPSNAP\0"            8  format version (u32)
//!               12  chunk size (u32, 65536)      16  memory size in bytes (u64)
//!               24  chunk count (u32)            28  global count (u32)
//!               32  operator name length (u32)   36  layer kind (u32: 0 full, 1 delta)
//!               40  data offset (u64)            48  page size (u32; 0 in a full layer)
//!               52  page entry count (u32; 0 in a full layer)
//!               56  reserved, zero (8 bytes)
//!               64  module digest (SHA-256 of the original module, 32 bytes)
//!               96  parent layer's metadata digest (32 bytes; zero in a full layer)
//!        128   operator name (UTF-8)
//!              chunk table: one 8-byte entry per 64 KiB chunk of memory:
//!                kind (u32: 0 = all zero, stored as a hole; 1 = data), CRC-32 of the chunk (u32)
//!              globals: one 24-byte entry per mutable global:
//!                global index (u32), value type (u8, Wasm encoding: 0x7f i32, 0x7e i64,
//!                0x7d f32, 0x7c f64, 0x7b v128), 3 zero bytes, value bits (16 bytes)
//!              SHA-256 of everything above (32 bytes): the metadata digest
//! data offset  the memory image: chunk i at data offset + i * 64 KiB. The data offset is a
//!              multiple of 64 KiB, so the image can be mapped page by page on any host page size
//!              up to 64 KiB. All-zero chunks are not written: they are holes in a sparse file.
//! ```
//!
//! The file is exactly `data offset + memory size` bytes long. Everything here is plain bytes in,
//! plain bytes out: decoding checks every length against fixed bounds before allocating and never
//! panics on a damaged file.

use sha2::{Digest, Sha256};

/// Identifies a snapshot file; the last byte leaves room for a different family of formats.
const MAGIC: [u8; 8] = *b"WOPSNAP\0";
/// Bump when the layout changes; older files are then refused as unusable.
/// Version 2 added delta layers (layer kind, page size and count, parent digest).
pub(crate) const FORMAT_VERSION: u32 = 2;
/// Memory is tracked, checksummed and stored in Wasm pages.
pub(crate) const CHUNK_BYTES: u64 = 64 * 1024;
/// Alignment of the memory image in the file; at least the host page size.
const DATA_ALIGN: u64 = 64 * 1024;
pub(crate) const FIXED_HEADER_BYTES: usize = 128;
/// A 32-bit memory holds at most 65536 Wasm pages.
const MAX_CHUNKS: u64 = 1 << 16;
/// wasmparser's own limit on globals per module.
const MAX_GLOBALS: u64 = 1_000_000;
/// Operator names are Kubernetes object names (at most 253 bytes); this leaves ample room.
const MAX_OPERATOR_NAME_BYTES: u64 = 4096;
const CHUNK_ENTRY_BYTES: u64 = 8;
pub(crate) const PAGE_ENTRY_BYTES: u64 = 12;
const GLOBAL_ENTRY_BYTES: u64 = 24;
pub(crate) const DIGEST_BYTES: u64 = 32;
/// Page sizes a delta layer may use: host page sizes that divide a chunk.
pub(crate) const MIN_PAGE_BYTES: u64 = 4096;

/// Which of the two layouts a layer file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerKind {
    Full,
    Delta,
}

/// One 64 KiB chunk of linear memory as the file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// All zero; a hole in the file.
    Zero,
    /// Stored at its place in the memory image, with its CRC-32.
    Data { crc: u32 },
}

/// The value of one mutable global, by Wasm type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalBits {
    I32(u32),
    I64(u64),
    F32(u32),
    F64(u64),
    V128(u128),
}

impl GlobalBits {
    fn type_code(self) -> u8 {
        match self {
            GlobalBits::I32(_) => 0x7f,
            GlobalBits::I64(_) => 0x7e,
            GlobalBits::F32(_) => 0x7d,
            GlobalBits::F64(_) => 0x7c,
            GlobalBits::V128(_) => 0x7b,
        }
    }

    fn bits(self) -> u128 {
        match self {
            GlobalBits::I32(bits) | GlobalBits::F32(bits) => u128::from(bits),
            GlobalBits::I64(bits) | GlobalBits::F64(bits) => u128::from(bits),
            GlobalBits::V128(bits) => bits,
        }
    }

    fn from_parts(type_code: u8, bits: u128) -> Result<GlobalBits, String> {
        // Values of narrower types must not carry stray high bits.
        let narrow = |limit: u128| {
            if bits <= limit {
                Ok(())
            } else {
                Err(format!(
                    "a global value of type 0x{type_code:02x} has stray high bits"
                ))
            }
        };
        Ok(match type_code {
            0x7f => narrow(u128::from(u32::MAX)).map(|()| GlobalBits::I32(bits as u32))?,
            0x7e => narrow(u128::from(u64::MAX)).map(|()| GlobalBits::I64(bits as u64))?,
            0x7d => narrow(u128::from(u32::MAX)).map(|()| GlobalBits::F32(bits as u32))?,
            0x7c => narrow(u128::from(u64::MAX)).map(|()| GlobalBits::F64(bits as u64))?,
            0x7b => GlobalBits::V128(bits),
            other => return Err(format!("unknown global value type 0x{other:02x}")),
        })
    }
}

/// A mutable global's index in the module and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GlobalValue {
    pub index: u32,
    pub value: GlobalBits,
}

/// Everything in a snapshot except the memory image itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotMeta {
    pub memory_bytes: u64,
    pub module_digest: [u8; 32],
    pub operator: String,
    pub chunks: Vec<Chunk>,
    pub globals: Vec<GlobalValue>,
}

/// What the fixed header says about the rest of the file, before the rest is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    pub kind: LayerKind,
    pub memory_bytes: u64,
    pub chunk_count: u64,
    pub global_count: u64,
    pub operator_name_bytes: u64,
    pub data_offset: u64,
    /// Delta layers only (zero in a full layer).
    pub page_bytes: u64,
    pub page_count: u64,
    pub module_digest: [u8; 32],
    /// Delta layers only: the metadata digest of the layer below.
    pub parent_digest: [u8; 32],
}

impl FixedHeader {
    /// Length of the metadata block (header, tables, digest).
    pub fn metadata_bytes(&self) -> u64 {
        let table_bytes = match self.kind {
            LayerKind::Full => self.chunk_count * CHUNK_ENTRY_BYTES,
            LayerKind::Delta => self.page_count * PAGE_ENTRY_BYTES,
        };
        metadata_bytes_with(self.operator_name_bytes, table_bytes, self.global_count)
    }

    /// The length a full layer must have (a delta's depends on its page table).
    pub fn file_bytes(&self) -> u64 {
        self.data_offset + self.memory_bytes
    }
}

/// The fixed header's fields, for encoding.
pub(crate) struct HeaderFields<'a> {
    pub kind: LayerKind,
    pub memory_bytes: u64,
    pub global_count: usize,
    pub operator: &'a str,
    pub data_offset: u64,
    pub page_bytes: u32,
    pub page_count: u32,
    pub module_digest: &'a [u8; 32],
    pub parent_digest: &'a [u8; 32],
}

/// Appends the 128-byte fixed header.
pub(crate) fn push_header(out: &mut Vec<u8>, fields: &HeaderFields<'_>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(CHUNK_BYTES as u32).to_le_bytes());
    out.extend_from_slice(&fields.memory_bytes.to_le_bytes());
    out.extend_from_slice(&((fields.memory_bytes / CHUNK_BYTES) as u32).to_le_bytes());
    out.extend_from_slice(&(fields.global_count as u32).to_le_bytes());
    out.extend_from_slice(&(fields.operator.len() as u32).to_le_bytes());
    let kind: u32 = match fields.kind {
        LayerKind::Full => 0,
        LayerKind::Delta => 1,
    };
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&fields.data_offset.to_le_bytes());
    out.extend_from_slice(&fields.page_bytes.to_le_bytes());
    out.extend_from_slice(&fields.page_count.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(fields.module_digest);
    out.extend_from_slice(fields.parent_digest);
    debug_assert_eq!(out.len() - start, FIXED_HEADER_BYTES);
}

/// Appends the globals table.
pub(crate) fn push_globals(out: &mut Vec<u8>, globals: &[GlobalValue]) {
    for global in globals {
        out.extend_from_slice(&global.index.to_le_bytes());
        out.push(global.value.type_code());
        out.extend_from_slice(&[0u8; 3]);
        out.extend_from_slice(&global.value.bits().to_le_bytes());
    }
}

/// Reads `count` globals.
pub(crate) fn read_globals(
    cursor: &mut Cursor<'_>,
    count: u64,
) -> Result<Vec<GlobalValue>, String> {
    let mut globals = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let index = cursor.u32()?;
        let [type_code, pad @ ..] = cursor.array::<4>()?;
        if pad != [0; 3] {
            return Err(format!("global {index} has non-zero padding"));
        }
        let value = GlobalBits::from_parts(type_code, cursor.u128()?)?;
        globals.push(GlobalValue { index, value });
    }
    Ok(globals)
}

/// Checks the digest that ends a metadata block; returns the body before it and the digest.
pub(crate) fn verify_digest(bytes: &[u8]) -> Result<(&[u8], [u8; 32]), String> {
    if (bytes.len() as u64) < FIXED_HEADER_BYTES as u64 + DIGEST_BYTES {
        return Err("its metadata ends early".to_owned());
    }
    let (body, stored_digest) = bytes.split_at(bytes.len() - DIGEST_BYTES as usize);
    let actual_digest: [u8; 32] = Sha256::digest(body).into();
    if actual_digest[..] != stored_digest[..] {
        return Err("its metadata checksum does not match".to_owned());
    }
    Ok((body, actual_digest))
}

fn metadata_bytes(name_bytes: u64, chunk_count: u64, global_count: u64) -> u64 {
    metadata_bytes_with(name_bytes, chunk_count * CHUNK_ENTRY_BYTES, global_count)
}

pub(crate) fn metadata_bytes_with(name_bytes: u64, table_bytes: u64, global_count: u64) -> u64 {
    FIXED_HEADER_BYTES as u64
        + name_bytes
        + table_bytes
        + global_count * GLOBAL_ENTRY_BYTES
        + DIGEST_BYTES
}

/// Where the memory image starts in a snapshot with these table sizes.
pub(crate) fn data_offset_for_counts(
    name_bytes: usize,
    chunk_count: usize,
    global_count: usize,
) -> u64 {
    data_offset_for(metadata_bytes(
        name_bytes as u64,
        chunk_count as u64,
        global_count as u64,
    ))
}

/// Where the memory data starts for a layer with this metadata length.
pub(crate) fn data_offset_for(metadata_bytes: u64) -> u64 {
    metadata_bytes.div_ceil(DATA_ALIGN) * DATA_ALIGN
}

impl SnapshotMeta {
    /// Where the memory image starts in the file.
    pub fn data_offset(&self) -> u64 {
        data_offset_for(self.metadata_bytes())
    }

    pub fn metadata_bytes(&self) -> u64 {
        metadata_bytes(
            self.operator.len() as u64,
            self.chunks.len() as u64,
            self.globals.len() as u64,
        )
    }

    /// The metadata block, ending with its digest; also returns the digest.
    pub fn encode(&self) -> (Vec<u8>, [u8; 32]) {
        let mut out = Vec::with_capacity(self.metadata_bytes() as usize);
        debug_assert_eq!(self.chunks.len() as u64 * CHUNK_BYTES, self.memory_bytes);
        push_header(
            &mut out,
            &HeaderFields {
                kind: LayerKind::Full,
                memory_bytes: self.memory_bytes,
                global_count: self.globals.len(),
                operator: &self.operator,
                data_offset: self.data_offset(),
                page_bytes: 0,
                page_count: 0,
                module_digest: &self.module_digest,
                parent_digest: &[0; 32],
            },
        );
        out.extend_from_slice(self.operator.as_bytes());
        for chunk in &self.chunks {
            let (kind, crc) = match *chunk {
                Chunk::Zero => (0u32, 0u32),
                Chunk::Data { crc } => (1u32, crc),
            };
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
        }
        push_globals(&mut out, &self.globals);
        let digest: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        (out, digest)
    }
}

/// Little-endian reader over a byte slice that reports truncation instead of panicking.
pub(crate) struct Cursor<'a> {
    pub bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < count {
            return Err("the metadata ends early".to_owned());
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn u128(&mut self) -> Result<u128, String> {
        self.array().map(u128::from_le_bytes)
    }
}

/// Decodes and sanity-checks the fixed header, so the caller knows how much metadata to read.
pub(crate) fn decode_fixed_header(bytes: &[u8]) -> Result<FixedHeader, String> {
    if bytes.len() < FIXED_HEADER_BYTES {
        return Err(format!(
            "the file is {} bytes long, shorter than a snapshot header",
            bytes.len()
        ));
    }
    let mut cursor = Cursor {
        bytes: &bytes[..FIXED_HEADER_BYTES],
    };
    if cursor.array::<8>()? != MAGIC {
        return Err("it does not start with the snapshot magic".to_owned());
    }
    let version = cursor.u32()?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "it has format version {version}; this host reads version {FORMAT_VERSION}"
        ));
    }
    let chunk_bytes = u64::from(cursor.u32()?);
    let memory_bytes = cursor.u64()?;
    let chunk_count = u64::from(cursor.u32()?);
    let global_count = u64::from(cursor.u32()?);
    let operator_name_bytes = u64::from(cursor.u32()?);
    let kind = cursor.u32()?;
    let data_offset = cursor.u64()?;
    let page_bytes = u64::from(cursor.u32()?);
    let page_count = u64::from(cursor.u32()?);
    let reserved = cursor.array::<8>()?;
    let module_digest = cursor.array::<32>()?;
    let parent_digest = cursor.array::<32>()?;

    if reserved != [0; 8] {
        return Err("reserved header bytes are not zero".to_owned());
    }
    let kind = match kind {
        0 => {
            if page_bytes != 0 || page_count != 0 || parent_digest != [0; 32] {
                return Err("a full layer has delta fields set".to_owned());
            }
            LayerKind::Full
        }
        1 => {
            if !page_bytes.is_power_of_two()
                || !(MIN_PAGE_BYTES..=CHUNK_BYTES).contains(&page_bytes)
            {
                return Err(format!(
                    "its page size {page_bytes} is not a valid page size"
                ));
            }
            if page_count > memory_bytes / page_bytes {
                return Err(format!(
                    "it lists {page_count} pages of a {memory_bytes}-byte memory"
                ));
            }
            LayerKind::Delta
        }
        other => return Err(format!("it has the unknown layer kind {other}")),
    };
    if chunk_bytes != CHUNK_BYTES {
        return Err(format!(
            "its chunk size is {chunk_bytes}, not {CHUNK_BYTES}"
        ));
    }
    if chunk_count > MAX_CHUNKS || memory_bytes != chunk_count * CHUNK_BYTES {
        return Err(format!(
            "its memory size ({memory_bytes} bytes) does not match its chunk count ({chunk_count})"
        ));
    }
    if global_count > MAX_GLOBALS {
        return Err(format!("it claims {global_count} globals"));
    }
    if operator_name_bytes > MAX_OPERATOR_NAME_BYTES {
        return Err(format!(
            "it claims an operator name of {operator_name_bytes} bytes"
        ));
    }
    let header = FixedHeader {
        kind,
        memory_bytes,
        chunk_count,
        global_count,
        operator_name_bytes,
        data_offset,
        page_bytes,
        page_count,
        module_digest,
        parent_digest,
    };
    if data_offset != data_offset_for(header.metadata_bytes()) {
        return Err(format!(
            "its data offset {data_offset} does not follow from its metadata length"
        ));
    }
    Ok(header)
}

/// Decodes the whole metadata block of a full layer (`header.metadata_bytes()` long) and
/// verifies its digest. Returns the metadata and its digest.
pub(crate) fn decode_metadata(
    header: &FixedHeader,
    bytes: &[u8],
) -> Result<(SnapshotMeta, [u8; 32]), String> {
    if header.kind != LayerKind::Full {
        return Err("it is a delta layer where a full snapshot belongs".to_owned());
    }
    let expected_len = header.metadata_bytes();
    if bytes.len() as u64 != expected_len {
        return Err(format!(
            "its metadata is {} bytes, expected {expected_len}",
            bytes.len()
        ));
    }
    let (body, actual_digest) = verify_digest(bytes)?;
    let mut cursor = Cursor {
        bytes: &body[FIXED_HEADER_BYTES..],
    };
    let operator = std::str::from_utf8(cursor.take(header.operator_name_bytes as usize)?)
        .map_err(|_| "its operator name is not UTF-8".to_owned())?
        .to_owned();
    let mut chunks = Vec::with_capacity(header.chunk_count as usize);
    for index in 0..header.chunk_count {
        let kind = cursor.u32()?;
        let crc = cursor.u32()?;
        chunks.push(match (kind, crc) {
            (0, 0) => Chunk::Zero,
            (1, crc) => Chunk::Data { crc },
            _ => return Err(format!("chunk {index} has an invalid table entry")),
        });
    }
    let globals = read_globals(&mut cursor, header.global_count)?;
    Ok((
        SnapshotMeta {
            memory_bytes: header.memory_bytes,
            module_digest: header.module_digest,
            operator,
            chunks,
            globals,
        },
        actual_digest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotMeta {
        SnapshotMeta {
            memory_bytes: 3 * CHUNK_BYTES,
            module_digest: [7; 32],
            operator: "webapp".to_owned(),
            chunks: vec![
                Chunk::Data { crc: 0xdead_beef },
                Chunk::Zero,
                Chunk::Data { crc: 1 },
            ],
            globals: vec![
                GlobalValue {
                    index: 0,
                    value: GlobalBits::I32(0x1_0000),
                },
                GlobalValue {
                    index: 3,
                    value: GlobalBits::I64(u64::MAX),
                },
                GlobalValue {
                    index: 4,
                    value: GlobalBits::F32(1.5f32.to_bits()),
                },
                GlobalValue {
                    index: 5,
                    value: GlobalBits::F64((-2.25f64).to_bits()),
                },
                GlobalValue {
                    index: 9,
                    value: GlobalBits::V128(u128::MAX - 5),
                },
            ],
        }
    }

    fn decode(bytes: &[u8]) -> Result<(SnapshotMeta, [u8; 32]), String> {
        let header = decode_fixed_header(bytes)?;
        let len = usize::try_from(header.metadata_bytes()).map_err(|e| e.to_string())?;
        if bytes.len() < len {
            return Err("short".to_owned());
        }
        decode_metadata(&header, &bytes[..len])
    }

    #[test]
    fn metadata_round_trips_and_the_image_is_aligned() {
        let meta = sample();
        let (bytes, digest) = meta.encode();
        assert_eq!(bytes.len() as u64, meta.metadata_bytes());
        let header = decode_fixed_header(&bytes).unwrap();
        assert_eq!(header.data_offset % DATA_ALIGN, 0);
        assert!(header.data_offset >= header.metadata_bytes());
        assert_eq!(header.file_bytes(), header.data_offset + 3 * CHUNK_BYTES);
        let (decoded, decoded_digest) = decode(&bytes).unwrap();
        assert_eq!(decoded, meta);
        assert_eq!(decoded_digest, digest);
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let (bytes, _) = sample().encode();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    decode(&damaged).is_err(),
                    "flipping bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn truncated_and_random_input_is_refused_without_panicking() {
        let (bytes, _) = sample().encode();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        // A deterministic xorshift stream, so failures reproduce.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut random = bytes.clone();
            for byte in random.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state % 7 == 0 {
                    *byte = state as u8;
                }
            }
            if random != bytes {
                assert!(decode(&random).is_err());
            }
        }
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_allocated() {
        let (mut bytes, _) = sample().encode();
        bytes[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_fixed_header(&bytes)
            .unwrap_err()
            .contains("chunk count"));
        let (mut bytes, _) = sample().encode();
        bytes[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_fixed_header(&bytes).unwrap_err().contains("globals"));
    }
}
