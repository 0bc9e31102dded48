//! The matching hook: queued jobs to providers, once per block, deterministically.
//!
//! # Order of jobs
//! The queue index sorts by `(band, highest max_price, submission height, id)`, where
//! `band = (submitted + (tiers - tier) x aging_blocks) / aging_blocks` and `tiers` is the
//! number of staking tiers. Ordering by `submitted - tier x aging_blocks` is exactly ordering
//! by `tier + waited / aging_blocks` at any common height: a job's effective tier rises by one
//! per `aging_blocks` it waits. The band is that effective priority rounded to whole tiers, so
//! the offered price decides within a tier, then age, then id.
//!
//! **Aging bound.** A job of tier `t` submitted at height `s` is in band
//! `b <= (s + (tiers - t) x aging) / aging`. Every job submitted at or after
//! `s + (tiers - t + 1) x aging` has a band above `b`, whatever its tier, so it is matched after
//! ours. A job can therefore only be overtaken by jobs submitted less than
//! `(tiers - t + 1) x aging_blocks` blocks after it: a finite set, so no job starves while it is
//! matchable (a provider it may use has room and asks at most its `max_price`).
//!
//! # Choice of provider
//! The ask index lists online providers with room, by `(ask, best reputation, address)`. The
//! hook takes the first `match_providers_max` of them and gives each job the first that is
//! eligible: not the job's owner, not among the job's excluded providers (the last
//! [`super::records::EXCLUDED_MAX`] that failed it), class allowed
//! for the job's tier (`class_min_tier`), heartbeat fresh, collateral at least
//! [`super::provider::required_collateral`], room for the job's units and an active-job slot.
//! The job is charged `max(base price, ask)`, fixed now; providers are tried only while that
//! is at most the job's `max_price`.
//!
//! # Reserve at peak
//! A job of effective tier `e` is matched only while the load after it stays within
//! `(10,000 - reserve_bps[e]) / 10,000` of the online capacity (`capacity x backlog_blocks`):
//! the last share of capacity is held for higher tiers when the market is busy.
//!
//! # Cost
//! The hook reads at most `match_scan_max` queue entries and matches at most
//! `match_per_block_max` of them; it reads at most `provider_scan_max` ask-index entries, keeps
//! the first `match_providers_max` eligible providers (online, heartbeat fresh, collateral at
//! least `max(required, provider_collateral_min)`; the others are skipped without taking a
//! slot) and checks each job against at most that many providers in memory.
//!
//! **Unmatchable jobs.** A queue entry that cannot be matched now (no provider with room or a
//! low enough ask) costs one read of the scan budget, not a match: matchable jobs behind it are
//! still matched as long as fewer than `match_scan_max - match_per_block_max` unmatchable
//! entries precede them. Submissions below the base price or above `job_units_max` are refused
//! outright, and an unmatchable job leaves the queue after `queue_ttl_blocks`.
//!
//! # Expiry
//! A job queued (submitted or requeued) at height `q` has its expiry deadline at
//! `e = q + queue_ttl_blocks`. The end-of-block hook runs the deadlines before matching, so the
//! job is matchable at the end of blocks `q ..= e - 1` (exactly `queue_ttl_blocks` matching
//! rounds) and at the end of block `e` it expires instead. If the deadline budget delays the
//! expiry past `e`, the matcher still skips the job (it reads the job's deadline), so
//! `e - 1` is the last height at which it can be matched, whatever the budget. `CancelJob` is
//! accepted until the hook has expired it (the transactions of block `e` run before it).

use crate::error::{self, TxError};
use crate::event::Event;
use crate::module::ExecContext;
use crate::params::BPS_ONE;

use super::NAME;
use super::jobs::{dequeue, set_status};
use super::provider::required_collateral;
use super::records::{
    ASK_PREFIX, DeadlineKind, Job, JobStatus, MarketState, Provider, QUEUE_PREFIX, ask_key_address,
    queue_key_id, read_job, read_provider, write_job_deadline, write_provider,
};

struct Candidate {
    provider: Provider,
    required: u128,
    dirty: bool,
}

/// The first `match_providers_max` providers of the ask index that may take work now (online,
/// heartbeat fresh, collateral at least `max(required, provider_collateral_min)`), reading at
/// most `provider_scan_max` index entries: ineligible providers are skipped without using a
/// candidate slot.
fn load_candidates(ctx: &ExecContext<'_, '_>, ms: &MarketState) -> Result<Vec<Candidate>, TxError> {
    let params = &ctx.params.market;
    let max = params.match_providers_max as usize;
    let scan = params.provider_scan_max as usize;
    let mut addresses = Vec::new();
    ctx.state.scan_prefix(ASK_PREFIX, &mut |key, _| {
        addresses.extend(ask_key_address(key));
        addresses.len() < scan
    })?;
    let mut candidates = Vec::with_capacity(max.min(addresses.len()));
    for address in addresses {
        if candidates.len() >= max {
            break;
        }
        let provider = read_provider(ctx.state, &address)?.ok_or_else(|| {
            TxError::State(crate::error::StateError(format!(
                "ask index lists {address}, which is not registered"
            )))
        })?;
        let required =
            required_collateral(params, provider.capacity_units_per_block, ms.multiplier_ppm)?
                .max(params.provider_collateral_min);
        let fresh = provider.online && ctx.block.height <= provider.heartbeat_deadline;
        if !fresh || provider.collateral < required {
            continue;
        }
        candidates.push(Candidate {
            provider,
            required,
            dirty: false,
        });
    }
    Ok(candidates)
}

/// Whether a queued job's expiry deadline is at or before `height`: its last matching round
/// was the block before (see "Expiry" in the module docs), even if the deadline budget has not
/// expired it yet.
fn expired(job: &Job, height: u64) -> bool {
    job.deadline
        .is_some_and(|d| d.kind == DeadlineKind::Expiry && d.height <= height)
}

/// Whether `c` may take `job` at `height`.
fn eligible(ctx: &ExecContext<'_, '_>, c: &Candidate, job: &Job) -> bool {
    let params = &ctx.params.market;
    let p = &c.provider;
    let class_tier = params.class_min_tier.get(p.class as usize).copied();
    p.address != job.owner
        && !job.excluded.contains(&p.address)
        && class_tier.is_some_and(|min| job.tier >= min)
        && p.online
        && ctx.block.height <= p.heartbeat_deadline
        && p.collateral >= c.required
        && p.free_units(params) >= u128::from(job.units)
        && p.jobs.len() < params.provider_jobs_max as usize
}

/// The job's tier plus one per `aging_blocks` waited, capped at the top tier.
pub fn effective_tier(job: &Job, height: u64, aging_blocks: u64, tiers: u8) -> u8 {
    let aged = height.saturating_sub(job.submitted_height) / aging_blocks.max(1);
    let aged = u8::try_from(aged.min(u64::from(tiers))).expect("at most the tier count");
    job.tier.saturating_add(aged).min(tiers.max(job.tier))
}

/// Whether the reserve at peak lets a job of effective tier `tier` add `units` of load.
fn within_reserve(ctx: &ExecContext<'_, '_>, ms: &MarketState, tier: u8, units: u64) -> bool {
    let params = &ctx.params.market;
    let room = ms
        .capacity_online
        .saturating_mul(u128::from(params.backlog_blocks));
    let allowed_bps = u128::from(BPS_ONE - params.reserve_for(tier));
    let after = ms.load_units.saturating_add(u128::from(units));
    after.saturating_mul(u128::from(BPS_ONE)) <= room.saturating_mul(allowed_bps)
}

/// Matches what it can; returns the number of jobs matched.
pub(crate) fn run(ctx: &mut ExecContext<'_, '_>, ms: &mut MarketState) -> Result<u32, TxError> {
    let params = &ctx.params.market;
    let matches_max = params.match_per_block_max;
    let examine = params.match_scan_max as usize;
    if matches_max == 0 || ms.jobs_by_status[JobStatus::Queued.index()] == 0 {
        return Ok(0);
    }
    let mut candidates = load_candidates(ctx, ms)?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::new();
    ctx.state.scan_prefix(QUEUE_PREFIX, &mut |key, _| {
        ids.extend(queue_key_id(key));
        ids.len() < examine
    })?;
    let height = ctx.block.height;
    let tiers = u8::try_from(ctx.params.staking.tier_thresholds.len()).expect("at most 8 tiers");
    let mut matched = 0u32;
    for id in ids {
        if matched >= matches_max {
            break;
        }
        let mut job = read_job(ctx.state, id)?.ok_or(TxError::UnknownJob(id))?;
        if expired(&job, height) {
            continue;
        }
        let tier = effective_tier(&job, height, params.aging_blocks, tiers);
        if !within_reserve(ctx, ms, tier, job.units) {
            continue;
        }
        let mut chosen = None;
        for (i, c) in candidates.iter().enumerate() {
            if ms.base_price.max(c.provider.ask_price) > job.max_price {
                break;
            }
            if eligible(ctx, c, &job) {
                chosen = Some(i);
                break;
            }
        }
        let Some(i) = chosen else { continue };
        assign(ctx, ms, &mut candidates[i], &mut job)?;
        matched += 1;
    }
    for c in candidates.iter_mut().filter(|c| c.dirty) {
        write_provider(ctx.state, &ctx.params.market, &mut c.provider);
    }
    Ok(matched)
}

fn assign(
    ctx: &mut ExecContext<'_, '_>,
    ms: &mut MarketState,
    c: &mut Candidate,
    job: &mut Job,
) -> Result<(), TxError> {
    let params = &ctx.params.market;
    let p = &mut c.provider;
    let price = ms.base_price.max(p.ask_price);
    dequeue(ctx, ms, job)?;
    p.load_units = p
        .load_units
        .checked_add(job.units)
        .ok_or(TxError::Overflow("provider load"))?;
    ms.load_units = error::add(ms.load_units, u128::from(job.units), "market load")?;
    let at = p.jobs.partition_point(|other| *other < job.id);
    p.jobs.insert(at, job.id);
    c.dirty = true;
    let height = ctx.block.height;
    job.provider = Some(p.address);
    job.charged_price = price;
    job.matched_height = height;
    job.work_blocks = p.load_units.div_ceil(p.capacity_units_per_block.max(1));
    set_status(ms, job, JobStatus::Matched)?;
    let start_by = height
        .checked_add(params.start_blocks)
        .ok_or(TxError::Overflow("start deadline"))?;
    write_job_deadline(ctx.state, job, start_by)?;
    ctx.emit(
        Event::new(NAME, "job_matched")
            .with("job", job.id)
            .with("provider", p.address)
            .with("price", price)
            .with("start_by", start_by),
    );
    Ok(())
}
