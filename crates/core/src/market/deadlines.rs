//! The deadline hook: heartbeats, start and commit deadlines, queue expiries, challenge
//! windows and dispute verdicts (none in time: the provider wins), found through the deadline index (`mkt/d/<height>/...`) so the hook reads only what
//! is due, never all jobs or all providers.
//!
//! A deadline at height `d` is the last height at which the awaited transaction is accepted; it
//! fires at the end of block `d`, or of a later block if more than `deadlines_per_block_max`
//! were due (the rest wait, earliest first).

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

/// Processes the deadlines due at or before this block, within the per-block budget; returns
/// how many fired.
pub(crate) fn run(ctx: &mut ExecContext<'_, '_>, ms: &mut MarketState) -> Result<u32, TxError> {
    let height = ctx.block.height;
    let budget = ctx.params.market.deadlines_per_block_max as usize;
    let mut due = Vec::new();
    ctx.state.scan_prefix(
        DEADLINE_PREFIX,
        &mut |key, _| match parse_deadline_key(key) {
            Some((h, _, _)) if h <= height => {
                due.push(key.to_vec());
                due.len() < budget
            }
            _ => false,
        },
    )?;
    for key in &due {
        // An earlier deadline in this batch may have moved this one (a missed heartbeat
        // requeues the provider's jobs, replacing their start and commit deadlines).
        if ctx.state.get(key)?.is_none() {
            continue;
        }
        let (h, kind, subject) = parse_deadline_key(key).expect("parsed above");
        match kind {
            DeadlineKind::Heartbeat => {
                let bytes: [u8; 32] = subject.try_into().map_err(|_| corrupt(key))?;
                missed_heartbeat(ctx, ms, Address(bytes), h)?;
            }
            _ => {
                let bytes: [u8; 8] = subject.try_into().map_err(|_| corrupt(key))?;
                job_deadline(ctx, ms, kind, u64::from_be_bytes(bytes))?;
            }
        }
    }
    Ok(u32::try_from(due.len()).expect("bounded by a u32 budget"))
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
            slashing::slash(ctx, &mut p, reason, &mut victims, evidence)?;
            let [mut job] = victims;
            write_provider(ctx.state, &ctx.params.market, &mut p);
            requeue(ctx, ms, &mut job)
        }
        DeadlineKind::Heartbeat => unreachable!("heartbeats are handled by address"),
    }
}
