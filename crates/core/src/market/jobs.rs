//! Jobs: submission with escrow, the provider's start and commit, the user's accept, dispute
//! and cancel, settlement and refunds.
//!
//! Escrow: `units x max_price` moves from the owner's balance into the job record at
//! submission. When the job ends it leaves exactly once: `units_delivered x charged_price` to
//! the provider and the rest to the owner (settlement), or all of it to the owner (cancel,
//! expiry, a dispute lost by the provider). A final job holds nothing.
//!
//! Tier stake: on a user's first active job the market locks the stake threshold of the tier
//! the job claims; a later job claiming a higher tier locks the difference; the lock is
//! released when the user's last active job ends. So stake cannot unbond below the tier its
//! jobs are being served at (`stake_locked`).

use crate::address::Address;
use crate::bank;
use crate::error::{self, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::staking;
use crate::token::Amount;

use super::NAME;
use super::params::{MarketParams, PPM_ONE};
use super::provider::reputation_after;
use super::records::{
    DeadlineKind, EXCLUDED_MAX, Job, JobSpec, JobStatus, MarketState, Provider, job_or_err,
    queue_key, read_provider, read_user, write_job_deadline, write_job_held, write_provider,
    write_user,
};
use super::slashing::{self, Evidence, SlashReason};

/// Most datasets one training job may name.
pub const DATASETS_MAX: usize = 8;

fn count_add(counter: &mut u64, what: &'static str) -> Result<(), TxError> {
    *counter = counter.checked_add(1).ok_or(TxError::Overflow(what))?;
    Ok(())
}

fn count_sub(counter: &mut u64, what: &'static str) -> Result<(), TxError> {
    *counter = counter.checked_sub(1).ok_or(TxError::Overflow(what))?;
    Ok(())
}

/// Moves `job` to `status`, keeping the per-status counters.
pub(crate) fn set_status(
    ms: &mut MarketState,
    job: &mut Job,
    status: JobStatus,
) -> Result<(), TxError> {
    count_sub(&mut ms.jobs_by_status[job.status.index()], "jobs by status")?;
    count_add(&mut ms.jobs_by_status[status.index()], "jobs by status")?;
    job.status = status;
    Ok(())
}

pub(crate) fn enqueue(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
) -> Result<(), TxError> {
    ctx.state.put(queue_key(job), Vec::new());
    let tier = job.tier as usize;
    count_add(&mut ms.queued_by_tier[tier], "queued by tier")?;
    ms.queued_since_sum[tier] = error::add(
        ms.queued_since_sum[tier],
        u128::from(job.submitted_height),
        "queue wait sum",
    )?;
    let expiry = ctx
        .block
        .height
        .checked_add(ctx.params.market.queue_ttl_blocks)
        .ok_or(TxError::Overflow("queue expiry"))?;
    write_job_deadline(ctx.state, job, expiry)?;
    Ok(())
}

pub(crate) fn dequeue(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &Job,
) -> Result<(), TxError> {
    ctx.state.delete(queue_key(job));
    let tier = job.tier as usize;
    count_sub(&mut ms.queued_by_tier[tier], "queued by tier")?;
    ms.queued_since_sum[tier] = error::sub(
        ms.queued_since_sum[tier],
        u128::from(job.submitted_height),
        "queue wait sum",
    )?;
    Ok(())
}

/// Takes `job` off its provider: frees the capacity it occupied and drops it from the active
/// list. Returns the provider record (not yet written).
pub(crate) fn detach(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &Job,
) -> Result<Provider, TxError> {
    let address = job.provider.expect("an assigned job has a provider");
    let mut p = read_provider(ctx.state, &address)?.expect("a provider with jobs is registered");
    if job.status.is_loading() {
        release_load(ms, &mut p, job)?;
    }
    p.jobs.retain(|id| *id != job.id);
    Ok(p)
}

fn release_load(ms: &mut MarketState, p: &mut Provider, job: &Job) -> Result<(), TxError> {
    p.load_units = p
        .load_units
        .checked_sub(job.units)
        .ok_or(TxError::Overflow("provider load"))?;
    ms.load_units = error::sub(ms.load_units, u128::from(job.units), "market load")?;
    Ok(())
}

/// One fewer active job for `owner`; the last one releases the tier lock.
fn release_user(ctx: &mut ExecContext<'_, '_>, owner: Address) -> Result<(), TxError> {
    let mut user = read_user(ctx.state, &owner)?;
    user.active_jobs = user
        .active_jobs
        .checked_sub(1)
        .ok_or(TxError::Overflow("active jobs"))?;
    if user.active_jobs == 0 && user.locked > 0 {
        staking::unlock(ctx.state, owner, user.locked)?;
        user.locked = 0;
    }
    write_user(ctx.state, &owner, &user);
    Ok(())
}

/// The tier a new job of `signer` claims, locking the stake it needs: the highest tier reached
/// by the stake the market already locks for this user plus the free stake (stake locked for
/// something else, such as provider collateral, does not buy a tier twice).
fn claim_tier(ctx: &mut ExecContext<'_, '_>, signer: Address) -> Result<(u8, Amount), TxError> {
    let staking_params = &ctx.params.staking;
    let mut user = read_user(ctx.state, &signer)?;
    if user.active_jobs >= ctx.params.market.open_jobs_per_user_max {
        return Err(TxError::QueueFull {
            account: signer,
            open: user.active_jobs,
        });
    }
    let stake = staking::stake(ctx.state, &signer)?;
    let usable = error::add(stake.free(), user.locked, "tier stake")?;
    let tier = staking_params.tier(usable);
    let needed = match tier {
        0 => 0,
        t => staking_params.tier_thresholds[t as usize - 1],
    };
    if needed > user.locked {
        staking::lock(ctx.state, signer, needed - user.locked)?;
        user.locked = needed;
    }
    user.active_jobs = user
        .active_jobs
        .checked_add(1)
        .ok_or(TxError::Overflow("active jobs"))?;
    write_user(ctx.state, &signer, &user);
    Ok((tier, user.locked))
}

/// Priority band of a job of `tier` submitted at `height`: `(height + (tiers - tier) x aging) /
/// aging`. See [`super::matching`] for why this is aging by one tier per `aging_blocks`.
pub fn priority_band(
    params: &MarketParams,
    tiers: u8,
    tier: u8,
    height: u64,
) -> Result<u64, TxError> {
    let aging = params.aging_blocks;
    u64::from(tiers.saturating_sub(tier))
        .checked_mul(aging)
        .and_then(|head_start| head_start.checked_add(height))
        .map(|rank| rank / aging)
        .ok_or(TxError::Overflow("priority band"))
}

fn check_spec(params: &MarketParams, spec: &JobSpec) -> Result<(), TxError> {
    let model = match spec {
        JobSpec::Training {
            model, datasets, ..
        } => {
            if datasets.is_empty() || datasets.len() > DATASETS_MAX {
                return Err(TxError::InvalidMessage(format!(
                    "a training job names 1..={DATASETS_MAX} datasets, not {}",
                    datasets.len()
                )));
            }
            if let Some(unknown) = datasets.iter().find(|d| !params.datasets.contains(d)) {
                return Err(TxError::UnknownDataset(unknown.clone()));
            }
            model
        }
        JobSpec::Inference { model, .. } => model,
    };
    if !params.models.contains(model) {
        return Err(TxError::UnknownModel(model.clone()));
    }
    Ok(())
}

/// `SubmitTraining` / `SubmitInference`: escrow `units x max_price` and queue the job. Refused
/// above `job_units_max` units (`job_too_large`) and below the current base price
/// (`price_below_base`), since no provider could take such a job.
pub(crate) fn submit(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    spec: JobSpec,
    units: u64,
    max_price: Amount,
) -> Result<(), TxError> {
    let params = &ctx.params.market;
    check_spec(params, &spec)?;
    if units == 0 || max_price == 0 {
        return Err(TxError::InvalidMessage(
            "units and max_price must be positive".into(),
        ));
    }
    if units > params.job_units_max {
        return Err(TxError::JobTooLarge {
            units,
            max: params.job_units_max,
        });
    }
    if max_price < ms.base_price {
        return Err(TxError::PriceBelowBase {
            max_price,
            base_price: ms.base_price,
        });
    }
    let escrow = u128::from(units)
        .checked_mul(max_price)
        .ok_or(TxError::Overflow("job escrow"))?;
    let balance = bank::account(ctx.state, &signer)?.map_or(0, |a| a.balance);
    if escrow > balance {
        return Err(TxError::OverBudget {
            account: signer,
            escrow,
            balance,
        });
    }
    bank::debit(ctx.state, signer, escrow)?;
    let (tier, tier_locked) = claim_tier(ctx, signer)?;
    let tiers = u8::try_from(ctx.params.staking.tier_thresholds.len()).expect("at most 8 tiers");
    let id = ms.next_job_id;
    ms.next_job_id = id.checked_add(1).ok_or(TxError::Overflow("job id"))?;
    let height = ctx.block.height;
    let mut job = Job {
        id,
        owner: signer,
        spec,
        units,
        max_price,
        tier,
        band: priority_band(&ctx.params.market, tiers, tier, height)?,
        submitted_height: height,
        status: JobStatus::Queued,
        escrow,
        provider: None,
        charged_price: 0,
        excluded: Vec::new(),
        deadline: None,
        work_blocks: 0,
        matched_height: 0,
        started_height: 0,
        committed_height: 0,
        result_root: None,
        units_delivered: 0,
        paid: 0,
        refunded: 0,
        compensated: 0,
        requeues: 0,
        dispute_bond: 0,
        dispute_bond_posted: 0,
    };
    count_add(
        &mut ms.jobs_by_status[JobStatus::Queued.index()],
        "jobs by status",
    )?;
    ms.escrow_total = error::add(ms.escrow_total, escrow, "escrow total")?;
    enqueue(ctx, ms, &mut job)?;
    ctx.emit(
        Event::new(NAME, "job_submitted")
            .with("job", id)
            .with("owner", signer)
            .with("units", units)
            .with("max_price", max_price)
            .with("escrow", escrow)
            .with("tier", u64::from(tier))
            .with("tier_stake_locked", tier_locked),
    );
    Ok(())
}

fn owned_job(ctx: &ExecContext<'_, '_>, signer: Address, id: u64) -> Result<Job, TxError> {
    let job = job_or_err(ctx.state, id)?;
    if job.owner != signer {
        return Err(TxError::NotJobOwner {
            job: id,
            owner: job.owner,
            signer,
        });
    }
    Ok(job)
}

fn assigned_job(ctx: &ExecContext<'_, '_>, signer: Address, id: u64) -> Result<Job, TxError> {
    let job = job_or_err(ctx.state, id)?;
    if job.provider != Some(signer) || job.status.is_final() {
        return Err(TxError::NotAssignedProvider { job: id, signer });
    }
    Ok(job)
}

fn expect_status(job: &Job, status: JobStatus) -> Result<(), TxError> {
    if job.status != status {
        return Err(TxError::BadJobState {
            job: job.id,
            state: job.status.as_str(),
            expected: status.as_str(),
        });
    }
    Ok(())
}

fn before_deadline(ctx: &ExecContext<'_, '_>, job: &Job) -> Result<(), TxError> {
    match job.deadline {
        // A hold marker is no deadline: a held job waits for PoI.
        Some(d) if d.kind != DeadlineKind::Held && ctx.block.height > d.height => {
            Err(TxError::DeadlinePassed {
                job: job.id,
                deadline: d.height,
            })
        }
        _ => Ok(()),
    }
}

/// Ends `job` returning `refund` to its owner and `paid` to its provider (already detached).
fn close(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
    status: JobStatus,
    paid: Amount,
) -> Result<(), TxError> {
    let refund = error::sub(job.escrow, paid, "job refund")?;
    if paid > 0 {
        let provider = job.provider.expect("only an assigned job pays");
        bank::credit(ctx.state, provider, paid)?;
    }
    bank::credit(ctx.state, job.owner, refund)?;
    ms.escrow_total = error::sub(ms.escrow_total, job.escrow, "escrow total")?;
    job.paid = paid;
    job.refunded = error::add(job.refunded, refund, "job refund")?;
    job.escrow = 0;
    set_status(ms, job, status)?;
    write_job_deadline(ctx.state, job, 0)?;
    release_user(ctx, job.owner)?;
    ctx.emit(
        Event::new(NAME, "job_closed")
            .with("job", job.id)
            .with("status", status.as_str())
            .with("paid", paid)
            .with("refunded", refund),
    );
    Ok(())
}

/// Settles a committed or disputed job in the provider's favour: the provider gets
/// `units_delivered x charged_price`, the owner the rest of the escrow.
pub(crate) fn settle(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
) -> Result<(), TxError> {
    let paid = u128::from(job.units_delivered)
        .checked_mul(job.charged_price)
        .ok_or(TxError::Overflow("job payment"))?;
    let mut p = detach(ctx, ms, job)?;
    let params = &ctx.params.market;
    count_add(&mut p.jobs_settled, "jobs settled")?;
    p.reputation_ppm = reputation_after(p.reputation_ppm, PPM_ONE, params.reputation_weight_ppm);
    write_provider(ctx.state, params, &mut p);
    close(ctx, ms, job, JobStatus::Settled, paid)
}

/// Refunds everything of a job that never ran (cancel, expiry).
pub(crate) fn refund_all(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
    status: JobStatus,
) -> Result<(), TxError> {
    close(ctx, ms, job, status, 0)
}

/// Puts a job its provider abandoned back in the queue with its original priority and escrow;
/// that provider joins the job's excluded list (the newest of at most [`EXCLUDED_MAX`], the
/// oldest dropped) and is not matched to it again while listed.
pub(crate) fn requeue(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
) -> Result<(), TxError> {
    if let Some(failed) = job.provider.take() {
        exclude(&mut job.excluded, failed);
    }
    job.charged_price = 0;
    job.requeues = job.requeues.saturating_add(1);
    set_status(ms, job, JobStatus::Queued)?;
    enqueue(ctx, ms, job)?;
    ctx.emit(Event::new(NAME, "job_requeued").with("job", job.id));
    Ok(())
}

/// Adds `failed` as the newest entry of an excluded list, keeping at most [`EXCLUDED_MAX`]
/// (the oldest go first) and no duplicate.
fn exclude(excluded: &mut Vec<Address>, failed: Address) {
    excluded.retain(|a| *a != failed);
    while excluded.len() >= EXCLUDED_MAX {
        excluded.remove(0);
    }
    excluded.push(failed);
}

/// `CancelJob`: the owner takes back a job that has not started.
pub(crate) fn cancel(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    id: u64,
) -> Result<(), TxError> {
    let mut job = owned_job(ctx, signer, id)?;
    match job.status {
        JobStatus::Queued => dequeue(ctx, ms, &job)?,
        JobStatus::Matched => {
            let mut p = detach(ctx, ms, &job)?;
            write_provider(ctx.state, &ctx.params.market, &mut p);
        }
        state => {
            return Err(TxError::BadJobState {
                job: id,
                state: state.as_str(),
                expected: "queued or matched",
            });
        }
    }
    refund_all(ctx, ms, &mut job, JobStatus::Cancelled)
}

/// `StartJob`: the assigned provider starts a matched job before its start deadline.
pub(crate) fn start(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    id: u64,
) -> Result<(), TxError> {
    let mut job = assigned_job(ctx, signer, id)?;
    expect_status(&job, JobStatus::Matched)?;
    before_deadline(ctx, &job)?;
    let height = ctx.block.height;
    let due = height
        .checked_add(job.work_blocks)
        .and_then(|h| h.checked_add(ctx.params.market.commit_grace_blocks))
        .ok_or(TxError::Overflow("commit deadline"))?;
    job.started_height = height;
    set_status(ms, &mut job, JobStatus::Running)?;
    write_job_deadline(ctx.state, &mut job, due)?;
    ctx.emit(
        Event::new(NAME, "job_started")
            .with("job", id)
            .with("provider", signer)
            .with("commit_deadline", due),
    );
    Ok(())
}

/// `CommitJob`: the assigned provider commits the result of a running job.
pub(crate) fn commit(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    id: u64,
    result_root: [u8; 32],
    units_delivered: u64,
) -> Result<(), TxError> {
    let mut job = assigned_job(ctx, signer, id)?;
    expect_status(&job, JobStatus::Running)?;
    before_deadline(ctx, &job)?;
    if ctx.state.get(&crate::poi::records::job_key(id))?.is_some() {
        return Err(TxError::PoiCommitRequired(id));
    }
    commit_running(ctx, ms, &mut job, result_root, units_delivered)
}

/// Commits a running job that passed the caller's checks (assigned provider, status,
/// deadline): the provider's load is freed and the challenge window opens.
fn commit_running(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
    result_root: [u8; 32],
    units_delivered: u64,
) -> Result<(), TxError> {
    let (id, signer) = (job.id, job.provider.expect("a running job has a provider"));
    if units_delivered > job.units {
        return Err(TxError::InvalidMessage(format!(
            "job {id}: {units_delivered} units delivered, only {} were bought",
            job.units
        )));
    }
    let mut p = read_provider(ctx.state, &signer)?.expect("assigned provider is registered");
    release_load(ms, &mut p, job)?;
    write_provider(ctx.state, &ctx.params.market, &mut p);
    let height = ctx.block.height;
    let window_end = height
        .checked_add(ctx.params.market.verify_blocks)
        .ok_or(TxError::Overflow("challenge window"))?;
    job.committed_height = height;
    job.result_root = Some(result_root);
    job.units_delivered = units_delivered;
    set_status(ms, job, JobStatus::Committed)?;
    write_job_deadline(ctx.state, job, window_end)?;
    ctx.emit(
        Event::new(NAME, "job_committed")
            .with("job", id)
            .with("provider", signer)
            .with("units_delivered", units_delivered)
            .with("result_root", hex::encode(result_root))
            .with("challenge_until", window_end),
    );
    Ok(())
}

/// `AcceptJob` (settle now) or `DisputeJob` (hold the escrow for a verdict, posting a bond of
/// `dispute_bond_bps` of the escrow from the owner's balance, `over_budget` if it cannot pay):
/// the owner's answer to a commit, within the challenge window. The verdict is due within
/// `dispute_blocks`; without one the job settles in the provider's favour and the bond goes
/// to the provider.
pub(crate) fn answer(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    signer: Address,
    id: u64,
    accept: bool,
) -> Result<(), TxError> {
    let mut job = owned_job(ctx, signer, id)?;
    expect_status(&job, JobStatus::Committed)?;
    before_deadline(ctx, &job)?;
    if accept && job.is_held() {
        return Err(TxError::VerificationPending(id));
    }
    if accept {
        return settle(ctx, ms, &mut job);
    }
    let bond = bank::share_bps(job.escrow, ctx.params.market.dispute_bond_bps)?;
    let balance = bank::account(ctx.state, &signer)?.map_or(0, |a| a.balance);
    if bond > balance {
        return Err(TxError::OverBudget {
            account: signer,
            escrow: bond,
            balance,
        });
    }
    if bond > 0 {
        bank::debit(ctx.state, signer, bond)?;
    }
    job.dispute_bond = bond;
    job.dispute_bond_posted = bond;
    let due = ctx
        .block
        .height
        .checked_add(ctx.params.market.dispute_blocks)
        .ok_or(TxError::Overflow("dispute deadline"))?;
    set_status(ms, &mut job, JobStatus::Disputed)?;
    write_job_deadline(ctx.state, &mut job, due)?;
    ctx.emit(
        Event::new(NAME, "job_disputed")
            .with("job", id)
            .with("owner", signer)
            .with("bond", bond)
            .with("verdict_by", due),
    );
    Ok(())
}

/// Pays a disputed job's bond to `to` (the owner if the provider was at fault, the provider
/// otherwise).
fn release_bond(ctx: &mut ExecContext<'_, '_>, job: &mut Job, to: Address) -> Result<(), TxError> {
    let bond = std::mem::take(&mut job.dispute_bond);
    if bond > 0 {
        bank::credit(ctx.state, to, bond)?;
    }
    Ok(())
}

/// Ends a disputed job in its provider's favour: the bond goes to the provider and the job
/// settles as if accepted (a verdict for the provider, or no verdict within
/// `dispute_blocks`).
pub(crate) fn dispute_lost_by_owner(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    job: &mut Job,
) -> Result<(), TxError> {
    let provider = job.provider.expect("a disputed job has a provider");
    release_bond(ctx, job, provider)?;
    settle(ctx, ms, job)
}

/// The verdict on a disputed job, for the Proof-of-Intelligence module: with
/// `provider_at_fault` the provider is slashed (the owner first receives its SLA credit out of
/// the slash), the owner gets the whole escrow and its dispute bond back and the job ends
/// `failed`; otherwise the provider gets the bond and the job settles as if accepted.
/// Errors (`unknown_job`, `bad_job_state` unless disputed) change nothing.
/// [`resolve_dispute_for`] with no winner.
pub fn resolve_dispute(
    ctx: &mut ExecContext<'_, '_>,
    job_id: u64,
    provider_at_fault: bool,
) -> Result<(), TxError> {
    resolve_dispute_for(ctx, job_id, provider_at_fault, None)
}

/// [`resolve_dispute`] naming the challenger who won: when the provider is at fault, `winner`
/// receives `dispute_reward_bps` of what is left of the slash after the users' SLA credits,
/// and burn and treasury split the rest (see [`super::slashing`]). When the provider is not at
/// fault there is no slash and `winner` is ignored (PoI settles a losing challenger's bond
/// itself). Errors (`unknown_job`, `bad_job_state` unless disputed) change nothing.
pub fn resolve_dispute_for(
    ctx: &mut ExecContext<'_, '_>,
    job_id: u64,
    provider_at_fault: bool,
    winner: Option<Address>,
) -> Result<(), TxError> {
    let mut ms = super::records::load_state(ctx.state, &ctx.params.market)?;
    let mut job = job_or_err(ctx.state, job_id)?;
    expect_status(&job, JobStatus::Disputed)?;
    if provider_at_fault {
        let mut p = detach(ctx, &mut ms, &job)?;
        let evidence = Evidence {
            job: Some(job_id),
            last_heartbeat: p.last_heartbeat,
            deadline: job.committed_height,
        };
        let mut victims = [job];
        slashing::slash(
            ctx,
            &mut p,
            SlashReason::Dispute,
            &mut victims,
            evidence,
            winner,
        )?;
        let [victim] = victims;
        job = victim;
        write_provider(ctx.state, &ctx.params.market, &mut p);
        let owner = job.owner;
        release_bond(ctx, &mut job, owner)?;
        refund_all(ctx, &mut ms, &mut job, JobStatus::Failed)?;
    } else {
        dispute_lost_by_owner(ctx, &mut ms, &mut job)?;
    }
    super::save_state(ctx.state, &ms);
    Ok(())
}

/// Runs `f` on the market state and job `id`, saving the state if it succeeds (the hooks PoI
/// calls each load and save the market state themselves, like [`resolve_dispute`]).
fn with_job(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    f: impl FnOnce(&mut ExecContext<'_, '_>, &mut MarketState, Job) -> Result<(), TxError>,
) -> Result<(), TxError> {
    let mut ms = super::records::load_state(ctx.state, &ctx.params.market)?;
    let job = job_or_err(ctx.state, id)?;
    f(ctx, &mut ms, job)?;
    super::save_state(ctx.state, &ms);
    Ok(())
}

fn expect_held(job: &Job) -> Result<(), TxError> {
    if !job.is_held() {
        return Err(TxError::BadJobState {
            job: job.id,
            state: if job.status == JobStatus::Committed {
                "committed, not held"
            } else {
                job.status.as_str()
            },
            expected: "committed and held",
        });
    }
    Ok(())
}

/// The commit of a running job, for the Proof-of-Intelligence module once it has checked the
/// commit's proofs and that the signer is the job's assigned provider: the same as the
/// market's `CommitJob` (commit deadline, `units_delivered <= units`), which PoI jobs must
/// not use (`poi_commit_required`). Errors (`unknown_job`, `bad_job_state` unless running,
/// `deadline_passed`, `invalid_message`) change nothing.
pub fn commit_for_poi(
    ctx: &mut ExecContext<'_, '_>,
    id: u64,
    result_root: [u8; 32],
    units_delivered: u64,
) -> Result<(), TxError> {
    with_job(ctx, id, |ctx, ms, mut job| {
        expect_status(&job, JobStatus::Running)?;
        before_deadline(ctx, &job)?;
        commit_running(ctx, ms, &mut job, result_root, units_delivered)
    })
}

/// Holds a committed job for Proof-of-Intelligence verification: it stays `committed`, its
/// challenge window leaves the deadline index (so it never settles by itself) and it carries
/// the [`DeadlineKind::Held`] marker. The owner's `AcceptJob` is then refused with
/// `verification_pending`; `DisputeJob` still works as for any committed job. PoI ends the
/// hold with [`settle_verified`] or [`open_poi_dispute`]. Errors (`unknown_job`,
/// `bad_job_state` unless committed and not yet held) change nothing.
pub fn hold(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    with_job(ctx, id, |ctx, _ms, mut job| {
        expect_status(&job, JobStatus::Committed)?;
        if job.is_held() {
            return Err(TxError::BadJobState {
                job: id,
                state: "committed and held",
                expected: "committed, not held",
            });
        }
        let height = ctx.block.height;
        write_job_held(ctx.state, &mut job, height)?;
        ctx.emit(Event::new(NAME, "job_held").with("job", id));
        Ok(())
    })
}

/// Settles a held job that PoI verified, exactly as the owner's acceptance does: the provider
/// gets `units_delivered x charged_price`, the owner the rest of the escrow. Errors
/// (`unknown_job`, `bad_job_state` unless committed and held) change nothing.
pub fn settle_verified(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    with_job(ctx, id, |ctx, ms, mut job| {
        expect_held(&job)?;
        settle(ctx, ms, &mut job)
    })
}

/// Opens a dispute on a committed job (held or not) for PoI: `committed -> disputed` with no
/// owner bond (the challenger's bond is PoI's). The verdict ([`resolve_dispute_for`]) is due
/// within `dispute_blocks`; without one the job settles for the provider, as any dispute.
/// Errors (`unknown_job`, `bad_job_state` unless committed) change nothing.
pub fn open_poi_dispute(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), TxError> {
    with_job(ctx, id, |ctx, ms, mut job| {
        expect_status(&job, JobStatus::Committed)?;
        let due = ctx
            .block
            .height
            .checked_add(ctx.params.market.dispute_blocks)
            .ok_or(TxError::Overflow("dispute deadline"))?;
        set_status(ms, &mut job, JobStatus::Disputed)?;
        write_job_deadline(ctx.state, &mut job, due)?;
        ctx.emit(
            Event::new(NAME, "job_disputed")
                .with("job", id)
                .with("by", "poi")
                .with("bond", 0u128)
                .with("verdict_by", due),
        );
        Ok(())
    })
}

/// Submission for the Proof-of-Intelligence module: the market's `SubmitTraining` /
/// `SubmitInference` with every check and the escrow, returning the new job's id (PoI keys
/// its own record by it). Errors change nothing.
pub fn submit_for_poi(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    spec: JobSpec,
    units: u64,
    max_price: Amount,
) -> Result<u64, TxError> {
    let mut ms = super::records::load_state(ctx.state, &ctx.params.market)?;
    let id = ms.next_job_id;
    submit(ctx, &mut ms, signer, spec, units, max_price)?;
    super::save_state(ctx.state, &ms);
    Ok(id)
}
