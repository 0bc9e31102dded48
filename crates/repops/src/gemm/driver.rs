//! Owns: blocking, packing and the row split of the GEMM; the microkernels only see tiles.
//!
//! Loop nest (BLIS order): column blocks of `nc` -> `K` blocks of `kc` (pack `B` into
//! `NR`-wide zero-padded panels) -> row tasks on rayon -> row blocks of `mc` (pack `A` into
//! `MR`-high panels unless it is row-major) -> `NR` panels -> `MR` tiles.
//!
//! Invariants (they are what makes every path and every thread count give the same bits):
//! each output is touched by exactly one task; within a task its `K` blocks run in order,
//! the first one starting from `+0.0` (or `C` when accumulating) and the later ones from the
//! value stored by the previous block; padding rows and columns land in a scratch tile that
//! is discarded.

use std::cell::Cell;
use std::thread::LocalKey;

use rayon::prelude::*;

use super::{Dims, GemmConfig, SimdPath};

/// A read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
pub(super) struct View<'a> {
    pub(super) data: &'a [f32],
    pub(super) rs: usize,
    pub(super) cs: usize,
}

/// One call's operands (lengths already checked against `dims`).
pub(super) struct Problem<'a> {
    pub(super) a: View<'a>,
    pub(super) b: View<'a>,
    pub(super) dims: Dims,
    pub(super) add: bool,
}

/// The operands of one `MR x NR` microkernel call.
///
/// Row `r` of `A` starts at `a + min(r, a_rows - 1) * rs_a` and advances by `cs_a` per `k`
/// (rows past `a_rows` repeat the last valid row; their outputs are discarded). `B` advances by
/// `rs_b` per `k` and has `NR` readable values each step. `C` is `MR` rows of `NR` values at
/// row stride `ldc`; it is read first when `load_c`, else the chain starts at `+0.0`.
pub(super) struct Tile {
    pub(super) kc: usize,
    pub(super) a: *const f32,
    pub(super) rs_a: usize,
    pub(super) cs_a: usize,
    pub(super) a_rows: usize,
    pub(super) b: *const f32,
    pub(super) rs_b: usize,
    pub(super) c: *mut f32,
    pub(super) ldc: usize,
    pub(super) load_c: bool,
}

/// A register-tile microkernel that follows the canonical order.
pub(super) trait Kernel {
    /// Tile height (rows of `C`).
    const MR: usize;
    /// Tile width (columns of `C`).
    const NR: usize;
    /// Computes one tile.
    ///
    /// # Safety
    /// The pointers in `t` must be valid as [`Tile`] describes, `1 <= a_rows <= MR`, and the
    /// CPU must support the kernel's target features.
    unsafe fn tile(t: &Tile);
}

/// Most floats of `B` packed at once (16 MiB); wider matrices are packed in column strips.
const PACKED_B_MAX: usize = 1 << 22;
/// Packing fewer floats than this in parallel costs more in dispatch than it saves.
const PAR_PACK_MIN: usize = 1 << 16;
/// Row tasks per rayon thread when the pool decides the split.
const TASKS_PER_THREAD: usize = 4;
/// The largest `MR * NR` of any kernel (the size of the edge scratch tile).
const TILE_MAX: usize = 256;
/// Floats of slack that let a scratch buffer start on a 64-byte boundary.
const ALIGN_SLACK: usize = 16;

thread_local! {
    static SCRATCH_A: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static SCRATCH_B: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a 64-byte aligned scratch slice of `len` floats (contents unspecified) kept per
/// thread between calls. The buffer is taken out of the thread-local while in use, so a
/// nested call (rayon work stealing) simply allocates its own.
fn with_scratch<R>(
    key: &'static LocalKey<Cell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    let mut buf = key.with(Cell::take);
    if buf.len() < len + ALIGN_SLACK {
        buf = vec![0.0; len + ALIGN_SLACK];
    }
    let misalign = (buf.as_ptr() as usize % 64) / 4;
    let offset = (ALIGN_SLACK - misalign) % ALIGN_SLACK;
    let result = f(&mut buf[offset..offset + len]);
    key.with(|cell| {
        let other = cell.take();
        cell.set(if other.len() > buf.len() { other } else { buf });
    });
    result
}

/// Dispatches to the kernel of `cfg.path` (its support was checked by the caller).
pub(super) fn run(cfg: &GemmConfig, c: &mut [f32], p: &Problem<'_>) {
    match cfg.path {
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2 => run_with::<super::x86::Avx2>(cfg, c, p),
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx512 => run_with::<super::x86::Avx512>(cfg, c, p),
        #[cfg(target_arch = "aarch64")]
        SimdPath::Neon => run_with::<super::neon::Neon>(cfg, c, p),
        _ => run_with::<super::scalar::Scalar>(cfg, c, p),
    }
}

/// `B` columns `j0..j0 + width` packed for all `K` rows: panel `q` (columns
/// `j0 + q * NR ..`) is `data[q * k * NR..][kk * NR + jj]`, zero past `width`.
struct PackedB<'a> {
    j0: usize,
    width: usize,
    data: &'a [f32],
}

fn run_with<K: Kernel>(cfg: &GemmConfig, c: &mut [f32], p: &Problem<'_>) {
    const { assert!(K::MR * K::NR <= TILE_MAX) };
    let Dims { m, k, n } = p.dims;
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !p.add {
            c.fill(0.0);
        }
        return;
    }
    let tasks = task_count(cfg, p.dims, K::MR);
    // Pack as many columns of B as fit the cap at once, so one call makes two rayon
    // dispatches (pack, compute) per strip rather than one per block.
    let nc = cfg.nc.next_multiple_of(K::NR);
    let strip = ((PACKED_B_MAX / k) / nc * nc).max(nc).min(n);
    with_scratch(&SCRATCH_B, strip.next_multiple_of(K::NR) * k, |buf| {
        for j0 in (0..n).step_by(strip) {
            let width = strip.min(n - j0);
            let used = width.next_multiple_of(K::NR) * k;
            pack_b::<K>(
                &mut buf[..used],
                &p.b,
                j0,
                width,
                tasks > 1 && used >= PAR_PACK_MIN,
            );
            let packed = PackedB {
                j0,
                width,
                data: &buf[..used],
            };
            if tasks == 1 {
                compute_rows::<K>(cfg, c, 0, p, &packed);
            } else {
                split_rows(c, (m, n), K::MR, tasks)
                    .into_par_iter()
                    .for_each(|(row0, chunk)| compute_rows::<K>(cfg, chunk, row0, p, &packed));
            }
        }
    });
}

/// Splits the `m x n` matrix `c` into `tasks` row ranges (with their first row) whose sizes in
/// `mr`-row tiles differ by at most one, so that equal threads finish together.
fn split_rows(
    c: &mut [f32],
    (m, n): (usize, usize),
    mr: usize,
    tasks: usize,
) -> Vec<(usize, &mut [f32])> {
    let tiles = m.div_ceil(mr);
    let (base, extra) = (tiles / tasks, tiles % tasks);
    let mut out = Vec::with_capacity(tasks);
    let (mut rest, mut row0) = (c, 0);
    for t in 0..tasks {
        let rows = ((base + usize::from(t < extra)) * mr).min(m - row0);
        if rows == 0 {
            break;
        }
        let (head, tail) = rest.split_at_mut(rows * n);
        out.push((row0, head));
        (rest, row0) = (tail, row0 + rows);
    }
    assert_eq!(row0, m, "split_rows: every row belongs to one task");
    out
}

/// How many row tasks a call splits into (1 for small problems).
fn task_count(cfg: &GemmConfig, dims: Dims, mr: usize) -> usize {
    let fmas = dims.m.saturating_mul(dims.n).saturating_mul(dims.k);
    if fmas < cfg.min_parallel_fmas {
        return 1;
    }
    // A few tasks per thread let a thread whose core is busy with other work hand rows to the
    // others (a static split waits for the slowest half).
    let tasks = match (cfg.max_tasks, rayon::current_num_threads()) {
        (0, 1) => 1,
        (0, threads) => threads.saturating_mul(TASKS_PER_THREAD),
        (max, _) => max,
    };
    tasks.min(dims.m.div_ceil(mr)).max(1)
}

/// Packs `B[..][j0..j0 + width]` into `NR`-wide panels of all `K` rows (see [`PackedB`]).
fn pack_b<K: Kernel>(dst: &mut [f32], b: &View<'_>, j0: usize, width: usize, par: bool) {
    let k = dst.len() / width.next_multiple_of(K::NR);
    assert_eq!(
        dst.len(),
        width.next_multiple_of(K::NR) * k,
        "pack_b: buffer size"
    );
    let pack_panel = |(q, panel): (usize, &mut [f32])| {
        let jq = j0 + q * K::NR;
        let valid = K::NR.min(j0 + width - jq);
        if b.cs == 1 {
            for (kk, row) in panel.chunks_exact_mut(K::NR).enumerate() {
                let start = kk * b.rs + jq;
                row[..valid].copy_from_slice(&b.data[start..start + valid]);
                row[valid..].fill(0.0);
            }
        } else {
            for jj in 0..K::NR {
                for kk in 0..k {
                    panel[kk * K::NR + jj] = if jj < valid {
                        b.data[kk * b.rs + (jq + jj) * b.cs]
                    } else {
                        0.0
                    };
                }
            }
        }
    };
    if par {
        dst.par_chunks_mut(k * K::NR)
            .enumerate()
            .for_each(pack_panel);
    } else {
        dst.chunks_mut(k * K::NR).enumerate().for_each(pack_panel);
    }
}

/// Packs rows `i0..i0+mb` of `A[.][pc..pc+kb]` into `MR`-high panels, `dst[panel][kk][r]`,
/// with zero rows past `mb`.
fn pack_a<K: Kernel>(
    dst: &mut [f32],
    a: &View<'_>,
    (pc, kb): (usize, usize),
    i0: usize,
    mb: usize,
) {
    assert_eq!(
        dst.len(),
        mb.next_multiple_of(K::MR) * kb,
        "pack_a: buffer size"
    );
    for (q, panel) in dst.chunks_exact_mut(kb * K::MR).enumerate() {
        let r0 = i0 + q * K::MR;
        let height = K::MR.min(i0 + mb - r0);
        for (kk, col) in panel.chunks_exact_mut(K::MR).enumerate() {
            let base = r0 * a.rs + (pc + kk) * a.cs;
            for (r, slot) in col.iter_mut().enumerate() {
                *slot = if r < height {
                    a.data[base + r * a.rs]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Computes the rows of one task against one packed strip of `B`: `c` holds `C` rows
/// `row0..row0 + c.len() / n`.
fn compute_rows<K: Kernel>(
    cfg: &GemmConfig,
    c: &mut [f32],
    row0: usize,
    p: &Problem<'_>,
    strip: &PackedB<'_>,
) {
    let Dims { k, n, .. } = p.dims;
    let rows = c.len() / n;
    let (kc, mc, nc) = (
        cfg.kc,
        cfg.mc.next_multiple_of(K::MR),
        cfg.nc.next_multiple_of(K::NR),
    );
    // Row-major A is read in place: its rows are contiguous in `k`. Other layouts are packed.
    let direct = p.a.cs == 1;
    let pack_len = if direct {
        0
    } else {
        mc.min(rows.next_multiple_of(K::MR)) * kc.min(k)
    };
    with_scratch(&SCRATCH_A, pack_len, |apack| {
        for jc in (0..strip.width).step_by(nc) {
            let nb = nc.min(strip.width - jc);
            for pc in (0..k).step_by(kc) {
                let kb = kc.min(k - pc);
                let load_c = p.add || pc > 0;
                for ic in (0..rows).step_by(mc) {
                    let mb = mc.min(rows - ic);
                    let a_len = if direct {
                        0
                    } else {
                        mb.next_multiple_of(K::MR) * kb
                    };
                    let apack = &mut apack[..a_len];
                    if !direct {
                        pack_a::<K>(apack, &p.a, (pc, kb), row0 + ic, mb);
                    }
                    for jr in (0..nb).step_by(K::NR) {
                        let nw = K::NR.min(nb - jr);
                        let b = strip.data[((jc + jr) / K::NR) * k * K::NR + pc * K::NR..].as_ptr();
                        for ir in (0..mb).step_by(K::MR) {
                            let mh = K::MR.min(mb - ir);
                            let (a, rs_a, cs_a, a_rows) = if direct {
                                let start = (row0 + ic + ir) * p.a.rs + pc;
                                (p.a.data[start..].as_ptr(), p.a.rs, 1, mh)
                            } else {
                                (apack[(ir / K::MR) * kb * K::MR..].as_ptr(), 1, K::MR, K::MR)
                            };
                            let tile = |c: *mut f32, ldc: usize| Tile {
                                kc: kb,
                                a,
                                rs_a,
                                cs_a,
                                a_rows,
                                b,
                                rs_b: K::NR,
                                c,
                                ldc,
                                load_c,
                            };
                            let c_off = (ic + ir) * n + strip.j0 + jc + jr;
                            if mh == K::MR && nw == K::NR {
                                // SAFETY: the tile lies inside `c` (rows ic+ir..+MR < rows,
                                // columns ..+NR <= n), `a` rows and `b` panels were
                                // bounds-checked by the slicing above, and `run` only picks
                                // kernels the CPU supports.
                                unsafe { K::tile(&tile(c[c_off..].as_mut_ptr(), n)) };
                            } else {
                                edge_tile::<K>(&mut c[c_off..], n, (mh, nw), load_c, |ptr| {
                                    tile(ptr, K::NR)
                                });
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Runs a partial tile through a full-size scratch tile and copies the valid part back.
fn edge_tile<K: Kernel>(
    c: &mut [f32],
    ldc: usize,
    (mh, nw): (usize, usize),
    load_c: bool,
    tile: impl Fn(*mut f32) -> Tile,
) {
    let mut scratch = [0.0f32; TILE_MAX];
    if load_c {
        for r in 0..mh {
            scratch[r * K::NR..r * K::NR + nw].copy_from_slice(&c[r * ldc..r * ldc + nw]);
        }
    }
    // SAFETY: the scratch tile holds MR x NR values at stride NR; the operands are valid as
    // in `compute_rows`.
    unsafe { K::tile(&tile(scratch.as_mut_ptr())) };
    for r in 0..mh {
        c[r * ldc..r * ldc + nw].copy_from_slice(&scratch[r * K::NR..r * K::NR + nw]);
    }
}
