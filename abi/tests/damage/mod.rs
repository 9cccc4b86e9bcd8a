//! Damaged variants of a valid input, for the no-panic tests of everything that reads untrusted
//! bytes (module validation, the messages guests send): every truncation, bit flips, byte
//! replacements with boundary values, insertions and deletions, from a fixed seed so that a
//! failure reproduces. The cargo-fuzz targets in fuzz/ explore the same properties without a
//! bound.

/// xorshift64*: tiny, deterministic, good enough to pick positions and bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// How many variants of each kind [`for_each_variant`] makes (truncations: one per length).
pub struct Rounds {
    pub bit_flips: usize,
    pub replacements: usize,
    pub insertions_and_deletions: usize,
}

/// Calls `check` with every damaged variant of `seed` and returns how many there were.
/// `boundary` lists the byte values most likely to break a reader of this format.
pub fn for_each_variant(
    seed: &[u8],
    rng: &mut Rng,
    rounds: &Rounds,
    boundary: &[u8],
    mut check: impl FnMut(&[u8]),
) -> usize {
    let mut checked = 0;
    for length in 0..seed.len() {
        check(&seed[..length]);
        checked += 1;
    }
    for _ in 0..rounds.bit_flips {
        let mut bytes = seed.to_vec();
        let bit = rng.below(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        check(&bytes);
        checked += 1;
    }
    for _ in 0..rounds.replacements {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let position = rng.below(bytes.len());
            bytes[position] = if rng.below(2) == 0 {
                boundary[rng.below(boundary.len())]
            } else {
                rng.byte()
            };
        }
        check(&bytes);
        checked += 1;
    }
    for _ in 0..rounds.insertions_and_deletions {
        let mut bytes = seed.to_vec();
        let position = rng.below(bytes.len());
        if rng.below(2) == 0 {
            let inserted = if rng.below(2) == 0 {
                boundary[rng.below(boundary.len())]
            } else {
                rng.byte()
            };
            bytes.insert(position, inserted);
        } else {
            bytes.remove(position);
        }
        check(&bytes);
        checked += 1;
    }
    checked
}
