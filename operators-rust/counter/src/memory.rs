//! What the counter remembers for the life of its instance (and across swaps, since it lives in
//! linear memory): the generations seen per object, how many (object, generation) pairs it has
//! seen, and an FNV-1a checksum over them in the order seen. Losing any of it shows at once.

use std::collections::BTreeMap;

/// 64-bit FNV-1a.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    generations: BTreeMap<String, Vec<i64>>,
    total_seen: u64,
    checksum: u64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            generations: BTreeMap::new(),
            total_seen: 0,
            checksum: FNV_OFFSET_BASIS,
        }
    }
}

/// What seeing a new (object, generation) pair leads to; [`Memory::commit`] makes it permanent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    key: String,
    pub generations: Vec<i64>,
    pub total_seen: u64,
    pub checksum: u64,
}

impl Sighting {
    /// The checksum as the status shows it.
    pub fn checksum_hex(&self) -> String {
        format!("{:016x}", self.checksum)
    }
}

impl Memory {
    /// What seeing `generation` of `key` (`ns/name`) would change, or `None` when it was seen.
    pub fn sight(&self, key: &str, generation: i64) -> Option<Sighting> {
        let known = self
            .generations
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if known.contains(&generation) {
            return None;
        }
        let mut generations = known.to_vec();
        generations.push(generation);
        Some(Sighting {
            key: key.to_owned(),
            generations,
            total_seen: self.total_seen + 1,
            checksum: fnv1a(self.checksum, format!("{key}@{generation};").as_bytes()),
        })
    }

    pub fn commit(&mut self, sighting: Sighting) {
        self.generations.insert(sighting.key, sighting.generations);
        self.total_seen = sighting.total_seen;
        self.checksum = sighting.checksum;
    }

    /// Forgets a deleted object; the count and checksum keep what was seen.
    pub fn forget(&mut self, key: &str) {
        self.generations.remove(key);
    }
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::Memory;

    #[test]
    fn the_checksum_follows_the_worked_example() {
        let mut memory = Memory::default();
        let first = memory.sight("default/a", 1).unwrap();
        assert_eq!(
            (first.checksum_hex().as_str(), first.total_seen),
            ("d6bd7b4133c64266", 1)
        );
        memory.commit(first);
        let second = memory.sight("default/a", 2).unwrap();
        assert_eq!(
            (second.checksum_hex().as_str(), second.total_seen),
            ("01aa10780731a9fa", 2)
        );
        assert_eq!(second.generations, [1, 2]);
    }

    #[test]
    fn a_generation_counts_once_and_forgetting_keeps_count_and_checksum() {
        let mut memory = Memory::default();
        let first = memory.sight("ns/a", 1).unwrap();
        memory.commit(first.clone());
        assert_eq!(memory.sight("ns/a", 1), None);
        memory.forget("ns/a");
        let again = memory.sight("ns/a", 1).unwrap();
        assert_eq!(again.generations, [1]);
        assert_eq!(again.total_seen, 2);
        assert_ne!(again.checksum, first.checksum);
    }

    #[test]
    fn an_uncommitted_sighting_changes_nothing() {
        let memory = Memory::default();
        memory.sight("ns/a", 1).unwrap();
        assert_eq!(memory, Memory::default());
    }
}
