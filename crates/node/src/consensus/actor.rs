//! The driver actor: turns simplex's requests into [`Application`] calls.
//!
//! Owns: the application handle, the block channel sender, proposal pacing, the latest
//! finalized digest and the recording of certified seeds into the [`SeedCache`]. Invariants:
//! - the actor loop never awaits the application or a timer; each proposal, verification and
//!   broadcast runs in its own child task, so one slow block never delays another request or
//!   the delivery of a finalization;
//! - a proposal's digest is released no earlier than `block_interval` after simplex asked for
//!   it (the pause happens in the proposal's task, not in the actor);
//! - an application call is dropped (cancelled) as soon as simplex drops the request;
//! - [`Application::finalized`] runs in one task, one call at a time, with strictly increasing
//!   views within a run; finalizations that arrive while a call is in progress are coalesced
//!   into the newest one. On a runtime stop the newest finalization is still delivered (and an
//!   in-flight call may complete, for up to [`FINALIZER_DRAIN_MAX`]) before the actor exits;
//! - a reported fault is verified in its own task (signature checks never run in the actor
//!   loop) and reaches [`Application::fault`] only if valid and first of its (kind, offender,
//!   view) in this run ([`FaultLog`]);
//! - every block-channel message stamps its sender's `last_block_message` in [`VoteStats`].

use super::{
    Application, Digest,
    beacon::{BeaconScheme, SeedCache},
    config::MAILBOX_SIZE,
    fault::{Fault, FaultLog, check_fault, key_bytes},
    fetch::{self, BlockRequests},
    ingress::{Mailbox, Message},
    stats::VoteStats,
};
use commonware_actor::mailbox::{self, Receiver as MailboxReceiver};
use commonware_consensus::{
    simplex::{Plan, types::Context},
    types::View,
};
use commonware_cryptography::ed25519::PublicKey;
use commonware_macros::{select, select_loop};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Handle, Metrics, Spawner};
use commonware_utils::{
    channel::{oneshot, watch},
    ordered::Set,
};
use rand_core::CryptoRng;
use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};
use tracing::{debug, info, warn};

/// How long a stopping actor waits for an in-flight [`Application::finalized`] call before
/// cancelling it. Below [`SHUTDOWN_TIMEOUT`](super::SHUTDOWN_TIMEOUT), so a stuck call cannot
/// turn a shutdown into a timeout.
pub(crate) const FINALIZER_DRAIN_MAX: Duration = Duration::from_secs(5);

/// The consensus context of a proposal or verification request.
type ConsensusContext = Context<Digest, PublicKey>;

/// What the actor needs besides its runtime context.
pub(crate) struct Config<A, S> {
    /// The application blocks come from.
    pub(crate) app: A,
    /// Minimum time from a proposal request to releasing its digest.
    pub(crate) block_interval: Duration,
    /// Longest block sent on the block channel, in bytes.
    pub(crate) max_block_bytes: u32,
    /// Sending half of the block channel.
    pub(crate) block_sender: S,
    /// Sending half of the block request channel.
    pub(crate) request_sender: S,
    /// The other validators, asked in turn for missing blocks.
    pub(crate) peers: Vec<PublicKey>,
    /// Where seeds taken from certificates go.
    pub(crate) seeds: SeedCache,
    /// Per-validator activity (block-channel arrivals are stamped here).
    pub(crate) votes: VoteStats,
    /// This validator's scheme, used to verify reported faults.
    pub(crate) scheme: BeaconScheme,
    /// The validator set, as the engine indexes it.
    pub(crate) participants: Arc<Set<PublicKey>>,
    /// Receives every finalization certificate the engine reports.
    pub(crate) finalizations: super::LatestFinalization,
}

/// The p2p receivers and local queue the actor consumes.
pub(crate) struct Inputs<R> {
    /// Blocks from peers (broadcasts and answers to requests).
    pub(crate) blocks: R,
    /// Peers' requests for our blocks.
    pub(crate) requests: R,
    /// The application's requests for blocks it lacks.
    pub(crate) local_requests: BlockRequests,
}

/// The actor. Create with [`Actor::new`], then [`Actor::start`] it before the engine.
pub(crate) struct Actor<A, S> {
    cfg: Config<A, S>,
    mailbox: MailboxReceiver<Message>,
    /// Newest finalized digest, read by the finalizer task.
    finalized: watch::Sender<Option<Digest>>,
    /// View of the newest finalization handed to the finalizer in this run.
    finalized_view: View,
    /// Faults already delivered in this run.
    faults: FaultLog,
}

impl<A: Application, S: Sender<PublicKey = PublicKey>> Actor<A, S> {
    /// Creates the actor and the mailbox simplex talks to.
    pub(crate) fn new(metrics: impl Metrics, cfg: Config<A, S>) -> (Self, Mailbox) {
        let (sender, receiver) = mailbox::new(metrics, MAILBOX_SIZE);
        let (finalized, _) = watch::channel(None);
        let mailbox = Mailbox::new(
            sender,
            cfg.participants.clone(),
            cfg.votes.clone(),
            cfg.finalizations.clone(),
        );
        let actor = Self {
            cfg,
            mailbox: receiver,
            finalized,
            finalized_view: View::zero(),
            faults: FaultLog::default(),
        };
        (actor, mailbox)
    }

    /// Spawns the actor, its finalizer and its block tasks under `context`.
    pub(crate) fn start<E, R>(self, context: E, inputs: Inputs<R>) -> Handle<()>
    where
        E: Spawner + Clock + Metrics + CryptoRng,
        R: Receiver<PublicKey = PublicKey>,
    {
        context.spawn(move |context| self.run(context, inputs))
    }

    async fn run<E, R>(mut self, context: E, inputs: Inputs<R>)
    where
        E: Spawner + Clock + Metrics + CryptoRng,
        R: Receiver<PublicKey = PublicKey>,
    {
        // Held until the finalizer has drained, so a runtime `stop` waits for an in-flight
        // `Application::finalized` call instead of cancelling it.
        let hold = context.stopped();
        // Children of this task: they are aborted when the actor returns.
        let latest = self.finalized.subscribe();
        let app = self.cfg.app.clone();
        let finalizer = context
            .child("finalizer")
            .spawn(move |_| deliver_finalized(app, latest));
        let (app, votes) = (self.cfg.app.clone(), self.cfg.votes.clone());
        context
            .child("blocks")
            .spawn(move |clock| receive_blocks(app, inputs.blocks, votes, clock));
        let sender = self.cfg.request_sender.clone();
        let peers = self.cfg.peers.clone();
        context
            .child("block_requests")
            .spawn(move |_| fetch::send_requests(inputs.local_requests, sender, peers));
        let (app, sender) = (self.cfg.app.clone(), self.cfg.block_sender.clone());
        let max_bytes = self.cfg.max_block_bytes;
        context
            .child("block_server")
            .spawn(move |_| fetch::serve_requests(app, inputs.requests, sender, max_bytes));

        select_loop! {
            context,
            on_stopped => {
                debug!("runtime stopping, consensus driver exits");
            },
            Some(message) = self.mailbox.recv() else break => {
                self.handle(&context, message);
            },
        }
        // Closing the channel ends the finalizer once the newest finalization is delivered.
        drop(self.finalized);
        let mut finalizer = finalizer;
        select! {
            result = &mut finalizer => {
                if let Err(error) = result {
                    warn!(%error, "finalizer ended abnormally");
                }
            },
            _ = context.sleep(FINALIZER_DRAIN_MAX) => {
                // E.g. the application waits for a block while the network is already down.
                warn!(?FINALIZER_DRAIN_MAX, "finalization still running at shutdown, cancelled");
                finalizer.abort();
            },
        }
        drop(hold);
    }

    fn handle<E: Spawner + Clock + CryptoRng>(&mut self, context: &E, message: Message) {
        match message {
            Message::Propose {
                context: ctx,
                response,
            } => {
                let release_at = context.current() + self.cfg.block_interval;
                self.propose(context, ctx, release_at, response);
            }
            Message::Verify {
                context: ctx,
                payload,
                response,
            } => {
                self.verify(context, ctx, payload, response);
            }
            Message::Broadcast { payload, plan } => self.broadcast(context, payload, plan),
            Message::Seed(seed) => self.cfg.seeds.insert(seed),
            Message::Fault(fault) => self.fault(context, fault),
            Message::Finalized {
                view,
                payload,
                seed,
            } => {
                if let Some(seed) = seed {
                    self.cfg.seeds.insert(seed);
                }
                if view <= self.finalized_view {
                    // Replayed or out of order: an ancestor of what was already delivered.
                    return;
                }
                self.finalized_view = view;
                self.finalized.send_replace(Some(payload));
                debug!(view = view.get(), digest = %hex::encode(payload.0), "finalized");
            }
        }
    }

    /// Builds a block in a child task and releases its digest at `release_at`.
    fn propose<E: Spawner + Clock>(
        &self,
        context: &E,
        ctx: ConsensusContext,
        release_at: SystemTime,
        mut response: oneshot::Sender<Digest>,
    ) {
        let app = self.cfg.app.clone();
        let parent = ctx.parent.1;
        let view = ctx.round.view().get();
        context.child("propose").spawn(move |clock| async move {
            let built = select! {
                _ = response.closed() => None,
                built = app.propose(parent.0, view) => built,
            };
            let Some(digest) = built else {
                debug!(view, "proposal declined or abandoned");
                return;
            };
            select! {
                _ = response.closed() => {
                    debug!(view, "proposal abandoned while paced");
                },
                _ = clock.sleep_until(release_at) => {
                    let _ = response.send(Digest(digest));
                },
            }
        });
    }

    /// Asks the application for a verdict in a child task.
    fn verify<E: Spawner>(
        &self,
        context: &E,
        ctx: ConsensusContext,
        payload: Digest,
        mut response: oneshot::Sender<bool>,
    ) {
        let app = self.cfg.app.clone();
        let parent = ctx.parent.1;
        let view = ctx.round.view().get();
        context.child("verify").spawn(move |_| async move {
            select! {
                _ = response.closed() => {},
                valid = app.verify(parent.0, payload.0, view) => {
                    let _ = response.send(valid);
                },
            }
        });
    }

    /// Verifies a reported fault in a child task and hands it to the application if it is
    /// valid and new. De-duplicated after verification: an invalid report must not hide a
    /// valid one of the same (kind, offender, view).
    fn fault<E: Spawner + CryptoRng>(&self, context: &E, fault: Fault) {
        let (app, scheme, log) = (
            self.cfg.app.clone(),
            self.cfg.scheme.clone(),
            self.faults.clone(),
        );
        context.child("fault").spawn(move |mut rng| async move {
            if !check_fault(&mut rng, &scheme, &fault) {
                debug!(kind = ?fault.kind, view = fault.view, "reported fault does not verify");
                return;
            }
            if !log.first(&fault) {
                return;
            }
            warn!(
                kind = ?fault.kind,
                offender = %hex::encode(fault.offender),
                view = fault.view,
                "validator signed conflicting votes"
            );
            app.fault(fault).await;
        });
    }

    fn broadcast<E: Spawner>(&self, context: &E, payload: Digest, plan: Plan<PublicKey>) {
        if self.cfg.peers.is_empty() {
            return;
        }
        let recipients = match plan {
            // `prepare` is never answered with a staged candidate, so `Prepare` does not occur;
            // if it did, sending on both plans would only duplicate a message.
            Plan::Prepare { .. } | Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
        };
        let app = self.cfg.app.clone();
        let mut sender = self.cfg.block_sender.clone();
        let max_bytes = self.cfg.max_block_bytes as usize;
        context.child("broadcast").spawn(move |_| async move {
            let Some(bytes) = app.block_bytes(payload.0).await else {
                warn!(digest = %hex::encode(payload.0), "asked to broadcast an unknown block");
                return;
            };
            if bytes.len() > max_bytes {
                // The p2p layer panics on oversized payloads; peers could not accept it anyway.
                warn!(len = bytes.len(), max_bytes, "block too large to broadcast");
                return;
            }
            let sent = sender.send(recipients, bytes, false);
            debug!(peers = sent.len(), "block sent");
        });
    }
}

/// Hands the newest finalized digest to the application, one call at a time.
async fn deliver_finalized<A: Application>(app: A, mut latest: watch::Receiver<Option<Digest>>) {
    while latest.changed().await.is_ok() {
        let newest = *latest.borrow_and_update();
        if let Some(digest) = newest {
            app.finalized(digest.0).await;
        }
    }
}

/// Feeds blocks received from peers to the application, stamping each sender's activity.
async fn receive_blocks<A, R, C>(app: A, mut blocks: R, votes: VoteStats, clock: C)
where
    A: Application,
    R: Receiver<PublicKey = PublicKey>,
    C: Clock,
{
    loop {
        match blocks.recv().await {
            Ok((peer, bytes)) => {
                votes.record_block_message(&key_bytes(&peer), clock.current());
                app.receive_block(bytes.as_ref().to_vec()).await;
            }
            Err(error) => {
                info!(%error, "block channel closed");
                return;
            }
        }
    }
}
