//! Owns: every operator other than the raw GEMM, forward and backward, and the canonical
//! reduction they all sum with.
//!
//! Invariants:
//! - every sum over a row or vector goes through [`reduce_canonical`] (16 sequential lanes, then
//!   a fixed tree); sums over rows of a column (bias, layer-norm and embedding gradients) run
//!   sequentially over rows `0..R`, starting from `+0.0`. Each operator's doc names its order;
//! - threads only split independent outputs (rows, heads, element chunks), so results do not
//!   depend on the thread count; below [`PAR_MIN_ELEMS`] an operator stays on one thread;
//! - no fused multiply-add outside the GEMM; transcendental functions come from `libm`;
//! - operators write into caller-provided buffers and return [`OpError`](crate::tensor::OpError)
//!   when lengths or indices do not match the dimensions.
//!
//! Stability: ALPHA; the set of operators will grow, the numerical definitions are BETA.

mod activation;
mod attention;
mod dropout;
mod embedding;
mod linear;
mod norm;
mod reduce;
mod softmax;

pub use activation::{
    add_assign, add_into, bias_add, bias_grad, gelu_backward, gelu_forward, relu_backward,
    relu_forward, scale_inplace,
};
pub use attention::{AttnDims, attention_backward, attention_forward, merge_heads, split_heads};
pub use dropout::{dropout_backward, dropout_forward, dropout_keep};
pub use embedding::{embedding_backward, embedding_forward};
pub use linear::{linear_backward, linear_forward, matmul_backward};
pub use norm::{layer_norm_backward, layer_norm_forward};
pub use reduce::{LANES, reduce_canonical, sum_canonical};
pub use softmax::{
    cross_entropy, cross_entropy_loss, log_softmax_backward, log_softmax_forward, softmax_backward,
    softmax_forward,
};

use rayon::prelude::*;

/// Below this many elements an operator runs on the calling thread (a rayon dispatch costs
/// microseconds; results are the same either way).
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// Calls `f(row_index, out_row)` for every `cols`-long row of `out`, on several threads when
/// `out` is large. Rows are independent, so the split does not change any result.
fn for_each_row(out: &mut [f32], cols: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    if cols == 0 {
        return;
    }
    if out.len() < PAR_MIN_ELEMS {
        out.chunks_mut(cols)
            .enumerate()
            .for_each(|(r, row)| f(r, row));
    } else {
        let rows_per_task = (PAR_MIN_ELEMS / 4 / cols).max(1);
        out.par_chunks_mut(rows_per_task * cols)
            .enumerate()
            .for_each(|(t, chunk)| {
                for (i, row) in chunk.chunks_mut(cols).enumerate() {
                    f(t * rows_per_task + i, row);
                }
            });
    }
}

/// Calls `f(start_index, out_chunk)` over `out` in chunks (a multiple of 4 elements long, so
/// counter-based random blocks never straddle two chunks), on several threads when large.
fn for_each_chunk(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    const CHUNK: usize = 4096;
    if out.len() < PAR_MIN_ELEMS {
        out.chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    } else {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    }
}

/// `out[c] = sum over r in 0..rows of term(r, c)`, each column summed sequentially over rows
/// from `+0.0` (the column-sequential order of bias and norm-parameter gradients).
fn column_sums(out: &mut [f32], rows: usize, term: impl Fn(usize, usize) -> f32) {
    out.fill(0.0);
    for r in 0..rows {
        for (c, acc) in out.iter_mut().enumerate() {
            *acc += term(r, c);
        }
    }
}
