//! Wiring: simplex engine, driver actor, p2p network and the process entry point.
//!
//! Owns: the p2p channel layout ([`CHANNEL_VOTES`] .. [`CHANNEL_BLOCK_REQUESTS`]), the simplex
//! [`Config`](commonware_consensus::simplex::Config) built from a [`ConsensusConfig`], the
//! supervision of the running parts, and [`run`]'s runtime and shutdown. Invariants: the config
//! is validated before anything is spawned; the actor starts before the engine; every part runs
//! under one supervising task, so the [`Handle`] returned by [`start`] or
//! [`start_with_channels`] resolves (and aborting it stops everything) when any part ends.

use super::{
    Application, ConsensusConfig, Digest, Validator,
    actor::{self, Actor},
    beacon::SeedCache,
    config::{
        MAILBOX_SIZE, NetworkProfile, PAGE_CACHE_PAGES, Prepared, REPLAY_BUFFER_BYTES,
        WRITE_BUFFER_BYTES,
    },
    direct::{Direct, DirectQueue, DirectSender, direct_channel, receive_direct, send_direct},
    error::ConsensusError,
    fault::key_bytes,
    fetch::{BlockRequester, BlockRequests, block_requests},
    gossip::{GossipQueue, TxGossip, receive_gossip, send_gossip, tx_gossip},
    stats::VoteStats,
};
use commonware_consensus::{
    simplex::{self, Engine, Floor, ForwardPolicy, SkipBudget, SkipPolicy, elector::RoundRobin},
    types::{Epoch, ViewDelta},
};
use commonware_cryptography::{ChaCha20Poly1305, Sha256, Signer as _, ed25519::PublicKey};
use commonware_macros::select;
use commonware_p2p::{
    AddressableManager as _, AddressableTrackedPeers, Blocker, Receiver, Sender,
    authenticated::{lookup, peer_set_limit},
    utils::mux::Muxer,
};
use commonware_parallel::Sequential;
use commonware_runtime::{
    BLOB_PAGE_SIZE, Clock, Handle, Metrics, Network, Quota, Resolver, Runner as _, Spawner,
    Storage, Supervisor as _,
    buffer::paged::{CacheRef, page_size},
    tokio,
};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NonZeroDuration, channel::watch};
use rand_core::CryptoRng;
use std::{error::Error as StdError, future::Future, sync::Arc, time::Duration};
use tracing::{error, info, warn};

/// p2p channel carrying individual votes.
pub const CHANNEL_VOTES: u64 = 0;
/// p2p channel carrying certificates (notarizations, nullifications, finalizations).
pub const CHANNEL_CERTIFICATES: u64 = 1;
/// p2p channel of the certificate resolver (requests and responses).
pub const CHANNEL_RESOLVER: u64 = 2;
/// p2p channel carrying encoded blocks ([`Application::block_bytes`] to
/// [`Application::receive_block`]): broadcasts of proposals and answers to block requests.
pub const CHANNEL_BLOCKS: u64 = 3;
/// p2p channel carrying block requests (see [`BlockRequester`]).
pub const CHANNEL_BLOCK_REQUESTS: u64 = 4;
/// p2p channel carrying gossiped transactions (see [`TxGossip`]); only between real
/// processes ([`start`]), not in [`start_with_channels`].
pub const CHANNEL_TXS: u64 = 5;
/// p2p channel carrying key-reshare messages between single peers (see [`DirectSender`]); only
/// between real processes ([`start`]).
pub const CHANNEL_DKG: u64 = 6;
/// p2p channel carrying catch-up requests and finalization certificates between single peers
/// (see [`LatestFinalization`](super::LatestFinalization)); only between real processes.
pub const CHANNEL_SYNC: u64 = 7;

/// How far a peer's handshake timestamp may run ahead of our clock.
const HANDSHAKE_SYNCHRONY_BOUND: Duration = Duration::from_secs(5);
/// Oldest handshake message accepted.
const HANDSHAKE_AGE_MAX: Duration = Duration::from_secs(10);
/// How long [`run`] waits for tasks to wind down after a shutdown request.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
// A finalization still running at shutdown is cancelled before `run` gives up waiting.
const _: () = assert!(actor::FINALIZER_DRAIN_MAX.as_secs() < SHUTDOWN_TIMEOUT.as_secs());
/// Delay before re-requesting a certificate after an unanswered fetch.
const FETCH_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The (sender, receiver) pairs consensus uses, one per channel.
pub struct Channels<S, R> {
    /// [`CHANNEL_VOTES`].
    pub votes: (S, R),
    /// [`CHANNEL_CERTIFICATES`].
    pub certificates: (S, R),
    /// [`CHANNEL_RESOLVER`].
    pub resolver: (S, R),
    /// [`CHANNEL_BLOCKS`].
    pub blocks: (S, R),
    /// [`CHANNEL_BLOCK_REQUESTS`].
    pub block_requests: (S, R),
}

/// Starts consensus over caller-provided p2p channels (for example commonware's simulated
/// network in a deterministic test) and returns the handle of the supervising task.
///
/// `blocker` is told about misbehaving peers (with `p2p::authenticated` it is the oracle).
/// Aborting the handle stops every part; starting again with the same storage (the journal
/// partition of `cfg`) resumes like a process restart.
pub fn start_with_channels<E, A, B, S, R>(
    context: E,
    cfg: &ConsensusConfig,
    app: A,
    links: Links,
    blocker: B,
    channels: Channels<S, R>,
) -> Result<Handle<()>, ConsensusError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    A: Application,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let prepared = cfg.prepare()?;
    Ok(context.spawn(move |context| drive(context, prepared, app, links, blocker, channels)))
}

/// What the driver shares with the application besides the application itself: the
/// consensus-side halves of the handles in [`NodeContext`].
pub struct Links {
    /// The other half of the application's [`BlockRequester`] (see [`block_requests`]).
    pub requests: BlockRequests,
    /// Receives the seed of every certificate.
    pub seeds: SeedCache,
    /// Receives every vote the engine sees and every block-channel arrival.
    pub votes: VoteStats,
    /// Transactions the application gossips; `None` gossips nothing (peers' gossip is still
    /// received).
    pub gossip: Option<GossipQueue>,
    /// Reshare messages the application sends; `None` sends nothing.
    pub dkg: Option<DirectQueue>,
    /// Catch-up messages the application sends; `None` sends nothing.
    pub sync: Option<DirectQueue>,
    /// Receives the newest finalization certificate the engine reports.
    pub finalizations: super::LatestFinalization,
}

impl Links {
    /// Fresh links and the requester that goes with them.
    pub fn new() -> (BlockRequester, Self) {
        let (requester, requests) = block_requests();
        let links = Self {
            requests,
            seeds: SeedCache::new(),
            votes: VoteStats::new(),
            gossip: None,
            dkg: None,
            sync: None,
            finalizations: super::LatestFinalization::new(),
        };
        (requester, links)
    }
}

/// Starts the p2p network (`p2p::authenticated::lookup`, one peer set with every validator)
/// and consensus inside an existing commonware runtime context; returns the handle of the
/// supervising task. Use [`run`] unless the runtime is already set up.
pub async fn start<E, A>(
    context: E,
    cfg: &ConsensusConfig,
    app: A,
    links: Links,
) -> Result<Handle<()>, ConsensusError>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng + Network + Resolver,
    A: Application,
{
    let prepared = cfg.prepare()?;
    // The p2p listener panics when it cannot bind; probe first to report a typed error.
    let probe = context
        .bind(cfg.listen)
        .await
        .map_err(|source| ConsensusError::Bind {
            addr: cfg.listen,
            source,
        })?;
    drop(probe);
    Ok(context.spawn(move |context| drive_networked(context, prepared, app, links)))
}

async fn drive_networked<E, A>(context: E, prepared: Prepared, app: A, links: Links)
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng + Network + Resolver,
    A: Application,
{
    let cfg = &prepared.cfg;
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: prepared.signer.clone(),
            synchrony_bound: HANDSHAKE_SYNCHRONY_BOUND,
            max_handshake_age: HANDSHAKE_AGE_MAX,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let me = prepared.signer.public_key();
    let max_peers = peer_set_limit(
        prepared
            .participants
            .iter()
            .chain(prepared.full_nodes.keys()),
        &me,
    );
    let namespace = cfg.p2p_namespace();
    let profile = match cfg.network {
        NetworkProfile::Local => lookup::Config::local,
        NetworkProfile::Production => lookup::Config::recommended,
    };
    let p2p_cfg = profile(
        handshake,
        &namespace,
        cfg.listen,
        max_peers,
        prepared.max_message_size,
        MAILBOX_SIZE,
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p_cfg);
    // Validators are primary peers (dialed); full nodes are secondary: accepted inbound and
    // sent broadcasts, but never dialed, so a full node reaches the set, not the other way.
    let tracked = AddressableTrackedPeers::new(prepared.peers.clone(), prepared.full_nodes.clone());
    if !oracle.track(0, tracked).accepted() {
        warn!("p2p oracle refused the validator set");
    }
    let quota = Quota::per_second(cfg.messages_per_second);
    // Consensus messages travel on the subchannel of their epoch: a peer still (or already)
    // in another epoch is not heard, instead of being blocked by the engine for an "epoch
    // mismatch", so nodes switching engines at slightly different times stay connected.
    // Blocks are not per epoch (a node catching up fetches them across epochs): subchannel 0.
    let epoch = cfg.epoch;
    let mut mux = |channel: u64, subchannel: u64| {
        let (sender, receiver) = network.register(channel, quota);
        let (muxer, handle) = Muxer::new(context.child("mux"), sender, receiver);
        muxer.start();
        (handle, subchannel)
    };
    let routes = [
        mux(CHANNEL_VOTES, epoch),
        mux(CHANNEL_CERTIFICATES, epoch),
        mux(CHANNEL_RESOLVER, epoch),
        mux(CHANNEL_BLOCKS, 0),
        mux(CHANNEL_BLOCK_REQUESTS, 0),
    ];
    let mut opened = Vec::with_capacity(routes.len());
    for (mut handle, subchannel) in routes {
        match handle.register(subchannel).await {
            Ok(pair) => opened.push(pair),
            Err(error) => return error!(%error, "cannot open a p2p subchannel"),
        }
    }
    let mut opened = opened.into_iter();
    let mut next = || opened.next().expect("five subchannels opened");
    let channels = Channels {
        votes: next(),
        certificates: next(),
        resolver: next(),
        blocks: next(),
        block_requests: next(),
    };
    let gossip_out = network.register(CHANNEL_TXS, quota);
    let mut links = links;
    if let Some(queue) = links.gossip.take() {
        let max_bytes = prepared.max_message_size as usize;
        context
            .child("gossip_send")
            .spawn(move |_| send_gossip(queue, gossip_out.0, max_bytes));
    }
    let gossip_app = app.clone();
    context
        .child("gossip_receive")
        .spawn(move |_| receive_gossip(gossip_app, gossip_out.1));
    let directs = [
        (CHANNEL_DKG, links.dkg.take(), Direct::Dkg),
        (CHANNEL_SYNC, links.sync.take(), Direct::Sync),
    ];
    for (channel, queue, kind) in directs {
        let (sender, receiver) = network.register(channel, quota);
        if let Some(queue) = queue {
            let max_bytes = prepared.max_message_size as usize;
            context
                .child("direct_send")
                .with_attribute("channel", channel)
                .spawn(move |_| send_direct(queue, sender, max_bytes));
        }
        let direct_app = app.clone();
        context
            .child("direct_receive")
            .with_attribute("channel", channel)
            .spawn(move |_| receive_direct(direct_app, receiver, kind));
    }
    let mut network_task = network.start();
    let mut consensus_task = context
        .child("consensus")
        .spawn(move |context| drive(context, prepared, app, links, oracle, channels));
    select! {
        result = &mut network_task => warn!(?result, "p2p network stopped"),
        result = &mut consensus_task => warn!(?result, "consensus stopped"),
    }
}

/// Runs the driver actor and the simplex engine until either stops.
async fn drive<E, A, B, S, R>(
    context: E,
    prepared: Prepared,
    app: A,
    links: Links,
    blocker: B,
    channels: Channels<S, R>,
) where
    E: Spawner + Clock + Storage + Metrics + CryptoRng,
    A: Application,
    B: Blocker<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let cfg = &prepared.cfg;
    let genesis = Digest(app.genesis());
    links
        .votes
        .install(prepared.participants.iter().map(key_bytes));
    let (actor, mailbox) = Actor::new(
        context.child("driver_mailbox"),
        actor::Config {
            app,
            block_interval: cfg.block_interval,
            max_block_bytes: cfg.max_block_bytes,
            block_sender: channels.blocks.0,
            request_sender: channels.block_requests.0,
            peers: prepared.peers(),
            seeds: links.seeds,
            votes: links.votes,
            scheme: prepared.scheme.clone(),
            participants: Arc::new(prepared.participants.clone()),
            finalizations: links.finalizations.clone(),
        },
    );
    let timeouts = cfg.timeouts;
    let skip = timeouts
        .skip
        .map_or(SkipPolicy::Disabled, |timeout| SkipPolicy::Enabled {
            timeout,
            budget: SkipBudget::Participants,
        });
    // Validated non-zero by `ConsensusConfig::prepare`.
    let fetch_timeout = NonZeroDuration::new(timeouts.fetch).expect("validated non-zero");
    let engine_cfg = simplex::Config {
        scheme: prepared.scheme.clone(),
        elector: RoundRobin::<Sha256>::default(),
        blocker,
        automaton: mailbox.clone(),
        relay: mailbox.clone(),
        reporter: mailbox,
        // Keep full votes until their view is pruned (`view_retention`), not only until the
        // view certifies: a conflicting vote arriving after the certificate is then still
        // reported as evidence instead of only blocking its sender. Costs one vote per
        // validator, phase and retained view.
        track_historical_votes: true,
        strategy: Sequential,
        partition: cfg.partition(),
        mailbox_size: MAILBOX_SIZE,
        epoch: Epoch::new(cfg.epoch),
        floor: Floor::Genesis(genesis),
        replay_buffer: REPLAY_BUFFER_BYTES,
        write_buffer: WRITE_BUFFER_BYTES,
        page_cache: CacheRef::new(page_size(BLOB_PAGE_SIZE), PAGE_CACHE_PAGES),
        leader_timeout: timeouts.leader,
        certification_timeout: timeouts.certification,
        timeout_retry: timeouts.nullify_retry,
        view_retention: ViewDelta::new(cfg.view_retention),
        skip,
        fetch_timeout,
        fetch_retry_delay: FETCH_RETRY_DELAY,
        // Send a certified block to every validator whose vote we did not see: it most likely
        // lacks the block, and this saves it a request.
        forward: ForwardPolicy::SilentVoters,
    };
    let engine = Engine::new(context.child("engine"), engine_cfg);
    // The actor must be receiving before the engine replays its journal and sends requests.
    let inputs = actor::Inputs {
        blocks: channels.blocks.1,
        requests: channels.block_requests.1,
        local_requests: links.requests,
    };
    let mut actor_task = actor.start(context.child("driver"), inputs);
    let mut engine_task = engine.start(channels.votes, channels.certificates, channels.resolver);
    info!(
        validators = prepared.participants.len(),
        full_nodes = prepared.full_nodes.len(),
        voting = cfg.is_validator(),
        epoch = cfg.epoch,
        "consensus started"
    );
    select! {
        result = &mut actor_task => warn!(?result, "consensus driver stopped"),
        result = &mut engine_task => warn!(?result, "simplex engine stopped"),
    }
}

/// A cloneable request to stop [`run`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    requested: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle nobody has triggered yet.
    pub fn new() -> Self {
        let (requested, _) = watch::channel(false);
        Self {
            requested: Arc::new(requested),
        }
    }

    /// Asks [`run`] to stop. Idempotent; callable from any thread or task.
    pub fn trigger(&self) {
        self.requested.send_replace(true);
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] has been called.
    pub async fn wait(&self) {
        let mut requested = self.requested.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = requested.wait_for(|requested| *requested).await;
    }
}

/// What [`run`] hands to the application factory.
pub struct NodeContext {
    /// A commonware runtime context (for supervised tasks, metrics via `Metrics::encode`, or
    /// timers). Plain `tokio::spawn` and `tokio::net` work as well: [`run`] executes on a tokio
    /// multi-thread runtime.
    pub runtime: tokio::Context,
    /// Triggers a graceful stop of [`run`] (e.g. from an admin endpoint or a test).
    pub shutdown: Shutdown,
    /// Asks peers for blocks the application lacks (a missed broadcast, or blocks finalized
    /// while this node was down); they arrive via [`Application::receive_block`].
    pub blocks: BlockRequester,
    /// The seeds consensus has certified, newest [`SEED_CACHE_VIEWS_MAX`] views; a proposer
    /// copies the ones its block should carry.
    ///
    /// [`SEED_CACHE_VIEWS_MAX`]: super::SEED_CACHE_VIEWS_MAX
    pub seeds: SeedCache,
    /// Votes and block-channel traffic seen per validator ([`VoteStats::snapshot`]).
    pub votes: VoteStats,
    /// The validator set (keys and addresses), as configured.
    pub validators: Vec<Validator>,
    /// This validator's ed25519 public key.
    pub public_key: [u8; 32],
    /// Gossips a transaction this node accepted to every other validator (they receive it in
    /// [`Application::receive_tx`]).
    pub txs: TxGossip,
    /// Sends key-reshare messages to single peers (they receive them in
    /// [`Application::receive_dkg`]).
    pub dkg: DirectSender,
    /// Sends catch-up messages to single peers (they receive them in
    /// [`Application::receive_sync`]).
    pub sync: DirectSender,
    /// The newest finalization certificate the engine reported (what this node answers a
    /// [`SYNC_REQUEST`](super::SYNC_REQUEST) with).
    pub finalizations: super::LatestFinalization,
}

/// Runs a validator until shutdown: builds commonware's tokio runtime (storage rooted at
/// `cfg.storage_dir`), calls `app_factory` inside it, then starts the p2p network and
/// consensus, and blocks the calling thread.
///
/// # Embedding
/// Call from a plain thread (a synchronous `main`), never from inside another tokio runtime:
/// the runner creates its own multi-thread runtime and blocks on it. Inside `app_factory` the
/// tokio runtime is current, so the caller may `tokio::spawn` its own tasks (an axum server on a
/// `tokio::net::TcpListener`, a mempool, ...). Those tasks are not supervised by commonware:
/// they are dropped when `run` returns.
///
/// # Stopping
/// `run` returns `Ok(())` after [`NodeContext::shutdown`] is triggered or, when
/// `cfg.stop_on_ctrl_c`, after Ctrl-C. It then signals every commonware task to stop and waits
/// up to [`SHUTDOWN_TIMEOUT`] for the journal to be closed. It returns
/// [`ConsensusError::Stopped`] if consensus ends on its own. A panic in any commonware task
/// propagates out of `run`.
pub fn run<A, F, Fut, Err>(cfg: ConsensusConfig, app_factory: F) -> Result<(), ConsensusError>
where
    A: Application,
    F: FnOnce(NodeContext) -> Fut,
    Fut: Future<Output = Result<A, Err>>,
    Err: Into<Box<dyn StdError + Send + Sync>>,
{
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.storage_dir).map_err(|source| ConsensusError::StorageDir {
        path: cfg.storage_dir.clone(),
        source,
    })?;
    let runtime_cfg = tokio::Config::new()
        .with_storage_directory(cfg.storage_dir.clone())
        .with_worker_threads(cfg.worker_threads);
    tokio::Runner::new(runtime_cfg).start(|context| async move {
        let shutdown = Shutdown::new();
        let (requester, mut links) = Links::new();
        let (txs, gossip) = tx_gossip();
        links.gossip = Some(gossip);
        let (dkg, dkg_queue) = direct_channel();
        links.dkg = Some(dkg_queue);
        let (sync, sync_queue) = direct_channel();
        links.sync = Some(sync_queue);
        let node = NodeContext {
            runtime: context.child("app"),
            shutdown: shutdown.clone(),
            blocks: requester,
            seeds: links.seeds.clone(),
            votes: links.votes.clone(),
            validators: cfg.validators.clone(),
            public_key: cfg.public_key(),
            txs,
            dkg,
            sync,
            finalizations: links.finalizations.clone(),
        };
        let app = app_factory(node)
            .await
            .map_err(|error| ConsensusError::Application(error.into()))?;
        let mut consensus = start(context.child("node"), &cfg, app, links).await?;
        let role = if cfg.is_validator() {
            "validator"
        } else {
            "full node"
        };
        info!(key = %hex::encode(cfg.public_key()), listen = %cfg.listen, role, "node running");
        let outcome = select! {
            _ = shutdown.wait() => Ok(()),
            _ = ctrl_c(cfg.stop_on_ctrl_c) => Ok(()),
            result = &mut consensus => {
                error!(?result, "consensus ended without a shutdown request");
                Err(ConsensusError::Stopped)
            },
        };
        info!("stopping validator");
        let stopped = context.stop(0, Some(SHUTDOWN_TIMEOUT)).await;
        outcome?;
        stopped.map_err(|_| ConsensusError::ShutdownTimeout(SHUTDOWN_TIMEOUT))
    })
}

/// Resolves on Ctrl-C or SIGTERM when `enabled`, never otherwise.
async fn ctrl_c(enabled: bool) {
    if enabled {
        // SIGTERM (service managers, `kill`) stops the node as gracefully as Ctrl-C.
        #[cfg(unix)]
        let terminate = async {
            match ::tokio::signal::unix::signal(::tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        ::tokio::select! {
            result = ::tokio::signal::ctrl_c() => match result {
                Ok(()) => {
                    info!("ctrl-c received");
                    return;
                }
                Err(error) => warn!(%error, "cannot listen for ctrl-c"),
            },
            () = terminate => {
                info!("SIGTERM received");
                return;
            }
        }
    }
    std::future::pending::<()>().await;
}
