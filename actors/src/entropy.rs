//! Where randomness comes from: the OS in the daemon, a seeded source in tests.

/// A source of random bytes.
pub trait EntropySource: Send + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A uniform draw in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default)]
pub struct OsEntropy;

impl EntropySource for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // getrandom only fails when the OS has no entropy source at all, which the daemon cannot
        // run without.
        #[allow(clippy::expect_used)]
        getrandom::getrandom(buf).expect("the OS random source is unavailable");
    }
}

/// A deterministic generator (SplitMix64) for tests and benchmarks. Not for secrets.
#[derive(Debug, Clone)]
pub struct SeededEntropy(pub u64);

impl EntropySource for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}
