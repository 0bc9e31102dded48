//! Execute poi transactions deterministically over an authenticated key-value state.
//!
//! `poi-core` is the state machine every validator runs. It does no I/O: state is read through the
//! [`state::StateReader`] seam (implemented by `poi-store`), and block execution returns the write
//! set, receipts and events for the caller to commit.
//!
//! # Determinism
//! Consensus state never depends on floats, `HashMap` iteration order, the wall clock or OS
//! randomness. Amounts are `u128` base units (see [`token`]); every arithmetic step is checked.
//! Time enters only through the proposer's block timestamp in [`block::BlockContext`].
//!
//! # Modules
//! Each mechanism is a module ([`module::Module`]) that owns a key prefix, its transaction
//! handlers, events, per-block hooks and invariants. This crate ships the framework, the
//! [`bank`] module, the [`supply`] ledger, [`staking`], the compute [`market`] and Proof of
//! Intelligence ([`poi`]: its first commitments, and the pure dissection game not yet wired
//! in); later mechanisms plug in the same way.
//!
//! Stability: ALPHA; encodings are pinned by golden digests in tests.

pub mod address;
pub mod bank;
pub mod beacon;
pub mod block;
pub mod burn;
pub mod chain;
pub mod emission;
pub mod error;
pub mod event;
pub mod genesis;
pub mod governance;
pub mod limits;
pub mod market;
pub mod merkle;
pub mod module;
pub mod params;
pub mod payout;
pub mod poi;
pub mod rewards;
pub mod staking;
pub mod state;
pub mod supply;
pub mod token;
pub mod tx;
pub mod validators;

pub use address::Address;
pub use error::{StateError, TxError};
pub use token::Amount;
