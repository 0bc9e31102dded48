//! Proof of Intelligence: what a provider commits for AI work, and (in later build steps) the
//! checks, disputes and quality evaluation that verify it before the market pays.
//!
//! Owns `poi/` (layout in [`records`]): one [`PoiJob`] per job submitted through PoI, keyed by
//! its market job id, each training job's spec, and the registered [`Verifier`]s with their
//! dense index ([`verifier`]). Tokens held: none yet (challenge bonds arrive with disputes,
//! build step 5; a verifier bond is the verifier's own bonded stake, locked in staking), so
//! [`Poi::held_by_entry`] is 0 for every entry. The
//! escrow, payment and provider slashing stay the market's: PoI drives them through the
//! market's hooks ([`market::submit_for_poi`](crate::market::submit_for_poi), [`market::commit_for_poi`](crate::market::commit_for_poi), [`market::hold`](crate::market::hold),
//! [`market::settle_verified`](crate::market::settle_verified), [`market::open_poi_dispute`](crate::market::open_poi_dispute), [`market::resolve_dispute_for`](crate::market::resolve_dispute_for)),
//! so the market remains the only writer of `mkt/`.
//!
//! # Flow (build step 1)
//! `SubmitTraining` stores the spec and submits the market job with `hyperparams_hash =
//! blake3(spec)`; the market matches it as any job and the provider starts it with the market's
//! `StartJob`. The provider commits with `CommitTraining`: the chain recomputes the final step
//! digest and verifies its Merkle proof under the committed root ([`merkle`], core's own copy of
//! repops' hashing), then commits the market job and holds it. The market's bare `CommitJob` is
//! refused for PoI jobs (`poi_commit_required`) and a held job's `AcceptJob` is refused
//! (`verification_pending`). Nothing is drawn or checked yet, so a held job waits for the
//! spot checks of build step 3 (or the owner's market `DisputeJob`, which works as for any
//! committed job). Inference is the same with `SubmitInference` / `CommitInference` (an output
//! root, no proof yet).
//!
//! # Invariants (checked by [`Poi::check_invariants`])
//! - every PoI record's market job exists and says the same thing: the kind, the steps, and
//!   the spec hash (training `hyperparams_hash`, inference `input_hash`);
//! - `segment_steps >= 1` and `segments = ceil(steps / segment_steps)` (training), `1` and
//!   `steps` (inference);
//! - a training record has its spec stored and the spec hashes to `spec_hash`; no other spec
//!   is stored, and `poi/` holds nothing but records and specs;
//! - `submitted` records have no commitment and their market job is queued, matched, running,
//!   cancelled or expired; `verifying` records have a commitment whose root is the market
//!   job's result root (and, for training, whose final digest is the step digest of its
//!   inputs), and their market job is committed and held, disputed, settled or failed;
//! - every held market job has a `verifying` PoI record;
//! - verifiers: the count `n` equals the number of records and of index entries, the index
//!   holds exactly ordinals `0..n`, entry `o` names a verifier whose record has ordinal `o`
//!   (and its own address), every bond is positive and no verifier has open checks (there are
//!   no checks before build step 3). A bond is not required to reach the current
//!   `verifier_bond_min`: governance may raise the minimum after registration (and later
//!   slashing may cut a bond), so assignment (build step 2) will skip under-bonded verifiers;
//! - the staking lock audit: for every account, staking's `locked` equals the market's
//!   commitments (provider collateral plus, with active jobs, the tier lock) plus its PoI
//!   verifier bond. PoI sees both modules, so the exact check lives here; the market's own
//!   audit only checks that its commitments are covered.
//!
//! [`dissection`] is the pure 32-way dissection game a dispute will run (down to one operator of
//! one step); the module does not drive it yet (build step 5).
//!
//! Stability: ALPHA; records and messages grow with the build steps of
//! `docs/design/proof-of-intelligence.md`.

pub mod beacon;
pub mod canary;
pub mod checks;
pub mod commit;
pub mod dispute;
pub mod dissection;
mod invariants;
pub mod merkle;
pub mod params;
pub mod quality;
pub mod records;
pub mod registry;
pub mod spot;
pub mod verifier;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::module::{ExecContext, Module};
use crate::state::StateReader;
use crate::token::Amount;

pub use params::PoiParams;
pub use records::{
    PoiCommitment, PoiJob, PoiKind, PoiStatus, Verifier, read_job, read_spec, read_verifier,
    verifier_at, verifier_count,
};

/// Module name.
pub const NAME: &str = "poi";
/// Owned prefix.
pub const PREFIX: &[u8] = records::PREFIX;

/// Proof-of-Intelligence messages. Submissions are signed by the job's owner (who pays the
/// escrow), commits by the job's assigned provider.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PoiMsg {
    /// Queue a training job: the spec is stored under `poi/s/<job>` and the market job is
    /// submitted with `hyperparams_hash = blake3(spec)`, escrowing `units x max_price`.
    SubmitTraining {
        /// Model (one of `market.models`).
        model: String,
        /// Datasets (each one of `market.datasets`).
        datasets: Vec<String>,
        /// The repops job spec, canonical encoding (`train::JobSpec::encode`), at most
        /// `poi.spec_bytes_max` bytes; opaque to the chain.
        spec: Vec<u8>,
        /// Training steps `S` (the spec's; `1..=poi.steps_max`).
        steps: u64,
        /// Commitment to the evaluation ([`quality::eval_commitment`]).
        eval_commitment: [u8; 32],
        /// The registered version this job fine-tunes, if any (its base for the improvement).
        base_model: Option<u64>,
        /// Metered compute units bought (positive).
        units: u64,
        /// Highest price per unit accepted (positive).
        max_price: Amount,
    },
    /// The assigned provider commits a running training job.
    CommitTraining {
        /// Job id.
        job: u64,
        /// repops' Merkle root over the `S + 1` step digests.
        root: [u8; 32],
        /// The digest of leaf `S`.
        final_digest: [u8; 32],
        /// The digest of the final parameters.
        params_digest: [u8; 32],
        /// The digest of the final optimizer state.
        opt_digest: [u8; 32],
        /// The audit path of leaf `S` (leaf side first), at most
        /// [`merkle::FINAL_PROOF_SIBLINGS_MAX`] siblings.
        final_proof: Vec<[u8; 32]>,
        /// 32 bytes honest agents fill at random.
        sealed: [u8; 32],
    },
    /// Queue an inference job of `requests` requests, escrowing `units x max_price`.
    SubmitInference {
        /// Model (one of `market.models`).
        model: String,
        /// Registry id of the version to run (`GET /models`); must be a `model` version.
        version: u32,
        /// Requests `m` (`1..=poi.requests_max`).
        requests: u64,
        /// Merkle root of the request digests (the market job's `input_hash`).
        input_root: [u8; 32],
        /// Metered compute units bought (positive).
        units: u64,
        /// Highest price per unit accepted (positive).
        max_price: Amount,
    },
    /// The assigned provider commits a running inference job.
    CommitInference {
        /// Job id.
        job: u64,
        /// Merkle root over the outputs.
        output_root: [u8; 32],
        /// 32 bytes honest agents fill at random.
        sealed: [u8; 32],
    },
    /// Register the signer as a verifier, locking `bond` of its free bonded stake (at least
    /// `poi.verifier_bond_min`) with the next ordinal of the dense index.
    RegisterVerifier {
        /// Base units of bonded stake to lock.
        bond: Amount,
    },
    /// Lock `amount` (positive) more of a verifier's free bonded stake into its bond.
    AddVerifierBond {
        /// Base units.
        amount: Amount,
    },
    /// Stop verifying: only with no open checks. Unlocks the bond (it stays bonded) and moves
    /// the last ordinal into the freed one.
    DeregisterVerifier,
    /// The assigned verifier's verdict on check `check` of job `job` (see [`spot`]).
    Attest {
        /// Job id.
        job: u64,
        /// Check number.
        check: u32,
        /// What re-execution found.
        verdict: checks::Verdict,
    },
    /// The owner reveals the evaluation set committed at submission (see [`quality`]).
    RevealEval {
        /// Job id.
        job: u64,
        /// The dataset, salt and selection that open `eval_commitment`.
        reveal: quality::EvalReveal,
    },
    /// The provider claims its model's mean eval loss, micro-nats.
    ClaimScore {
        /// Job id.
        job: u64,
        /// Claimed score.
        score: u64,
    },
    /// A verifier challenges a training job's committed digests (see [`dispute`]), posting
    /// the challenge bond.
    Challenge {
        /// Job id.
        job: u64,
        /// A committed leaf the challenger accepts.
        lo: u64,
        /// Its digest.
        lo_digest: [u8; 32],
        /// Its audit path under the job's root.
        lo_proof: Vec<[u8; 32]>,
        /// A committed leaf the challenger disputes (`lo < hi`).
        hi: u64,
        /// The provider's digest for it.
        hi_digest: [u8; 32],
        /// Its audit path.
        hi_proof: Vec<[u8; 32]>,
        /// The challenger's digest for leaf `hi`.
        claim: [u8; 32],
        /// Operators in one step's trace (the model's layout length).
        ops: u64,
    },
    /// The provider's move in dispute `dispute` of job `job`: its digests at the pivots,
    /// each with its audit path (the first operator-phase reveal posts `trace_root`).
    DisputeReveal {
        /// Job id.
        job: u64,
        /// The dispute's number.
        dispute: u32,
        /// One digest per pending pivot.
        digests: Vec<[u8; 32]>,
        /// One audit path per digest.
        proofs: Vec<Vec<[u8; 32]>>,
        /// The step's trace root, on the first operator-phase reveal.
        trace_root: Option<[u8; 32]>,
    },
    /// The challenger's move: the first sub-range it disputes, with its digest at its end.
    DisputePick {
        /// Job id.
        job: u64,
        /// The dispute's number.
        dispute: u32,
        /// Sub-range, 1-based.
        index: u32,
        /// The challenger's digest at the sub-range's right end.
        claim: [u8; 32],
    },
    /// A canary's issuer reveals it (see [`canary`]).
    RevealCanary {
        /// Job id.
        job: u64,
        /// The secret `sealed` hides.
        secret: [u8; 32],
        /// The issuer's leaf position under `poi.canary_root`.
        leaf_index: u64,
        /// Its audit path.
        proof: Vec<[u8; 32]>,
    },
}

/// Applies a PoI message signed by `signer`.
pub fn handle(ctx: &mut ExecContext<'_, '_>, signer: Address, msg: &PoiMsg) -> Result<(), TxError> {
    match msg {
        PoiMsg::SubmitTraining {
            model,
            datasets,
            spec,
            steps,
            eval_commitment,
            base_model,
            units,
            max_price,
        } => commit::submit_training(
            ctx,
            signer,
            &commit::Training {
                model,
                datasets,
                spec,
                steps: *steps,
                eval_commitment: *eval_commitment,
                base_model: *base_model,
                units: *units,
                max_price: *max_price,
            },
        ),
        PoiMsg::CommitTraining {
            job,
            root,
            final_digest,
            params_digest,
            opt_digest,
            final_proof,
            sealed,
        } => commit::commit_training(
            ctx,
            signer,
            &commit::TrainingCommit {
                job: *job,
                root: *root,
                final_digest: *final_digest,
                params_digest: *params_digest,
                opt_digest: *opt_digest,
                final_proof,
                sealed: *sealed,
            },
        ),
        PoiMsg::SubmitInference {
            model,
            version,
            requests,
            input_root,
            units,
            max_price,
        } => commit::submit_inference(
            ctx,
            signer,
            &commit::Inference {
                model,
                version: *version,
                requests: *requests,
                input_root: *input_root,
                units: *units,
                max_price: *max_price,
            },
        ),
        PoiMsg::CommitInference {
            job,
            output_root,
            sealed,
        } => commit::commit_inference(ctx, signer, *job, *output_root, *sealed),
        PoiMsg::RegisterVerifier { bond } => verifier::register(ctx, signer, *bond),
        PoiMsg::AddVerifierBond { amount } => verifier::add_bond(ctx, signer, *amount),
        PoiMsg::DeregisterVerifier => verifier::deregister(ctx, signer),
        PoiMsg::Attest {
            job,
            check,
            verdict,
        } => spot::attest(ctx, signer, *job, *check, verdict.clone()),
        PoiMsg::RevealEval { job, reveal } => quality::reveal(ctx, signer, *job, reveal.clone()),
        PoiMsg::ClaimScore { job, score } => quality::claim(ctx, signer, *job, *score),
        PoiMsg::RevealCanary {
            job,
            secret,
            leaf_index,
            proof,
        } => canary::reveal(ctx, signer, *job, *secret, *leaf_index, proof),
        PoiMsg::Challenge {
            job,
            lo,
            lo_digest,
            lo_proof,
            hi,
            hi_digest,
            hi_proof,
            claim,
            ops,
        } => dispute::challenge(
            ctx,
            signer,
            &dispute::Challenge {
                job: *job,
                lo: *lo,
                lo_digest: *lo_digest,
                lo_proof,
                hi: *hi,
                hi_digest: *hi_digest,
                hi_proof,
                claim: *claim,
                ops: *ops,
            },
        ),
        PoiMsg::DisputeReveal {
            job,
            dispute,
            digests,
            proofs,
            trace_root,
        } => dispute::reveal(
            ctx,
            signer,
            *job,
            *dispute,
            digests.clone(),
            proofs,
            *trace_root,
        ),
        PoiMsg::DisputePick {
            job,
            dispute,
            index,
            claim,
        } => dispute::pick(ctx, signer, *job, *dispute, *index, *claim),
    }
}

/// The Proof-of-Intelligence module.
#[derive(Debug, Default, Clone, Copy)]
pub struct Poi;

impl Module for Poi {
    fn name(&self) -> &'static str {
        NAME
    }

    fn prefix(&self) -> &'static [u8] {
        PREFIX
    }

    /// PoI holds challenge bonds: a dispute record holds its bond; every other entry 0.
    fn held_by_entry(&self, key: &[u8], value: &[u8]) -> Result<Amount, StateError> {
        if key.starts_with(dispute::DISPUTE_PREFIX) {
            return dispute::held(value, key);
        }
        Ok(0)
    }

    /// Checks and records the block's beacon seeds, then draws and retargets due jobs
    /// ([`beacon`]).
    fn begin_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        beacon::begin_block(ctx)
    }

    /// Fires due check deadlines ([`spot::run_deadlines`]).
    fn end_block(&self, ctx: &mut ExecContext<'_, '_>) -> Result<(), TxError> {
        spot::run_deadlines(ctx)?;
        dispute::run_deadlines(ctx)
    }

    fn check_invariants(&self, state: &dyn StateReader) -> Result<(), String> {
        invariants::check(state)
    }
}
