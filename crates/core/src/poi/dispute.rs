//! Disputes: a bonded challenge of a training job's committed digests, played as the 32-way
//! dissection game ([`super::dissection`]) on chain, down to one operator of one step, which
//! a committee of referees re-executes.
//!
//! # Flow
//! 1. **Challenge** (`Challenge`, by a registered verifier other than the job's provider or
//!    owner, while the job is verifying). The challenger names a committed leaf `lo` it
//!    accepts and a committed leaf `hi` it disputes, each with its Merkle proof under the
//!    job's root, its own digest `claim` for `hi`, and the operator count `N` of one step
//!    (the model's `Layout` length; a provider that disagrees can only lose by it, since its
//!    trace root commits to its own count). It posts `challenge_bond = max(
//!    challenge_bond_min, escrow x challenge_bond_bps / 10,000)`, which PoI holds.
//! 2. **Step phase.** The provider reveals its leaves at the pivots (`DisputeReveal`, each
//!    with a proof under the job's root); the challenger picks the first sub-range it
//!    disputes (`DisputePick`). Width 1 moves the game into step `s = hi`.
//! 3. **Operator phase.** The provider's first reveal there also posts its trace root: the
//!    Merkle root of the step's `N` chained trace leaves (repops `trace_root`), so point `k`
//!    (the state after `k` operators) is tree leaf `k - 1`, point 0 is leaf `s - 1` and point
//!    `N` is leaf `s`. Reveals are proved under it.
//! 4. **Referees.** When the range is one operator `i`, the seed `beacon_delay_views` later
//!    draws `referees` verifiers (none of the parties). Each fetches `OpCall(s, i)`, checks it
//!    against the layout and the agreed input (repops `check_call`), executes exactly that one
//!    operator and attests `Output { digest }`: point `i + 1` as it computed it. A majority
//!    for the challenger's claim slashes the provider (`faked_segment`) and pays the
//!    challenger its bond back plus `dispute_reward_bps` of the slash; otherwise the
//!    challenger loses its bond, half to the provider and half burned, and gets a strike.
//! 5. **Timeouts.** Every move is due `move_blocks` after the previous one; at the end of a
//!    block past a deadline the party to move loses at once (`poi/y/` holds the deadlines).
//!
//! The game takes at most `ceil(log32 S) + ceil(log32 N)` rounds ([`super::dissection::
//! rounds_bound`]).
//!
//! # Format
//! - `poi/d/<job u64><number u32>` -> [`Dispute`]; a job's disputes are numbered from 0;
//! - `poi/y/<height u64><job u64><number u32>` -> empty: a playing dispute's move deadline.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::bank;
use crate::error::{self, StateError, TxError};
use crate::event::Event;
use crate::market;
use crate::module::ExecContext;
use crate::state::{self, StateReader};
use crate::supply::{self, BurnReason};
use crate::token::Amount;

use super::NAME;
use super::beacon;
use super::checks::{Check, CheckRole, CheckStatus, CheckSubject, Verdict, job_checks};
use super::dissection::{
    Dissection, DissectionParams, Move, Opening, Outcome, Party, Phase, RefereeTask, Status,
};
use super::merkle;
use super::records::{PoiKind, PoiStatus, job_or_err, read_verifier, write_job};
use super::spot;

/// Prefix of disputes.
pub const DISPUTE_PREFIX: &[u8] = b"poi/d/";
/// Prefix of dispute move deadlines.
pub const DISPUTE_DEADLINE_PREFIX: &[u8] = b"poi/y/";
/// Draw-target slots of disputes' referees start here (check numbers stay below it).
pub const DISPUTE_SLOT_BASE: u32 = 0x8000_0000;

/// Where a dispute is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// The parties are moving.
    Playing,
    /// Narrowed to one operator; waiting for the seed that draws the referees.
    AwaitingReferees,
    /// The referees are re-executing the operator.
    Refereed,
    /// The provider lost: slashed.
    ProviderLost,
    /// The challenger lost: its bond went to the provider and the burn.
    ChallengerLost,
    /// Ended without a verdict (the job failed by another fault): the bond was returned.
    Dropped,
}

impl DisputeStatus {
    /// Whether the dispute is still open (blocks settlement, holds its bond).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Playing | Self::AwaitingReferees | Self::Refereed
        )
    }
}

/// One dispute.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Dispute {
    /// The job.
    pub job: u64,
    /// Its number within the job.
    pub number: u32,
    /// The challenger.
    pub challenger: Address,
    /// Base units PoI holds as its bond (0 once paid out).
    #[serde(serialize_with = "crate::event::decimal")]
    pub bond: Amount,
    /// The game.
    pub game: Dissection,
    /// The provider's trace root for the disputed step, once posted.
    #[serde(serialize_with = "crate::event::hex32_opt")]
    pub trace_root: Option<[u8; 32]>,
    /// Where it is.
    pub status: DisputeStatus,
    /// The beacon round drawing its referees, while awaiting them.
    pub referee_target: Option<(u64, u64)>,
    /// Every move so far, in order, with its height.
    pub moves: Vec<(u64, Move)>,
}

/// Key of dispute `number` of `job`.
pub fn dispute_key(job: u64, number: u32) -> Vec<u8> {
    [DISPUTE_PREFIX, &job.to_be_bytes(), &number.to_be_bytes()].concat()
}

/// Key of a move deadline.
pub fn dispute_deadline_key(height: u64, job: u64, number: u32) -> Vec<u8> {
    super::checks::timed_key(DISPUTE_DEADLINE_PREFIX, height, job, number)
}

/// `(height, job, number)` of a move deadline key.
pub fn parse_dispute_deadline(key: &[u8]) -> Option<(u64, u64, u32)> {
    super::checks::parse_timed_key(DISPUTE_DEADLINE_PREFIX, key)
}

/// Reads dispute `number` of `job`.
pub fn read_dispute(
    state: &dyn StateReader,
    job: u64,
    number: u32,
) -> Result<Option<Dispute>, StateError> {
    state::read_borsh(state, &dispute_key(job, number))
}

/// Every dispute of `job`, in order.
pub fn job_disputes(state: &dyn StateReader, job: u64) -> Result<Vec<Dispute>, StateError> {
    super::records::decode_all(state, &[DISPUTE_PREFIX, &job.to_be_bytes()].concat())
}

fn dispute_or_err(ctx: &ExecContext<'_, '_>, job: u64, number: u32) -> Result<Dispute, TxError> {
    read_dispute(ctx.state, job, number)?
        .ok_or_else(|| TxError::InvalidMessage(format!("job {job} has no dispute {number}")))
}

/// Writes `d`, keeping its move deadline key in step with its game.
fn write(ctx: &mut ExecContext<'_, '_>, before: Option<&Dispute>, d: &Dispute) {
    let due = |d: &Dispute| match (d.status, d.game.deadline()) {
        (DisputeStatus::Playing, Some(h)) => Some(h),
        _ => None,
    };
    if let Some(h) = before.and_then(due) {
        ctx.state.delete(dispute_deadline_key(h, d.job, d.number));
    }
    if let Some(h) = due(d) {
        ctx.state
            .put(dispute_deadline_key(h, d.job, d.number), Vec::new());
    }
    ctx.state.put_borsh(dispute_key(d.job, d.number), d);
}

/// What `Challenge` carries.
pub(crate) struct Challenge<'a> {
    pub job: u64,
    pub lo: u64,
    pub lo_digest: [u8; 32],
    pub lo_proof: &'a [[u8; 32]],
    pub hi: u64,
    pub hi_digest: [u8; 32],
    pub hi_proof: &'a [[u8; 32]],
    pub claim: [u8; 32],
    pub ops: u64,
}

fn proof_err(job: u64, leaf: u64, e: impl std::fmt::Display) -> TxError {
    TxError::BadProof {
        job,
        leaf,
        reason: e.to_string(),
    }
}

/// `Challenge`: opens a dispute and takes the bond.
pub(crate) fn challenge(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    c: &Challenge<'_>,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, c.job)?;
    if job.kind != PoiKind::Training || job.status != PoiStatus::Verifying {
        return Err(TxError::BadJobState {
            job: c.job,
            state: job.status.as_str(),
            expected: "a verifying training job",
        });
    }
    let mj = market::job(ctx.state, c.job)?.ok_or(TxError::UnknownJob(c.job))?;
    read_verifier(ctx.state, &signer)?.ok_or(TxError::UnknownVerifier(signer))?;
    if Some(signer) == mj.provider || signer == mj.owner {
        return Err(TxError::InvalidMessage(
            "the job's provider and owner cannot challenge it".into(),
        ));
    }
    let p = &ctx.params.poi;
    if c.ops == 0 || c.ops > p.ops_per_step_max {
        return Err(TxError::InvalidMessage(format!(
            "a step has 1..={} operators, not {}",
            p.ops_per_step_max, c.ops
        )));
    }
    let commitment = job.commitment.clone().ok_or(TxError::NotPoiJob(c.job))?;
    let leaves = job
        .steps
        .checked_add(1)
        .ok_or(TxError::Overflow("leaves"))?;
    merkle::verify(c.lo, leaves, c.lo_proof, &c.lo_digest, &commitment.root)
        .map_err(|e| proof_err(c.job, c.lo, e))?;
    merkle::verify(c.hi, leaves, c.hi_proof, &c.hi_digest, &commitment.root)
        .map_err(|e| proof_err(c.job, c.hi, e))?;
    let opening = Opening {
        steps: job.steps,
        ops: c.ops,
        lo: c.lo,
        hi: c.hi,
        agreed: c.lo_digest,
        defender: c.hi_digest,
        challenger: c.claim,
    };
    let game = Dissection::open(
        DissectionParams {
            move_blocks: p.move_blocks,
        },
        &opening,
        ctx.block.height,
    )
    .map_err(|e| TxError::InvalidMessage(e.to_string()))?;
    let bond = p.challenge_bond_min.max(
        mj.escrow
            .checked_mul(u128::from(p.challenge_bond_bps))
            .ok_or(TxError::Overflow("bond"))?
            / 10_000,
    );
    bank::debit(ctx.state, signer, bond)?;
    let number = job.disputes;
    job.disputes = number.checked_add(1).ok_or(TxError::Overflow("disputes"))?;
    job.disputes_open = job
        .disputes_open
        .checked_add(1)
        .ok_or(TxError::Overflow("disputes"))?;
    write_job(ctx.state, &job);
    let dispute = Dispute {
        job: c.job,
        number,
        challenger: signer,
        bond,
        game,
        trace_root: None,
        status: DisputeStatus::Playing,
        referee_target: None,
        moves: Vec::new(),
    };
    ctx.emit(
        Event::new(NAME, "dispute_opened")
            .with("job", c.job)
            .with("dispute", u64::from(number))
            .with("challenger", signer)
            .with("lo", c.lo)
            .with("hi", c.hi)
            .with("bond", bond),
    );
    after_move(ctx, None, dispute)
}

/// `DisputeReveal` by the provider: its digests at the pending pivots, each proved (under the
/// job's root in the step phase, under its trace root in the operator phase, which the first
/// operator-phase reveal posts).
pub(crate) fn reveal(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    job_id: u64,
    number: u32,
    digests: Vec<[u8; 32]>,
    proofs: &[Vec<[u8; 32]>],
    trace_root: Option<[u8; 32]>,
) -> Result<(), TxError> {
    let before = dispute_or_err(ctx, job_id, number)?;
    let mj = market::job(ctx.state, job_id)?.ok_or(TxError::UnknownJob(job_id))?;
    if mj.provider != Some(signer) {
        return Err(TxError::NotAssignedProvider {
            job: job_id,
            signer,
        });
    }
    let mut d = before.clone();
    let points = d.game.pending_points();
    if proofs.len() != points.len() || digests.len() != points.len() {
        return Err(TxError::InvalidMessage(format!(
            "the reveal needs {} digests with proofs",
            points.len()
        )));
    }
    let phase = d.game.phase().clone();
    let (root, leaves, offset) = match &phase {
        Phase::Steps => {
            let job = job_or_err(ctx.state, job_id)?;
            let root = job.commitment.ok_or(TxError::NotPoiJob(job_id))?.root;
            (root, job.steps + 1, 0u64)
        }
        Phase::Ops { .. } => {
            if d.trace_root.is_none() {
                d.trace_root = trace_root;
            } else if trace_root.is_some() && trace_root != d.trace_root {
                return Err(TxError::InvalidMessage(
                    "the trace root was already posted".into(),
                ));
            }
            let root = d.trace_root.ok_or_else(|| {
                TxError::InvalidMessage(
                    "the first operator-phase reveal posts the trace root".into(),
                )
            })?;
            // Point k (1..N) is tree leaf k - 1 of the N chained trace leaves.
            (root, d.game.ops(), 1u64)
        }
    };
    for ((point, digest), proof) in points.iter().zip(&digests).zip(proofs) {
        let leaf = point - offset;
        merkle::verify(leaf, leaves, proof, digest, &root)
            .map_err(|e| proof_err(job_id, *point, e))?;
    }
    let mv = Move::Reveal {
        phase: phase.kind(),
        digests,
    };
    d.game
        .apply(Party::Defender, &mv, ctx.block.height)
        .map_err(|e| TxError::InvalidMessage(e.to_string()))?;
    d.moves.push((ctx.block.height, mv));
    after_move(ctx, Some(&before), d)
}

/// `DisputePick` by the challenger.
pub(crate) fn pick(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    job_id: u64,
    number: u32,
    index: u32,
    claim: [u8; 32],
) -> Result<(), TxError> {
    let before = dispute_or_err(ctx, job_id, number)?;
    if before.challenger != signer {
        return Err(TxError::InvalidMessage(format!(
            "only the challenger {} picks",
            before.challenger
        )));
    }
    let mut d = before.clone();
    let mv = Move::Pick {
        phase: d.game.phase().kind(),
        index,
        claim,
    };
    d.game
        .apply(Party::Challenger, &mv, ctx.block.height)
        .map_err(|e| TxError::InvalidMessage(e.to_string()))?;
    d.moves.push((ctx.block.height, mv));
    after_move(ctx, Some(&before), d)
}

/// After a move (or the opening): a game narrowed to one operator waits for its referees.
fn after_move(
    ctx: &mut ExecContext<'_, '_>,
    before: Option<&Dispute>,
    mut d: Dispute,
) -> Result<(), TxError> {
    if let Status::Over(Outcome::Referee(task)) = d.game.status().clone() {
        d.status = DisputeStatus::AwaitingReferees;
        d.referee_target = beacon::target_for_check(ctx, d.job, DISPUTE_SLOT_BASE + d.number)?;
        ctx.emit(
            Event::new(NAME, "dispute_narrowed")
                .with("job", d.job)
                .with("dispute", u64::from(d.number))
                .with("step", task.step)
                .with("op", task.op)
                .with("rounds", u64::from(d.game.rounds())),
        );
    }
    write(ctx, before, &d);
    Ok(())
}

/// The seed for a dispute's referees arrived: draw them (arbiter checks of the one operator).
pub(crate) fn draw_referees(
    ctx: &mut ExecContext<'_, '_>,
    job_id: u64,
    number: u32,
    randomness: [u8; 32],
) -> Result<(), TxError> {
    let before = dispute_or_err(ctx, job_id, number)?;
    let mut d = before.clone();
    let Status::Over(Outcome::Referee(task)) = d.game.status().clone() else {
        return Err(TxError::Overflow("referees for an unfinished game"));
    };
    d.status = DisputeStatus::Refereed;
    d.referee_target = None;
    write(ctx, Some(&before), &d);
    let mut job = job_or_err(ctx.state, job_id)?;
    let units = (market::job(ctx.state, job_id)?
        .ok_or(TxError::UnknownJob(job_id))?
        .units
        / job.steps.max(1))
    .max(1);
    let subject = CheckSubject::Op {
        step: task.step,
        op: task.op,
    };
    let role = CheckRole::Arbiter { dispute: number };
    let excluded = vec![d.challenger];
    spot::draw_checks(ctx, &mut job, subject, role, units, &randomness, excluded)?;
    ctx.emit(
        Event::new(NAME, "dispute_referees_drawn")
            .with("job", job_id)
            .with("dispute", u64::from(number)),
    );
    Ok(())
}

/// The exclusions of a dispute's referees: its challenger and referees already drawn.
pub(crate) fn excluded(
    state: &dyn StateReader,
    job: u64,
    number: u32,
) -> Result<Vec<Address>, StateError> {
    let mut out: Vec<Address> = read_dispute(state, job, number)?
        .map(|d| vec![d.challenger])
        .unwrap_or_default();
    for c in job_checks(state, job)? {
        if c.role == (CheckRole::Arbiter { dispute: number }) {
            out.extend(c.validator);
        }
    }
    Ok(out)
}

/// Counts a dispute's referee outputs; decides once a side has a majority or all are done.
pub(crate) fn tally(
    ctx: &mut ExecContext<'_, '_>,
    job_id: u64,
    number: u32,
) -> Result<(), TxError> {
    let d = dispute_or_err(ctx, job_id, number)?;
    if d.status != DisputeStatus::Refereed {
        return Ok(());
    }
    let Status::Over(Outcome::Referee(task)) = d.game.status().clone() else {
        return Ok(());
    };
    let referees: Vec<Check> = job_checks(ctx.state, job_id)?
        .into_iter()
        .filter(|c| c.role == (CheckRole::Arbiter { dispute: number }))
        .collect();
    let output = |c: &Check| match (&c.status, &c.verdict) {
        (CheckStatus::Voted, Some(Verdict::Output { digest })) => Some(*digest),
        _ => None,
    };
    let need = ctx.params.poi.referees as usize / 2 + 1;
    let count = |want: [u8; 32]| referees.iter().filter(|c| output(c) == Some(want)).count();
    let (for_claim, for_defender) = (count(task.claim), count(task.expected));
    let done = referees.iter().all(|c| c.status != CheckStatus::Open);
    let provider_lost = if for_claim >= need {
        true
    } else if for_defender >= need || done {
        false
    } else {
        return Ok(());
    };
    for r in &referees {
        if r.status == CheckStatus::Open {
            spot::waive_open(ctx, r)?;
        } else if let (Some(out), Some(v)) = (output(r), r.validator) {
            let winning = if provider_lost {
                task.claim
            } else {
                task.expected
            };
            if out != winning {
                spot::strike(ctx, v)?;
            }
        }
    }
    let winners: Vec<Address> = referees
        .iter()
        .filter(|c| output(c) == Some(task.claim))
        .filter_map(|c| c.validator)
        .collect();
    decide(ctx, d, provider_lost, &task, winners)
}

/// Settles a dispute: the loser pays.
fn decide(
    ctx: &mut ExecContext<'_, '_>,
    before: Dispute,
    provider_lost: bool,
    task: &RefereeTask,
    referees: Vec<Address>,
) -> Result<(), TxError> {
    let mut d = before.clone();
    let bond = d.bond;
    d.bond = 0;
    let mut job = job_or_err(ctx.state, d.job)?;
    job.disputes_open = job
        .disputes_open
        .checked_sub(1)
        .ok_or(TxError::Overflow("disputes"))?;
    write_job(ctx.state, &job);
    if provider_lost {
        d.status = DisputeStatus::ProviderLost;
        write(ctx, Some(&before), &d);
        bank::credit(ctx.state, d.challenger, bond)?;
        ctx.emit(
            Event::new(NAME, "dispute_won")
                .with("job", d.job)
                .with("dispute", u64::from(d.number))
                .with("winner", d.challenger),
        );
        spot::fail_job(
            ctx,
            d.job,
            spot::Fault {
                reason: "faked_segment",
                evidence: Verdict::Mismatch {
                    step: task.step,
                    computed: task.claim,
                },
                check: DISPUTE_SLOT_BASE + d.number,
                accuser: Some(d.challenger),
                referees,
            },
        )
    } else {
        d.status = DisputeStatus::ChallengerLost;
        write(ctx, Some(&before), &d);
        let provider = market::job(ctx.state, d.job)?
            .ok_or(TxError::UnknownJob(d.job))?
            .provider
            .ok_or(TxError::UnknownJob(d.job))?;
        let to_provider = bond / 2;
        let burned = error::sub(bond, to_provider, "bond")?;
        bank::credit(ctx.state, provider, to_provider)?;
        if burned > 0 {
            supply::record_burn(ctx, burned, BurnReason::Slash)?;
        }
        spot::strike(ctx, d.challenger)?;
        ctx.emit(
            Event::new(NAME, "dispute_lost")
                .with("job", d.job)
                .with("dispute", u64::from(d.number))
                .with("loser", d.challenger)
                .with("bond", bond),
        );
        let job = job_or_err(ctx.state, d.job)?;
        spot::finish(ctx, job)
    }
}

/// Fires due move deadlines: the party to move loses.
pub(crate) fn run_deadlines(ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    let height = ctx.block.height;
    let budget = ctx.params.poi.deadlines_per_block_max as usize;
    let mut due = Vec::new();
    ctx.state.scan_prefix(
        DISPUTE_DEADLINE_PREFIX,
        &mut |key, _| match parse_dispute_deadline(key) {
            Some((h, job, number)) if h < height && due.len() < budget => {
                due.push((job, number));
                true
            }
            _ => false,
        },
    )?;
    for (job, number) in due {
        let before = dispute_or_err(ctx, job, number)?;
        let mut d = before.clone();
        let loser = d
            .game
            .timeout(height)
            .map_err(|e| TxError::InvalidMessage(e.to_string()))?;
        write(ctx, Some(&before), &d);
        ctx.emit(
            Event::new(NAME, "dispute_timeout")
                .with("job", job)
                .with("dispute", u64::from(number))
                .with(
                    "loser",
                    if loser == Party::Defender {
                        "provider"
                    } else {
                        "challenger"
                    },
                ),
        );
        let task = RefereeTask {
            step: d.game.range().1,
            op: 0,
            step_input: d.game.agreed(),
            input: d.game.agreed(),
            expected: d.game.disputed().0,
            claim: d.game.disputed().1,
        };
        let d = dispute_or_err(ctx, job, number)?;
        decide(ctx, d, loser == Party::Defender, &task, Vec::new())?;
    }
    Ok(())
}

/// The job failed by another fault: its open disputes end and their bonds go back.
pub(crate) fn refund_open(ctx: &mut ExecContext<'_, '_>, job_id: u64) -> Result<(), TxError> {
    for before in job_disputes(ctx.state, job_id)? {
        if !before.status.is_open() {
            continue;
        }
        let mut d = before.clone();
        if let Some((epoch, view)) = d.referee_target.take() {
            ctx.state.delete(beacon::target_key(
                epoch,
                view,
                job_id,
                DISPUTE_SLOT_BASE + d.number,
            ));
        }
        for c in job_checks(ctx.state, job_id)? {
            if c.role == (CheckRole::Arbiter { dispute: d.number }) && c.status == CheckStatus::Open
            {
                spot::waive_open(ctx, &c)?;
            }
        }
        bank::credit(ctx.state, d.challenger, d.bond)?;
        d.bond = 0;
        d.status = DisputeStatus::Dropped;
        write(ctx, Some(&before), &d);
    }
    let mut job = job_or_err(ctx.state, job_id)?;
    job.disputes_open = 0;
    write_job(ctx.state, &job);
    Ok(())
}

/// A dispute's referee target moved (no block carried the seed in time).
pub(crate) fn retarget(
    ctx: &mut ExecContext<'_, '_>,
    job: u64,
    number: u32,
    target: (u64, u64),
) -> Result<(), TxError> {
    let before = dispute_or_err(ctx, job, number)?;
    let mut d = before.clone();
    d.referee_target = Some(target);
    write(ctx, Some(&before), &d);
    Ok(())
}

/// Base units a stored dispute holds (its bond while open).
pub(crate) fn held(value: &[u8], key: &[u8]) -> Result<Amount, StateError> {
    let d: Dispute = state::decode(key, value)?;
    Ok(d.bond)
}
