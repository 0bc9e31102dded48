//! The supply ledger: genesis supply, minted and burned (by reason).
//!
//! Owns: `supply/genesis`, `supply/minted`, `supply/burned/<reason>`.
//! Invariant (checked after every block by [`crate::chain::Chain`]): the native tokens held by
//! every module entry (balances, stakes, escrows, module accounts) sum to
//! `genesis + minted - burned`, exactly. Minting and burning happen only through this module.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::address::Address;
use crate::bank;
use crate::error::{self, StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::state::{self, StateReader};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "supply";
/// Owned prefix.
pub const PREFIX: &[u8] = b"supply/";
/// Genesis supply key.
pub const GENESIS_KEY: &[u8] = b"supply/genesis";
/// Total minted key.
pub const MINTED_KEY: &[u8] = b"supply/minted";
/// Prefix of burned-by-reason keys.
pub const BURNED_PREFIX: &[u8] = b"supply/burned/";

/// Why tokens were burned. Each reason is tracked separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurnReason {
    /// The burned share of transaction fees.
    Fees,
    /// The burned share of slashed provider collateral (see [`crate::market`]).
    Slash,
    /// Usage burn of verified training jobs ([`crate::burn`]).
    UsageTraining,
    /// Usage burn of verified inference jobs ([`crate::burn`]).
    UsageInference,
    /// Deposits of proposals that missed quorum or were vetoed ([`crate::governance`]).
    GovernanceDeposit,
    /// Stake slashed from validators for equivocation or downtime ([`crate::validators`]).
    ValidatorSlash,
}

impl BurnReason {
    /// The stable name used in state keys and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BurnReason::Fees => "fees",
            BurnReason::Slash => "slash",
            BurnReason::UsageTraining => "usage_training",
            BurnReason::UsageInference => "usage_inference",
            BurnReason::GovernanceDeposit => "governance_deposit",
            BurnReason::ValidatorSlash => "validator_slash",
        }
    }
}

fn burned_key(reason: &str) -> Vec<u8> {
    [BURNED_PREFIX, reason.as_bytes()].concat()
}

fn read_amount(state: &dyn StateReader, key: &[u8]) -> Result<Amount, StateError> {
    Ok(state::read_borsh::<Amount>(state, key)?.unwrap_or(0))
}

/// Creates `amount` new tokens in `to`'s account.
pub fn mint(ctx: &mut ExecContext<'_, '_>, to: Address, amount: Amount) -> Result<(), TxError> {
    let minted = read_amount(ctx.state, MINTED_KEY)?;
    ctx.state.put_borsh(
        MINTED_KEY.to_vec(),
        &error::add(minted, amount, "supply minted")?,
    );
    bank::credit(ctx.state, to, amount)?;
    ctx.emit(
        Event::new(NAME, "mint")
            .with("to", to)
            .with("amount", amount),
    );
    Ok(())
}

/// Destroys `amount` tokens from `from`'s account, recording `reason`.
pub fn burn(
    ctx: &mut ExecContext<'_, '_>,
    from: Address,
    amount: Amount,
    reason: BurnReason,
) -> Result<(), TxError> {
    if amount == 0 {
        return Ok(());
    }
    bank::debit(ctx.state, from, amount)?;
    record_burn(ctx, amount, reason)?;
    ctx.emit(
        Event::new(NAME, "burn")
            .with("from", from)
            .with("amount", amount)
            .with("reason", reason.as_str()),
    );
    Ok(())
}

/// Records `amount` as burned for `reason` when the caller has already removed those base units
/// from the entry that held them (slashed stake, which no account holds). Only this crate's
/// modules may call it, in the same transaction as the removal.
pub(crate) fn record_burn(
    ctx: &mut ExecContext<'_, '_>,
    amount: Amount,
    reason: BurnReason,
) -> Result<(), TxError> {
    let key = burned_key(reason.as_str());
    let burned = read_amount(ctx.state, &key)?;
    ctx.state
        .put_borsh(key, &error::add(burned, amount, "supply burned")?);
    Ok(())
}

/// The supply breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Supply {
    /// Created at genesis.
    #[serde(serialize_with = "crate::event::decimal")]
    pub genesis: Amount,
    /// Created since genesis.
    #[serde(serialize_with = "crate::event::decimal")]
    pub minted: Amount,
    /// Destroyed since genesis, all reasons.
    #[serde(serialize_with = "crate::event::decimal")]
    pub burned: Amount,
    /// Destroyed, per reason.
    #[serde(serialize_with = "decimal_map")]
    pub burned_by_reason: BTreeMap<String, Amount>,
    /// `genesis + minted - burned`.
    #[serde(serialize_with = "crate::event::decimal")]
    pub total: Amount,
    /// Tokens free to move: `total` minus tokens locked in module accounts and stakes.
    #[serde(serialize_with = "crate::event::decimal")]
    pub circulating: Amount,
    /// Bonded and unbonding stake (held by staking).
    #[serde(serialize_with = "crate::event::decimal")]
    pub staked: Amount,
    /// Job escrow and owners' dispute bonds (held by the market).
    #[serde(serialize_with = "crate::event::decimal")]
    pub escrowed: Amount,
    /// Challenge bonds (held by Proof of Intelligence).
    #[serde(serialize_with = "crate::event::decimal")]
    pub bonds: Amount,
    /// The treasury account's balance (part of `circulating`: governance spends it).
    #[serde(serialize_with = "crate::event::decimal")]
    pub treasury: Amount,
    /// The reward pool's balance: emission waiting for the epoch's distribution (part of
    /// `circulating`).
    #[serde(serialize_with = "crate::event::decimal")]
    pub reward_pool: Amount,
}

fn decimal_map<S: serde::Serializer>(
    map: &BTreeMap<String, Amount>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(map.len()))?;
    for (reason, amount) in map {
        out.serialize_entry(reason, &amount.to_string())?;
    }
    out.end()
}

/// Reads the ledger. `locked` is what modules hold outside plain balances (passed in by the
/// chain, which knows its modules).
pub fn read(state: &dyn StateReader, locked: Amount) -> Result<Supply, StateError> {
    let genesis = read_amount(state, GENESIS_KEY)?;
    let minted = read_amount(state, MINTED_KEY)?;
    let mut burned_by_reason = BTreeMap::new();
    let mut corrupt = None;
    state.scan_prefix(BURNED_PREFIX, &mut |key, value| {
        let reason = String::from_utf8_lossy(&key[BURNED_PREFIX.len()..]).into_owned();
        match state::decode::<Amount>(key, value) {
            Ok(amount) => {
                burned_by_reason.insert(reason, amount);
                true
            }
            Err(e) => {
                corrupt = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = corrupt {
        return Err(e);
    }
    let overflow = |what: &str| StateError(format!("supply ledger overflows in {what}"));
    let burned = burned_by_reason
        .values()
        .try_fold(0u128, |acc, b| acc.checked_add(*b))
        .ok_or_else(|| overflow("burned"))?;
    let total = genesis
        .checked_add(minted)
        .and_then(|t| t.checked_sub(burned))
        .ok_or_else(|| overflow("total"))?;
    let circulating = total
        .checked_sub(locked)
        .ok_or_else(|| overflow("circulating"))?;
    Ok(Supply {
        genesis,
        minted,
        burned,
        burned_by_reason,
        total,
        circulating,
        staked: 0,
        escrowed: 0,
        bonds: 0,
        treasury: 0,
        reward_pool: 0,
    })
}

/// The supply ledger as a module: it holds no tokens itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct SupplyModule;

impl Module for SupplyModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    fn held_by_entry(&self, _key: &[u8], _value: &[u8]) -> Result<Amount, StateError> {
        Ok(0)
    }
}
