//! Usage burns, their quality modifier, and the predictive burn schedule.
//!
//! Owns `burn/`. Every verified job burns part of its payment ([`crate::payout`]):
//!
//! ```text
//! base    = per_unit x units + per_request (inference jobs only)
//! base    = base x tokens_per_credit            (when prices are in compute credits)
//! demand  = base x clamp(quality_ppm, quality_floor_ppm, quality_ceiling_ppm) / 10^6
//! burn    = min(demand x rate_ppm / 10^6, paid x payment_max_bps / 10^4, what is left)
//! ```
//!
//! `quality_ppm` is the verified reward multiplier: the trained job's own, or the served
//! model version's for inference, so better models burn more per use. `demand` is the metered
//! demand of the epoch; `rate_ppm` is the epoch's burn rate, which the schedule sets:
//! - `constant`: a fixed rate;
//! - `predictive`: at each epoch's end, Holt's linear exponential smoothing (level `alpha`,
//!   trend `beta`) forecasts next epoch's demand `F`, and the rate becomes
//!   `clamp(T x 10^6 / F, rate_min_ppm, rate_max_ppm)` where `T = E x target_burn_bps / 10^4`
//!   and `E` is next epoch's emission (exact, from the emission schedule). The burn then aims
//!   at `T`, so net issuance `E - burn` aims at `E x (1 - target_burn_bps / 10^4)`, inside the
//!   band of `band_bps` of `E` either side.
//!
//! With prices in a stable compute credit (`tokens_per_credit`, an oracle price governance
//! sets), `per_unit` and `per_request` are credits and the burn is their token value at that
//! price: the burn-and-mint form in which the burn per unit of work is stable in credits.
//!
//! Rounding: every division rounds toward negative infinity (floor); the smoothing state is
//! signed. Rounding only changes how much is burned, never creates or loses a base unit: the
//! burn is taken from the provider's payment and recorded in the supply ledger by reason.
//!
//! # Format
//! - `burn/state` -> [`BurnState`] (rate, forecast, this epoch's meters);
//! - `burn/e/<epoch u64>` -> [`EpochBurn`], one per ended epoch.
//!
//! # Invariants
//! The state's rate lies in the schedule's bounds; every epoch record's usage burn is at most
//! its demand at its rate.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::state::{self, StateReader};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "burn";
/// Owned prefix.
pub const PREFIX: &[u8] = b"burn/";
/// The schedule's state.
pub const STATE_KEY: &[u8] = b"burn/state";
/// Prefix of epoch records.
pub const EPOCH_PREFIX: &[u8] = b"burn/e/";

const PPM: i128 = 1_000_000;

/// How the burn rate moves.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum BurnSchedule {
    /// A fixed rate.
    Constant {
        /// The rate, ppm of metered demand.
        rate_ppm: u64,
    },
    /// The rate that makes the forecast demand burn the target.
    Predictive {
        /// Smoothing of the level, ppm (0..=10^6).
        alpha_ppm: u64,
        /// Smoothing of the trend, ppm (0..=10^6).
        beta_ppm: u64,
        /// Target burn, bps of next epoch's emission.
        target_burn_bps: u32,
        /// Half-width of the net issuance band, bps of emission.
        band_bps: u32,
        /// The rate before any epoch has been observed.
        initial_rate_ppm: u64,
        /// Lowest rate.
        rate_min_ppm: u64,
        /// Highest rate.
        rate_max_ppm: u64,
    },
}

/// Governable burn parameters (`params.burn`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BurnParams {
    /// Base burn per metered compute unit (base units, or credits with `tokens_per_credit`).
    #[serde(with = "crate::params::amount_string")]
    pub per_unit: Amount,
    /// Base burn per inference request.
    #[serde(with = "crate::params::amount_string")]
    pub per_request: Amount,
    /// The quality modifier's lower clamp, ppm.
    pub quality_floor_ppm: u64,
    /// The quality modifier's upper clamp, ppm.
    pub quality_ceiling_ppm: u64,
    /// Oracle price of one compute credit in base units; absent, prices are in tokens.
    pub tokens_per_credit: Option<u64>,
    /// The most of a payment a usage burn takes, bps: whatever the rate, a provider keeps the
    /// rest of its payment after fees and royalties.
    pub payment_max_bps: u32,
    /// The rate schedule.
    pub schedule: BurnSchedule,
}

impl Default for BurnParams {
    /// Off: no base burn, so chains that do not choose burns keep every payment whole.
    fn default() -> Self {
        Self {
            per_unit: 0,
            per_request: 0,
            quality_floor_ppm: 500_000,
            quality_ceiling_ppm: 2_000_000,
            tokens_per_credit: None,
            payment_max_bps: 3_000,
            schedule: BurnSchedule::Constant {
                rate_ppm: 1_000_000,
            },
        }
    }
}

impl BurnParams {
    /// Whether any usage is burned.
    pub fn enabled(&self) -> bool {
        self.per_unit > 0 || self.per_request > 0
    }

    /// Checks the invariants.
    pub fn validate(&self) -> Result<(), String> {
        if self.payment_max_bps > 10_000 {
            return Err("burn.payment_max_bps must be at most 10000".into());
        }
        if self.quality_floor_ppm > self.quality_ceiling_ppm {
            return Err("burn.quality_floor_ppm must not exceed quality_ceiling_ppm".into());
        }
        if let BurnSchedule::Predictive {
            alpha_ppm,
            beta_ppm,
            target_burn_bps,
            band_bps,
            initial_rate_ppm,
            rate_min_ppm,
            rate_max_ppm,
        } = self.schedule
        {
            if alpha_ppm == 0 || alpha_ppm > 1_000_000 || beta_ppm > 1_000_000 {
                return Err(
                    "burn.schedule alpha_ppm must be 1..=1000000, beta_ppm 0..=1000000".into(),
                );
            }
            if target_burn_bps > 10_000 || band_bps > 10_000 {
                return Err(
                    "burn.schedule target_burn_bps and band_bps must be at most 10000".into(),
                );
            }
            if rate_min_ppm > rate_max_ppm
                || !(rate_min_ppm..=rate_max_ppm).contains(&initial_rate_ppm)
            {
                return Err(
                    "burn.schedule needs rate_min_ppm <= initial_rate_ppm <= rate_max_ppm".into(),
                );
            }
        }
        Ok(())
    }

    /// The rate before any epoch was observed.
    pub fn initial_rate(&self) -> u64 {
        match self.schedule {
            BurnSchedule::Constant { rate_ppm } => rate_ppm,
            BurnSchedule::Predictive {
                initial_rate_ppm, ..
            } => initial_rate_ppm,
        }
    }

    /// A job's metered demand: its base burn, priced, times the quality modifier.
    pub fn demand(&self, units: u64, inference: bool, quality_ppm: u64) -> Option<Amount> {
        let requests = if inference { self.per_request } else { 0 };
        let mut base = self
            .per_unit
            .checked_mul(Amount::from(units))?
            .checked_add(requests)?;
        if let Some(price) = self.tokens_per_credit {
            base = base.checked_mul(Amount::from(price))?;
        }
        let modifier = quality_ppm.clamp(self.quality_floor_ppm, self.quality_ceiling_ppm);
        Some(mul_ppm(base, modifier))
    }
}

/// `amount x ppm / 10^6`, floored, without overflowing.
pub fn mul_ppm(amount: Amount, ppm: u64) -> Amount {
    let (whole, part) = (amount / 1_000_000, amount % 1_000_000);
    let ppm = Amount::from(ppm);
    whole
        .saturating_mul(ppm)
        .saturating_add(part * ppm / 1_000_000)
}

/// The schedule's state and the current epoch's meters.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BurnState {
    /// This epoch's burn rate, ppm.
    pub rate_ppm: u64,
    /// Smoothed demand level (per epoch).
    pub level: i128,
    /// Smoothed demand trend (per epoch).
    pub trend: i128,
    /// Epochs observed.
    pub epochs: u64,
    /// Demand metered this epoch.
    #[serde(serialize_with = "crate::event::decimal")]
    pub demand: Amount,
    /// Usage burned this epoch.
    #[serde(serialize_with = "crate::event::decimal")]
    pub burned: Amount,
    /// Supply minted before this epoch.
    #[serde(serialize_with = "crate::event::decimal")]
    pub minted_mark: Amount,
    /// Supply burned (all reasons) before this epoch.
    #[serde(serialize_with = "crate::event::decimal")]
    pub burned_mark: Amount,
}

/// What one epoch burned and what the schedule concluded.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct EpochBurn {
    /// The epoch.
    pub epoch: u64,
    /// Metered demand.
    #[serde(serialize_with = "crate::event::decimal")]
    pub demand: Amount,
    /// The epoch's rate, ppm.
    pub rate_ppm: u64,
    /// Usage burned.
    #[serde(serialize_with = "crate::event::decimal")]
    pub burned: Amount,
    /// Minted in the epoch (emission).
    #[serde(serialize_with = "crate::event::decimal")]
    pub minted: Amount,
    /// Burned in the epoch for every reason (usage, fees, slashes).
    #[serde(serialize_with = "crate::event::decimal")]
    pub burned_all: Amount,
    /// `minted - burned_all`, signed, as a decimal string.
    pub net_issuance: String,
    /// Forecast of next epoch's demand.
    #[serde(serialize_with = "crate::event::decimal")]
    pub forecast: Amount,
    /// Next epoch's emission.
    #[serde(serialize_with = "crate::event::decimal")]
    pub next_emission: Amount,
    /// Next epoch's rate, ppm.
    pub next_rate_ppm: u64,
}

fn epoch_key(epoch: u64) -> Vec<u8> {
    [EPOCH_PREFIX, &epoch.to_be_bytes()].concat()
}

/// The current state (the initial rate before the first metered job).
pub fn read_state(state: &dyn StateReader, params: &BurnParams) -> Result<BurnState, StateError> {
    Ok(
        state::read_borsh(state, STATE_KEY)?.unwrap_or_else(|| BurnState {
            rate_ppm: params.initial_rate(),
            ..BurnState::default()
        }),
    )
}

/// Epoch records from `from`, at most `limit`, oldest first.
pub fn history(
    state: &dyn StateReader,
    from: u64,
    limit: usize,
) -> Result<Vec<EpochBurn>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(EPOCH_PREFIX, &mut |key, value| {
        let epoch = key[EPOCH_PREFIX.len()..]
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        if epoch < from {
            return true;
        }
        match state::decode::<EpochBurn>(key, value) {
            Ok(r) => out.push(r),
            Err(e) => failure = Some(e),
        }
        failure.is_none() && out.len() < limit
    })?;
    failure.map_or(Ok(out), Err)
}

/// Meters a job's `demand` and returns what it burns at the current rate.
pub(crate) fn meter(ctx: &mut ExecContext<'_, '_>, demand: Amount) -> Result<Amount, TxError> {
    let mut s = read_state(ctx.state, &ctx.params.burn)?;
    s.demand = s
        .demand
        .checked_add(demand)
        .ok_or(TxError::Overflow("burn demand"))?;
    ctx.state.put_borsh(STATE_KEY.to_vec(), &s);
    Ok(mul_ppm(demand, s.rate_ppm))
}

/// Records `amount` of usage actually burned.
pub(crate) fn burned(ctx: &mut ExecContext<'_, '_>, amount: Amount) -> Result<(), TxError> {
    let mut s = read_state(ctx.state, &ctx.params.burn)?;
    s.burned = s
        .burned
        .checked_add(amount)
        .ok_or(TxError::Overflow("usage burned"))?;
    ctx.state.put_borsh(STATE_KEY.to_vec(), &s);
    Ok(())
}

/// The forecaster: Holt's linear exponential smoothing in integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forecaster {
    /// Level.
    pub level: i128,
    /// Trend.
    pub trend: i128,
    /// Observations so far.
    pub epochs: u64,
}

impl Forecaster {
    /// Takes in one epoch's `observed` demand.
    pub fn observe(&mut self, observed: Amount, alpha_ppm: u64, beta_ppm: u64) {
        let x = i128::try_from(observed).unwrap_or(i128::MAX / 4);
        let (a, b) = (i128::from(alpha_ppm), i128::from(beta_ppm));
        if self.epochs == 0 {
            self.level = x;
            self.trend = 0;
        } else {
            let prior = self.level.saturating_add(self.trend);
            let level = blend(x, prior, a);
            self.trend = blend(level.saturating_sub(self.level), self.trend, b);
            self.level = level;
        }
        self.epochs = self.epochs.saturating_add(1);
    }

    /// Next epoch's demand (never negative).
    pub fn forecast(&self) -> Amount {
        Amount::try_from(self.level.saturating_add(self.trend).max(0)).unwrap_or(0)
    }
}

/// `(w x new + (10^6 - w) x old) / 10^6`, floored.
fn blend(new: i128, old: i128, w_ppm: i128) -> i128 {
    new.saturating_mul(w_ppm)
        .saturating_add(old.saturating_mul(PPM - w_ppm))
        .div_euclid(PPM)
}

/// The predictive rate for a `forecast` demand and next epoch's `emission`.
pub fn predictive_rate(schedule: &BurnSchedule, forecast: Amount, emission: Amount) -> u64 {
    match *schedule {
        BurnSchedule::Constant { rate_ppm } => rate_ppm,
        BurnSchedule::Predictive {
            target_burn_bps,
            rate_min_ppm,
            rate_max_ppm,
            ..
        } => {
            let target = emission.saturating_mul(Amount::from(target_burn_bps)) / 10_000;
            if forecast == 0 {
                return rate_max_ppm;
            }
            let rate = target.saturating_mul(1_000_000) / forecast;
            u64::try_from(rate)
                .unwrap_or(u64::MAX)
                .clamp(rate_min_ppm, rate_max_ppm)
        }
    }
}

/// Emission of the `blocks` blocks from `height` on, after `issued` was issued.
fn projected_emission(
    schedule: &crate::emission::Schedule,
    height: u64,
    blocks: u64,
    mut issued: Amount,
) -> Amount {
    let mut total: Amount = 0;
    for h in height..height.saturating_add(blocks) {
        let a = crate::emission::block_emission(schedule, h, issued);
        issued = issued.saturating_add(a);
        total = total.saturating_add(a);
    }
    total
}

fn end_epoch(ctx: &mut ExecContext<'_, '_>, epoch: u64) -> Result<(), TxError> {
    let params = ctx.params.burn.clone();
    let mut s = read_state(ctx.state, &params)?;
    let ledger = crate::supply::read(ctx.state, 0)?;
    let minted = ledger.minted.saturating_sub(s.minted_mark);
    let burned_all = ledger.burned.saturating_sub(s.burned_mark);
    let mut f = Forecaster {
        level: s.level,
        trend: s.trend,
        epochs: s.epochs,
    };
    let (alpha, beta) = match params.schedule {
        BurnSchedule::Predictive {
            alpha_ppm,
            beta_ppm,
            ..
        } => (alpha_ppm, beta_ppm),
        BurnSchedule::Constant { .. } => (500_000, 100_000),
    };
    f.observe(s.demand, alpha, beta);
    let forecast = f.forecast();
    let e = ctx.params.rewards.epoch_blocks.max(1);
    let next_emission = projected_emission(
        &ctx.params.emission.schedule,
        ctx.block.height.saturating_add(1),
        e,
        crate::emission::issued(ctx.state)?,
    );
    let next_rate = predictive_rate(&params.schedule, forecast, next_emission);
    let net = i128::try_from(minted).unwrap_or(i128::MAX)
        - i128::try_from(burned_all).unwrap_or(i128::MAX);
    let record = EpochBurn {
        epoch,
        demand: s.demand,
        rate_ppm: s.rate_ppm,
        burned: s.burned,
        minted,
        burned_all,
        net_issuance: net.to_string(),
        forecast,
        next_emission,
        next_rate_ppm: next_rate,
    };
    ctx.emit(
        Event::new(NAME, "epoch_burn")
            .with("epoch", epoch)
            .with("demand", s.demand)
            .with("burned", s.burned)
            .with("next_rate_ppm", next_rate),
    );
    ctx.state.put_borsh(epoch_key(epoch), &record);
    s = BurnState {
        rate_ppm: next_rate,
        level: f.level,
        trend: f.trend,
        epochs: f.epochs,
        demand: 0,
        burned: 0,
        minted_mark: ledger.minted,
        burned_mark: ledger.burned,
    };
    ctx.state.put_borsh(STATE_KEY.to_vec(), &s);
    Ok(())
}

/// The burn module: closes each epoch's meters and sets the next rate.
#[derive(Debug, Default, Clone, Copy)]
pub struct Burn;

impl Module for Burn {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// At an epoch's last block (after emission and rewards), records the epoch and sets the
    /// next rate. A chain without usage burns keeps no records.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let ending =
            crate::rewards::ending_epoch(ctx.block.height, ctx.params.rewards.epoch_blocks);
        match ending {
            Some(epoch) if ctx.params.burn.enabled() => end_epoch(ctx, epoch),
            _ => Ok(()),
        }
    }

    /// Meters and records hold no tokens.
    fn held_by_entry(&self, _key: &[u8], _value: &[u8]) -> Result<Amount, StateError> {
        Ok(0)
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        state::check_records(state, EPOCH_PREFIX, |r: &EpochBurn| {
            (r.burned > mul_ppm(r.demand, r.rate_ppm)).then(|| {
                format!(
                    "epoch {} burned {} above its demand {} at {} ppm",
                    r.epoch, r.burned, r.demand, r.rate_ppm
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forecaster_follows_a_trend() {
        let mut f = Forecaster::default();
        for x in [100u128, 110, 120, 130, 140, 150, 160, 170, 180, 190] {
            f.observe(x, 500_000, 500_000);
        }
        // A linear series: the forecast approaches the next value (200) from below.
        let next = f.forecast();
        assert!((190..=200).contains(&next), "forecast {next}");
    }

    #[test]
    fn rate_targets_the_burn_and_clamps() {
        let s = BurnSchedule::Predictive {
            alpha_ppm: 500_000,
            beta_ppm: 100_000,
            target_burn_bps: 5_000,
            band_bps: 2_000,
            initial_rate_ppm: 1_000_000,
            rate_min_ppm: 100_000,
            rate_max_ppm: 4_000_000,
        };
        // Target 500 of 1,000 emission over a forecast of 1,000 demand: 0.5.
        assert_eq!(predictive_rate(&s, 1_000, 1_000), 500_000);
        assert_eq!(predictive_rate(&s, 1, 1_000), 4_000_000);
        assert_eq!(predictive_rate(&s, 1_000_000, 1_000), 100_000);
        assert_eq!(predictive_rate(&s, 0, 1_000), 4_000_000);
    }

    #[test]
    fn demand_prices_credits_and_scales_with_clamped_quality() {
        let mut p = BurnParams {
            per_unit: 2,
            per_request: 10,
            ..BurnParams::default()
        };
        // 2 x 100 + 10 for inference, at quality 1.0.
        assert_eq!(p.demand(100, true, 1_000_000), Some(210));
        assert_eq!(p.demand(100, false, 1_000_000), Some(200));
        // Quality is clamped to [0.5, 2.0]: a useless model burns half, a great one double.
        assert_eq!(p.demand(100, false, 0), Some(100));
        assert_eq!(p.demand(100, false, 9_000_000), Some(400));
        // Burn-and-mint: the base is in credits, converted at the oracle price.
        p.tokens_per_credit = Some(1_000);
        assert_eq!(p.demand(100, false, 1_000_000), Some(200_000));
        p.per_unit = u128::MAX;
        assert_eq!(
            p.demand(2, false, 1_000_000),
            None,
            "overflow is refused, not wrapped"
        );
    }

    #[test]
    fn mul_ppm_is_floor_and_wide() {
        assert_eq!(mul_ppm(999, 1_000), 0);
        assert_eq!(mul_ppm(1_000_000, 1), 1);
        assert_eq!(mul_ppm(u128::MAX, 1_000_000), u128::MAX);
    }
}
