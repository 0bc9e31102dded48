//! The driver's mailbox: what simplex calls.
//!
//! Owns: [`Mailbox`], the one cloneable handle that implements commonware's `Automaton`,
//! `CertifiableAutomaton`, `Relay` and `Reporter`, and [`Message`], the requests it queues.
//! Invariants: the mailbox never blocks and never does work itself; every call turns into at
//! most one queued [`Message`] (replies travel on oneshot channels), and a request that cannot
//! be queued is answered by dropping its reply channel, which simplex reads as "declined".

use super::Digest;
use commonware_actor::{
    Feedback,
    mailbox::{Policy, Sender},
};
use commonware_consensus::{
    Automaton, CertifiableAutomaton, Relay, Reporter, Viewable as _,
    simplex::{
        Plan,
        scheme::ed25519::Scheme,
        types::{Activity, Context},
    },
    types::View,
};
use commonware_cryptography::ed25519::PublicKey;
use commonware_utils::channel::oneshot;
use std::collections::VecDeque;

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
    },
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
}

impl Mailbox {
    /// Wraps the sending half of the actor's mailbox.
    pub(crate) const fn new(sender: Sender<Message>) -> Self {
        Self { sender }
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
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match activity {
            Activity::Finalization(finalization) => self.sender.enqueue(Message::Finalized {
                view: finalization.view(),
                payload: finalization.proposal.payload,
            }),
            // Votes, notarizations, nullifications and fault evidence are not used yet
            // (slashing will consume the conflict variants).
            _ => Feedback::Ok,
        }
    }
}
