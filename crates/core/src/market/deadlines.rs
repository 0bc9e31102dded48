//! The deadline hook: heartbeats, start and commit deadlines, queue expiries, challenge
//! windows and dispute verdicts (none in time: the provider wins), found through the deadline
//! index (`mkt/d/<height>/...`) so the hook reads only what is due, never all jobs or all
//! providers.
//!
//! A deadline at height `d` is the last height at which the awaited transaction is accepted; it
//! fires at the end of block `d`, or of a later block if the budget ran out (the rest wait,
//! earliest first). The awaited event of a queue expiry is a match, made by the matcher that
//! runs after this hook: a job's expiry at `e` means it can be matched up to height `e - 1`
//! (see [`super::matching`], "Expiry").
//!
//! # Budget
//! Each block the hook spends at most `deadlines_per_block_max` units of work: a job deadline
//! (expiry, start, commit, challenge window, verdict) costs 1, a missed heartbeat costs 1 plus
//! one per active job of the provider (each is read, and requeued if matched or running; at
//! most `provider_jobs_max`). Deadlines are taken in index order while their cost fits in
//! what is left; the first that does not fit ends the block's batch, so later deadlines never
//! overtake it. `deadlines_per_block_max > provider_jobs_max` (checked by
//! [`super::MarketParams::validate`]) lets any single deadline fit a fresh budget. The first
//! deadline of a block runs whatever its cost, so every block with deadlines due makes
//! progress (this only matters if a parameter change left a provider with more than
//! `provider_jobs_max` jobs). So one block's hook reads at most `deadlines_per_block_max` index
//! entries and handles at most `max(deadlines_per_block_max, 1 + jobs of one provider)` jobs
//! and providers, which is `deadlines_per_block_max` while no provider holds more than
//! `provider_jobs_max` jobs.

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::module::ExecContext;

use super::jobs::{self, dequeue, detach, requeue};
use super::provider::go_offline;
use super::records::{
    DEADLINE_PREFIX, DeadlineKind, JobStatus, MarketState, deadline_key, job_or_err,
    parse_deadline_key, provider_or_err, write_provider,
};
use super::slashing::{self, Evidence, SlashReason};

/// Processes the deadlines due at or before this block, in order, within the per-block work
/// budget (see the module docs); returns the work spent.
pub(crate) fn run(ctx: &mut ExecContext<'_, '_>, ms: &mut MarketState) -> Result<u32, TxError> {
    let height = ctx.block.height;
    let budget = ctx.params.market.deadlines_per_block_max;
    let mut due = Vec::new();
    ctx.state.scan_prefix(
        DEADLINE_PREFIX,
        &mut |key, _| match parse_deadline_key(key) {
            Some((h, _, _)) if h <= height => {
                due.push(key.to_vec());
                due.len() < budget as usize
            }
            _ => false,
        },
    )?;
    let mut spent = 0u32;
    for key in &due {
        // An earlier deadline in this batch may have moved this one (a missed heartbeat
        // requeues the provider's jobs, replacing their start and commit deadlines).
        if ctx.state.get(key)?.is_none() {
            continue;
        }
        let (h, kind, subject) = parse_deadline_key(key).ok_or_else(|| corrupt(key))?;
        let left = budget.saturating_sub(spent);
        let cost = match kind {
            DeadlineKind::Heartbeat => {
                let bytes: [u8; 32] = subject.try_into().map_err(|_| corrupt(key))?;
                let address = Address(bytes);
                let jobs = provider_or_err(ctx.state, address)?.jobs.len();
                let cost = u32::try_from(jobs)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or(TxError::Overflow("deadline work"))?;
                // The first deadline of a block always runs, so a provider holding more jobs
                // than the budget (after a parameter change) cannot stall the index.
                if cost > left && spent > 0 {
                    break;
                }
                missed_heartbeat(ctx, ms, address, h)?;
                cost
            }
            _ => {
                if left == 0 {
                    break;
                }
                let bytes: [u8; 8] = subject.try_into().map_err(|_| corrupt(key))?;
                job_deadline(ctx, ms, kind, u64::from_be_bytes(bytes))?;
                1
            }
        };
        spent = spent
            .checked_add(cost)
            .ok_or(TxError::Overflow("deadline work"))?;
    }
    Ok(spent)
}

fn corrupt(key: &[u8]) -> TxError {
    TxError::State(StateError(format!(
        "market deadline index entry {} does not match its record",
        hex::encode(key)
    )))
}

/// A heartbeat deadline passed: the provider goes offline, is slashed once, and its matched
/// and running jobs go back to the queue (committed ones wait for their verdict as usual).
fn missed_heartbeat(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    address: Address,
    deadline: u64,
) -> Result<(), TxError> {
    let mut p = provider_or_err(ctx.state, address)?;
    if p.heartbeat_deadline != deadline || !p.online {
        return Err(corrupt(&deadline_key(
            deadline,
            DeadlineKind::Heartbeat,
            address.as_bytes(),
        )));
    }
    ctx.state.delete(deadline_key(
        deadline,
        DeadlineKind::Heartbeat,
        address.as_bytes(),
    ));
    go_offline(&mut p, ms)?;
    let mut victims = Vec::new();
    for id in p.jobs.clone() {
        let job = job_or_err(ctx.state, id)?;
        if job.status.is_loading() {
            victims.push(job);
        }
    }
    let evidence = Evidence {
        job: victims.first().map(|j| j.id),
        last_heartbeat: p.last_heartbeat,
        deadline,
    };
    slashing::slash(
        ctx,
        &mut p,
        SlashReason::MissedHeartbeat,
        &mut victims,
        evidence,
        None,
    )?;
    write_provider(ctx.state, &ctx.params.market, &mut p);
    for mut job in victims {
        let mut detached = detach(ctx, ms, &job)?;
        write_provider(ctx.state, &ctx.params.market, &mut detached);
        requeue(ctx, ms, &mut job)?;
    }
    Ok(())
}

/// A job deadline passed: expire, slash and requeue, or settle, by what was awaited.
fn job_deadline(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    kind: DeadlineKind,
    id: u64,
) -> Result<(), TxError> {
    let mut job = job_or_err(ctx.state, id)?;
    let deadline = job.deadline.ok_or_else(|| corrupt(&id.to_be_bytes()))?;
    if deadline.kind != kind || DeadlineKind::for_status(job.status) != Some(kind) {
        return Err(corrupt(&deadline_key(
            deadline.height,
            kind,
            &id.to_be_bytes(),
        )));
    }
    match kind {
        DeadlineKind::Expiry => {
            dequeue(ctx, ms, &job)?;
            jobs::refund_all(ctx, ms, &mut job, JobStatus::Expired)
        }
        DeadlineKind::Verify => jobs::settle(ctx, ms, &mut job),
        DeadlineKind::Dispute => jobs::dispute_lost_by_owner(ctx, ms, &mut job),
        DeadlineKind::Start | DeadlineKind::Commit => {
            let mut p = detach(ctx, ms, &job)?;
            let reason = if kind == DeadlineKind::Start {
                SlashReason::StartMissed
            } else {
                SlashReason::CommitMissed
            };
            let evidence = Evidence {
                job: Some(id),
                last_heartbeat: p.last_heartbeat,
                deadline: deadline.height,
            };
            let mut victims = [job];
            slashing::slash(ctx, &mut p, reason, &mut victims, evidence, None)?;
            let [mut job] = victims;
            write_provider(ctx.state, &ctx.params.market, &mut p);
            requeue(ctx, ms, &mut job)
        }
        DeadlineKind::Heartbeat => unreachable!("heartbeats are handled by address"),
        // `for_status` never names the hold marker, so the check above already refused it.
        DeadlineKind::Held => Err(corrupt(&id.to_be_bytes())),
    }
}
