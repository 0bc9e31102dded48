//! Governable marketplace parameters (`params.market`), with their defaults and checks.
//!
//! Every ratio is an integer: basis points (`_bps`, 1/10,000) or parts per million (`_ppm`).
//! Every window and per-block budget is a count of blocks or items, never wall time.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::params::{BPS_ONE, amount_string};
use crate::staking::TIERS_MAX;
use crate::token::Amount;

/// One whole in parts per million.
pub const PPM_ONE: u32 = 1_000_000;
/// Longest model or dataset name, in bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// Most entries in `models` or `datasets`.
pub const CATALOG_ENTRIES_MAX: usize = 64;
/// Most provider classes `class_min_tier` may define.
pub const CLASSES_MAX: usize = 16;
/// Longest utilisation window (the window is stored in one record, two bytes a block).
pub const WINDOW_BLOCKS_MAX: u32 = 1_024;
/// Largest `collateral_per_unit`: with it, `capacity x collateral_per_unit x multiplier_ppm`
/// fits `u128` for every `u64` capacity and `u32` multiplier, so the requirement never
/// overflows (4 POI per unit per block of capacity).
pub const COLLATERAL_PER_UNIT_MAX: Amount = 4_000_000_000;
/// Largest `backlog_blocks`.
pub const BACKLOG_BLOCKS_MAX: u32 = 1_000_000;
/// Largest `match_per_block_max`, `match_scan_max` and `deadlines_per_block_max`.
pub const PER_BLOCK_MAX: u32 = 100_000;
/// Largest `provider_scan_max`.
pub const PROVIDER_SCAN_MAX: u32 = 16_384;

/// Governable marketplace parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketParams {
    /// Model names jobs may name (`unknown_model` otherwise).
    pub models: Vec<String>,
    /// Dataset ids training jobs may name (`unknown_dataset` otherwise).
    pub datasets: Vec<String>,
    /// Lowest user tier that may be served by a provider of class `i` (index = class). A class
    /// beyond the list cannot register.
    pub class_min_tier: Vec<u8>,
    /// Collateral per compute unit per block of capacity, in base units, at multiplier 1.0.
    #[serde(with = "amount_string")]
    pub collateral_per_unit: Amount,
    /// Lowest demand multiplier, ppm.
    pub multiplier_min_ppm: u32,
    /// Highest demand multiplier, ppm.
    pub multiplier_max_ppm: u32,
    /// Largest change of the multiplier in one block, in bps of its value.
    pub multiplier_step_bps: u16,
    /// Utilisation the price and multiplier steer toward, bps (1..=10,000).
    pub target_utilisation_bps: u16,
    /// Blocks averaged into the utilisation (1..=[`WINDOW_BLOCKS_MAX`]).
    pub utilisation_window_blocks: u32,
    /// Floor of the base price per compute unit, base units (positive).
    #[serde(with = "amount_string")]
    pub price_min: Amount,
    /// Ceiling of the base price per compute unit, base units.
    #[serde(with = "amount_string")]
    pub price_max: Amount,
    /// Base price when the market starts, base units per compute unit.
    #[serde(with = "amount_string")]
    pub price_start: Amount,
    /// EIP-1559 step: the price changes by `price_step_bps x (u - target) / target` per block,
    /// and by at most `price_step_bps` (1,250 = 12.5% = 1/8).
    pub price_step_bps: u16,
    /// A provider takes at most `backlog_blocks x capacity` units of unfinished work.
    pub backlog_blocks: u32,
    /// Most active jobs (matched to committed or disputed) one provider may hold.
    pub provider_jobs_max: u32,
    /// A provider silent for this many blocks goes offline and is slashed.
    pub heartbeat_timeout_blocks: u64,
    /// A queued job not matched within this many blocks expires with a full refund: queued at
    /// `q`, it is matchable at the end of blocks `q ..= q + queue_ttl_blocks - 1` and expires
    /// at the end of block `q + queue_ttl_blocks` (see [`super::matching`], "Expiry").
    pub queue_ttl_blocks: u64,
    /// Blocks a matched provider has to start the job.
    pub start_blocks: u64,
    /// Blocks added to the expected run time (backlog / capacity) before a commit is late.
    pub commit_grace_blocks: u64,
    /// Challenge window after a commit: the user may dispute, after it the job settles.
    pub verify_blocks: u64,
    /// A queued job's effective tier rises by one every `aging_blocks` it waits (positive).
    pub aging_blocks: u64,
    /// `reserve_bps[t]`: the last share of total online capacity that jobs of effective tier
    /// `t` may not take (held for higher tiers at peak). Non-increasing; tiers past the end: 0.
    pub reserve_bps: Vec<u16>,
    /// Jobs the matcher matches per block; 0 pauses matching (at most [`PER_BLOCK_MAX`]).
    pub match_per_block_max: u32,
    /// Queue entries the matcher reads per block, matched or not (at least
    /// `match_per_block_max`, at most [`PER_BLOCK_MAX`]): unmatchable entries at the head of the
    /// queue are skipped over, so they delay matchable ones only while more than this many of
    /// them come first.
    pub match_scan_max: u32,
    /// Eligible providers (cheapest first) the matcher considers per block.
    pub match_providers_max: u32,
    /// Ask-index entries the matcher reads per block to find its `match_providers_max`
    /// eligible providers (at least `match_providers_max`, at most [`PROVIDER_SCAN_MAX`]);
    /// ineligible ones (collateral below the requirement, heartbeat stale) are skipped and do
    /// not count against `match_providers_max`.
    pub provider_scan_max: u32,
    /// Least collateral a provider registers with and keeps, base units (10 POI), whatever its
    /// capacity: every listed provider has real stake at risk.
    #[serde(with = "amount_string")]
    pub provider_collateral_min: Amount,
    /// Most compute units one job may buy (positive).
    pub job_units_max: u64,
    /// Most open jobs (queued to disputed) one user may have at once (positive): bounds what
    /// one account can put in the queue and the matcher's scan budget.
    pub open_jobs_per_user_max: u32,
    /// The bond a dispute posts, in bps of the job's escrow, taken from the owner's balance:
    /// returned if the provider is found at fault, paid to the provider otherwise.
    pub dispute_bond_bps: u16,
    /// Blocks a verdict on a dispute may take; after them the dispute resolves in the
    /// provider's favour (positive).
    pub dispute_blocks: u64,
    /// Work the deadline hook does per block (see [`super::deadlines`]): a job deadline (start,
    /// commit, expiry, challenge window, verdict) costs 1, a missed heartbeat 1 plus one per
    /// active job of the provider; the rest wait for the next block, in order. Greater than
    /// `provider_jobs_max` (so any one deadline fits), at most [`PER_BLOCK_MAX`].
    pub deadlines_per_block_max: u32,
    /// Share of a provider's collateral one slash takes, bps.
    pub slash_bps: u16,
    /// A user's loss from a provider's fault, as a share of the job's escrow, bps: what the
    /// slash pays the user first.
    pub sla_credit_bps: u16,
    /// Share of what remains of a slash after compensation that is burned, bps; the rest goes
    /// to the treasury.
    pub slash_burn_bps: u16,
    /// Share of what remains of a dispute's slash after the users' SLA credits that goes to the
    /// challenger who won it ([`super::resolve_dispute_for`]), bps; burn and treasury split the
    /// rest as usual.
    pub dispute_reward_bps: u16,
    /// Reputation of a new provider, ppm.
    pub reputation_start_ppm: u32,
    /// Weight of one job outcome in the reputation average, ppm.
    pub reputation_weight_ppm: u32,
    /// Weight of one heartbeat (uptime) in the reputation average, ppm.
    pub uptime_weight_ppm: u32,
}

impl Default for MarketParams {
    fn default() -> Self {
        Self {
            models: vec!["mlp".into(), "charlm".into()],
            datasets: ["iris", "winequality", "diabetes", "liber-primus"]
                .map(String::from)
                .to_vec(),
            class_min_tier: vec![0, 2],
            collateral_per_unit: 100_000_000,
            multiplier_min_ppm: 500_000,
            multiplier_max_ppm: 4_000_000,
            multiplier_step_bps: 200,
            target_utilisation_bps: 7_000,
            utilisation_window_blocks: 10,
            price_min: 1,
            price_max: 1_000_000_000_000,
            price_start: 1_000,
            price_step_bps: 1_250,
            backlog_blocks: 100,
            provider_jobs_max: 32,
            heartbeat_timeout_blocks: 50,
            queue_ttl_blocks: 1_000,
            start_blocks: 20,
            commit_grace_blocks: 20,
            verify_blocks: 50,
            aging_blocks: 100,
            reserve_bps: vec![2_000, 1_000, 500, 0],
            match_per_block_max: 1_000,
            match_scan_max: 4_000,
            match_providers_max: 256,
            provider_scan_max: 1_024,
            provider_collateral_min: 10_000_000_000,
            job_units_max: 1_000_000_000,
            open_jobs_per_user_max: 64,
            dispute_bond_bps: 1_000,
            dispute_blocks: 1_000,
            deadlines_per_block_max: 1_000,
            slash_bps: 1_000,
            sla_credit_bps: 1_000,
            slash_burn_bps: 5_000,
            dispute_reward_bps: 5_000,
            reputation_start_ppm: 500_000,
            reputation_weight_ppm: 100_000,
            uptime_weight_ppm: 10_000,
        }
    }
}

impl MarketParams {
    /// Checks the invariants; the reason names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        check_catalog("models", &self.models)?;
        check_catalog("datasets", &self.datasets)?;
        if self.class_min_tier.is_empty() || self.class_min_tier.len() > CLASSES_MAX {
            return Err(format!(
                "market.class_min_tier needs 1..={CLASSES_MAX} classes"
            ));
        }
        if self.class_min_tier.iter().any(|t| *t as usize > TIERS_MAX) {
            return Err(format!(
                "market.class_min_tier entries must be at most {TIERS_MAX}"
            ));
        }
        let bps = [
            ("multiplier_step_bps", self.multiplier_step_bps),
            ("target_utilisation_bps", self.target_utilisation_bps),
            ("price_step_bps", self.price_step_bps),
            ("slash_bps", self.slash_bps),
            ("sla_credit_bps", self.sla_credit_bps),
            ("slash_burn_bps", self.slash_burn_bps),
            ("dispute_bond_bps", self.dispute_bond_bps),
            ("dispute_reward_bps", self.dispute_reward_bps),
        ];
        for (name, value) in bps {
            if value > BPS_ONE {
                return Err(format!(
                    "market.{name} = {value}, must be at most {BPS_ONE}"
                ));
            }
        }
        if self.target_utilisation_bps == 0 {
            return Err("market.target_utilisation_bps must be positive".into());
        }
        if self.multiplier_min_ppm == 0 || self.multiplier_min_ppm > self.multiplier_max_ppm {
            return Err("market: need 0 < multiplier_min_ppm <= multiplier_max_ppm".into());
        }
        if self.price_min == 0 || self.price_min > self.price_max {
            return Err("market: need 0 < price_min <= price_max".into());
        }
        if !(self.price_min..=self.price_max).contains(&self.price_start) {
            return Err("market.price_start must lie in [price_min, price_max]".into());
        }
        if self.utilisation_window_blocks == 0 || self.utilisation_window_blocks > WINDOW_BLOCKS_MAX
        {
            return Err(format!(
                "market.utilisation_window_blocks must be 1..={WINDOW_BLOCKS_MAX}"
            ));
        }
        let positive = [
            ("backlog_blocks", u64::from(self.backlog_blocks)),
            ("provider_jobs_max", u64::from(self.provider_jobs_max)),
            ("heartbeat_timeout_blocks", self.heartbeat_timeout_blocks),
            ("queue_ttl_blocks", self.queue_ttl_blocks),
            ("start_blocks", self.start_blocks),
            ("verify_blocks", self.verify_blocks),
            ("aging_blocks", self.aging_blocks),
            ("job_units_max", self.job_units_max),
            (
                "open_jobs_per_user_max",
                u64::from(self.open_jobs_per_user_max),
            ),
            ("dispute_blocks", self.dispute_blocks),
            ("match_providers_max", u64::from(self.match_providers_max)),
            (
                "deadlines_per_block_max",
                u64::from(self.deadlines_per_block_max),
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("market.{name} must be positive"));
            }
        }
        if self.provider_jobs_max > 1_024 || self.match_providers_max > 4_096 {
            return Err("market: provider_jobs_max <= 1024 and match_providers_max <= 4096".into());
        }
        if self.deadlines_per_block_max <= self.provider_jobs_max {
            return Err(
                "market.deadlines_per_block_max must exceed provider_jobs_max (a missed heartbeat \
                 costs 1 plus one per active job)"
                    .into(),
            );
        }
        if self.collateral_per_unit > COLLATERAL_PER_UNIT_MAX {
            return Err(format!(
                "market.collateral_per_unit must be at most {COLLATERAL_PER_UNIT_MAX}"
            ));
        }
        if self.backlog_blocks > BACKLOG_BLOCKS_MAX {
            return Err(format!(
                "market.backlog_blocks must be at most {BACKLOG_BLOCKS_MAX}"
            ));
        }
        let budgets = [
            ("match_per_block_max", self.match_per_block_max),
            ("match_scan_max", self.match_scan_max),
            ("deadlines_per_block_max", self.deadlines_per_block_max),
        ];
        for (name, value) in budgets {
            if value > PER_BLOCK_MAX {
                return Err(format!("market.{name} must be at most {PER_BLOCK_MAX}"));
            }
        }
        if self.match_scan_max < self.match_per_block_max {
            return Err("market.match_scan_max must be at least match_per_block_max".into());
        }
        if self.provider_scan_max < self.match_providers_max
            || self.provider_scan_max > PROVIDER_SCAN_MAX
        {
            return Err(format!(
                "market.provider_scan_max must be match_providers_max..={PROVIDER_SCAN_MAX}"
            ));
        }
        if self.reserve_bps.len() > TIERS_MAX + 1 {
            return Err(format!(
                "market.reserve_bps has at most {} tiers",
                TIERS_MAX + 1
            ));
        }
        if self.reserve_bps.iter().any(|r| *r > BPS_ONE)
            || self.reserve_bps.windows(2).any(|w| w[0] < w[1])
        {
            return Err("market.reserve_bps must be non-increasing and at most 10000".into());
        }
        let ppm = [
            ("reputation_start_ppm", self.reputation_start_ppm),
            ("reputation_weight_ppm", self.reputation_weight_ppm),
            ("uptime_weight_ppm", self.uptime_weight_ppm),
        ];
        for (name, value) in ppm {
            if value > PPM_ONE {
                return Err(format!(
                    "market.{name} = {value}, must be at most {PPM_ONE}"
                ));
            }
        }
        Ok(())
    }

    /// Capacity share (bps) jobs of effective tier `tier` may not take.
    pub fn reserve_for(&self, tier: u8) -> u16 {
        self.reserve_bps.get(tier as usize).copied().unwrap_or(0)
    }
}

fn check_catalog(name: &str, entries: &[String]) -> Result<(), String> {
    if entries.len() > CATALOG_ENTRIES_MAX {
        return Err(format!(
            "market.{name} has more than {CATALOG_ENTRIES_MAX} entries"
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        if entry.is_empty() || entry.len() > NAME_BYTES_MAX {
            return Err(format!(
                "market.{name}: {entry:?} must be 1..={NAME_BYTES_MAX} bytes"
            ));
        }
        if entries[..i].contains(entry) {
            return Err(format!("market.{name}: {entry:?} appears twice"));
        }
    }
    Ok(())
}
