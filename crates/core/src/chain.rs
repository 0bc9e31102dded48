//! The chain: module registry, transaction admission and block execution.
//!
//! # Transaction pipeline
//! 1. *Inclusion checks* (a block containing a transaction that fails them is invalid): chain id,
//!    signature, minimum fee, known signer, exact nonce, balance covers the fee.
//! 2. The fee moves to the fee collector and the nonce advances; this always sticks.
//! 3. The message runs in its own layer: on error its writes are discarded and the receipt says
//!    `failed` with the error code.
//!
//! # Invariant
//! After every block: for the keys the block wrote, the change in native tokens held (as each
//! owning module counts them) equals minted minus burned during the block. [`Chain::audit`]
//! checks the absolute form by scanning all state: held == genesis + minted - burned.

use crate::address::Address;
use crate::bank::{self, Bank};
use crate::block::BlockContext;
use crate::error::{self, StateError, TxError};
use crate::event::{Event, Receipt, TxOutcome};
use crate::limits::TX_EVENTS_MAX;
use crate::market::{self, Market};
use crate::module::{ExecContext, Module};
use crate::params::Params;
use crate::poi::{self, Poi};
use crate::staking::{self, Staking};
use crate::state::{Overlay, StateReader, WriteSet};
use crate::supply::{self, Supply, SupplyModule};
use crate::token::Amount;
use crate::tx::{Msg, Prechecks, Tx, TxHash};

/// How [`Chain::execute_block`] treats a transaction that fails its inclusion checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Proposing: skip it and report it in [`BlockOutcome::rejected`].
    Build,
    /// Verifying a peer's block: the whole block is invalid.
    Verify,
}

/// Whether an admitted transaction can run next or waits for earlier nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Its nonce is the account's next nonce.
    Ready,
    /// Its nonce is ahead by this many; the mempool holds it until the gap closes.
    Future(u64),
}

/// Everything executing a block produced.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// Transactions included, in order.
    pub txs: Vec<Tx>,
    /// Hashes of included transactions, parallel to `txs`.
    pub tx_hashes: Vec<TxHash>,
    /// Build mode only: transactions left out and why.
    pub rejected: Vec<(TxHash, TxError)>,
    /// The state changes to commit.
    pub writes: WriteSet,
    /// One receipt per included transaction.
    pub receipts: Vec<Receipt>,
    /// Events of the begin/end block hooks.
    pub block_events: Vec<Event>,
}

/// Why a block cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// More transactions than the parameters allow.
    #[error("block has {count} transactions, the limit is {max}")]
    TooManyTxs {
        /// Transactions in the block.
        count: u64,
        /// Limit.
        max: u32,
    },
    /// A transaction fails its inclusion checks.
    #[error("transaction {index} is invalid: {error}")]
    InvalidTx {
        /// Position in the block.
        index: u32,
        /// Why.
        error: TxError,
    },
    /// A per-block hook failed.
    #[error("{module} {hook} failed: {error}")]
    Hook {
        /// Module.
        module: &'static str,
        /// `begin_block` or `end_block`.
        hook: &'static str,
        /// Why.
        error: TxError,
    },
    /// Storage failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The supply ledger does not balance: a bug, the node must stop.
    #[error("supply invariant violated: {0}")]
    Invariant(String),
}

/// The state machine: chain id plus registered modules.
pub struct Chain {
    chain_id: String,
    modules: Vec<Box<dyn Module>>,
}

impl Chain {
    /// A chain with the built-in modules (params, supply, bank, staking, market, poi).
    pub fn new(chain_id: impl Into<String>) -> Self {
        let modules: Vec<Box<dyn Module>> = vec![
            Box::new(Bank),
            Box::new(SupplyModule),
            Box::new(Staking),
            Box::new(Market),
            Box::new(Poi),
            Box::new(crate::emission::Emission),
            Box::new(crate::rewards::Rewards),
            Box::new(crate::burn::Burn),
            Box::new(crate::governance::Governance),
            Box::new(crate::validators::Validators),
        ];
        for (i, a) in modules.iter().enumerate() {
            for b in &modules[i + 1..] {
                assert!(
                    !a.prefix().starts_with(b.prefix()) && !b.prefix().starts_with(a.prefix()),
                    "module prefixes overlap: {} and {}",
                    a.name(),
                    b.name()
                );
            }
        }
        Self {
            chain_id: chain_id.into(),
            modules,
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Registered modules.
    pub fn modules(&self) -> &[Box<dyn Module>] {
        &self.modules
    }

    fn owner(&self, key: &[u8]) -> Option<&dyn Module> {
        self.modules
            .iter()
            .find(|m| key.starts_with(m.prefix()))
            .map(|m| m.as_ref())
    }

    /// Admission check for the mempool against committed `state`: everything a block would
    /// check, plus a dry run of the message as if executed at `height` (the next block's), so a
    /// transfer that would fail is refused up front.
    pub fn check_tx(
        &self,
        state: &dyn StateReader,
        tx: &Tx,
        height: u64,
    ) -> Result<Admission, TxError> {
        let encoded_len = tx.encoded_len();
        self.check_stateless(tx, encoded_len)?;
        tx.verify_signature()?;
        let mut overlay = Overlay::new(state);
        let params = Params::load(&overlay)?;
        let account = bank::account(state, &tx.body.signer)?
            .ok_or(TxError::UnknownAccount(tx.body.signer))?;
        let account_before = account;
        let admission = match tx.body.nonce.cmp(&account.nonce) {
            std::cmp::Ordering::Less => {
                return Err(TxError::StaleNonce {
                    account: tx.body.signer,
                    got: tx.body.nonce,
                    expected: account.nonce,
                });
            }
            std::cmp::Ordering::Equal => Admission::Ready,
            std::cmp::Ordering::Greater => Admission::Future(tx.body.nonce - account.nonce),
        };
        // Dry run as if this were the next transaction (for a future nonce, pretend its turn came).
        let ctx = BlockContext {
            height,
            timestamp_ms: 0,
            proposer: Address::default(),
            view: 0,
            seeds: Vec::new(),
        };
        let mut simulated = tx.clone();
        simulated.body.nonce = account.nonce;
        self.charge_fee(&mut overlay, &params, &simulated, encoded_len)?;
        overlay.commit_tx();
        let mut events = Vec::new();
        let mut exec = ExecContext {
            state: &mut overlay,
            block: &ctx,
            params: &params,
            events: &mut events,
        };
        match self.dispatch(&mut exec, &simulated) {
            // Report the shortfall against the balance before the fee, counting the fee.
            Err(TxError::InsufficientFunds {
                account, needed, ..
            }) if account == tx.body.signer => Err(TxError::InsufficientFunds {
                account,
                balance: account_before.balance,
                needed: needed.saturating_add(tx.body.fee),
            }),
            Err(e) => Err(e),
            Ok(()) => Ok(admission),
        }
    }

    fn check_stateless(&self, tx: &Tx, encoded_len: u64) -> Result<(), TxError> {
        let max = u64::from(crate::limits::TX_BYTES_MAX);
        if encoded_len > max {
            return Err(TxError::Oversized {
                size: encoded_len,
                max,
            });
        }
        if tx.body.chain_id != self.chain_id {
            return Err(TxError::WrongChainId {
                got: tx.body.chain_id.clone(),
                expected: self.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Inclusion checks that need state, then the fee and nonce (in the transaction layer).
    fn charge_fee(
        &self,
        state: &mut Overlay<'_>,
        params: &Params,
        tx: &Tx,
        encoded_len: u64,
    ) -> Result<(), TxError> {
        let min = params.min_fee(encoded_len);
        if tx.body.fee < min {
            return Err(TxError::FeeTooLow {
                fee: tx.body.fee,
                min,
            });
        }
        let signer = tx.body.signer;
        let mut account = bank::account(state, &signer)?.ok_or(TxError::UnknownAccount(signer))?;
        if tx.body.nonce != account.nonce {
            let (got, expected) = (tx.body.nonce, account.nonce);
            return Err(if got < expected {
                TxError::StaleNonce {
                    account: signer,
                    got,
                    expected,
                }
            } else {
                TxError::FutureNonce {
                    account: signer,
                    got,
                    expected,
                }
            });
        }
        account.balance =
            account
                .balance
                .checked_sub(tx.body.fee)
                .ok_or(TxError::InsufficientFunds {
                    account: signer,
                    balance: account.balance,
                    needed: tx.body.fee,
                })?;
        account.nonce = account
            .nonce
            .checked_add(1)
            .ok_or(TxError::Overflow("nonce"))?;
        state.put_borsh(bank::account_key(&signer), &account);
        let mut collector = bank::account(state, &bank::fee_collector())?.unwrap_or_default();
        collector.balance = error::add(collector.balance, tx.body.fee, "fee collector")?;
        state.put_borsh(bank::account_key(&bank::fee_collector()), &collector);
        Ok(())
    }

    fn dispatch(&self, ctx: &mut ExecContext<'_, '_>, tx: &Tx) -> Result<(), TxError> {
        match &tx.body.msg {
            Msg::Bank(msg) => bank::handle(ctx, tx.body.signer, msg)?,
            Msg::Staking(msg) => staking::handle(ctx, tx.body.signer, msg)?,
            Msg::Market(msg) => market::handle(ctx, tx.body.signer, msg)?,
            Msg::Poi(msg) => poi::handle(ctx, tx.body.signer, msg)?,
            Msg::Gov(msg) => crate::governance::handle(ctx, tx.body.signer, msg)?,
            Msg::Validators(msg) => crate::validators::handle(ctx, tx.body.signer, msg)?,
        }
        if ctx.events.len() > TX_EVENTS_MAX as usize {
            return Err(TxError::InvalidMessage(format!(
                "emits {} events, the limit is {TX_EVENTS_MAX}",
                ctx.events.len()
            )));
        }
        Ok(())
    }

    /// The beacon seeds a block proposed at `current_view` should carry, `(epoch, view)` oldest
    /// first, at most `poi.seeds_per_block_max`: PoI draw targets before `current_view` whose
    /// seed no block has carried yet. Empty on a chain without a beacon.
    pub fn wanted_seeds(
        &self,
        state: &dyn StateReader,
        current_view: u64,
    ) -> Result<Vec<(u64, u64)>, StateError> {
        let params: Params = crate::state::read_borsh(state, crate::params::PARAMS_KEY)?
            .ok_or_else(|| StateError("params missing from state (no genesis?)".into()))?;
        poi::beacon::wanted_seeds(state, current_view, params.poi.seeds_per_block_max as usize)
    }

    /// Executes `txs` on `state` for the block described by `block`.
    pub fn execute_block(
        &self,
        state: &dyn StateReader,
        block: &BlockContext,
        txs: Vec<Tx>,
        mode: Mode,
    ) -> Result<BlockOutcome, BlockError> {
        let prechecks = Prechecks::verify(&txs);
        self.execute_verified_block(state, block, txs, prechecks, mode)
    }

    /// [`Chain::execute_block`] with the signature verdicts and hashes computed beforehand (for
    /// example while the previous block committed). The outcome is the same as
    /// `execute_block`'s.
    ///
    /// # Panics
    /// If `prechecks` does not cover exactly `txs`.
    pub fn execute_verified_block(
        &self,
        state: &dyn StateReader,
        block: &BlockContext,
        txs: Vec<Tx>,
        prechecks: Prechecks,
        mode: Mode,
    ) -> Result<BlockOutcome, BlockError> {
        assert_eq!(prechecks.len(), txs.len(), "one precheck per transaction");
        let mut overlay = Overlay::new(state);
        let params = Params::load(&overlay)?;
        if mode == Mode::Verify && txs.len() > params.block_txs_max as usize {
            return Err(BlockError::TooManyTxs {
                count: txs.len() as u64,
                max: params.block_txs_max,
            });
        }
        let mut block_events = Vec::new();
        self.run_hooks(
            &mut overlay,
            block,
            &params,
            &mut block_events,
            "begin_block",
        )?;
        let mut outcome = BlockOutcome {
            txs: Vec::with_capacity(txs.len()),
            tx_hashes: Vec::with_capacity(txs.len()),
            rejected: Vec::new(),
            writes: WriteSet::new(),
            receipts: Vec::with_capacity(txs.len()),
            block_events: Vec::new(),
        };
        for (position, tx) in txs.into_iter().enumerate() {
            if mode == Mode::Build && outcome.txs.len() >= params.block_txs_max as usize {
                break;
            }
            let (signature_ok, hash, encoded_len) = prechecks
                .get(position)
                .expect("one precheck per transaction");
            let included = if !signature_ok {
                Err(TxError::BadSignature {
                    signer: tx.body.signer,
                })
            } else {
                self.check_stateless(&tx, encoded_len)
                    .and_then(|()| self.charge_fee(&mut overlay, &params, &tx, encoded_len))
            };
            if let Err(error) = included {
                overlay.discard_tx();
                if mode == Mode::Verify {
                    let index = u32::try_from(outcome.txs.len()).unwrap_or(u32::MAX);
                    return Err(BlockError::InvalidTx { index, error });
                }
                outcome.rejected.push((hash, error));
                continue;
            }
            overlay.commit_tx();
            let mut events = vec![
                Event::new(bank::NAME, "fee")
                    .with("payer", tx.body.signer)
                    .with("amount", tx.body.fee),
            ];
            let mut ctx = ExecContext {
                state: &mut overlay,
                block,
                params: &params,
                events: &mut events,
            };
            let result = self.dispatch(&mut ctx, &tx);
            let outcome_kind = match result {
                Ok(()) => {
                    overlay.commit_tx();
                    TxOutcome::Success
                }
                Err(TxError::State(e)) => return Err(BlockError::State(e)),
                Err(e) => {
                    overlay.discard_tx();
                    events.truncate(1);
                    TxOutcome::Failed {
                        code: e.code().into(),
                        message: e.to_string(),
                    }
                }
            };
            outcome.receipts.push(Receipt {
                tx_hash: hash,
                height: block.height,
                index: u32::try_from(outcome.txs.len()).expect("block_txs_max fits u32"),
                outcome: outcome_kind,
                fee_paid: tx.body.fee,
                events,
            });
            outcome.tx_hashes.push(hash);
            outcome.txs.push(tx);
        }
        self.run_hooks(&mut overlay, block, &params, &mut block_events, "end_block")?;
        outcome.block_events = block_events;
        let (writes, base_reads) = overlay.into_parts();
        outcome.writes = writes;
        self.check_block_supply(state, &base_reads, &outcome.writes)?;
        Ok(outcome)
    }

    fn run_hooks(
        &self,
        overlay: &mut Overlay<'_>,
        block: &BlockContext,
        params: &Params,
        events: &mut Vec<Event>,
        hook: &'static str,
    ) -> Result<(), BlockError> {
        for module in &self.modules {
            let mut ctx = ExecContext {
                state: overlay,
                block,
                params,
                events,
            };
            let result = if hook == "begin_block" {
                module.begin_block(&mut ctx)
            } else {
                module.end_block(&mut ctx)
            };
            match result {
                Ok(()) => overlay.commit_tx(),
                Err(TxError::State(e)) => return Err(BlockError::State(e)),
                Err(error) => {
                    return Err(BlockError::Hook {
                        module: module.name(),
                        hook,
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Held(after) - held(before) over the written keys must equal minted - burned in the block.
    fn check_block_supply(
        &self,
        base: &dyn StateReader,
        base_reads: &crate::state::BaseReads,
        writes: &WriteSet,
    ) -> Result<(), BlockError> {
        let mut gained: Amount = 0;
        let mut lost: Amount = 0;
        let overflow = || BlockError::Invariant("held-token sums overflow".into());
        for (key, new) in writes {
            let Some(module) = self.owner(key) else {
                if key.as_slice() == crate::params::PARAMS_KEY {
                    continue;
                }
                return Err(BlockError::Invariant(format!(
                    "key {} has no owner",
                    hex::encode(key)
                )));
            };
            let old = match base_reads.get(key) {
                Some(old) => old.clone(),
                None => base.get(key)?,
            };
            let before = match old {
                Some(old) => module.held_by_entry(key, &old)?,
                None => 0,
            };
            let after = match new {
                Some(new) => module.held_by_entry(key, new)?,
                None => 0,
            };
            if after >= before {
                gained = gained.checked_add(after - before).ok_or_else(overflow)?;
            } else {
                lost = lost.checked_add(before - after).ok_or_else(overflow)?;
            }
        }
        let before = supply::read(base, 0)?;
        let mut overlay = Overlay::new(base);
        for (key, value) in writes.range(supply::PREFIX.to_vec()..) {
            if !key.starts_with(supply::PREFIX) {
                break;
            }
            match value {
                Some(v) => overlay.put(key.clone(), v.clone()),
                None => overlay.delete(key.clone()),
            }
        }
        overlay.commit_tx();
        let after = supply::read(&overlay, 0)?;
        let minted = after
            .minted
            .checked_sub(before.minted)
            .ok_or_else(overflow)?;
        let burned = after
            .burned
            .checked_sub(before.burned)
            .ok_or_else(overflow)?;
        // gained - lost == minted - burned, rearranged to stay in unsigned arithmetic.
        let lhs = gained.checked_add(burned).ok_or_else(overflow)?;
        let rhs = lost.checked_add(minted).ok_or_else(overflow)?;
        if lhs != rhs {
            return Err(BlockError::Invariant(format!(
                "held +{gained} -{lost}, but minted {minted} and burned {burned}"
            )));
        }
        Ok(())
    }

    /// Native base units the entries of `module` hold, summed over its whole prefix.
    fn held_by(&self, module: &dyn Module, state: &dyn StateReader) -> Result<Amount, StateError> {
        let mut held: Amount = 0;
        let mut failure = None;
        state.scan_prefix(module.prefix(), &mut |key, value| {
            match module.held_by_entry(key, value) {
                Ok(amount) => match held.checked_add(amount) {
                    Some(sum) => held = sum,
                    None => failure = Some(StateError("held tokens overflow".into())),
                },
                Err(e) => failure = Some(e),
            }
            failure.is_none()
        })?;
        failure.map_or(Ok(held), Err)
    }

    /// Tokens held outside account balances: stakes, escrows and bonds, everything a module
    /// other than the bank holds. Scans those modules' state (for queries, not execution).
    pub fn locked(&self, state: &dyn StateReader) -> Result<Amount, StateError> {
        self.modules
            .iter()
            .filter(|module| module.name() != bank::NAME)
            .try_fold(0, |sum: Amount, module| {
                sum.checked_add(self.held_by(module.as_ref(), state)?)
                    .ok_or_else(|| StateError("locked tokens overflow".into()))
            })
    }

    /// The supply breakdown: the ledger, with what staking, the market and PoI hold and the
    /// treasury's and reward pool's balances.
    pub fn supply(&self, state: &dyn StateReader) -> Result<Supply, StateError> {
        let mut supply = supply::read(state, self.locked(state)?)?;
        for module in &self.modules {
            let held = self.held_by(module.as_ref(), state)?;
            match module.name() {
                staking::NAME => supply.staked = held,
                market::NAME => supply.escrowed = held,
                poi::NAME => supply.bonds = held,
                _ => {}
            }
        }
        let balance = |who| -> Result<Amount, StateError> {
            Ok(bank::account(state, &who)?.map_or(0, |a| a.balance))
        };
        supply.treasury = balance(bank::treasury())?;
        supply.reward_pool = balance(crate::emission::pool())?;
        Ok(supply)
    }

    /// Full audit: every module's invariants, and held tokens == genesis + minted - burned.
    pub fn audit(&self, state: &dyn StateReader) -> Result<Supply, String> {
        let mut held: Amount = 0;
        for module in &self.modules {
            module
                .check_invariants(state)
                .map_err(|e| format!("{}: {e}", module.name()))?;
            let amount = self
                .held_by(module.as_ref(), state)
                .map_err(|e| format!("{}: {e}", module.name()))?;
            held = held
                .checked_add(amount)
                .ok_or_else(|| "held tokens overflow".to_string())?;
        }
        let supply = self.supply(state).map_err(|e| e.to_string())?;
        if held != supply.total {
            return Err(format!("modules hold {held}, ledger says {}", supply.total));
        }
        Ok(supply)
    }
}
