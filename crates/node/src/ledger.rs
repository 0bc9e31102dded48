//! The ledger: the node's authoritative chain state and the blocks around it.
//!
//! Owns the store, the state machine, the mempool and the blocks proposed or received but not yet
//! final. Consensus calls in through [`Ledger::build_block`], [`Ledger::verify_block`] and
//! [`Ledger::finalize`]; the API reads through [`Ledger::store`] and submits through
//! [`Ledger::submit`].
//!
//! Invariants: a block is executed only on top of the head (its parent: the newest finalized
//! block, durable or still being written, see [`crate::head`]), so its prepared state root is
//! valid exactly when it is finalized next; blocks are committed in height order, each in one
//! store transaction, and one commit lands before the next starts; the tip that clients see
//! (and events, receipts, mempool pruning) moves only once a commit is durable; every proposed
//! block is written to disk (`proposals/`) before its digest is handed to consensus, so a
//! restarted node can re-execute a block that consensus notarized or finalized before the crash.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use poi_core::TxError;
use poi_core::address::Address;
use poi_core::bank;
use poi_core::beacon::BeaconSeed;
use poi_core::block::{self, Block, BlockHash, BlockHeader};
use poi_core::chain::{Admission, BlockError, BlockOutcome, Chain, Mode};
use poi_core::error::StateError;
use poi_core::event::{Event, Receipt};
use poi_core::genesis::Genesis;
use poi_core::params::Params;
use poi_core::state::{self, StateReader, WriteSet};
use poi_core::tx::{Prechecks, Tx, TxHash};
use std::sync::mpsc;

use crate::commit_thread::{CommitThread, Landing};
use crate::consensus::{SeedCache, TxGossip};
use crate::head::{HeadView, InFlight};
use crate::signatures::SignaturePool;
use poi_store::{BlockCommit, Committed, Prepared, Store};
use tokio::sync::{broadcast, watch};

use crate::error::{NodeError, Result};
use crate::events::ChainEvent;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::network::NetworkStatus;

/// Most a proposer's clock may run ahead of ours before we refuse its block.
pub const CLOCK_DRIFT_MAX_MS: u64 = 10_000;

/// Longest chain of blocks that are not final yet that the ledger follows above its tip (see
/// [`Ledger::build_empty_on_pending`]). Each crash between notarization and finalization can
/// add one.
pub const PENDING_DEPTH_MAX: u32 = 64;

/// A committed block as stored: the block and the events of its block hooks.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// Events of `begin_block`/`end_block` hooks (e.g. fee distribution).
    pub block_events: Vec<Event>,
}

/// One consistent read view of committed state, for executing a whole block (one redb read
/// transaction instead of one per read).
pub struct SnapshotState(pub poi_store::Snapshot);

impl StateReader for SnapshotState {
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, StateError> {
        self.0.get(key).map_err(|e| StateError(e.to_string()))
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> std::result::Result<(), StateError> {
        self.0
            .scan_prefix(prefix, visit)
            .map_err(|e| StateError(e.to_string()))
    }
}

/// A block executed on the head, waiting for finality.
struct Pending {
    block: Block,
    outcome: BlockOutcome,
    prepared: Prepared,
}

/// The chain state of one node.
pub struct Ledger {
    chain: Chain,
    genesis: Genesis,
    store: Arc<Store>,
    mempool: Mutex<Mempool>,
    pending: Mutex<BTreeMap<BlockHash, Pending>>,
    proposals_dir: PathBuf,
    /// The newest durable block.
    tip: watch::Sender<Committed>,
    /// The newest finalized block: the tip, or the block in flight above it.
    head: watch::Sender<Committed>,
    /// The finalized block being written, if any; set and cleared together with `head`.
    in_flight: Mutex<Option<Arc<InFlight>>>,
    /// The pending commit of `in_flight`; whoever takes it lands the block.
    landing: Mutex<Option<Landing<Result<Landed>>>>,
    /// The one thread that writes finalized blocks, in order.
    committer: CommitThread,
    events: broadcast::Sender<ChainEvent>,
    metrics: Metrics,
    signatures: SignaturePool,
    /// Signature checks of received blocks, started on arrival: `(height, result)`.
    prechecks: Mutex<BTreeMap<BlockHash, (u64, mpsc::Receiver<Prechecks>)>>,
    /// Node-local network observations (`GET /network`).
    network: Arc<NetworkStatus>,
    /// Where transactions submitted here are gossiped to the other validators, once set.
    gossip: Mutex<Option<TxGossip>>,
}

/// What a background commit hands back for acknowledging the block.
struct Landed {
    stored: StoredBlock,
    receipts: Vec<Receipt>,
    committed: Committed,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Ledger {
    /// Opens the ledger in `data_dir`, committing the genesis block if the store is empty, and
    /// checks the stored chain matches `genesis`.
    pub fn open(data_dir: PathBuf, genesis: Genesis, metrics: Metrics) -> Result<Ledger> {
        genesis
            .validate()
            .map_err(|e| NodeError::Genesis(e.to_string()))?;
        std::fs::create_dir_all(&data_dir).map_err(|e| NodeError::io("create", &data_dir, e))?;
        let proposals_dir = data_dir.join("proposals");
        std::fs::create_dir_all(&proposals_dir)
            .map_err(|e| NodeError::io("create", &proposals_dir, e))?;
        let store = Arc::new(Store::open(&data_dir.join("state.redb"))?);
        let chain = Chain::new(genesis.chain_id.clone());
        let latest = match store.latest() {
            Some(latest) => latest,
            None => Self::commit_genesis(&store, &genesis)?,
        };
        let stored_genesis = Self::read_block(&store, 0)?
            .ok_or_else(|| NodeError::Corrupt("genesis block missing".into()))?;
        if stored_genesis.block.header.chain_id != genesis.chain_id {
            return Err(NodeError::Genesis(format!(
                "the data directory holds chain {:?} but genesis.toml says {:?}",
                stored_genesis.block.header.chain_id, genesis.chain_id
            )));
        }
        let (tip, _) = watch::channel(latest);
        let (head, _) = watch::channel(latest);
        let (events, _) = broadcast::channel(4096);
        metrics
            .height
            .set(i64::try_from(latest.height).unwrap_or(i64::MAX));
        Ok(Ledger {
            chain,
            genesis,
            store,
            mempool: Mutex::new(Mempool::default()),
            pending: Mutex::new(BTreeMap::new()),
            proposals_dir,
            tip,
            head,
            in_flight: Mutex::new(None),
            landing: Mutex::new(None),
            committer: CommitThread::start()
                .map_err(|e| NodeError::io("start the commit thread", &data_dir, e))?,
            events,
            metrics,
            signatures: SignaturePool::new()
                .map_err(|e| NodeError::io("start the signature pool", &data_dir, e))?,
            prechecks: Mutex::new(BTreeMap::new()),
            network: Arc::default(),
            gossip: Mutex::new(None),
        })
    }

    fn commit_genesis(store: &Store, genesis: &Genesis) -> Result<Committed> {
        let writes = genesis
            .state()
            .map_err(|e| NodeError::Genesis(e.to_string()))?;
        let prepared = store.prepare(0, &writes)?;
        let header = BlockHeader {
            chain_id: genesis.chain_id.clone(),
            height: 0,
            parent_hash: [0; 32],
            proposer: Address::default(),
            timestamp_ms: genesis.genesis_time_ms,
            tx_count: 0,
            tx_root: block::tx_root(&[]),
            state_root: prepared.state_root(),
            events_root: block::events_root(&[], &[]),
            view: 0,
            seeds: Vec::new(),
        };
        let stored = StoredBlock {
            block: Block {
                header,
                txs: vec![],
            },
            block_events: vec![],
        };
        let hash = stored.block.hash();
        let bytes = borsh::to_vec(&stored).expect("encodes");
        Ok(store.commit(
            &prepared,
            BlockCommit {
                height: 0,
                hash,
                bytes,
                txs: vec![],
            },
        )?)
    }

    /// The state machine.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The genesis this node runs.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The store (committed state, blocks, receipts).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Node-local network observations, filled in by the consensus service.
    pub fn network(&self) -> &Arc<NetworkStatus> {
        &self.network
    }

    /// The committed tip.
    pub fn tip(&self) -> Committed {
        *self.tip.borrow()
    }

    /// Watches the committed tip.
    pub fn watch_tip(&self) -> watch::Receiver<Committed> {
        self.tip.subscribe()
    }

    /// The newest finalized block: the tip, or the block above it whose commit is running.
    /// Consensus builds on it.
    pub fn head(&self) -> Committed {
        *self.head.borrow()
    }

    /// Watches the head.
    pub fn watch_head(&self) -> watch::Receiver<Committed> {
        self.head.subscribe()
    }

    /// State as of the head, for executing its child.
    pub fn head_view(&self) -> Result<HeadView> {
        // Under the lock no commit starts or finishes landing, so the snapshot holds the tip
        // or (once the in-flight block landed) the in-flight block, both correct under it.
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = self.snapshot()?;
        let head = in_flight
            .as_ref()
            .map_or_else(|| self.tip(), |block| block.committed);
        Ok(HeadView {
            head,
            in_flight: in_flight.clone(),
            snapshot,
        })
    }

    /// The header of the head block.
    fn head_header(&self, view: &HeadView) -> Result<BlockHeader> {
        if let Some(header) = view.in_flight_header() {
            return Ok(header.clone());
        }
        Ok(Self::read_block(&self.store, view.head().height)?
            .ok_or_else(|| NodeError::Corrupt(format!("tip block {} missing", view.head().height)))?
            .block
            .header)
    }

    /// Subscribes to committed-block events.
    pub fn subscribe(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// A consistent read view of the committed state.
    pub fn snapshot(&self) -> Result<SnapshotState> {
        Ok(SnapshotState(self.store.snapshot()?))
    }

    fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn prechecks_map(
        &self,
    ) -> MutexGuard<'_, BTreeMap<BlockHash, (u64, mpsc::Receiver<Prechecks>)>> {
        self.prechecks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, BTreeMap<BlockHash, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Current parameters.
    pub fn params(&self) -> Result<Params> {
        Self::params_in(&self.snapshot()?)
    }

    /// The parameters stored in `state`.
    fn params_in(state: &dyn StateReader) -> Result<Params> {
        state::read_borsh(state, poi_core::params::PARAMS_KEY)?
            .ok_or_else(|| NodeError::Corrupt("params missing".into()))
    }

    /// The next nonce for `address` given its committed nonce, counting queued transactions.
    pub fn next_nonce(&self, address: &Address, committed_nonce: u64) -> u64 {
        self.mempool().next_nonce(address, committed_nonce)
    }

    /// Whether a transaction is waiting in the mempool.
    pub fn is_pending(&self, hash: &TxHash) -> bool {
        self.mempool().contains(hash)
    }

    /// Mempool size.
    pub fn mempool_len(&self) -> usize {
        self.mempool().len()
    }

    /// Admits a transaction to the mempool after checking it against committed state.
    pub fn submit(&self, bytes: &[u8]) -> std::result::Result<TxHash, TxError> {
        let tx = Tx::decode(bytes)?;
        let hash = tx.hash();
        if self
            .store
            .tx_record(&hash)
            .map_err(|e| StateError(e.to_string()))?
            .is_some()
        {
            return Err(TxError::Duplicate(hex::encode(hash)));
        }
        // A future nonce is admitted and held in the mempool until the gap closes.
        let state = self.snapshot().map_err(|e| StateError(e.to_string()))?;
        // Read after the snapshot: if a commit lands in between, the dry run is more lenient
        // (a later height), never stricter; the block re-checks everything.
        let next_height = self.tip().height.saturating_add(1);
        let _admission: Admission = self.chain.check_tx(&state, &tx, next_height)?;
        let mut mempool = self.mempool();
        mempool.insert(tx, hash)?;
        self.metrics
            .mempool
            .set(i64::try_from(mempool.len()).unwrap_or(i64::MAX));
        self.metrics.txs_admitted.inc();
        Ok(hash)
    }

    /// [`Ledger::submit`], then gossips the admitted transaction to the other validators (a
    /// transaction submitted by a client; one received from a peer is not gossiped again).
    pub fn submit_and_gossip(&self, bytes: &[u8]) -> std::result::Result<TxHash, TxError> {
        let hash = self.submit(bytes)?;
        let gossip = self
            .gossip
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(gossip) = gossip
            && !gossip.send(bytes.to_vec())
        {
            tracing::debug!(tx = %hex::encode(hash), "gossip queue full; kept locally");
        }
        Ok(hash)
    }

    /// Sets where [`Ledger::submit_and_gossip`] gossips (replacing the previous consensus
    /// run's queue after an engine switch).
    pub fn set_gossip(&self, gossip: TxGossip) {
        *self.gossip.lock().unwrap_or_else(|p| p.into_inner()) = Some(gossip);
    }

    /// Builds a block for consensus view `view` on the head (which must be `parent`) carrying
    /// no beacon seeds, executes it, prepares its state root and writes it to `proposals/`.
    /// Returns the block hash. For chains driven by hand (tests, benches); a proposer uses
    /// [`Ledger::build_block_with_seeds`].
    pub fn build_block(
        &self,
        parent: BlockHash,
        proposer: Address,
        view: u64,
    ) -> Result<BlockHash> {
        self.build_block_with_seeds(parent, proposer, view, &SeedCache::new())
    }

    /// The seeds a block at `view` on `state` carries: those core wants
    /// ([`Chain::wanted_seeds`]) that `seeds` holds, oldest first.
    fn carried_seeds(
        &self,
        state: &dyn StateReader,
        view: u64,
        seeds: &SeedCache,
    ) -> Result<Vec<BeaconSeed>> {
        let wanted = self.chain.wanted_seeds(state, view)?;
        let carried: Vec<BeaconSeed> = wanted
            .iter()
            .filter_map(|&(epoch, wanted_view)| seeds.get(epoch, wanted_view))
            .map(|seed| BeaconSeed {
                epoch: seed.epoch,
                view: seed.view,
                signature: seed.signature,
            })
            .collect();
        if carried.len() < wanted.len() {
            tracing::debug!(
                view,
                wanted = wanted.len(),
                carried = carried.len(),
                "some wanted seeds are not cached yet"
            );
        }
        assert!(carried.len() <= wanted.len());
        Ok(carried)
    }

    /// Like [`Ledger::build_block`], and the block carries the beacon seeds core wants that
    /// `seeds` (the consensus driver's cache) holds. If executing with them fails (a seed
    /// core refuses: only a bug puts one in the cache), the block is built without seeds.
    pub fn build_block_with_seeds(
        &self,
        parent: BlockHash,
        proposer: Address,
        view: u64,
        seeds: &SeedCache,
    ) -> Result<BlockHash> {
        let state = self.head_view()?;
        if !state.is(&parent) {
            return self.build_empty_on_pending(parent, proposer, view);
        }
        let parent_header = self.head_header(&state)?;
        let params = Self::params_in(&state)?;
        let candidates = self
            .mempool()
            .select(params.block_txs_max as usize, |sender| {
                bank::account(&state, sender)
                    .ok()
                    .flatten()
                    .map_or(0, |a| a.nonce)
            });
        let height = state.head().height + 1;
        if view <= parent_header.view {
            return Err(NodeError::InvalidBlock(format!(
                "view {view} does not follow the parent's view {}",
                parent_header.view
            )));
        }
        let timestamp_ms = now_ms().max(parent_header.timestamp_ms);
        let mut ctx = poi_core::block::BlockContext {
            height,
            timestamp_ms,
            proposer,
            view,
            seeds: self.carried_seeds(&state, view, seeds)?,
        };
        let started = std::time::Instant::now();
        // Every mempool entry passed strict signature verification on admission.
        let prechecks = Prechecks::strictly_verified(&candidates);
        // Kept only when the block carries seeds (rarely), to rebuild without them.
        let retry = (!ctx.seeds.is_empty()).then(|| (candidates.clone(), prechecks.clone()));
        let built =
            self.chain
                .execute_verified_block(&state, &ctx, candidates, prechecks, Mode::Build);
        let outcome = match (built, retry) {
            (Ok(outcome), _) => outcome,
            (Err(error @ (BlockError::State(_) | BlockError::Invariant(_))), _)
            | (Err(error), None) => {
                return Err(error.into());
            }
            (Err(error), Some((candidates, prechecks))) => {
                tracing::warn!(view, %error, "block with seeds failed; building it without them");
                ctx.seeds.clear();
                self.chain.execute_verified_block(
                    &state,
                    &ctx,
                    candidates,
                    prechecks,
                    Mode::Build,
                )?
            }
        };
        {
            let mut mempool = self.mempool();
            for (hash, error) in &outcome.rejected {
                tracing::debug!(tx = %hex::encode(hash), %error, "dropping transaction");
                mempool.remove(hash);
            }
        }
        let prepared = state.prepare(&self.store, height, &outcome.writes)?;
        let header = BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height,
            parent_hash: parent,
            proposer,
            timestamp_ms,
            tx_count: u32::try_from(outcome.txs.len()).expect("bounded by block_txs_max"),
            tx_root: poi_core::merkle::root(&outcome.tx_hashes),
            state_root: prepared.state_root(),
            events_root: block::events_root(&outcome.receipts, &outcome.block_events),
            view,
            seeds: ctx.seeds.clone(),
        };
        let block = Block {
            header,
            txs: outcome.txs.clone(),
        };
        let hash = block.hash();
        self.write_proposal(&hash, &block)?;
        self.metrics
            .block_build_seconds
            .observe(started.elapsed().as_secs_f64());
        self.pending().insert(
            hash,
            Pending {
                block,
                outcome,
                prepared,
            },
        );
        Ok(hash)
    }

    /// The block `parent`, not final yet, executed: its header and the writes it leaves over
    /// the committed tip. It is either a child of the tip (executed, loaded from `proposals/` if
    /// this process has not seen it) or an empty block on such a chain, which adds no writes.
    fn executed_pending(&self, parent: &BlockHash) -> Result<(BlockHeader, WriteSet)> {
        self.executed_pending_at(parent, 0)
    }

    fn executed_pending_at(&self, hash: &BlockHash, depth: u32) -> Result<(BlockHeader, WriteSet)> {
        if depth > PENDING_DEPTH_MAX {
            return Err(NodeError::NotOnTip {
                parent: hex::encode(hash),
            });
        }
        if let Some(p) = self.pending().get(hash) {
            return Ok((p.block.header.clone(), p.outcome.writes.clone()));
        }
        let view = self.head_view()?;
        if view.is(hash) {
            // The head's writes are already in the head view that children execute on.
            return Ok((self.head_header(&view)?, WriteSet::new()));
        }
        let bytes = std::fs::read(self.proposal_path(hash))
            .map_err(|_| NodeError::UnknownBlock(hex::encode(hash)))?;
        let block = Block::decode(&bytes).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        if view.is(&block.header.parent_hash) {
            let pending = self.execute_received(block, hash)?;
            let executed = (pending.block.header.clone(), pending.outcome.writes.clone());
            self.pending().insert(*hash, pending);
            return Ok(executed);
        }
        if !block.txs.is_empty() {
            return Err(NodeError::NotOnTip {
                parent: hex::encode(block.header.parent_hash),
            });
        }
        let parent = block.header.parent_hash;
        let (_, writes) = self.executed_pending_at(&parent, depth + 1)?;
        let expected = self.empty_child_at(
            &parent,
            block.header.proposer,
            block.header.timestamp_ms,
            block.header.view,
            depth + 1,
        )?;
        if expected != block.header {
            return Err(NodeError::InvalidBlock(format!(
                "empty block {} does not match",
                hex::encode(hash)
            )));
        }
        Ok((block.header, writes))
    }

    /// The header of an empty block on `parent` (executed on the tip, not final), with its
    /// state root, or `NotOnTip` if an empty block would change state (then its root needs the
    /// parent committed first).
    ///
    /// Why: consensus may notarize a block and crash before finalizing it; after a restart it
    /// asks to build on that block. An empty child leaves the parent's state root unchanged,
    /// so it can be built and checked without committing the parent, and finalizing it
    /// finalizes (and commits) the parent.
    fn empty_child(
        &self,
        parent: &BlockHash,
        proposer: Address,
        timestamp_ms: u64,
        view: u64,
    ) -> Result<BlockHeader> {
        self.empty_child_at(parent, proposer, timestamp_ms, view, 0)
    }

    fn empty_child_at(
        &self,
        parent: &BlockHash,
        proposer: Address,
        timestamp_ms: u64,
        view: u64,
        depth: u32,
    ) -> Result<BlockHeader> {
        let (parent_header, parent_writes) = self.executed_pending_at(parent, depth)?;
        if timestamp_ms < parent_header.timestamp_ms
            || timestamp_ms > now_ms().saturating_add(CLOCK_DRIFT_MAX_MS)
        {
            return Err(NodeError::InvalidBlock(format!(
                "timestamp {timestamp_ms} out of range"
            )));
        }
        if view <= parent_header.view {
            return Err(NodeError::InvalidBlock(format!(
                "view {view} does not follow the parent's view {}",
                parent_header.view
            )));
        }
        let height = parent_header.height + 1;
        let ctx = poi_core::block::BlockContext {
            height,
            timestamp_ms,
            proposer,
            view,
            seeds: Vec::new(),
        };
        let head_state = self.head_view()?;
        let layered = state::Layered::new(&head_state, &parent_writes);
        let outcome = self
            .chain
            .execute_block(&layered, &ctx, vec![], Mode::Build)?;
        if !outcome.writes.is_empty() {
            return Err(NodeError::NotOnTip {
                parent: hex::encode(parent),
            });
        }
        Ok(BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height,
            parent_hash: *parent,
            proposer,
            timestamp_ms,
            tx_count: 0,
            tx_root: block::tx_root(&[]),
            state_root: parent_header.state_root,
            events_root: block::events_root(&[], &outcome.block_events),
            view,
            seeds: Vec::new(),
        })
    }

    /// Builds an empty block on `parent`, a block that is executed but not final (see
    /// `Ledger::empty_child`).
    pub fn build_empty_on_pending(
        &self,
        parent: BlockHash,
        proposer: Address,
        view: u64,
    ) -> Result<BlockHash> {
        let parent_ts = self.executed_pending(&parent)?.0.timestamp_ms;
        let header = self.empty_child(&parent, proposer, now_ms().max(parent_ts), view)?;
        let block = Block {
            header,
            txs: vec![],
        };
        let hash = block.hash();
        self.write_proposal(&hash, &block)?;
        tracing::info!(
            height = block.header.height,
            "built an empty block on a block not yet final"
        );
        Ok(hash)
    }

    fn proposal_path(&self, hash: &BlockHash) -> PathBuf {
        self.proposals_dir
            .join(format!("{}.block", hex::encode(hash)))
    }

    fn write_proposal(&self, hash: &BlockHash, block: &Block) -> Result<()> {
        use std::io::Write;
        let path = self.proposal_path(hash);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&block.encode())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.proposals_dir)?.sync_all()
        };
        write().map_err(|e| NodeError::io("write", &path, e))
    }

    /// Height of a block this node holds, committed or executed and pending finality.
    pub fn known_height(&self, hash: &BlockHash) -> Option<u64> {
        if let Ok(Some(height)) = self.store.height_by_block_hash(hash) {
            return Some(height);
        }
        self.pending().get(hash).map(|p| p.block.header.height)
    }

    /// Encoded bytes of a block we hold (pending, proposed on disk, or committed).
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>> {
        if let Some(p) = self.pending().get(hash) {
            return Ok(Some(p.block.encode()));
        }
        if let Ok(bytes) = std::fs::read(self.proposal_path(hash)) {
            return Ok(Some(bytes));
        }
        match self.store.height_by_block_hash(hash)? {
            Some(height) => Ok(Self::read_block(&self.store, height)?.map(|b| b.block.encode())),
            None => Ok(None),
        }
    }

    /// Stores a block received from a peer so it can be verified.
    pub fn receive_block(&self, bytes: &[u8]) -> Result<BlockHash> {
        let block = Block::decode(bytes).map_err(|e| NodeError::InvalidBlock(e.to_string()))?;
        let hash = block.hash();
        self.write_proposal(&hash, &block)?;
        // Check its signatures now, on spare cores, while its parent may still be committing.
        let checks = self.signatures.precheck_in_background(block.txs.clone());
        self.prechecks_map()
            .insert(hash, (block.header.height, checks));
        Ok(hash)
    }

    /// Re-executes a block whose parent is the committed tip and checks every header field;
    /// `view` is the consensus view it was proposed in.
    /// `Ok(false)` is a permanent "invalid"; errors are faults of this node.
    pub fn verify_block(&self, hash: &BlockHash, view: u64) -> Result<bool> {
        if let Some(pending) = self.pending().get(hash) {
            return Ok(pending.block.header.view == view);
        }
        let Ok(bytes) = std::fs::read(self.proposal_path(hash)) else {
            return Err(NodeError::UnknownBlock(hex::encode(hash)));
        };
        let Ok(block) = Block::decode(&bytes) else {
            return Ok(false);
        };
        if block.header.view != view {
            // Core trusts the header's view (PoI targets are counted in views): it must be the
            // round the block was proposed in.
            tracing::warn!(
                block = %hex::encode(hash),
                header_view = block.header.view,
                view,
                "refusing a block proposed for another view"
            );
            return Ok(false);
        }
        match self.execute_received(block, hash) {
            Ok(pending) => {
                self.pending().insert(*hash, pending);
                Ok(true)
            }
            Err(NodeError::InvalidBlock(reason)) => {
                tracing::warn!(block = %hex::encode(hash), %reason, "refusing invalid block");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn execute_received(&self, block: Block, hash: &BlockHash) -> Result<Pending> {
        let invalid = |why: String| NodeError::InvalidBlock(why);
        if block.hash() != *hash {
            return Err(invalid("hash does not match".into()));
        }
        let state = self.head_view()?;
        let header = &block.header;
        if !state.is(&header.parent_hash) || header.height != state.head().height + 1 {
            return Err(NodeError::NotOnTip {
                parent: hex::encode(header.parent_hash),
            });
        }
        let parent = self.head_header(&state)?;
        if header.chain_id != self.genesis.chain_id {
            return Err(invalid(format!("chain id {:?}", header.chain_id)));
        }
        if header.timestamp_ms < parent.timestamp_ms
            || header.timestamp_ms > now_ms().saturating_add(CLOCK_DRIFT_MAX_MS)
        {
            return Err(invalid(format!(
                "timestamp {} out of range",
                header.timestamp_ms
            )));
        }
        if header.view <= parent.view {
            return Err(invalid(format!(
                "view {} does not follow the parent's view {}",
                header.view, parent.view
            )));
        }
        if header.tx_count as usize != block.txs.len()
            || header.tx_root != block::tx_root(&block.txs)
        {
            return Err(invalid("transaction root or count mismatch".into()));
        }
        let started = self.prechecks_map().remove(hash);
        let prechecks = started
            .and_then(|(_, checks)| checks.recv().ok())
            .filter(|checks| checks.len() == block.txs.len())
            .unwrap_or_else(|| self.signatures.verify(&block.txs));
        let outcome = match self.chain.execute_verified_block(
            &state,
            &header.context(),
            block.txs.clone(),
            prechecks,
            Mode::Verify,
        ) {
            Ok(outcome) => outcome,
            Err(BlockError::State(e)) => return Err(e.into()),
            Err(e @ BlockError::Invariant(_)) => return Err(NodeError::Halt(e.to_string())),
            Err(e) => return Err(invalid(e.to_string())),
        };
        if block::events_root(&outcome.receipts, &outcome.block_events) != header.events_root {
            return Err(invalid("events root mismatch".into()));
        }
        let prepared = state.prepare(&self.store, header.height, &outcome.writes)?;
        if prepared.state_root() != header.state_root {
            return Err(invalid("state root mismatch".into()));
        }
        Ok(Pending {
            block,
            outcome,
            prepared,
        })
    }

    /// Commits the finalized block `hash` (and any uncommitted ancestors we hold) and waits
    /// until it is durable. Idempotent: finalizations replayed after a restart are ignored.
    pub fn finalize(&self, hash: &BlockHash) -> Result<()> {
        self.finalize_in_background(hash)?;
        self.land()
    }

    /// Like [`Ledger::finalize`], but returns once the last commit has started: the head moves
    /// to `hash` at once, so its child can be built while it is written. Call [`Ledger::land`]
    /// (on another thread) to acknowledge it once durable; the next finalization lands it too.
    pub fn finalize_in_background(&self, hash: &BlockHash) -> Result<()> {
        if self.head().block_hash == *hash || self.store.height_by_block_hash(hash)?.is_some() {
            return Ok(());
        }
        // Walk back to the head through blocks we hold.
        let head = self.head();
        let mut chain = vec![*hash];
        loop {
            let last = *chain.last().expect("non-empty");
            let header = match self.pending().get(&last) {
                Some(p) => p.block.header.clone(),
                None => {
                    let bytes = std::fs::read(self.proposal_path(&last))
                        .map_err(|_| NodeError::UnknownBlock(hex::encode(last)))?;
                    Block::decode(&bytes)
                        .map_err(|e| NodeError::Corrupt(e.to_string()))?
                        .header
                }
            };
            if header.parent_hash == head.block_hash {
                break;
            }
            if header.height <= head.height + 1 {
                return Err(NodeError::Halt(format!(
                    "finalized block {} at height {} does not extend our head",
                    hex::encode(last),
                    header.height
                )));
            }
            chain.push(header.parent_hash);
        }
        for hash in chain.iter().rev() {
            self.start_commit(hash)?;
        }
        Ok(())
    }

    /// Waits for the block in flight (if any) to be durable, then acknowledges it: tip,
    /// events, mempool. An error here is a storage fault: the node must stop.
    pub fn land(&self) -> Result<()> {
        // Held while joining: a second caller waits until the block has landed.
        let mut landing = self.landing.lock().unwrap_or_else(|p| p.into_inner());
        self.land_locked(&mut landing)
    }

    /// [`Ledger::land`] with the `landing` lock held. Lock order: `landing`, then `in_flight`.
    fn land_locked(&self, landing: &mut Option<Landing<Result<Landed>>>) -> Result<()> {
        let Some(pending) = landing.take() else {
            return Ok(());
        };
        let landed = pending
            .wait()
            .map_err(|_| NodeError::Halt("the commit thread panicked".into()))??;
        assert_eq!(
            landed.committed.state_root, landed.stored.block.header.state_root,
            "store root differs from header"
        );
        self.after_commit(&landed.stored, &landed.receipts, landed.committed);
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if in_flight
            .as_ref()
            .is_some_and(|block| block.committed == landed.committed)
        {
            *in_flight = None;
        }
        Ok(())
    }

    /// Lands the previous commit, then starts committing `hash`, a child of the tip, on a
    /// background thread. Holds the `landing` lock throughout, so commits never overlap.
    fn start_commit(&self, hash: &BlockHash) -> Result<()> {
        let mut landing = self.landing.lock().unwrap_or_else(|p| p.into_inner());
        self.land_locked(&mut landing)?;
        let pending = self.pending().remove(hash);
        let pending = match pending {
            Some(p) if p.prepared.height() == self.tip().height + 1 => p,
            _ => {
                let bytes = std::fs::read(self.proposal_path(hash))
                    .map_err(|_| NodeError::UnknownBlock(hex::encode(hash)))?;
                let block = Block::decode(&bytes).map_err(|e| NodeError::Corrupt(e.to_string()))?;
                self.execute_received(block, hash).map_err(|e| match e {
                    NodeError::InvalidBlock(why) => NodeError::Halt(format!(
                        "finalized block {} is invalid here: {why}",
                        hex::encode(hash)
                    )),
                    other => other,
                })?
            }
        };
        let Pending {
            block,
            mut outcome,
            prepared,
        } = pending;
        let header = block.header.clone();
        let in_flight = Arc::new(InFlight {
            committed: Committed {
                height: header.height,
                state_root: header.state_root,
                block_hash: *hash,
            },
            header,
            writes: std::mem::take(&mut outcome.writes),
            prepared,
        });
        let store = Arc::clone(&self.store);
        let writing = Arc::clone(&in_flight);
        let hash = *hash;
        let commit = self.committer.run(move || -> Result<Landed> {
            let receipts = encode_receipts(&outcome.receipts);
            let stored = StoredBlock {
                block,
                block_events: outcome.block_events.clone(),
            };
            let bytes = borsh::to_vec(&stored).expect("encodes");
            let committed = store.commit(
                &writing.prepared,
                BlockCommit {
                    height: stored.block.header.height,
                    hash,
                    bytes,
                    txs: receipts,
                },
            )?;
            Ok(Landed {
                stored,
                receipts: outcome.receipts,
                committed,
            })
        });
        let mut slot = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        self.head.send_replace(in_flight.committed);
        *slot = Some(in_flight);
        *landing = Some(commit);
        Ok(())
    }

    fn after_commit(&self, stored: &StoredBlock, receipts: &[Receipt], committed: Committed) {
        let header = &stored.block.header;
        // The tip first: receipts are shown only up to it (see `receipt`), and a transaction
        // leaves the mempool below only after its receipt is shown, so it is never neither.
        self.tip.send_replace(committed);
        // Checks of blocks that can no longer be executed (orphaned proposals) are dropped.
        self.prechecks_map()
            .retain(|_, (height, _)| *height > header.height);
        {
            let mut mempool = self.mempool();
            let senders: std::collections::BTreeSet<Address> =
                stored.block.txs.iter().map(|tx| tx.body.signer).collect();
            match self.snapshot() {
                Ok(state) => {
                    for sender in senders {
                        let nonce = bank::account(&state, &sender)
                            .ok()
                            .flatten()
                            .map_or(0, |a| a.nonce);
                        mempool.prune_sender(&sender, nonce);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot prune the mempool after a commit"),
            }
            self.metrics
                .mempool
                .set(i64::try_from(mempool.len()).unwrap_or(i64::MAX));
        }
        // Pending blocks at or below this height can never be committed now.
        self.pending()
            .retain(|_, p| p.block.header.height > header.height);
        self.prune_proposals(header.height);
        self.metrics
            .height
            .set(i64::try_from(header.height).unwrap_or(i64::MAX));
        self.metrics.txs_committed.inc_by(receipts.len() as u64);
        let _ = self
            .events
            .send(ChainEvent::block(&stored.block, committed, receipts));
    }

    fn prune_proposals(&self, committed_height: u64) {
        let Ok(entries) = std::fs::read_dir(&self.proposals_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let height = Block::decode(&bytes).map(|b| b.header.height).unwrap_or(0);
            if height <= committed_height {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// A committed block by height.
    pub fn block(&self, height: u64) -> Result<Option<StoredBlock>> {
        Self::read_block(&self.store, height)
    }

    fn read_block(store: &Store, height: u64) -> Result<Option<StoredBlock>> {
        match store.block_by_height(height)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| NodeError::Corrupt(format!("block {height}: {e}"))),
        }
    }

    /// A committed receipt, once its block is the tip or below: a block is on disk a moment
    /// before the tip moves to it, and a client that sees a receipt must then read state that
    /// includes it.
    pub fn receipt(&self, hash: &TxHash) -> Result<Option<Receipt>> {
        match self.store.tx_record(hash)? {
            None => Ok(None),
            Some(record) if record.height > self.tip().height => Ok(None),
            Some(record) => borsh::from_slice(&record.bytes)
                .map(Some)
                .map_err(|e| NodeError::Corrupt(format!("receipt: {e}"))),
        }
    }
}

impl Drop for Ledger {
    /// A graceful stop lands the block in flight, so a restart need not re-execute it.
    fn drop(&mut self) {
        if let Err(error) = self.land() {
            tracing::error!(%error, "the last finalized block did not commit");
        }
    }
}

/// Borsh-encodes receipts for the store, on all cores.
pub(crate) fn encode_receipts(receipts: &[Receipt]) -> Vec<(TxHash, Vec<u8>)> {
    use rayon::prelude::*;
    receipts
        .par_iter()
        .map(|r| (r.tx_hash, borsh::to_vec(r).expect("encodes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use poi_core::bank::BankMsg;
    use poi_core::genesis::GenesisAccount;
    use poi_core::tx::{Msg, TxBody};
    use proptest::prelude::*;

    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn genesis() -> Genesis {
        Genesis {
            chain_id: "poi-test".into(),
            genesis_time_ms: 0,
            validators: vec![Address::from_public_key(&key(100).verifying_key())],
            params: Params::default(),
            accounts: (1..=3)
                .map(|s| GenesisAccount {
                    address: Address::from_public_key(&key(s).verifying_key()),
                    balance: 1_000_000,
                })
                .collect(),
            beacon: None,
            models: Vec::new(),
            data: Vec::new(),
        }
    }

    fn open(dir: &std::path::Path) -> Ledger {
        Ledger::open(dir.to_path_buf(), genesis(), Metrics::default()).unwrap()
    }

    /// Submits `txs` (errors are expected for invalid ones), then builds and finalizes a block.
    fn produce(ledger: &Ledger, txs: &[Vec<u8>]) -> (u64, [u8; 32]) {
        for tx in txs {
            let _ = ledger.submit(tx);
        }
        let proposer = Address::from_public_key(&key(100).verifying_key());
        let hash = ledger
            .build_block(ledger.tip().block_hash, proposer, ledger.tip().height + 1)
            .unwrap();
        ledger.finalize(&hash).unwrap();
        let audit = ledger.chain().audit(&ledger.snapshot().unwrap());
        assert!(audit.is_ok(), "supply audit failed: {audit:?}");
        let tip = ledger.tip();
        (tip.height, tip.state_root)
    }

    fn transfer(from: u8, nonce: u64, to: u8, amount: u128, fee: u128, corrupt: bool) -> Vec<u8> {
        let k = key(from);
        let mut tx = TxBody {
            chain_id: "poi-test".into(),
            signer: Address::from_public_key(&k.verifying_key()),
            nonce,
            fee,
            msg: Msg::Bank(BankMsg::Transfer {
                to: Address::from_public_key(&key(to).verifying_key()),
                amount,
            }),
        }
        .sign(&k);
        if corrupt {
            tx.signature[1] ^= 1;
        }
        tx.encode()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Random valid and invalid transfers keep the supply invariant, and a fresh node fed
        /// the same submissions reaches the same state root at every height.
        #[test]
        fn replay_on_a_fresh_node_gives_identical_roots(
            blocks in proptest::collection::vec(
                proptest::collection::vec(
                    (1u8..=4, 0u64..4, 1u8..=4, 0u128..600_000, 0u128..8_000, proptest::bool::weighted(0.1)),
                    0..8,
                ),
                1..5,
            )
        ) {
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (first, second) = (open(a.path()), open(b.path()));
            for ops in &blocks {
                let txs: Vec<Vec<u8>> = ops
                    .iter()
                    .map(|(f, n, t, amount, fee, bad)| transfer(*f, *n, *t, *amount, *fee, *bad))
                    .collect();
                prop_assert_eq!(produce(&first, &txs), produce(&second, &txs));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// A proposer that builds each block while its parent's commit is still running, and a
        /// validator that verifies and finalizes those blocks the same way, reach the same
        /// state root at every height as a node that commits before building.
        #[test]
        fn blocks_built_over_a_commit_in_flight_match_sequential_ones(
            blocks in proptest::collection::vec(
                proptest::collection::vec(
                    (1u8..=4, 0u64..4, 1u8..=4, 0u128..600_000, 0u128..8_000, proptest::bool::weighted(0.1)),
                    0..8,
                ),
                2..5,
            )
        ) {
            let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
            let (sequential, proposer, validator) =
                (open(dirs[0].path()), open(dirs[1].path()), open(dirs[2].path()));
            let me = Address::from_public_key(&key(100).verifying_key());
            for ops in &blocks {
                let txs: Vec<Vec<u8>> = ops
                    .iter()
                    .map(|(f, n, t, amount, fee, bad)| transfer(*f, *n, *t, *amount, *fee, *bad))
                    .collect();
                produce(&sequential, &txs);
                for tx in &txs {
                    let _ = proposer.submit(tx);
                }
                let hash = proposer
                    .build_block(proposer.head().block_hash, me, proposer.head().height + 1)
                    .unwrap();
                proposer.finalize_in_background(&hash).unwrap();
                prop_assert_eq!(proposer.head().block_hash, hash);
                let bytes = proposer.block_bytes(&hash).unwrap().unwrap();
                validator.receive_block(&bytes).unwrap();
                prop_assert!(validator.verify_block(&hash, proposer.head().height).unwrap());
                validator.finalize_in_background(&hash).unwrap();
            }
            proposer.land().unwrap();
            validator.land().unwrap();
            let tip = sequential.tip();
            prop_assert_eq!(proposer.tip(), validator.tip());
            prop_assert_eq!(proposer.tip().height, tip.height);
            for height in 1..=tip.height {
                let root = sequential.store().root_at(height).unwrap();
                prop_assert_eq!(proposer.store().root_at(height).unwrap(), root);
                prop_assert_eq!(validator.store().root_at(height).unwrap(), root);
            }
            let audit = proposer.chain().audit(&proposer.snapshot().unwrap());
            prop_assert!(audit.is_ok(), "supply audit failed: {:?}", audit);
        }
    }

    #[test]
    fn reopen_resumes_at_the_committed_tip() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let ledger = open(dir.path());
            produce(&ledger, &[transfer(1, 0, 2, 500, 5_000, false)]);
            produce(&ledger, &[transfer(1, 1, 3, 700, 5_000, false)])
        };
        let ledger = open(dir.path());
        assert_eq!((ledger.tip().height, ledger.tip().state_root), before);
        let account = bank::account(
            &ledger.snapshot().unwrap(),
            &Address::from_public_key(&key(3).verifying_key()),
        );
        assert_eq!(account.unwrap().unwrap().balance, 1_000_700);
    }
}
