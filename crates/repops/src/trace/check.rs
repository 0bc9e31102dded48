//! Owns: [`check_call`], the referee's check that a served [`OpCall`] is the call entry `i`
//! of the [`Layout`] demands, [`verify_prefix`], the check that the agreed entries are the
//! ones both traces commit, and [`CheckError`].
//!
//! Invariant: a call passes [`check_call`] only if its kind, dims and scalar bits equal the
//! layout's, and every input hashes ([`tensor_digest`]) to its source's digest: the agreed
//! earlier output, the agreed state's tensor, or the recomputed batch; integer inputs must
//! equal the batch's exactly. Nothing is executed.

use super::layout::{BatchPart, Expected, Layout, Source};
use super::{TraceEntry, call::OpCall, tensor_digest, trace_leaves};
use crate::commit::checkpoint::{OPT_PREFIX, PARAM_PREFIX};
use crate::commit::{Checkpoint, Digest, canonical_f32_bits};
use crate::meter::OpKind;
use crate::train::OwnedBatch;

/// Why a served call is not the one the layout demands (every variant names the call).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// The index is past the layout's last entry.
    #[error("call {index} is outside the layout of {len} entries")]
    NoSuchEntry {
        /// The call's index.
        index: u32,
        /// The layout's length.
        len: usize,
    },
    /// The call is another operator.
    #[error("call {index}: kind {found}, the layout says {expected}")]
    Kind {
        /// The call's index.
        index: u32,
        /// The layout's kind.
        expected: OpKind,
        /// The served kind.
        found: OpKind,
    },
    /// The call has other dims.
    #[error("call {index} ({kind}): dims {found:?}, the layout says {expected:?}")]
    Dims {
        /// The call's index.
        index: u32,
        /// Its kind.
        kind: OpKind,
        /// The layout's dims.
        expected: Vec<u64>,
        /// The served dims.
        found: Vec<u64>,
    },
    /// The call has other scalars (compared as canonical f32 bits).
    #[error("call {index} ({kind}): scalar bits {found:08x?}, the layout says {expected:08x?}")]
    Scalars {
        /// The call's index.
        index: u32,
        /// Its kind.
        kind: OpKind,
        /// The layout's scalar bits.
        expected: Vec<u32>,
        /// The served scalar bits.
        found: Vec<u32>,
    },
    /// The call has another number of float inputs.
    #[error("call {index} ({kind}): {found} inputs, the layout says {expected}")]
    InputCount {
        /// The call's index.
        index: u32,
        /// Its kind.
        kind: OpKind,
        /// The layout's count.
        expected: usize,
        /// The served count.
        found: usize,
    },
    /// One float input is not its source.
    #[error(
        "call {index} ({kind}): input {input} hashes to {found}, its source ({from}) to {expected}"
    )]
    Input {
        /// The call's index.
        index: u32,
        /// Its kind.
        kind: OpKind,
        /// Which input, from 0.
        input: usize,
        /// Where the layout says it comes from.
        from: Source,
        /// The source's digest.
        expected: Digest,
        /// The served input's digest.
        found: Digest,
    },
    /// The integer inputs are not the batch's (`part` is `None` when the call takes none).
    #[error("call {index} ({kind}): ids are not the batch's {}", part_name(*part))]
    Ids {
        /// The call's index.
        index: u32,
        /// Its kind.
        kind: OpKind,
        /// The batch part the layout names.
        part: Option<BatchPart>,
    },
    /// An agreed entry a source needs is missing or does not fit the layout.
    #[error("agreed entry {entry}: {reason}")]
    Agreed {
        /// The entry's index.
        entry: u32,
        /// What is wrong.
        reason: String,
    },
    /// The agreed state lacks a tensor the layout names.
    #[error("the agreed state has no tensor `{name}`")]
    StateMissing {
        /// The tensor's checkpoint name.
        name: String,
    },
    /// The agreed state is not the state before the layout's step.
    #[error("agreed state is step {found} of job {found_job}, not step {expected} of {job}")]
    WrongState {
        /// The step the layout's calls start from.
        expected: u64,
        /// The job the layout is for.
        job: Digest,
        /// The state's step.
        found: u64,
        /// The state's job.
        found_job: Digest,
    },
    /// The batch lacks a part the layout names (an MLP batch for a char LM, or the reverse).
    #[error("the batch has no {}", part.name())]
    BatchMissing {
        /// The part.
        part: BatchPart,
    },
    /// The agreed entries do not chain to the agreed leaf.
    #[error("agreed entries chain to leaf {computed}, the agreed leaf is {expected}")]
    Prefix {
        /// The leaf both traces commit.
        expected: Digest,
        /// The leaf the served entries chain to.
        computed: Digest,
    },
}

fn part_name(part: Option<BatchPart>) -> &'static str {
    part.map_or("(none)", BatchPart::name)
}

/// Checks that `agreed` (entries `0..agreed.len()` of the step) chains from `start` (the
/// agreed state's step digest) to `leaf`, the last leaf both parties' trace roots commit.
pub fn verify_prefix(
    start: &Digest,
    agreed: &[TraceEntry],
    leaf: &Digest,
) -> Result<(), CheckError> {
    let computed = trace_leaves(start, agreed)
        .last()
        .copied()
        .unwrap_or(*start);
    if computed != *leaf {
        return Err(CheckError::Prefix {
            expected: *leaf,
            computed,
        });
    }
    Ok(())
}

/// The referee's check of `call`, served as entry `index` of `layout`'s step: its kind, dims
/// and scalars, and each input against its [`Source`] in `agreed` (the entries before
/// `index`, already checked with [`verify_prefix`]), `state` (the agreed state `s - 1`,
/// already checked against leaf `s - 1`) and `batch` (recomputed with
/// [`crate::train::step_batch`]).
pub fn check_call(
    layout: &Layout,
    index: u32,
    call: &OpCall,
    agreed: &[TraceEntry],
    state: &Checkpoint,
    batch: &OwnedBatch,
) -> Result<(), CheckError> {
    let len = layout.len();
    let want = layout
        .get(index)
        .ok_or(CheckError::NoSuchEntry { index, len })?;
    check_shape(index, want, call)?;
    let kind = call.kind;
    let (job, step) = (layout.job_spec_hash(), layout.step());
    if state.meta.job_spec_hash != job || state.meta.step.checked_add(1) != Some(step) {
        return Err(CheckError::WrongState {
            expected: step - 1,
            job,
            found: state.meta.step,
            found_job: state.meta.job_spec_hash,
        });
    }
    for (input, (from, data)) in want.inputs.iter().zip(&call.inputs).enumerate() {
        let expected = source_digest(layout, index, from, agreed, state, batch)?;
        let found = tensor_digest(data);
        if found != expected {
            let from = from.clone();
            return Err(CheckError::Input {
                index,
                kind,
                input,
                from,
                expected,
                found,
            });
        }
    }
    let ids = match want.ids {
        None => Vec::new(),
        Some(part) => batch_ids(layout, batch, part)?,
    };
    if call.ids != ids {
        let part = want.ids;
        return Err(CheckError::Ids { index, kind, part });
    }
    Ok(())
}

/// Kind, dims, scalar bits and input count.
fn check_shape(index: u32, want: &Expected, call: &OpCall) -> Result<(), CheckError> {
    let kind = call.kind;
    if kind != want.kind {
        let expected = want.kind;
        return Err(CheckError::Kind {
            index,
            expected,
            found: kind,
        });
    }
    if call.dims != want.dims {
        let (expected, found) = (want.dims.clone(), call.dims.clone());
        return Err(CheckError::Dims {
            index,
            kind,
            expected,
            found,
        });
    }
    let bits = |s: &[f32]| s.iter().map(|&x| canonical_f32_bits(x)).collect::<Vec<_>>();
    let (expected, found) = (bits(&want.scalars), bits(&call.scalars));
    if expected != found {
        return Err(CheckError::Scalars {
            index,
            kind,
            expected,
            found,
        });
    }
    let (expected, found) = (want.inputs.len(), call.inputs.len());
    if expected != found {
        return Err(CheckError::InputCount {
            index,
            kind,
            expected,
            found,
        });
    }
    Ok(())
}

/// The digest input `from` of call `index` must have.
fn source_digest(
    layout: &Layout,
    index: u32,
    from: &Source,
    agreed: &[TraceEntry],
    state: &Checkpoint,
    batch: &OwnedBatch,
) -> Result<Digest, CheckError> {
    match from {
        &Source::Op { index: entry, slot } => {
            // The layout only names earlier entries; `agreed` must hold them as laid out.
            assert!(entry < index, "layouts name earlier entries only");
            let bad = |reason: String| CheckError::Agreed { entry, reason };
            let e = agreed
                .get(entry as usize)
                .ok_or_else(|| bad(format!("missing ({} agreed entries)", agreed.len())))?;
            let want = layout.get(entry).expect("earlier entries exist");
            if e.index != entry || e.op != want.kind.name() {
                return Err(bad(format!(
                    "is call {} ({}), not {}",
                    e.index, e.op, want.kind
                )));
            }
            if e.outputs.len() != want.outputs as usize {
                let n = e.outputs.len();
                return Err(bad(format!(
                    "{n} outputs, the layout says {}",
                    want.outputs
                )));
            }
            Ok(e.outputs[slot as usize])
        }
        Source::State { name } => {
            let missing = || CheckError::StateMissing { name: name.clone() };
            let (group, bare) = if let Some(bare) = name.strip_prefix(PARAM_PREFIX) {
                (&state.params, bare)
            } else {
                let bare = name.strip_prefix(OPT_PREFIX).ok_or_else(missing)?;
                (&state.opt, bare)
            };
            let tensor = group.iter().find(|t| t.name == bare).ok_or_else(missing)?;
            Ok(tensor_digest(&tensor.data))
        }
        &Source::Batch { part } => match (part, batch) {
            (BatchPart::Features, OwnedBatch::Rows { features, .. }) => Ok(tensor_digest(features)),
            _ => Err(CheckError::BatchMissing { part }),
        },
    }
}

/// The integer values of batch part `part`.
fn batch_ids(layout: &Layout, batch: &OwnedBatch, part: BatchPart) -> Result<Vec<u32>, CheckError> {
    let ids = match (part, batch) {
        (BatchPart::Labels, OwnedBatch::Rows { labels, .. }) => Some(labels.clone()),
        (BatchPart::Tokens, OwnedBatch::Tokens { inputs, .. }) => Some(inputs.clone()),
        (BatchPart::Targets, OwnedBatch::Tokens { targets, .. }) => Some(targets.clone()),
        (BatchPart::Positions, OwnedBatch::Tokens { .. }) => layout.positions(),
        _ => None,
    };
    ids.ok_or(CheckError::BatchMissing { part })
}
