//! Owns: the [`Backend`] seam between models and kernels, and [`CpuBackend`], the reference
//! implementation.
//!
//! Models call operators only through a `Backend`, so an accelerator backend (CUDA) can be
//! added later and checked bit for bit against `CpuBackend` on the same inputs. Every method
//! has the exact numerical definition of the kernel it names in [`crate::kernels`],
//! [`crate::gemm`] or [`crate::optim`]; a backend that cannot reproduce a definition must not
//! implement it differently. Buffers are host slices for now; a device backend will add an
//! associated buffer type when it exists.
//!
//! Stability: ALPHA; methods are added as models need them.

use crate::gemm::{self, Accumulate, Dims, Trans};
use crate::kernels::{self, AttnDims};
use crate::optim::{AdamW, Sgd};
use crate::tensor::OpResult;

/// The operators a model may call. Shapes are explicit; outputs are written into the first
/// (`&mut`) arguments; bad shapes or indices return an error, never panic.
#[allow(clippy::too_many_arguments)]
pub trait Backend: Send + Sync {
    /// A short name for logs (`"cpu"`).
    fn name(&self) -> &'static str;

    /// `c (+)= op(a) * op(b)` in the canonical order ([`gemm::gemm`]).
    fn gemm(
        &self,
        c: &mut [f32],
        a: &[f32],
        ta: Trans,
        b: &[f32],
        tb: Trans,
        dims: Dims,
        acc: Accumulate,
    ) -> OpResult<()>;
    /// `y = x * w (+ b)` ([`kernels::linear_forward`]).
    fn linear_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        dims: Dims,
    ) -> OpResult<()>;
    /// Gradients of the linear layer ([`kernels::linear_backward`]).
    fn linear_backward(
        &self,
        dx: Option<&mut [f32]>,
        dw: &mut [f32],
        db: Option<&mut [f32]>,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        dims: Dims,
    ) -> OpResult<()>;
    /// `x[r][c] += bias[c]` ([`kernels::bias_add`]).
    fn bias_add(&self, x: &mut [f32], bias: &[f32], rows: usize, cols: usize) -> OpResult<()>;
    /// Column sums of `dy` ([`kernels::bias_grad`]).
    fn bias_grad(&self, dbias: &mut [f32], dy: &[f32], rows: usize, cols: usize) -> OpResult<()>;
    /// ReLU ([`kernels::relu_forward`]).
    fn relu_forward(&self, y: &mut [f32], x: &[f32]) -> OpResult<()>;
    /// ReLU gradient ([`kernels::relu_backward`]).
    fn relu_backward(&self, dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()>;
    /// Tanh GELU ([`kernels::gelu_forward`]).
    fn gelu_forward(&self, y: &mut [f32], x: &[f32]) -> OpResult<()>;
    /// Tanh GELU gradient ([`kernels::gelu_backward`]).
    fn gelu_backward(&self, dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()>;
    /// `out = a + b` ([`kernels::add_into`]).
    fn add_into(&self, out: &mut [f32], a: &[f32], b: &[f32]) -> OpResult<()>;
    /// `acc += x` ([`kernels::add_assign`]).
    fn add_assign(&self, acc: &mut [f32], x: &[f32]) -> OpResult<()>;
    /// Row softmax ([`kernels::softmax_forward`]).
    fn softmax_forward(&self, y: &mut [f32], x: &[f32], rows: usize, cols: usize) -> OpResult<()>;
    /// Row softmax gradient ([`kernels::softmax_backward`]).
    fn softmax_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        y: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()>;
    /// Row log-softmax ([`kernels::log_softmax_forward`]).
    fn log_softmax_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()>;
    /// Row log-softmax gradient ([`kernels::log_softmax_backward`]).
    fn log_softmax_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        y: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()>;
    /// Mean cross-entropy and its gradient ([`kernels::cross_entropy`]).
    fn cross_entropy(
        &self,
        dlogits: &mut [f32],
        logits: &[f32],
        targets: &[u32],
        rows: usize,
        classes: usize,
    ) -> OpResult<f32>;
    /// Layer norm; saves `mean` and `rstd` per row ([`kernels::layer_norm_forward`]).
    fn layer_norm_forward(
        &self,
        y: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> OpResult<()>;
    /// Layer norm gradients ([`kernels::layer_norm_backward`]).
    fn layer_norm_backward(
        &self,
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        saved: (&[f32], &[f32]),
        rows: usize,
        cols: usize,
    ) -> OpResult<()>;
    /// Embedding lookup ([`kernels::embedding_forward`]).
    fn embedding_forward(
        &self,
        out: &mut [f32],
        table: &[f32],
        ids: &[u32],
        vocab: usize,
        dim: usize,
    ) -> OpResult<()>;
    /// Embedding scatter-add gradient ([`kernels::embedding_backward`]).
    fn embedding_backward(
        &self,
        dtable: &mut [f32],
        dout: &[f32],
        ids: &[u32],
        vocab: usize,
        dim: usize,
    ) -> OpResult<()>;
    /// Causal attention; saves probabilities ([`kernels::attention_forward`]).
    fn attention_forward(
        &self,
        out: &mut [f32],
        probs: &mut [f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dims: AttnDims,
    ) -> OpResult<()>;
    /// Causal attention gradients ([`kernels::attention_backward`]).
    fn attention_backward(
        &self,
        dq: &mut [f32],
        dk: &mut [f32],
        dv: &mut [f32],
        dout: &[f32],
        qkv: (&[f32], &[f32], &[f32]),
        probs: &[f32],
        dims: AttnDims,
    ) -> OpResult<()>;
    /// Inverted dropout from `(seed, stream)` ([`kernels::dropout_forward`]).
    fn dropout_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        p: f32,
        seed: u64,
        stream: u64,
    ) -> OpResult<()>;
    /// Dropout gradient with the same mask ([`kernels::dropout_backward`]).
    fn dropout_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        p: f32,
        seed: u64,
        stream: u64,
    ) -> OpResult<()>;
    /// One SGD step ([`Sgd::step`]).
    fn sgd_step(
        &self,
        opt: &Sgd,
        weights: &mut [f32],
        velocity: &mut [f32],
        grads: &[f32],
    ) -> OpResult<()>;
    /// One AdamW step at 1-based step `t` ([`AdamW::step`]).
    fn adamw_step(
        &self,
        opt: &AdamW,
        weights: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        grads: &[f32],
        t: u32,
    ) -> OpResult<()>;
}

/// The CPU reference backend: the kernels of this crate, on the rayon pool the caller runs in,
/// with the process-wide SIMD path ([`gemm::active_path`]); no path or thread count changes a
/// bit.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// The CPU backend.
    pub const fn new() -> Self {
        Self
    }
}

#[allow(clippy::too_many_arguments)]
impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }
    fn gemm(
        &self,
        c: &mut [f32],
        a: &[f32],
        ta: Trans,
        b: &[f32],
        tb: Trans,
        dims: Dims,
        acc: Accumulate,
    ) -> OpResult<()> {
        gemm::gemm(c, a, ta, b, tb, dims, acc)
    }
    fn linear_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        dims: Dims,
    ) -> OpResult<()> {
        kernels::linear_forward(y, x, w, b, dims)
    }
    fn linear_backward(
        &self,
        dx: Option<&mut [f32]>,
        dw: &mut [f32],
        db: Option<&mut [f32]>,
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        dims: Dims,
    ) -> OpResult<()> {
        kernels::linear_backward(dx, dw, db, (x, w, dy), dims)
    }
    fn bias_add(&self, x: &mut [f32], bias: &[f32], rows: usize, cols: usize) -> OpResult<()> {
        kernels::bias_add(x, bias, rows, cols)
    }
    fn bias_grad(&self, dbias: &mut [f32], dy: &[f32], rows: usize, cols: usize) -> OpResult<()> {
        kernels::bias_grad(dbias, dy, rows, cols)
    }
    fn relu_forward(&self, y: &mut [f32], x: &[f32]) -> OpResult<()> {
        kernels::relu_forward(y, x)
    }
    fn relu_backward(&self, dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()> {
        kernels::relu_backward(dx, dy, x)
    }
    fn gelu_forward(&self, y: &mut [f32], x: &[f32]) -> OpResult<()> {
        kernels::gelu_forward(y, x)
    }
    fn gelu_backward(&self, dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()> {
        kernels::gelu_backward(dx, dy, x)
    }
    fn add_into(&self, out: &mut [f32], a: &[f32], b: &[f32]) -> OpResult<()> {
        kernels::add_into(out, a, b)
    }
    fn add_assign(&self, acc: &mut [f32], x: &[f32]) -> OpResult<()> {
        kernels::add_assign(acc, x)
    }
    fn softmax_forward(&self, y: &mut [f32], x: &[f32], rows: usize, cols: usize) -> OpResult<()> {
        kernels::softmax_forward(y, x, rows, cols)
    }
    fn softmax_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        y: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()> {
        kernels::softmax_backward(dx, dy, y, rows, cols)
    }
    fn log_softmax_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()> {
        kernels::log_softmax_forward(y, x, rows, cols)
    }
    fn log_softmax_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        y: &[f32],
        rows: usize,
        cols: usize,
    ) -> OpResult<()> {
        kernels::log_softmax_backward(dx, dy, y, rows, cols)
    }
    fn cross_entropy(
        &self,
        dlogits: &mut [f32],
        logits: &[f32],
        targets: &[u32],
        rows: usize,
        classes: usize,
    ) -> OpResult<f32> {
        kernels::cross_entropy(dlogits, logits, targets, rows, classes)
    }
    fn layer_norm_forward(
        &self,
        y: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        rows: usize,
        cols: usize,
        eps: f32,
    ) -> OpResult<()> {
        kernels::layer_norm_forward(y, mean, rstd, x, gamma, beta, (rows, cols), eps)
    }
    fn layer_norm_backward(
        &self,
        dx: &mut [f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        saved: (&[f32], &[f32]),
        rows: usize,
        cols: usize,
    ) -> OpResult<()> {
        kernels::layer_norm_backward(dx, dgamma, dbeta, dy, x, gamma, saved, (rows, cols))
    }
    fn embedding_forward(
        &self,
        out: &mut [f32],
        table: &[f32],
        ids: &[u32],
        vocab: usize,
        dim: usize,
    ) -> OpResult<()> {
        kernels::embedding_forward(out, table, ids, vocab, dim)
    }
    fn embedding_backward(
        &self,
        dtable: &mut [f32],
        dout: &[f32],
        ids: &[u32],
        vocab: usize,
        dim: usize,
    ) -> OpResult<()> {
        kernels::embedding_backward(dtable, dout, ids, vocab, dim)
    }
    fn attention_forward(
        &self,
        out: &mut [f32],
        probs: &mut [f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        dims: AttnDims,
    ) -> OpResult<()> {
        kernels::attention_forward(out, probs, (q, k, v), dims)
    }
    fn attention_backward(
        &self,
        dq: &mut [f32],
        dk: &mut [f32],
        dv: &mut [f32],
        dout: &[f32],
        qkv: (&[f32], &[f32], &[f32]),
        probs: &[f32],
        dims: AttnDims,
    ) -> OpResult<()> {
        kernels::attention_backward((dq, dk, dv), dout, qkv, probs, dims)
    }
    fn dropout_forward(
        &self,
        y: &mut [f32],
        x: &[f32],
        p: f32,
        seed: u64,
        stream: u64,
    ) -> OpResult<()> {
        kernels::dropout_forward(y, x, p, seed, stream)
    }
    fn dropout_backward(
        &self,
        dx: &mut [f32],
        dy: &[f32],
        p: f32,
        seed: u64,
        stream: u64,
    ) -> OpResult<()> {
        kernels::dropout_backward(dx, dy, p, seed, stream)
    }
    fn sgd_step(
        &self,
        opt: &Sgd,
        weights: &mut [f32],
        velocity: &mut [f32],
        grads: &[f32],
    ) -> OpResult<()> {
        opt.step(weights, velocity, grads)
    }
    fn adamw_step(
        &self,
        opt: &AdamW,
        weights: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        grads: &[f32],
        t: u32,
    ) -> OpResult<()> {
        opt.step(weights, (m, v), grads, t)
    }
}
