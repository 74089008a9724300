//! Seeded randomness for the data set and the request mix: a small generator and unique
//! ids, so that the same seed gives the same data on every machine with no dependency.

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

/// splitmix64's finalizer: a bijection on `u64`, so distinct inputs give distinct outputs.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(mix(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        match u64::try_from(n) {
            Ok(0) | Err(_) => 0,
            Ok(n) => usize::try_from(self.next_u64() % n).unwrap_or(0),
        }
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True `percent` times out of a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Unique, realistic-looking ids (a prefix and 22 base62 characters, like the KSUIDs
/// of production ids), so that the server parses and hashes ids of real lengths.
#[derive(Debug)]
pub struct Ids {
    salt: u64,
    next: u64,
}

impl Ids {
    /// Ids derived from `salt`.
    pub fn new(salt: u64) -> Self {
        Self { salt, next: 0 }
    }

    /// The next id, starting with `prefix`.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        // `mix` is a bijection and `salt + next` differs for every id: ids never collide.
        let first = mix(self.salt.wrapping_add(self.next));
        let mut out = String::with_capacity(prefix.len() + 22);
        out.push_str(prefix);
        for mut word in [first, mix(first)] {
            for _ in 0..11 {
                let digit = usize::try_from(word % 62).unwrap_or(0);
                out.push(char::from(*BASE62.get(digit).unwrap_or(&b'0')));
                word /= 62;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_generator_stays_within_its_bounds() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            assert!((2..=5).contains(&rng.between(2, 5)));
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn ids_never_repeat() {
        let mut ids = Ids::new(9);
        let all: HashSet<String> = (0..10_000).map(|_| ids.id("x_")).collect();
        assert_eq!(all.len(), 10_000);
    }
}
