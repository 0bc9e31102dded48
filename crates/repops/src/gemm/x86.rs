//! Owns: the x86-64 microkernels (AVX2+FMA 6x16, AVX-512F 8x32).
//!
//! Invariant: every vector lane is a different output column; each step broadcasts one
//! `A[r][k]`, loads `B[k][j..]` and does one fused multiply-add per accumulator
//! (`_mm256_fmadd_ps` / `_mm512_fmadd_ps` compute `a * b + c` with one rounding, exactly like
//! [`f32::mul_add`]), for `k` in order. No horizontal operation ever happens.

use std::arch::x86_64::*;

use super::driver::{Kernel, Tile};

/// AVX2 + FMA: 6 rows x 16 columns, 12 ymm accumulators.
pub(super) struct Avx2;

impl Kernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn tile(t: &Tile) {
        // SAFETY: the caller checked AVX2 and FMA support and the tile's pointers.
        unsafe { tile_avx2(t) }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(t: &Tile) {
    const MR: usize = Avx2::MR;
    // SAFETY: pointers are valid as `Tile` documents; every access below stays inside
    // `MR` rows of `kc` steps of `A`, `kc` steps of 16 `B` values and the `MR x 16` tile of `C`.
    unsafe {
        let rows: [*const f32; MR] = std::array::from_fn(|r| t.a.add(r.min(t.a_rows - 1) * t.rs_a));
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        if t.load_c {
            for (r, row) in acc.iter_mut().enumerate() {
                row[0] = _mm256_loadu_ps(t.c.add(r * t.ldc));
                row[1] = _mm256_loadu_ps(t.c.add(r * t.ldc + 8));
            }
        }
        let mut b = t.b;
        let mut off = 0;
        for _ in 0..t.kc {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for r in 0..MR {
                let x = _mm256_broadcast_ss(&*rows[r].add(off));
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
            b = b.add(t.rs_b);
            off += t.cs_a;
        }
        for (r, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(t.c.add(r * t.ldc), row[0]);
            _mm256_storeu_ps(t.c.add(r * t.ldc + 8), row[1]);
        }
    }
}

/// AVX-512F: 8 rows x 32 columns, 16 zmm accumulators.
pub(super) struct Avx512;

impl Kernel for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;

    unsafe fn tile(t: &Tile) {
        // SAFETY: the caller checked AVX-512F support and the tile's pointers.
        unsafe { tile_avx512(t) }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(t: &Tile) {
    const MR: usize = Avx512::MR;
    // SAFETY: as in `tile_avx2`, with 32 `B` values per step and an `MR x 32` tile of `C`.
    unsafe {
        let rows: [*const f32; MR] = std::array::from_fn(|r| t.a.add(r.min(t.a_rows - 1) * t.rs_a));
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if t.load_c {
            for (r, row) in acc.iter_mut().enumerate() {
                row[0] = _mm512_loadu_ps(t.c.add(r * t.ldc));
                row[1] = _mm512_loadu_ps(t.c.add(r * t.ldc + 16));
            }
        }
        let mut b = t.b;
        let mut off = 0;
        for _ in 0..t.kc {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for r in 0..MR {
                let x = _mm512_set1_ps(*rows[r].add(off));
                acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
            }
            b = b.add(t.rs_b);
            off += t.cs_a;
        }
        for (r, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(t.c.add(r * t.ldc), row[0]);
            _mm512_storeu_ps(t.c.add(r * t.ldc + 16), row[1]);
        }
    }
}
