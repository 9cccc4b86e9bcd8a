//! What the counter example writes into a Counter's status, computed independently of both
//! implementations (docs/examples.md, "counter"), for its tests to compare against.
use kube::api::DynamicObject;

use crate::kinds::field;

/// The offset basis the checksum starts from.
pub const CHECKSUM_START: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a, continued over `bytes`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The checksum continued over `ns/name@generation;` for each generation, in order.
pub fn checksum_over(
    start: u64,
    namespace: &str,
    name: &str,
    generations: impl IntoIterator<Item = i64>,
) -> u64 {
    generations.into_iter().fold(start, |hash, generation| {
        fnv1a(hash, format!("{namespace}/{name}@{generation};").as_bytes())
    })
}

/// `status.checksum` as the operator writes it.
pub fn checksum_text(checksum: u64) -> String {
    format!("{checksum:016x}")
}

/// `status.observedGenerations`, empty if absent.
pub fn observed(counter: &DynamicObject) -> Vec<i64> {
    field(counter, "/status/observedGenerations")
        .and_then(|list| list.as_array())
        .map(|list| list.iter().filter_map(|g| g.as_i64()).collect())
        .unwrap_or_default()
}
