//! Read-only queries for the API and CLI. Not part of block execution: [`market_stats`] scans
//! all providers (O(providers)); the others are point reads.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::address::Address;
use crate::error::StateError;
use crate::event::decimal;
use crate::params::{PARAMS_KEY, Params};
use crate::state::{self, StateReader};
use crate::token::Amount;

use super::provider::required_collateral;
use super::records::{
    self, Job, JobStatus, PROVIDER_PREFIX, Provider, UserRecord, load_state, read_job,
};

/// A provider with what follows from the current parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// The stored record.
    #[serde(flatten)]
    pub record: Provider,
    /// Collateral its capacity requires at the current multiplier.
    #[serde(serialize_with = "decimal")]
    pub required_collateral: Amount,
    /// Whether it can take new jobs now (online, room, collateral at least required).
    pub eligible: bool,
}

/// Queue length and wait of one tier (the tier at submission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierQueue {
    /// Tier.
    pub tier: u8,
    /// Queued jobs.
    pub length: u64,
    /// Mean blocks waited since submission, rounded down.
    pub mean_wait_blocks: u64,
}

/// Provider counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProviderCounts {
    /// Registered.
    pub registered: u64,
    /// Heartbeat fresh.
    pub online: u64,
    /// Missed a heartbeat and not back yet.
    pub offline: u64,
    /// Can take new jobs now.
    pub eligible: u64,
    /// Online but with collateral below what is required now.
    pub under_collateralised: u64,
}

/// The market at a glance (`GET /market`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketStats {
    /// Height the stats describe.
    pub height: u64,
    /// Mean utilisation over the window, bps.
    pub utilisation_bps: u16,
    /// Base price per compute unit, base units.
    #[serde(serialize_with = "decimal")]
    pub base_price: Amount,
    /// Collateral demand multiplier, ppm.
    pub demand_multiplier_ppm: u32,
    /// Capacity of online providers, units per block.
    pub capacity_online_units_per_block: u128,
    /// Units matched or running.
    pub load_units: u128,
    /// Base units held in escrow.
    #[serde(serialize_with = "decimal")]
    pub escrow_total: Amount,
    /// Queue by tier (tiers 0..=number of thresholds).
    pub queue: Vec<TierQueue>,
    /// Jobs per status name.
    pub jobs: BTreeMap<&'static str, u64>,
    /// Providers by state.
    pub providers: ProviderCounts,
}

fn params_of(state: &dyn StateReader) -> Result<Params, StateError> {
    state::read_borsh(state, PARAMS_KEY)?
        .ok_or_else(|| StateError("params missing from state (no genesis?)".into()))
}

fn info(params: &Params, multiplier_ppm: u32, height: Option<u64>, p: Provider) -> ProviderInfo {
    let required = required_collateral(&params.market, p.capacity_units_per_block, multiplier_ppm)
        .unwrap_or(Amount::MAX);
    let fresh = height.is_none_or(|h| h <= p.heartbeat_deadline);
    ProviderInfo {
        eligible: p.takes_work(&params.market) && fresh && p.collateral >= required,
        required_collateral: required,
        record: p,
    }
}

/// A provider and its required collateral, if registered.
pub fn provider(
    state: &dyn StateReader,
    address: &Address,
) -> Result<Option<ProviderInfo>, StateError> {
    let params = params_of(state)?;
    let ms = load_state(state, &params.market)?;
    Ok(records::read_provider(state, address)?.map(|p| info(&params, ms.multiplier_ppm, None, p)))
}

/// A job, if it exists.
pub fn job(state: &dyn StateReader, id: u64) -> Result<Option<Job>, StateError> {
    read_job(state, id)
}

/// Most jobs one [`jobs`] call returns.
pub const JOBS_PAGE_MAX: usize = 200;

/// Up to `limit` (at most [`JOBS_PAGE_MAX`]) jobs with ids above `after`, in id order: those in
/// `status` (read through the status index, so other jobs cost nothing), or all of them. Keys
/// at or below `after` are still walked (the reader has no range scan), which is cheap for the
/// index, whose values are empty.
pub fn jobs(
    state: &dyn StateReader,
    status: Option<JobStatus>,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<Job>, StateError> {
    let limit = limit.min(JOBS_PAGE_MAX);
    let mut ids = Vec::new();
    let prefix = match status {
        Some(status) => records::status_prefix(status),
        None => records::JOB_PREFIX.to_vec(),
    };
    if limit > 0 {
        state.scan_prefix(&prefix, &mut |key, _| {
            let Some(id) = key
                .get(prefix.len()..)
                .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
                .map(u64::from_be_bytes)
            else {
                return true;
            };
            if after.is_none_or(|after| id > after) {
                ids.push(id);
            }
            ids.len() < limit
        })?;
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let job = read_job(state, id)?
            .ok_or_else(|| StateError(format!("indexed job {id} has no record")))?;
        out.push(job);
    }
    Ok(out)
}

/// What the market holds for a user: active jobs and the tier stake locked for them.
pub fn user(state: &dyn StateReader, address: &Address) -> Result<UserRecord, StateError> {
    records::read_user(state, address)
}

/// Market statistics at `height` (the tip's height; waits are measured against it).
pub fn market_stats(
    state: &dyn StateReader,
    params: &Params,
    height: u64,
) -> Result<MarketStats, StateError> {
    let ms = load_state(state, &params.market)?;
    let tiers = params.staking.tier_thresholds.len() + 1;
    let queue = (0..tiers)
        .map(|t| {
            let queued = ms.queued_by_tier.get(t).copied().unwrap_or(0);
            let since = ms.queued_since_sum.get(t).copied().unwrap_or(0);
            let waited = u128::from(height)
                .saturating_mul(u128::from(queued))
                .saturating_sub(since);
            TierQueue {
                tier: u8::try_from(t).expect("at most 9 tiers"),
                length: queued,
                mean_wait_blocks: u64::try_from(waited / u128::from(queued.max(1)))
                    .unwrap_or(u64::MAX),
            }
        })
        .collect();
    let jobs = JobStatus::ALL
        .iter()
        .map(|s| (s.as_str(), ms.jobs_by_status[s.index()]))
        .collect();
    let mut counts = ProviderCounts {
        registered: 0,
        online: 0,
        offline: 0,
        eligible: 0,
        under_collateralised: 0,
    };
    let mut failure = None;
    state.scan_prefix(PROVIDER_PREFIX, &mut |key, value| {
        match state::decode::<Provider>(key, value) {
            Ok(p) => {
                let i = info(params, ms.multiplier_ppm, Some(height), p);
                counts.registered += 1;
                if i.record.online {
                    counts.online += 1;
                    if i.record.collateral < i.required_collateral {
                        counts.under_collateralised += 1;
                    }
                } else {
                    counts.offline += 1;
                }
                counts.eligible += u64::from(i.eligible);
            }
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(MarketStats {
        height,
        utilisation_bps: ms.utilisation_bps(),
        base_price: ms.base_price,
        demand_multiplier_ppm: ms.multiplier_ppm,
        capacity_online_units_per_block: ms.capacity_online,
        load_units: ms.load_units,
        escrow_total: ms.escrow_total,
        queue,
        jobs,
        providers: counts,
    })
}
