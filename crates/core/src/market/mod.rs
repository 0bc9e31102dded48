//! The compute marketplace: providers, jobs with escrow, matching, prices and slashing.
//!
//! Owns `mkt/` (layout in [`records`]): provider records, job records (each holding its
//! escrow), per-user records, the market state (prices, utilisation window, counters) and
//! three indexes: the job queue in matching order, the providers taking work by ask, and the
//! deadlines by height. Tokens held: the escrow of open jobs and the bonds of disputes, nothing else. Collateral and tier
//! stake are the users' own bonded stake, locked in [`crate::staking`].
//!
//! Invariants (checked by [`Market::check_invariants`]):
//! - an open job's escrow is `units x max_price`; a final job holds nothing and
//!   `paid + refunded == units x max_price` (no job is paid twice, refunds are exact);
//! - the sum of escrows, the counters by status and tier, the online capacity and the load
//!   equal what the records say;
//! - every queued job has exactly one queue entry, every pending deadline exactly one deadline
//!   entry, every listed provider exactly one ask entry, and no index entry is stray;
//! - a provider's active-job list holds exactly the open jobs assigned to it, and its load the
//!   units of those matched or running;
//! - staking locks at least each provider's collateral plus, while it has active jobs, its tier
//!   lock. PoI also locks stake (verifier bonds), so the exact sum, market plus PoI, is checked
//!   by PoI's audit, which sees both.
//!
//! - a committed job is either in its challenge window (indexed) or held for Proof of
//!   Intelligence (the `Held` marker, not indexed; the PoI audit checks every held job is a
//!   verifying PoI job).
//!
//! Proof of Intelligence drives verification through [`submit_for_poi`], [`commit_for_poi`],
//! [`hold`], [`settle_verified`], [`open_poi_dispute`] and [`resolve_dispute_for`]; the market
//! stays the only writer of `mkt/`.
//!
//! Per block (end of block, after the transactions): deadlines due ([`deadlines`]), then
//! matching ([`matching`]), then one utilisation sample and the price and multiplier step
//! ([`pricing`]). Each is bounded by a parameter and reads only index ranges it needs.
//!
//! Stability: ALPHA; parameters and the reputation formula may change.

pub mod deadlines;
mod invariants;
pub(crate) use invariants::stake_locks;
pub mod jobs;
pub mod matching;
pub mod params;
pub mod pricing;
pub mod provider;
pub mod queries;
pub mod records;
pub mod slashing;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::module::{ExecContext, Module};
use crate::state::{self, Overlay, StateReader};
use crate::token::Amount;

pub use jobs::{
    commit_for_poi, hold, open_poi_dispute, resolve_dispute, resolve_dispute_for, settle_verified,
    submit_for_poi,
};
pub use params::MarketParams;
pub use provider::{Registration, required_collateral};
pub use queries::{
    JOBS_PAGE_MAX, MarketStats, ProviderInfo, job, jobs, market_stats, provider, user,
};
pub use records::{Job, JobSpec, JobStatus, MarketState, Provider, UserRecord};
pub use slashing::SlashReason;

/// Module name.
pub const NAME: &str = "market";
/// Owned prefix.
pub const PREFIX: &[u8] = records::PREFIX;

/// Marketplace messages. Provider messages are signed by the provider's account, job messages
/// by the job's owner (start and commit by its assigned provider).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum MarketMsg {
    /// Become a provider, locking `collateral` of the signer's free bonded stake.
    Register {
        /// Hardware description (at most [`provider::HARDWARE_BYTES_MAX`] bytes).
        hardware: String,
        /// Benchmarked repops metered compute units per block (positive).
        capacity_units_per_block: u64,
        /// Provider class: 0 standard, higher premium (see `market.class_min_tier`).
        class: u8,
        /// Lowest price per compute unit accepted, base units.
        ask_price: Amount,
        /// URL serving checkpoints (at most [`provider::ENDPOINT_BYTES_MAX`] bytes).
        endpoint: String,
        /// Stake to lock as collateral; at least [`required_collateral`].
        collateral: Amount,
    },
    /// The provider is alive (due every `heartbeat_timeout_blocks`).
    Heartbeat,
    /// Change the provider's ask, endpoint or capacity (`None` keeps the value).
    Update {
        /// New ask price per unit.
        ask_price: Option<Amount>,
        /// New endpoint.
        endpoint: Option<String>,
        /// New capacity, units per block (raising it needs the collateral for it).
        capacity_units_per_block: Option<u64>,
    },
    /// Lock `amount` more stake as collateral.
    AddCollateral {
        /// Base units (positive).
        amount: Amount,
    },
    /// Unlock `amount` of collateral; while jobs are active, only down to the requirement.
    RemoveCollateral {
        /// Base units (positive).
        amount: Amount,
    },
    /// Stop being a provider (only with no active jobs); unlocks all collateral.
    Deregister,
    /// Queue a training job, escrowing `units x max_price`.
    SubmitTraining {
        /// Model (one of `market.models`).
        model: String,
        /// Datasets (each one of `market.datasets`; 1..=[`jobs::DATASETS_MAX`]).
        datasets: Vec<String>,
        /// blake3 of the hyperparameters.
        hyperparams_hash: [u8; 32],
        /// Training steps.
        steps: u64,
        /// Commitment to the evaluation.
        eval_commitment: [u8; 32],
        /// Metered compute units bought (positive).
        units: u64,
        /// Highest price per unit accepted (positive).
        max_price: Amount,
    },
    /// Queue an inference job, escrowing `units x max_price`.
    SubmitInference {
        /// Model (one of `market.models`).
        model: String,
        /// Model version.
        version: u32,
        /// blake3 of the input.
        input_hash: [u8; 32],
        /// Metered compute units bought (positive).
        units: u64,
        /// Highest price per unit accepted (positive).
        max_price: Amount,
    },
    /// The owner cancels a job that is queued, or matched but not started: full refund.
    CancelJob {
        /// Job id.
        id: u64,
    },
    /// The assigned provider starts a matched job (by its start deadline).
    StartJob {
        /// Job id.
        id: u64,
    },
    /// The assigned provider commits a running job's result (by its commit deadline).
    CommitJob {
        /// Job id.
        id: u64,
        /// Merkle root of the result.
        result_root: [u8; 32],
        /// Units delivered, at most the units bought; the provider is paid for these.
        units_delivered: u64,
    },
    /// The owner accepts a committed result: the job settles now.
    AcceptJob {
        /// Job id.
        id: u64,
    },
    /// The owner disputes a committed result within the challenge window, posting a bond of
    /// `dispute_bond_bps` of the escrow from its balance.
    DisputeJob {
        /// Job id.
        id: u64,
    },
}

pub(crate) fn save_state(state: &mut Overlay<'_>, ms: &MarketState) {
    state.put_borsh(records::STATE_KEY.to_vec(), ms);
}

/// Applies a market message signed by `signer`.
pub fn handle(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    msg: &MarketMsg,
) -> Result<(), TxError> {
    let mut ms = records::load_state(ctx.state, &ctx.params.market)?;
    let ms = &mut ms;
    match msg {
        MarketMsg::Register {
            hardware,
            capacity_units_per_block,
            class,
            ask_price,
            endpoint,
            collateral,
        } => {
            let reg = Registration {
                hardware: hardware.clone(),
                capacity_units_per_block: *capacity_units_per_block,
                class: *class,
                ask_price: *ask_price,
                endpoint: endpoint.clone(),
                collateral: *collateral,
            };
            provider::register(ctx, ms, signer, &reg)?;
        }
        MarketMsg::Heartbeat => provider::heartbeat(ctx, ms, signer)?,
        MarketMsg::Update {
            ask_price,
            endpoint,
            capacity_units_per_block,
        } => provider::update(
            ctx,
            ms,
            signer,
            *ask_price,
            endpoint.as_ref(),
            *capacity_units_per_block,
        )?,
        MarketMsg::AddCollateral { amount } => {
            provider::change_collateral(ctx, ms, signer, *amount, true)?;
        }
        MarketMsg::RemoveCollateral { amount } => {
            provider::change_collateral(ctx, ms, signer, *amount, false)?;
        }
        MarketMsg::Deregister => provider::deregister(ctx, ms, signer)?,
        MarketMsg::SubmitTraining {
            model,
            datasets,
            hyperparams_hash,
            steps,
            eval_commitment,
            units,
            max_price,
        } => {
            let spec = JobSpec::Training {
                model: model.clone(),
                datasets: datasets.clone(),
                hyperparams_hash: *hyperparams_hash,
                steps: *steps,
                eval_commitment: *eval_commitment,
            };
            jobs::submit(ctx, ms, signer, spec, *units, *max_price)?;
        }
        MarketMsg::SubmitInference {
            model,
            version,
            input_hash,
            units,
            max_price,
        } => {
            let spec = JobSpec::Inference {
                model: model.clone(),
                version: *version,
                input_hash: *input_hash,
            };
            jobs::submit(ctx, ms, signer, spec, *units, *max_price)?;
        }
        MarketMsg::CancelJob { id } => jobs::cancel(ctx, ms, signer, *id)?,
        MarketMsg::StartJob { id } => jobs::start(ctx, ms, signer, *id)?,
        MarketMsg::CommitJob {
            id,
            result_root,
            units_delivered,
        } => jobs::commit(ctx, ms, signer, *id, *result_root, *units_delivered)?,
        MarketMsg::AcceptJob { id } => jobs::answer(ctx, ms, signer, *id, true)?,
        MarketMsg::DisputeJob { id } => jobs::answer(ctx, ms, signer, *id, false)?,
    }
    save_state(ctx.state, ms);
    Ok(())
}

/// The marketplace module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Market;

impl Module for Market {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// Deadlines, matching, then the price step; writes the market state only if it changed.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let before = records::load_state(ctx.state, &ctx.params.market)?;
        let mut ms = before.clone();
        deadlines::run(ctx, &mut ms)?;
        matching::run(ctx, &mut ms)?;
        pricing::update(&mut ms, &ctx.params.market);
        let untouched = state::read_borsh::<MarketState>(ctx.state, records::STATE_KEY)?.is_none()
            && ms.next_job_id == 0
            && ms.providers == 0;
        // A chain that never used the market keeps no market state (and an unchanged root).
        if ms != before && !untouched {
            save_state(ctx.state, &ms);
        }
        Ok(())
    }

    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError> {
        if key.starts_with(records::JOB_PREFIX) {
            let job = state::decode::<Job>(key, value)?;
            job.escrow
                .checked_add(job.dispute_bond)
                .ok_or_else(|| StateError(format!("job {}: escrow plus bond overflows", job.id)))
        } else {
            Ok(0)
        }
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        invariants::check(state)
    }
}
