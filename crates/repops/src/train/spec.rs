//! The job spec, its defaults and its canonical encoding (see the module docs of
//! [`crate::train`]).

use serde::{Deserialize, Serialize};

use super::{Result, TrainError};
use crate::commit::Digest;
use crate::data::shipped::SHIPPED_NAMES;
use crate::data::shipped_dataset;
use crate::model::{CharLmSpec, MlpSpec, ModelSpec};
use crate::optim::{AdamW, Sgd};

/// Domain tag of the job spec encoding.
pub const JOB_DOMAIN: &str = "poi/repops/job/v1";
/// Most steps in one job.
pub const STEPS_MAX: u64 = 1 << 24;
/// Largest minibatch (rows or windows).
pub const BATCH_MAX: u32 = 1 << 16;

/// The optimizer and its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerSpec {
    /// AdamW ([`AdamW`]).
    Adamw {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator guard.
        eps: f32,
        /// Decoupled weight decay.
        weight_decay: f32,
    },
    /// SGD with momentum ([`Sgd`]).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum.
        momentum: f32,
        /// L2 weight decay.
        weight_decay: f32,
    },
}

impl OptimizerSpec {
    /// AdamW with PyTorch's defaults and learning rate `lr`.
    pub fn adamw(lr: f32) -> Self {
        let d = AdamW::default();
        Self::Adamw {
            lr,
            beta1: d.beta1,
            beta2: d.beta2,
            eps: d.eps,
            weight_decay: d.weight_decay,
        }
    }

    /// SGD with momentum `momentum`, no weight decay.
    pub fn sgd(lr: f32, momentum: f32) -> Self {
        Self::Sgd {
            lr,
            momentum,
            weight_decay: 0.0,
        }
    }

    fn fields(&self) -> (&'static str, Vec<f32>) {
        match *self {
            Self::Adamw {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => ("adamw", vec![lr, beta1, beta2, eps, weight_decay]),
            Self::Sgd {
                lr,
                momentum,
                weight_decay,
            } => ("sgd", vec![lr, momentum, weight_decay]),
        }
    }

    /// The AdamW optimizer, if this is one.
    pub fn as_adamw(&self) -> Option<AdamW> {
        match *self {
            Self::Adamw {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Some(AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            }),
            Self::Sgd { .. } => None,
        }
    }

    /// The SGD optimizer, if this is one.
    pub fn as_sgd(&self) -> Option<Sgd> {
        match *self {
            Self::Sgd {
                lr,
                momentum,
                weight_decay,
            } => Some(Sgd {
                lr,
                momentum,
                weight_decay,
            }),
            Self::Adamw { .. } => None,
        }
    }
}

/// Everything that determines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The model and its hyperparameters.
    pub model: ModelSpec,
    /// A shipped dataset's name ([`SHIPPED_NAMES`]).
    pub dataset: String,
    /// That dataset's content id; loading checks it.
    pub dataset_id: Digest,
    /// Optimizer steps (`1..=STEPS_MAX`).
    pub steps: u64,
    /// The seed of initialisation and data order.
    pub seed: u64,
    /// Rows (MLP) or windows (char LM) per step.
    pub batch: u32,
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// Steps between checkpoints (step 0 and the last step are always checkpointed).
    pub checkpoint_every: u64,
}

/// The shipped dataset name for a user's spelling (`winequality` -> `winequality-red`,
/// `text` / `liber_primus` -> `liber-primus`).
pub fn resolve_dataset(name: &str) -> Result<&'static str> {
    let canonical = match name.to_ascii_lowercase().replace('_', "-").as_str() {
        "wine" | "winequality" | "winequality-red" => "winequality-red",
        "text" | "liber-primus" | "lipsum" => "liber-primus",
        "iris" => "iris",
        "diabetes" => "diabetes",
        _ => {
            return Err(TrainError::invalid(
                "dataset",
                format!("`{name}` is not one of {SHIPPED_NAMES:?}"),
            ));
        }
    };
    Ok(canonical)
}

impl JobSpec {
    /// The default job for `model` (`"mlp"` or `"charlm"`) on a shipped dataset (the model's
    /// default when `None`): MLP 64-64 ReLU, batch 32, AdamW 3e-3 on winequality; char LM
    /// `d 64, 4 heads, 2 blocks, context 64`, batch 16, AdamW 3e-3 on *Liber primus*;
    /// checkpoints every 100 steps.
    pub fn default_for(model: &str, dataset: Option<&str>, steps: u64, seed: u64) -> Result<Self> {
        let (model, default_data, batch, lr) = match model {
            "mlp" => (
                ModelSpec::Mlp(MlpSpec::default()),
                "winequality-red",
                32,
                3e-3,
            ),
            "charlm" => (
                ModelSpec::Charlm(CharLmSpec::default()),
                "liber-primus",
                16,
                3e-3,
            ),
            other => {
                return Err(TrainError::invalid(
                    "model",
                    format!("`{other}` is not `mlp` or `charlm`"),
                ));
            }
        };
        let dataset = resolve_dataset(dataset.unwrap_or(default_data))?;
        let spec = Self {
            model,
            dataset: dataset.to_owned(),
            dataset_id: shipped_dataset(dataset)?.id(),
            steps,
            seed,
            batch,
            optimizer: OptimizerSpec::adamw(lr),
            checkpoint_every: 100,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the limits and that the model fits the dataset's kind.
    pub fn validate(&self) -> Result<()> {
        if !(1..=STEPS_MAX).contains(&self.steps) {
            return Err(TrainError::invalid(
                "steps",
                format!("{} is not in 1..={STEPS_MAX}", self.steps),
            ));
        }
        if !(1..=BATCH_MAX).contains(&self.batch) {
            return Err(TrainError::invalid(
                "batch",
                format!("{} is not in 1..={BATCH_MAX}", self.batch),
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(TrainError::invalid(
                "checkpoint interval",
                "must be at least 1",
            ));
        }
        let text = self.dataset == "liber-primus";
        match &self.model {
            ModelSpec::Mlp(m) if !text => m.validate(),
            ModelSpec::Charlm(c) if text => c.validate(),
            model => Err(TrainError::invalid(
                "model",
                format!("{} cannot train on `{}`", model.kind(), self.dataset),
            )),
        }
    }

    /// The canonical encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let int = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        let text = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        text(&mut out, JOB_DOMAIN);
        text(&mut out, self.model.kind());
        match &self.model {
            ModelSpec::Mlp(m) => {
                int(&mut out, m.hidden.len() as u64);
                m.hidden.iter().for_each(|&w| int(&mut out, u64::from(w)));
                let act = match m.activation {
                    crate::model::Activation::Relu => "relu",
                    crate::model::Activation::Gelu => "gelu",
                };
                text(&mut out, act);
            }
            ModelSpec::Charlm(c) => {
                for v in [c.d_model, c.heads, c.layers, c.context, c.d_ff] {
                    int(&mut out, u64::from(v));
                }
            }
        }
        text(&mut out, &self.dataset);
        out.extend_from_slice(self.dataset_id.as_bytes());
        for v in [self.steps, self.seed, u64::from(self.batch)] {
            int(&mut out, v);
        }
        let (kind, fields) = self.optimizer.fields();
        text(&mut out, kind);
        for f in fields {
            out.extend_from_slice(&crate::commit::canonical_f32_bits(f).to_le_bytes());
        }
        int(&mut out, self.checkpoint_every);
        out
    }

    /// Whether step `step` is checkpointed.
    pub fn is_checkpoint(&self, step: u64) -> bool {
        step.is_multiple_of(self.checkpoint_every) || step == self.steps
    }
}

/// BLAKE3 of [`JobSpec::encode`].
pub fn job_spec_hash(spec: &JobSpec) -> Digest {
    Digest::of(&spec.encode())
}
