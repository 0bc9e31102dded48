//! Spot checks: what a job's seed selects, who re-executes it, verdicts, referee re-checks of
//! accusations, deadlines, and the outcome (settled for the provider, or slashed).
//!
//! # Flow
//! 1. **Draw** ([`on_drawn`]). From the job's randomness `R`, `u(tag, j) = u64_le(blake3(
//!    "poi/draw/v1" | R | job | tag | j)[0..8])`. Training segment `j` is checked when
//!    `u("seg", j) mod 10,000 < check_bps`, and the last segment always (its checkpoint is the
//!    model). Inference request `i` when `u("req", i) mod 10,000 < infer_check_bps`, and at
//!    least one per job.
//! 2. **Assignment** ([`assign`]). Verifier `u("who" | attempt, check) mod n` of the dense
//!    index, probing upward past the provider, the job owner, the check's exclusions (an
//!    accuser and the referees already drawn), jailed verifiers, under-bonded ones and those
//!    at `verifier_checks_max` open checks. With nobody eligible the check stays unassigned
//!    and tries again every `check_blocks`: without validators nothing is verified, and
//!    nothing is paid.
//! 3. **Verdict** (`Attest`, [`attest`]) by the assigned verifier before the deadline
//!    (`check_blocks` after assignment): it re-executed the subject with repops and compares
//!    digests bit for bit. `match` closes the check and credits the verifier the check's units.
//!    An accusation (`mismatch`, `unavailable`) waits for the seed `beacon_delay_views` later,
//!    which draws `referees` verifiers (excluding the accuser) to re-check the same subject.
//! 4. **Referees** ([`tally`]). A majority (`referees / 2 + 1`) of fault verdicts upholds the
//!    accusation: the provider is at fault, the market slashes it (the owner is refunded and
//!    credited, the accuser paid `dispute_reward_bps` of the rest), PoI writes a
//!    [`SlashRecord`] and the job fails. A majority of `match`, or no majority once every
//!    referee has answered or been waived, overturns it: the accuser gets a strike.
//!    Referees in the minority get a strike.
//! 5. **Deadlines** ([`run_deadlines`], end of block, at most `deadlines_per_block_max`). A
//!    verifier that misses one gets a strike and the check goes to a fresh draw; after
//!    `check_attempts_max` assignments the check is waived. `strikes_to_jail` strikes jail a
//!    verifier for `jail_blocks` (and reset its strikes).
//! 6. **Settlement** ([`finish`]). When no spot check blocks (all matched, overturned or
//!    waived), the market pays the provider (`settle_verified`) and the job is `verified`.
//!
//! A referee re-check re-runs the whole subject (a segment of `k` steps). The 32-way
//! dissection down to one operator ([`super::dissection`]) replaces it for mismatches in build
//! step 5; an unavailable checkpoint stays a referee matter.

use crate::address::Address;
use crate::error::TxError;
use crate::event::Event;
use crate::market::{self, JobStatus};
use crate::module::ExecContext;

use super::NAME;
use super::beacon;
use super::checks::{
    CHECK_DEADLINE_PREFIX, Check, CheckRole, CheckStatus, CheckSubject, SlashRecord, Verdict,
    append_slash, assigned_key, check_or_err, deadline_key, job_checks, parse_deadline_key,
    write_check,
};
use super::quality::{self, QualityStage};
use super::records::{
    PoiJob, PoiKind, PoiStatus, Verifier, job_or_err, read_verifier, verifier_at, verifier_count,
    write_job, write_verifier,
};
use super::registry;

/// `u(tag, j)`: 64 bits of the job's randomness for draw `tag` of item `j`.
pub fn draw_u64(randomness: &[u8; 32], job: u64, tag: &[u8], j: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"poi/draw/v1");
    h.update(randomness);
    h.update(&job.to_le_bytes());
    h.update(tag);
    h.update(&j.to_le_bytes());
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

/// The subjects job `job`'s randomness selects, in order.
pub fn selected(
    job: &PoiJob,
    randomness: &[u8; 32],
    check_bps: u32,
    infer_bps: u32,
) -> Vec<CheckSubject> {
    match job.kind {
        PoiKind::Training => (0..job.segments)
            .filter(|&j| {
                j + 1 == job.segments
                    || draw_u64(randomness, job.id, b"seg", j) % 10_000 < u64::from(check_bps)
            })
            .map(CheckSubject::Segment)
            .collect(),
        PoiKind::Inference => {
            let mut picked: Vec<CheckSubject> = (0..job.segments)
                .filter(|&i| {
                    draw_u64(randomness, job.id, b"req", i) % 10_000 < u64::from(infer_bps)
                })
                .map(CheckSubject::Request)
                .collect();
            if picked.is_empty() {
                let i = draw_u64(randomness, job.id, b"req1", 0) % job.segments.max(1);
                picked.push(CheckSubject::Request(i));
            }
            picked
        }
    }
}

/// The provider's claimed score, if the job has one.
fn claim_of(job: &PoiJob) -> Option<u64> {
    job.quality.as_ref().and_then(|q| q.claim)
}

/// Units one check of `job` re-executes: the job's units spread over its segments (at
/// least 1).
fn units_per_check(ctx: &ExecContext<'_, '_>, job: &PoiJob) -> Result<u64, TxError> {
    let units = market::job(ctx.state, job.id)?
        .ok_or(TxError::UnknownJob(job.id))?
        .units;
    Ok((units / job.segments.max(1)).max(1))
}

/// The job's seed arrived: create and assign its spot checks.
pub(crate) fn on_drawn(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    randomness: [u8; 32],
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    job.randomness = Some(randomness);
    let p = &ctx.params.poi;
    let subjects = selected(&job, &randomness, p.check_bps, p.infer_check_bps);
    let units = units_per_check(ctx, &job)?;
    let count = u32::try_from(subjects.len()).map_err(|_| TxError::Overflow("checks"))?;
    job.checks = count;
    job.checks_pending = count;
    write_job(ctx.state, &job);
    for (index, subject) in (0u32..).zip(subjects) {
        let check = Check {
            job: id,
            index,
            subject,
            role: CheckRole::Spot,
            validator: None,
            deadline: 0,
            attempts: 0,
            status: CheckStatus::Open,
            verdict: None,
            referee_target: None,
            units,
        };
        assign(ctx, &job, check, &randomness, &[])?;
    }
    ctx.emit(
        Event::new(NAME, "checks_drawn")
            .with("job", id)
            .with("checks", u64::from(count)),
    );
    maybe_eval(ctx, id)
}

/// Creates the eval check of a drawn training job whose claim window has closed (once).
pub(crate) fn maybe_eval(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let (Some(randomness), Some(q)) = (job.randomness, job.quality.as_mut()) else {
        return Ok(());
    };
    if q.stage != QualityStage::Evaluating
        || q.eval_check.is_some()
        || job.status != PoiStatus::Verifying
    {
        return Ok(());
    }
    let index = job.checks;
    q.eval_check = Some(index);
    job.checks = job
        .checks
        .checked_add(1)
        .ok_or(TxError::Overflow("checks"))?;
    job.checks_pending = job
        .checks_pending
        .checked_add(1)
        .ok_or(TxError::Overflow("checks"))?;
    let units = units_per_check(ctx, &job)?;
    write_job(ctx.state, &job);
    let check = Check {
        job: id,
        index,
        subject: CheckSubject::Eval,
        role: CheckRole::Spot,
        validator: None,
        deadline: 0,
        attempts: 0,
        status: CheckStatus::Open,
        verdict: None,
        referee_target: None,
        units,
    };
    assign(ctx, &job, check, &randomness, &[])
}

/// Whether `v` may take another check now.
fn eligible(ctx: &ExecContext<'_, '_>, v: &Verifier) -> bool {
    v.jailed_until <= ctx.block.height
        && v.bond >= ctx.params.poi.verifier_bond_min
        && v.open_checks < ctx.params.poi.verifier_checks_max
}

/// Assigns `check` (open) to a drawn eligible verifier, or leaves it unassigned, and sets its
/// deadline; writes it.
pub(crate) fn assign(
    ctx: &mut ExecContext<'_, '_>,
    job: &PoiJob,
    mut check: Check,
    randomness: &[u8; 32],
    excluded: &[Address],
) -> Result<(), TxError> {
    let mj = market::job(ctx.state, job.id)?.ok_or(TxError::UnknownJob(job.id))?;
    let n = verifier_count(ctx.state)?;
    let mut chosen = None;
    if n > 0 {
        let mut tag = b"who".to_vec();
        tag.extend_from_slice(&check.attempts.to_le_bytes());
        let start = draw_u64(randomness, job.id, &tag, u64::from(check.index)) % u64::from(n);
        for step in 0..u64::from(n) {
            let ordinal = u32::try_from((start + step) % u64::from(n)).expect("below n");
            let address = verifier_at(ctx.state, ordinal)?.ok_or_else(|| {
                crate::error::StateError(format!("verifier index {ordinal} missing"))
            })?;
            if Some(address) == mj.provider || address == mj.owner || excluded.contains(&address) {
                continue;
            }
            let v = read_verifier(ctx.state, &address)?
                .ok_or_else(|| crate::error::StateError(format!("verifier {address} missing")))?;
            if eligible(ctx, &v) {
                chosen = Some(v);
                break;
            }
        }
    }
    let height = ctx.block.height;
    let window = ctx.params.poi.check_blocks;
    check.deadline = height
        .checked_add(window)
        .ok_or(TxError::Overflow("check deadline"))?;
    check.validator = chosen.as_ref().map(|v| v.address);
    if let Some(mut v) = chosen {
        ctx.state
            .put(assigned_key(&v.address, job.id, check.index), Vec::new());
        v.open_checks = v
            .open_checks
            .checked_add(1)
            .ok_or(TxError::Overflow("open checks"))?;
        write_verifier(ctx.state, &v);
        check.attempts = check
            .attempts
            .checked_add(1)
            .ok_or(TxError::Overflow("attempts"))?;
        ctx.emit(
            Event::new(NAME, "check_assigned")
                .with("job", job.id)
                .with("check", u64::from(check.index))
                .with("validator", v.address)
                .with("deadline", check.deadline),
        );
    }
    ctx.state.put(
        deadline_key(check.deadline, job.id, check.index),
        Vec::new(),
    );
    write_check(ctx.state, &check);
    Ok(())
}

/// Waives an open check that is no longer needed (its question was decided another way):
/// its assignment is released and nobody is struck.
pub(crate) fn waive_open(ctx: &mut ExecContext<'_, '_>, check: &Check) -> Result<(), TxError> {
    release(ctx, check)?;
    let mut check = check.clone();
    check.status = CheckStatus::Waived;
    check.deadline = ctx.block.height;
    write_check(ctx.state, &check);
    Ok(())
}

/// Closes an open check's assignment: removes its deadline and frees its verifier's slot.
pub(crate) fn release(
    ctx: &mut ExecContext<'_, '_>,
    check: &Check,
) -> Result<Option<Verifier>, TxError> {
    ctx.state
        .delete(deadline_key(check.deadline, check.job, check.index));
    let Some(address) = check.validator else {
        return Ok(None);
    };
    ctx.state
        .delete(assigned_key(&address, check.job, check.index));
    let mut v = read_verifier(ctx.state, &address)?.ok_or(TxError::UnknownVerifier(address))?;
    v.open_checks = v
        .open_checks
        .checked_sub(1)
        .ok_or(TxError::Overflow("open checks"))?;
    write_verifier(ctx.state, &v);
    Ok(Some(v))
}

/// `Attest`: the assigned verifier's verdict on an open check.
pub(crate) fn attest(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    id: u64,
    index: u32,
    verdict: Verdict,
) -> Result<(), TxError> {
    let job = job_or_err(ctx.state, id)?;
    let mut check = check_or_err(ctx.state, id, index)?;
    if check.status != CheckStatus::Open {
        return Err(TxError::CheckClosed {
            job: id,
            check: index,
            state: check.status.as_str(),
        });
    }
    if check.validator != Some(signer) {
        return Err(TxError::NotAssignedVerifier {
            job: id,
            check: index,
            assigned: check
                .validator
                .map_or_else(|| "nobody".to_owned(), |a| a.to_string()),
            signer,
        });
    }
    let fits = match (&verdict, check.subject) {
        (Verdict::Output { .. }, subject) => matches!(subject, CheckSubject::Op { .. }),
        (_, CheckSubject::Op { .. }) => false,
        (Verdict::Scores { .. }, subject) => subject == CheckSubject::Eval,
        (Verdict::Match { .. } | Verdict::Mismatch { .. }, CheckSubject::Eval) => false,
        _ => true,
    };
    if !fits {
        return Err(TxError::InvalidMessage(format!(
            "a {} verdict does not answer a {:?} check",
            verdict.as_str(),
            check.subject
        )));
    }
    if let (Verdict::Mismatch { step, .. }, CheckSubject::Segment(j)) = (&verdict, check.subject) {
        let first = j.saturating_mul(job.segment_steps);
        let last = first.saturating_add(job.segment_steps).min(job.steps);
        if *step <= first || *step > last {
            return Err(TxError::InvalidMessage(format!(
                "a mismatch in segment {j} is at a step in {}..={last}, not {step}",
                first + 1
            )));
        }
    }
    if let Some(mut v) = release(ctx, &check)? {
        v.credits_units = v.credits_units.saturating_add(check.units);
        write_verifier(ctx.state, &v);
        crate::rewards::credit(
            ctx,
            crate::rewards::Class::Validators,
            v.address,
            check.units.into(),
        )?;
    }
    ctx.emit(
        Event::new(NAME, "attested")
            .with("job", id)
            .with("check", u64::from(index))
            .with("validator", signer)
            .with("verdict", verdict.as_str()),
    );
    let fault = verdict.accuses(claim_of(&job));
    let scores = match verdict {
        Verdict::Scores { score, base_score } => Some((score, base_score)),
        _ => None,
    };
    check.verdict = Some(verdict);
    check.deadline = ctx.block.height;
    if job.canary_revealed && matches!(check.role, CheckRole::Spot | CheckRole::Referee { .. }) {
        // A revealed canary: the verdict is judged at once and nothing goes to referees.
        super::canary::judge(ctx, &check)?;
        check.status = if fault {
            CheckStatus::Waived
        } else {
            CheckStatus::Matched
        };
        write_check(ctx.state, &check);
        return match check.role {
            CheckRole::Spot => spot_closed(ctx, id),
            _ => Ok(()),
        };
    }
    match check.role {
        CheckRole::Referee { of } => {
            check.status = CheckStatus::Voted;
            write_check(ctx.state, &check);
            tally(ctx, id, of)
        }
        CheckRole::Arbiter { dispute } => {
            check.status = CheckStatus::Voted;
            write_check(ctx.state, &check);
            super::dispute::tally(ctx, id, dispute)
        }
        CheckRole::Spot if !fault => {
            check.status = CheckStatus::Matched;
            write_check(ctx.state, &check);
            if let Some((score, base_score)) = scores {
                quality::measured(ctx, id, score, base_score)?;
            }
            spot_closed(ctx, id)
        }
        CheckRole::Spot => {
            check.status = CheckStatus::AwaitingReferees;
            check.referee_target = beacon::target_for_check(ctx, id, index)?;
            write_check(ctx.state, &check);
            Ok(())
        }
    }
}

/// The seed for check `of`'s referees arrived: draw and assign them.
pub(crate) fn draw_referees(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    of: u32,
    randomness: [u8; 32],
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let mut accused = check_or_err(ctx.state, id, of)?;
    accused.status = CheckStatus::Refereed;
    accused.referee_target = None;
    write_check(ctx.state, &accused);
    let excluded: Vec<Address> = accused.validator.into_iter().collect();
    let role = CheckRole::Referee { of };
    draw_checks(
        ctx,
        &mut job,
        accused.subject,
        role,
        accused.units,
        &randomness,
        excluded,
    )?;
    ctx.emit(
        Event::new(NAME, "referees_drawn")
            .with("job", id)
            .with("check", u64::from(of)),
    );
    Ok(())
}

/// Draws `params.poi.referees` new checks of `job` on `subject` in `role`, each assigned by
/// `randomness` to a verifier outside `excluded` and the ones drawn before it.
pub(crate) fn draw_checks(
    ctx: &mut ExecContext<'_, '_>,
    job: &mut PoiJob,
    subject: CheckSubject,
    role: CheckRole,
    units: u64,
    randomness: &[u8; 32],
    mut excluded: Vec<Address>,
) -> Result<(), TxError> {
    for _ in 0..ctx.params.poi.referees {
        let index = job.checks;
        job.checks = job
            .checks
            .checked_add(1)
            .ok_or(TxError::Overflow("checks"))?;
        write_job(ctx.state, job);
        let check = Check {
            job: job.id,
            index,
            subject,
            role,
            validator: None,
            deadline: 0,
            attempts: 0,
            status: CheckStatus::Open,
            verdict: None,
            referee_target: None,
            units,
        };
        assign(ctx, job, check, randomness, &excluded)?;
        if let Some(v) = check_or_err(ctx.state, job.id, index)?.validator {
            excluded.push(v);
        }
    }
    Ok(())
}

/// Counts check `of`'s referee verdicts; decides it once a side has a majority or every
/// referee is done.
fn tally(ctx: &mut ExecContext<'_, '_>, id: u64, of: u32) -> Result<(), TxError> {
    let claim = claim_of(&job_or_err(ctx.state, id)?);
    let accused = check_or_err(ctx.state, id, of)?;
    if accused.status != CheckStatus::Refereed {
        return Ok(());
    }
    let referees: Vec<Check> = job_checks(ctx.state, id)?
        .into_iter()
        .filter(|c| c.role == CheckRole::Referee { of })
        .collect();
    let votes = |fault: bool| {
        referees
            .iter()
            .filter(|c| c.status == CheckStatus::Voted)
            .filter(|c| {
                c.verdict
                    .as_ref()
                    .is_some_and(|v| v.accuses(claim) == fault)
            })
            .count()
    };
    let need = ctx.params.poi.referees as usize / 2 + 1;
    let (faults, matches) = (votes(true), votes(false));
    let done = referees.iter().all(|c| c.status != CheckStatus::Open);
    let upheld = if faults >= need {
        true
    } else if matches >= need || done {
        false
    } else {
        return Ok(());
    };
    // Decided: the referees still open are no longer needed.
    for r in referees.iter().filter(|r| r.status == CheckStatus::Open) {
        waive_open(ctx, r)?;
    }
    // Referees that voted against the outcome get a strike.
    for r in &referees {
        let against = r.status == CheckStatus::Voted
            && r.verdict
                .as_ref()
                .is_some_and(|v| v.accuses(claim) != upheld);
        if let (true, Some(address)) = (against, r.validator) {
            strike(ctx, address)?;
        }
    }
    if upheld {
        let winners: Vec<Address> = referees
            .iter()
            .filter(|c| c.verdict.as_ref().is_some_and(|v| v.accuses(claim)))
            .filter_map(|c| c.validator)
            .collect();
        uphold(ctx, id, accused, winners)
    } else {
        let mut accused = accused;
        accused.status = CheckStatus::Overturned;
        write_check(ctx.state, &accused);
        if let Some(accuser) = accused.validator {
            strike(ctx, accuser)?;
        }
        ctx.emit(
            Event::new(NAME, "accusation_overturned")
                .with("job", id)
                .with("check", u64::from(of)),
        );
        if accused.subject == CheckSubject::Eval {
            // The claim stands; the base score is the referees' (first that voted).
            let base = referees.iter().find_map(|r| match r.verdict {
                Some(Verdict::Scores { base_score, .. }) => Some(base_score),
                _ => None,
            });
            if let (Some(score), Some(base)) = (claim, base) {
                quality::measured(ctx, id, score, base)?;
            } else {
                let mut job = job_or_err(ctx.state, id)?;
                quality::abandon(ctx, &mut job);
                write_job(ctx.state, &job);
            }
        }
        spot_closed(ctx, id)
    }
}

/// The referees upheld `accused`: the provider is slashed through the market, the job fails,
/// and every other open check of the job is waived.
fn uphold(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    mut accused: Check,
    referees: Vec<Address>,
) -> Result<(), TxError> {
    let job = job_or_err(ctx.state, id)?;
    let verdict = accused
        .verdict
        .clone()
        .ok_or(TxError::Overflow("verdict"))?;
    let reason = match (&verdict, job.kind) {
        (Verdict::Unavailable, _) => "withheld_checkpoint",
        (Verdict::Scores { .. }, _) => "forged_score",
        (_, PoiKind::Training) => "faked_segment",
        (_, PoiKind::Inference) => "wrong_inference",
    };
    accused.status = CheckStatus::Upheld;
    write_check(ctx.state, &accused);
    fail_job(
        ctx,
        id,
        Fault {
            reason,
            evidence: verdict,
            check: accused.index,
            accuser: accused.validator,
            referees,
        },
    )
}

/// A proven fault of a job's provider.
pub(crate) struct Fault {
    /// `faked_segment`, `withheld_checkpoint`, ...
    pub reason: &'static str,
    /// What the accuser said.
    pub evidence: Verdict,
    /// The accusing check (or the dispute's slot).
    pub check: u32,
    /// Who proved it (paid `dispute_reward_bps` of the slash).
    pub accuser: Option<Address>,
    /// The referees who upheld it.
    pub referees: Vec<Address>,
}

/// The provider of job `id` is at fault: the market slashes it (refunding and crediting the
/// owner, rewarding the accuser), PoI records the slash, the job fails, and every other open
/// check and dispute of the job ends.
pub(crate) fn fail_job(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    fault: Fault,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let mj = market::job(ctx.state, id)?.ok_or(TxError::UnknownJob(id))?;
    let provider = mj.provider.ok_or(TxError::UnknownJob(id))?;
    let mut amount = 0;
    if mj.status == JobStatus::Committed && mj.is_held() {
        let before = collateral(ctx, &provider)?;
        market::open_poi_dispute(ctx, id)?;
        market::resolve_dispute_for(ctx, id, true, fault.accuser)?;
        amount = before.saturating_sub(collateral(ctx, &provider)?);
    }
    let seq = append_slash(
        ctx.state,
        SlashRecord {
            seq: 0,
            height: ctx.block.height,
            account: provider,
            role: "provider".into(),
            reason: fault.reason.into(),
            job: id,
            check: fault.check,
            evidence: fault.evidence,
            referees: fault.referees,
            amount,
        },
    )?;
    for other in job_checks(ctx.state, id)? {
        match other.status {
            CheckStatus::Open => {
                release(ctx, &other)?;
            }
            CheckStatus::AwaitingReferees => beacon::cancel_check_target(ctx, &other)?,
            _ => continue,
        }
        let mut other = other;
        other.status = CheckStatus::Waived;
        other.referee_target = None;
        other.deadline = ctx.block.height;
        write_check(ctx.state, &other);
    }
    job.status = PoiStatus::Failed;
    job.checks_pending = 0;
    quality::abandon(ctx, &mut job);
    write_job(ctx.state, &job);
    super::dispute::refund_open(ctx, id)?;
    ctx.emit(
        Event::new(NAME, "provider_slashed")
            .with("job", id)
            .with("provider", provider)
            .with("reason", fault.reason)
            .with("amount", amount)
            .with("slash", seq),
    );
    Ok(())
}

fn collateral(ctx: &ExecContext<'_, '_>, who: &Address) -> Result<u128, TxError> {
    Ok(crate::market::records::read_provider(ctx.state, who)?.map_or(0, |p| p.collateral))
}

/// Ends an accusation without a verdict (its job was a revealed canary): the referee
/// re-checks still open are waived and the accusation no longer blocks settlement.
pub(crate) fn drop_accusation(
    ctx: &mut ExecContext<'_, '_>,
    accused: &Check,
) -> Result<(), TxError> {
    beacon::cancel_check_target(ctx, accused)?;
    let of = accused.index;
    for r in job_checks(ctx.state, accused.job)? {
        if r.role == (CheckRole::Referee { of }) && r.status == CheckStatus::Open {
            waive_open(ctx, &r)?;
        }
    }
    let mut accused = accused.clone();
    accused.status = CheckStatus::Waived;
    accused.referee_target = None;
    write_check(ctx.state, &accused);
    spot_closed(ctx, accused.job)
}

/// One spot check of job `id` stopped blocking; settles the job when none does.
pub(crate) fn spot_closed(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    job.checks_pending = job
        .checks_pending
        .checked_sub(1)
        .ok_or(TxError::Overflow("pending checks"))?;
    write_job(ctx.state, &job);
    finish(ctx, job)
}

/// Settles a verifying job with no blocking check: the market pays the provider.
pub(crate) fn finish(ctx: &mut ExecContext<'_, '_>, mut job: PoiJob) -> Result<(), TxError> {
    if job.status != PoiStatus::Verifying
        || job.checks_pending > 0
        || job.disputes_open > 0
        || !quality::settled(&job)
    {
        return Ok(());
    }
    let mj = market::job(ctx.state, job.id)?.ok_or(TxError::UnknownJob(job.id))?;
    if mj.status == JobStatus::Committed && mj.is_held() {
        market::settle_verified(ctx, job.id)?;
        split_payment(ctx, &job)?;
    }
    job.status = PoiStatus::Verified;
    credit_verified(ctx, &job, &mj)?;
    // A revealed canary's work was planted: it never reaches the registry.
    if let (Some(q), false) = (job.quality.clone(), job.canary_revealed) {
        register_model(ctx, &mut job, &mj, &q)?;
    }
    write_job(ctx.state, &job);
    ctx.emit(
        Event::new(NAME, "verified")
            .with("job", job.id)
            .with("checks", u64::from(job.checks)),
    );
    Ok(())
}

/// Takes the job fee, royalties and usage burn out of a verified job's payment
/// ([`crate::payout`]). A revealed canary pays none (its work was planted).
fn split_payment(ctx: &mut ExecContext<'_, '_>, job: &PoiJob) -> Result<(), TxError> {
    let settled = market::job(ctx.state, job.id)?.ok_or(TxError::UnknownJob(job.id))?;
    let Some(provider) = settled.provider else {
        return Ok(());
    };
    if job.canary_revealed || settled.paid == 0 {
        return Ok(());
    }
    let inference = job.kind == PoiKind::Inference;
    let quality_ppm = if inference {
        job.model_id
            .map(|id| registry::read_model(ctx.state, id))
            .transpose()?
            .flatten()
            .map_or(0, |v| v.multiplier_ppm)
    } else {
        job.quality.as_ref().map_or(0, |q| q.multiplier_ppm)
    };
    let split = crate::payout::split_payment(
        ctx,
        &crate::payout::Payment {
            job: job.id,
            provider,
            paid: settled.paid,
            units: settled.units_delivered,
            inference,
            version: job.model_id.filter(|_| inference),
            quality_ppm,
        },
    )?;
    ctx.emit(
        Event::new(NAME, "payment_split")
            .with("job", job.id)
            .with("paid", settled.paid)
            .with("fee", split.fee)
            .with("royalties", split.royalties)
            .with("burned", split.burned)
            .with("provider", split.provider),
    );
    Ok(())
}

/// Reward weights of a verified job: its provider by `units x multiplier x reputation`, and
/// for inference the served version's developers by `units x bps`. A revealed canary earns
/// nothing (its work was planted).
fn credit_verified(
    ctx: &mut ExecContext<'_, '_>,
    job: &PoiJob,
    mj: &market::Job,
) -> Result<(), TxError> {
    use crate::rewards::{Class, credit};
    if job.canary_revealed {
        return Ok(());
    }
    let units = u128::from(mj.units);
    let multiplier = job.quality.as_ref().map_or(1_000_000, |q| q.multiplier_ppm);
    if let Some(provider) = mj.provider {
        let reputation = crate::market::records::read_provider(ctx.state, &provider)?
            .map_or(0, |p| p.reputation_ppm);
        let weight = units
            .saturating_mul(u128::from(multiplier))
            .saturating_mul(u128::from(reputation));
        credit(ctx, Class::Providers, provider, weight)?;
    }
    if let market::JobSpec::Training { datasets, .. } = &mj.spec {
        crate::rewards::data::credit_job(ctx, datasets, mj.units, multiplier)?;
    }
    if job.kind == PoiKind::Inference
        && let Some(version) = job
            .model_id
            .map(|id| registry::read_model(ctx.state, id))
            .transpose()?
            .flatten()
    {
        for d in version.developers {
            credit(
                ctx,
                Class::Developers,
                d.address,
                units.saturating_mul(u128::from(d.bps)),
            )?;
        }
    }
    Ok(())
}

/// Registers a verified training job's model if its improvement qualifies.
fn register_model(
    ctx: &mut ExecContext<'_, '_>,
    job: &mut PoiJob,
    mj: &market::Job,
    q: &quality::Quality,
) -> Result<(), TxError> {
    let (Some(score), Some(base_score)) = (q.score, q.base_score) else {
        return Ok(());
    };
    if q.improvement_ppm < ctx.params.poi.registry_min_improvement_ppm {
        return Ok(());
    }
    let market::JobSpec::Training {
        model, datasets, ..
    } = &mj.spec
    else {
        return Ok(());
    };
    let commitment = job.commitment.as_ref().ok_or(TxError::NotPoiJob(job.id))?;
    let name = match datasets.first() {
        Some(d) => format!("{model}-{d}"),
        None => model.clone(),
    };
    let id = registry::register(
        ctx,
        registry::ModelVersion {
            id: 0,
            name,
            version: 0,
            model: model.clone(),
            params_digest: commitment.params_digest,
            job: Some(job.id),
            base: q.base_model,
            datasets: datasets.clone(),
            developers: vec![registry::DeveloperShare {
                address: mj.owner,
                bps: 10_000,
            }],
            provider: mj.provider,
            score,
            base_score,
            improvement_ppm: q.improvement_ppm,
            multiplier_ppm: q.multiplier_ppm,
            height: ctx.block.height,
        },
    )?;
    job.model_id = Some(id);
    Ok(())
}

/// Adds a strike; `strikes_to_jail` of them jail the verifier.
pub(crate) fn strike(ctx: &mut ExecContext<'_, '_>, address: Address) -> Result<(), TxError> {
    let Some(mut v) = read_verifier(ctx.state, &address)? else {
        return Ok(());
    };
    v.strikes = v.strikes.saturating_add(1);
    let mut event = Event::new(NAME, "strike")
        .with("validator", address)
        .with("strikes", u64::from(v.strikes));
    if v.strikes >= ctx.params.poi.strikes_to_jail {
        v.strikes = 0;
        v.jailed_until = ctx.block.height.saturating_add(ctx.params.poi.jail_blocks);
        event = event.with("jailed_until", v.jailed_until);
    }
    write_verifier(ctx.state, &v);
    ctx.emit(event);
    Ok(())
}

/// Fires due check deadlines (at most `deadlines_per_block_max`).
pub(crate) fn run_deadlines(ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
    let height = ctx.block.height;
    let budget = ctx.params.poi.deadlines_per_block_max as usize;
    let mut due = Vec::new();
    ctx.state.scan_prefix(
        CHECK_DEADLINE_PREFIX,
        &mut |key, _| match parse_deadline_key(key) {
            Some((h, job, index)) if h <= height && due.len() < budget => {
                due.push((job, index));
                true
            }
            _ => false,
        },
    )?;
    for (id, index) in due {
        if index == quality::QUALITY_SLOT {
            quality::deadline(ctx, id)?;
            continue;
        }
        let check = check_or_err(ctx.state, id, index)?;
        let job = job_or_err(ctx.state, id)?;
        release(ctx, &check)?;
        let mut check = check;
        if let Some(missed) = check.validator.take() {
            ctx.emit(
                Event::new(NAME, "check_missed")
                    .with("job", id)
                    .with("check", u64::from(index))
                    .with("validator", missed),
            );
            strike(ctx, missed)?;
        }
        if check.attempts >= ctx.params.poi.check_attempts_max {
            check.status = CheckStatus::Waived;
            check.deadline = height;
            write_check(ctx.state, &check);
            ctx.emit(
                Event::new(NAME, "check_waived")
                    .with("job", id)
                    .with("check", u64::from(index)),
            );
            match check.role {
                CheckRole::Spot => spot_closed(ctx, id)?,
                CheckRole::Referee { of } => tally(ctx, id, of)?,
                CheckRole::Arbiter { dispute } => super::dispute::tally(ctx, id, dispute)?,
            }
            continue;
        }
        let randomness = job
            .randomness
            .ok_or(TxError::Overflow("undrawn job has checks"))?;
        let excluded = match check.role {
            CheckRole::Spot => Vec::new(),
            CheckRole::Referee { of } => job_checks(ctx.state, id)?
                .into_iter()
                .filter(|c| c.index == of || c.role == CheckRole::Referee { of })
                .filter_map(|c| c.validator)
                .collect(),
            CheckRole::Arbiter { dispute } => super::dispute::excluded(ctx.state, id, dispute)?,
        };
        assign(ctx, &job, check, &randomness, &excluded)?;
    }
    Ok(())
}
