//! Owns: the MLP classifier `in -> hidden[0] -> ... -> classes`.
//!
//! Parameters, in digest order, for layer `i = 0..=L` (`L` hidden layers):
//! `fc{i}.weight` `[width_i, width_{i+1}]` (inputs x outputs, as [`crate::kernels::linear_forward`]
//! reads it), `fc{i}.bias` `[width_{i+1}]`. Weights start `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`,
//! biases at zero.
//!
//! A step calls, in order: for each layer `linear_forward` then (hidden layers) the
//! activation; `cross_entropy`; then for each layer from the top `linear_backward` (without
//! `dx` for layer 0) then (below the top) the activation's gradient.

use serde::{Deserialize, Serialize};

use super::{
    DataShape, Init, ParamDef, argmax, check_params, fan_in_bound, init_params, zero_grads,
};
use crate::commit::OwnedTensor;
use crate::exec::Exec;
use crate::gemm::Dims;
use crate::kernels::cross_entropy_loss;
use crate::train::{Result, TrainError};

/// Most hidden layers.
pub const MLP_LAYERS_MAX: usize = 8;
/// Widest hidden layer.
pub const MLP_WIDTH_MAX: u32 = 4096;

/// The hidden activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// Tanh GELU.
    Gelu,
}

/// MLP hyperparameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Width of each hidden layer (1..=[`MLP_LAYERS_MAX`] layers).
    pub hidden: Vec<u32>,
    /// The hidden activation.
    pub activation: Activation,
}

impl Default for MlpSpec {
    /// Two hidden layers of 64, ReLU.
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: Activation::Relu,
        }
    }
}

impl MlpSpec {
    /// Checks the limits.
    pub fn validate(&self) -> Result<()> {
        let ok = !self.hidden.is_empty()
            && self.hidden.len() <= MLP_LAYERS_MAX
            && self
                .hidden
                .iter()
                .all(|&w| (1..=MLP_WIDTH_MAX).contains(&w));
        if ok {
            return Ok(());
        }
        Err(TrainError::invalid(
            "mlp hidden layers",
            format!(
                "{:?}: need 1..={MLP_LAYERS_MAX} widths in 1..={MLP_WIDTH_MAX}",
                self.hidden
            ),
        ))
    }

    fn widths(&self, shape: DataShape) -> Vec<usize> {
        let mut w = vec![shape.inputs];
        w.extend(self.hidden.iter().map(|&h| h as usize));
        w.push(shape.classes);
        w
    }

    pub(crate) fn defs(&self, shape: DataShape) -> Vec<ParamDef> {
        let w = self.widths(shape);
        let mut defs = Vec::new();
        for i in 0..w.len() - 1 {
            defs.push(ParamDef {
                name: format!("fc{i}.weight"),
                shape: vec![w[i], w[i + 1]],
                init: Init::Uniform(fan_in_bound(w[i])),
            });
            defs.push(ParamDef {
                name: format!("fc{i}.bias"),
                shape: vec![w[i + 1]],
                init: Init::Constant(0.0),
            });
        }
        defs
    }
}

/// Activations of one batch shape, allocated once.
#[derive(Debug, Clone, Default)]
struct Workspace {
    rows: usize,
    /// Pre-activations of each hidden layer.
    pre: Vec<Vec<f32>>,
    /// Activations of each hidden layer.
    act: Vec<Vec<f32>>,
    dpre: Vec<Vec<f32>>,
    dact: Vec<Vec<f32>>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
}

/// The MLP classifier.
#[derive(Debug, Clone)]
pub struct Mlp {
    spec: MlpSpec,
    widths: Vec<usize>,
    pub(crate) params: Vec<OwnedTensor>,
    pub(crate) grads: Vec<Vec<f32>>,
    ws: Workspace,
}

impl Mlp {
    /// A seeded initial model.
    pub fn init(spec: &MlpSpec, shape: DataShape, seed: u64) -> Result<Self> {
        spec.validate()?;
        let params = init_params(&spec.defs(shape), seed)?;
        Self::with_params(spec, shape, params)
    }

    /// A model with loaded parameters.
    pub fn with_params(spec: &MlpSpec, shape: DataShape, params: Vec<OwnedTensor>) -> Result<Self> {
        spec.validate()?;
        check_params(&spec.defs(shape), &params)?;
        Ok(Self {
            spec: spec.clone(),
            widths: spec.widths(shape),
            grads: zero_grads(&params),
            params,
            ws: Workspace::default(),
        })
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    fn ensure_ws(&mut self, rows: usize) {
        if self.ws.rows == rows && !self.ws.logits.is_empty() {
            return;
        }
        let hidden = &self.widths[1..self.widths.len() - 1];
        let bufs = || {
            hidden
                .iter()
                .map(|&w| vec![0.0; rows * w])
                .collect::<Vec<_>>()
        };
        let classes = *self.widths.last().expect("at least two widths");
        self.ws = Workspace {
            rows,
            pre: bufs(),
            act: bufs(),
            dpre: bufs(),
            dact: bufs(),
            logits: vec![0.0; rows * classes],
            dlogits: vec![0.0; rows * classes],
        };
    }

    fn rows_of(&self, features: &[f32]) -> Result<usize> {
        let width = self.widths[0];
        if width == 0 || !features.len().is_multiple_of(width) {
            return Err(TrainError::invalid(
                "features",
                format!("{} values are not rows of {width}", features.len()),
            ));
        }
        Ok(features.len() / width)
    }

    /// Runs the forward pass; the logits (`rows x classes`) are left in the workspace.
    fn forward(&mut self, exec: &mut Exec<'_>, x: &[f32]) -> Result<usize> {
        let rows = self.rows_of(x)?;
        self.ensure_ws(rows);
        let gelu = self.spec.activation == Activation::Gelu;
        let (w, ws, p) = (&self.widths, &mut self.ws, &self.params);
        for i in 0..w.len() - 1 {
            let dims = Dims::new(rows, w[i], w[i + 1]);
            let (weight, bias) = (&p[2 * i].data, &p[2 * i + 1].data);
            let input: &[f32] = if i == 0 { x } else { &ws.act[i - 1] };
            if i + 1 == w.len() - 1 {
                exec.linear(&mut ws.logits, input, weight, Some(bias), dims)?;
            } else {
                exec.linear(&mut ws.pre[i], input, weight, Some(bias), dims)?;
                exec.activation(gelu, &mut ws.act[i], &ws.pre[i])?;
            }
        }
        Ok(rows)
    }

    /// Forward and backward on `rows` examples; fills the gradients, returns the mean loss.
    pub fn forward_backward(
        &mut self,
        exec: &mut Exec<'_>,
        x: &[f32],
        labels: &[u32],
    ) -> Result<f32> {
        let rows = self.forward(exec, x)?;
        let classes = *self.widths.last().expect("widths");
        let ws = &mut self.ws;
        let loss = exec.cross_entropy(&mut ws.dlogits, &ws.logits, labels, (rows, classes))?;
        let gelu = self.spec.activation == Activation::Gelu;
        let (w, p, g) = (&self.widths, &self.params, &mut self.grads);
        for i in (0..self.widths.len() - 1).rev() {
            let dims = Dims::new(rows, w[i], w[i + 1]);
            let (gw, gb) = g.split_at_mut(2 * i + 1);
            let (dw, db) = (&mut gw[2 * i], &mut gb[0]);
            let dy: &[f32] = if i + 1 == w.len() - 1 {
                &ws.dlogits
            } else {
                &ws.dpre[i]
            };
            if i == 0 {
                exec.linear_backward(None, dw, Some(db), (x, &p[0].data, dy), dims)?;
            } else {
                let dx = &mut ws.dact[i - 1];
                let input = &ws.act[i - 1];
                exec.linear_backward(Some(dx), dw, Some(db), (input, &p[2 * i].data, dy), dims)?;
                exec.activation_backward(
                    gelu,
                    &mut ws.dpre[i - 1],
                    &ws.dact[i - 1],
                    &ws.pre[i - 1],
                )?;
            }
        }
        Ok(loss)
    }

    /// Logits of `rows x features` standardised rows (`rows x classes`).
    pub fn logits(&mut self, exec: &mut Exec<'_>, x: &[f32]) -> Result<Vec<f32>> {
        self.forward(exec, x)?;
        Ok(self.ws.logits.clone())
    }

    /// Mean cross-entropy and accuracy on labelled rows.
    pub fn evaluate(
        &mut self,
        exec: &mut Exec<'_>,
        x: &[f32],
        labels: &[u32],
    ) -> Result<(f32, f64)> {
        let rows = self.forward(exec, x)?;
        let classes = *self.widths.last().expect("widths");
        let loss = cross_entropy_loss(&self.ws.logits, labels, rows, classes)?;
        let correct = self
            .ws
            .logits
            .chunks_exact(classes)
            .zip(labels)
            .filter(|&(row, &label)| argmax(row) == label as usize)
            .count();
        Ok((loss, correct as f64 / rows.max(1) as f64))
    }

    /// Number of layers with weights.
    pub fn depth(&self) -> usize {
        self.layers()
    }
}
