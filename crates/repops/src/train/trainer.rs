//! Owns: [`Trainer`], the state of one job (model, optimizer state, data, step) and one
//! optimizer step at a time; [`step_batch`], the minibatch of a step.

use std::path::Path;

use super::{JobSpec, Result, TrainError, job_spec_hash};
use crate::commit::{self, Checkpoint, CheckpointMeta, Digest, NamedTensor, OwnedTensor};
use crate::data::{
    EVAL_PERMILLE_DEFAULT, EpochSampler, TabularSplit, TextCorpus, sample_windows, shipped_dataset,
    unigram_baseline,
};
use crate::exec::Exec;
use crate::model::{Batch, DataShape, Model, ModelSpec};

/// The training data of a job.
#[derive(Debug, Clone)]
enum Data {
    Rows {
        split: Box<TabularSplit>,
        sampler: EpochSampler,
        indices: Vec<u32>,
    },
    Text {
        corpus: Box<TextCorpus>,
        context: u32,
    },
}

/// A minibatch owned by the caller (to inspect or alter before a step).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedBatch {
    /// Rows of standardised features and labels.
    Rows {
        /// Row-major features.
        features: Vec<f32>,
        /// Labels.
        labels: Vec<u32>,
    },
    /// Token windows.
    Tokens {
        /// Inputs.
        inputs: Vec<u32>,
        /// Next tokens.
        targets: Vec<u32>,
    },
}

impl OwnedBatch {
    /// The borrowed form the model takes.
    pub fn as_batch(&self) -> Batch<'_> {
        match self {
            Self::Rows { features, labels } => Batch::Rows { features, labels },
            Self::Tokens { inputs, targets } => Batch::Tokens { inputs, targets },
        }
    }
}

/// Held-out evaluation of a model.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    /// Mean cross-entropy, nats.
    pub loss: f64,
    /// Classification accuracy (MLP).
    pub accuracy: Option<f64>,
    /// `exp(loss)` per character (char LM).
    pub perplexity: Option<f64>,
    /// The add-one unigram baseline's perplexity on the same eval text (char LM).
    pub unigram_perplexity: Option<f64>,
    /// Eval rows, or eval windows.
    pub examples: u64,
}

/// One job's training state after [`Trainer::step`] steps.
#[derive(Debug, Clone)]
pub struct Trainer {
    spec: JobSpec,
    job_hash: Digest,
    model: Model,
    opt: Vec<OwnedTensor>,
    data: Data,
    step: u64,
}

fn load_data(spec: &JobSpec) -> Result<(Data, DataShape)> {
    spec.validate()?;
    let dataset = shipped_dataset(&spec.dataset)?;
    if dataset.id() != spec.dataset_id {
        return Err(TrainError::invalid(
            "dataset id",
            format!(
                "`{}` has id {}, the spec says {}",
                spec.dataset,
                dataset.id(),
                spec.dataset_id
            ),
        ));
    }
    Ok(match &spec.model {
        ModelSpec::Mlp(_) => {
            let split = TabularSplit::from_dataset(&dataset, EVAL_PERMILLE_DEFAULT)?;
            let shape = DataShape {
                inputs: split.train.n_features as usize,
                classes: split.train.n_classes as usize,
            };
            let sampler = EpochSampler::new(spec.seed, split.train.len() as u32, spec.batch)?;
            let indices = vec![0; spec.batch as usize];
            (
                Data::Rows {
                    split: Box::new(split),
                    sampler,
                    indices,
                },
                shape,
            )
        }
        ModelSpec::Charlm(c) => {
            let corpus = TextCorpus::from_dataset(&dataset)?;
            let v = corpus.tokenizer.vocab_size() as usize;
            let shape = DataShape {
                inputs: v,
                classes: v,
            };
            (
                Data::Text {
                    corpus: Box::new(corpus),
                    context: c.context,
                },
                shape,
            )
        }
    })
}

/// What the data fixes about the model of `spec` (loads the shipped dataset).
pub(crate) fn data_shape(spec: &JobSpec) -> Result<DataShape> {
    Ok(load_data(spec)?.1)
}

/// The minibatch step `step` (from 1) of `spec` reads, recomputed from the shipped dataset
/// alone (what a referee checks a served call's batch inputs against).
pub fn step_batch(spec: &JobSpec, step: u64) -> Result<OwnedBatch> {
    let (mut data, _) = load_data(spec)?;
    batch_of(spec, &mut data, step)
}

fn batch_of(spec: &JobSpec, data: &mut Data, step: u64) -> Result<OwnedBatch> {
    let index = step
        .checked_sub(1)
        .ok_or_else(|| TrainError::invalid("step", "steps start at 1"))?;
    let batch = spec.batch as usize;
    Ok(match data {
        Data::Rows {
            split,
            sampler,
            indices,
        } => {
            sampler.batch_indices(index, indices)?;
            let width = split.train.n_features as usize;
            let (mut features, mut labels) = (vec![0.0; batch * width], vec![0; batch]);
            split
                .train
                .gather_into(indices, &mut features, &mut labels)?;
            OwnedBatch::Rows { features, labels }
        }
        Data::Text { corpus, context } => {
            let n = batch * *context as usize;
            let (mut inputs, mut targets) = (vec![0; n], vec![0; n]);
            sample_windows(
                &corpus.train,
                spec.seed,
                index,
                *context,
                &mut inputs,
                &mut targets,
            )?;
            OwnedBatch::Tokens { inputs, targets }
        }
    })
}

fn opt_state(spec: &JobSpec, params: &[OwnedTensor]) -> Vec<OwnedTensor> {
    let prefixes: &[&str] = if spec.optimizer.as_adamw().is_some() {
        &["m.", "v."]
    } else {
        &["velocity."]
    };
    params
        .iter()
        .flat_map(|p| {
            prefixes.iter().map(|pre| OwnedTensor {
                name: format!("{pre}{}", p.name),
                shape: p.shape.clone(),
                data: vec![0.0; p.data.len()],
            })
        })
        .collect()
}

impl Trainer {
    /// The initial state (step 0) of the job `spec`.
    pub fn new(spec: &JobSpec) -> Result<Self> {
        let (data, shape) = load_data(spec)?;
        let model = Model::init(&spec.model, shape, spec.seed)?;
        let opt = opt_state(spec, model.params());
        Ok(Self {
            spec: spec.clone(),
            job_hash: job_spec_hash(spec),
            model,
            opt,
            data,
            step: 0,
        })
    }

    /// The state stored in a (verified) checkpoint of the job `spec`.
    pub fn from_checkpoint(spec: &JobSpec, ckpt: &Checkpoint) -> Result<Self> {
        let job_hash = job_spec_hash(spec);
        if ckpt.meta.job_spec_hash != job_hash {
            return Err(TrainError::WrongJob {
                expected: job_hash,
                found: ckpt.meta.job_spec_hash,
            });
        }
        if ckpt.meta.step > spec.steps {
            return Err(TrainError::StepOutOfRange {
                step: ckpt.meta.step,
                steps: spec.steps,
            });
        }
        let (data, shape) = load_data(spec)?;
        let model = Model::with_params(&spec.model, shape, ckpt.params.clone())?;
        let expected = opt_state(spec, model.params());
        for (want, got) in expected.iter().zip(&ckpt.opt) {
            if want.name != got.name || want.shape != got.shape {
                return Err(TrainError::ParamMismatch {
                    name: got.name.clone(),
                    reason: "optimizer state does not fit the model".into(),
                });
            }
        }
        if expected.len() != ckpt.opt.len() {
            return Err(TrainError::ParamMismatch {
                name: "opt/*".into(),
                reason: format!("{} buffers, expected {}", ckpt.opt.len(), expected.len()),
            });
        }
        Ok(Self {
            spec: spec.clone(),
            job_hash,
            model,
            opt: ckpt.opt.clone(),
            data,
            step: ckpt.meta.step,
        })
    }

    /// Steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The spec.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The spec's hash.
    pub fn job_hash(&self) -> Digest {
        self.job_hash
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, mutable (for inference).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Views of the optimizer state, in digest order.
    pub fn opt_views(&self) -> Vec<NamedTensor<'_>> {
        self.opt.iter().map(OwnedTensor::view).collect()
    }

    /// The step digest of the current state.
    pub fn digest(&self) -> Result<Digest> {
        let (p, o) = (self.model.param_views(), self.opt_views());
        Ok(commit::step_digest(&self.job_hash, self.step, &p, &o)?)
    }

    /// Writes the current state as a checkpoint; returns its step digest.
    pub fn write_checkpoint(&self, path: &Path) -> Result<Digest> {
        let (p, o) = (self.model.param_views(), self.opt_views());
        Ok(commit::write_checkpoint(
            path,
            &self.job_hash,
            self.step,
            &p,
            &o,
        )?)
    }

    /// The tokenizer, for a char LM job.
    pub fn tokenizer(&self) -> Option<&crate::data::CharTokenizer> {
        match &self.data {
            Data::Text { corpus, .. } => Some(&corpus.tokenizer),
            Data::Rows { .. } => None,
        }
    }

    /// The tabular split, for an MLP job.
    pub fn split(&self) -> Option<&TabularSplit> {
        match &self.data {
            Data::Rows { split, .. } => Some(split),
            Data::Text { .. } => None,
        }
    }

    /// The minibatch step `step` (from 1) reads: data index `step - 1`.
    pub fn batch_for(&mut self, step: u64) -> Result<OwnedBatch> {
        batch_of(&self.spec, &mut self.data, step)
    }

    /// The current state as a checkpoint (what [`Self::write_checkpoint`] would write).
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(Checkpoint {
            meta: CheckpointMeta {
                format_version: commit::checkpoint::FORMAT_VERSION,
                step: self.step,
                job_spec_hash: self.job_hash,
                step_digest: self.digest()?,
            },
            params: self.model.params().to_vec(),
            opt: self.opt.clone(),
        })
    }

    /// Takes the next step on its own minibatch; returns the training loss.
    pub fn train_step(&mut self, exec: &mut Exec<'_>) -> Result<f32> {
        let batch = self.batch_for(self.step + 1)?;
        self.train_step_on(exec, batch.as_batch())
    }

    /// Takes the next step on `batch` (forward, backward, optimizer); returns the loss.
    pub fn train_step_on(&mut self, exec: &mut Exec<'_>, batch: Batch<'_>) -> Result<f32> {
        if self.step >= self.spec.steps {
            return Err(TrainError::StepOutOfRange {
                step: self.step + 1,
                steps: self.spec.steps,
            });
        }
        let loss = self.model.forward_backward(exec, batch)?;
        let t =
            u32::try_from(self.step + 1).map_err(|_| TrainError::invalid("step", "over u32"))?;
        let (params, grads) = self.model.params_and_grads();
        if let Some(opt) = self.spec.optimizer.as_adamw() {
            for ((p, g), mv) in params
                .iter_mut()
                .zip(grads)
                .zip(self.opt.chunks_exact_mut(2))
            {
                let (m, v) = mv.split_at_mut(1);
                exec.adamw(&opt, &mut p.data, (&mut m[0].data, &mut v[0].data), g, t)?;
            }
        } else if let Some(opt) = self.spec.optimizer.as_sgd() {
            for ((p, g), vel) in params.iter_mut().zip(grads).zip(&mut self.opt) {
                exec.sgd(&opt, &mut p.data, &mut vel.data, g)?;
            }
        }
        self.step += 1;
        if exec.records_state() {
            // A traced step ends at its commitment: the step_state pseudo-operator.
            let (p, o) = (self.model.param_views(), self.opt_views());
            exec.step_state(&self.job_hash, self.step, &p, &o)?;
        }
        Ok(loss)
    }

    /// Evaluates on the held-out split: accuracy and loss (MLP), or loss, perplexity and the
    /// unigram baseline (char LM).
    pub fn evaluate(&mut self, exec: &mut Exec<'_>) -> Result<EvalReport> {
        match (&mut self.model, &self.data) {
            (Model::Mlp(m), Data::Rows { split, .. }) => {
                let (loss, acc) = m.evaluate(exec, &split.eval.features, &split.eval.labels)?;
                Ok(EvalReport {
                    loss: f64::from(loss),
                    accuracy: Some(acc),
                    examples: split.eval.len() as u64,
                    ..EvalReport::default()
                })
            }
            (Model::CharLm(m), Data::Text { corpus, .. }) => {
                let (nll, windows) = m.evaluate(exec, &corpus.eval, self.spec.batch as usize)?;
                let base =
                    unigram_baseline(&corpus.train, &corpus.eval, corpus.tokenizer.vocab_size())?;
                Ok(EvalReport {
                    loss: nll,
                    accuracy: None,
                    perplexity: Some(libm::exp(nll)),
                    unigram_perplexity: Some(base.perplexity),
                    examples: windows,
                })
            }
            _ => Err(TrainError::invalid("model", "does not fit the data")),
        }
    }
}
