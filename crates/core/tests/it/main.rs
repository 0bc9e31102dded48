//! Integration tests of the state machine over the in-memory reference state.

mod beacon;
mod burn;
mod canary;
mod chain;
mod conformance;
mod determinism;
mod disputes;
mod dissection;
mod emission;
mod governance;
mod market;
mod net;
mod payout;
mod poi;
mod quality;
mod reshare;
mod rewards;
mod spot;
mod staking;
mod validators;
