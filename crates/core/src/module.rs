//! The module framework: how a mechanism plugs into the state machine.
//!
//! A module owns one key prefix (no other module writes under it), handles its own message type
//! (dispatched by [`crate::chain::Chain`] from [`crate::tx::Msg`]), emits events, runs per-block
//! hooks and states its invariants. For the supply ledger each module also says how many native
//! base units each of its entries holds (balances, stakes, escrows), so the chain can check after
//! every block that tokens moved but were neither created nor destroyed outside the ledger.

use crate::block::BlockContext;
use crate::error::{StateError, TxError};
use crate::event::Event;
use crate::params::Params;
use crate::state::{Overlay, StateReader};
use crate::token::Amount;

/// What a handler or hook may touch while executing.
pub struct ExecContext<'o, 'a> {
    /// Staged state.
    pub state: &'o mut Overlay<'a>,
    /// The block being executed.
    pub block: &'o BlockContext,
    /// Parameters in force for this block.
    pub params: &'o Params,
    /// Events emitted so far by the current transaction or hook.
    pub events: &'o mut Vec<Event>,
}

impl ExecContext<'_, '_> {
    /// Records an event.
    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// A mechanism of the chain.
pub trait Module: Send + Sync {
    /// Short lowercase name, used in events and errors.
    fn name(&self) -> &'static str;

    /// The key prefix this module owns. Prefixes of registered modules never overlap.
    fn prefix(&self) -> &'static [u8];

    /// Runs before the block's transactions. An error makes the block invalid.
    fn begin_block(&self, _ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        Ok(())
    }

    /// Runs after the block's transactions. An error makes the block invalid.
    fn end_block(&self, _ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        Ok(())
    }

    /// Native base units held by the stored entry `(key, value)` under this module's prefix.
    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError>;

    /// A full audit of this module's state; returns a description of the first violation.
    fn check_invariants(&self, _state: &dyn StateReader) -> Result<(), String> {
        Ok(())
    }
}
