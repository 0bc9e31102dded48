//! Chain parameters: values governance may change, stored in state under `params`.
//!
//! Owns: the `params` key. Invariants: `fee_burn_bps + fee_treasury_bps <= 10_000`;
//! `block_txs_max <= limits::BLOCK_TXS_MAX`.
//!
//! Stability: ALPHA; governance (a later module) will change these through proposals.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::limits::BLOCK_TXS_MAX;
use crate::market::MarketParams;
use crate::poi::PoiParams;
use crate::staking::StakingParams;
use crate::state::Overlay;
use crate::token::Amount;

/// State key of the parameters.
pub const PARAMS_KEY: &[u8] = b"params";

/// Basis points in one whole (100%).
pub const BPS_ONE: u16 = 10_000;

/// Chain parameters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Flat part of the minimum fee, in base units.
    #[serde(with = "amount_string")]
    pub min_fee_base: Amount,
    /// Per-byte part of the minimum fee, in base units per encoded byte.
    #[serde(with = "amount_string")]
    pub min_fee_per_byte: Amount,
    /// Share of collected fees burned each block, in basis points. Rounds down; the rounding
    /// remainder goes to the proposer, so no base unit is created or destroyed.
    pub fee_burn_bps: u16,
    /// Share of collected fees sent to the treasury, in basis points (rounds down).
    pub fee_treasury_bps: u16,
    /// Most transactions a proposer puts in one block.
    pub block_txs_max: u32,
    /// Bonding, unbonding and tiers ([`crate::staking`]); defaults when absent from genesis.
    #[serde(default)]
    pub staking: StakingParams,
    /// The compute marketplace ([`crate::market`]); defaults when absent from genesis.
    #[serde(default)]
    pub market: MarketParams,
    /// Proof of Intelligence ([`crate::poi`]); defaults when absent from genesis.
    #[serde(default)]
    pub poi: PoiParams,
    /// Emission (the schedule of new tokens).
    #[serde(default)]
    pub emission: crate::emission::EmissionParams,
    /// Epoch rewards (how the reward pool is split).
    #[serde(default)]
    pub rewards: crate::rewards::RewardsParams,
    /// Usage burns and their schedule.
    #[serde(default)]
    pub burn: crate::burn::BurnParams,
    /// Governance: deposits, periods, quorum, threshold and veto.
    #[serde(default)]
    pub governance: crate::governance::GovParams,
    /// The validator set, its slashing and liveness rules ([`crate::validators`]).
    #[serde(default)]
    pub validators: crate::validators::ValidatorParams,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            min_fee_base: 1_000,
            min_fee_per_byte: 10,
            fee_burn_bps: 5_000,
            fee_treasury_bps: 1_000,
            block_txs_max: BLOCK_TXS_MAX,
            staking: StakingParams::default(),
            market: MarketParams::default(),
            poi: PoiParams::default(),
            emission: crate::emission::EmissionParams::default(),
            rewards: crate::rewards::RewardsParams::default(),
            burn: crate::burn::BurnParams::default(),
            governance: crate::governance::GovParams::default(),
            validators: crate::validators::ValidatorParams::default(),
        }
    }
}

impl Params {
    /// The economics poi networks run with (`poi devnet` and `poi node init` start from it):
    /// the library default leaves every flow off so a chain chooses its economics explicitly.
    /// - emission halving by issuance, Bitcoin-style: 5 POI a block, halving after every
    ///   50 million POI, capped at 100 million;
    /// - 5% of every verified job's payment into the reward pool, 10% as royalties along the
    ///   served version's lineage (each step back half the weight);
    /// - usage burns of 100 base units per compute unit and 10,000 per inference request,
    ///   scaled by quality (0.5x to 2x), at most 30% of a payment, on the predictive schedule
    ///   aiming to burn half of each epoch's emission (band +-20%).
    ///
    /// Burn-and-mint pricing (`burn.tokens_per_credit`) stays off: it needs a price oracle,
    /// which a young network does not have.
    pub fn with_economics(mut self) -> Self {
        const POI: Amount = crate::token::BASE_UNITS_PER_POI;
        self.emission.schedule = crate::emission::Schedule::HalvingByIssuance {
            initial: 5 * POI,
            era_issuance: 50_000_000 * POI,
            cap: 100_000_000 * POI,
        };
        self.rewards.job_fee_bps = 500;
        self.rewards.royalty_bps = 1_000;
        self.rewards.lineage_decay_bps = 5_000;
        self.burn.per_unit = 100;
        self.burn.per_request = 10_000;
        self.burn.schedule = crate::burn::BurnSchedule::Predictive {
            alpha_ppm: 600_000,
            beta_ppm: 200_000,
            target_burn_bps: 5_000,
            band_bps: 2_000,
            initial_rate_ppm: 1_000_000,
            rate_min_ppm: 10_000,
            rate_max_ppm: 100_000_000,
        };
        self
    }
}

/// Why parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Burn plus treasury shares exceed 100%.
    #[error("fee_burn_bps + fee_treasury_bps = {0}, must be at most 10000")]
    FeeSharesAbove100(u32),
    /// Block size above the compiled-in cap.
    #[error("block_txs_max = {0}, must be between 1 and {BLOCK_TXS_MAX}")]
    BlockTxs(u32),
    /// A staking parameter is out of range.
    #[error("{0}")]
    Staking(String),
    /// A marketplace parameter is out of range.
    #[error("{0}")]
    Market(String),
    /// A Proof-of-Intelligence parameter is out of range.
    #[error("{0}")]
    Poi(String),
    /// A validator parameter is out of range.
    #[error("{0}")]
    Validators(String),
    /// Invalid emission, reward or burn parameters.
    #[error("invalid emission, reward or burn parameters: {0}")]
    Emission(String),
}

impl Params {
    /// Checks the invariants.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let shares = u32::from(self.fee_burn_bps) + u32::from(self.fee_treasury_bps);
        if shares > u32::from(BPS_ONE) {
            return Err(ParamsError::FeeSharesAbove100(shares));
        }
        if self.block_txs_max == 0 || self.block_txs_max > BLOCK_TXS_MAX {
            return Err(ParamsError::BlockTxs(self.block_txs_max));
        }
        self.staking.validate().map_err(ParamsError::Staking)?;
        self.market.validate().map_err(ParamsError::Market)?;
        self.poi.validate().map_err(ParamsError::Poi)?;
        self.emission.validate().map_err(ParamsError::Emission)?;
        self.rewards.validate().map_err(ParamsError::Emission)?;
        self.burn.validate().map_err(ParamsError::Emission)?;
        self.governance.validate().map_err(ParamsError::Emission)?;
        self.validators.validate().map_err(ParamsError::Validators)
    }

    /// The minimum fee for a transaction of `encoded_len` bytes; saturates (an absurd size then
    /// needs an unpayable fee rather than overflowing).
    pub fn min_fee(&self, encoded_len: u64) -> Amount {
        self.min_fee_per_byte
            .saturating_mul(Amount::from(encoded_len))
            .saturating_add(self.min_fee_base)
    }

    /// Reads the parameters from state.
    pub fn load(state: &Overlay<'_>) -> Result<Params, StateError> {
        state
            .get_borsh(PARAMS_KEY)?
            .ok_or_else(|| StateError("params missing from state (no genesis?)".into()))
    }
}

/// `u128` amounts as decimal strings in TOML/JSON (TOML integers are 64-bit).
pub mod amount_string {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the amount as a decimal string.
    pub fn serialize<S: Serializer>(amount: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(amount)
    }

    /// Reads base units (`"1500"`) or POI (`"1.5poi"`).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        crate::token::parse_amount(&text).map_err(serde::de::Error::custom)
    }
}
