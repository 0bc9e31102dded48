//! Spot-check records: what a validator was drawn to re-execute, its verdict, and the
//! referee re-checks of an accusation; PoI's slash records.
//!
//! # Format
//! Integers in keys are big-endian.
//! - `poi/c/<job u64><check u32>` -> [`Check`]: checks `0..job.checks` of a job, spot checks
//!   first, referee re-checks appended as accusations need them;
//! - `poi/x/<height u64><job u64><check u32>` -> empty: the check's deadline (an open check
//!   has exactly one, at its `deadline`);
//! - `poi/a/<verifier 32><job u64><check u32>` -> empty: the open checks assigned to a
//!   verifier (what `GET /validators/{address}/checks` and a validator agent read);
//! - `poi/k/<seq u64>` -> [`SlashRecord`], `poi/kn` -> the next sequence number.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::hex32;
use crate::state::{self, Overlay, StateReader};
use crate::token::Amount;

/// Prefix of check records.
pub const CHECK_PREFIX: &[u8] = b"poi/c/";
/// Prefix of check deadlines.
pub const CHECK_DEADLINE_PREFIX: &[u8] = b"poi/x/";
/// Prefix of the open checks assigned to each verifier.
pub const ASSIGNED_PREFIX: &[u8] = b"poi/a/";
/// Prefix of slash records.
pub const SLASH_PREFIX: &[u8] = b"poi/k/";
/// Key of the next slash sequence number.
pub const SLASH_COUNT_KEY: &[u8] = b"poi/kn";

/// What a check re-executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckSubject {
    /// Training segment `j`: steps `j*k .. min((j+1)*k, S)` from the checkpoint at `j*k`.
    Segment(u64),
    /// Inference request `i`.
    Request(u64),
    /// The eval of the committed model and its base on the revealed set.
    Eval,
    /// One operator `op` of training step `step`: a dispute's referee task.
    Op {
        /// The step.
        step: u64,
        /// The operator's index in the step's trace.
        op: u64,
    },
}

/// Why a check exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRole {
    /// Drawn from the job's seed.
    Spot,
    /// A referee's re-check of the accusation in check `of`, drawn from a later seed.
    Referee {
        /// The accusing check.
        of: u32,
    },
    /// A referee of dispute `dispute` of the job: re-executes its one operator.
    Arbiter {
        /// The dispute's number.
        dispute: u32,
    },
}

/// A validator's answer.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// Re-executed; every digest equals the provider's. `result` is the digest at the end of
    /// the segment (the output digest for a request).
    Match {
        /// Digest computed at the segment's last step.
        #[serde(serialize_with = "hex32")]
        result: [u8; 32],
    },
    /// Re-executed; the provider's digest at `step` (the request index for inference) differs
    /// from `computed`, and every earlier one matched.
    Mismatch {
        /// First divergent step (leaf index) or request.
        step: u64,
        /// What the validator computed there.
        #[serde(serialize_with = "hex32")]
        computed: [u8; 32],
    },
    /// The provider did not serve the checkpoint, digests or request by the check's deadline.
    Unavailable,
    /// An eval check's measurement: mean eval loss, micro-nats, of the committed model and of
    /// its base.
    Scores {
        /// The committed model's score.
        score: u64,
        /// The base's score.
        base_score: u64,
    },
    /// A dispute referee's result: the point after the disputed operator (its chained trace
    /// leaf, or the step digest for the last operator) as it computed it.
    Output {
        /// The computed point.
        #[serde(serialize_with = "hex32")]
        digest: [u8; 32],
    },
}

impl Verdict {
    /// Whether the verdict accuses the provider, given its claimed score (eval checks).
    pub fn accuses(&self, claim: Option<u64>) -> bool {
        match self {
            Verdict::Match { .. } => false,
            Verdict::Mismatch { .. } | Verdict::Unavailable => true,
            Verdict::Scores { score, .. } => claim.is_some_and(|c| c != *score),
            Verdict::Output { .. } => false,
        }
    }

    /// The stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Match { .. } => "match",
            Verdict::Mismatch { .. } => "mismatch",
            Verdict::Unavailable => "unavailable",
            Verdict::Scores { .. } => "scores",
            Verdict::Output { .. } => "output",
        }
    }
}

/// Where a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Waiting for its validator's verdict (or, unassigned, for an eligible validator).
    Open,
    /// Answered `match`.
    Matched,
    /// Answered with an accusation; waiting for the seed that draws its referees.
    AwaitingReferees,
    /// An accusation under re-check by its referees.
    Refereed,
    /// An accusation the referees upheld: the provider was at fault.
    Upheld,
    /// An accusation the referees overturned: the work stands.
    Overturned,
    /// A referee re-check that was answered (its verdict is recorded).
    Voted,
    /// No validator answered after `poi.check_attempts_max` assignments; the check does not
    /// block settlement.
    Waived,
}

impl CheckStatus {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Matched => "matched",
            Self::AwaitingReferees => "awaiting_referees",
            Self::Refereed => "refereed",
            Self::Upheld => "upheld",
            Self::Overturned => "overturned",
            Self::Voted => "voted",
            Self::Waived => "waived",
        }
    }

    /// Whether a spot check in this state still blocks the job's settlement.
    pub fn blocks_settlement(self) -> bool {
        matches!(self, Self::Open | Self::AwaitingReferees | Self::Refereed)
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Check {
    /// The job.
    pub job: u64,
    /// Its number within the job.
    pub index: u32,
    /// What it re-executes.
    pub subject: CheckSubject,
    /// Spot check or referee re-check.
    pub role: CheckRole,
    /// The validator it is assigned to (none while no validator is eligible).
    pub validator: Option<Address>,
    /// Height by which the verdict is due (an open check), else when it closed.
    pub deadline: u64,
    /// Assignments so far (a missed deadline reassigns).
    pub attempts: u32,
    /// Where it is.
    pub status: CheckStatus,
    /// The verdict, once answered.
    pub verdict: Option<Verdict>,
    /// For an accusation: the beacon round whose seed draws its referees.
    pub referee_target: Option<(u64, u64)>,
    /// Compute units a re-execution costs (the validator's credit for a verdict).
    pub units: u64,
}

/// A slash PoI caused: who, why, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct SlashRecord {
    /// Sequence number.
    pub seq: u64,
    /// Height.
    pub height: u64,
    /// The slashed account.
    pub account: Address,
    /// `provider` or `validator`.
    pub role: String,
    /// `faked_segment`, `wrong_inference`, `withheld_checkpoint`, ...
    pub reason: String,
    /// The job.
    pub job: u64,
    /// The accusing check.
    pub check: u32,
    /// The accusing validator's verdict, with the committed root it contradicts.
    pub evidence: Verdict,
    /// The referees who upheld it.
    pub referees: Vec<Address>,
    /// Base units of stake slashed.
    #[serde(serialize_with = "crate::event::decimal")]
    pub amount: Amount,
}

/// Key of check `index` of `job`.
pub fn check_key(job: u64, index: u32) -> Vec<u8> {
    [CHECK_PREFIX, &job.to_be_bytes(), &index.to_be_bytes()].concat()
}

/// `(job, index)` of a check key.
pub fn parse_check_key(key: &[u8]) -> Option<(u64, u32)> {
    let rest = key.strip_prefix(CHECK_PREFIX)?;
    if rest.len() != 12 {
        return None;
    }
    Some((
        u64::from_be_bytes(rest[..8].try_into().ok()?),
        u32::from_be_bytes(rest[8..].try_into().ok()?),
    ))
}

/// Key of a check deadline.
pub fn deadline_key(height: u64, job: u64, index: u32) -> Vec<u8> {
    timed_key(CHECK_DEADLINE_PREFIX, height, job, index)
}

/// `(height, job, index)` of a deadline key.
pub fn parse_deadline_key(key: &[u8]) -> Option<(u64, u64, u32)> {
    parse_timed_key(CHECK_DEADLINE_PREFIX, key)
}

/// A deadline index key: `prefix`, then the height, the job and a per-job number, big-endian
/// so a prefix scan walks deadlines in height order.
pub(crate) fn timed_key(prefix: &[u8], height: u64, job: u64, number: u32) -> Vec<u8> {
    [
        prefix,
        &height.to_be_bytes(),
        &job.to_be_bytes(),
        &number.to_be_bytes(),
    ]
    .concat()
}

/// `(height, job, number)` of a [`timed_key`] under `prefix`.
pub(crate) fn parse_timed_key(prefix: &[u8], key: &[u8]) -> Option<(u64, u64, u32)> {
    let rest = key.strip_prefix(prefix)?;
    if rest.len() != 20 {
        return None;
    }
    Some((
        u64::from_be_bytes(rest[..8].try_into().ok()?),
        u64::from_be_bytes(rest[8..16].try_into().ok()?),
        u32::from_be_bytes(rest[16..].try_into().ok()?),
    ))
}

/// Key of `verifier`'s assignment of check `index` of `job`.
pub fn assigned_key(verifier: &Address, job: u64, index: u32) -> Vec<u8> {
    [
        ASSIGNED_PREFIX,
        verifier.as_bytes(),
        &job.to_be_bytes(),
        &index.to_be_bytes(),
    ]
    .concat()
}

/// `(verifier, job, index)` of an assignment key.
pub fn parse_assigned_key(key: &[u8]) -> Option<(Address, u64, u32)> {
    let rest = key.strip_prefix(ASSIGNED_PREFIX)?;
    if rest.len() != 44 {
        return None;
    }
    Some((
        Address(rest[..32].try_into().ok()?),
        u64::from_be_bytes(rest[32..40].try_into().ok()?),
        u32::from_be_bytes(rest[40..].try_into().ok()?),
    ))
}

/// The open checks assigned to `verifier`, in (job, check) order, at most `limit`.
pub fn assigned_checks(
    state: &dyn StateReader,
    verifier: &Address,
    limit: usize,
) -> Result<Vec<Check>, StateError> {
    let prefix = [ASSIGNED_PREFIX, verifier.as_bytes()].concat();
    let mut keys = Vec::new();
    state.scan_prefix(&prefix, &mut |key, _| {
        if let Some((_, job, index)) = parse_assigned_key(key) {
            keys.push((job, index));
        }
        keys.len() < limit
    })?;
    let mut out = Vec::with_capacity(keys.len());
    for (job, index) in keys {
        if let Some(check) = read_check(state, job, index)? {
            out.push(check);
        }
    }
    Ok(out)
}

/// Key of slash record `seq`.
pub fn slash_key(seq: u64) -> Vec<u8> {
    [SLASH_PREFIX, &seq.to_be_bytes()].concat()
}

/// Reads check `index` of `job`.
pub fn read_check(
    state: &dyn StateReader,
    job: u64,
    index: u32,
) -> Result<Option<Check>, StateError> {
    state::read_borsh(state, &check_key(job, index))
}

/// Every check of `job`, in order.
pub fn job_checks(state: &dyn StateReader, job: u64) -> Result<Vec<Check>, StateError> {
    super::records::decode_all(state, &[CHECK_PREFIX, &job.to_be_bytes()].concat())
}

/// Up to `limit` slash records with `seq > after` (all if `after` is `None`), in order.
pub fn slashes(
    state: &dyn StateReader,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<SlashRecord>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(SLASH_PREFIX, &mut |key, value| {
        if out.len() >= limit {
            return false;
        }
        match state::decode::<SlashRecord>(key, value) {
            Ok(r) if after.is_none_or(|a| r.seq > a) => out.push(r),
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// Check `index` of `job`, or `unknown_check`.
pub(crate) fn check_or_err(state: &Overlay<'_>, job: u64, index: u32) -> Result<Check, TxError> {
    read_check(state, job, index)?.ok_or(TxError::UnknownCheck { job, check: index })
}

/// Writes a check.
pub(crate) fn write_check(state: &mut Overlay<'_>, check: &Check) {
    state.put_borsh(check_key(check.job, check.index), check);
}

/// Appends a slash record, numbering it.
pub(crate) fn append_slash(
    state: &mut Overlay<'_>,
    mut record: SlashRecord,
) -> Result<u64, TxError> {
    let seq: u64 = state.get_borsh(SLASH_COUNT_KEY)?.unwrap_or(0);
    record.seq = seq;
    state.put_borsh(slash_key(seq), &record);
    state.put_borsh(
        SLASH_COUNT_KEY.to_vec(),
        &seq.checked_add(1)
            .ok_or(TxError::Overflow("slash sequence"))?,
    );
    Ok(seq)
}
