//! Owns: [`Layout`], the operator calls step `s` of a job must make, written by hand from
//! each model's documented call order (not derived by running the model, so that a test
//! comparing it with a traced step is an independent check), and [`Layout::execute`], the
//! referee's one execution.
//!
//! Each entry names the call's kind, dims and scalars, and for every input its [`Source`]:
//! output `slot` of an earlier entry, a tensor of the agreed state `s - 1` (named as in the
//! checkpoint file: `param/<name>`, `opt/<name>`), or a part of the step's batch. Integer
//! inputs (labels, token ids, positions) always come from the batch.
//!
//! Invariants: every [`Source::Op`] of entry `i` names an entry `j < i` and a slot below
//! entry `j`'s output count; every [`Source::State`] names a tensor of the state; the last
//! entry is `step_state`, whose inputs are the optimizer's outputs in digest order; the
//! layout's length depends on the spec only, never on the step or the data.

use std::fmt;

use super::call::OpCall;
use super::tensor_digest;
use crate::commit::checkpoint::{OPT_PREFIX, PARAM_PREFIX};
use crate::commit::{Digest, NamedTensor};
use crate::exec::Exec;
use crate::meter::OpKind;
use crate::model::{Activation, DataShape, MlpSpec, ModelSpec, param_shapes};
use crate::train::{JobSpec, Result, TrainError, job_spec_hash};

/// A part of a step's minibatch, recomputed by a referee from the shipped dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPart {
    /// MLP: the standardised `rows x features` values (floats).
    Features,
    /// MLP: one class label per row (ids).
    Labels,
    /// Char LM: the input token ids (ids).
    Tokens,
    /// Char LM: the next-token ids (ids).
    Targets,
    /// Char LM: the position of every token in its window, `i mod context` (ids).
    Positions,
}

impl BatchPart {
    /// The part's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Features => "features",
            Self::Labels => "labels",
            Self::Tokens => "tokens",
            Self::Targets => "targets",
            Self::Positions => "positions",
        }
    }
}

/// Where one input of a call comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Output `slot` of the earlier entry `index` of the same step.
    Op {
        /// The entry.
        index: u32,
        /// Its output, from 0.
        slot: u32,
    },
    /// A tensor of the agreed state `s - 1`, named as in the checkpoint file.
    State {
        /// `param/<name>` or `opt/<name>`.
        name: String,
    },
    /// A part of the step's batch.
    Batch {
        /// Which part.
        part: BatchPart,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Op { index, slot } => write!(f, "output {slot} of call {index}"),
            Self::State { name } => write!(f, "state tensor `{name}`"),
            Self::Batch { part } => write!(f, "batch {}", part.name()),
        }
    }
}

/// One call the layout expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// The operator.
    pub kind: OpKind,
    /// Its dims, as [`crate::meter`] lays them out.
    pub dims: Vec<u64>,
    /// Its scalars, compared bit for bit.
    pub scalars: Vec<f32>,
    /// The source of each float input, in [`super::execute`] order.
    pub inputs: Vec<Source>,
    /// The source of the integer inputs, if the call takes any.
    pub ids: Option<BatchPart>,
    /// How many outputs it has.
    pub outputs: u32,
}

/// The calls of step `step` of one job, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    job_spec_hash: Digest,
    step: u64,
    /// Rows (MLP) or windows (char LM) per step.
    batch: u32,
    /// The char LM's context, `None` for the MLP.
    context: Option<u32>,
    params: Vec<(String, Vec<usize>)>,
    opt: Vec<(String, Vec<usize>)>,
    entries: Vec<Expected>,
}

/// `Source::Op`.
pub(super) fn op(index: u32, slot: u32) -> Source {
    Source::Op { index, slot }
}

/// `Source::Batch`.
pub(super) fn batch(part: BatchPart) -> Source {
    Source::Batch { part }
}

fn elems(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

/// Builds a layout entry by entry.
pub(super) struct Builder<'a> {
    params: &'a [(String, Vec<usize>)],
    entries: Vec<Expected>,
}

impl Builder<'_> {
    /// Appends one call; returns its index.
    pub(super) fn push(
        &mut self,
        (kind, dims): (OpKind, Vec<u64>),
        scalars: Vec<f32>,
        inputs: Vec<Source>,
        (ids, outputs): (Option<BatchPart>, u32),
    ) -> u32 {
        assert_eq!(dims.len(), kind.dims_len(), "{kind} dims");
        let index = self.entries.len() as u32;
        for input in &inputs {
            if let Source::Op { index: j, slot } = *input {
                assert!(
                    j < index && slot < self.entries[j as usize].outputs,
                    "{kind}"
                );
            }
        }
        self.entries.push(Expected {
            kind,
            dims,
            scalars,
            inputs,
            ids,
            outputs,
        });
        index
    }

    /// A call without scalars or ids and with one output.
    pub(super) fn unary(&mut self, kind: OpKind, dims: Vec<u64>, inputs: Vec<Source>) -> u32 {
        self.push((kind, dims), vec![], inputs, (None, 1))
    }

    /// The parameter `name` of the agreed state; it must exist (a typo here is our bug).
    pub(super) fn param(&self, name: &str) -> Source {
        assert!(
            self.params.iter().any(|(n, _)| n == name),
            "no parameter `{name}`"
        );
        Source::State {
            name: format!("{PARAM_PREFIX}{name}"),
        }
    }
}

/// The MLP's calls (see [`crate::model::mlp`]); returns each parameter's gradient source.
fn mlp(b: &mut Builder<'_>, m: &MlpSpec, shape: DataShape, rows: u64) -> Vec<Source> {
    let mut w = vec![shape.inputs as u64];
    w.extend(m.hidden.iter().map(|&h| u64::from(h)));
    w.push(shape.classes as u64);
    let layers = w.len() - 1;
    let (fwd, bwd) = match m.activation {
        Activation::Relu => (OpKind::ReluForward, OpKind::ReluBackward),
        Activation::Gelu => (OpKind::GeluForward, OpKind::GeluBackward),
    };
    let (weight, bias) = (|i| format!("fc{i}.weight"), |i| format!("fc{i}.bias"));
    let (mut pre, mut act, mut top): (Vec<Source>, Vec<Source>, _) = (vec![], vec![], None);
    for i in 0..layers {
        let x = if i == 0 {
            batch(BatchPart::Features)
        } else {
            act[i - 1].clone()
        };
        let inputs = vec![x, b.param(&weight(i)), b.param(&bias(i))];
        let y = b.unary(OpKind::LinearForward, vec![rows, w[i], w[i + 1], 1], inputs);
        if i + 1 == layers {
            top = Some(op(y, 0));
        } else {
            pre.push(op(y, 0));
            act.push(op(b.unary(fwd, vec![rows * w[i + 1]], vec![op(y, 0)]), 0));
        }
    }
    let logits = top.expect("at least one layer");
    let kind = (OpKind::CrossEntropy, vec![rows, w[layers]]);
    let ce = b.push(kind, vec![], vec![logits], (Some(BatchPart::Labels), 2));
    let (mut grads, mut dy) = (vec![None; 2 * layers], op(ce, 0));
    for i in (0..layers).rev() {
        let dx = u32::from(i > 0);
        let x = if i == 0 {
            batch(BatchPart::Features)
        } else {
            act[i - 1].clone()
        };
        let kind = (
            OpKind::LinearBackward,
            vec![rows, w[i], w[i + 1], u64::from(dx), 1],
        );
        let inputs = vec![x, b.param(&weight(i)), dy.clone()];
        let lb = b.push(kind, vec![], inputs, (None, 2 + dx));
        (grads[2 * i], grads[2 * i + 1]) = (Some(op(lb, dx)), Some(op(lb, dx + 1)));
        if i > 0 {
            let inputs = vec![op(lb, 0), pre[i - 1].clone()];
            dy = op(b.unary(bwd, vec![rows * w[i]], inputs), 0);
        }
    }
    grads
        .into_iter()
        .map(|g| g.expect("every layer's backward"))
        .collect()
}

/// One optimizer call per parameter, then `step_state`; returns the optimizer state's
/// `(name, shape)` in digest order.
fn optimizer(
    b: &mut Builder<'_>,
    spec: &JobSpec,
    step: u64,
    grads: Vec<Source>,
) -> Vec<(String, Vec<usize>)> {
    assert_eq!(grads.len(), b.params.len());
    let (mut opt, mut new_params, mut new_opt) = (Vec::new(), Vec::new(), Vec::new());
    let params = b.params;
    for ((name, shape), grad) in params.iter().zip(grads) {
        let n = elems(shape);
        let state = |pre: &str| Source::State {
            name: format!("{OPT_PREFIX}{pre}{name}"),
        };
        let (kind, dims, scalars, prefixes) = if let Some(a) = spec.optimizer.as_adamw() {
            let scalars = vec![a.lr, a.beta1, a.beta2, a.eps, a.weight_decay];
            (OpKind::AdamwStep, vec![n, step], scalars, vec!["m.", "v."])
        } else {
            let s = spec.optimizer.as_sgd().expect("adamw or sgd");
            let scalars = vec![s.lr, s.momentum, s.weight_decay];
            (OpKind::SgdStep, vec![n], scalars, vec!["velocity."])
        };
        let mut inputs = vec![b.param(name)];
        inputs.extend(prefixes.iter().map(|p| state(p)));
        inputs.push(grad);
        let outputs = 1 + prefixes.len() as u32;
        let index = b.push((kind, dims), scalars, inputs, (None, outputs));
        new_params.push(op(index, 0));
        for (slot, pre) in (1..).zip(&prefixes) {
            new_opt.push(op(index, slot));
            opt.push((format!("{pre}{name}"), shape.clone()));
        }
    }
    let tensors = (params.len() + opt.len()) as u64;
    let elements = params.iter().chain(&opt).map(|(_, s)| elems(s)).sum();
    let kind = (OpKind::StepState, vec![step, tensors, elements]);
    new_params.extend(new_opt);
    b.push(kind, vec![], new_params, (None, 3));
    opt
}

impl Layout {
    /// The layout of step `step` (`1..=spec.steps`) of `spec`. Loads the shipped dataset
    /// for its shape; runs nothing.
    pub fn of(spec: &JobSpec, step: u64) -> Result<Self> {
        spec.validate()?;
        if !(1..=spec.steps).contains(&step) {
            return Err(TrainError::StepOutOfRange {
                step,
                steps: spec.steps,
            });
        }
        let shape = crate::train::data_shape(spec)?;
        let params = param_shapes(&spec.model, shape);
        let mut b = Builder {
            params: &params,
            entries: Vec::new(),
        };
        let (grads, context) = match &spec.model {
            ModelSpec::Mlp(m) => (mlp(&mut b, m, shape, u64::from(spec.batch)), None),
            ModelSpec::Charlm(c) => {
                let grads = super::layout_charlm::charlm(&mut b, c, shape, spec.batch);
                (grads, Some(c.context))
            }
        };
        let opt = optimizer(&mut b, spec, step, grads);
        let entries = b.entries;
        Ok(Self {
            job_spec_hash: job_spec_hash(spec),
            step,
            batch: spec.batch,
            context,
            params,
            opt,
            entries,
        })
    }

    /// Number of entries: the length of every step's trace.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none (never, for a valid spec).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in call order.
    pub fn entries(&self) -> &[Expected] {
        &self.entries
    }

    /// Entry `index`, if any.
    pub fn get(&self, index: u32) -> Option<&Expected> {
        self.entries.get(index as usize)
    }

    /// The step the layout is for.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The job's spec hash.
    pub fn job_spec_hash(&self) -> Digest {
        self.job_spec_hash
    }

    /// The positions a char LM batch embeds (`i mod context` for each of its tokens).
    pub fn positions(&self) -> Option<Vec<u32>> {
        let t = self.context?;
        let n = self.batch as usize * t as usize;
        Some((0..n).map(|i| i as u32 % t).collect())
    }

    /// The referee's one execution: runs `call` (already accepted by
    /// [`super::check_call`]) as one call of `exec`, which meters it, and returns its
    /// per-output digests, as [`super::TraceEntry::outputs`] records them. `step_state` is
    /// hashed with this layout's tensor names and shapes.
    pub fn execute(&self, exec: &mut Exec<'_>, call: &OpCall) -> Result<Vec<Digest>> {
        if call.kind != OpKind::StepState {
            let outs = exec.run(call)?;
            return Ok(outs.iter().map(|o| tensor_digest(o)).collect());
        }
        let defs = self.params.iter().chain(&self.opt);
        if call.inputs.len() != self.params.len() + self.opt.len() {
            return Err(TrainError::OpFile {
                reason: format!("step_state takes {} tensors", defs.count()),
            });
        }
        let views: Vec<NamedTensor<'_>> = defs
            .zip(&call.inputs)
            .map(|((name, shape), data)| NamedTensor::new(name, shape, data))
            .collect();
        let (params, opt) = views.split_at(self.params.len());
        let digests = exec.step_state(&self.job_spec_hash, self.step, params, opt)?;
        Ok(digests.to_vec())
    }
}
