//! Metering: the deterministic FLOP and bytes-moved count of every operator call, and the
//! measured wall time per operator kind.
//!
//! Owns: [`OpKind`], [`OpCost`], [`op_cost`], [`Meter`]. Invariant: the cost of a call is a
//! pure function of its kind and its integer dimensions (never of data, timing or threads),
//! so the count for a job is the same on every machine; only [`Meter::nanos`] is measured.
//!
//! # Formulas
//!
//! Every buffer element is an `f32` or `u32` (4 bytes). `bytes` is what the operator reads
//! plus what it writes, each operand counted once; `flops` counts one per arithmetic
//! operation, a fused multiply-add as two, and `expf`, `logf`, `tanhf`, `sqrt` as one.
//!
//! | kind | dims | flops | bytes / 4 |
//! |---|---|---|---|
//! | `linear_forward` | `m k n bias` | `2mkn` | `mk + kn + bias*n + mn` |
//! | `linear_backward` | `m k n dx db` | `2mkn (dw) + dx*2mkn + db*mn` | `mk + kn + mn + kn + dx*mk + db*n` |
//! | `relu_forward` | `n` | `n` | `2n` |
//! | `relu_backward` | `n` | `n` | `3n` |
//! | `gelu_forward` | `n` | `10n` | `2n` |
//! | `gelu_backward` | `n` | `18n` | `3n` |
//! | `add_into`, `add_assign` | `n` | `n` | `3n` |
//! | `cross_entropy` | `r c` | `6rc` | `2rc + r + 1` |
//! | `layer_norm_forward` | `r c` | `8rc` | `2rc + 2c + 2r` |
//! | `layer_norm_backward` | `r c` | `14rc` | `3rc + 3c + 2r` |
//! | `embedding_forward` | `p v d` | `0` | `p + 2pd` |
//! | `embedding_backward` | `p v d` | `pd` | `p + pd + vd` |
//! | `attention_forward` | `bh t dh` | `4·bh·t²·dh + 5·bh·t²` | `4·bh·t·dh + bh·t²` |
//! | `attention_backward` | `bh t dh` | `8·bh·t²·dh + 5·bh·t²` | `7·bh·t·dh + bh·t²` |
//! | `split_heads`, `merge_heads` | `b t h dh` | `0` | `2·b·t·h·dh` |
//! | `adamw_step` | `n t` | `16n` | `7n` |
//! | `sgd_step` | `n` | `6n` | `5n` |
//! | `step_state` | `step tensors elements` | `0` | `elements` |
//!
//! Attention multiplies full `t x t` score matrices (the canonical GEMM does not skip the
//! masked half), so its count is the work done, not the causal minimum.
//!
//! `step_state` is the pseudo-operator that closes a step's operator trace
//! ([`crate::trace`]): it hashes the whole state (the step digest) and computes nothing, so
//! it counts no FLOPs and reads every state element once. Only a tracing or capturing
//! [`crate::exec::Exec`] makes it, and a referee re-running it.
//!
//! Stability: ALPHA; the per-element constants may be refined, the GEMM terms will not.

use std::collections::BTreeMap;

/// Metered FLOPs in one compute unit, the unit the market prices work in: a job's size and a
/// provider's capacity are counted in these, so an H100 and a laptop are priced by the work
/// they deliver, not by name.
pub const FLOPS_PER_COMPUTE_UNIT: u64 = 1_000_000;

/// Compute units of `flops` metered FLOPs, rounded up (a started unit is a unit).
pub fn compute_units(flops: u64) -> u64 {
    flops.div_ceil(FLOPS_PER_COMPUTE_UNIT)
}

/// Every operator a model step calls, in no particular order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `y = x w (+ b)`.
    LinearForward,
    /// Gradients of the linear layer.
    LinearBackward,
    /// ReLU.
    ReluForward,
    /// ReLU gradient.
    ReluBackward,
    /// Tanh GELU.
    GeluForward,
    /// Tanh GELU gradient.
    GeluBackward,
    /// `out = a + b`.
    AddInto,
    /// `acc += x`.
    AddAssign,
    /// Mean cross-entropy fused with its gradient.
    CrossEntropy,
    /// Layer norm.
    LayerNormForward,
    /// Layer norm gradients.
    LayerNormBackward,
    /// Embedding lookup.
    EmbeddingForward,
    /// Embedding scatter-add gradient.
    EmbeddingBackward,
    /// Causal attention.
    AttentionForward,
    /// Causal attention gradients.
    AttentionBackward,
    /// `[b, t, h*dh]` to `[b*h, t, dh]`.
    SplitHeads,
    /// `[b*h, t, dh]` to `[b, t, h*dh]`.
    MergeHeads,
    /// One AdamW update of one parameter.
    AdamwStep,
    /// One SGD update of one parameter.
    SgdStep,
    /// The end of a step's trace: hashes the parameters and optimizer state into the step
    /// digest (see [`crate::trace`]).
    StepState,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 20] = [
        Self::LinearForward,
        Self::LinearBackward,
        Self::ReluForward,
        Self::ReluBackward,
        Self::GeluForward,
        Self::GeluBackward,
        Self::AddInto,
        Self::AddAssign,
        Self::CrossEntropy,
        Self::LayerNormForward,
        Self::LayerNormBackward,
        Self::EmbeddingForward,
        Self::EmbeddingBackward,
        Self::AttentionForward,
        Self::AttentionBackward,
        Self::SplitHeads,
        Self::MergeHeads,
        Self::AdamwStep,
        Self::SgdStep,
        Self::StepState,
    ];

    /// The snake-case name (the kernel's name).
    pub fn name(self) -> &'static str {
        match self {
            Self::LinearForward => "linear_forward",
            Self::LinearBackward => "linear_backward",
            Self::ReluForward => "relu_forward",
            Self::ReluBackward => "relu_backward",
            Self::GeluForward => "gelu_forward",
            Self::GeluBackward => "gelu_backward",
            Self::AddInto => "add_into",
            Self::AddAssign => "add_assign",
            Self::CrossEntropy => "cross_entropy",
            Self::LayerNormForward => "layer_norm_forward",
            Self::LayerNormBackward => "layer_norm_backward",
            Self::EmbeddingForward => "embedding_forward",
            Self::EmbeddingBackward => "embedding_backward",
            Self::AttentionForward => "attention_forward",
            Self::AttentionBackward => "attention_backward",
            Self::SplitHeads => "split_heads",
            Self::MergeHeads => "merge_heads",
            Self::AdamwStep => "adamw_step",
            Self::SgdStep => "sgd_step",
            Self::StepState => "step_state",
        }
    }

    /// The kind called `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How many dimensions a call of this kind carries.
    pub fn dims_len(self) -> usize {
        match self {
            Self::LinearForward => 4,
            Self::LinearBackward => 5,
            Self::CrossEntropy | Self::LayerNormForward | Self::LayerNormBackward => 2,
            Self::AdamwStep => 2,
            Self::EmbeddingForward
            | Self::EmbeddingBackward
            | Self::AttentionForward
            | Self::AttentionBackward
            | Self::StepState => 3,
            Self::SplitHeads | Self::MergeHeads => 4,
            _ => 1,
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one call costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCost {
    /// Floating-point operations (see the module formulas).
    pub flops: u64,
    /// Bytes read plus bytes written.
    pub bytes: u64,
}

/// The cost of one call of `kind` with dimensions `dims` (laid out as the module table
/// says; missing dimensions count as 0). Saturates instead of overflowing.
pub fn op_cost(kind: OpKind, dims: &[u64]) -> OpCost {
    let d = |i: usize| dims.get(i).copied().unwrap_or(0);
    let mul = |xs: &[u64]| xs.iter().fold(1u64, |a, &x| a.saturating_mul(x));
    let (flops, words) = match kind {
        OpKind::LinearForward => {
            let (m, k, n, bias) = (d(0), d(1), d(2), d(3));
            let words = mul(&[m, k]) + mul(&[k, n]) + bias * n + mul(&[m, n]);
            (mul(&[2, m, k, n]), words)
        }
        OpKind::LinearBackward => {
            let (m, k, n, dx, db) = (d(0), d(1), d(2), d(3), d(4));
            let gemm = mul(&[2, m, k, n]);
            let flops = gemm + dx * gemm + db * mul(&[m, n]);
            let words = mul(&[m, k]) + 2 * mul(&[k, n]) + mul(&[m, n]) + dx * mul(&[m, k]);
            (flops, words + db * n)
        }
        OpKind::ReluForward => (d(0), 2 * d(0)),
        OpKind::ReluBackward => (d(0), 3 * d(0)),
        OpKind::GeluForward => (10 * d(0), 2 * d(0)),
        OpKind::GeluBackward => (18 * d(0), 3 * d(0)),
        OpKind::AddInto | OpKind::AddAssign => (d(0), 3 * d(0)),
        OpKind::CrossEntropy => {
            let rc = mul(&[d(0), d(1)]);
            (6 * rc, 2 * rc + d(0) + 1)
        }
        OpKind::LayerNormForward => {
            let rc = mul(&[d(0), d(1)]);
            (8 * rc, 2 * rc + 2 * d(1) + 2 * d(0))
        }
        OpKind::LayerNormBackward => {
            let rc = mul(&[d(0), d(1)]);
            (14 * rc, 3 * rc + 3 * d(1) + 2 * d(0))
        }
        OpKind::EmbeddingForward => (0, d(0) + 2 * mul(&[d(0), d(2)])),
        OpKind::EmbeddingBackward => {
            let pd = mul(&[d(0), d(2)]);
            (pd, d(0) + pd + mul(&[d(1), d(2)]))
        }
        OpKind::AttentionForward | OpKind::AttentionBackward => {
            let (bh, t, dh) = (d(0), d(1), d(2));
            let tt = mul(&[bh, t, t]);
            let btd = mul(&[bh, t, dh]);
            if kind == OpKind::AttentionForward {
                (mul(&[4, tt, dh]) + 5 * tt, 4 * btd + tt)
            } else {
                (mul(&[8, tt, dh]) + 5 * tt, 7 * btd + tt)
            }
        }
        OpKind::SplitHeads | OpKind::MergeHeads => (0, 2 * mul(&[d(0), d(1), d(2), d(3)])),
        OpKind::AdamwStep => (16 * d(0), 7 * d(0)),
        OpKind::SgdStep => (6 * d(0), 5 * d(0)),
        OpKind::StepState => (0, d(2)),
    };
    OpCost {
        flops,
        bytes: words.saturating_mul(4),
    }
}

/// Per-kind totals: calls, cost and measured nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KindTotals {
    /// Number of calls.
    pub calls: u64,
    /// Summed cost.
    pub cost: OpCost,
    /// Measured wall time, nanoseconds (not deterministic).
    pub nanos: u64,
}

/// Accumulates costs and wall time per operator kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meter {
    kinds: BTreeMap<OpKind, KindTotals>,
}

impl Meter {
    /// An empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one call.
    pub fn record(&mut self, kind: OpKind, cost: OpCost, nanos: u64) {
        let totals = self.kinds.entry(kind).or_default();
        totals.calls += 1;
        totals.cost.flops = totals.cost.flops.saturating_add(cost.flops);
        totals.cost.bytes = totals.cost.bytes.saturating_add(cost.bytes);
        totals.nanos = totals.nanos.saturating_add(nanos);
    }

    /// Adds every total of `other` into this meter.
    pub fn merge(&mut self, other: &Meter) {
        for (&kind, t) in &other.kinds {
            let totals = self.kinds.entry(kind).or_default();
            totals.calls += t.calls;
            totals.cost.flops = totals.cost.flops.saturating_add(t.cost.flops);
            totals.cost.bytes = totals.cost.bytes.saturating_add(t.cost.bytes);
            totals.nanos = totals.nanos.saturating_add(t.nanos);
        }
    }

    /// The summed deterministic cost over all kinds.
    pub fn total(&self) -> OpCost {
        self.kinds.values().fold(OpCost::default(), |a, t| OpCost {
            flops: a.flops.saturating_add(t.cost.flops),
            bytes: a.bytes.saturating_add(t.cost.bytes),
        })
    }

    /// The summed wall time over all kinds, nanoseconds.
    pub fn nanos(&self) -> u64 {
        self.kinds.values().map(|t| t.nanos).sum()
    }

    /// Totals per kind, in [`OpKind`] order.
    pub fn kinds(&self) -> impl Iterator<Item = (OpKind, &KindTotals)> {
        self.kinds.iter().map(|(&k, t)| (k, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_gemm_terms_follow_2mkn() {
        for kind in OpKind::ALL {
            assert_eq!(OpKind::parse(kind.name()), Some(kind));
        }
        let c = op_cost(OpKind::LinearForward, &[2, 3, 4, 1]);
        assert_eq!(c.flops, 48);
        assert_eq!(c.bytes, 4 * (6 + 12 + 4 + 8));
        let c = op_cost(OpKind::LinearBackward, &[2, 3, 4, 0, 1]);
        assert_eq!(c.flops, 48 + 8);
        let mut m = Meter::new();
        m.record(OpKind::ReluForward, op_cost(OpKind::ReluForward, &[5]), 7);
        m.record(OpKind::ReluForward, op_cost(OpKind::ReluForward, &[5]), 3);
        assert_eq!(
            m.total(),
            OpCost {
                flops: 10,
                bytes: 80
            }
        );
        assert_eq!(m.nanos(), 10);
    }
}
