//! Order blocks with commonware simplex: the consensus driver of a poi validator.
//!
//! Stability: ALPHA; the [`Application`] seam and [`ConsensusConfig`] may still change.
//! Uses only BETA commonware parts (simplex with the `bls12381_threshold::vrf` scheme,
//! `dkg::feldman_desmedt`'s dealer, ed25519 p2p identities, tokio runtime,
//! `p2p::authenticated`, `p2p::utils::mux`).
//!
//! # What this module owns
//! Consensus moves 32-byte block digests; the application owns blocks. The driver connects
//! the two: simplex calls a `Mailbox` (`ingress.rs`: its `Automaton`, `Relay` and `Reporter`),
//! which queues requests to an actor (`actor.rs`) that calls [`Application`] in per-request
//! tasks and ships block bytes over a fourth p2p channel ([`CHANNEL_BLOCKS`]). Blocks a node
//! missed (offline, or links not up yet) are fetched on the application's request
//! ([`BlockRequester`], `fetch.rs`, [`CHANNEL_BLOCK_REQUESTS`]). `engine.rs` wires simplex, the
//! actor and the p2p network; [`run`] is the process entry point.
//!
//! Votes the engine sees are counted per validator in [`VoteStats`] ([`NodeContext::votes`],
//! `stats.rs`); conflicting votes become verified [`Fault`] evidence for
//! [`Application::fault`] (`fault.rs`, which also argues which kinds are sound under the
//! threshold scheme).
//!
//! A node runs one engine for one consensus epoch: a signer generation of the threshold key
//! ([`ConsensusConfig::epoch`]). A validator votes with its share ([`Role::Validator`]); a
//! full node verifies with the public polynomial alone ([`Role::FullNode`]) and is a secondary
//! p2p peer ([`ConsensusConfig::full_nodes`]). Consensus messages travel on the p2p
//! subchannel of their epoch, so peers in another epoch are not heard (rather than blocked);
//! the reshare between generations talks on [`CHANNEL_DKG`], and a node left behind in an
//! older epoch catches up through a peer's newest finalization on [`CHANNEL_SYNC`]
//! ([`LatestFinalization`], [`verify_finalization`]). Switching engines is the application's
//! job (`service.rs` restarts [`run`] with the next epoch's config).
//!
//! Votes are threshold BLS signatures ([`beacon`]): every certificate carries the seed of its
//! round, which the driver records in a [`SeedCache`] ([`NodeContext::seeds`]) for proposers
//! to put into blocks. Each validator needs its share of a dealt group key
//! ([`ConsensusConfig::role`], from [`beacon::deal`]).
//!
//! One validator is the default ([`ConsensusConfig::single`]): quorum 1, each block
//! notarizes and finalizes locally. N validators is the same code with a longer
//! [`ConsensusConfig::validators`] list (every validator lists the same set); the tests run
//! four validators over loopback, one of them joining late and fetching the blocks it missed.
//! `tests/sim` (feature `sim`, run by `.ci/sim`) drives four validators through
//! [`start_with_channels`] on commonware's deterministic runtime and simulated network:
//! crash and restart, a 2|2 partition, slow lossy links and an equivocating validator.
//!
//! # Invariants
//! - A digest returned by [`Application::propose`] names a block the application has
//!   persisted; after a restart simplex may build on it or ask to verify it again.
//! - Proposals are paced: a digest is released no earlier than
//!   [`ConsensusConfig::block_interval`] after simplex asked for it; the actor never sleeps.
//! - [`Application::verify`] answers are permanent; "not yet known" means keep waiting.
//! - Every certificate the engine reports puts its round's seed into the [`SeedCache`] before
//!   any later request is handled (one mailbox, in order).
//! - Finality is only what the engine reports as a finalization. [`Application::finalized`] is
//!   called one call at a time, with strictly increasing views within a run; it may skip
//!   heights and repeat after a restart, so the application walks parents and is idempotent.
//! - The consensus journal under [`ConsensusConfig::storage_dir`] must survive restarts:
//!   it holds this validator's votes, and losing it risks signing conflicting votes.
//!
//! # Example
//! ```no_run
//! use poi_node::consensus::{ConsensusConfig, run, validator_public_key};
//! # use poi_node::consensus::{Application, BlockDigest};
//! # #[derive(Clone)] struct MyApp;
//! # impl MyApp { async fn open() -> Result<Self, std::io::Error> { Ok(Self) } }
//! # impl Application for MyApp {
//! #     fn genesis(&self) -> BlockDigest { [0; 32] }
//! #     async fn propose(&self, _: BlockDigest, _: u64) -> Option<BlockDigest> { None }
//! #     async fn verify(&self, _: BlockDigest, _: BlockDigest, _: u64) -> bool { false }
//! #     async fn block_bytes(&self, _: BlockDigest) -> Option<Vec<u8>> { None }
//! #     async fn receive_block(&self, _: Vec<u8>) {}
//! #     async fn finalized(&self, _: BlockDigest) {}
//! # }
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let listen = "127.0.0.1:7400".parse()?;
//!     let seed = [7; 32]; // keep secret: this validator's ed25519 seed
//!     // Keep secret too, and keep it: a share of the group key, dealt once per validator set.
//!     let beacon = poi_node::consensus::beacon::deal(&[validator_public_key(&seed)])?.remove(0);
//!     let ns = b"poi-devnet".to_vec();
//!     let cfg = ConsensusConfig::single("./data/consensus", seed, beacon, listen, ns);
//!     // Blocks this thread until Ctrl-C (or `node.shutdown.trigger()`).
//!     run(cfg, |node| async move {
//!         let app = MyApp::open().await?;
//!         // The tokio runtime is current here: spawn the HTTP API beside consensus.
//!         tokio::spawn(async move {
//!             let _listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await;
//!             // axum::serve(listener, router).await
//!         });
//!         let _stop = node.shutdown.clone();
//!         Ok::<_, std::io::Error>(app)
//!     })?;
//!     Ok(())
//! }
//! ```

mod actor;
pub mod beacon;
mod config;
mod direct;
mod engine;
mod error;
mod fault;
mod fetch;
mod gossip;
mod ingress;
mod stats;
mod sync;
#[cfg(test)]
mod tests;

pub use beacon::{BeaconKey, BeaconPublic, CertifiedSeed, SEED_CACHE_VIEWS_MAX, SeedCache};
pub use config::{
    BLOCK_INTERVAL_DEFAULT, ConsensusConfig, JOURNAL_PREFIX_DEFAULT, MAX_BLOCK_BYTES_DEFAULT,
    NetworkProfile, Role, Timeouts, VALIDATORS_MAX, Validator, consensus_namespace,
    validator_public_key,
};
pub use direct::{DIRECT_QUEUED_MAX, DirectQueue, DirectSender, direct_channel};
pub use engine::{
    CHANNEL_BLOCK_REQUESTS, CHANNEL_BLOCKS, CHANNEL_CERTIFICATES, CHANNEL_DKG, CHANNEL_RESOLVER,
    CHANNEL_SYNC, CHANNEL_TXS, CHANNEL_VOTES, Channels, Links, NodeContext, SHUTDOWN_TIMEOUT,
    Shutdown, run, start, start_with_channels,
};
pub use error::{BeaconKeyError, ConfigError, ConsensusError};
pub use fault::{FAULTS_REMEMBERED_MAX, Fault, FaultKind, verify_fault};
pub use fetch::{BLOCK_REQUESTS_QUEUED_MAX, BlockRequester, BlockRequests, block_requests};
pub use gossip::{GOSSIP_BATCH_TXS_MAX, GOSSIP_QUEUED_MAX, GossipQueue, TxGossip, tx_gossip};
pub use stats::{ParticipantActivity, VoteStats};
pub use sync::{
    LatestFinalization, SYNC_REQUEST, SYNC_RESPONSE, VerifiedFinalization, verify_finalization,
};

use std::future::Future;

/// 32-byte block hash, used as the consensus payload.
pub type BlockDigest = [u8; 32];

/// The digest type simplex orders: a [`BlockDigest`] in commonware's sha256 digest wrapper
/// (only the 32 bytes matter; they need not be a sha256 hash).
pub(crate) use commonware_cryptography::sha256::Digest;

/// The application that builds, stores and executes blocks; consensus only orders digests.
///
/// Every method may be called concurrently with the others (each request runs in its own
/// task). A future returned by `propose` or `verify` is dropped (cancelled) when consensus
/// abandons the request, so both must be cancellation-safe.
pub trait Application: Clone + Send + Sync + 'static {
    /// Digest of the genesis block: the parent of the first proposal (the consensus floor).
    fn genesis(&self) -> BlockDigest;

    /// Builds a block on `parent` for consensus view `view`, persists it, and returns its
    /// digest, or `None` to decline (the view is then skipped). May wait, e.g. until `parent`
    /// is executed. The same view may be proposed again after a restart.
    fn propose(
        &self,
        parent: BlockDigest,
        view: u64,
    ) -> impl Future<Output = Option<BlockDigest>> + Send;

    /// Permanent verdict on block `digest`, proposed by another validator on `parent` for
    /// consensus view `view` (a block must name the view it was proposed in).
    /// Returns `false` only if the block is invalid forever; while the block (delivered via
    /// [`Application::receive_block`]) or its parent is missing, keep waiting, and after a
    /// short wait ask peers for it with [`BlockRequester`] ([`NodeContext::blocks`]).
    fn verify(
        &self,
        parent: BlockDigest,
        digest: BlockDigest,
        view: u64,
    ) -> impl Future<Output = bool> + Send;

    /// Encoded bytes of a block this node holds, to send to peers.
    fn block_bytes(&self, digest: BlockDigest) -> impl Future<Output = Option<Vec<u8>>> + Send;

    /// Bytes of a block received from a peer (unauthenticated content: validate it).
    fn receive_block(&self, bytes: Vec<u8>) -> impl Future<Output = ()> + Send;

    /// `digest` is finalized, and so are all its ancestors. Calls never overlap and their views
    /// increase within a run; heights may be skipped (walk parents back to the last finalized
    /// block, requesting missing ones with [`BlockRequester`]) and a digest may be reported
    /// again after a restart (be idempotent). The next call waits for this one, so a slow
    /// call delays (and coalesces) later finalizations but never consensus itself. On shutdown
    /// an in-flight call gets 5 s to finish, then it is cancelled: commit atomically.
    fn finalized(&self, digest: BlockDigest) -> impl Future<Output = ()> + Send;

    /// Verified evidence that a validator signed conflicting votes (see [`Fault`] for which
    /// kinds are sound slashing evidence). Called at most once per (kind, offender, view) in a
    /// run, in its own task, so a slow call delays nothing else; it may be called again for
    /// the same fault after a restart. The default ignores it.
    fn fault(&self, fault: Fault) -> impl Future<Output = ()> + Send {
        let _ = fault;
        async {}
    }

    /// Bytes of a transaction a peer gossiped ([`NodeContext::txs`] on its side):
    /// unauthenticated, so admit it with every check a submitted one gets, and do not gossip
    /// it again. The default ignores it.
    fn receive_tx(&self, tx: Vec<u8>) -> impl Future<Output = ()> + Send {
        let _ = tx;
        async {}
    }

    /// A key-reshare message from the peer with ed25519 key `from` ([`NodeContext::dkg`] on
    /// its side): the sender is authenticated, the content is not. The default ignores it.
    fn receive_dkg(&self, from: [u8; 32], bytes: Vec<u8>) -> impl Future<Output = ()> + Send {
        let _ = (from, bytes);
        async {}
    }

    /// A catch-up message ([`SYNC_REQUEST`] or [`SYNC_RESPONSE`]) from the peer with key
    /// `from`, on [`CHANNEL_SYNC`] ([`NodeContext::sync`] on its side). The default ignores
    /// it.
    fn receive_sync(&self, from: [u8; 32], bytes: Vec<u8>) -> impl Future<Output = ()> + Send {
        let _ = (from, bytes);
        async {}
    }
}
