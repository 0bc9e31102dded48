//! One pre-LN transformer block of [`super::CharLm`]: forward, backward and its buffers.
//!
//! `x1 = x + Wo·attn(split(LN1(x)·Wq), split(LN1(x)·Wk), split(LN1(x)·Wv))`,
//! `out = x1 + Wproj·gelu(Wfc·LN2(x1))` (every linear with a bias). Call order, forward:
//! `layer_norm`, `linear` q, k, v, `split_heads` q, k, v, `attention`, `merge_heads`,
//! `linear` o, `add_into`, `layer_norm`, `linear` fc, `gelu`, `linear` proj, `add_into`.
//! Backward runs the mirror image (see [`backward`]).

use crate::commit::OwnedTensor;
use crate::exec::Exec;
use crate::gemm::Dims;
use crate::kernels::AttnDims;
use crate::tensor::OpResult;

/// Parameters per block, in digest order.
pub(crate) const BLOCK_PARAMS: [&str; 16] = [
    "ln1.gamma",
    "ln1.beta",
    "attn.q.weight",
    "attn.q.bias",
    "attn.k.weight",
    "attn.k.bias",
    "attn.v.weight",
    "attn.v.bias",
    "attn.o.weight",
    "attn.o.bias",
    "ln2.gamma",
    "ln2.beta",
    "mlp.fc.weight",
    "mlp.fc.bias",
    "mlp.proj.weight",
    "mlp.proj.bias",
];

/// Layer norm epsilon.
pub(crate) const LN_EPS: f32 = 1e-5;

/// Batch geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub(crate) b: usize,
    pub(crate) t: usize,
    pub(crate) d: usize,
    pub(crate) heads: usize,
    pub(crate) dff: usize,
}

impl Geom {
    pub(crate) fn n(&self) -> usize {
        self.b * self.t
    }
    fn attn(&self) -> AttnDims {
        AttnDims {
            bh: self.b * self.heads,
            t: self.t,
            dh: self.d / self.heads,
        }
    }
    fn heads_shape(&self) -> (usize, usize, usize, usize) {
        (self.b, self.t, self.heads, self.d / self.heads)
    }
}

/// Saved activations of one block.
#[derive(Debug, Clone)]
pub(crate) struct BlockWs {
    a: Vec<f32>,
    mean1: Vec<f32>,
    rstd1: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qh: Vec<f32>,
    kh: Vec<f32>,
    vh: Vec<f32>,
    oh: Vec<f32>,
    probs: Vec<f32>,
    o: Vec<f32>,
    proj: Vec<f32>,
    x1: Vec<f32>,
    m: Vec<f32>,
    mean2: Vec<f32>,
    rstd2: Vec<f32>,
    h: Vec<f32>,
    g: Vec<f32>,
    f: Vec<f32>,
}

/// Gradient scratch shared by every block.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    dg: Vec<f32>,
    dh: Vec<f32>,
    dm: Vec<f32>,
    dxln: Vec<f32>,
    dx1: Vec<f32>,
    d_o: Vec<f32>,
    doh: Vec<f32>,
    dqh: Vec<f32>,
    dkh: Vec<f32>,
    dvh: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    da: Vec<f32>,
    da_tmp: Vec<f32>,
}

impl BlockWs {
    pub(crate) fn new(g: Geom) -> Self {
        let (n, d) = (g.n(), g.d);
        let z = |len: usize| vec![0.0f32; len];
        let bh = g.b * g.heads;
        Self {
            a: z(n * d),
            mean1: z(n),
            rstd1: z(n),
            q: z(n * d),
            k: z(n * d),
            v: z(n * d),
            qh: z(n * d),
            kh: z(n * d),
            vh: z(n * d),
            oh: z(n * d),
            probs: z(bh * g.t * g.t),
            o: z(n * d),
            proj: z(n * d),
            x1: z(n * d),
            m: z(n * d),
            mean2: z(n),
            rstd2: z(n),
            h: z(n * g.dff),
            g: z(n * g.dff),
            f: z(n * d),
        }
    }
}

impl Scratch {
    pub(crate) fn new(g: Geom) -> Self {
        let (n, d) = (g.n(), g.d);
        let z = |len: usize| vec![0.0f32; len];
        Self {
            dg: z(n * g.dff),
            dh: z(n * g.dff),
            dm: z(n * d),
            dxln: z(n * d),
            dx1: z(n * d),
            d_o: z(n * d),
            doh: z(n * d),
            dqh: z(n * d),
            dkh: z(n * d),
            dvh: z(n * d),
            dq: z(n * d),
            dk: z(n * d),
            dv: z(n * d),
            da: z(n * d),
            da_tmp: z(n * d),
        }
    }
}

/// Runs the block on `x` (`n x d`), writing `out`.
pub(crate) fn forward(
    exec: &mut Exec<'_>,
    p: &[OwnedTensor],
    x: &[f32],
    out: &mut [f32],
    ws: &mut BlockWs,
    g: Geom,
) -> OpResult<()> {
    let (n, d) = (g.n(), g.d);
    let w = |i: usize| p[i].data.as_slice();
    let lin = Dims::new(n, d, d);
    let nd = (n, d);
    exec.layer_norm(
        &mut ws.a,
        (&mut ws.mean1, &mut ws.rstd1),
        x,
        (w(0), w(1)),
        nd,
        LN_EPS,
    )?;
    exec.linear(&mut ws.q, &ws.a, w(2), Some(w(3)), lin)?;
    exec.linear(&mut ws.k, &ws.a, w(4), Some(w(5)), lin)?;
    exec.linear(&mut ws.v, &ws.a, w(6), Some(w(7)), lin)?;
    let hs = g.heads_shape();
    exec.heads(false, &mut ws.qh, &ws.q, hs)?;
    exec.heads(false, &mut ws.kh, &ws.k, hs)?;
    exec.heads(false, &mut ws.vh, &ws.v, hs)?;
    exec.attention(
        &mut ws.oh,
        &mut ws.probs,
        (&ws.qh, &ws.kh, &ws.vh),
        g.attn(),
    )?;
    exec.heads(true, &mut ws.o, &ws.oh, hs)?;
    exec.linear(&mut ws.proj, &ws.o, w(8), Some(w(9)), lin)?;
    exec.add_into(&mut ws.x1, x, &ws.proj)?;
    exec.layer_norm(
        &mut ws.m,
        (&mut ws.mean2, &mut ws.rstd2),
        &ws.x1,
        (w(10), w(11)),
        nd,
        LN_EPS,
    )?;
    exec.linear(&mut ws.h, &ws.m, w(12), Some(w(13)), Dims::new(n, d, g.dff))?;
    exec.activation(true, &mut ws.g, &ws.h)?;
    exec.linear(&mut ws.f, &ws.g, w(14), Some(w(15)), Dims::new(n, g.dff, d))?;
    exec.add_into(out, &ws.x1, &ws.f)
}

/// `(&mut grads[i], &mut grads[i + 1])`.
fn pair(grads: &mut [Vec<f32>], i: usize) -> (&mut [f32], &mut [f32]) {
    let (lo, hi) = grads.split_at_mut(i + 1);
    (&mut lo[i], &mut hi[0])
}

/// Gradients of the block: `dout` is the gradient of its output, `dx` receives the
/// gradient of its input `x`; parameter gradients go to `grads` (the block's 16).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    exec: &mut Exec<'_>,
    p: &[OwnedTensor],
    grads: &mut [Vec<f32>],
    x: &[f32],
    (dout, dx): (&[f32], &mut [f32]),
    ws: &BlockWs,
    s: &mut Scratch,
    g: Geom,
) -> OpResult<()> {
    let (n, d) = (g.n(), g.d);
    let w = |i: usize| p[i].data.as_slice();
    let (lin, nd) = (Dims::new(n, d, d), (n, d));
    // MLP branch.
    let (dw, db) = pair(grads, 14);
    exec.linear_backward(
        Some(&mut s.dg),
        dw,
        Some(db),
        (&ws.g, w(14), dout),
        Dims::new(n, g.dff, d),
    )?;
    exec.activation_backward(true, &mut s.dh, &s.dg, &ws.h)?;
    let (dw, db) = pair(grads, 12);
    exec.linear_backward(
        Some(&mut s.dm),
        dw,
        Some(db),
        (&ws.m, w(12), &s.dh),
        Dims::new(n, d, g.dff),
    )?;
    let (dgam, dbet) = pair(grads, 10);
    let saved = (ws.mean2.as_slice(), ws.rstd2.as_slice());
    exec.layer_norm_backward(&mut s.dxln, (dgam, dbet), &s.dm, &ws.x1, w(10), saved, nd)?;
    exec.add_into(&mut s.dx1, dout, &s.dxln)?;
    // Attention branch.
    let (dw, db) = pair(grads, 8);
    exec.linear_backward(Some(&mut s.d_o), dw, Some(db), (&ws.o, w(8), &s.dx1), lin)?;
    let hs = g.heads_shape();
    exec.heads(false, &mut s.doh, &s.d_o, hs)?;
    let qkv = (ws.qh.as_slice(), ws.kh.as_slice(), ws.vh.as_slice());
    exec.attention_backward(
        (&mut s.dqh, &mut s.dkh, &mut s.dvh),
        &s.doh,
        qkv,
        &ws.probs,
        g.attn(),
    )?;
    exec.heads(true, &mut s.dq, &s.dqh, hs)?;
    exec.heads(true, &mut s.dk, &s.dkh, hs)?;
    exec.heads(true, &mut s.dv, &s.dvh, hs)?;
    let (dw, db) = pair(grads, 2);
    exec.linear_backward(Some(&mut s.da), dw, Some(db), (&ws.a, w(2), &s.dq), lin)?;
    let (dw, db) = pair(grads, 4);
    exec.linear_backward(Some(&mut s.da_tmp), dw, Some(db), (&ws.a, w(4), &s.dk), lin)?;
    exec.add_assign(&mut s.da, &s.da_tmp)?;
    let (dw, db) = pair(grads, 6);
    exec.linear_backward(Some(&mut s.da_tmp), dw, Some(db), (&ws.a, w(6), &s.dv), lin)?;
    exec.add_assign(&mut s.da, &s.da_tmp)?;
    let (dgam, dbet) = pair(grads, 0);
    let saved = (ws.mean1.as_slice(), ws.rstd1.as_slice());
    exec.layer_norm_backward(&mut s.dxln, (dgam, dbet), &s.da, x, w(0), saved, nd)?;
    exec.add_into(dx, &s.dx1, &s.dxln)
}
