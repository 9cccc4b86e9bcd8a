//! Which shard a WasmOperator belongs to, and which live replica should hold each shard.
//!
//! Both are pure functions of names, so every replica computes the same answer from the same
//! view of the Leases, and both use fixed, documented hashes (FNV-1a, then the SplitMix64
//! finaliser), never std's randomly seeded hasher: a WasmOperator must map to the same shard
//! in every replica and every release.
//!
//! Replicas are matched to shards by rendezvous (highest random weight) hashing with bounded
//! load: shard by shard, in order, each goes to the live replica with the highest
//! score(replica, shard) that has not reached its share yet: `shards / replicas`, one more for
//! the first `shards % replicas` replicas by name. Plain
//! rendezvous hashing moves the least when membership changes (only the newcomer's shards, or
//! only the leaver's) but spreads a few shards unevenly: 8 shards over 3 replicas came out
//! 4/3/1. The shares keep every replica within one shard of the others, at the price of a
//! few extra moves when membership changes (a shard pushed off a full replica takes the next
//! one on its list).
use std::collections::BTreeSet;

/// The shard of the operator named `operator` (see [`crate::cluster::operator_name`]) among
/// `shards`.
pub fn shard_of(operator: &str, shards: u32) -> u32 {
    (mix(fnv1a(operator.as_bytes())) % u64::from(shards.max(1))) as u32
}

/// The replica among `members` that should hold each of `shards` shards (by index); empty
/// without members. Every replica computes the same from the same members, in any order.
pub fn assign(members: &[String], shards: u32) -> Vec<&str> {
    if members.is_empty() {
        return Vec::new();
    }
    // Shares add up to the shard count exactly, so every shard finds a replica below its share.
    let (base, extra) = (
        shards as usize / members.len(),
        shards as usize % members.len(),
    );
    let mut by_name: Vec<usize> = (0..members.len()).collect();
    by_name.sort_by_key(|&m| &members[m]);
    let mut share = vec![base; members.len()];
    for &m in &by_name[..extra] {
        share[m] += 1;
    }
    let mut load = vec![0usize; members.len()];
    (0..shards)
        .map(|shard| {
            // Highest score first; ties (equal 64-bit scores) go to the greater name.
            let mut ranked: Vec<usize> = (0..members.len()).collect();
            ranked.sort_by_key(|&m| std::cmp::Reverse((score(&members[m], shard), &members[m])));
            let chosen = ranked
                .into_iter()
                .find(|&m| load[m] < share[m])
                .expect("the shares add up to the shard count");
            load[chosen] += 1;
            members[chosen].as_str()
        })
        .collect()
}

/// The replica among `members` that should hold `shard`.
pub fn owner(shard: u32, shards: u32, members: &[String]) -> Option<&str> {
    assign(members, shards).get(shard as usize).copied()
}

/// The shards (of `shards`) `member` should hold when `members` are the live replicas.
pub fn shards_of(member: &str, members: &[String], shards: u32) -> BTreeSet<u32> {
    let owners = assign(members, shards);
    (0..shards)
        .filter(|shard| owners.get(*shard as usize) == Some(&member))
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
    fn every_shard_has_exactly_one_owner_and_the_load_is_even() {
        for (count, shards) in [(3, 8), (3, 64), (2, 8), (5, 16), (8, 8)] {
            let hosts: Vec<String> = (0..count)
                .map(|i| format!("wasm-operator-7d9f-{i}x"))
                .collect();
            let mut seen = BTreeSet::new();
            let fair = (shards as usize).div_ceil(count);
            for host in &hosts {
                let mine = shards_of(host, &hosts, shards);
                // Within one shard of every other replica.
                assert!(
                    mine.len() == fair || mine.len() + 1 == fair,
                    "{host}: {mine:?}"
                );
                for shard in mine {
                    assert!(seen.insert(shard), "shard {shard} has two owners");
                }
            }
            assert_eq!(seen.len(), shards as usize);
        }
    }

    #[test]
    fn the_order_of_members_does_not_matter() {
        let one = members(&["a", "b", "c"]);
        let other = members(&["c", "a", "b"]);
        assert_eq!(assign(&one, 32), assign(&other, 32));
    }

    #[test]
    fn a_replica_joining_or_leaving_moves_little_more_than_its_share() {
        let three = members(&["a", "b", "c"]);
        let four = members(&["a", "b", "c", "d"]);
        let before = assign(&three, 256);
        let after = assign(&four, 256);
        let moved = (0..256).filter(|&s| before[s] != after[s]).count();
        let to_newcomer = (0..256).filter(|&s| after[s] == "d").count();
        // The newcomer's fair share (64) must move; the bound costs a few extra moves.
        assert_eq!(to_newcomer, 64);
        assert!(moved <= 64 + 32, "{moved} of 256 moved");
    }

    #[test]
    fn no_members_own_nothing() {
        assert!(assign(&[], 4).is_empty());
        assert_eq!(owner(0, 4, &[]), None);
        assert!(shards_of("a", &[], 4).is_empty());
    }
}
