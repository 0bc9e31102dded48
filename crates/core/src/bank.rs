//! The bank: accounts, balances, nonces, transfers and fee routing.
//!
//! Owns: `bank/a/<address>` → [`Account`] (nonce and balance in one record, so a transfer touches
//! two keys). Invariants: balances are never negative (u128, checked); an account, once created,
//! is never deleted (its nonce is the replay protection); fees collected in a block sit in the
//! [`fee_collector`] account until `end_block` splits them between burn, treasury and proposer,
//! so the collector is empty after every block.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::{self, StateError, TxError};
use crate::event::Event;
use crate::module::{ExecContext, Module};
use crate::params::BPS_ONE;
use crate::state::{self, Overlay, StateReader};
use crate::supply::{self, BurnReason};
use crate::token::Amount;

/// Module name.
pub const NAME: &str = "bank";
/// Owned prefix.
pub const PREFIX: &[u8] = b"bank/";
/// Prefix of account records.
pub const ACCOUNT_PREFIX: &[u8] = b"bank/a/";

/// The module account that collects a block's fees.
pub fn fee_collector() -> Address {
    Address::module("fees")
}

/// The treasury's module account.
pub fn treasury() -> Address {
    Address::module("treasury")
}

/// An account record.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize,
)]
pub struct Account {
    /// Next nonce this account must use.
    pub nonce: u64,
    /// Balance in base units.
    #[serde(serialize_with = "crate::event::decimal")]
    pub balance: Amount,
}

/// Bank messages.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BankMsg {
    /// Move `amount` base units from the signer to `to`.
    Transfer {
        /// Recipient (created if new).
        to: Address,
        /// Base units; must be positive.
        amount: Amount,
    },
}

/// The state key of `address`'s account.
pub fn account_key(address: &Address) -> Vec<u8> {
    [ACCOUNT_PREFIX, address.as_bytes()].concat()
}

/// Reads an account.
pub fn account(state: &dyn StateReader, address: &Address) -> Result<Option<Account>, StateError> {
    state::read_borsh(state, &account_key(address))
}

fn write(state: &mut Overlay<'_>, address: &Address, account: &Account) {
    state.put_borsh(account_key(address), account);
}

/// Adds `amount` to `address` (creating the account). Only the supply ledger and transfers may
/// call this: anything else would mint.
pub(crate) fn credit(
    state: &mut Overlay<'_>,
    address: Address,
    amount: Amount,
) -> Result<(), TxError> {
    let mut acct = account(state, &address)?.unwrap_or_default();
    acct.balance = error::add(acct.balance, amount, "credit")?;
    write(state, &address, &acct);
    Ok(())
}

/// Removes `amount` from `address`, refusing to overdraw.
pub(crate) fn debit(
    state: &mut Overlay<'_>,
    address: Address,
    amount: Amount,
) -> Result<(), TxError> {
    let mut acct = account(state, &address)?.ok_or(TxError::UnknownAccount(address))?;
    acct.balance = acct
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            account: address,
            balance: acct.balance,
            needed: amount,
        })?;
    write(state, &address, &acct);
    Ok(())
}

/// Moves `amount` from `from` to `to`.
pub fn transfer(
    state: &mut Overlay<'_>,
    from: Address,
    to: Address,
    amount: Amount,
) -> Result<(), TxError> {
    debit(state, from, amount)?;
    credit(state, to, amount)
}

/// Applies a bank message signed by `signer`.
pub fn handle(
    ctx: &mut ExecContext<'_, '_>,
    signer: Address,
    msg: &BankMsg,
) -> Result<(), TxError> {
    match msg {
        BankMsg::Transfer { to, amount } => {
            if *amount == 0 {
                return Err(TxError::InvalidMessage(
                    "transfer amount must be positive".into(),
                ));
            }
            if *to == fee_collector() {
                return Err(TxError::InvalidMessage(
                    "cannot transfer to the fee collector".into(),
                ));
            }
            transfer(ctx.state, signer, *to, *amount)?;
            ctx.emit(
                Event::new(NAME, "transfer")
                    .with("from", signer)
                    .with("to", *to)
                    .with("amount", *amount),
            );
            Ok(())
        }
    }
}

/// `amount * bps / 10_000`, rounded down, checked.
pub fn share_bps(amount: Amount, bps: u16) -> Result<Amount, TxError> {
    amount
        .checked_mul(Amount::from(bps))
        .map(|v| v / Amount::from(BPS_ONE))
        .ok_or(TxError::Overflow("fee share"))
}

/// The bank module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Bank;

impl Module for Bank {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// Splits the block's fees: burn share, treasury share, and the rest (including rounding
    /// remainders) to the proposer.
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        let collector = fee_collector();
        let collected = account(ctx.state, &collector)?.map_or(0, |a| a.balance);
        if collected == 0 {
            return Ok(());
        }
        let burned = share_bps(collected, ctx.params.fee_burn_bps)?;
        let to_treasury = share_bps(collected, ctx.params.fee_treasury_bps)?;
        let to_proposer = error::sub(error::sub(collected, burned, "fees")?, to_treasury, "fees")?;
        supply::burn(ctx, collector, burned, BurnReason::Fees)?;
        if to_treasury > 0 {
            transfer(ctx.state, collector, treasury(), to_treasury)?;
        }
        if to_proposer > 0 {
            transfer(ctx.state, collector, ctx.block.proposer, to_proposer)?;
        }
        let left = account(ctx.state, &collector)?.map_or(0, |a| a.balance);
        assert_eq!(left, 0, "fee collector must be empty after distribution");
        ctx.emit(
            Event::new(NAME, "fees")
                .with("collected", collected)
                .with("burned", burned)
                .with("treasury", to_treasury)
                .with("proposer", to_proposer),
        );
        Ok(())
    }

    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError> {
        if key.starts_with(ACCOUNT_PREFIX) {
            Ok(state::decode::<Account>(key, value)?.balance)
        } else {
            Ok(0)
        }
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        let mut problem = None;
        state
            .scan_prefix(ACCOUNT_PREFIX, &mut |key, value| {
                if key.len() != ACCOUNT_PREFIX.len() + 32 {
                    problem = Some(format!("bad account key {}", hex::encode(key)));
                } else if let Err(e) = state::decode::<Account>(key, value) {
                    problem = Some(e.to_string());
                }
                problem.is_none()
            })
            .map_err(|e| e.to_string())?;
        if let Some(problem) = problem {
            return Err(problem);
        }
        let collector = account(state, &fee_collector()).map_err(|e| e.to_string())?;
        if collector.is_some_and(|a| a.balance != 0) {
            return Err("fee collector holds fees after the block ended".into());
        }
        Ok(())
    }
}
