//! Owns: the optimisers, SGD with momentum and AdamW, as elementwise updates.
//!
//! Invariant: every parameter's update is a fixed expression of its own weight, gradient and
//! state, evaluated in the order written below (no fma; `libm::powf` and `f32::sqrt`), so
//! updates are the same on every machine and thread count.
//!
//! Stability: BETA; the update formulas are part of the protocol.

use crate::tensor::{OpError, OpResult, check_len};

/// Elements per parallel chunk.
const CHUNK: usize = 4096;

/// SGD with momentum and L2 weight decay (PyTorch's `SGD`, dampening 0, no Nesterov):
/// `g' = g + wd * w`, `v = mu * v + g'`, `w = w - lr * v`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum `mu` (0 for plain SGD).
    pub momentum: f32,
    /// Weight decay `wd` (0 for none).
    pub weight_decay: f32,
}

/// AdamW (Loshchilov & Hutter; PyTorch's `AdamW`) at step `t >= 1`:
/// `w = w - (lr * wd) * w` (decoupled decay, first), `m = b1 * m + (1 - b1) * g`,
/// `v = b2 * v + (1 - b2) * (g * g)`, `mhat = m / (1 - powf(b1, t))`,
/// `vhat = v / (1 - powf(b2, t))`, `w = w - lr * (mhat / (sqrt(vhat) + eps))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay `b1`.
    pub beta1: f32,
    /// Second-moment decay `b2`.
    pub beta2: f32,
    /// Denominator guard `eps`.
    pub eps: f32,
    /// Decoupled weight decay `wd`.
    pub weight_decay: f32,
}

impl Default for AdamW {
    /// PyTorch's defaults: `lr 1e-3, b1 0.9, b2 0.999, eps 1e-8, wd 0.01`.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

fn check_param(op: &'static str, name: &'static str, value: f32, ok: bool) -> OpResult<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(OpError::Parameter { op, name, value })
    }
}

/// Runs `f(start, w, s1, s2)` on matching chunks of the buffers (`s2` may be empty), in
/// parallel when they are large; every element's update is independent.
fn zip_chunks(
    w: &mut [f32],
    s1: &mut [f32],
    s2: &mut [f32],
    f: impl Fn(usize, &mut [f32], &mut [f32], &mut [f32]) + Sync + Send,
) {
    use rayon::prelude::*;
    let parallel = w.len() >= crate::kernels::PAR_MIN_ELEMS;
    if parallel && !s2.is_empty() {
        w.par_chunks_mut(CHUNK)
            .zip(s1.par_chunks_mut(CHUNK))
            .zip(s2.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, ((a, b), c))| f(i * CHUNK, a, b, c));
    } else if parallel {
        w.par_chunks_mut(CHUNK)
            .zip(s1.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, (a, b))| f(i * CHUNK, a, b, &mut []));
    } else {
        f(0, w, s1, s2);
    }
}

impl Sgd {
    /// One step: updates `weights` and the momentum buffer `velocity` from `grads`.
    pub fn step(&self, weights: &mut [f32], velocity: &mut [f32], grads: &[f32]) -> OpResult<()> {
        const OP: &str = "sgd_step";
        check_len(OP, "velocity", velocity.len(), weights.len())?;
        check_len(OP, "grads", grads.len(), weights.len())?;
        check_param(OP, "lr", self.lr, true)?;
        check_param(OP, "momentum", self.momentum, self.momentum >= 0.0)?;
        check_param(
            OP,
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
        )?;
        let Self {
            lr,
            momentum,
            weight_decay,
        } = *self;
        zip_chunks(weights, velocity, &mut [], |start, w, v, _| {
            for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(&grads[start..]) {
                let g = g + weight_decay * *w;
                *v = momentum * *v + g;
                *w -= lr * *v;
            }
        });
        Ok(())
    }
}

impl AdamW {
    /// Step `t` (1-based): updates `weights` and the moment buffers `m`, `v` from `grads`.
    pub fn step(
        &self,
        weights: &mut [f32],
        (m, v): (&mut [f32], &mut [f32]),
        grads: &[f32],
        t: u32,
    ) -> OpResult<()> {
        const OP: &str = "adamw_step";
        for (name, len) in [("m", m.len()), ("v", v.len()), ("grads", grads.len())] {
            check_len(OP, name, len, weights.len())?;
        }
        check_param(OP, "lr", self.lr, true)?;
        check_param(OP, "beta1", self.beta1, (0.0..1.0).contains(&self.beta1))?;
        check_param(OP, "beta2", self.beta2, (0.0..1.0).contains(&self.beta2))?;
        check_param(OP, "eps", self.eps, self.eps > 0.0)?;
        check_param(
            OP,
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
        )?;
        check_param(OP, "t", t as f32, t >= 1)?;
        let Self {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } = *self;
        let (one_b1, one_b2) = (1.0 - beta1, 1.0 - beta2);
        let bc1 = 1.0 - libm::powf(beta1, t as f32);
        let bc2 = 1.0 - libm::powf(beta2, t as f32);
        let decay = lr * weight_decay;
        zip_chunks(weights, m, v, |start, w, m, v| {
            for (((w, m), v), &g) in w.iter_mut().zip(m).zip(v).zip(&grads[start..]) {
                *w -= decay * *w;
                *m = beta1 * *m + one_b1 * g;
                *v = beta2 * *v + one_b2 * (g * g);
                let mhat = *m / bc1;
                let vhat = *v / bc2;
                *w -= lr * (mhat / (vhat.sqrt() + eps));
            }
        });
        Ok(())
    }
}
