//! Which shard a WasmOperator belongs to, and which live replica should hold each shard.
//!
//! Both are pure functions of names, so every replica computes the same answer from the same
//! view of the Leases, and both use fixed, documented hashes (FNV-1a, then the SplitMix64
//! finaliser), never std's randomly seeded hasher: a WasmOperator must map to the same shard
//! in every replica and every release.
//!
//! Replicas are matched to shards by rendezvous (highest random weight) hashing: each shard
//! goes to the live replica with the highest score(replica, shard). A replica joining takes
//! only the shards it now scores highest on, and a replica leaving hands over only its own,
//! so a change of membership moves about `shards / replicas` shards and nothing else.
use std::collections::BTreeSet;

/// The shard of the operator named `operator` (see [`crate::cluster::operator_name`]) among
/// `shards`.
pub fn shard_of(operator: &str, shards: u32) -> u32 {
    (mix(fnv1a(operator.as_bytes())) % u64::from(shards.max(1))) as u32
}

/// The replica among `members` that should hold `shard` (ties, which need equal 64-bit
/// scores, go to the greater name).
pub fn owner(shard: u32, members: &[String]) -> Option<&str> {
    members
        .iter()
        .max_by_key(|member| (score(member, shard), member.as_str()))
        .map(String::as_str)
}

/// The shards (of `shards`) `member` should hold when `members` are the live replicas.
pub fn shards_of(member: &str, members: &[String], shards: u32) -> BTreeSet<u32> {
    (0..shards)
        .filter(|shard| owner(*shard, members) == Some(member))
        .collect()
}

fn score(member: &str, shard: u32) -> u64 {
    mix(fnv1a(member.as_bytes()) ^ mix(u64::from(shard)))
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The SplitMix64 finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn shards_are_stable_across_releases() {
        // Fixed values: a change here re-shards every running cluster during an upgrade.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(shard_of("team-web", 1), 0);
        let spread: BTreeSet<u32> = (0..200)
            .map(|i| shard_of(&format!("ns-op{i}"), 16))
            .collect();
        assert_eq!(spread.len(), 16, "200 operators leave a shard of 16 empty");
    }

    #[test]
    fn every_shard_has_exactly_one_owner_and_the_load_is_spread() {
        let hosts = members(&[
            "wasm-operator-7d9f-abcde",
            "wasm-operator-7d9f-fghij",
            "wasm-operator-7d9f-klmno",
        ]);
        let mut seen = BTreeSet::new();
        for host in &hosts {
            let mine = shards_of(host, &hosts, 64);
            // 64 / 3 ≈ 21 each; rendezvous hashing is random-like, so allow a wide band.
            assert!((10..=32).contains(&mine.len()), "{host}: {mine:?}");
            for shard in mine {
                assert!(seen.insert(shard), "shard {shard} has two owners");
            }
        }
        assert_eq!(seen.len(), 64);
    }

    #[test]
    fn a_replica_joining_or_leaving_moves_only_its_own_shards() {
        let three = members(&["a", "b", "c"]);
        let four = members(&["a", "b", "c", "d"]);
        let mut moved = 0;
        for shard in 0..256 {
            let before = owner(shard, &three).unwrap();
            let after = owner(shard, &four).unwrap();
            if before != after {
                // Only to the newcomer: no shard moves between the replicas that stayed.
                assert_eq!(after, "d", "shard {shard} moved {before} -> {after}");
                moved += 1;
            }
        }
        // About a quarter of the shards, as the newcomer's fair share.
        assert!((32..=96).contains(&moved), "{moved} of 256 moved");
        // Leaving is the same move backwards: only d's shards change owner.
        for shard in 0..256 {
            if owner(shard, &four) != Some("d") {
                assert_eq!(owner(shard, &four), owner(shard, &three));
            }
        }
    }

    #[test]
    fn no_members_own_nothing() {
        assert_eq!(owner(0, &[]), None);
        assert!(shards_of("a", &[], 4).is_empty());
    }
}
