//! Epoch rewards: the reward pool split among the stakeholders who did verified, useful work.
//!
//! Owns `rewards/`. During an epoch (`params.rewards.epoch_blocks` blocks; epoch `n` covers
//! heights `[n x E, (n + 1) x E)`) other modules credit weights ([`credit`]):
//! - **providers**, when a PoI job is verified: `units x multiplier_ppm x reputation_ppm`
//!   (verified compute, scaled by measured quality and by the provider's record; an inference
//!   job's multiplier is 1,000,000);
//! - **validators**, for every verdict they are credited units for (correct checking, not stake;
//!   a lazy verdict caught by a canary is taken back with [`uncredit`]);
//! - **developers**, when an inference job on their model version is verified: `units x bps` of
//!   their share of the version;
//! - **data providers**, when a training job on a dataset whose owners genesis named is
//!   verified: `units x multiplier_ppm`, split by the owners' measured contribution
//!   ([`data`]).
//!
//! At the end of the epoch's last block the pool's balance `P` is split by
//! `shares_bps` (providers, validators, developers, data providers, treasury): class `c` gets
//! `floor(P x share_c / 10,000)` and the treasury the rest. Within a class each account gets its
//! weight's share by the largest-remainder method (floors first, then one base unit each to
//! the largest fractional remainders, ties to the lower address), so the parts sum to the
//! class amount exactly. A class without weight goes to the treasury.
//! The transfers leave the pool, the epoch's [`EpochRewards`] is recorded and its weights are
//! deleted.
//!
//! # Format
//! - `rewards/w/<epoch u64><class u8><address 32>` -> borsh `u128` weight;
//! - `rewards/e/<epoch u64>` -> [`EpochRewards`].
//!
//! # Invariants
//! Every recorded epoch's accounts plus its treasury part sum to its pool exactly, and its
//! class amounts plus what went to the treasury do too.

pub mod data;

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::bank;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::state::{self, StateReader};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "rewards";
/// Owned prefix.
pub const PREFIX: &[u8] = b"rewards/";
/// Prefix of weights.
pub const WEIGHT_PREFIX: &[u8] = b"rewards/w/";
/// Prefix of epoch records.
pub const EPOCH_PREFIX: &[u8] = b"rewards/e/";
/// Prefix of each epoch's fees paid into the pool.
pub const FEES_PREFIX: &[u8] = b"rewards/f/";
/// Emission issued before the current epoch (so the epoch's emission is the difference).
pub const ISSUED_MARK_KEY: &[u8] = b"rewards/mark";

/// A stakeholder class.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Compute providers.
    Providers,
    /// Verifiers.
    Validators,
    /// Model developers.
    Developers,
    /// Data providers.
    Data,
}

impl Class {
    /// The four classes, in `shares_bps` order.
    pub const ALL: [Class; 4] = [
        Class::Providers,
        Class::Validators,
        Class::Developers,
        Class::Data,
    ];

    fn byte(self) -> u8 {
        self as u8
    }

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Providers => "providers",
            Class::Validators => "validators",
            Class::Developers => "developers",
            Class::Data => "data",
        }
    }
}

/// Governable reward parameters (`params.rewards`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardsParams {
    /// Blocks per epoch (positive).
    pub epoch_blocks: u64,
    /// Shares, bps, of providers, validators, developers, data providers and the treasury
    /// (summing to 10,000).
    pub shares_bps: [u32; 5],
    /// Share of every verified job's payment paid into the reward pool, bps (its fees).
    pub job_fee_bps: u32,
    /// Share of every verified inference job's payment paid as royalties along the served
    /// version's lineage, bps ([`crate::payout`]).
    pub royalty_bps: u32,
    /// Each step back along the lineage weighs this share of the step before, bps.
    pub lineage_decay_bps: u32,
    /// Most versions of a lineage paid royalties.
    pub lineage_depth_max: u32,
}

impl Default for RewardsParams {
    fn default() -> Self {
        Self {
            epoch_blocks: 1_000,
            shares_bps: [5_000, 2_000, 1_500, 500, 1_000],
            job_fee_bps: 0,
            royalty_bps: 0,
            lineage_decay_bps: 5_000,
            lineage_depth_max: 8,
        }
    }
}

impl RewardsParams {
    /// Checks the invariants.
    pub fn validate(&self) -> Result<(), String> {
        if self.epoch_blocks == 0 {
            return Err("rewards.epoch_blocks must be positive".into());
        }
        if self.shares_bps.iter().sum::<u32>() != 10_000 {
            return Err("rewards.shares_bps must sum to 10000".into());
        }
        if self.job_fee_bps.saturating_add(self.royalty_bps) > 10_000
            || self.lineage_decay_bps > 10_000
        {
            return Err(
                "rewards.job_fee_bps + royalty_bps and lineage_decay_bps must be at most 10000"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What one epoch paid.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct EpochRewards {
    /// The epoch.
    pub epoch: u64,
    /// The pool's balance at its end: everything distributed.
    #[serde(serialize_with = "crate::event::decimal")]
    pub pool: Amount,
    /// The part of the pool the epoch's emission minted.
    #[serde(serialize_with = "crate::event::decimal")]
    pub emission: Amount,
    /// The part of the pool verified jobs paid in fees.
    #[serde(serialize_with = "crate::event::decimal")]
    pub fees: Amount,
    /// The part of the pool sent to it by plain transfers.
    #[serde(serialize_with = "crate::event::decimal")]
    pub other: Amount,
    /// Each class's amount (before unweighted classes fell to the treasury).
    pub classes: Vec<(Class, String)>,
    /// Every account paid: address, class, amount (decimal).
    pub accounts: Vec<(Address, Class, String)>,
    /// What the treasury received (its share, rounding, and unweighted classes).
    #[serde(serialize_with = "crate::event::decimal")]
    pub treasury: Amount,
}

fn weight_key(epoch: u64, class: Class, who: &Address) -> Vec<u8> {
    [
        WEIGHT_PREFIX,
        &epoch.to_be_bytes(),
        &[class.byte()],
        who.as_bytes(),
    ]
    .concat()
}

fn epoch_key(epoch: u64) -> Vec<u8> {
    [EPOCH_PREFIX, &epoch.to_be_bytes()].concat()
}

/// The epoch a height belongs to.
pub fn epoch_of(height: u64, epoch_blocks: u64) -> u64 {
    height / epoch_blocks.max(1)
}

/// The epoch whose last block is `height`, or `None` mid-epoch: the one test of "an epoch
/// ends here" the end-of-epoch work of emission, rewards, burns and governance shares.
pub fn ending_epoch(height: u64, epoch_blocks: u64) -> Option<u64> {
    let e = epoch_blocks.max(1);
    (height + 1).is_multiple_of(e).then(|| epoch_of(height, e))
}

/// Epoch `n`'s record, once it ended.
pub fn read_epoch(state: &dyn StateReader, epoch: u64) -> Result<Option<EpochRewards>, StateError> {
    state::read_borsh(state, &epoch_key(epoch))
}

fn fees_key(epoch: u64) -> Vec<u8> {
    [FEES_PREFIX, &epoch.to_be_bytes()].concat()
}

/// Moves `amount` of `from`'s balance into the reward pool as the current epoch's fees.
pub(crate) fn add_fee(
    ctx: &mut ExecContext<'_, '_>,
    from: Address,
    amount: Amount,
) -> Result<(), TxError> {
    bank::transfer(ctx.state, from, crate::emission::pool(), amount)?;
    let epoch = epoch_of(ctx.block.height, ctx.params.rewards.epoch_blocks);
    let key = fees_key(epoch);
    let before: Amount = ctx.state.get_borsh(&key)?.unwrap_or(0);
    let after = before
        .checked_add(amount)
        .ok_or(TxError::Overflow("epoch fees"))?;
    ctx.state.put_borsh(key, &after);
    Ok(())
}

/// Adds `weight` to `who`'s weight in `class` for the current epoch.
pub(crate) fn credit(
    ctx: &mut ExecContext<'_, '_>,
    class: Class,
    who: Address,
    weight: u128,
) -> Result<(), TxError> {
    if weight == 0 {
        return Ok(());
    }
    let epoch = epoch_of(ctx.block.height, ctx.params.rewards.epoch_blocks);
    let key = weight_key(epoch, class, &who);
    let before: u128 = ctx.state.get_borsh(&key)?.unwrap_or(0);
    let after = before
        .checked_add(weight)
        .ok_or(TxError::Overflow("reward weight"))?;
    ctx.state.put_borsh(key, &after);
    Ok(())
}

/// Takes back up to `weight` of `who`'s current-epoch weight in `class`.
pub(crate) fn uncredit(
    ctx: &mut ExecContext<'_, '_>,
    class: Class,
    who: Address,
    weight: u128,
) -> Result<(), TxError> {
    let epoch = epoch_of(ctx.block.height, ctx.params.rewards.epoch_blocks);
    let key = weight_key(epoch, class, &who);
    let before: u128 = ctx.state.get_borsh(&key)?.unwrap_or(0);
    let after = before.saturating_sub(weight);
    if after == 0 {
        ctx.state.delete(key);
    } else {
        ctx.state.put_borsh(key, &after);
    }
    Ok(())
}

/// Splits `amount` among `weights` by the largest-remainder method: floors first, then one
/// base unit each to the largest remainders (ties to the earlier entry). The parts sum to
/// `amount` exactly when the total weight is positive; `None` when it is zero.
pub fn split(amount: Amount, weights: &[(Address, u128)]) -> Option<Vec<(Address, Amount)>> {
    let total: u128 = weights
        .iter()
        .try_fold(0u128, |a, (_, w)| a.checked_add(*w))?;
    if total == 0 {
        return None;
    }
    // amount x w / total without overflow: amount = q x total + r, so
    // amount x w / total = q x w + r x w / total, and r x w < total x w fits whenever
    // total x w does; we widen through the division by splitting r x w too.
    let mut parts: Vec<(Address, Amount, u128)> = weights
        .iter()
        .map(|(who, w)| {
            let (q, r) = (amount / total, amount % total);
            let (base, rem) = mul_div_rem(r, *w, total);
            (*who, q * w + base, rem)
        })
        .collect();
    let given: Amount = parts.iter().map(|p| p.1).sum();
    let mut left = amount - given;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.cmp(&parts[a].2).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    Some(parts.into_iter().map(|(who, a, _)| (who, a)).collect())
}

/// `(floor(a x b / d), (a x b) mod d)` for `a < d`, without overflowing `u128`.
fn mul_div_rem(a: u128, b: u128, d: u128) -> (u128, u128) {
    // Long multiplication in base 2^64 with a 256-bit intermediate.
    let (a_hi, a_lo) = (a >> 64, a & u128::from(u64::MAX));
    let (b_hi, b_lo) = (b >> 64, b & u128::from(u64::MAX));
    let lo_lo = a_lo * b_lo;
    let mid = a_hi * b_lo + (lo_lo >> 64);
    let mid2 = a_lo * b_hi + (mid & u128::from(u64::MAX));
    let hi = a_hi * b_hi + (mid >> 64) + (mid2 >> 64);
    let lo = (mid2 << 64) | (lo_lo & u128::from(u64::MAX));
    // Divide the 256-bit (hi, lo) by d bit by bit (d > 0).
    let (mut q, mut r) = (0u128, hi % d);
    for i in (0..128).rev() {
        let carry = r >> 127;
        r = (r << 1) | ((lo >> i) & 1);
        q <<= 1;
        if carry == 1 || r >= d {
            r = r.wrapping_sub(d);
            q |= 1;
        }
    }
    (q, r)
}

fn distribute(ctx: &mut ExecContext<'_, '_>, epoch: u64) -> Result<(), TxError> {
    let pool_address = crate::emission::pool();
    let pool = bank::account(ctx.state, &pool_address)?.map_or(0, |a| a.balance);
    let prefix = [WEIGHT_PREFIX, &epoch.to_be_bytes()].concat();
    let mut weights: BTreeMap<u8, Vec<(Address, u128)>> = BTreeMap::new();
    let mut keys = Vec::new();
    let mut failure = None;
    ctx.state.scan_prefix(&prefix, &mut |key, value| {
        let rest = &key[prefix.len()..];
        match (rest.split_first(), state::decode::<u128>(key, value)) {
            (Some((class, addr)), Ok(w)) if addr.len() == 32 => {
                let who = Address(addr.try_into().expect("32 bytes"));
                weights.entry(*class).or_default().push((who, w));
                keys.push(key.to_vec());
            }
            _ => {
                failure = Some(StateError(format!(
                    "bad reward weight {}",
                    hex::encode(key)
                )))
            }
        }
        failure.is_none()
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    for key in keys {
        ctx.state.delete(key);
    }
    // The pool is emptied every epoch, so it holds this epoch's emission and fees, plus
    // anything an account sent it by transfer (`other`).
    let issued = crate::emission::issued(ctx.state)?;
    let mark: Amount = ctx.state.get_borsh(ISSUED_MARK_KEY)?.unwrap_or(0);
    let emission = issued
        .checked_sub(mark)
        .ok_or(TxError::Overflow("epoch emission"))?;
    let fees: Amount = ctx.state.get_borsh(&fees_key(epoch))?.unwrap_or(0);
    ctx.state.delete(fees_key(epoch));
    ctx.state.put_borsh(ISSUED_MARK_KEY.to_vec(), &issued);
    let other = emission
        .checked_add(fees)
        .and_then(|inflow| pool.checked_sub(inflow))
        .ok_or_else(|| {
            StateError(format!(
                "reward pool {pool} holds less than epoch {epoch}'s emission {emission} plus fees {fees}"
            ))
        })?;
    let shares = ctx.params.rewards.shares_bps;
    let mut treasury = pool;
    let mut classes = Vec::new();
    let mut accounts = Vec::new();
    for (i, class) in Class::ALL.iter().enumerate() {
        let amount = pool
            .checked_mul(u128::from(shares[i]))
            .ok_or(TxError::Overflow("class reward"))?
            / 10_000;
        classes.push((*class, amount.to_string()));
        let ws = weights.remove(&class.byte()).unwrap_or_default();
        let Some(parts) = split(amount, &ws) else {
            continue; // no weight: the class's share stays with the treasury
        };
        for (who, part) in parts {
            if part == 0 {
                continue;
            }
            bank::debit(ctx.state, pool_address, part)?;
            bank::credit(ctx.state, who, part)?;
            treasury -= part;
            accounts.push((who, *class, part.to_string()));
        }
    }
    if treasury > 0 {
        bank::debit(ctx.state, pool_address, treasury)?;
        bank::credit(ctx.state, bank::treasury(), treasury)?;
    }
    ctx.emit(
        Event::new(NAME, "epoch_rewards")
            .with("epoch", epoch)
            .with("pool", pool)
            .with("accounts", accounts.len() as u64)
            .with("treasury", treasury),
    );
    let record = EpochRewards {
        epoch,
        pool,
        emission,
        fees,
        other,
        classes,
        accounts,
        treasury,
    };
    ctx.state.put_borsh(epoch_key(epoch), &record);
    Ok(())
}

/// The rewards module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rewards;

impl Module for Rewards {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// At an epoch's last block, pays out the pool.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let Some(epoch) = ending_epoch(ctx.block.height, ctx.params.rewards.epoch_blocks) else {
            return Ok(());
        };
        let pool = bank::account(ctx.state, &crate::emission::pool())?.map_or(0, |a| a.balance);
        let has_weights = {
            let prefix = [WEIGHT_PREFIX, &epoch.to_be_bytes()].concat();
            let mut any = false;
            ctx.state.scan_prefix(&prefix, &mut |_, _| {
                any = true;
                false
            })?;
            any
        };
        // A chain without emission or work keeps no reward records (and an unchanged root).
        if pool == 0 && !has_weights {
            return Ok(());
        }
        distribute(ctx, epoch)
    }

    /// Weights and records hold no tokens (the pool is a bank account).
    fn held_by_entry(&self, _key: &[u8], _value: &[u8]) -> Result<Amount, StateError> {
        Ok(0)
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        state::check_records(state, EPOCH_PREFIX, |r: &EpochRewards| {
            let paid: Option<Amount> = r
                .accounts
                .iter()
                .try_fold(r.treasury, |a, (_, _, x)| a.checked_add(x.parse().ok()?));
            let earned = r
                .emission
                .checked_add(r.fees)
                .and_then(|x| x.checked_add(r.other));
            (paid != Some(r.pool) || earned != Some(r.pool))
                .then(|| format!("epoch {} paid {paid:?} of {}", r.epoch, r.pool))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mul_div_rem_is_exact_on_wide_products() {
        let a = u128::MAX - 5;
        let d = u128::MAX;
        let (q, r) = mul_div_rem(a, 3, d);
        // (2^128 - 6) x 3 = 3 x (2^128 - 1) - 15 = 2 x d + (d - 15)
        assert_eq!((q, r), (2, d - 15));
        assert_eq!(mul_div_rem(7, 9, 10), (6, 3));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]
        /// The split sums exactly, is within one base unit of proportional, and an account
        /// with a larger weight never gets less.
        #[test]
        fn split_is_exact_and_fair(
            amount in 0u128..u128::MAX / 4,
            ws in proptest::collection::vec(0u128..u128::MAX / 1024, 1..20),
        ) {
            let weights: Vec<(Address, u128)> = ws
                .iter()
                .enumerate()
                .map(|(i, w)| (Address([i as u8; 32]), *w))
                .collect();
            match split(amount, &weights) {
                None => prop_assert!(ws.iter().all(|w| *w == 0)),
                Some(parts) => {
                    prop_assert_eq!(parts.iter().map(|p| p.1).sum::<u128>(), amount);
                    let total: u128 = ws.iter().sum();
                    for ((_, w), (_, a)) in weights.iter().zip(&parts) {
                        let (floor, _) = mul_div_rem(amount % total, *w, total);
                        let exact = amount / total * w + floor;
                        prop_assert!(*a == exact || *a == exact + 1);
                    }
                    for i in 0..parts.len() {
                        for j in 0..parts.len() {
                            if weights[i].1 > weights[j].1 {
                                prop_assert!(parts[i].1 + 1 >= parts[j].1);
                            }
                        }
                    }
                }
            }
        }
    }
}
