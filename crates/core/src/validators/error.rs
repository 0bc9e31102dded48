//! Why a validator message was refused.

use crate::address::Address;
use crate::token::Amount;

/// A refused validator message (wrapped in [`crate::error::TxError::Validator`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorError {
    /// The self-bond would leave the collateral below the minimum.
    #[error("validator collateral {collateral} would be below the minimum self-bond {min}")]
    BondBelowMinimum {
        /// Collateral after the registration.
        collateral: Amount,
        /// `validators.min_self_bond`.
        min: Amount,
    },
    /// The signer is not a registered candidate.
    #[error("{0} is not a validator candidate")]
    NotCandidate(Address),
    /// The validator was convicted of equivocation and may never return.
    #[error("validator {0} is tombstoned (convicted of equivocation)")]
    Tombstoned(Address),
    /// The signer is not jailed.
    #[error("validator {0} is not jailed")]
    NotJailed(Address),
    /// The jail has not ended yet.
    #[error("validator {address} is jailed until height {until}")]
    StillJailed {
        /// Validator.
        address: Address,
        /// First height at which it may unjail.
        until: u64,
    },
    /// The chain has no participant polynomial, so evidence cannot be verified.
    #[error("the chain has no consensus polynomial in genesis: evidence cannot be verified")]
    NoVerifier,
    /// The evidence bytes do not decode (unknown kind, bad encoding, too long).
    #[error("malformed evidence: {0}")]
    MalformedEvidence(String),
    /// Evidence of a consensus epoch that names no known signer generation.
    #[error("evidence of consensus epoch {0}: no such signer generation")]
    WrongEpoch(u64),
    /// Valid signatures, but a kind of evidence that could frame an honest validator under
    /// the threshold scheme (see `validators::evidence`, "Soundness").
    #[error("evidence not slashable: {0}")]
    NotSlashable(&'static str),
    /// The signatures do not verify.
    #[error("evidence does not verify against the participants of its generation")]
    InvalidEvidence,
    /// The same offence (offender, view, kind) was already recorded.
    #[error("evidence against {offender} for view {view} was already recorded")]
    DuplicateEvidence {
        /// Offender.
        offender: Address,
        /// Consensus view.
        view: u64,
    },
    /// No reshare round of this number was ever opened.
    #[error("reshare round {0} does not exist")]
    UnknownReshareRound(u64),
    /// The reshare round is closed (it succeeded or failed).
    #[error("reshare round {0} is closed")]
    ReshareRoundClosed(u64),
    /// The log bytes do not decode as a `SignedDealerLog` of the round's size.
    #[error("malformed reshare log: {0}")]
    MalformedReshareLog(String),
    /// The log's signature does not verify for the round.
    #[error("reshare log signature does not verify for the round")]
    InvalidReshareLog,
    /// The log's signer is not a dealer of the round.
    #[error("{0} is not a dealer of the reshare round")]
    NotReshareDealer(Address),
    /// A dealer's log must be submitted by the dealer itself.
    #[error("reshare log of dealer {dealer} submitted by {signer}")]
    ReshareLogNotOwn {
        /// The log's dealer.
        dealer: Address,
        /// The transaction's signer.
        signer: Address,
    },
    /// The dealer already posted its log for the round.
    #[error("dealer {dealer} already posted a log for reshare round {round}")]
    DuplicateReshareLog {
        /// Round.
        round: u64,
        /// Dealer.
        dealer: Address,
    },
    /// The round's information cannot be built from chain state.
    #[error("reshare unavailable: {0}")]
    ReshareUnavailable(String),
}

impl ValidatorError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BondBelowMinimum { .. } => "validator_bond_below_minimum",
            Self::NotCandidate(_) => "not_validator_candidate",
            Self::Tombstoned(_) => "validator_tombstoned",
            Self::NotJailed(_) => "validator_not_jailed",
            Self::StillJailed { .. } => "validator_still_jailed",
            Self::NoVerifier => "evidence_unverifiable",
            Self::MalformedEvidence(_) => "malformed_evidence",
            Self::WrongEpoch(_) => "evidence_wrong_epoch",
            Self::NotSlashable(_) => "evidence_not_slashable",
            Self::InvalidEvidence => "invalid_evidence",
            Self::DuplicateEvidence { .. } => "duplicate_evidence",
            Self::UnknownReshareRound(_) => "unknown_reshare_round",
            Self::ReshareRoundClosed(_) => "reshare_round_closed",
            Self::MalformedReshareLog(_) => "malformed_reshare_log",
            Self::InvalidReshareLog => "invalid_reshare_log",
            Self::NotReshareDealer(_) => "not_reshare_dealer",
            Self::ReshareLogNotOwn { .. } => "reshare_log_not_own",
            Self::DuplicateReshareLog { .. } => "duplicate_reshare_log",
            Self::ReshareUnavailable(_) => "reshare_unavailable",
        }
    }
}
