//! Verified quality: the held-out evaluation a training job is scored on, the provider's
//! claim, the validators' measurement, and the reward multiplier.
//!
//! # Flow
//! 1. **Commit before training.** `SubmitTraining` carries `eval_commitment = blake3(
//!    "poi/eval/v1" | len u16 | dataset | salt [32] | select_permille u16 LE)`, so the eval set
//!    (the records of the dataset's public eval split with `u64_le(blake3(salt | record)[0..8])
//!    mod 1000 < select_permille`) is unknown to the provider until after its commitment.
//! 2. **Reveal** (`RevealEval`, by the owner, within `reveal_blocks` of the commit). Without
//!    a reveal the whole public eval split is used and the multiplier is capped at 1,000,000.
//! 3. **Claim** (`ClaimScore`, by the provider, within `claim_blocks` of the reveal or its
//!    deadline): its mean eval loss in micro-nats. Without a claim the multiplier is 0, which
//!    is not a fault.
//! 4. **Measure.** Once the job is drawn and the claim window closed, an eval check is drawn
//!    like any spot check ([`super::spot`]). Its validator attests `Scores { score, base_score
//!    }` (micro-nats, of the committed model and of its base: the registered `base_model`, or
//!    the job's own step-0 state). A score that differs from the claim is an accusation: the
//!    referees recompute, and if they uphold it the provider is slashed for `forged_score`.
//! 5. **Multiplier.** `g = max(0, base - score) x 10^6 / base` ppm, rounded down;
//!    `m(g)` is piecewise linear through `quality_knots`, rounded down, flat after the last
//!    knot. Validation keeps `m` monotone with `m(0) = 0`, so no improvement earns nothing.
//!
//! The stages with a deadline (awaiting the reveal or the claim) keep one deadline key
//! `poi/x/<due><job><QUALITY_SLOT>`; the audit checks it.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::TxError;
use crate::event::{Event, hex32};
use crate::market;
use crate::module::ExecContext;

use super::NAME;
use super::checks::deadline_key;
use super::records::{PoiJob, PoiStatus, job_or_err, write_job};

/// The check-number slot of a job's quality deadline in `poi/x/`.
pub const QUALITY_SLOT: u32 = u32::MAX;

/// Where a training job's quality evaluation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityStage {
    /// Waiting for the owner's reveal until height `due`.
    AwaitingReveal {
        /// Deadline.
        due: u64,
    },
    /// Waiting for the provider's claim until height `due`.
    AwaitingClaim {
        /// Deadline.
        due: u64,
    },
    /// The eval check measures (or will, once the job is drawn).
    Evaluating,
    /// Measured (or abandoned with the job).
    Done,
}

/// The revealed evaluation set.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct EvalReveal {
    /// Dataset whose public eval split is sampled.
    pub dataset: String,
    /// Selection salt.
    #[serde(serialize_with = "hex32")]
    pub salt: [u8; 32],
    /// Permille of the eval split selected (1..=1000).
    pub select_permille: u16,
}

/// A training job's quality record.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Quality {
    /// What `SubmitTraining` committed to.
    #[serde(serialize_with = "hex32")]
    pub eval_commitment: [u8; 32],
    /// The registered version this job fine-tunes, if any.
    pub base_model: Option<u64>,
    /// Where the evaluation is.
    pub stage: QualityStage,
    /// The reveal, if the owner made it in time.
    pub reveal: Option<EvalReveal>,
    /// The provider's claimed score, micro-nats.
    pub claim: Option<u64>,
    /// The eval check's number, once created.
    pub eval_check: Option<u32>,
    /// Measured mean eval loss of the committed model, micro-nats.
    pub score: Option<u64>,
    /// Measured loss of the base, micro-nats.
    pub base_score: Option<u64>,
    /// Verified improvement `g`, ppm.
    pub improvement_ppm: u64,
    /// Reward multiplier `m(g)`, ppm.
    pub multiplier_ppm: u64,
}

impl Quality {
    /// A fresh record for a submitted job.
    pub(crate) fn new(eval_commitment: [u8; 32], base_model: Option<u64>) -> Self {
        Self {
            eval_commitment,
            base_model,
            stage: QualityStage::Done,
            reveal: None,
            claim: None,
            eval_check: None,
            score: None,
            base_score: None,
            improvement_ppm: 0,
            multiplier_ppm: 0,
        }
    }

    /// The stage's deadline, if it has one.
    pub fn due(&self) -> Option<u64> {
        match self.stage {
            QualityStage::AwaitingReveal { due } | QualityStage::AwaitingClaim { due } => Some(due),
            QualityStage::Evaluating | QualityStage::Done => None,
        }
    }
}

/// `blake3("poi/eval/v1" | len u16 LE | dataset | salt | select_permille u16 LE)`.
pub fn eval_commitment(dataset: &str, salt: &[u8; 32], select_permille: u16) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/eval/v1");
    h.update(
        &u16::try_from(dataset.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    h.update(dataset.as_bytes());
    h.update(salt);
    h.update(&select_permille.to_le_bytes());
    *h.finalize().as_bytes()
}

/// `g = max(0, base - score) x 10^6 / base` ppm (0 for a zero base), rounded down.
pub fn improvement_ppm(score: u64, base: u64) -> u64 {
    if base == 0 || score >= base {
        return 0;
    }
    let gain = u128::from(base - score) * 1_000_000 / u128::from(base);
    u64::try_from(gain).unwrap_or(u64::MAX)
}

/// `m(g)`: piecewise linear through `knots` (`(g, m)` ppm, `g` strictly increasing, `m`
/// non-decreasing, starting at `(0, 0)`), rounded down, flat after the last knot.
pub fn multiplier_ppm(knots: &[(u64, u64)], g: u64) -> u64 {
    let mut previous = (0u64, 0u64);
    for &(x, y) in knots {
        if g <= x {
            if x == previous.0 {
                return y;
            }
            let span = u128::from(x - previous.0);
            let rise = u128::from(y.saturating_sub(previous.1));
            let along = u128::from(g - previous.0);
            let m = u128::from(previous.1) + rise * along / span;
            return u64::try_from(m).unwrap_or(u64::MAX);
        }
        previous = (x, y);
    }
    previous.1
}

/// Validates `quality_knots`: 1..=16 knots, the first `(0, 0)`, `g` strictly increasing, `m`
/// non-decreasing.
pub fn validate_knots(knots: &[(u64, u64)]) -> Result<(), String> {
    if knots.is_empty() || knots.len() > 16 || knots[0] != (0, 0) {
        return Err("poi.quality_knots must be 1..=16 knots starting at [0, 0]".into());
    }
    for pair in knots.windows(2) {
        if pair[1].0 <= pair[0].0 || pair[1].1 < pair[0].1 {
            return Err(
                "poi.quality_knots must have strictly increasing g and non-decreasing m".into(),
            );
        }
    }
    Ok(())
}

fn set_stage(ctx: &mut ExecContext<'_, '_>, job: &mut PoiJob, stage: QualityStage) {
    let q = job.quality.as_mut().expect("training jobs have quality");
    if let Some(due) = q.due() {
        ctx.state.delete(deadline_key(due, job.id, QUALITY_SLOT));
    }
    q.stage = stage;
    if let Some(due) = q.due() {
        ctx.state
            .put(deadline_key(due, job.id, QUALITY_SLOT), Vec::new());
    }
}

/// The training job was committed: the reveal window opens.
pub(crate) fn on_commit(ctx: &mut ExecContext<'_, '_>, job: &mut PoiJob) -> Result<(), TxError> {
    let due = ctx
        .block
        .height
        .checked_add(ctx.params.poi.reveal_blocks)
        .ok_or(TxError::Overflow("reveal deadline"))?;
    set_stage(ctx, job, QualityStage::AwaitingReveal { due });
    Ok(())
}

fn quality_of(job: &PoiJob) -> Result<&Quality, TxError> {
    job.quality.as_ref().ok_or(TxError::WrongJobKind {
        job: job.id,
        kind: "inference",
    })
}

/// `RevealEval`, by the owner while the reveal window is open.
pub(crate) fn reveal(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    reveal: EvalReveal,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let q = quality_of(&job)?;
    let owner = market::job(ctx.state, id)?
        .ok_or(TxError::UnknownJob(id))?
        .owner;
    if signer != owner {
        return Err(TxError::NotJobOwner {
            job: id,
            owner,
            signer,
        });
    }
    if !matches!(q.stage, QualityStage::AwaitingReveal { .. }) {
        return Err(TxError::BadJobState {
            job: id,
            state: "not awaiting an eval reveal",
            expected: "committed, eval not yet revealed",
        });
    }
    if reveal.select_permille == 0 || reveal.select_permille > 1_000 {
        return Err(TxError::InvalidMessage(
            "select_permille must be 1..=1000".into(),
        ));
    }
    let opened = eval_commitment(&reveal.dataset, &reveal.salt, reveal.select_permille);
    if opened != q.eval_commitment {
        return Err(TxError::DigestMismatch {
            job: id,
            what: "the eval commitment",
            claimed: hex::encode(q.eval_commitment),
            computed: hex::encode(opened),
        });
    }
    job.quality.as_mut().expect("checked").reveal = Some(reveal);
    open_claim(ctx, &mut job)?;
    ctx.emit(Event::new(NAME, "eval_revealed").with("job", id));
    write_job(ctx.state, &job);
    Ok(())
}

fn open_claim(ctx: &mut ExecContext<'_, '_>, job: &mut PoiJob) -> Result<(), TxError> {
    let due = ctx
        .block
        .height
        .checked_add(ctx.params.poi.claim_blocks)
        .ok_or(TxError::Overflow("claim deadline"))?;
    set_stage(ctx, job, QualityStage::AwaitingClaim { due });
    Ok(())
}

/// `ClaimScore`, by the assigned provider while the claim window is open.
pub(crate) fn claim(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    score: u64,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let q = quality_of(&job)?;
    let provider = market::job(ctx.state, id)?
        .ok_or(TxError::UnknownJob(id))?
        .provider;
    if provider != Some(signer) {
        return Err(TxError::NotAssignedProvider { job: id, signer });
    }
    if !matches!(q.stage, QualityStage::AwaitingClaim { .. }) {
        return Err(TxError::BadJobState {
            job: id,
            state: "not awaiting a score claim",
            expected: "eval revealed (or its window closed), score not yet claimed",
        });
    }
    job.quality.as_mut().expect("checked").claim = Some(score);
    set_stage(ctx, &mut job, QualityStage::Evaluating);
    ctx.emit(
        Event::new(NAME, "score_claimed")
            .with("job", id)
            .with("score", score),
    );
    write_job(ctx.state, &job);
    super::spot::maybe_eval(ctx, id)
}

/// A quality deadline fired: a missing reveal falls back to the public split, a missing claim
/// goes to measurement without one.
pub(crate) fn deadline(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let Some(q) = job.quality.as_ref() else {
        return Ok(());
    };
    match q.stage {
        QualityStage::AwaitingReveal { .. } => {
            ctx.emit(Event::new(NAME, "eval_not_revealed").with("job", id));
            open_claim(ctx, &mut job)?;
            write_job(ctx.state, &job);
            Ok(())
        }
        QualityStage::AwaitingClaim { .. } => {
            ctx.emit(Event::new(NAME, "score_not_claimed").with("job", id));
            set_stage(ctx, &mut job, QualityStage::Evaluating);
            write_job(ctx.state, &job);
            super::spot::maybe_eval(ctx, id)
        }
        QualityStage::Evaluating | QualityStage::Done => Ok(()),
    }
}

/// Records the measured scores and the multiplier; the stage is done.
pub(crate) fn measured(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    score: u64,
    base_score: u64,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let knots = ctx.params.poi.quality_knots.clone();
    let q = job.quality.as_mut().ok_or(TxError::WrongJobKind {
        job: id,
        kind: "inference",
    })?;
    let g = improvement_ppm(score, base_score);
    let mut m = if q.claim.is_some() {
        multiplier_ppm(&knots, g)
    } else {
        0
    };
    if q.reveal.is_none() {
        m = m.min(1_000_000);
    }
    q.score = Some(score);
    q.base_score = Some(base_score);
    q.improvement_ppm = g;
    q.multiplier_ppm = m;
    set_stage(ctx, &mut job, QualityStage::Done);
    ctx.emit(
        Event::new(NAME, "quality_measured")
            .with("job", id)
            .with("score", score)
            .with("base_score", base_score)
            .with("improvement_ppm", g)
            .with("multiplier_ppm", m),
    );
    write_job(ctx.state, &job);
    Ok(())
}

/// The job failed: its quality evaluation stops (and its deadline goes).
pub(crate) fn abandon(ctx: &mut ExecContext<'_, '_>, job: &mut PoiJob) {
    if job.quality.is_some() {
        set_stage(ctx, job, QualityStage::Done);
    }
}

/// Whether the job's quality no longer holds up settlement.
pub fn settled(job: &PoiJob) -> bool {
    job.quality
        .as_ref()
        .is_none_or(|q| q.stage == QualityStage::Done)
        || job.status != PoiStatus::Verifying
}
