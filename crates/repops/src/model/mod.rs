//! Models: an MLP classifier and a small decoder-only transformer character LM, with
//! seeded initialisation, forward and backward passes through [`Exec`], evaluation and
//! inference.
//!
//! Owns: [`ModelSpec`], [`Model`], [`Batch`], parameter naming and initialisation.
//! Invariants:
//! - parameters have stable names, shapes and order (the digest order), listed by each
//!   model's docs; gradients are kept in the same order;
//! - initial parameter `i` is a pure function of `(seed, i)`: stream `i` of the key
//!   `derive_seed(seed, INIT_DOMAIN)`, value `(2u - 1) * bound` with `u` from
//!   [`CounterRng::uniform_f32`]; biases and layer-norm betas start at `+0.0`, gammas at 1;
//! - a step makes the same operator calls in the same order every time (forward, backward),
//!   and buffers are allocated once per batch shape, never inside the step.
//!
//! Stability: ALPHA; model layouts are versioned by the job spec.
//!
//! - [`mlp`]: [`Mlp`], `in -> hidden... -> classes`.
//! - [`charlm`]: [`CharLm`], pre-LN causal transformer over characters.

pub mod charlm;
mod charlm_block;
pub mod mlp;

use serde::{Deserialize, Serialize};

pub use charlm::{CharLm, CharLmSpec};
pub(crate) use charlm_block::LN_EPS;
pub use mlp::{Activation, Mlp, MlpSpec};

use crate::commit::{NamedTensor, OwnedTensor};
use crate::data::derive_seed;
use crate::exec::Exec;
use crate::rng::CounterRng;
use crate::train::{Result, TrainError};

/// Domain of the key parameter initialisation draws from.
pub const INIT_DOMAIN: &str = "poi/repops/init/v1";
/// Most elements of one parameter tensor (64 Mi values, 256 MiB).
pub const PARAM_ELEMS_MAX: usize = 1 << 26;

/// Which model, with its hyperparameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A multi-layer perceptron classifier.
    Mlp(MlpSpec),
    /// A character-level transformer language model.
    Charlm(CharLmSpec),
}

impl ModelSpec {
    /// `"mlp"` or `"charlm"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mlp(_) => "mlp",
            Self::Charlm(_) => "charlm",
        }
    }
}

/// What the data fixes about a model: input width (features, or vocabulary size) and
/// number of output classes (classes, or vocabulary size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Features per row, or the vocabulary size.
    pub inputs: usize,
    /// Classes, or the vocabulary size.
    pub classes: usize,
}

/// One minibatch.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// `rows x features` standardised features and one label per row.
    Rows {
        /// Row-major features.
        features: &'a [f32],
        /// Class labels.
        labels: &'a [u32],
    },
    /// `batch x context` input tokens and the next token at each position.
    Tokens {
        /// Row-major token ids.
        inputs: &'a [u32],
        /// Row-major next-token ids.
        targets: &'a [u32],
    },
}

/// A model with its parameters, gradients and workspaces.
#[derive(Debug, Clone)]
pub enum Model {
    /// See [`Mlp`].
    Mlp(Mlp),
    /// See [`CharLm`].
    CharLm(CharLm),
}

/// `(name, shape, init)` of one parameter; `init` is the uniform bound, or a constant when
/// `constant` is set.
#[derive(Debug, Clone)]
pub(crate) struct ParamDef {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) init: Init,
}

/// How a parameter starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    /// `U(-bound, bound)` from its stream.
    Uniform(f32),
    /// Every element equal.
    Constant(f32),
}

/// `(name, shape)` of every parameter of `spec` on data of `shape`, in digest order.
pub(crate) fn param_shapes(spec: &ModelSpec, shape: DataShape) -> Vec<(String, Vec<usize>)> {
    let defs = match spec {
        ModelSpec::Mlp(s) => s.defs(shape),
        ModelSpec::Charlm(s) => s.defs(shape.inputs),
    };
    defs.into_iter().map(|d| (d.name, d.shape)).collect()
}

/// `1 / sqrt(fan_in)`, the PyTorch default bound for linear weights.
pub(crate) fn fan_in_bound(fan_in: usize) -> f32 {
    1.0 / (fan_in.max(1) as f32).sqrt()
}

/// Initial tensors for `defs` from `seed` (see the module invariants).
pub(crate) fn init_params(defs: &[ParamDef], seed: u64) -> Result<Vec<OwnedTensor>> {
    let key = derive_seed(seed, INIT_DOMAIN);
    defs.iter()
        .zip(0u64..)
        .map(|(def, stream)| {
            let len = elems(&def.name, &def.shape)?;
            let data = match def.init {
                Init::Constant(c) => vec![c; len],
                Init::Uniform(bound) => {
                    let mut rng = CounterRng::new(key, stream);
                    (0..len)
                        .map(|_| (2.0 * rng.uniform_f32() - 1.0) * bound)
                        .collect()
                }
            };
            Ok(OwnedTensor {
                name: def.name.clone(),
                shape: def.shape.clone(),
                data,
            })
        })
        .collect()
}

fn elems(name: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= PARAM_ELEMS_MAX)
        .ok_or_else(|| TrainError::ParamMismatch {
            name: name.to_owned(),
            reason: format!("shape {shape:?} is over {PARAM_ELEMS_MAX} elements"),
        })
}

/// Checks that loaded `params` have exactly the names and shapes of `defs`, in order.
pub(crate) fn check_params(defs: &[ParamDef], params: &[OwnedTensor]) -> Result<()> {
    if defs.len() != params.len() {
        return Err(TrainError::ParamMismatch {
            name: "*".into(),
            reason: format!("{} tensors, the model has {}", params.len(), defs.len()),
        });
    }
    for (def, p) in defs.iter().zip(params) {
        if def.name != p.name || def.shape != p.shape {
            return Err(TrainError::ParamMismatch {
                name: p.name.clone(),
                reason: format!(
                    "found `{}` {:?}, the model has `{}` {:?}",
                    p.name, p.shape, def.name, def.shape
                ),
            });
        }
    }
    Ok(())
}

/// Zeroed gradient buffers for `params`.
pub(crate) fn zero_grads(params: &[OwnedTensor]) -> Vec<Vec<f32>> {
    params.iter().map(|p| vec![0.0; p.data.len()]).collect()
}

/// Index of the first maximum of `row` (NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

impl Model {
    /// A freshly initialised model.
    pub fn init(spec: &ModelSpec, shape: DataShape, seed: u64) -> Result<Self> {
        Ok(match spec {
            ModelSpec::Mlp(s) => Self::Mlp(Mlp::init(s, shape, seed)?),
            ModelSpec::Charlm(s) => Self::CharLm(CharLm::init(s, shape, seed)?),
        })
    }

    /// A model with loaded parameters, which must match the spec's names and shapes.
    pub fn with_params(
        spec: &ModelSpec,
        shape: DataShape,
        params: Vec<OwnedTensor>,
    ) -> Result<Self> {
        Ok(match spec {
            ModelSpec::Mlp(s) => Self::Mlp(Mlp::with_params(s, shape, params)?),
            ModelSpec::Charlm(s) => Self::CharLm(CharLm::with_params(s, shape, params)?),
        })
    }

    /// Parameters in digest order.
    pub fn params(&self) -> &[OwnedTensor] {
        match self {
            Self::Mlp(m) => &m.params,
            Self::CharLm(m) => &m.params,
        }
    }

    /// Parameters and their gradients (same order), for the optimizer.
    pub fn params_and_grads(&mut self) -> (&mut [OwnedTensor], &[Vec<f32>]) {
        match self {
            Self::Mlp(m) => (&mut m.params, &m.grads),
            Self::CharLm(m) => (&mut m.params, &m.grads),
        }
    }

    /// Views of the parameters, for digests and checkpoints.
    pub fn param_views(&self) -> Vec<NamedTensor<'_>> {
        self.params().iter().map(OwnedTensor::view).collect()
    }

    /// Total parameter count.
    pub fn param_count(&self) -> u64 {
        self.params().iter().map(|p| p.data.len() as u64).sum()
    }

    /// Forward and backward on one batch: fills the gradients, returns the mean loss.
    pub fn forward_backward(&mut self, exec: &mut Exec<'_>, batch: Batch<'_>) -> Result<f32> {
        match (self, batch) {
            (Self::Mlp(m), Batch::Rows { features, labels }) => {
                m.forward_backward(exec, features, labels)
            }
            (Self::CharLm(m), Batch::Tokens { inputs, targets }) => {
                m.forward_backward(exec, inputs, targets)
            }
            _ => Err(TrainError::invalid(
                "batch",
                "batch kind does not fit the model",
            )),
        }
    }
}
