//! A Byzantine validator that equivocates: it runs no engine, and answers every notarize and
//! finalize vote it receives with two votes of its own for the same round, one for the
//! received proposal and one for a proposal of its own invention.
//!
//! Owns: building the Byzantine signer from a validator's beacon share (the same
//! `BeaconScheme::signer` the driver uses) and the vote loop. Invariant: it signs at most one
//! conflicting pair per (view, phase), so the honest validators' reports are about exactly the
//! views it equivocated in.

use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_consensus::{
    simplex::types::{Finalize, Notarize, Proposal, Vote},
    types::View,
};
use commonware_cryptography::{
    bls12381::primitives::{group::Share, sharing::ModeVersion, sharing::Sharing, variant::MinSig},
    ed25519::PublicKey,
    sha256::Digest,
};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::ordered::Set;
use poi_node::consensus::{BeaconKey, beacon::BeaconScheme, consensus_namespace};
use std::{collections::HashSet, num::NonZeroU32};

/// The threshold signer of the validator holding `key`, in the sorted set `participants`.
pub(crate) fn signer(
    namespace: &[u8],
    participants: &[PublicKey],
    key: &BeaconKey,
) -> BeaconScheme {
    let participants = Set::try_from(participants.to_vec()).expect("sorted unique keys");
    let bound = (NonZeroU32::new(64).expect("non-zero"), ModeVersion::v0());
    let polynomial =
        Sharing::<MinSig>::decode_cfg(key.polynomial_bytes(), &bound).expect("polynomial decodes");
    let share = Share::decode(key.share_bytes()).expect("share decodes");
    BeaconScheme::signer(
        &consensus_namespace(namespace),
        participants,
        polynomial,
        share,
    )
    .expect("share of this set")
}

/// A proposal of the same round and parent as `proposal`, for a block nobody built.
fn invented(proposal: &Proposal<Digest>) -> Proposal<Digest> {
    let mut seed = proposal.payload.0.to_vec();
    seed.extend_from_slice(b"equivocation");
    let payload = Digest(*blake3::hash(&seed).as_bytes());
    Proposal::new(proposal.round, proposal.parent, payload)
}

/// Runs the equivocator on the votes channel until the channel closes.
pub(crate) async fn equivocate<S, R>(scheme: BeaconScheme, (mut sender, mut receiver): (S, R))
where
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let mut notarized: HashSet<View> = HashSet::new();
    let mut finalized: HashSet<View> = HashSet::new();
    while let Ok((_, message)) = receiver.recv().await {
        let Ok(vote) = Vote::<BeaconScheme, Digest>::decode(message) else {
            continue;
        };
        let pair = match vote {
            Vote::Notarize(notarize) if notarized.insert(notarize.proposal.round.view()) => {
                let real = notarize.proposal;
                let fake = invented(&real);
                [fake, real].map(|proposal| {
                    Vote::Notarize(Notarize::sign(&scheme, proposal).expect("signer"))
                })
            }
            Vote::Finalize(finalize) if finalized.insert(finalize.proposal.round.view()) => {
                let real = finalize.proposal;
                let fake = invented(&real);
                [fake, real].map(|proposal| {
                    Vote::Finalize(Finalize::sign(&scheme, proposal).expect("signer"))
                })
            }
            _ => continue,
        };
        for vote in pair {
            sender.send(Recipients::All, vote.encode().to_vec(), true);
        }
    }
}
