//! Emission: the new tokens each block creates, by a schedule genesis chooses.
//!
//! Owns `emission/issued` (borsh `u128`): the cumulative issuance. Every block earns
//! [`block_emission`], and the module mints what an epoch's blocks earned at the end of the
//! epoch's last block, into the reward pool account ([`pool`]) from which the epoch rewards pay
//! the stakeholders. Minting per epoch rather than per block gives the same amounts, block by
//! block in order (so eras and caps fall exactly as they would), and keeps a block without
//! transactions free of writes: after a crash, consensus may ask a restarted node to build on
//! a block it notarized but did not finalize, which the node can do only with an empty child
//! that changes nothing (see `crates/node/src/ledger.rs`, `empty_child`). Supply accounting is the supply module's: every
//! minted base unit is recorded there, so `issued` always equals what this module minted.
//!
//! # Schedules ([`Schedule`], `params.emission.schedule`)
//! - `none` (the default): nothing is minted;
//! - `halving_by_time { initial, halving_blocks, cap }`: `initial >> floor(height /
//!   halving_blocks)` per block;
//! - `halving_by_issuance { initial, era_issuance, cap }`: era `e` (cumulative issuance in
//!   `[e x era_issuance, (e + 1) x era_issuance)`) mints `initial >> e` per block, and a block
//!   never crosses an era boundary (its emission stops at the boundary, the next block mints
//!   at the next era's rate), so every era issues exactly `era_issuance`;
//! - `decay { cap, rate_ppm }`: `floor((cap - issued) x rate_ppm / 10^6)` per block, an
//!   exponential approach to the cap.
//!
//! # Rounding and invariants
//! Every division rounds down; what rounding keeps back is never minted, never lost: nothing
//! is created but what is recorded as minted. `issued <= cap` always (every schedule clamps a
//! block's emission to `cap - issued`), and `issued` never decreases.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::module::{ExecContext, Module};
use crate::params::amount_string;
use crate::state::{self, StateReader};
use crate::supply;
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "emission";
/// Owned prefix.
pub const PREFIX: &[u8] = b"emission/";
/// Key of the cumulative issuance.
pub const ISSUED_KEY: &[u8] = b"emission/issued";

/// The account emission mints into: the epoch reward pool.
pub fn pool() -> Address {
    Address::module("reward-pool")
}

/// An emission schedule.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Schedule {
    /// No emission.
    None,
    /// Halving every `halving_blocks` blocks.
    HalvingByTime {
        /// Base units minted per block before the first halving.
        #[serde(with = "amount_string")]
        initial: Amount,
        /// Blocks per era (positive).
        halving_blocks: u64,
        /// Most base units ever issued.
        #[serde(with = "amount_string")]
        cap: Amount,
    },
    /// Halving each time cumulative issuance crosses a multiple of `era_issuance`.
    HalvingByIssuance {
        /// Base units minted per block in era 0.
        #[serde(with = "amount_string")]
        initial: Amount,
        /// Base units issued per era (positive).
        #[serde(with = "amount_string")]
        era_issuance: Amount,
        /// Most base units ever issued.
        #[serde(with = "amount_string")]
        cap: Amount,
    },
    /// `rate_ppm` of what remains under `cap`, each block.
    Decay {
        /// Most base units ever issued.
        #[serde(with = "amount_string")]
        cap: Amount,
        /// Share of the remainder minted per block, ppm (1..=1,000,000).
        rate_ppm: u32,
    },
}

/// Governable emission parameters (`params.emission`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmissionParams {
    /// The schedule.
    pub schedule: Schedule,
}

impl Default for EmissionParams {
    fn default() -> Self {
        Self {
            schedule: Schedule::None,
        }
    }
}

impl EmissionParams {
    /// Checks the schedule; the reason names the field.
    pub fn validate(&self) -> Result<(), String> {
        match &self.schedule {
            Schedule::None => Ok(()),
            Schedule::HalvingByTime { halving_blocks, .. } if *halving_blocks == 0 => {
                Err("emission.schedule.halving_blocks must be positive".into())
            }
            Schedule::HalvingByIssuance { era_issuance, .. } if *era_issuance == 0 => {
                Err("emission.schedule.era_issuance must be positive".into())
            }
            Schedule::Decay { rate_ppm, .. } if *rate_ppm == 0 || *rate_ppm > 1_000_000 => {
                Err("emission.schedule.rate_ppm must be 1..=1000000".into())
            }
            _ => Ok(()),
        }
    }
}

/// `amount >> shift`, 0 once the shift reaches the width.
fn halve(amount: Amount, shift: u64) -> Amount {
    u32::try_from(shift)
        .ok()
        .and_then(|s| amount.checked_shr(s))
        .unwrap_or(0)
}

/// Base units block `height` mints when `issued` have been issued before it.
pub fn block_emission(schedule: &Schedule, height: u64, issued: Amount) -> Amount {
    match *schedule {
        Schedule::None => 0,
        Schedule::HalvingByTime {
            initial,
            halving_blocks,
            cap,
        } => {
            let era = height / halving_blocks.max(1);
            halve(initial, era).min(cap.saturating_sub(issued))
        }
        Schedule::HalvingByIssuance {
            initial,
            era_issuance,
            cap,
        } => {
            let era_issuance = era_issuance.max(1);
            let era = issued / era_issuance;
            let era_end = (era + 1).saturating_mul(era_issuance);
            let rate = halve(initial, u64::try_from(era).unwrap_or(u64::MAX));
            rate.min(era_end - issued).min(cap.saturating_sub(issued))
        }
        Schedule::Decay { cap, rate_ppm } => {
            let remaining = cap.saturating_sub(issued);
            // remaining x rate / 10^6 without overflow: split remaining into its millions.
            let (whole, part) = (remaining / 1_000_000, remaining % 1_000_000);
            let rate = Amount::from(rate_ppm.min(1_000_000));
            (whole * rate + part * rate / 1_000_000).min(remaining)
        }
    }
}

/// Cumulative issuance so far.
pub fn issued(state: &dyn StateReader) -> Result<Amount, StateError> {
    Ok(state::read_borsh(state, ISSUED_KEY)?.unwrap_or(0))
}

/// The emission module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Emission;

impl Module for Emission {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// At an epoch's last block, mints what the epoch's blocks earned into the reward pool.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let e = ctx.params.rewards.epoch_blocks.max(1);
        let height = ctx.block.height;
        if crate::rewards::ending_epoch(height, e).is_none() {
            return Ok(());
        }
        let before = issued(ctx.state)?;
        // Genesis (height 0) is no block and earns nothing.
        let first = (height + 1 - e).max(1);
        let mut running = before;
        for h in first..=height {
            let earned = block_emission(&ctx.params.emission.schedule, h, running);
            running = running
                .checked_add(earned)
                .ok_or(TxError::Overflow("issued"))?;
        }
        let amount = running - before;
        if amount == 0 {
            return Ok(());
        }
        supply::mint(ctx, pool(), amount)?;
        let after = before
            .checked_add(amount)
            .ok_or(TxError::Overflow("issued"))?;
        ctx.state.put_borsh(ISSUED_KEY.to_vec(), &after);
        Ok(())
    }

    /// The counter holds no tokens (the pool is a bank account).
    fn held_by_entry(&self, _key: &[u8], _value: &[u8]) -> Result<Amount, StateError> {
        Ok(0)
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        let issued = issued(state).map_err(|e| e.to_string())?;
        let minted = supply::read(state, 0).map_err(|e| e.to_string())?.minted;
        // Emission is the only minter, so the two counters agree.
        if issued != minted {
            return Err(format!(
                "emission issued {issued} but the ledger minted {minted}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs `blocks` blocks of `schedule` from height 1; returns (issued, per-block emissions).
    fn run(schedule: &Schedule, blocks: u64) -> (Amount, Vec<Amount>) {
        let mut issued: Amount = 0;
        let mut out = Vec::new();
        for h in 1..=blocks {
            let e = block_emission(schedule, h, issued);
            issued = issued.checked_add(e).expect("no overflow");
            out.push(e);
        }
        (issued, out)
    }

    #[test]
    fn halving_by_time_halves_exactly_at_each_boundary() {
        let s = Schedule::HalvingByTime {
            initial: 1_000,
            halving_blocks: 10,
            cap: Amount::MAX,
        };
        assert_eq!(block_emission(&s, 9, 0), 1_000);
        assert_eq!(block_emission(&s, 10, 0), 500);
        assert_eq!(block_emission(&s, 19, 0), 500);
        assert_eq!(block_emission(&s, 20, 0), 250);
        assert_eq!(block_emission(&s, 10 * 200, 0), 0, "shifted past the width");
    }

    #[test]
    fn halving_by_issuance_issues_exactly_each_era() {
        let s = Schedule::HalvingByIssuance {
            initial: 300,
            era_issuance: 1_000,
            cap: 1_750,
        };
        let (issued, per_block) = run(&s, 50);
        assert_eq!(issued, 1_750, "stops at the cap");
        // Era 0 mints 300 x 3, then 100 to reach 1,000 exactly; era 1 mints 150 per block.
        assert_eq!(&per_block[..5], &[300, 300, 300, 100, 150]);
    }

    #[test]
    fn decay_approaches_the_cap_and_never_passes_it() {
        let s = Schedule::Decay {
            cap: 1_000_000_000,
            rate_ppm: 10_000,
        };
        let (issued, per_block) = run(&s, 2_000);
        assert!(issued <= 1_000_000_000);
        assert!(issued > 999_000_000, "{issued}");
        assert!(per_block.windows(2).all(|w| w[1] <= w[0]), "non-increasing");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(6), ..ProptestConfig::default() })]
        /// Over long random runs of every schedule, issuance never exceeds the cap and equals
        /// the sum of the blocks' emissions exactly; by-issuance eras issue exactly their size.
        #[test]
        fn issuance_is_exact_and_capped(
            initial in 1u128..1_000_000_000_000,
            era in 1u128..10_000_000_000_000,
            halving_blocks in 1u64..500,
            cap in 0u128..100_000_000_000_000,
            rate_ppm in 1u32..=1_000_000,
            blocks in 1u64..3_000,
        ) {
            let schedules = [
                Schedule::HalvingByTime { initial, halving_blocks, cap },
                Schedule::HalvingByIssuance { initial, era_issuance: era, cap },
                Schedule::Decay { cap, rate_ppm },
            ];
            for s in &schedules {
                let (issued, per_block) = run(s, blocks);
                prop_assert!(issued <= cap);
                prop_assert_eq!(per_block.iter().sum::<Amount>(), issued);
            }
            // By issuance: no block straddles an era boundary.
            let s = &schedules[1];
            let mut total: Amount = 0;
            for h in 1..=blocks {
                let e = block_emission(s, h, total);
                if e > 0 {
                    prop_assert_eq!(total / era, (total + e - 1) / era);
                }
                total += e;
            }
        }
    }
}
