//! Typed errors of the state machine.
//!
//! [`TxError`] is what a user sees when a transaction is refused: each variant has a stable,
//! machine-readable [`TxError::code`] (used by the HTTP API and CLI) and a message that names the
//! offending value. [`StateError`] is a fault of the node itself (storage), never of the sender.

use crate::address::Address;
use crate::token::Amount;

/// A failure to read state: the node's storage is broken, not the transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StateError(pub String);

/// Why a transaction was refused. Refusal never leaves partial state behind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes are not one canonical borsh-encoded transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The encoding exceeds [`crate::limits::TX_BYTES_MAX`].
    #[error("transaction is {size} bytes, the limit is {max}")]
    Oversized {
        /// Encoded size in bytes.
        size: u64,
        /// Limit in bytes.
        max: u64,
    },
    /// The signature does not verify against the signer's key.
    #[error("bad signature for signer {signer}")]
    BadSignature {
        /// Claimed signer.
        signer: Address,
    },
    /// The transaction was signed for another chain.
    #[error("wrong chain id {got:?}, this chain is {expected:?}")]
    WrongChainId {
        /// Chain id in the transaction.
        got: String,
        /// Chain id of this node.
        expected: String,
    },
    /// The nonce was already used.
    #[error("stale nonce {got} for {account}: the next nonce is {expected}")]
    StaleNonce {
        /// Signer.
        account: Address,
        /// Nonce in the transaction.
        got: u64,
        /// Next nonce the account accepts.
        expected: u64,
    },
    /// The nonce is ahead of the account's next nonce (earlier transactions are missing).
    #[error("future nonce {got} for {account}: the next nonce is {expected}")]
    FutureNonce {
        /// Signer.
        account: Address,
        /// Nonce in the transaction.
        got: u64,
        /// Next nonce the account accepts.
        expected: u64,
    },
    /// The signer (fee payer) has never received funds.
    #[error("unknown account {0}: it has never received funds")]
    UnknownAccount(Address),
    /// The account cannot cover the amount plus fee.
    #[error("insufficient funds in {account}: balance {balance}, needs {needed}")]
    InsufficientFunds {
        /// Account that is short.
        account: Address,
        /// Its balance in base units.
        balance: Amount,
        /// Base units required.
        needed: Amount,
    },
    /// The fee is below the chain's minimum for this transaction's size.
    #[error("fee {fee} is below the minimum {min} for this transaction")]
    FeeTooLow {
        /// Offered fee.
        fee: Amount,
        /// Minimum fee.
        min: Amount,
    },
    /// An amount computation would overflow or underflow.
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// The message is well-formed but not allowed (e.g. a zero amount).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// The node's mempool is full; retry later or raise the fee.
    #[error("mempool full ({capacity} transactions): retry later or pay a higher fee")]
    MempoolFull {
        /// Capacity in transactions.
        capacity: u32,
    },
    /// The transaction is already known.
    #[error("transaction {0} is already known")]
    Duplicate(String),
    /// The account's free bonded stake is smaller than the amount asked for.
    #[error("insufficient stake in {account}: {free} free to use, needs {needed}")]
    InsufficientStake {
        /// Staker.
        account: Address,
        /// Bonded stake not locked behind commitments, in base units.
        free: Amount,
        /// Base units required.
        needed: Amount,
    },
    /// The stake exists but backs active commitments (jobs, collateral) and cannot leave.
    #[error(
        "stake of {account} is locked: {locked} of it backs active commitments, so {requested} cannot leave"
    )]
    StakeLocked {
        /// Staker.
        account: Address,
        /// Locked base units.
        locked: Amount,
        /// Base units asked for.
        requested: Amount,
    },
    /// No unbonding chunk has matured yet.
    #[error("nothing to withdraw for {account}{}", next_release.map(|h| format!(": the next chunk is released at height {h}")).unwrap_or_default())]
    NothingToWithdraw {
        /// Staker.
        account: Address,
        /// Release height of the earliest waiting chunk, if any.
        next_release: Option<u64>,
    },
    /// The account already has the most unbonding chunks allowed waiting.
    #[error("{account} already has {max} unbondings waiting: withdraw matured ones first")]
    TooManyUnbondings {
        /// Staker.
        account: Address,
        /// The limit (`staking.unbonding_entries_max`).
        max: u32,
    },
    /// A provider's collateral is below what its capacity requires (see [`crate::market`]).
    #[error(
        "collateral of {provider} is {collateral}, its capacity requires {required}: add collateral or lower the capacity"
    )]
    InsufficientCollateral {
        /// Provider.
        provider: Address,
        /// Collateral it would have, in base units.
        collateral: Amount,
        /// Collateral required, in base units.
        required: Amount,
    },
    /// The model is not in `market.models`.
    #[error("unknown model {0:?}: the chain accepts the models listed in params market.models")]
    UnknownModel(String),
    /// A dataset is not in `market.datasets`.
    #[error(
        "unknown dataset {0:?}: the chain accepts the datasets listed in params market.datasets"
    )]
    UnknownDataset(String),
    /// A job's escrow (`units x max_price`) exceeds what the signer can pay.
    #[error("job escrow {escrow} exceeds the balance {balance} of {account}")]
    OverBudget {
        /// Submitter.
        account: Address,
        /// Escrow asked for, in base units.
        escrow: Amount,
        /// Its balance after the fee, in base units.
        balance: Amount,
    },
    /// No job has this id.
    #[error("unknown job {0}")]
    UnknownJob(u64),
    /// The address is not a registered provider.
    #[error("{0} is not a registered provider")]
    UnknownProvider(Address),
    /// Only the job's owner may do this.
    #[error("job {job} belongs to {owner}, not {signer}")]
    NotJobOwner {
        /// Job id.
        job: u64,
        /// Its owner.
        owner: Address,
        /// Who asked.
        signer: Address,
    },
    /// Only the provider the job is assigned to may do this.
    #[error("job {job} is not assigned to {signer}")]
    NotAssignedProvider {
        /// Job id.
        job: u64,
        /// Who asked.
        signer: Address,
    },
    /// The job is not in a state that allows this.
    #[error("job {job} is {state}; this needs it to be {expected}")]
    BadJobState {
        /// Job id.
        job: u64,
        /// Its state.
        state: &'static str,
        /// The state(s) the action needs.
        expected: &'static str,
    },
    /// The action's deadline for this job has passed.
    #[error("job {job}: the deadline was height {deadline}")]
    DeadlinePassed {
        /// Job id.
        job: u64,
        /// Last height at which the action was accepted.
        deadline: u64,
    },
    /// The signer is already a registered provider.
    #[error("{0} is already a registered provider")]
    AlreadyRegistered(Address),
    /// The provider has active jobs, which this action would strand.
    #[error("provider {provider} has {active_jobs} active jobs: wait until they settle")]
    ProviderBusy {
        /// Provider.
        provider: Address,
        /// Jobs matched, running, committed or disputed.
        active_jobs: u32,
    },
    /// A job's `max_price` is below the market's current base price, so no provider could take
    /// it.
    #[error("max_price {max_price} is below the base price {base_price}")]
    PriceBelowBase {
        /// The job's highest price per unit.
        max_price: Amount,
        /// The base price per unit now.
        base_price: Amount,
    },
    /// A job buys more units than `market.job_units_max`.
    #[error("a job buys at most {max} units, not {units}")]
    JobTooLarge {
        /// Units asked for.
        units: u64,
        /// `market.job_units_max`.
        max: u64,
    },
    /// The user already has `market.open_jobs_per_user_max` open jobs.
    #[error("{account} has {open} open jobs, the most allowed: wait for one to end")]
    QueueFull {
        /// Submitter.
        account: Address,
        /// Its open jobs.
        open: u32,
    },
    /// A heartbeat after the provider's heartbeat deadline (the miss is about to be slashed).
    #[error("provider {provider}: the heartbeat was due by height {deadline}")]
    HeartbeatLate {
        /// Provider.
        provider: Address,
        /// Last height at which the heartbeat was accepted.
        deadline: u64,
    },
    /// The job is held for Proof-of-Intelligence verification: it settles when PoI has
    /// verified it, not on the owner's acceptance.
    #[error("job {0} is being verified by proof of intelligence: it settles when verified")]
    VerificationPending(u64),
    /// The job was submitted through the Proof-of-Intelligence module, which takes its commit
    /// (`PoiMsg::CommitTraining` / `CommitInference`), not the market's bare `CommitJob`.
    #[error("job {0} is a proof-of-intelligence job: commit it with the poi commit message")]
    PoiCommitRequired(u64),
    /// The job has no Proof-of-Intelligence record (it was submitted to the market directly).
    #[error("job {0} is not a proof-of-intelligence job")]
    NotPoiJob(u64),
    /// A PoI commit of the wrong kind (a training commit for an inference job or the reverse).
    #[error("job {job} is a {kind} job")]
    WrongJobKind {
        /// Job id.
        job: u64,
        /// Its kind (`training` or `inference`).
        kind: &'static str,
    },
    /// A PoI job spec is longer than `poi.spec_bytes_max`.
    #[error("the job spec is {size} bytes, the limit is {max}")]
    SpecTooLarge {
        /// Its length in bytes.
        size: u64,
        /// `poi.spec_bytes_max`.
        max: u64,
    },
    /// A Merkle proof carries more siblings than any committed tree needs.
    #[error("the proof has {len} siblings, the limit is {max}")]
    ProofTooLong {
        /// Siblings given.
        len: u64,
        /// The most allowed.
        max: u64,
    },
    /// A Merkle proof does not prove its leaf under the committed root (wrong length, or it
    /// computes another root).
    #[error(
        "job {job}: the proof of leaf {leaf} does not verify under the committed root: {reason}"
    )]
    BadProof {
        /// Job id.
        job: u64,
        /// The leaf index the proof is for.
        leaf: u64,
        /// What failed.
        reason: String,
    },
    /// A committed digest is not what the committed inputs hash to.
    #[error("job {job}: {what} is {claimed}, the committed inputs hash to {computed}")]
    DigestMismatch {
        /// Job id.
        job: u64,
        /// Which digest.
        what: &'static str,
        /// The digest sent, hex.
        claimed: String,
        /// The digest recomputed, hex.
        computed: String,
    },
    /// The signer is already a registered verifier.
    #[error("{0} is already a verifier")]
    AlreadyVerifier(Address),
    /// The signer is not a registered verifier.
    #[error("{0} is not a verifier")]
    UnknownVerifier(Address),
    /// A verifier bond below `poi.verifier_bond_min`.
    #[error("a verifier bond of {bond} is below the minimum {min}")]
    VerifierBondTooLow {
        /// The bond offered, base units.
        bond: Amount,
        /// `poi.verifier_bond_min`.
        min: Amount,
    },
    /// The verifier still has checks assigned and cannot deregister.
    #[error("verifier {verifier} has {open_checks} open checks")]
    VerifierBusy {
        /// Verifier.
        verifier: Address,
        /// Checks assigned and not yet answered.
        open_checks: u32,
    },
    /// No such check of that job.
    #[error("job {job} has no check {check}")]
    UnknownCheck {
        /// Job id.
        job: u64,
        /// Check number.
        check: u32,
    },
    /// The signer is not the verifier the check is assigned to.
    #[error("check {check} of job {job} is assigned to {assigned}, not {signer}")]
    NotAssignedVerifier {
        /// Job id.
        job: u64,
        /// Check number.
        check: u32,
        /// The assigned verifier, or "nobody".
        assigned: String,
        /// The signer.
        signer: Address,
    },
    /// The check was already answered, waived or expired.
    #[error("check {check} of job {job} is {state}, not open")]
    CheckClosed {
        /// Job id.
        job: u64,
        /// Check number.
        check: u32,
        /// Its state.
        state: &'static str,
    },
    /// No such proposal.
    #[error("unknown proposal {0}")]
    UnknownProposal(u64),
    /// The proposal is not open for votes.
    #[error("proposal {0} is not open for votes")]
    VotingClosed(u64),
    /// The voter had no bonded stake before the proposal and no delegators.
    #[error(
        "{account} has no voting power on proposal {proposal}: weight is the stake bonded before its submission"
    )]
    NoVotingPower {
        /// The voter.
        account: Address,
        /// The proposal.
        proposal: u64,
    },
    /// A parameter change outside what governance may set.
    #[error("parameter change refused: {0}")]
    ParamOutOfRange(String),
    /// A validator message was refused ([`crate::validators`]).
    #[error(transparent)]
    Validator(#[from] crate::validators::ValidatorError),
    /// Storage failed while executing; the transaction's effects were discarded.
    #[error("{0}")]
    State(#[from] StateError),
}

impl TxError {
    /// A stable, machine-readable code; never changes once released.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::Malformed(_) => "malformed",
            TxError::Oversized { .. } => "oversized",
            TxError::BadSignature { .. } => "bad_signature",
            TxError::WrongChainId { .. } => "wrong_chain_id",
            TxError::StaleNonce { .. } => "stale_nonce",
            TxError::FutureNonce { .. } => "future_nonce",
            TxError::UnknownAccount(_) => "unknown_account",
            TxError::InsufficientFunds { .. } => "insufficient_funds",
            TxError::FeeTooLow { .. } => "fee_too_low",
            TxError::Overflow(_) => "overflow",
            TxError::InvalidMessage(_) => "invalid_message",
            TxError::MempoolFull { .. } => "mempool_full",
            TxError::Duplicate(_) => "duplicate",
            TxError::InsufficientStake { .. } => "insufficient_stake",
            TxError::StakeLocked { .. } => "stake_locked",
            TxError::NothingToWithdraw { .. } => "nothing_to_withdraw",
            TxError::TooManyUnbondings { .. } => "too_many_unbondings",
            TxError::InsufficientCollateral { .. } => "insufficient_collateral",
            TxError::UnknownModel(_) => "unknown_model",
            TxError::UnknownDataset(_) => "unknown_dataset",
            TxError::OverBudget { .. } => "over_budget",
            TxError::UnknownJob(_) => "unknown_job",
            TxError::UnknownProvider(_) => "unknown_provider",
            TxError::NotJobOwner { .. } => "not_job_owner",
            TxError::NotAssignedProvider { .. } => "not_assigned_provider",
            TxError::BadJobState { .. } => "bad_job_state",
            TxError::DeadlinePassed { .. } => "deadline_passed",
            TxError::AlreadyRegistered(_) => "already_registered",
            TxError::ProviderBusy { .. } => "provider_busy",
            TxError::PriceBelowBase { .. } => "price_below_base",
            TxError::JobTooLarge { .. } => "job_too_large",
            TxError::QueueFull { .. } => "queue_full",
            TxError::HeartbeatLate { .. } => "heartbeat_late",
            TxError::VerificationPending(_) => "verification_pending",
            TxError::PoiCommitRequired(_) => "poi_commit_required",
            TxError::NotPoiJob(_) => "not_poi_job",
            TxError::WrongJobKind { .. } => "wrong_job_kind",
            TxError::SpecTooLarge { .. } => "spec_too_large",
            TxError::ProofTooLong { .. } => "proof_too_long",
            TxError::BadProof { .. } => "bad_proof",
            TxError::DigestMismatch { .. } => "digest_mismatch",
            TxError::AlreadyVerifier(_) => "already_verifier",
            TxError::UnknownVerifier(_) => "unknown_verifier",
            TxError::VerifierBondTooLow { .. } => "verifier_bond_too_low",
            TxError::VerifierBusy { .. } => "verifier_busy",
            TxError::UnknownCheck { .. } => "unknown_check",
            TxError::UnknownProposal(_) => "unknown_proposal",
            TxError::VotingClosed(_) => "voting_closed",
            TxError::NoVotingPower { .. } => "no_voting_power",
            TxError::ParamOutOfRange(_) => "param_out_of_range",
            TxError::NotAssignedVerifier { .. } => "not_assigned_verifier",
            TxError::CheckClosed { .. } => "check_closed",
            TxError::Validator(e) => e.code(),
            TxError::State(_) => "internal",
        }
    }
}

/// Adds two amounts, naming the computation on overflow.
pub fn add(a: Amount, b: Amount, what: &'static str) -> Result<Amount, TxError> {
    a.checked_add(b).ok_or(TxError::Overflow(what))
}

/// Subtracts two amounts, naming the computation on underflow.
pub fn sub(a: Amount, b: Amount, what: &'static str) -> Result<Amount, TxError> {
    a.checked_sub(b).ok_or(TxError::Overflow(what))
}
