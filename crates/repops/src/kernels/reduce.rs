//! Owns: the canonical reduction, the one order in which every long sum is taken.
//!
//! # Order
//! [`LANES`] accumulators start at `+0.0`; element `i` is added (`lane = lane + x`, no fma) to
//! lane `i % LANES`, elements in increasing order; then lanes are folded by a fixed tree:
//! `lane[l] = lane[l] + lane[l + w]` for `w = 8, 4, 2, 1` and `l < w`; the result is `lane[0]`.
//! A SIMD implementation holds the lanes in one or two vector registers and follows the same
//! order; the scalar code below is the definition (compilers may vectorise it lane-wise, which
//! preserves it).

/// Lanes of the canonical reduction.
pub const LANES: usize = 16;

/// The canonical sum of `term(0), term(1), ..., term(len - 1)`.
#[inline]
pub fn reduce_canonical(len: usize, term: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let full = len / LANES * LANES;
    for base in (0..full).step_by(LANES) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += term(base + l);
        }
    }
    for (l, lane) in lanes.iter_mut().enumerate().take(len - full) {
        *lane += term(full + l);
    }
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// The canonical sum of `x`.
#[inline]
pub fn sum_canonical(x: &[f32]) -> f32 {
    reduce_canonical(x.len(), |i| x[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order written out by hand for 35 elements.
    #[test]
    fn matches_the_documented_order() {
        let x: Vec<f32> = (0..35).map(|i| 1.0 / (i as f32 + 0.37)).collect();
        let mut lanes = [0.0f32; 16];
        for (i, v) in x.iter().enumerate() {
            lanes[i % 16] += v;
        }
        for w in [8, 4, 2, 1] {
            for l in 0..w {
                lanes[l] += lanes[l + w];
            }
        }
        assert_eq!(sum_canonical(&x).to_bits(), lanes[0].to_bits());
        assert_eq!(sum_canonical(&[]).to_bits(), 0);
        assert_eq!(sum_canonical(&[-0.0]).to_bits(), 0, "lanes start at +0.0");
    }
}
