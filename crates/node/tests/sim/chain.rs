//! The simulations' application: a tiny deterministic chain, and the shared safety record.
//!
//! Owns: [`Block`] (parent, height, proposer, view), [`Chain`] (one validator's block store and
//! finalized chain; it survives a restart of its validator, like a node's database), and
//! [`Ledger`], the record every honest validator writes its finalized heights into so that
//! a fork between validators is caught the moment it happens.
//! Invariants: a block is valid iff its parent is known, its height is the parent's plus one
//! and its view is the view consensus asks about; each validator's finalized chain is
//! contiguous from genesis; the ledger holds at most one digest per height, and any second
//! digest is recorded as a [`Ledger::violations`] entry (asserted empty by every scenario).

use commonware_runtime::{Clock, deterministic};
use poi_node::consensus::{Application, BlockDigest, BlockRequester, Fault};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};
use tokio::sync::Notify;

/// How long the chain waits for a missing block before asking (again) a peer for it.
const BLOCK_WAIT: Duration = Duration::from_millis(200);

/// A block: its digest is blake3 of the encoding, so any field change makes a new block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) parent: BlockDigest,
    pub(crate) height: u64,
    pub(crate) proposer: u8,
    pub(crate) view: u64,
}

impl Block {
    /// Encoding: parent (32) | height (u64 LE) | proposer (1) | view (u64 LE).
    const BYTES: usize = 32 + 8 + 1 + 8;

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = self.parent.to_vec();
        bytes.extend_from_slice(&self.height.to_le_bytes());
        bytes.push(self.proposer);
        bytes.extend_from_slice(&self.view.to_le_bytes());
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::BYTES {
            return None;
        }
        Some(Self {
            parent: bytes[..32].try_into().ok()?,
            height: u64::from_le_bytes(bytes[32..40].try_into().ok()?),
            proposer: bytes[40],
            view: u64::from_le_bytes(bytes[41..49].try_into().ok()?),
        })
    }

    pub(crate) fn digest(&self) -> BlockDigest {
        *blake3::hash(&self.encode()).as_bytes()
    }

    fn genesis() -> Self {
        Self {
            parent: [0; 32],
            height: 0,
            proposer: u8::MAX,
            view: 0,
        }
    }
}

/// Finalized digests of all honest validators by height; a second digest is a safety violation.
#[derive(Clone, Default)]
pub(crate) struct Ledger {
    inner: Arc<Mutex<LedgerState>>,
}

#[derive(Default)]
struct LedgerState {
    by_height: BTreeMap<u64, BlockDigest>,
    violations: Vec<String>,
}

impl Ledger {
    fn lock(&self) -> MutexGuard<'_, LedgerState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, validator: u8, height: u64, digest: BlockDigest) {
        let mut state = self.lock();
        let known = *state.by_height.entry(height).or_insert(digest);
        if known != digest {
            let violation = format!(
                "validator {validator} finalized {} at height {height}, another finalized {}",
                hex(&digest),
                hex(&known)
            );
            state.violations.push(violation);
        }
    }

    /// Every cross-validator disagreement seen so far.
    pub(crate) fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

fn hex(digest: &BlockDigest) -> String {
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct State {
    blocks: HashMap<BlockDigest, Block>,
    /// Finalized chain by height; index 0 is genesis.
    finalized: Vec<BlockDigest>,
    /// Block requests sent to peers.
    requests: u64,
    /// Verified faults delivered to this validator.
    faults: Vec<Fault>,
    /// Own finality forks or broken links (must stay empty).
    errors: Vec<String>,
}

/// One validator's application. Clones share the store; [`Chain::in_run`] gives each run of
/// the validator its clock and block requester.
#[derive(Clone)]
pub(crate) struct Chain {
    state: Arc<Mutex<State>>,
    ledger: Ledger,
    index: u8,
    genesis: BlockDigest,
    /// Woken whenever a block is stored.
    arrived: Arc<Notify>,
    clock: Option<Arc<deterministic::Context>>,
    requester: Option<BlockRequester>,
}

impl Chain {
    pub(crate) fn new(index: u8, ledger: Ledger) -> Self {
        let genesis_block = Block::genesis();
        let genesis = genesis_block.digest();
        let mut state = State::default();
        state.blocks.insert(genesis, genesis_block);
        state.finalized.push(genesis);
        Self {
            state: Arc::new(Mutex::new(state)),
            ledger,
            index,
            genesis,
            arrived: Arc::new(Notify::new()),
            clock: None,
            requester: None,
        }
    }

    /// This chain as driven by one run of its validator.
    pub(crate) fn in_run(&self, clock: deterministic::Context, requester: BlockRequester) -> Self {
        let mut chain = self.clone();
        chain.clock = Some(Arc::new(clock));
        chain.requester = Some(requester);
        chain
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn finalized_height(&self) -> u64 {
        self.state().finalized.len() as u64 - 1
    }

    pub(crate) fn requests(&self) -> u64 {
        self.state().requests
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        self.state().faults.clone()
    }

    pub(crate) fn errors(&self) -> Vec<String> {
        self.state().errors.clone()
    }

    /// Waits up to [`BLOCK_WAIT`] for `digest`, asking a peer for it first when `request`.
    async fn await_block(&self, digest: BlockDigest, request: bool) {
        let arrived = self.arrived.notified();
        let mut arrived = std::pin::pin!(arrived);
        arrived.as_mut().enable();
        if self.state().blocks.contains_key(&digest) {
            return;
        }
        if request
            && let Some(requester) = &self.requester
            && requester.request(digest)
        {
            self.state().requests += 1;
        }
        let Some(clock) = &self.clock else {
            return;
        };
        let timeout = std::pin::pin!(clock.sleep(BLOCK_WAIT));
        futures::future::select(arrived, timeout).await;
    }

    /// Appends `digest` and its unfinalized ancestors, or names the first missing block.
    fn finalize(&self, digest: BlockDigest) -> Result<(), BlockDigest> {
        let mut state = self.state();
        let block = *state.blocks.get(&digest).ok_or(digest)?;
        let tip = state.finalized.len() as u64 - 1;
        if block.height <= tip {
            if state.finalized[block.height as usize] != digest {
                let error = format!(
                    "validator {} refinalized height {}",
                    self.index, block.height
                );
                state.errors.push(error);
            }
            return Ok(());
        }
        let mut path = vec![digest];
        let mut cursor = block;
        while cursor.height > tip + 1 {
            path.push(cursor.parent);
            cursor = *state.blocks.get(&cursor.parent).ok_or(cursor.parent)?;
        }
        if cursor.parent != state.finalized[tip as usize] {
            let error = format!("validator {} forked at height {}", self.index, tip + 1);
            state.errors.push(error);
            return Ok(());
        }
        for digest in path.into_iter().rev() {
            state.finalized.push(digest);
            let height = state.finalized.len() as u64 - 1;
            self.ledger.record(self.index, height, digest);
        }
        Ok(())
    }
}

impl Application for Chain {
    fn genesis(&self) -> BlockDigest {
        self.genesis
    }

    async fn propose(&self, parent: BlockDigest, view: u64) -> Option<BlockDigest> {
        let mut state = self.state();
        let block = Block {
            parent,
            height: state.blocks.get(&parent)?.height + 1,
            proposer: self.index,
            view,
        };
        let digest = block.digest();
        state.blocks.insert(digest, block);
        drop(state);
        self.arrived.notify_waiters();
        Some(digest)
    }

    async fn verify(&self, parent: BlockDigest, digest: BlockDigest, view: u64) -> bool {
        // The broadcast is usually in flight: wait once before asking a peer.
        let mut request = false;
        loop {
            let missing = {
                let state = self.state();
                match (state.blocks.get(&digest), state.blocks.get(&parent)) {
                    (Some(block), Some(parent_block)) => {
                        return block.parent == parent
                            && block.height == parent_block.height + 1
                            && block.view == view;
                    }
                    (None, _) => digest,
                    (Some(_), None) => parent,
                }
            };
            self.await_block(missing, request).await;
            request = true;
        }
    }

    async fn block_bytes(&self, digest: BlockDigest) -> Option<Vec<u8>> {
        Some(self.state().blocks.get(&digest)?.encode())
    }

    async fn receive_block(&self, bytes: Vec<u8>) {
        if let Some(block) = Block::decode(&bytes) {
            self.state().blocks.insert(block.digest(), block);
            self.arrived.notify_waiters();
        }
    }

    async fn finalized(&self, digest: BlockDigest) {
        while let Err(missing) = self.finalize(digest) {
            // Finalized while this validator was away (or the broadcast was lost): fetch it.
            self.await_block(missing, true).await;
        }
    }

    async fn fault(&self, fault: Fault) {
        self.state().faults.push(fault);
    }
}
