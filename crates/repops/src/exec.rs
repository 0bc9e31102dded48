//! Owns: [`Exec`], the one door through which models call operators: it runs each call on a
//! [`Backend`], meters it, and on request records each call's per-output digests (the
//! operator trace) and captures calls' inputs for single-operator re-execution.
//!
//! Invariants: calls are numbered `0, 1, ...` in the order the model makes them (forward,
//! then backward, then optimizer, then, when tracing or capturing, the `step_state`
//! pseudo-operator), which is fixed by the model's code, not by threads; output `j` of call
//! `i` is recorded as [`crate::trace::tensor_digest`] of that output, in the order
//! [`crate::trace::execute`] documents; recording never changes a result bit.
//!
//! Stability: ALPHA.

use std::time::Instant;

use crate::backend::Backend;
use crate::commit::{Digest, NamedTensor, state_digests};
use crate::gemm::Dims;
use crate::kernels::{self, AttnDims};
use crate::meter::{Meter, OpKind, op_cost};
use crate::optim::{AdamW, Sgd};
use crate::tensor::OpResult;
use crate::trace::{OpCall, TraceEntry, execute, tensor_digest};
use crate::train::Result;

/// Which calls an [`Exec`] copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    One(u32),
    All,
}

/// Runs operators for a model, metering, tracing and capturing as configured.
pub struct Exec<'b> {
    backend: &'b dyn Backend,
    meter: Meter,
    trace: Option<Vec<TraceEntry>>,
    capture: Capture,
    captured: Vec<OpCall>,
    next: u32,
}

fn u(x: usize) -> u64 {
    x as u64
}

impl<'b> Exec<'b> {
    /// Plain execution with metering.
    pub fn new(backend: &'b dyn Backend) -> Self {
        Self {
            backend,
            meter: Meter::new(),
            trace: None,
            capture: Capture::None,
            captured: Vec::new(),
            next: 0,
        }
    }

    /// Also record every call's per-output digests.
    pub fn with_trace(mut self) -> Self {
        self.trace = Some(Vec::new());
        self
    }

    /// Also copy the inputs of call `index` (numbered from the next call made).
    pub fn with_capture(mut self, index: u32) -> Self {
        self.capture = Capture::One(index);
        self
    }

    /// Also copy the inputs of every call (for validating a [`crate::trace::Layout`]; it
    /// copies every input of a step, so it is meant for small models).
    pub fn with_capture_all(mut self) -> Self {
        self.capture = Capture::All;
        self
    }

    /// The backend calls run on.
    pub fn backend(&self) -> &'b dyn Backend {
        self.backend
    }

    /// Costs and wall times so far.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Takes the meter, leaving an empty one.
    pub fn take_meter(&mut self) -> Meter {
        std::mem::take(&mut self.meter)
    }

    /// The trace recorded so far (empty unless [`Self::with_trace`]).
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The captured call, once it has run ([`Self::with_capture`]).
    pub fn take_captured(&mut self) -> Option<OpCall> {
        self.captured.pop()
    }

    /// Every captured call so far, in call order ([`Self::with_capture_all`]).
    pub fn take_captures(&mut self) -> Vec<OpCall> {
        std::mem::take(&mut self.captured)
    }

    /// Number of calls made so far.
    pub fn calls(&self) -> u32 {
        self.next
    }

    /// Whether steps must end with the `step_state` pseudo-operator ([`Self::step_state`]):
    /// only when tracing or capturing, since a plain step's state is hashed by its caller.
    pub fn records_state(&self) -> bool {
        self.trace.is_some() || self.capture != Capture::None
    }

    /// Whether the call about to be made must be captured.
    fn capturing(&self) -> bool {
        match self.capture {
            Capture::None => false,
            Capture::One(index) => index == self.next,
            Capture::All => true,
        }
    }

    fn capture_call(&mut self, kind: OpKind, dims: &[u64], inputs: &[&[f32]], ids: &[u32]) {
        self.capture_with(kind, dims, Vec::new(), inputs, ids);
    }

    fn capture_with(
        &mut self,
        kind: OpKind,
        dims: &[u64],
        scalars: Vec<f32>,
        inputs: &[&[f32]],
        ids: &[u32],
    ) {
        if self.capturing() {
            self.captured.push(OpCall {
                kind,
                dims: dims.to_vec(),
                scalars,
                inputs: inputs.iter().map(|x| x.to_vec()).collect(),
                ids: ids.to_vec(),
            });
        }
    }

    fn finish(&mut self, kind: OpKind, dims: &[u64], start: Instant, outputs: &[&[f32]]) {
        if self.trace.is_some() {
            let digests = outputs.iter().map(|o| tensor_digest(o)).collect();
            self.finish_digests(kind, dims, start, digests);
        } else {
            self.finish_digests(kind, dims, start, Vec::new());
        }
    }

    fn finish_digests(&mut self, kind: OpKind, dims: &[u64], start: Instant, outs: Vec<Digest>) {
        let nanos = start.elapsed().as_nanos() as u64;
        self.meter.record(kind, op_cost(kind, dims), nanos);
        let index = self.next;
        self.next += 1;
        if let Some(trace) = &mut self.trace {
            trace.push(TraceEntry {
                index,
                op: kind.name().to_owned(),
                outputs: outs,
            });
        }
    }

    /// Runs one recorded call as the next call (metered, traced and captured like any other)
    /// and returns its outputs; `step_state` is refused (see [`crate::trace::execute`]).
    pub fn run(&mut self, call: &OpCall) -> Result<Vec<Vec<f32>>> {
        let inputs: Vec<&[f32]> = call.inputs.iter().map(Vec::as_slice).collect();
        self.capture_with(
            call.kind,
            &call.dims,
            call.scalars.clone(),
            &inputs,
            &call.ids,
        );
        let t = Instant::now();
        let outs = execute(self.backend, call)?;
        let views: Vec<&[f32]> = outs.iter().map(Vec::as_slice).collect();
        self.finish(call.kind, &call.dims, t, &views);
        Ok(outs)
    }

    /// The `step_state` pseudo-operator: hashes the state after step `step` (parameters,
    /// then optimizer state, in digest order) into its parameter, optimizer and step
    /// digests ([`state_digests`]). Dims are `step, tensors, elements`; inputs are the
    /// tensors' values in that order.
    pub fn step_state(
        &mut self,
        job_spec_hash: &Digest,
        step: u64,
        params: &[NamedTensor<'_>],
        opt: &[NamedTensor<'_>],
    ) -> Result<[Digest; 3]> {
        let all = || params.iter().chain(opt);
        let elements = all().map(|t| u(t.data.len())).sum();
        let d = [step, u(params.len() + opt.len()), elements];
        if self.capturing() {
            let inputs: Vec<&[f32]> = all().map(|t| t.data).collect();
            self.capture_call(OpKind::StepState, &d, &inputs, &[]);
        }
        let t = Instant::now();
        let digests = state_digests(job_spec_hash, step, params, opt)?;
        self.finish_digests(OpKind::StepState, &d, t, digests.to_vec());
        Ok(digests)
    }

    /// `y = x w (+ b)` (`x` is `m x k`, `w` is `k x n`).
    pub fn linear(
        &mut self,
        y: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        dims: Dims,
    ) -> OpResult<()> {
        let k = OpKind::LinearForward;
        let d = [u(dims.m), u(dims.k), u(dims.n), u64::from(b.is_some())];
        let mut inputs = vec![x, w];
        inputs.extend(b);
        self.capture_call(k, &d, &inputs, &[]);
        let t = Instant::now();
        self.backend.linear_forward(y, x, w, b, dims)?;
        self.finish(k, &d, t, &[y]);
        Ok(())
    }

    /// Gradients of [`Self::linear`]: `dw` always, `dx` and `db` when given.
    pub fn linear_backward(
        &mut self,
        dx: Option<&mut [f32]>,
        dw: &mut [f32],
        db: Option<&mut [f32]>,
        (x, w, dy): (&[f32], &[f32], &[f32]),
        dims: Dims,
    ) -> OpResult<()> {
        let k = OpKind::LinearBackward;
        let d = [
            u(dims.m),
            u(dims.k),
            u(dims.n),
            u64::from(dx.is_some()),
            u64::from(db.is_some()),
        ];
        self.capture_call(k, &d, &[x, w, dy], &[]);
        let t = Instant::now();
        let (mut dx, mut db) = (dx, db);
        self.backend
            .linear_backward(dx.as_deref_mut(), dw, db.as_deref_mut(), x, w, dy, dims)?;
        let mut outs: Vec<&[f32]> = Vec::with_capacity(3);
        outs.extend(dx.as_deref());
        outs.push(dw);
        outs.extend(db.as_deref());
        self.finish(k, &d, t, &outs);
        Ok(())
    }

    /// ReLU or GELU forward.
    pub fn activation(&mut self, gelu: bool, y: &mut [f32], x: &[f32]) -> OpResult<()> {
        let k = if gelu {
            OpKind::GeluForward
        } else {
            OpKind::ReluForward
        };
        let d = [u(x.len())];
        self.capture_call(k, &d, &[x], &[]);
        let t = Instant::now();
        if gelu {
            self.backend.gelu_forward(y, x)?;
        } else {
            self.backend.relu_forward(y, x)?;
        }
        self.finish(k, &d, t, &[y]);
        Ok(())
    }

    /// ReLU or GELU gradient.
    pub fn activation_backward(
        &mut self,
        gelu: bool,
        dx: &mut [f32],
        dy: &[f32],
        x: &[f32],
    ) -> OpResult<()> {
        let k = if gelu {
            OpKind::GeluBackward
        } else {
            OpKind::ReluBackward
        };
        let d = [u(x.len())];
        self.capture_call(k, &d, &[dy, x], &[]);
        let t = Instant::now();
        if gelu {
            self.backend.gelu_backward(dx, dy, x)?;
        } else {
            self.backend.relu_backward(dx, dy, x)?;
        }
        self.finish(k, &d, t, &[dx]);
        Ok(())
    }

    /// `out = a + b`.
    pub fn add_into(&mut self, out: &mut [f32], a: &[f32], b: &[f32]) -> OpResult<()> {
        let (k, d) = (OpKind::AddInto, [u(out.len())]);
        self.capture_call(k, &d, &[a, b], &[]);
        let t = Instant::now();
        self.backend.add_into(out, a, b)?;
        self.finish(k, &d, t, &[out]);
        Ok(())
    }

    /// `acc += x`.
    pub fn add_assign(&mut self, acc: &mut [f32], x: &[f32]) -> OpResult<()> {
        let (k, d) = (OpKind::AddAssign, [u(acc.len())]);
        self.capture_call(k, &d, &[acc, x], &[]);
        let t = Instant::now();
        self.backend.add_assign(acc, x)?;
        self.finish(k, &d, t, &[acc]);
        Ok(())
    }

    /// Mean cross-entropy of `rows x classes` logits, and its gradient.
    pub fn cross_entropy(
        &mut self,
        dlogits: &mut [f32],
        logits: &[f32],
        targets: &[u32],
        (rows, classes): (usize, usize),
    ) -> OpResult<f32> {
        let (k, d) = (OpKind::CrossEntropy, [u(rows), u(classes)]);
        self.capture_call(k, &d, &[logits], targets);
        let t = Instant::now();
        let loss = self
            .backend
            .cross_entropy(dlogits, logits, targets, rows, classes)?;
        self.finish(k, &d, t, &[dlogits, &[loss]]);
        Ok(loss)
    }

    /// Layer norm of `rows x cols` `x`; saves `mean` and `rstd`.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm(
        &mut self,
        y: &mut [f32],
        (mean, rstd): (&mut [f32], &mut [f32]),
        x: &[f32],
        (gamma, beta): (&[f32], &[f32]),
        (rows, cols): (usize, usize),
        eps: f32,
    ) -> OpResult<()> {
        let (k, d) = (OpKind::LayerNormForward, [u(rows), u(cols)]);
        self.capture_with(k, &d, vec![eps], &[x, gamma, beta], &[]);
        let t = Instant::now();
        self.backend
            .layer_norm_forward(y, mean, rstd, x, gamma, beta, rows, cols, eps)?;
        self.finish(k, &d, t, &[y, mean, rstd]);
        Ok(())
    }

    /// Layer norm gradients.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_norm_backward(
        &mut self,
        dx: &mut [f32],
        (dgamma, dbeta): (&mut [f32], &mut [f32]),
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        (mean, rstd): (&[f32], &[f32]),
        (rows, cols): (usize, usize),
    ) -> OpResult<()> {
        let (k, d) = (OpKind::LayerNormBackward, [u(rows), u(cols)]);
        self.capture_call(k, &d, &[dy, x, gamma, mean, rstd], &[]);
        let t = Instant::now();
        self.backend.layer_norm_backward(
            dx,
            dgamma,
            dbeta,
            dy,
            x,
            gamma,
            (mean, rstd),
            rows,
            cols,
        )?;
        self.finish(k, &d, t, &[dx, dgamma, dbeta]);
        Ok(())
    }

    /// `out[p] = table[ids[p]]` for a `vocab x dim` table.
    pub fn embedding(
        &mut self,
        out: &mut [f32],
        table: &[f32],
        ids: &[u32],
        (vocab, dim): (usize, usize),
    ) -> OpResult<()> {
        let (k, d) = (OpKind::EmbeddingForward, [u(ids.len()), u(vocab), u(dim)]);
        self.capture_call(k, &d, &[table], ids);
        let t = Instant::now();
        self.backend
            .embedding_forward(out, table, ids, vocab, dim)?;
        self.finish(k, &d, t, &[out]);
        Ok(())
    }

    /// Embedding gradient (overwrites `dtable`).
    pub fn embedding_backward(
        &mut self,
        dtable: &mut [f32],
        dout: &[f32],
        ids: &[u32],
        (vocab, dim): (usize, usize),
    ) -> OpResult<()> {
        let (k, d) = (OpKind::EmbeddingBackward, [u(ids.len()), u(vocab), u(dim)]);
        self.capture_call(k, &d, &[dout], ids);
        let t = Instant::now();
        self.backend
            .embedding_backward(dtable, dout, ids, vocab, dim)?;
        self.finish(k, &d, t, &[dtable]);
        Ok(())
    }

    /// Causal attention; saves the probabilities.
    pub fn attention(
        &mut self,
        out: &mut [f32],
        probs: &mut [f32],
        (q, k_, v): (&[f32], &[f32], &[f32]),
        dims: AttnDims,
    ) -> OpResult<()> {
        let (k, d) = (
            OpKind::AttentionForward,
            [u(dims.bh), u(dims.t), u(dims.dh)],
        );
        self.capture_call(k, &d, &[q, k_, v], &[]);
        let t = Instant::now();
        self.backend.attention_forward(out, probs, q, k_, v, dims)?;
        self.finish(k, &d, t, &[out, probs]);
        Ok(())
    }

    /// Causal attention gradients.
    pub fn attention_backward(
        &mut self,
        (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
        dout: &[f32],
        (q, k_, v): (&[f32], &[f32], &[f32]),
        probs: &[f32],
        dims: AttnDims,
    ) -> OpResult<()> {
        let (k, d) = (
            OpKind::AttentionBackward,
            [u(dims.bh), u(dims.t), u(dims.dh)],
        );
        self.capture_call(k, &d, &[dout, q, k_, v, probs], &[]);
        let t = Instant::now();
        self.backend
            .attention_backward(dq, dk, dv, dout, (q, k_, v), probs, dims)?;
        self.finish(k, &d, t, &[dq, dk, dv]);
        Ok(())
    }

    /// `[b, t, heads * dh]` to `[b * heads, t, dh]` (`merge` false) or back (`merge` true).
    pub fn heads(
        &mut self,
        merge: bool,
        out: &mut [f32],
        x: &[f32],
        shape: (usize, usize, usize, usize),
    ) -> OpResult<()> {
        let k = if merge {
            OpKind::MergeHeads
        } else {
            OpKind::SplitHeads
        };
        let d = [u(shape.0), u(shape.1), u(shape.2), u(shape.3)];
        self.capture_call(k, &d, &[x], &[]);
        let t = Instant::now();
        if merge {
            kernels::merge_heads(out, x, shape)?;
        } else {
            kernels::split_heads(out, x, shape)?;
        }
        self.finish(k, &d, t, &[out]);
        Ok(())
    }

    /// One AdamW update of one parameter at 1-based step `t`.
    pub fn adamw(
        &mut self,
        opt: &AdamW,
        w: &mut [f32],
        (m, v): (&mut [f32], &mut [f32]),
        grads: &[f32],
        step: u32,
    ) -> OpResult<()> {
        let (k, d) = (OpKind::AdamwStep, [u(w.len()), u64::from(step)]);
        let scalars = vec![opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay];
        self.capture_with(k, &d, scalars, &[w, m, v, grads], &[]);
        let t = Instant::now();
        self.backend.adamw_step(opt, w, m, v, grads, step)?;
        self.finish(k, &d, t, &[w, m, v]);
        Ok(())
    }

    /// One SGD update of one parameter.
    pub fn sgd(
        &mut self,
        opt: &Sgd,
        w: &mut [f32],
        velocity: &mut [f32],
        grads: &[f32],
    ) -> OpResult<()> {
        let (k, d) = (OpKind::SgdStep, [u(w.len())]);
        let scalars = vec![opt.lr, opt.momentum, opt.weight_decay];
        self.capture_with(k, &d, scalars, &[w, velocity, grads], &[]);
        let t = Instant::now();
        self.backend.sgd_step(opt, w, velocity, grads)?;
        self.finish(k, &d, t, &[w, velocity]);
        Ok(())
    }
}
