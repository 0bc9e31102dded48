//! Running a node: the ledger, consensus and the API in one process.
//!
//! [`run`] blocks the calling thread (a plain `main`, not inside a tokio runtime) until Ctrl-C or
//! a halt. Consensus reaches the ledger through [`LedgerApp`], which waits for a block's parent
//! to be committed before building or verifying on it and runs block execution off the async
//! threads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use poi_core::Address;
use poi_store::Committed;

use crate::consensus::{
    self, Application, BeaconKey, BeaconPublic, BlockDigest, BlockRequester, ConsensusConfig, Role,
    SeedCache, Shutdown, Validator,
};
use crate::error::{NodeError, Result};
use crate::home::{Home, NodeConfig};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::reshare::{ReshareOutput, Resharer};

/// How long a proposal or verification waits for its parent to be committed before treating the
/// parent as a block that is not final (normally finalization lands within milliseconds). Below
/// the consensus leader timeout, so a proposal is still made in time.
pub const PARENT_WAIT_MAX: Duration = Duration::from_millis(300);

/// How long the tip may stand still before the node asks its peers for their newest
/// finalization (they may run a later consensus epoch).
pub const SYNC_STALL: Duration = Duration::from_secs(3);

/// How often the resharer re-sends dealings that were not acknowledged.
pub const RESHARE_TICK: Duration = Duration::from_secs(1);

/// How long a catching-up node waits for a requested block before asking the next peer.
pub const BLOCK_FETCH_RETRY: Duration = Duration::from_millis(500);

/// Consensus' view of the ledger.
#[derive(Clone)]
pub struct LedgerApp {
    ledger: Arc<Ledger>,
    proposer: Address,
    genesis: BlockDigest,
    seeds: SeedCache,
    blocks: BlockRequester,
    shutdown: Shutdown,
    halted: Arc<Mutex<Option<String>>>,
    /// Signs the evidence transactions this validator submits (its node key); none: faults
    /// are only logged.
    evidence_signer: Option<Arc<ed25519_dalek::SigningKey>>,
    /// The signer generation (consensus epoch) the engine runs.
    generation: u64,
    /// Chain view of the engine's floor block: blocks carry `view_offset + engine view`.
    view_offset: u64,
    /// Set to the next generation (and the node shut down) once a committed block records it.
    switch: Arc<Mutex<Option<u64>>>,
    /// Serializes [`LedgerApp::after_commit`]: a share the resharer is still writing must be
    /// on disk before another commit's check stops consensus for the switch.
    after_commit_lock: Arc<Mutex<()>>,
    /// This node's part in resharing the consensus key, with where it sends and persists.
    reshare: Option<ReshareLink>,
    /// Catching up across engine switches (see `consensus::LatestFinalization`).
    sync: Option<SyncLink>,
}

/// What [`LedgerApp`] needs to catch up with peers that run a later consensus epoch.
#[derive(Clone)]
struct SyncLink {
    sender: consensus::DirectSender,
    finalizations: consensus::LatestFinalization,
    /// Every other node this node knows (validators and full nodes).
    peers: Vec<[u8; 32]>,
    identity: [u8; consensus::beacon::IDENTITY_BYTES],
    namespace: Vec<u8>,
    /// Whether a catch-up to a peer's finalization is running.
    busy: Arc<std::sync::atomic::AtomicBool>,
}

/// What [`LedgerApp`] needs to run this node's [`Resharer`].
#[derive(Clone)]
struct ReshareLink {
    resharer: Arc<Mutex<Resharer>>,
    dkg: consensus::DirectSender,
    home: Home,
}

/// Whether the engine may build on (or vote for a child of) a parent block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extend {
    /// Yes: the parent is within this engine's generation.
    Yes,
    /// No: the parent recorded the next generation; only that generation's engine extends it.
    No,
    /// Not yet known: the parent ends a chain epoch (where a generation may be recorded) and
    /// is not committed yet.
    Wait,
}

impl LedgerApp {
    /// Wraps `ledger`; `proposer` is this validator's address; `seeds` is the consensus
    /// driver's seed cache ([`consensus::NodeContext::seeds`]), which proposals draw from;
    /// `blocks` asks peers for finalized blocks this node missed.
    pub fn new(
        ledger: Arc<Ledger>,
        proposer: Address,
        seeds: SeedCache,
        blocks: BlockRequester,
        shutdown: Shutdown,
    ) -> Result<Self> {
        let genesis = ledger
            .block(0)?
            .ok_or_else(|| NodeError::Corrupt("genesis block missing".into()))?
            .block
            .hash();
        Ok(Self {
            ledger,
            proposer,
            genesis,
            seeds,
            blocks,
            shutdown,
            halted: Arc::new(Mutex::new(None)),
            evidence_signer: None,
            generation: 0,
            view_offset: 0,
            switch: Arc::new(Mutex::new(None)),
            after_commit_lock: Arc::new(Mutex::new(())),
            reshare: None,
            sync: None,
        })
    }

    /// Answers peers' catch-up requests with `finalizations` and, when this node's tip stops
    /// moving, asks `peers` for theirs (sent with `sender`); a verified certificate of a later
    /// epoch (checked under group key `identity` and consensus `namespace`) is committed with
    /// every block up to it, which switches this node's engine to that epoch.
    pub fn with_sync(
        mut self,
        sender: consensus::DirectSender,
        finalizations: consensus::LatestFinalization,
        peers: Vec<[u8; 32]>,
        identity: [u8; consensus::beacon::IDENTITY_BYTES],
        namespace: Vec<u8>,
    ) -> Self {
        self.sync = Some(SyncLink {
            sender,
            finalizations,
            peers,
            identity,
            namespace,
            busy: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        });
        self
    }

    /// Asks every known peer for its newest finalization (the node's tip has not moved).
    pub fn request_sync(&self) {
        let Some(link) = &self.sync else {
            return;
        };
        for peer in &link.peers {
            link.sender.send(*peer, vec![consensus::SYNC_REQUEST]);
        }
    }

    /// Takes part in key reshares: `resharer` is fed every commit, every DKG message and a
    /// periodic tick; its messages go out on `dkg`; its journal and new shares are written
    /// into `home`.
    pub fn with_resharer(
        mut self,
        resharer: Resharer,
        dkg: consensus::DirectSender,
        home: Home,
    ) -> Self {
        self.reshare = Some(ReshareLink {
            resharer: Arc::new(Mutex::new(resharer)),
            dkg,
            home,
        });
        self
    }

    /// Feeds the resharer (under its lock) and carries out what it asks, in order.
    fn reshare_step(&self, step: impl FnOnce(&mut Resharer) -> Vec<ReshareOutput>) {
        let Some(link) = &self.reshare else {
            return;
        };
        let outputs = {
            let mut resharer = link.resharer.lock().unwrap_or_else(|p| p.into_inner());
            step(&mut resharer)
        };
        for output in outputs {
            match output {
                ReshareOutput::Persist { journal } => {
                    // Persisting before acknowledging is the protocol's safety rule: stop here
                    // if it fails (the dealer re-sends; nothing was acknowledged).
                    if let Err(error) = link.home.write_reshare_journal(&journal) {
                        tracing::error!(%error, "cannot persist the reshare journal");
                        return;
                    }
                }
                ReshareOutput::Send { to, bytes } => {
                    if !link.dkg.send(to, bytes) {
                        tracing::debug!(to = %hex::encode(to), "DKG queue full; the tick resends");
                    }
                }
                ReshareOutput::PostLog { round, log } => {
                    let msg = poi_core::tx::Msg::Validators(
                        poi_core::validators::ValidatorsMsg::ReshareLog { round, log },
                    );
                    let submitted = self
                        .ledger
                        .snapshot()
                        .and_then(|state| self.submit_own(&state, msg));
                    match submitted {
                        Ok(Some(hash)) => {
                            tracing::info!(round, tx = %hash, "posted the dealer log")
                        }
                        Ok(None) => tracing::warn!(round, "dealer log not posted"),
                        Err(error) => tracing::warn!(round, %error, "cannot post the dealer log"),
                    }
                }
                ReshareOutput::Share {
                    generation,
                    polynomial,
                    share,
                } => {
                    if let Err(error) = BeaconKey::from_bytes(&polynomial, &share) {
                        tracing::error!(generation, %error, "the reshare produced an unusable share");
                        continue;
                    }
                    match link.home.write_generation_share(generation, &share) {
                        Ok(()) => {
                            tracing::info!(generation, "received a share of the next generation")
                        }
                        Err(error) => {
                            tracing::error!(generation, %error, "cannot write the new share")
                        }
                    }
                }
            }
        }
    }

    /// The resharer's periodic step (re-sends unacknowledged dealings).
    pub fn reshare_tick(&self) {
        self.reshare_step(|resharer| resharer.on_tick());
    }

    /// Runs the engine of signer generation `generation`, whose floor is block `floor` at
    /// chain view `view_offset`; `switch` receives the next generation when a committed block
    /// records it (the node then stops so that its engine can start).
    pub fn with_generation(
        mut self,
        generation: u64,
        floor: BlockDigest,
        view_offset: u64,
        switch: Arc<Mutex<Option<u64>>>,
    ) -> Self {
        self.generation = generation;
        self.genesis = floor;
        self.view_offset = view_offset;
        self.switch = switch;
        self
    }

    /// The chain view of engine view `view`.
    fn chain_view(&self, view: u64) -> Option<u64> {
        self.view_offset.checked_add(view)
    }

    /// Whether this generation's engine may extend `parent` (see [`Extend`]).
    fn extend(&self, parent: &BlockDigest) -> Result<Extend> {
        // The head's state includes a commit still in flight: the generation it records is
        // known as soon as the block is final, before it is durable.
        let view = self.ledger.head_view()?;
        if view.head().block_hash == *parent {
            let current = poi_core::validators::reshare::current_generation_number(&view)
                .map_err(|e| NodeError::Corrupt(e.to_string()))?;
            return Ok(if current == self.generation {
                Extend::Yes
            } else {
                Extend::No
            });
        }
        if self.ledger.store().height_by_block_hash(parent)?.is_some() {
            // An older committed block: building or voting on it is refused elsewhere.
            return Ok(Extend::Yes);
        }
        let epoch_blocks = self.ledger.params()?.rewards.epoch_blocks;
        match self.ledger.known_height(parent) {
            Some(height) if poi_core::rewards::ending_epoch(height, epoch_blocks).is_some() => {
                Ok(Extend::Wait)
            }
            _ => Ok(Extend::Yes),
        }
    }

    /// After a block landed: records a switch (and stops the node) if it recorded the next
    /// signer generation.
    fn after_commit(&self) {
        let _serial = self
            .after_commit_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let state = match self.ledger.snapshot() {
            Ok(state) => state,
            Err(error) => return tracing::warn!(%error, "cannot read committed state"),
        };
        // Before any switch: a share the next generation needs is written here.
        let height = self.ledger.tip().height;
        self.reshare_step(|resharer| resharer.on_commit(&state, height));
        let current = match poi_core::validators::reshare::current_generation_number(&state) {
            Ok(current) => current,
            Err(error) => return tracing::warn!(%error, "cannot read the signer generation"),
        };
        if current > self.generation {
            let mut switch = self.switch.lock().unwrap_or_else(|p| p.into_inner());
            if switch.is_none() {
                tracing::info!(
                    from = self.generation,
                    to = current,
                    "a finalized block recorded the next signer generation; restarting consensus"
                );
                *switch = Some(current);
                self.shutdown.trigger();
            }
        }
    }

    /// Submits the convicting faults consensus reports as evidence transactions signed with
    /// `seed` (this validator's node key, which pays their fee).
    pub fn with_evidence_signer(mut self, seed: [u8; 32]) -> Self {
        self.evidence_signer = Some(Arc::new(ed25519_dalek::SigningKey::from_bytes(&seed)));
        self
    }

    /// Turns a verified fault into a `ValidatorsMsg::Evidence` transaction in the mempool
    /// (gossiped), unless the chain would not convict on it or already has.
    fn submit_evidence(&self, fault: &consensus::Fault) -> Result<Option<String>> {
        use poi_core::validators::{self, EvidenceKind, ValidatorError, ValidatorsMsg};
        if self.evidence_signer.is_none() {
            return Ok(None);
        }
        let kind = match fault.kind {
            consensus::FaultKind::ConflictingNotarize => EvidenceKind::ConflictingNotarize,
            consensus::FaultKind::ConflictingFinalize => EvidenceKind::ConflictingFinalize,
            consensus::FaultKind::NullifyFinalize => EvidenceKind::NullifyFinalize,
        };
        let bytes = validators::encode_evidence(kind, &fault.encoded);
        let state = self.ledger.snapshot()?;
        match validators::evidence::verify_in(&state, &bytes) {
            Ok(_) => {}
            // Not every verified fault convicts (see validators::evidence): keep it in the log.
            Err(poi_core::error::TxError::Validator(ValidatorError::NotSlashable(why))) => {
                tracing::info!(view = fault.view, offender = %hex::encode(fault.offender), why, "fault not slashable");
                return Ok(None);
            }
            Err(error) => {
                tracing::warn!(%error, "the chain refuses a fault consensus verified");
                return Ok(None);
            }
        }
        self.submit_own(
            &state,
            poi_core::tx::Msg::Validators(ValidatorsMsg::Evidence { bytes }),
        )
    }

    /// Signs `msg` with this validator's node key (it pays the minimum fee) and submits it
    /// (gossiped); `None` when it has no key or the mempool refuses it (logged).
    fn submit_own(
        &self,
        state: &dyn poi_core::state::StateReader,
        msg: poi_core::tx::Msg,
    ) -> Result<Option<String>> {
        let Some(key) = &self.evidence_signer else {
            return Ok(None);
        };
        let signer = Address(key.verifying_key().to_bytes());
        let committed = poi_core::bank::account(state, &signer)
            .map_err(|e| NodeError::Corrupt(e.to_string()))?
            .map_or(0, |account| account.nonce);
        let params = self.ledger.params()?;
        let mut body = poi_core::tx::TxBody {
            chain_id: self.ledger.genesis().chain_id.clone(),
            signer,
            nonce: self.ledger.next_nonce(&signer, committed),
            fee: 0,
            msg,
        };
        body.fee = params.min_fee(body.clone().sign(key).encoded_len());
        let tx = body.sign(key);
        match self.ledger.submit_and_gossip(&tx.encode()) {
            Ok(hash) => Ok(Some(hex::encode(hash))),
            Err(error) => {
                tracing::info!(%error, "own transaction not admitted");
                Ok(None)
            }
        }
    }

    /// Waits until `parent` is the head (finalized; its commit may still be running). False if
    /// it never will be (an older block) or it takes longer than [`PARENT_WAIT_MAX`].
    async fn parent_is_head(&self, parent: BlockDigest) -> bool {
        let mut tip = self.ledger.watch_head();
        let wait = async {
            loop {
                let current: Committed = *tip.borrow_and_update();
                if current.block_hash == parent {
                    return true;
                }
                if self
                    .ledger
                    .store()
                    .height_by_block_hash(&parent)
                    .ok()
                    .flatten()
                    .is_some()
                {
                    return false;
                }
                if tip.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(PARENT_WAIT_MAX, wait)
            .await
            .unwrap_or(false)
    }

    /// Whether `parent` is unknown to the store: this node has not committed it (it is
    /// behind), as opposed to a parent that was committed and then built past.
    fn behind(&self, parent: BlockDigest) -> bool {
        self.ledger
            .store()
            .height_by_block_hash(&parent)
            .ok()
            .flatten()
            .is_none()
    }

    /// Commits finalized block `digest`, fetching from peers any ancestors this node lacks
    /// (it was down or its links were not up). Returns once the commit has started, or
    /// `Err` on a fault; gives up quietly on shutdown.
    async fn commit_fetching(&self, digest: BlockDigest) -> Result<()> {
        let network = Arc::clone(self.ledger.network());
        let mut fetched = 0u64;
        let mut requested: Option<(BlockDigest, tokio::time::Instant)> = None;
        loop {
            let ledger = Arc::clone(&self.ledger);
            let attempt =
                tokio::task::spawn_blocking(move || ledger.finalize_in_background(&digest))
                    .await
                    .map_err(|e| NodeError::Halt(format!("commit panicked: {e}")))?;
            let missing = match attempt {
                Ok(()) => {
                    if fetched > 0 {
                        network.synced_blocks(fetched);
                        network.set_syncing(false);
                        tracing::info!(blocks = fetched, "caught up with fetched blocks");
                    }
                    return Ok(());
                }
                Err(NodeError::UnknownBlock(hash)) => parse_digest(&hash)?,
                Err(error) => return Err(error),
            };
            if self.shutdown.is_triggered() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            let due = match requested {
                Some((hash, at)) => hash != missing || now >= at + BLOCK_FETCH_RETRY,
                None => true,
            };
            if due {
                if requested.is_none_or(|(hash, _)| hash != missing) {
                    fetched += 1;
                }
                network.set_syncing(true);
                network.requested_block();
                if !self.blocks.request(missing) {
                    tracing::debug!("block request queue full; retrying");
                }
                requested = Some((missing, now));
            }
            // Requests are answered within milliseconds on a healthy link.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn halt(&self, reason: String) {
        tracing::error!(%reason, "halting node");
        let mut halted = self.halted.lock().unwrap_or_else(|p| p.into_inner());
        halted.get_or_insert(reason);
        self.shutdown.trigger();
    }
}

impl Application for LedgerApp {
    fn genesis(&self) -> BlockDigest {
        self.genesis
    }

    async fn propose(&self, parent: BlockDigest, view: u64) -> Option<BlockDigest> {
        let parent_is_head = self.parent_is_head(parent).await;
        match self.extend(&parent) {
            Ok(Extend::Yes) => {}
            Ok(verdict) => {
                tracing::debug!(
                    view,
                    ?verdict,
                    "declining: the parent may end this generation"
                );
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot check the parent's generation");
                return None;
            }
        }
        let view = self.chain_view(view)?;
        if !parent_is_head {
            let committed = self
                .ledger
                .store()
                .height_by_block_hash(&parent)
                .ok()
                .flatten();
            if committed.is_some() {
                tracing::debug!(view, parent = %hex::encode(parent), "declining: stale parent");
                return None;
            }
            // Not final yet (e.g. notarized just before a crash): build_block makes an empty child.
        }
        let ledger = Arc::clone(&self.ledger);
        let (proposer, seeds) = (self.proposer, self.seeds.clone());
        let build = move || ledger.build_block_with_seeds(parent, proposer, view, &seeds);
        match tokio::task::spawn_blocking(build).await {
            Ok(Ok(hash)) => Some(hash),
            Ok(Err(error)) => {
                tracing::warn!(view, %error, "cannot build a block");
                None
            }
            Err(error) => {
                self.halt(format!("block builder panicked: {error}"));
                None
            }
        }
    }

    async fn verify(&self, parent: BlockDigest, digest: BlockDigest, view: u64) -> bool {
        // A block on a parent that is not final yet is checked by verify_block (only an empty
        // block can be); one on an older committed block is refused there.
        let _ = self.parent_is_head(parent).await;
        let Some(view) = self.chain_view(view) else {
            return false;
        };
        let ledger = Arc::clone(&self.ledger);
        loop {
            match self.extend(&parent) {
                Ok(Extend::Yes) => {}
                Ok(Extend::No) => return false,
                Ok(Extend::Wait) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot check the parent's generation");
                    return false;
                }
            }
            let ledger = Arc::clone(&ledger);
            match tokio::task::spawn_blocking(move || ledger.verify_block(&digest, view)).await {
                Ok(Ok(valid)) => return valid,
                Ok(Err(NodeError::UnknownBlock(_))) => {
                    // The block's bytes have not arrived yet; consensus cancels us if it gives up.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(NodeError::NotOnTip { .. })) if self.behind(parent) => {
                    // We are catching up (the parent is neither committed nor built on our
                    // head yet): not a verdict; wait for the commits.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(NodeError::Halt(reason))) => {
                    self.halt(reason);
                    return false;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "cannot verify block");
                    return false;
                }
                Err(error) => {
                    self.halt(format!("block verifier panicked: {error}"));
                    return false;
                }
            }
        }
    }

    async fn receive_sync(&self, from: [u8; 32], bytes: Vec<u8>) {
        let Some(link) = &self.sync else {
            return;
        };
        if bytes == [consensus::SYNC_REQUEST] {
            if let Some(response) = link.finalizations.response() {
                link.sender.send(from, response);
            }
            return;
        }
        let Some(verified) =
            consensus::verify_finalization(&bytes, &link.namespace, &link.identity)
        else {
            tracing::debug!(from = %hex::encode(from), "ignoring an unverifiable sync response");
            return;
        };
        // Only a later epoch needs this path: within ours, the engine delivers finalizations.
        if verified.epoch <= self.generation
            || link.busy.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tracing::info!(
            epoch = verified.epoch,
            view = verified.view,
            block = %hex::encode(verified.digest),
            "a peer runs a later consensus epoch; catching up to its finalized block"
        );
        self.finalized(verified.digest).await;
        link.busy.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    async fn receive_dkg(&self, from: [u8; 32], bytes: Vec<u8>) {
        self.reshare_step(|resharer| resharer.on_message(from, &bytes));
    }

    async fn fault(&self, fault: consensus::Fault) {
        tracing::warn!(
            kind = ?fault.kind,
            offender = %hex::encode(fault.offender),
            view = fault.view,
            "a validator signed conflicting votes"
        );
        let app = self.clone();
        let submitted = tokio::task::spawn_blocking(move || app.submit_evidence(&fault)).await;
        match submitted {
            Ok(Ok(Some(hash))) => tracing::warn!(tx = %hash, "submitted equivocation evidence"),
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot submit evidence"),
            Err(error) => tracing::warn!(%error, "submitting evidence panicked"),
        }
    }

    async fn receive_tx(&self, tx: Vec<u8>) {
        let ledger = Arc::clone(&self.ledger);
        match tokio::task::spawn_blocking(move || ledger.submit(&tx)).await {
            Ok(Ok(_)) => {}
            // Duplicates are the common case: every validator hears each transaction.
            Ok(Err(error)) => tracing::trace!(%error, "gossiped transaction not admitted"),
            Err(error) => tracing::warn!(%error, "admitting a gossiped transaction panicked"),
        }
    }

    async fn block_bytes(&self, digest: BlockDigest) -> Option<Vec<u8>> {
        self.ledger.block_bytes(&digest).ok().flatten()
    }

    async fn receive_block(&self, bytes: Vec<u8>) {
        if let Err(error) = self.ledger.receive_block(&bytes) {
            tracing::debug!(%error, "ignoring block from peer");
        }
    }

    async fn finalized(&self, digest: BlockDigest) {
        match self.commit_fetching(digest).await {
            Ok(()) => {}
            Err(NodeError::Halt(reason)) => return self.halt(reason),
            Err(error) => {
                tracing::error!(%error, block = %hex::encode(digest), "cannot commit finalized block");
                return;
            }
        }
        // The commit runs on its own thread while consensus moves on (the next block executes
        // over it); acknowledge it once durable. A failed commit is a storage fault: stop.
        let app = self.clone();
        tokio::spawn(async move {
            let ledger = Arc::clone(&app.ledger);
            match tokio::task::spawn_blocking(move || ledger.land()).await {
                Ok(Ok(())) => app.after_commit(),
                Ok(Err(error)) => app.halt(format!("cannot commit a finalized block: {error}")),
                Err(error) => app.halt(format!("commit panicked: {error}")),
            }
        });
    }
}

/// Options for [`run`] beyond the home directory.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides `config.toml`'s API address.
    pub api_addr: Option<std::net::SocketAddr>,
    /// Called once the API is listening (e.g. to print endpoints).
    pub on_ready: Option<fn(&ReadyInfo)>,
}

/// What a started node reports.
#[derive(Debug, Clone)]
pub struct ReadyInfo {
    /// API address actually bound.
    pub api_addr: std::net::SocketAddr,
    /// Committed height at start.
    pub height: u64,
    /// State root at start.
    pub state_root: [u8; 32],
    /// Chain id.
    pub chain_id: String,
}

/// Runs the node in `home` until Ctrl-C. Blocks the calling thread.
///
/// The consensus engine runs one signer generation at a time (the chain's
/// `validators::reshare` records them). When a finalized block records the next generation,
/// the engine of the old one stops and a new one starts: new participants, this node's share
/// of the reshared key (or none: it then follows as a full node), the next epoch's journal,
/// and that block as its floor. The ledger and its store stay open across the switch.
pub fn run(home: &Home, options: RunOptions) -> Result<()> {
    let mut config = home.config()?;
    if let Some(addr) = options.api_addr {
        config.api_addr = addr;
    }
    let genesis = home.genesis()?;
    let seed = home.node_seed()?;
    let ledger = Arc::new(Ledger::open(
        home.data_dir(),
        genesis.clone(),
        Metrics::default(),
    )?);
    // The API has its own runtime so that it keeps serving while consensus switches engines.
    let api_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("poi-api")
        .enable_all()
        .build()
        .map_err(|e| NodeError::Config(format!("cannot start the API runtime: {e}")))?;
    let listener = api_runtime
        .block_on(bind_api(config.api_addr))
        .map_err(|e| NodeError::Config(format!("cannot listen on {}: {e}", config.api_addr)))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let api_stop = Shutdown::new();
    let api_wait = api_stop.clone();
    let api_ledger = Arc::clone(&ledger);
    api_runtime.spawn(async move {
        let stop = async move { api_wait.wait().await };
        if let Err(error) = crate::api::serve_on(api_ledger, listener, stop).await {
            tracing::error!(%error, "API server failed");
        }
    });
    let mut on_ready = options.on_ready;
    let outcome = loop {
        match run_generation(
            home,
            &config,
            &genesis,
            seed,
            &ledger,
            api_addr,
            on_ready.take(),
        ) {
            Ok(Some(next)) => {
                tracing::info!(generation = next, "switching to the next signer generation");
            }
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    api_stop.trigger();
    api_runtime.shutdown_timeout(Duration::from_secs(5));
    outcome
}

/// Binds the API address, retrying for a few seconds while it is in use: a node restarted
/// right after a crash may find its old socket not yet released.
async fn bind_api(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut attempts = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && attempts < 25 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

/// The signer generation the committed chain runs now, with what its engine starts from.
struct EngineStart {
    generation: u64,
    participants: Vec<Address>,
    polynomial: Vec<u8>,
    floor: BlockDigest,
    view_offset: u64,
}

fn engine_start(ledger: &Ledger, genesis: &poi_core::genesis::Genesis) -> Result<EngineStart> {
    use poi_core::validators::reshare;
    let state = ledger.snapshot()?;
    let corrupt = |e: poi_core::error::StateError| NodeError::Corrupt(e.to_string());
    let genesis_hash = ledger
        .block(0)?
        .ok_or_else(|| NodeError::Corrupt("genesis block missing".into()))?
        .block
        .hash();
    let Some(current) = reshare::current_generation(&state).map_err(corrupt)? else {
        // A chain without a recorded consensus group (no beacon polynomial): genesis as is.
        return Ok(EngineStart {
            generation: 0,
            participants: genesis.validators.clone(),
            polynomial: Vec::new(),
            floor: genesis_hash,
            view_offset: 0,
        });
    };
    let floor = if current.generation == 0 {
        genesis_hash
    } else {
        ledger
            .block(current.recorded_at)?
            .ok_or_else(|| {
                NodeError::Corrupt(format!(
                    "block {} that recorded generation {} is missing",
                    current.recorded_at, current.generation
                ))
            })?
            .block
            .hash()
    };
    Ok(EngineStart {
        generation: current.generation,
        participants: current.participants,
        polynomial: current.polynomial,
        floor,
        view_offset: current.view_offset,
    })
}

/// This node's role in generation `start`: a participant votes with its share (generation 0:
/// `node_share.json`; later ones: the share the reshare wrote), anyone else follows.
fn role_in(
    home: &Home,
    genesis: &poi_core::genesis::Genesis,
    seed: [u8; 32],
    start: &EngineStart,
) -> Result<Role> {
    let me = Address(consensus::validator_public_key(&seed));
    if !start.participants.contains(&me) {
        if start.generation == 0 || start.polynomial.is_empty() {
            return Ok(Role::FullNode(full_node_beacon(genesis)?));
        }
        let beacon = BeaconPublic::from_bytes(&start.polynomial).map_err(|e| {
            NodeError::Corrupt(format!("generation {} polynomial: {e}", start.generation))
        })?;
        return Ok(Role::FullNode(beacon));
    }
    if start.generation == 0 {
        let beacon = home.beacon_key()?;
        check_genesis_beacon(genesis, &beacon)?;
        return Ok(Role::Validator(beacon));
    }
    let beacon = home.generation_share(start.generation, &start.polynomial)?;
    Ok(Role::Validator(beacon))
}

/// Runs consensus for the generation the committed chain is in; `Some(next)` when it stopped
/// because a finalized block recorded generation `next`, `None` on a requested stop.
fn run_generation(
    home: &Home,
    config: &NodeConfig,
    genesis: &poi_core::genesis::Genesis,
    seed: [u8; 32],
    ledger: &Arc<Ledger>,
    api_addr: std::net::SocketAddr,
    on_ready: Option<fn(&ReadyInfo)>,
) -> Result<Option<u64>> {
    let start = engine_start(ledger, genesis)?;
    let public = consensus::validator_public_key(&seed);
    let proposer = Address(public);
    let role = role_in(home, genesis, seed, &start)?;
    let current_share = match &role {
        Role::Validator(beacon) => Some((start.generation, beacon.share_bytes())),
        Role::FullNode(_) => None,
    };
    let resharer = Resharer::new(seed, current_share, &home.reshare_journal()?)
        .map_err(|e| NodeError::Config(format!("reshare journal: {e}")))?;
    let reshare_home = home.clone();
    let mut consensus_cfg =
        consensus_config_for(home, config, genesis, seed, role, &start.participants)?;
    consensus_cfg.epoch = start.generation;
    let is_validator = consensus_cfg.is_validator();
    let full_node_views: Vec<crate::network::FullNodeView> = consensus_cfg
        .full_nodes
        .iter()
        .map(|n| crate::network::FullNodeView {
            public_key: hex::encode(n.public_key),
            p2p_addr: n.address,
            this_node: n.public_key == public,
        })
        .collect();
    let peer_views: Vec<crate::network::PeerView> = consensus_cfg
        .validators
        .iter()
        .map(|v| crate::network::PeerView {
            public_key: hex::encode(v.public_key),
            p2p_addr: v.address,
            this_node: v.public_key == public,
            notarizes: 0,
            finalizes: 0,
            nullifies: 0,
            last_vote_view: None,
            last_block_message_ms_ago: None,
        })
        .collect();
    let listen = consensus_cfg.listen;
    let identity = match &consensus_cfg.role {
        Role::Validator(beacon) => beacon.identity(),
        Role::FullNode(beacon) => beacon.identity(),
    };
    let namespace = consensus_cfg.consensus_namespace();
    let sync_peers: Vec<[u8; 32]> = consensus_cfg
        .validators
        .iter()
        .chain(&consensus_cfg.full_nodes)
        .map(|node| node.public_key)
        .filter(|key| *key != public)
        .collect();
    let halted: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let halted_in = Arc::clone(&halted);
    let switch: Arc<Mutex<Option<u64>>> = Arc::new(Mutex::new(None));
    let switch_in = Arc::clone(&switch);
    let ledger = Arc::clone(ledger);
    let chain_id = genesis.chain_id.clone();
    tracing::info!(
        generation = start.generation,
        validators = start.participants.len(),
        voting = is_validator,
        "starting consensus"
    );
    let result = consensus::run(consensus_cfg, move |node| async move {
        ledger.network().configure(public, listen, peer_views);
        ledger
            .network()
            .configure_role(is_validator, full_node_views);
        ledger.network().attach_votes(node.votes.clone());
        ledger.set_gossip(node.txs.clone());
        let tip = ledger.tip();
        let shutdown = node.shutdown.clone();
        let app = LedgerApp::new(
            Arc::clone(&ledger),
            proposer,
            node.seeds.clone(),
            node.blocks.clone(),
            shutdown.clone(),
        )?
        .with_generation(start.generation, start.floor, start.view_offset, switch_in);
        // Only validators report equivocation: a full node's key holds no funds for fees.
        let app = if is_validator {
            app.with_evidence_signer(seed)
        } else {
            app
        };
        let app = app
            .with_resharer(resharer, node.dkg.clone(), reshare_home)
            .with_sync(
                node.sync.clone(),
                node.finalizations.clone(),
                sync_peers,
                identity,
                namespace,
            );
        let watcher = app.clone();
        let watch_ledger = Arc::clone(&ledger);
        let watch_stop = shutdown.clone();
        tokio::spawn(async move {
            // A tip that does not move for SYNC_STALL may mean peers run a later epoch.
            let mut last = watch_ledger.tip().height;
            let mut tick = tokio::time::interval(SYNC_STALL);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let now = watch_ledger.tip().height;
                        if now == last {
                            watcher.request_sync();
                        }
                        last = now;
                    }
                    () = watch_stop.wait() => return,
                }
            }
        });
        let ticking = app.clone();
        let tick_stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESHARE_TICK);
            loop {
                tokio::select! {
                    _ = tick.tick() => ticking.reshare_tick(),
                    () = tick_stop.wait() => return,
                }
            }
        });
        let app_halted = Arc::clone(&app.halted);
        tokio::spawn(async move {
            shutdown.wait().await;
            let reason = app_halted.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(reason) = reason {
                *halted_in.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
            }
        });
        let info = ReadyInfo {
            api_addr,
            height: tip.height,
            state_root: tip.state_root,
            chain_id,
        };
        tracing::info!(api = %api_addr, height = tip.height, "node ready");
        if let Some(on_ready) = on_ready {
            on_ready(&info);
        }
        Ok::<_, NodeError>(app)
    });
    if let Some(reason) = halted.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(NodeError::Halt(reason));
    }
    result.map_err(|e| NodeError::Consensus(e.to_string()))?;
    Ok(switch.lock().unwrap_or_else(|p| p.into_inner()).take())
}

/// The consensus config of the node in `home`: every genesis validator at the address
/// `config.toml`'s `[[peers]]` gives it (this node at its own `p2p_addr`), and every other
/// `[[peers]]` entry as a full node. A validator runs with its beacon share
/// ([`Role::Validator`]); any other key follows as a full node ([`Role::FullNode`]).
pub fn consensus_config(
    home: &Home,
    config: &NodeConfig,
    genesis: &poi_core::genesis::Genesis,
    seed: [u8; 32],
    role: Role,
) -> Result<ConsensusConfig> {
    consensus_config_for(home, config, genesis, seed, role, &genesis.validators)
}

/// [`consensus_config`] for the signer generation whose participants are `participants`
/// (genesis's validators for generation 0).
pub fn consensus_config_for(
    home: &Home,
    config: &NodeConfig,
    genesis: &poi_core::genesis::Genesis,
    seed: [u8; 32],
    role: Role,
    participants: &[Address],
) -> Result<ConsensusConfig> {
    let public = consensus::validator_public_key(&seed);
    let namespace = genesis.chain_id.as_bytes().to_vec();
    let mut peer_keys = Vec::with_capacity(config.peers.len());
    for peer in &config.peers {
        peer_keys.push((peer.key()?, peer.p2p_addr));
    }
    let mut validators = Vec::with_capacity(participants.len());
    for validator in participants {
        let key = validator.0;
        let address = if key == public {
            config.p2p_addr
        } else {
            let entry = peer_keys.iter().find(|(peer, _)| *peer == key);
            entry.map(|(_, addr)| *addr).ok_or_else(|| {
                NodeError::Config(format!(
                    "{} has no [[peers]] entry for validator {} (public_key = \"{}\")",
                    home.config_path().display(),
                    validator,
                    hex::encode(key)
                ))
            })?
        };
        validators.push(Validator {
            public_key: key,
            address,
        });
    }
    let mut full_nodes: Vec<Validator> = peer_keys
        .iter()
        .filter(|(key, _)| !participants.contains(&Address(*key)))
        .map(|(key, addr)| Validator {
            public_key: *key,
            address: *addr,
        })
        .collect();
    let mut cfg = match role {
        Role::Validator(beacon) => ConsensusConfig::new(
            home.consensus_dir(),
            seed,
            beacon,
            config.p2p_addr,
            validators,
            namespace,
        ),
        Role::FullNode(beacon) => {
            full_nodes.retain(|node| node.public_key != public);
            ConsensusConfig::full_node(
                home.consensus_dir(),
                seed,
                beacon,
                config.p2p_addr,
                validators,
                namespace,
            )
        }
    };
    cfg.full_nodes.extend(full_nodes);
    cfg.block_interval = config.block_interval();
    cfg.validate()
        .map_err(|e| NodeError::Config(format!("consensus: {e}")))?;
    Ok(cfg)
}

/// Decodes a hex block digest from an error message.
fn parse_digest(hex_digest: &str) -> Result<BlockDigest> {
    hex::decode(hex_digest)
        .ok()
        .and_then(|bytes| <BlockDigest>::try_from(bytes).ok())
        .ok_or_else(|| NodeError::Corrupt(format!("bad block digest {hex_digest:?}")))
}

/// The `[beacon]` of a genesis for a chain whose beacon key is `beacon` and whose chain id is
/// `chain_id`: the group identity and the seed namespace consensus signs seeds under.
pub fn genesis_beacon(chain_id: &str, beacon: &BeaconKey) -> poi_core::genesis::GenesisBeacon {
    poi_core::genesis::GenesisBeacon {
        identity: hex::encode(beacon.identity()),
        seed_namespace: hex::encode(consensus::beacon::seed_namespace(chain_id.as_bytes())),
        polynomial: hex::encode(beacon.polynomial_bytes()),
    }
}

/// The public polynomial a full node verifies consensus with: genesis's `beacon.polynomial`.
fn full_node_beacon(genesis: &poi_core::genesis::Genesis) -> Result<BeaconPublic> {
    let polynomial = genesis
        .beacon
        .as_ref()
        .map(|b| b.polynomial.as_str())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            NodeError::Genesis(
                "this node's key is not a genesis validator, so it runs as a full node, which \
                 needs genesis.toml's [beacon] polynomial; this genesis has none"
                    .into(),
            )
        })?;
    let bytes = hex::decode(polynomial)
        .map_err(|_| NodeError::Genesis("genesis beacon.polynomial is not hex".into()))?;
    let beacon = BeaconPublic::from_bytes(&bytes)
        .map_err(|e| NodeError::Genesis(format!("genesis beacon.polynomial: {e}")))?;
    let recorded = genesis.beacon.as_ref().map(|b| b.identity.to_lowercase());
    if recorded.as_deref() != Some(hex::encode(beacon.identity()).as_str()) {
        return Err(NodeError::Genesis(
            "genesis beacon.polynomial does not match beacon.identity".into(),
        ));
    }
    Ok(beacon)
}

/// Checks that genesis names the beacon this node's key belongs to; a genesis without one is
/// from before the beacon.
fn check_genesis_beacon(genesis: &poi_core::genesis::Genesis, beacon: &BeaconKey) -> Result<()> {
    let Some(recorded) = &genesis.beacon else {
        return Err(NodeError::Genesis(
            "genesis.toml has no [beacon]: this home predates the threshold-VRF beacon; \
             re-initialise it with `poi node init --home NEW` (or `poi devnet --home NEW`)"
                .into(),
        ));
    };
    let expected = genesis_beacon(&genesis.chain_id, beacon);
    if recorded.identity.to_lowercase() != expected.identity {
        return Err(NodeError::Genesis(format!(
            "genesis beacon identity {} is not the group key of node_share.json ({})",
            recorded.identity, expected.identity
        )));
    }
    if recorded.seed_namespace.to_lowercase() != expected.seed_namespace {
        return Err(NodeError::Genesis(format!(
            "genesis beacon seed_namespace {} is not the one consensus signs under ({})",
            recorded.seed_namespace, expected.seed_namespace
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{beacon, validator_public_key};

    /// A genesis of chain `poi-test` with validators `keys` and no beacon.
    fn test_genesis(keys: &[[u8; 32]]) -> poi_core::genesis::Genesis {
        poi_core::genesis::Genesis {
            chain_id: "poi-test".into(),
            genesis_time_ms: 0,
            validators: keys.iter().map(|k| Address(*k)).collect(),
            params: poi_core::params::Params::default(),
            accounts: vec![],
            beacon: None,
            models: Vec::new(),
            data: Vec::new(),
        }
    }

    #[test]
    fn every_genesis_validator_needs_a_peer_entry() {
        let seeds = [[5u8; 32], [6u8; 32], [7u8; 32], [8u8; 32]];
        let keys: Vec<[u8; 32]> = seeds.iter().map(validator_public_key).collect();
        let shares = beacon::deal(&keys).unwrap();
        let genesis = test_genesis(&keys);
        let home = Home::new("/nonexistent/poi-home");
        let peer = |i: usize| crate::home::PeerConfig {
            public_key: hex::encode(keys[i]),
            p2p_addr: format!("127.0.0.1:{}", 7500 + i).parse().unwrap(),
        };
        let mut config = NodeConfig {
            peers: vec![peer(1), peer(2)],
            ..NodeConfig::default()
        };
        let role = |share: &BeaconKey| Role::Validator(share.clone());
        let error = consensus_config(&home, &config, &genesis, seeds[0], role(&shares[0]))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no [[peers]] entry") && error.contains(&hex::encode(keys[3])),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
        config.peers.push(peer(3));
        let cfg = consensus_config(&home, &config, &genesis, seeds[0], role(&shares[0])).unwrap();
        assert_eq!(cfg.validators.len(), 4);
        let me = cfg
            .validators
            .iter()
            .find(|v| v.public_key == keys[0])
            .unwrap();
        assert_eq!(me.address, config.p2p_addr);
    }

    #[test]
    fn a_key_outside_genesis_follows_as_a_full_node() {
        let seeds = [[5u8; 32], [6u8; 32], [7u8; 32], [8u8; 32]];
        let keys: Vec<[u8; 32]> = seeds.iter().map(validator_public_key).collect();
        let shares = beacon::deal(&keys).unwrap();
        let mut genesis = test_genesis(&keys);
        let home = Home::new("/nonexistent/poi-home");
        let full_seed = [9u8; 32];
        let full_key = validator_public_key(&full_seed);
        let entry = |key: [u8; 32], port: u16| crate::home::PeerConfig {
            public_key: hex::encode(key),
            p2p_addr: format!("127.0.0.1:{port}").parse().unwrap(),
        };
        // The full node lists every validator; each validator lists the full node.
        let full_config = NodeConfig {
            peers: keys.iter().zip(7500..).map(|(k, p)| entry(*k, p)).collect(),
            ..NodeConfig::default()
        };
        let error = full_node_beacon(&genesis).unwrap_err().to_string();
        assert!(
            error.contains("full node") && !error.contains('\n'),
            "{error}"
        );
        genesis.beacon = Some(genesis_beacon("poi-test", &shares[0]));
        let role = Role::FullNode(full_node_beacon(&genesis).unwrap());
        let cfg = consensus_config(&home, &full_config, &genesis, full_seed, role).unwrap();
        assert!(!cfg.is_validator());
        assert_eq!(cfg.validators.len(), 4);
        assert_eq!(cfg.full_nodes.len(), 1);
        assert_eq!(cfg.full_nodes[0].public_key, full_key);
        assert_eq!(cfg.full_nodes[0].address, full_config.p2p_addr);

        let mut validator_config = NodeConfig {
            peers: keys[1..]
                .iter()
                .zip(7501..)
                .map(|(k, p)| entry(*k, p))
                .collect(),
            ..NodeConfig::default()
        };
        validator_config.peers.push(entry(full_key, 7600));
        let role = Role::Validator(shares[0].clone());
        let cfg = consensus_config(&home, &validator_config, &genesis, seeds[0], role).unwrap();
        assert!(cfg.is_validator());
        assert_eq!(cfg.full_nodes.len(), 1);
        assert_eq!(cfg.full_nodes[0].public_key, full_key);

        // A validator's key cannot follow as a full node: it must vote with its share.
        let role = Role::FullNode(BeaconPublic::from(&shares[0]));
        let error = consensus_config(&home, &validator_config, &genesis, seeds[0], role)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is a validator"), "{error}");
    }

    #[test]
    fn genesis_must_name_this_nodes_beacon() {
        let key = beacon::deal(&[validator_public_key(&[5; 32])])
            .unwrap()
            .remove(0);
        let mut genesis = test_genesis(&[validator_public_key(&[5; 32])]);
        let error = check_genesis_beacon(&genesis, &key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("re-initialise"), "{error}");
        genesis.beacon = Some(genesis_beacon("poi-test", &key));
        check_genesis_beacon(&genesis, &key).unwrap();
        genesis.validate().unwrap();
        // Pinned: the namespace is commonware's seed namespace of the consensus namespace.
        let recorded = genesis.beacon.clone().unwrap();
        assert_eq!(
            hex::decode(&recorded.seed_namespace).unwrap(),
            b"poi-test_CONSENSUS_SEED"
        );
        let other = beacon::deal(&[validator_public_key(&[5; 32])])
            .unwrap()
            .remove(0);
        let error = check_genesis_beacon(&genesis, &other)
            .unwrap_err()
            .to_string();
        assert!(error.contains("identity"), "{error}");
        genesis.beacon = Some(genesis_beacon("poi-other", &key));
        let error = check_genesis_beacon(&genesis, &key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("seed_namespace"), "{error}");
    }
}
