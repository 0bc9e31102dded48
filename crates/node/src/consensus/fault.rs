//! Fault evidence: conflicting votes a validator signed, as the engine saw them.
//!
//! Owns: [`Fault`] and [`FaultKind`] (what [`Application::fault`](super::Application::fault)
//! receives), the conversion from simplex's fault activities (`fault_of`), the per-run
//! de-duplication (`FaultLog`) and [`verify_fault`], the check anyone holding only the genesis
//! participant set and public polynomial can run on [`Fault::encoded`].
//!
//! Invariants:
//! - a [`Fault`] reaches the application only after both of its votes verified against the
//!   validator set (the engine reports conflicts before it checks signatures: the first
//!   conflicting vote it holds and the one just received may carry invalid partials);
//! - [`Fault::encoded`] is exactly commonware's codec encoding of the activity struct
//!   (`ConflictingNotarize`, `ConflictingFinalize` or `NullifyFinalize` over [`BeaconScheme`]
//!   and sha256 digests), and `kind`, `offender`, `view` and `epoch` are read from it;
//! - each (kind, offender, view) is delivered at most once per run, and the de-duplication
//!   record is bounded ([`FAULTS_REMEMBERED_MAX`]).
//!
//! # Why the threshold scheme's faults are reported at all
//! commonware calls `bls12381_threshold` "not attributable", and its `AttributableReporter`
//! drops every per-validator activity of such a scheme. The engine itself does not: its
//! batcher reports `ConflictingNotarize`, `ConflictingFinalize` and `NullifyFinalize` to the
//! reporter for any scheme (this driver's reporter is the plain mailbox, not that wrapper). The
//! caution is about forgery: from any `t` valid partial signatures on a message anyone can
//! interpolate the partial signature of *every* participant on that message. So a partial of
//! validator `h` on message `m` proves that `h` signed `m` only if fewer than `t` partials on
//! `m` can exist without `h`. With `n = 3f + 1`, `t = 2f + 1` and at most `f` Byzantine
//! validators, forging needs `t - f >= f + 1` honest partials on `m`. Per kind:
//! - **ConflictingFinalize** is sound. Framing an honest `h` that finalized `A` needs `t`
//!   finalizes on `B != A` in the same view, so at least `f + 1` honest validators finalized
//!   `B`; an honest validator finalizes only a notarized proposal, so both `A` and `B` were
//!   notarized, and two notarization quorums intersect in `f + 1 > f` validators, one of them
//!   honest and notarizing twice: impossible.
//! - **ConflictingNotarize** is sound against a view's leader, and against anyone in a view
//!   whose leader proposed once. Framing an honest `h` (who notarized `A`) needs `f + 1`
//!   honest notarizes on `B`. The first honest notarize on `B` can only follow the leader's
//!   own signed proposal of `B` (learning `B` from a certificate instead needs `t` partials
//!   on `B`, so `f + 1` honest notarizes before it), so this happens only if the leader
//!   genuinely signed both `A` and `B`. The same argument shows the leader's own partial on a
//!   proposal cannot be forged. A slashing rule that accepts this kind only against the
//!   view's leader therefore cannot hit an honest validator; against anyone else it can.
//! - **NullifyFinalize** is not sound on its own: every validator's nullify signs the same
//!   message (the round), a nullification (`t` nullifies) can coexist with a notarization of
//!   the same view, and then the nullify partial of an honest validator that finalized can be
//!   interpolated. Use it for local blocking and monitoring, not for slashing.
//!
//! Nothing here decides punishment: the application receives the evidence and the verifier,
//! and chooses a rule.

use super::{
    BlockDigest, Digest,
    beacon::{BeaconScheme, polynomial_from_bytes},
    config::consensus_namespace,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::{
    Epochable as _, Viewable as _,
    simplex::types::{
        Activity, Attributable as _, ConflictingFinalize, ConflictingNotarize, NullifyFinalize,
    },
};
use commonware_cryptography::ed25519;
use commonware_parallel::Sequential;
use commonware_utils::{
    N3f1,
    ordered::{Quorum as _, Set},
};
use rand_core::CryptoRng;
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

/// Most (view, kind, offender) triples the driver remembers to deliver each fault once; the
/// lowest views are forgotten first (the engine only reports votes within its small view
/// window, so an old view is not reported again).
pub const FAULTS_REMEMBERED_MAX: usize = 4_096;

/// Which voting rule the offender broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Notarize votes for two different proposals in one view (`ConflictingNotarize`).
    ConflictingNotarize,
    /// Finalize votes for two different proposals in one view (`ConflictingFinalize`).
    ConflictingFinalize,
    /// A nullify and a finalize vote in one view (`NullifyFinalize`).
    NullifyFinalize,
}

/// Verified evidence that one validator signed conflicting votes.
///
/// See the module documentation for which kinds are sound slashing evidence under the
/// threshold scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The rule broken.
    pub kind: FaultKind,
    /// ed25519 public key of the validator that signed both votes.
    pub offender: [u8; 32],
    /// Consensus view of both votes.
    pub view: u64,
    /// Consensus epoch of both votes.
    pub epoch: u64,
    /// commonware codec encoding (`Encode::encode`) of the activity struct:
    /// `ConflictingNotarize`, `ConflictingFinalize` or `NullifyFinalize` over the
    /// threshold VRF scheme and sha256 digests. Check it with [`verify_fault`].
    pub encoded: Vec<u8>,
}

/// The fault an activity is evidence of, or `None` for every other activity. Does not verify
/// signatures; `participants` maps the signer index to its key (`None` if out of range).
pub(crate) fn fault_of(
    activity: &Activity<BeaconScheme, Digest>,
    participants: &Set<ed25519::PublicKey>,
) -> Option<Fault> {
    let (kind, signer, view, epoch, encoded) = match activity {
        Activity::ConflictingNotarize(c) => (
            FaultKind::ConflictingNotarize,
            c.signer(),
            c.view(),
            c.epoch(),
            c.encode(),
        ),
        Activity::ConflictingFinalize(c) => (
            FaultKind::ConflictingFinalize,
            c.signer(),
            c.view(),
            c.epoch(),
            c.encode(),
        ),
        Activity::NullifyFinalize(c) => (
            FaultKind::NullifyFinalize,
            c.signer(),
            c.view(),
            c.epoch(),
            c.encode(),
        ),
        _ => return None,
    };
    let offender = key_bytes(participants.key(signer)?);
    Some(Fault {
        kind,
        offender,
        view: view.get(),
        epoch: epoch.get(),
        encoded: encoded.to_vec(),
    })
}

/// The 32 bytes of an ed25519 public key.
pub(crate) fn key_bytes(key: &ed25519::PublicKey) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // An encoded ed25519 public key is always 32 bytes.
    bytes.copy_from_slice(&key.encode());
    bytes
}

/// Decodes `fault.encoded` as its kind's activity and checks both signatures with `scheme`
/// (a signer or a verifier of the validator set), and that the fault's fields match it.
pub(crate) fn check_fault(rng: &mut impl CryptoRng, scheme: &BeaconScheme, fault: &Fault) -> bool {
    let bytes = fault.encoded.as_slice();
    let (activity, valid) = match fault.kind {
        FaultKind::ConflictingNotarize => {
            let Ok(c) = ConflictingNotarize::<BeaconScheme, Digest>::decode(bytes.to_vec()) else {
                return false;
            };
            let valid = c.verify(rng, scheme, &Sequential);
            (Activity::ConflictingNotarize(c), valid)
        }
        FaultKind::ConflictingFinalize => {
            let Ok(c) = ConflictingFinalize::<BeaconScheme, Digest>::decode(bytes.to_vec()) else {
                return false;
            };
            let valid = c.verify(rng, scheme, &Sequential);
            (Activity::ConflictingFinalize(c), valid)
        }
        FaultKind::NullifyFinalize => {
            let Ok(c) = NullifyFinalize::<BeaconScheme, Digest>::decode(bytes.to_vec()) else {
                return false;
            };
            let valid = c.verify(rng, scheme, &Sequential);
            (Activity::NullifyFinalize(c), valid)
        }
    };
    // The fields must describe the evidence, so nobody can relabel valid evidence.
    valid && fault_of(&activity, scheme.participants()).as_ref() == Some(fault)
}

/// Whether `fault` is valid evidence for the validator set `validators` (ed25519 keys, any
/// order) of chain `namespace` (the chain id, as in `ConsensusConfig::namespace`), whose beacon
/// was dealt with public polynomial `polynomial` (`BeaconKey::polynomial_bytes`). Needs no
/// share. `false` for malformed input of any kind, never a panic.
pub fn verify_fault(
    namespace: &[u8],
    validators: &[[u8; 32]],
    polynomial: &[u8],
    fault: &Fault,
) -> bool {
    let Some(scheme) = verifier(namespace, validators, polynomial) else {
        return false;
    };
    check_fault(&mut commonware_utils::sys_rng(), &scheme, fault)
}

/// A verifier (no share) of the validator set, or `None` if the inputs do not fit together.
pub(crate) fn verifier(
    namespace: &[u8],
    validators: &[[u8; 32]],
    polynomial: &[u8],
) -> Option<BeaconScheme> {
    let mut keys = Vec::with_capacity(validators.len());
    for key in validators {
        keys.push(ed25519::PublicKey::decode(key.to_vec()).ok()?);
    }
    keys.sort();
    let participants = Set::try_from(keys).ok()?;
    let polynomial = polynomial_from_bytes(polynomial).ok()?;
    // `BeaconScheme::verifier` asserts both; check them first.
    if polynomial.total().get() as usize != participants.len()
        || polynomial.required() != participants.quorum::<N3f1>()
    {
        return None;
    }
    Some(BeaconScheme::verifier(
        &consensus_namespace(namespace),
        participants,
        polynomial,
    ))
}

/// The (view, kind, offender) triples delivered in this run; shared by the fault tasks.
#[derive(Clone, Default)]
pub(crate) struct FaultLog {
    seen: Arc<Mutex<BTreeSet<(u64, FaultKind, BlockDigest)>>>,
}

impl FaultLog {
    /// Records `fault`; `true` if its (kind, offender, view) was not delivered before.
    pub(crate) fn first(&self, fault: &Fault) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = seen.insert((fault.view, fault.kind, fault.offender));
        while seen.len() > FAULTS_REMEMBERED_MAX {
            seen.pop_first();
        }
        fresh
    }
}
