//! Owns: the deterministic `f32` matrix multiply `C = op(A) * op(B)` (or `C += ...`), its SIMD
//! paths and the choice between them.
//!
//! # Canonical order
//! Every output `C[i][j]` starts at `+0.0` (or at its existing value when accumulating) and
//! then, for `k = 0..K` strictly in order, `acc = fma(A[i][k], B[k][j], acc)` with one
//! accumulator per output. Every path follows this order exactly:
//! - vectors run across output columns `j`, so each lane is a different output and no lane
//!   ever reorders a sum;
//! - blocking over `K` stores the running value to `C` and reloads it (exact);
//! - threads split output rows, never `K`;
//! - edge tiles compute padded rows and columns that are thrown away, never mixed in.
//!
//! So the scalar path ([`f32::mul_add`]), AVX2+FMA (6x16 tile), AVX-512F (8x32 tile) and NEON
//! (8x8 tile) give the same bits, whatever the thread count and blocking parameters.
//!
//! # Path choice
//! [`GemmConfig::global`] reads `POI_SIMD` once (`scalar`, `avx2`, `avx512`, `neon` or `auto`;
//! unset, unknown or unsupported values mean `auto`, the best path the CPU has: results are
//! the same on every path, only speed differs). [`force_path`] overrides it for the process;
//! tests pass an explicit [`GemmConfig`] to [`gemm_with`] instead.
//!
//! Stability: BETA; the canonical order is part of the protocol and will not change.

mod driver;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::tensor::{OpError, OpResult, check_len, checked_elems};

/// A SIMD implementation of the canonical GEMM order. All give identical bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimdPath {
    /// Portable scalar code with [`f32::mul_add`]; the reference.
    Scalar,
    /// x86-64 AVX2 with FMA3, a 6x16 register tile.
    Avx2,
    /// x86-64 AVX-512F, an 8x32 register tile.
    Avx512,
    /// aarch64 Advanced SIMD, an 8x8 register tile.
    Neon,
}

impl SimdPath {
    /// Every path, in order of preference (best last).
    pub const ALL: [SimdPath; 4] = [Self::Scalar, Self::Neon, Self::Avx2, Self::Avx512];

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Self::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The fastest supported path.
    pub fn best() -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|p| p.is_supported())
            .unwrap_or(Self::Scalar)
    }

    /// Every path this CPU supports.
    pub fn supported() -> Vec<Self> {
        Self::ALL.into_iter().filter(|p| p.is_supported()).collect()
    }

    /// The lowercase name used by `POI_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Neon => "neon",
        }
    }

    /// Parses a `POI_SIMD` value; `None` for `auto` and for unknown names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl std::fmt::Display for SimdPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a stored operand is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trans {
    /// As stored: `A` is `m x k`, `B` is `k x n`, row-major.
    No,
    /// Transposed: `A` is stored `k x m`, `B` is stored `n x k`, row-major.
    Yes,
}

/// Whether the product replaces `C` or is added to it (each output starts the canonical
/// chain at its existing value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accumulate {
    /// `C = op(A) * op(B)`.
    Overwrite,
    /// `C += op(A) * op(B)`, as one fused chain per output continuing from `C`.
    Add,
}

/// GEMM dimensions: `C` is `m x n`, the inner dimension is `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Rows of `C` and of `op(A)`.
    pub m: usize,
    /// The inner dimension.
    pub k: usize,
    /// Columns of `C` and of `op(B)`.
    pub n: usize,
}

impl Dims {
    /// `m x k` times `k x n`.
    pub const fn new(m: usize, k: usize, n: usize) -> Self {
        Self { m, k, n }
    }
}

/// Blocking, path and threading parameters. None of them changes any result bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmConfig {
    /// The SIMD path.
    pub path: SimdPath,
    /// Inner-dimension block (`K` is processed in blocks of this size; `>= 1`).
    pub kc: usize,
    /// Row block per cache pass (rounded up to the path's tile height).
    pub mc: usize,
    /// Column block of packed `B` (rounded up to the path's tile width).
    pub nc: usize,
    /// Most row tasks one call splits into (`0`: the current rayon pool's thread count).
    pub max_tasks: usize,
    /// Calls with fewer multiply-adds than this run on the calling thread only.
    pub min_parallel_fmas: usize,
}

/// Default `K` block: a 16-column packed `B` panel of 256 rows is 16 KiB, half of L1.
pub const KC_DEFAULT: usize = 256;
/// Default row block.
pub const MC_DEFAULT: usize = 72;
/// Default column block of packed `B`.
pub const NC_DEFAULT: usize = 256;
/// Below this many multiply-adds (about 50 us on one Zen 3 core), waking other threads costs
/// more than it saves, the more so on a machine whose cores are shared with other work.
pub const MIN_PARALLEL_FMAS: usize = 1 << 21;

impl GemmConfig {
    /// Default blocking on `path` (not checked for support; see [`GemmConfig::with_path`]).
    pub const fn new(path: SimdPath) -> Self {
        Self {
            path,
            kc: KC_DEFAULT,
            mc: MC_DEFAULT,
            nc: NC_DEFAULT,
            max_tasks: 0,
            min_parallel_fmas: MIN_PARALLEL_FMAS,
        }
    }

    /// Default blocking on `path`, or an error if this CPU cannot run it.
    pub fn with_path(path: SimdPath) -> OpResult<Self> {
        if path.is_supported() {
            Ok(Self::new(path))
        } else {
            Err(OpError::Unsupported { path })
        }
    }

    /// The process-wide configuration: `POI_SIMD` read once, or the path given to
    /// [`force_path`].
    pub fn global() -> Self {
        Self::new(active_path())
    }
}

/// 0 = not chosen yet, else 1 + index into `SimdPath::ALL`.
static FORCED: AtomicU8 = AtomicU8::new(0);
static FROM_ENV: OnceLock<SimdPath> = OnceLock::new();

/// The path [`GemmConfig::global`] uses.
pub fn active_path() -> SimdPath {
    match FORCED.load(Ordering::Relaxed) {
        0 => *FROM_ENV.get_or_init(|| {
            std::env::var("POI_SIMD")
                .ok()
                .and_then(|v| SimdPath::parse(&v))
                .filter(|p| p.is_supported())
                .unwrap_or_else(SimdPath::best)
        }),
        i => SimdPath::ALL[usize::from(i - 1)],
    }
}

/// Makes every later default-configured call use `path` (results do not change, only speed).
pub fn force_path(path: SimdPath) -> OpResult<()> {
    if !path.is_supported() {
        return Err(OpError::Unsupported { path });
    }
    let index = SimdPath::ALL.iter().position(|&p| p == path).unwrap_or(0);
    FORCED.store(index as u8 + 1, Ordering::Relaxed);
    Ok(())
}

/// `C = op(A) * op(B)` or `C += op(A) * op(B)` in the canonical order, with the global
/// configuration. `c` is `m x n` row-major; `a` and `b` are stored as [`Trans`] says.
pub fn gemm(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    dims: Dims,
    acc: Accumulate,
) -> OpResult<()> {
    gemm_with(&GemmConfig::global(), c, a, ta, b, tb, dims, acc)
}

/// [`gemm`] with an explicit configuration (for tests and benches).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(
    cfg: &GemmConfig,
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    dims: Dims,
    acc: Accumulate,
) -> OpResult<()> {
    const OP: &str = "gemm";
    let Dims { m, k, n } = dims;
    check_len(OP, "c", c.len(), checked_elems(OP, &[m, n])?)?;
    check_len(OP, "a", a.len(), checked_elems(OP, &[m, k])?)?;
    check_len(OP, "b", b.len(), checked_elems(OP, &[k, n])?)?;
    if !cfg.path.is_supported() {
        return Err(OpError::Unsupported { path: cfg.path });
    }
    if cfg.kc == 0 || cfg.mc == 0 || cfg.nc == 0 {
        return Err(OpError::Shape {
            op: OP,
            detail: format!("zero block size in {cfg:?}"),
        });
    }
    // Strides in elements: (row stride, column stride) of the logical matrix.
    let a_view = match ta {
        Trans::No => driver::View {
            data: a,
            rs: k,
            cs: 1,
        },
        Trans::Yes => driver::View {
            data: a,
            rs: 1,
            cs: m,
        },
    };
    let b_view = match tb {
        Trans::No => driver::View {
            data: b,
            rs: n,
            cs: 1,
        },
        Trans::Yes => driver::View {
            data: b,
            rs: 1,
            cs: k,
        },
    };
    let problem = driver::Problem {
        a: a_view,
        b: b_view,
        dims,
        add: acc == Accumulate::Add,
    };
    driver::run(cfg, c, &problem);
    Ok(())
}

/// `out = a * b` with `a` `m x k` and `b` `k x n` (the forward pass of a linear layer).
pub fn matmul_into(out: &mut [f32], a: &[f32], b: &[f32], dims: Dims) -> OpResult<()> {
    gemm(out, a, Trans::No, b, Trans::No, dims, Accumulate::Overwrite)
}

/// `out += a * b` with `a` `m x k` and `b` `k x n`.
pub fn matmul_acc_into(out: &mut [f32], a: &[f32], b: &[f32], dims: Dims) -> OpResult<()> {
    gemm(out, a, Trans::No, b, Trans::No, dims, Accumulate::Add)
}

/// `out = a^T * b` with `a` stored `k x m` and `b` `k x n` (a weight gradient).
pub fn matmul_at_b_into(out: &mut [f32], a: &[f32], b: &[f32], dims: Dims) -> OpResult<()> {
    gemm(
        out,
        a,
        Trans::Yes,
        b,
        Trans::No,
        dims,
        Accumulate::Overwrite,
    )
}

/// `out = a * b^T` with `a` `m x k` and `b` stored `n x k` (an input gradient).
pub fn matmul_a_bt_into(out: &mut [f32], a: &[f32], b: &[f32], dims: Dims) -> OpResult<()> {
    gemm(
        out,
        a,
        Trans::No,
        b,
        Trans::Yes,
        dims,
        Accumulate::Overwrite,
    )
}

/// The canonical order written as plainly as possible: a triple loop with
/// [`f32::mul_add`] that continues each output's chain from its value in `c` (zero `c` first
/// for the overwrite form). Every path must equal it bit for bit; tests compare against it.
///
/// # Panics
/// If a buffer length does not match `dims` (it is a test oracle, not an operator).
pub fn reference_gemm(c: &mut [f32], a: &[f32], ta: Trans, b: &[f32], tb: Trans, dims: Dims) {
    let Dims { m, k, n } = dims;
    assert_eq!(c.len(), m * n, "reference_gemm: c");
    assert_eq!(a.len(), m * k, "reference_gemm: a");
    assert_eq!(b.len(), k * n, "reference_gemm: b");
    for i in 0..m {
        for j in 0..n {
            let mut acc = c[i * n + j];
            for p in 0..k {
                let x = if ta == Trans::No {
                    a[i * k + p]
                } else {
                    a[p * m + i]
                };
                let y = if tb == Trans::No {
                    b[p * n + j]
                } else {
                    b[j * k + p]
                };
                acc = x.mul_add(y, acc);
            }
            c[i * n + j] = acc;
        }
    }
}
