//! Run the off-chain Proof-of-Intelligence agents: providers that train, commit and serve,
//! validators that re-execute and attest.
//!
//! A [`provider::Provider`] registers with the market, heartbeats, starts the jobs matched to
//! it, trains them with `poi_repops::train::train_job` (or answers inference requests), commits
//! through `PoiMsg::CommitTraining` / `CommitInference`, and serves what validators need over
//! HTTP ([`provider::server`]). A [`validator::Validator`] bonds, registers as a verifier,
//! takes the checks the beacon assigned it, fetches the checkpoint and digests of each checked
//! segment (or the output of each checked request), verifies them against the committed root,
//! re-executes with repops and attests the verdict. Both talk to a node through
//! [`client::NodeClient`] and sign with their own ed25519 key ([`client::Wallet`]).
//! [`behaviour`] makes either of them cheat in a chosen way, for tests and the devnet.
//!
//! Everything an agent keeps lives under `HOME/agents/<name>/` ([`store`]), so a restarted
//! agent resumes its jobs and keeps serving them.
//!
//! Stability: ALPHA; the served endpoints and files follow `docs/design/proof-of-intelligence.md`
//! and will grow with disputes, evaluation and the model registry.

pub mod behaviour;
pub mod chain;
pub mod client;
mod error;
pub mod eval;
pub mod infer;
pub mod provider;
pub mod segment;
pub mod spec;
pub mod store;
pub mod validator;
pub mod wire;

pub use behaviour::{ProviderBehaviour, ValidatorBehaviour};
pub use client::{NodeClient, Wallet};
pub use error::{AgentError, Result};
