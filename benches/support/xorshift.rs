//! Deterministic test keys and picks for the benches and tools, from `rand_xorshift` (fast,
//! seeded, reproducible). Not for secrets.
#![allow(dead_code)]

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;

/// A seeded xorshift generator.
pub struct XorShift(XorShiftRng);

impl XorShift {
    /// The generator for `seed` (any seed; the same seed gives the same sequence).
    pub fn new(seed: u64) -> Self {
        XorShift(XorShiftRng::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// 32 random bytes (a CURVE public key for tests).
    pub fn key(&mut self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        self.0.fill_bytes(&mut bytes);
        bytes
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
