//! Owns: the portable scalar microkernel, the reference every SIMD path must match.
//!
//! Invariant: output `(r, j)` is one chain `acc = fma(a[r][k], b[k][j], acc)` over the tile's
//! `k` range in order, with [`f32::mul_add`] (a single IEEE rounding on every target).

use super::driver::{Kernel, Tile};

/// A 4x8 tile of independent scalar chains.
pub(super) struct Scalar;

impl Kernel for Scalar {
    const MR: usize = 4;
    const NR: usize = 8;

    unsafe fn tile(t: &Tile) {
        const MR: usize = Scalar::MR;
        const NR: usize = Scalar::NR;
        let mut acc = [[0.0f32; NR]; MR];
        // SAFETY: the caller guarantees the pointers are valid as `Tile` documents.
        unsafe {
            let rows: [*const f32; MR] =
                std::array::from_fn(|r| t.a.add(r.min(t.a_rows - 1) * t.rs_a));
            if t.load_c {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = *t.c.add(r * t.ldc + j);
                    }
                }
            }
            for kk in 0..t.kc {
                let b = t.b.add(kk * t.rs_b);
                for (r, row) in acc.iter_mut().enumerate() {
                    let x = *rows[r].add(kk * t.cs_a);
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = x.mul_add(*b.add(j), *v);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    *t.c.add(r * t.ldc + j) = *v;
                }
            }
        }
    }
}
