//! Run a poi validator: mempool, commonware simplex consensus, block execution and the HTTP API.
//!
//! The [`ledger::Ledger`] owns chain state (store, state machine, mempool, not-yet-final blocks);
//! [`consensus`] drives it through [`service::LedgerApp`] (`build_block`, `verify_block`,
//! `finalize`); the [`api`] serves it over HTTP; [`service::run`] runs all three in one process.
//!
//! Stability: ALPHA.
// The OpenAPI document is one `json!` literal, deeper than the default macro recursion limit.
#![recursion_limit = "256"]

pub mod api;
pub mod bench;
pub mod commit_thread;
pub mod consensus;
pub mod error;
pub mod events;
pub mod head;
pub mod home;
pub mod ledger;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod reshare;
pub mod service;
pub mod signatures;
