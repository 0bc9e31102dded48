//! Equivocation evidence: conflicting consensus votes, verified on chain, slashed, tombstoned.
//!
//! # Format
//! `kind u8 | commonware codec of the evidence`, where `kind` is [`EvidenceKind`]:
//! `0` `ConflictingNotarize<S, D>`, `1` `ConflictingFinalize<S, D>`, `2` `NullifyFinalize<S, D>`,
//! `S = bls12381_threshold::vrf::Scheme<ed25519::PublicKey, MinSig>`, `D = sha256::Digest`.
//! At most [`EVIDENCE_BYTES_MAX`] bytes in all; no trailing bytes.
//!
//! # Verification
//! The consensus epoch of the votes names a signer generation ([`super::reshare`]: the engine
//! epoch is the generation number); the verifier scheme is built from that generation's sorted
//! participants and public polynomial, with the consensus namespace of `val/g`
//! (`chain_id ++ "_CONSENSUS"`). Generation 0 is the genesis set and the beacon dealing's
//! polynomial; an epoch naming no recorded generation is refused. Each
//! vote's two partial signatures (vote and seed) are verified *individually* against the
//! signer's partial public key (one pairing check each, no randomness), and commonware's own
//! `verify` must accept the evidence too. That one batches a vote's two signatures with random
//! weights and asks for an rng; the chain has no secret randomness, so it gets ChaCha20 seeded
//! with blake3 of the evidence bytes. A predictable weight would only let someone who already
//! holds the signing share pass two wrong signatures whose errors cancel; the individual checks
//! close even that, so the verdict never rests on the rng.
//!
//! # Soundness: which kinds convict
//! Threshold partial signatures are not attributable in general: from `t` valid partials on a
//! message anyone can interpolate *every* participant's partial on that message. So a partial
//! of validator `h` on `m` proves `h` signed `m` only if `t` partials on `m` cannot exist
//! without `h`. With `n = 3f + 1`, `t = 2f + 1` and at most `f` Byzantine validators, framing
//! an honest `h` needs `f + 1` honest partials on the conflicting message. Per kind (the
//! argument is spelled out in the node's `consensus/fault.rs`, which reports these):
//! - `ConflictingFinalize` convicts. Framing an honest `h` that finalized `A` needs `f + 1`
//!   honest finalizes of `B != A` in the same view; honest validators finalize only notarized
//!   proposals, and two notarization quorums intersect in an honest validator that would have
//!   notarized twice.
//! - `ConflictingNotarize` convicts only the view's leader. An honest notarize of `B` follows
//!   the leader's own signed proposal of `B`, so `f + 1` honest notarizes on both `A` and `B`
//!   exist only if the leader really signed both; against any other signer, a leader that did
//!   equivocate could supply enough partials to interpolate an honest validator's. Evidence
//!   against a non-leader is refused with [`ValidatorError::NotSlashable`].
//! - `NullifyFinalize` never convicts: a nullification and a notarization can coexist in one
//!   view, and then an honest finalizer's nullify partial can be interpolated. It decodes and
//!   verifies, and is refused as not slashable.
//!
//! The leader of a view is commonware's round-robin choice (`liveness::leader_index`, pinned
//! against commonware's elector in the tests).

use borsh::{BorshDeserialize, BorshSerialize};
use commonware_codec::{Copying, Decode as _, DecodeExt as _, Encode as _, ReadExt as _};
use commonware_consensus::simplex::scheme::{Namespace, bls12381_threshold::vrf};
use commonware_consensus::simplex::types::{
    ConflictingFinalize, ConflictingNotarize, Finalize, Notarize, Nullify, NullifyFinalize,
};
use commonware_consensus::types::Round;
use commonware_cryptography::bls12381::primitives::{
    ops,
    sharing::{ModeVersion, Sharing},
    variant::MinSig,
};
use commonware_cryptography::certificate::Attestation;
use commonware_cryptography::{ed25519, sha256};
use commonware_utils::{N3f1, ordered::Quorum as _, ordered::Set};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use serde::Serialize;

use super::{
    Candidate, EVIDENCE_PREFIX, GenesisConsensus, NAME, OFFENCE_PREFIX, ValidatorError, candidate,
    genesis_consensus, take_stake, write_candidate,
};
use crate::address::Address;
use crate::error::TxError;
use crate::event::Event;
use crate::module::ExecContext;
use crate::state::StateReader;

/// The consensus signing scheme evidence is signed under.
pub type EvidenceScheme = vrf::Scheme<ed25519::PublicKey, MinSig>;
/// The digest of simplex proposals.
pub type EvidenceDigest = sha256::Digest;

/// Longest evidence accepted (two votes are about 300 bytes).
pub const EVIDENCE_BYTES_MAX: usize = 1_024;
/// Largest participant set a polynomial is decoded for (bounds the decoding work).
const PARTICIPANTS_MAX: u32 = 1_024;

/// What the evidence proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum EvidenceKind {
    /// Two notarize votes for different proposals in one view.
    ConflictingNotarize,
    /// Two finalize votes for different proposals in one view.
    ConflictingFinalize,
    /// A nullify and a finalize vote in one view.
    NullifyFinalize,
}

impl EvidenceKind {
    /// The leading byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::ConflictingNotarize => 0,
            Self::ConflictingFinalize => 1,
            Self::NullifyFinalize => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        [
            Self::ConflictingNotarize,
            Self::ConflictingFinalize,
            Self::NullifyFinalize,
        ]
        .into_iter()
        .find(|k| k.byte() == byte)
    }
}

/// Evidence as kept on chain under `val/ev/<blake3 of bytes>`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct EvidenceRecord {
    /// What it proves.
    pub kind: EvidenceKind,
    /// The convicted validator.
    pub offender: Address,
    /// The consensus view of the offence.
    pub view: u64,
    /// Height it was accepted at.
    pub height: u64,
    /// Who submitted it.
    pub submitter: Address,
    /// Stake burned for it.
    #[serde(serialize_with = "crate::event::decimal")]
    pub slashed: crate::token::Amount,
    /// The submitted bytes ([`encode_evidence`] form).
    #[serde(serialize_with = "super::hex_vec")]
    pub bytes: Vec<u8>,
}

/// The evidence bytes of a message: `kind` then commonware's codec encoding `codec`.
pub fn encode_evidence(kind: EvidenceKind, codec: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(codec.len() + 1);
    out.push(kind.byte());
    out.extend_from_slice(codec);
    out
}

/// One signed vote of the evidence: its namespace, message, round and attestation.
struct Vote {
    namespace: fn(&Namespace) -> &[u8],
    message: Vec<u8>,
    round: Round,
    attestation: Attestation<EvidenceScheme>,
}

/// Decoded evidence: its kind and both votes (same signer and round, checked by commonware).
struct Decoded {
    kind: EvidenceKind,
    votes: [Vote; 2],
    check: Check,
}

type S = EvidenceScheme;
/// Commonware's own verdict on the decoded evidence, given the rng and the verifier.
type Check = Box<dyn Fn(&mut ChaCha20Rng, &S) -> bool>;
type D = EvidenceDigest;

fn notarize(n: Notarize<S, D>) -> Vote {
    Vote {
        namespace: |ns| &ns.notarize,
        message: n.proposal.encode().to_vec(),
        round: n.proposal.round,
        attestation: n.attestation,
    }
}

fn finalize(f: Finalize<S, D>) -> Vote {
    Vote {
        namespace: |ns| &ns.finalize,
        message: f.proposal.encode().to_vec(),
        round: f.proposal.round,
        attestation: f.attestation,
    }
}

fn nullify(n: Nullify<S>) -> Vote {
    Vote {
        namespace: |ns| &ns.nullify,
        message: n.round.encode().to_vec(),
        round: n.round,
        attestation: n.attestation,
    }
}

fn decode(bytes: &[u8]) -> Result<Decoded, ValidatorError> {
    let bad = |e: commonware_codec::Error| ValidatorError::MalformedEvidence(e.to_string());
    if bytes.len() > EVIDENCE_BYTES_MAX {
        return Err(ValidatorError::MalformedEvidence(format!(
            "{} bytes, the limit is {EVIDENCE_BYTES_MAX}",
            bytes.len()
        )));
    }
    let (&kind, body) = bytes
        .split_first()
        .ok_or_else(|| ValidatorError::MalformedEvidence("empty".into()))?;
    let kind = EvidenceKind::from_byte(kind)
        .ok_or_else(|| ValidatorError::MalformedEvidence(format!("unknown kind {kind}")))?;
    let mut reader = Copying(body);
    // Decoding the whole type first runs commonware's structural checks (one signer, one round,
    // different proposals) and refuses trailing bytes; the votes are then read for their fields.
    let (votes, check): ([Vote; 2], Check) = match kind {
        EvidenceKind::ConflictingNotarize => {
            let e = ConflictingNotarize::<S, D>::decode(body.to_vec()).map_err(bad)?;
            let a = Notarize::<S, D>::read(&mut reader).map_err(bad)?;
            let b = Notarize::<S, D>::read(&mut reader).map_err(bad)?;
            let check = move |rng: &mut ChaCha20Rng, s: &S| {
                e.verify(rng, s, &commonware_parallel::Sequential)
            };
            ([notarize(a), notarize(b)], Box::new(check))
        }
        EvidenceKind::ConflictingFinalize => {
            let e = ConflictingFinalize::<S, D>::decode(body.to_vec()).map_err(bad)?;
            let a = Finalize::<S, D>::read(&mut reader).map_err(bad)?;
            let b = Finalize::<S, D>::read(&mut reader).map_err(bad)?;
            let check = move |rng: &mut ChaCha20Rng, s: &S| {
                e.verify(rng, s, &commonware_parallel::Sequential)
            };
            ([finalize(a), finalize(b)], Box::new(check))
        }
        EvidenceKind::NullifyFinalize => {
            let e = NullifyFinalize::<S, D>::decode(body.to_vec()).map_err(bad)?;
            let a = Nullify::<S>::read(&mut reader).map_err(bad)?;
            let b = Finalize::<S, D>::read(&mut reader).map_err(bad)?;
            let check = move |rng: &mut ChaCha20Rng, s: &S| {
                e.verify(rng, s, &commonware_parallel::Sequential)
            };
            ([nullify(a), finalize(b)], Box::new(check))
        }
    };
    Ok(Decoded { kind, votes, check })
}

/// The verifier scheme and polynomial of a group (`participants` sorted), or why there is none.
fn verifier(
    participants: &[Address],
    polynomial: &[u8],
    namespace: &[u8],
) -> Result<(S, Sharing<MinSig>, Namespace), ValidatorError> {
    let n = u32::try_from(participants.len()).map_err(|_| ValidatorError::NoVerifier)?;
    let bound = std::num::NonZeroU32::new(PARTICIPANTS_MAX).expect("non-zero");
    if polynomial.is_empty() || n == 0 || n > PARTICIPANTS_MAX {
        return Err(ValidatorError::NoVerifier);
    }
    let polynomial =
        Sharing::<MinSig>::decode_cfg(polynomial.to_vec(), &(bound, ModeVersion::v0()))
            .map_err(|_| ValidatorError::NoVerifier)?;
    let keys = participants
        .iter()
        .map(|a| ed25519::PublicKey::decode(a.as_bytes().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ValidatorError::NoVerifier)?;
    let participants = Set::try_from(keys).map_err(|_| ValidatorError::NoVerifier)?;
    // `Scheme::verifier` panics on a mismatched polynomial: check first.
    if polynomial.total().get() != n || polynomial.required() != participants.quorum::<N3f1>() {
        return Err(ValidatorError::NoVerifier);
    }
    let scheme = S::verifier(namespace, participants, polynomial.clone());
    Ok((scheme, polynomial, Namespace::new(namespace)))
}

/// The group identity (compressed G2) of the genesis polynomial, if it is a valid sharing
/// among the genesis participants (genesis validation uses it).
pub fn polynomial_identity(genesis: &GenesisConsensus) -> Result<[u8; 96], ValidatorError> {
    let (_, polynomial, _) = verifier(
        &genesis.participants,
        &genesis.polynomial,
        &genesis.namespace,
    )?;
    polynomial
        .public()
        .encode()
        .as_ref()
        .try_into()
        .map_err(|_| ValidatorError::NoVerifier)
}

/// Checks `bytes` against the genesis group (consensus epoch 0 only); returns the kind,
/// offender and view. [`verify_in`] checks any generation the chain knows.
pub fn verify(
    genesis: &GenesisConsensus,
    bytes: &[u8],
) -> Result<(EvidenceKind, Address, u64), ValidatorError> {
    let decoded = decode(bytes)?;
    let epoch = decoded.votes[0].round.epoch().get();
    if epoch != 0 {
        return Err(ValidatorError::WrongEpoch(epoch));
    }
    verify_decoded(
        decoded,
        &genesis.participants,
        &genesis.polynomial,
        &genesis.namespace,
        bytes,
    )
}

/// Checks `bytes` against the signer generation its consensus epoch names
/// ([`super::reshare::generation`]); returns the kind, offender and view. An epoch naming no
/// recorded generation is refused as [`ValidatorError::WrongEpoch`].
pub fn verify_in(
    state: &dyn StateReader,
    bytes: &[u8],
) -> Result<(EvidenceKind, Address, u64), TxError> {
    let decoded = decode(bytes)?;
    let epoch = decoded.votes[0].round.epoch().get();
    let genesis = genesis_consensus(state)?.ok_or(ValidatorError::NoVerifier)?;
    let generation =
        super::reshare::generation_light(state, epoch)?.ok_or(ValidatorError::WrongEpoch(epoch))?;
    Ok(verify_decoded(
        decoded,
        &generation.participants,
        &generation.polynomial,
        &genesis.namespace,
        bytes,
    )?)
}

fn verify_decoded(
    decoded: Decoded,
    participants: &[Address],
    polynomial: &[u8],
    namespace: &[u8],
    bytes: &[u8],
) -> Result<(EvidenceKind, Address, u64), ValidatorError> {
    let round = decoded.votes[0].round;
    let (scheme, polynomial, namespace) = verifier(participants, polynomial, namespace)?;
    let signer = decoded.votes[0].attestation.signer;
    let offender = *participants
        .get(signer.get() as usize)
        .ok_or(ValidatorError::InvalidEvidence)?;
    for vote in &decoded.votes {
        let partial = polynomial
            .partial_public(vote.attestation.signer)
            .map_err(|_| ValidatorError::InvalidEvidence)?;
        let sig = vote
            .attestation
            .signature
            .get()
            .ok_or(ValidatorError::InvalidEvidence)?;
        let seed_message = vote.round.encode();
        let ns = (vote.namespace)(&namespace);
        let vote_ok =
            ops::verify_message::<MinSig>(&partial, ns, &vote.message, &sig.vote_signature);
        let seed_ok = ops::verify_message::<MinSig>(
            &partial,
            &namespace.seed,
            &seed_message,
            &sig.seed_signature,
        );
        if vote_ok.is_err() || seed_ok.is_err() {
            return Err(ValidatorError::InvalidEvidence);
        }
    }
    match decoded.kind {
        EvidenceKind::ConflictingFinalize => {}
        EvidenceKind::ConflictingNotarize => {
            let n = participants.len() as u64;
            let leader = super::liveness::leader_index(round.epoch().get(), round.view().get(), n);
            if u64::from(signer.get()) != leader {
                return Err(ValidatorError::NotSlashable(
                    "a conflicting notarize convicts only the view's leader",
                ));
            }
        }
        EvidenceKind::NullifyFinalize => {
            return Err(ValidatorError::NotSlashable(
                "a nullify can be interpolated from a nullification, so nullify-finalize never convicts",
            ));
        }
    }
    let mut h = blake3::Hasher::new();
    h.update(b"poi/validators/evidence-rng/v1");
    h.update(bytes);
    let mut rng = ChaCha20Rng::from_seed(*h.finalize().as_bytes());
    if !(decoded.check)(&mut rng, &scheme) {
        return Err(ValidatorError::InvalidEvidence);
    }
    Ok((decoded.kind, offender, round.view().get()))
}

/// The offence index key of `(offender, kind, view)`.
pub fn offence_key(offender: &Address, kind: EvidenceKind, view: u64) -> Vec<u8> {
    [
        OFFENCE_PREFIX,
        offender.as_bytes(),
        &[kind.byte()],
        &view.to_be_bytes(),
    ]
    .concat()
}

/// The evidence record key of `bytes`.
pub fn evidence_key(bytes: &[u8]) -> Vec<u8> {
    [EVIDENCE_PREFIX, blake3::hash(bytes).as_bytes()].concat()
}

/// Handles [`super::ValidatorsMsg::Evidence`]: verify, refuse repeats, slash, tombstone, record.
pub(crate) fn submit(
    ctx: &mut ExecContext<'_, '_>,
    submitter: Address,
    bytes: &[u8],
) -> Result<(), TxError> {
    let (kind, offender, view) = verify_in(ctx.state, bytes)?;
    let index = offence_key(&offender, kind, view);
    if ctx.state.get(&index)?.is_some() {
        return Err(ValidatorError::DuplicateEvidence { offender, view }.into());
    }
    let mut record: Candidate = candidate(ctx.state, &offender)?.unwrap_or_default();
    if record.tombstoned_at.is_some() {
        return Err(ValidatorError::Tombstoned(offender).into());
    }
    let bps = ctx.params.validators.equivocation_slash_bps;
    let slashed = take_stake(ctx, offender, &mut record, bps)?;
    // The submitter gets the floor of its share; the rest is burned, so the slashed base units
    // are all accounted for (none created, none lost).
    let (reward, burned) =
        super::evidence_reward_split(slashed, ctx.params.validators.evidence_reward_bps)?;
    if reward > 0 {
        // Moves stake staking already removed: no base unit is created.
        crate::bank::credit(ctx.state, submitter, reward)?;
    }
    if burned > 0 {
        crate::supply::record_burn(ctx, burned, crate::supply::BurnReason::ValidatorSlash)?;
    }
    // A tombstoned validator never returns: what is left of its collateral unlocks (so it can
    // unbond), and it leaves candidacy.
    crate::staking::unlock(ctx.state, offender, record.collateral)?;
    record.collateral = 0;
    record.registered = false;
    record.tombstoned_at = Some(ctx.block.height);
    record.evidence = record.evidence.saturating_add(1);
    write_candidate(ctx.state, &offender, &record);
    let key = evidence_key(bytes);
    let stored = EvidenceRecord {
        kind,
        offender,
        view,
        height: ctx.block.height,
        submitter,
        slashed,
        bytes: bytes.to_vec(),
    };
    ctx.state.put_borsh(key.clone(), &stored);
    ctx.state.put(index, key);
    ctx.emit(
        Event::new(NAME, "equivocation")
            .with("offender", offender)
            .with("view", view)
            .with("kind", u64::from(kind.byte()))
            .with("slashed", slashed)
            .with("reward", reward)
            .with("submitter", submitter),
    );
    Ok(())
}
