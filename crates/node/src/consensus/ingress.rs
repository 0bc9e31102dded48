//! The driver's mailbox: what simplex calls.
//!
//! Owns: [`Mailbox`], the one cloneable handle that implements commonware's `Automaton`,
//! `CertifiableAutomaton`, `Relay` and `Reporter`, and [`Message`], the requests it queues.
//! Invariants: the mailbox never blocks and never does work itself; every call turns into at
//! most one queued [`Message`] (replies travel on oneshot channels), and a request that cannot
//! be queued is answered by dropping its reply channel, which simplex reads as "declined".
//! The reporter turns every certificate into the seed of its round (a notarization or
//! nullification into [`Message::Seed`], a finalization into [`Message::Finalized`] with its
//! seed), reading the recovered signature without panicking on one that does not decode.
//! Individual votes are counted in [`VoteStats`] inline (a short lock, no queueing), and fault
//! evidence becomes [`Message::Fault`], still unverified: the actor checks it off the mailbox.

use super::{
    Digest,
    beacon::{BeaconScheme, CertifiedSeed},
    fault::{Fault, fault_of, key_bytes},
    stats::{VoteKind, VoteStats},
};
use commonware_actor::{
    Feedback,
    mailbox::{Policy, Sender},
};
use commonware_consensus::{
    Automaton, CertifiableAutomaton, Relay, Reporter, Viewable as _,
    simplex::{
        Plan,
        scheme::bls12381_threshold::vrf::{Certificate, Seed},
        types::Attributable as _,
        types::{Activity, Context},
    },
    types::{Participant, Round, View},
};
use commonware_cryptography::{bls12381::primitives::variant::MinSig, ed25519::PublicKey};
use commonware_utils::{
    channel::oneshot,
    ordered::{Quorum as _, Set},
};
use std::{collections::VecDeque, sync::Arc};

/// A request from simplex to the driver actor.
pub(crate) enum Message {
    /// Build a block on `context.parent` and answer its digest (drop `response` to decline).
    Propose {
        /// Round, leader and parent of the proposal.
        context: Context<Digest, PublicKey>,
        /// Where the digest goes.
        response: oneshot::Sender<Digest>,
    },
    /// Judge `payload`, proposed by another validator on `context.parent`.
    Verify {
        /// Round, leader and parent of the proposal.
        context: Context<Digest, PublicKey>,
        /// Digest of the proposed block.
        payload: Digest,
        /// Where the permanent verdict goes.
        response: oneshot::Sender<bool>,
    },
    /// Send the bytes of block `payload` to peers.
    Broadcast {
        /// Digest of the block.
        payload: Digest,
        /// Who should receive it.
        plan: Plan<PublicKey>,
    },
    /// Block `payload` was finalized at `view`.
    Finalized {
        /// View of the finalization certificate.
        view: View,
        /// Digest of the finalized block.
        payload: Digest,
        /// The seed of the finalization's round, if its signature decodes.
        seed: Option<CertifiedSeed>,
    },
    /// A notarization or nullification certified the seed of its round.
    Seed(CertifiedSeed),
    /// The engine saw conflicting votes; not verified yet.
    Fault(Fault),
}

/// The seed a certificate of `round` carries; `None` if its signature does not decode (the
/// engine only reports verified certificates, so this does not happen in practice).
fn seed_of(round: Round, certificate: &Certificate<MinSig>) -> Option<CertifiedSeed> {
    let signature = certificate.get()?.seed_signature;
    Some(CertifiedSeed::from_seed(&Seed::new(round, signature)))
}

impl Policy for Message {
    type Overflow = VecDeque<Self>;

    fn handle(overflow: &mut Self::Overflow, message: Self) {
        // Keep every message: dropping a proposal or verification would stall a view, and
        // simplex issues only a few requests per view, so overflow stays small.
        overflow.push_back(message);
    }
}

/// The handle simplex drives the application through.
#[derive(Clone)]
pub(crate) struct Mailbox {
    sender: Sender<Message>,
    /// The validator set, to name the signer of a vote or fault.
    participants: Arc<Set<PublicKey>>,
    /// Where votes are counted.
    votes: VoteStats,
    /// Where the newest finalization certificate is kept for peers catching up.
    finalizations: super::LatestFinalization,
}

impl Mailbox {
    /// Wraps the sending half of the actor's mailbox.
    pub(crate) const fn new(
        sender: Sender<Message>,
        participants: Arc<Set<PublicKey>>,
        votes: VoteStats,
        finalizations: super::LatestFinalization,
    ) -> Self {
        Self {
            sender,
            participants,
            votes,
            finalizations,
        }
    }

    /// Counts a vote of signer `signer` in `view` (ignored if the index names nobody).
    fn count(&self, signer: Participant, kind: VoteKind, view: View) {
        if let Some(key) = self.participants.key(signer) {
            self.votes.record_vote(&key_bytes(key), kind, view.get());
        }
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        // If the actor is gone the message (and `response`) is dropped: the view is declined.
        let _ = self.sender.enqueue(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self.sender.enqueue(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

// The defaults fit: no pipelined handoff (`prepare` waits for the parent to certify) and
// every verified block is certifiable.
impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = PublicKey;
    type Plan = Plan<PublicKey>;

    fn broadcast(&mut self, payload: Digest, plan: Plan<PublicKey>) -> Feedback {
        self.sender.enqueue(Message::Broadcast { payload, plan })
    }
}

impl Reporter for Mailbox {
    type Activity = Activity<BeaconScheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Activity::Finalization(finalization) => {
                self.finalizations.record(&finalization);
                self.sender.enqueue(Message::Finalized {
                    view: finalization.view(),
                    payload: finalization.proposal.payload,
                    seed: seed_of(finalization.proposal.round, &finalization.certificate),
                })
            }
            Activity::Notarization(notarization) => {
                match seed_of(notarization.proposal.round, &notarization.certificate) {
                    Some(seed) => self.sender.enqueue(Message::Seed(seed)),
                    None => Feedback::Ok,
                }
            }
            Activity::Nullification(nullification) => {
                match seed_of(nullification.round, &nullification.certificate) {
                    Some(seed) => self.sender.enqueue(Message::Seed(seed)),
                    None => Feedback::Ok,
                }
            }
            Activity::Notarize(vote) => {
                self.count(vote.signer(), VoteKind::Notarize, vote.view());
                Feedback::Ok
            }
            Activity::Finalize(vote) => {
                self.count(vote.signer(), VoteKind::Finalize, vote.view());
                Feedback::Ok
            }
            Activity::Nullify(vote) => {
                self.count(vote.signer(), VoteKind::Nullify, vote.view());
                Feedback::Ok
            }
            activity @ (Activity::ConflictingNotarize(_)
            | Activity::ConflictingFinalize(_)
            | Activity::NullifyFinalize(_)) => match fault_of(&activity, &self.participants) {
                Some(fault) => self.sender.enqueue(Message::Fault(fault)),
                None => Feedback::Ok,
            },
            // Certification results carry nothing the driver uses.
            Activity::Certification(_) => Feedback::Ok,
        }
    }
}
