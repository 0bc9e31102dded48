//! Seeded counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), the generator
//! behind PyTorch's and JAX's reproducible dropout.
//!
//! A counter-based generator maps `(key, counter)` to random bits with no hidden state, so any
//! element of any stream can be computed directly: a dropout mask for element `i` of a tensor
//! at step `s` is the same whichever thread computes it, in whatever order. Everything here is
//! integer arithmetic; the float helpers build their values from integer bits exactly.

/// Philox 4x32 multipliers and Weyl key increments (from the paper).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;
const ROUNDS: usize = 10;

/// One Philox4x32-10 block: four 32-bit outputs for a 128-bit counter and a 64-bit key.
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..ROUNDS {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// A stream of random numbers identified by a seed and a stream id (for example a step number
/// and an operator index). Position `n` of the stream is a pure function of
/// `(seed, stream, n)`; [`CounterRng::at`] jumps straight to it.
#[derive(Debug, Clone)]
pub struct CounterRng {
    key: [u32; 2],
    stream: u64,
    block: u64,
    buffer: [u32; 4],
    used: usize,
}

impl CounterRng {
    /// The stream `stream` of generator `seed`, at position 0.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self::at(seed, stream, 0)
    }

    /// The stream positioned at its `position`-th 32-bit output.
    pub fn at(seed: u64, stream: u64, position: u64) -> Self {
        let key = [seed as u32, (seed >> 32) as u32];
        let block = position / 4;
        let mut rng = Self {
            key,
            stream,
            block,
            buffer: [0; 4],
            used: 4,
        };
        let skip = (position % 4) as usize;
        if skip > 0 {
            rng.refill();
            rng.used = skip;
        }
        rng
    }

    fn refill(&mut self) {
        let counter = [
            self.block as u32,
            (self.block >> 32) as u32,
            self.stream as u32,
            (self.stream >> 32) as u32,
        ];
        self.buffer = philox4x32(counter, self.key);
        self.block = self.block.wrapping_add(1);
        self.used = 0;
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            self.refill();
        }
        let value = self.buffer[self.used];
        self.used += 1;
        value
    }

    /// The next 64 random bits (two 32-bit outputs, low word first).
    pub fn next_u64(&mut self) -> u64 {
        let lo = u64::from(self.next_u32());
        let hi = u64::from(self.next_u32());
        lo | (hi << 32)
    }

    /// A uniform float in `[0, 1)` with 24 random bits: exactly `k / 2^24` for a random
    /// integer `k`, so the value is the same on every machine.
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias (Lemire's method with
    /// rejection).
    ///
    /// # Panics
    /// If `n` is zero.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no values");
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A standard normal sample (Box-Muller on two uniforms, with `libm` so every machine
    /// computes the same bits).
    pub fn normal_f32(&mut self) -> f32 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform_f32();
        let u2 = self.uniform_f32();
        let radius = libm::sqrtf(-2.0 * libm::logf(u1));
        radius * libm::cosf(2.0 * core::f32::consts::PI * u2)
    }

    /// Shuffles `items` in place (Fisher-Yates, from the last element down).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32 10).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn jumping_to_a_position_matches_walking_there() {
        let mut walked = CounterRng::new(7, 3);
        let sequence: Vec<u32> = (0..23).map(|_| walked.next_u32()).collect();
        for (position, expected) in sequence.iter().enumerate() {
            assert_eq!(CounterRng::at(7, 3, position as u64).next_u32(), *expected);
        }
    }

    #[test]
    fn streams_and_seeds_differ() {
        let a: Vec<u32> = {
            let mut r = CounterRng::new(1, 0);
            (0..8).map(|_| r.next_u32()).collect()
        };
        let b: Vec<u32> = {
            let mut r = CounterRng::new(1, 1);
            (0..8).map(|_| r.next_u32()).collect()
        };
        let c: Vec<u32> = {
            let mut r = CounterRng::new(2, 0);
            (0..8).map(|_| r.next_u32()).collect()
        };
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = CounterRng::new(9, 0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = rng.below(7);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut rng = CounterRng::new(5, 0);
        let n = 20_000;
        let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let u = rng.uniform_f32();
            assert!((0.0..1.0).contains(&u));
            let z = f64::from(rng.normal_f32());
            sum += z;
            sum_sq += z * z;
        }
        let mean = sum / f64::from(n);
        let var = sum_sq / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        CounterRng::new(4, 0).shuffle(&mut a);
        CounterRng::new(4, 0).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
