//! Reproducible AI work: the engine the Proof-of-Intelligence protocol stands on.
//!
//! Everything here is bitwise reproducible: the same inputs give the same bits whatever the
//! thread count, the SIMD width chosen at run time and the optimisation level. Reductions follow
//! one canonical order that every code path (scalar, AVX2, AVX-512, NEON) follows exactly;
//! fused multiply-add appears only where that order says so; transcendental functions come
//! from the `libm` crate; NaNs are canonicalised before hashing.
//!
//! - [`gemm`]: the deterministic f32 matrix multiply.
//! - [`kernels`]: every other operator, forward and backward.
//! - [`rng`]: the seeded counter-based random number generator.
//! - [`optim`]: SGD with momentum and AdamW.
//! - [`data`]: real datasets shipped in crates, the sharded dataset format, splits.
//! - [`commit`]: step digests, Merkle commitments, checkpoints and their proofs.
//! - [`model`]: the MLP classifier and the character transformer LM.
//! - [`exec`], [`meter`], [`trace`]: metered operator calls, operator traces, re-execution.
//! - [`train`]: job specs, the committed training loop, checkpoints and replay.

pub mod backend;
pub mod commit;
pub mod data;
pub mod exec;
pub mod gemm;
pub mod kernels;
pub mod meter;
pub mod model;
pub mod optim;
pub mod rng;
pub mod tensor;
pub mod trace;
pub mod train;
pub mod valuation;
