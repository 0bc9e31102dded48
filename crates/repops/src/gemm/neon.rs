//! Owns: the aarch64 NEON microkernel (8x8).
//!
//! Invariant: every vector lane is a different output column; each step duplicates one
//! `A[r][k]`, loads `B[k][j..]` and does one `vfmaq_f32(acc, b, a)` per accumulator
//! (`acc + b * a` with one rounding, exactly like [`f32::mul_add`]), for `k` in order.

use std::arch::aarch64::*;

use super::driver::{Kernel, Tile};

/// NEON: 8 rows x 8 columns, 16 q-register accumulators.
pub(super) struct Neon;

impl Kernel for Neon {
    const MR: usize = 8;
    const NR: usize = 8;

    unsafe fn tile(t: &Tile) {
        // SAFETY: the caller checked NEON support and the tile's pointers.
        unsafe { tile_neon(t) }
    }
}

#[target_feature(enable = "neon")]
unsafe fn tile_neon(t: &Tile) {
    const MR: usize = Neon::MR;
    // SAFETY: pointers are valid as `Tile` documents; every access stays inside `MR` rows of
    // `kc` steps of `A`, `kc` steps of 8 `B` values and the `MR x 8` tile of `C`.
    unsafe {
        let rows: [*const f32; MR] = std::array::from_fn(|r| t.a.add(r.min(t.a_rows - 1) * t.rs_a));
        let mut acc = [[vdupq_n_f32(0.0); 2]; MR];
        if t.load_c {
            for (r, row) in acc.iter_mut().enumerate() {
                row[0] = vld1q_f32(t.c.add(r * t.ldc));
                row[1] = vld1q_f32(t.c.add(r * t.ldc + 4));
            }
        }
        let mut b = t.b;
        let mut off = 0;
        for _ in 0..t.kc {
            let b0 = vld1q_f32(b);
            let b1 = vld1q_f32(b.add(4));
            for r in 0..MR {
                let x = vdupq_n_f32(*rows[r].add(off));
                acc[r][0] = vfmaq_f32(acc[r][0], b0, x);
                acc[r][1] = vfmaq_f32(acc[r][1], b1, x);
            }
            b = b.add(t.rs_b);
            off += t.cs_a;
        }
        for (r, row) in acc.iter().enumerate() {
            vst1q_f32(t.c.add(r * t.ldc), row[0]);
            vst1q_f32(t.c.add(r * t.ldc + 4), row[1]);
        }
    }
}
