//! Proof of Intelligence: how the chain verifies AI work without running a model.
//!
//! The design is `docs/design/proof-of-intelligence.md`. The full `poi` chain module (prefix
//! `poi/`, its params, records, messages, the randomness beacon, spot checks, disputes with
//! referees, quality and the model registry) lands in later build steps. So far this holds only
//! pure building blocks that the module will store and drive; nothing here is registered in the
//! chain, owns state keys or handles messages yet.
//!
//! - [`dissection`]: the 32-way dissection game of a dispute, down to one operator of one step.
//!
//! Stability: ALPHA; the encodings may change until the chain module stores them.

pub mod dissection;
