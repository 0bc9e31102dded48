//! Owns: [`CharLm`], a decoder-only transformer over characters: token and position
//! embeddings, `layers` pre-LN blocks of causal multi-head self-attention and a GELU MLP,
//! a final layer norm and an untied output projection.
//!
//! Parameters, in digest order: `tok_emb` `[V, d]`, `pos_emb` `[T, d]`; for each block
//! `h{l}.` followed by the 16 names of the block (`ln1.gamma`, ..., `mlp.proj.bias`, see
//! `charlm_block`); then `ln_f.gamma`, `ln_f.beta`, `head.weight` `[d, V]`, `head.bias`.
//! Embeddings start `U(-0.05, 0.05)`, weights `U(-1/sqrt(fan_in), ..)`, biases 0, gammas 1.
//!
//! A step calls: `embedding` (tokens), `embedding` (positions), `add_into`, each block's
//! forward, `layer_norm`, `linear` (head), `cross_entropy`; then `linear_backward` (head),
//! `layer_norm_backward`, each block's backward from the top, `embedding_backward` (tokens,
//! then positions).

use serde::{Deserialize, Serialize};

use super::charlm_block::{self as block, BLOCK_PARAMS, BlockWs, Geom, LN_EPS, Scratch};
use super::{
    DataShape, Init, ParamDef, argmax, check_params, fan_in_bound, init_params, zero_grads,
};
use crate::commit::OwnedTensor;
use crate::data::derive_seed;
use crate::exec::Exec;
use crate::gemm::Dims;
use crate::kernels::{cross_entropy_loss, softmax_forward};
use crate::rng::CounterRng;
use crate::train::{Result, TrainError};

/// Domain of the key that sampling draws from.
pub const SAMPLE_DOMAIN: &str = "poi/repops/sample/v1";
/// Largest model width.
pub const D_MODEL_MAX: u32 = 4096;
/// Most blocks.
pub const LAYERS_MAX: u32 = 64;
/// Longest context.
pub const CONTEXT_MAX: u32 = 4096;
/// Bound of the uniform embedding initialisation.
const EMB_BOUND: f32 = 0.05;

/// Transformer hyperparameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharLmSpec {
    /// Model width `d`.
    pub d_model: u32,
    /// Attention heads (divides `d_model`).
    pub heads: u32,
    /// Transformer blocks.
    pub layers: u32,
    /// Context length `T`.
    pub context: u32,
    /// Hidden width of each block's MLP.
    pub d_ff: u32,
}

impl Default for CharLmSpec {
    /// `d 64, 4 heads, 2 blocks, context 64, MLP 256`.
    fn default() -> Self {
        Self {
            d_model: 64,
            heads: 4,
            layers: 2,
            context: 64,
            d_ff: 256,
        }
    }
}

impl CharLmSpec {
    /// Checks the limits.
    pub fn validate(&self) -> Result<()> {
        let ok = (1..=D_MODEL_MAX).contains(&self.d_model)
            && self.heads >= 1
            && self.d_model.is_multiple_of(self.heads)
            && (1..=LAYERS_MAX).contains(&self.layers)
            && (1..=CONTEXT_MAX).contains(&self.context)
            && (1..=4 * D_MODEL_MAX).contains(&self.d_ff);
        if ok {
            return Ok(());
        }
        Err(TrainError::invalid("charlm shape", format!("{self:?}")))
    }

    pub(crate) fn defs(&self, vocab: usize) -> Vec<ParamDef> {
        let (d, t, dff) = (
            self.d_model as usize,
            self.context as usize,
            self.d_ff as usize,
        );
        let def = |name: String, shape: Vec<usize>, init| ParamDef { name, shape, init };
        let mut defs = vec![
            def("tok_emb".into(), vec![vocab, d], Init::Uniform(EMB_BOUND)),
            def("pos_emb".into(), vec![t, d], Init::Uniform(EMB_BOUND)),
        ];
        for l in 0..self.layers {
            for name in BLOCK_PARAMS {
                let (shape, init) = match name {
                    "ln1.gamma" | "ln2.gamma" => (vec![d], Init::Constant(1.0)),
                    "mlp.fc.weight" => (vec![d, dff], Init::Uniform(fan_in_bound(d))),
                    "mlp.fc.bias" => (vec![dff], Init::Constant(0.0)),
                    "mlp.proj.weight" => (vec![dff, d], Init::Uniform(fan_in_bound(dff))),
                    n if n.ends_with(".weight") => (vec![d, d], Init::Uniform(fan_in_bound(d))),
                    _ => (vec![d], Init::Constant(0.0)),
                };
                defs.push(def(format!("h{l}.{name}"), shape, init));
            }
        }
        defs.push(def("ln_f.gamma".into(), vec![d], Init::Constant(1.0)));
        defs.push(def("ln_f.beta".into(), vec![d], Init::Constant(0.0)));
        defs.push(def(
            "head.weight".into(),
            vec![d, vocab],
            Init::Uniform(fan_in_bound(d)),
        ));
        defs.push(def("head.bias".into(), vec![vocab], Init::Constant(0.0)));
        defs
    }
}

/// Buffers of one `(batch, t)` shape.
#[derive(Debug, Clone)]
struct Workspace {
    geom: Geom,
    pos_ids: Vec<u32>,
    tok: Vec<f32>,
    pos: Vec<f32>,
    /// Residual stream before each block and after the last (`layers + 1` buffers).
    xs: Vec<Vec<f32>>,
    blocks: Vec<BlockWs>,
    y: Vec<f32>,
    meanf: Vec<f32>,
    rstdf: Vec<f32>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    dy: Vec<f32>,
    dres: [Vec<f32>; 2],
    scratch: Scratch,
}

impl Workspace {
    fn new(geom: Geom, layers: usize, vocab: usize) -> Self {
        let (n, d) = (geom.n(), geom.d);
        let z = |len: usize| vec![0.0f32; len];
        Self {
            geom,
            pos_ids: (0..n).map(|i| (i % geom.t) as u32).collect(),
            tok: z(n * d),
            pos: z(n * d),
            xs: (0..=layers).map(|_| z(n * d)).collect(),
            blocks: (0..layers).map(|_| BlockWs::new(geom)).collect(),
            y: z(n * d),
            meanf: z(n),
            rstdf: z(n),
            logits: z(n * vocab),
            dlogits: z(n * vocab),
            dy: z(n * d),
            dres: [z(n * d), z(n * d)],
            scratch: Scratch::new(geom),
        }
    }
}

/// The character-level transformer language model.
#[derive(Debug, Clone)]
pub struct CharLm {
    spec: CharLmSpec,
    vocab: usize,
    pub(crate) params: Vec<OwnedTensor>,
    pub(crate) grads: Vec<Vec<f32>>,
    ws: Option<Box<Workspace>>,
}

impl CharLm {
    /// A seeded initial model over a vocabulary of `shape.inputs` tokens.
    pub fn init(spec: &CharLmSpec, shape: DataShape, seed: u64) -> Result<Self> {
        spec.validate()?;
        let params = init_params(&spec.defs(shape.inputs), seed)?;
        Self::with_params(spec, shape, params)
    }

    /// A model with loaded parameters.
    pub fn with_params(
        spec: &CharLmSpec,
        shape: DataShape,
        params: Vec<OwnedTensor>,
    ) -> Result<Self> {
        spec.validate()?;
        if shape.inputs != shape.classes || shape.inputs == 0 {
            return Err(TrainError::invalid("vocabulary", format!("{shape:?}")));
        }
        check_params(&spec.defs(shape.inputs), &params)?;
        Ok(Self {
            spec: spec.clone(),
            vocab: shape.inputs,
            grads: zero_grads(&params),
            params,
            ws: None,
        })
    }

    /// The hyperparameters.
    pub fn spec(&self) -> &CharLmSpec {
        &self.spec
    }

    fn geom(&self, b: usize, t: usize) -> Geom {
        Geom {
            b,
            t,
            d: self.spec.d_model as usize,
            heads: self.spec.heads as usize,
            dff: self.spec.d_ff as usize,
        }
    }

    /// Checks the token buffer and makes a workspace for `rows` sequences of `t`.
    fn prepare(&mut self, ids: &[u32], t: usize) -> Result<()> {
        if t == 0
            || t > self.spec.context as usize
            || !ids.len().is_multiple_of(t)
            || ids.is_empty()
        {
            return Err(TrainError::invalid(
                "tokens",
                format!(
                    "{} tokens are not whole sequences of {t} <= context",
                    ids.len()
                ),
            ));
        }
        let geom = self.geom(ids.len() / t, t);
        if self.ws.as_ref().is_none_or(|ws| ws.geom != geom) {
            let layers = self.spec.layers as usize;
            self.ws = Some(Box::new(Workspace::new(geom, layers, self.vocab)));
        }
        Ok(())
    }

    /// Forward pass over `ids` (`b x t`); logits stay in the workspace.
    fn forward(&mut self, exec: &mut Exec<'_>, ids: &[u32], t: usize) -> Result<()> {
        self.prepare(ids, t)?;
        let ws = self.ws.as_mut().expect("prepared");
        let (p, g, v) = (&self.params, ws.geom, self.vocab);
        let (n, d) = (g.n(), g.d);
        exec.embedding(&mut ws.tok, &p[0].data, ids, (v, d))?;
        let pos_table = &p[1].data[..t * d];
        exec.embedding(&mut ws.pos, pos_table, &ws.pos_ids, (t, d))?;
        exec.add_into(&mut ws.xs[0], &ws.tok, &ws.pos)?;
        for (l, bws) in ws.blocks.iter_mut().enumerate() {
            let (lo, hi) = ws.xs.split_at_mut(l + 1);
            let base = 2 + l * BLOCK_PARAMS.len();
            let bp = &p[base..base + BLOCK_PARAMS.len()];
            block::forward(exec, bp, &lo[l], &mut hi[0], bws, g)?;
        }
        let f = 2 + self.spec.layers as usize * BLOCK_PARAMS.len();
        let last = ws.xs.last().expect("layers + 1 buffers");
        let saved = (&mut ws.meanf[..], &mut ws.rstdf[..]);
        exec.layer_norm(
            &mut ws.y,
            saved,
            last,
            (&p[f].data, &p[f + 1].data),
            (n, d),
            LN_EPS,
        )?;
        let head = Dims::new(n, d, v);
        exec.linear(
            &mut ws.logits,
            &ws.y,
            &p[f + 2].data,
            Some(&p[f + 3].data),
            head,
        )?;
        Ok(())
    }

    /// Forward and backward on `b x context` windows; fills the gradients, returns the mean
    /// loss per token.
    pub fn forward_backward(
        &mut self,
        exec: &mut Exec<'_>,
        ids: &[u32],
        targets: &[u32],
    ) -> Result<f32> {
        let t = self.spec.context as usize;
        self.forward(exec, ids, t)?;
        let ws = self.ws.as_mut().expect("prepared");
        let (p, grads, g, v) = (&self.params, &mut self.grads, ws.geom, self.vocab);
        let (n, d) = (g.n(), g.d);
        let loss = exec.cross_entropy(&mut ws.dlogits, &ws.logits, targets, (n, v))?;
        let f = 2 + self.spec.layers as usize * BLOCK_PARAMS.len();
        let (lo, hi) = grads.split_at_mut(f + 2);
        let (dw, db) = hi.split_at_mut(1);
        let head = Dims::new(n, d, v);
        exec.linear_backward(
            Some(&mut ws.dy),
            &mut dw[0],
            Some(&mut db[0]),
            (&ws.y, &p[f + 2].data, &ws.dlogits),
            head,
        )?;
        let (lo, gf) = lo.split_at_mut(f);
        let (dgam, dbet) = gf.split_at_mut(1);
        let last = ws.xs.last().expect("layers + 1 buffers");
        let saved = (ws.meanf.as_slice(), ws.rstdf.as_slice());
        let [dres_a, dres_b] = &mut ws.dres;
        exec.layer_norm_backward(
            dres_a,
            (&mut dgam[0], &mut dbet[0]),
            &ws.dy,
            last,
            &p[f].data,
            saved,
            (n, d),
        )?;
        let (mut cur, mut next) = (dres_a, dres_b);
        for l in (0..ws.blocks.len()).rev() {
            let base = 2 + l * BLOCK_PARAMS.len();
            let range = base..base + BLOCK_PARAMS.len();
            let (bp, bg) = (&p[range.clone()], &mut lo[range]);
            let io = (cur.as_slice(), next.as_mut_slice());
            block::backward(
                exec,
                bp,
                bg,
                &ws.xs[l],
                io,
                &ws.blocks[l],
                &mut ws.scratch,
                g,
            )?;
            std::mem::swap(&mut cur, &mut next);
        }
        let (dtok, dpos) = lo[..2].split_at_mut(1);
        exec.embedding_backward(&mut dtok[0], cur, ids, (v, d))?;
        exec.embedding_backward(&mut dpos[0], cur, &ws.pos_ids, (t, d))?;
        Ok(loss)
    }

    /// Mean loss per token over every non-overlapping `context` window of `tokens`, in
    /// batches of `batch` windows (the last batch may be smaller). Returns `(nll, windows)`.
    pub fn evaluate(
        &mut self,
        exec: &mut Exec<'_>,
        tokens: &[u32],
        batch: usize,
    ) -> Result<(f64, u64)> {
        let t = self.spec.context as usize;
        let windows = crate::data::eval_window_count(tokens.len() as u64, t as u32);
        if windows == 0 || batch == 0 {
            return Err(TrainError::invalid(
                "eval",
                format!("{} tokens, context {t}", tokens.len()),
            ));
        }
        let (mut sum, mut first) = (0.0f64, 0u64);
        while first < windows {
            let count = (windows - first).min(batch as u64) as usize;
            let (mut ids, mut tg) = (vec![0u32; count * t], vec![0u32; count * t]);
            for (i, (x, y)) in ids
                .chunks_exact_mut(t)
                .zip(tg.chunks_exact_mut(t))
                .enumerate()
            {
                crate::data::eval_window(tokens, first + i as u64, x, y)?;
            }
            self.forward(exec, &ids, t)?;
            let ws = self.ws.as_ref().expect("prepared");
            let loss = cross_entropy_loss(&ws.logits, &tg, count * t, self.vocab)?;
            sum += f64::from(loss) * count as f64;
            first += count as u64;
        }
        Ok((sum / windows as f64, windows))
    }

    /// Continues `prompt` by `count` tokens: greedy (first maximum) without a seed, else
    /// sampled from the softmax with `CounterRng::new(derive_seed(seed, SAMPLE_DOMAIN), i)`
    /// for the `i`-th new token (first index whose running f32 sum exceeds `u`).
    pub fn generate(
        &mut self,
        exec: &mut Exec<'_>,
        prompt: &[u32],
        count: usize,
        seed: Option<u64>,
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(TrainError::invalid("prompt", "is empty"));
        }
        let ctx = self.spec.context as usize;
        let mut tokens = prompt.to_vec();
        let mut probs = vec![0.0f32; self.vocab];
        for i in 0..count {
            let window = &tokens[tokens.len().saturating_sub(ctx)..];
            let t = window.len();
            let window = window.to_vec();
            self.forward(exec, &window, t)?;
            let ws = self.ws.as_ref().expect("prepared");
            let row = &ws.logits[(t - 1) * self.vocab..t * self.vocab];
            let next = match seed {
                None => argmax(row),
                Some(seed) => {
                    softmax_forward(&mut probs, row, 1, self.vocab)?;
                    let u =
                        CounterRng::new(derive_seed(seed, SAMPLE_DOMAIN), i as u64).uniform_f32();
                    let mut acc = 0.0f32;
                    probs
                        .iter()
                        .position(|&p| {
                            acc += p;
                            acc > u
                        })
                        .unwrap_or(self.vocab - 1)
                }
            };
            tokens.push(next as u32);
        }
        Ok(tokens.split_off(prompt.len()))
    }
}
