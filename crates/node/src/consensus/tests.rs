//! Tests of the consensus driver against a small in-memory chain.
//!
//! `Chain` is a real (if tiny) application: block digest = blake3(parent || height || proposer)
//! (the proposer tag keeps blocks of different validators apart), blocks persist in shared
//! memory that outlives a `run` (standing in for the block store across a restart), and
//! finalization walks parents and asserts the links. Each validator set gets its beacon key
//! from a fresh trusted dealing, and the tests check the seeds the driver records.

use super::*;
use commonware_codec::Encode as _;
use commonware_consensus::{
    simplex::scheme::Namespace,
    types::{Epoch, Round, View},
};
use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};
use tokio::sync::Notify;

/// Upper bound on one `run` in these tests; the watchdog stops it after this long.
const RUN_DEADLINE: Duration = Duration::from_secs(20);
/// How long the test application waits for a missing block before asking peers for it.
const BLOCK_WAIT: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, Debug)]
struct Block {
    parent: BlockDigest,
    height: u64,
    proposer: u8,
}

impl Block {
    /// Encoding: parent (32) | height (u64 LE) | proposer (1).
    const BYTES: usize = 32 + 8 + 1;

    fn digest(&self) -> BlockDigest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.parent);
        hasher.update(&self.height.to_le_bytes());
        hasher.update(&[self.proposer]);
        *hasher.finalize().as_bytes()
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = self.parent.to_vec();
        bytes.extend_from_slice(&self.height.to_le_bytes());
        bytes.push(self.proposer);
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::BYTES {
            return None;
        }
        Some(Self {
            parent: bytes[..32].try_into().ok()?,
            height: u64::from_le_bytes(bytes[32..40].try_into().ok()?),
            proposer: bytes[40],
        })
    }
}

#[derive(Default)]
struct State {
    blocks: HashMap<BlockDigest, Block>,
    /// Finalized chain by height; index 0 is genesis.
    finalized: Vec<BlockDigest>,
    /// When each height was finalized (index = height - 1).
    finalized_at: Vec<Instant>,
    /// Views of every proposal, in order of the calls.
    proposed_views: Vec<u64>,
    /// Calls to `finalized`, including idempotent repeats.
    finalized_calls: u64,
    /// Block requests sent to peers.
    requests: u64,
}

impl State {
    /// Appends `digest` and its unfinalized ancestors to the finalized chain, or names the
    /// first block missing on the way.
    fn finalize(&mut self, digest: BlockDigest) -> Result<(), BlockDigest> {
        let block = *self.blocks.get(&digest).ok_or(digest)?;
        let tip = self.finalized.len() as u64 - 1;
        if block.height <= tip {
            // Reported again (replay after restart): must already be on the finalized chain.
            assert_eq!(
                self.finalized[block.height as usize], digest,
                "finality fork"
            );
            return Ok(());
        }
        let mut path = vec![digest];
        let mut cursor = block;
        while cursor.height > tip + 1 {
            path.push(cursor.parent);
            cursor = *self.blocks.get(&cursor.parent).ok_or(cursor.parent)?;
        }
        assert_eq!(cursor.parent, self.finalized[tip as usize], "finality fork");
        let now = Instant::now();
        for digest in path.into_iter().rev() {
            self.finalized.push(digest);
            self.finalized_at.push(now);
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Chain {
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    genesis: BlockDigest,
    /// Tag put into the blocks this validator proposes.
    proposer: u8,
    /// Set once `run` hands out the requester.
    requester: Option<BlockRequester>,
    /// Set once `run` hands out the seed cache.
    seeds: Option<SeedCache>,
}

impl Chain {
    fn new(proposer: u8) -> Self {
        let genesis_block = Block {
            parent: [0; 32],
            height: 0,
            proposer: 0,
        };
        let genesis = genesis_block.digest();
        let mut state = State::default();
        state.blocks.insert(genesis, genesis_block);
        state.finalized.push(genesis);
        Self {
            state: Arc::new(Mutex::new(state)),
            arrived: Arc::new(Notify::new()),
            genesis,
            proposer,
            requester: None,
            seeds: None,
        }
    }

    /// This chain as run by `node`: asks its peers for blocks and sees its seeds.
    fn in_node(&self, node: &NodeContext) -> Self {
        let mut chain = self.clone();
        chain.requester = Some(node.blocks.clone());
        chain.seeds = Some(node.seeds.clone());
        chain
    }

    /// Poison-tolerant, so one failed assertion cannot wedge the watchdog tasks.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits up to [`BLOCK_WAIT`] for `digest` to arrive, asking a peer for it if `request`.
    async fn await_block(&self, digest: BlockDigest, request: bool) {
        let arrived = self.arrived.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        if self.state().blocks.contains_key(&digest) {
            return;
        }
        if let (true, Some(requester)) = (request, &self.requester)
            && requester.request(digest)
        {
            self.state().requests += 1;
        }
        let _ = tokio::time::timeout(BLOCK_WAIT, arrived).await;
    }

    fn finalized_height(&self) -> u64 {
        self.state().finalized.len() as u64 - 1
    }

    /// Asserts the finalized chain is contiguous from genesis with correct parent links.
    fn assert_chain(&self) {
        let state = self.state();
        assert_eq!(state.finalized[0], self.genesis);
        for (height, digest) in state.finalized.iter().enumerate().skip(1) {
            let block = state.blocks[digest];
            assert_eq!(block.height, height as u64);
            assert_eq!(block.parent, state.finalized[height - 1]);
            assert_eq!(*digest, block.digest());
        }
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
            proposer: self.proposer,
        };
        let digest = block.digest();
        state.blocks.insert(digest, block);
        state.proposed_views.push(view);
        drop(state);
        self.arrived.notify_waiters();
        Some(digest)
    }

    async fn verify(&self, parent: BlockDigest, digest: BlockDigest, _view: u64) -> bool {
        // The broadcast is usually in flight: wait once before asking a peer.
        let mut request = false;
        loop {
            let missing = {
                let state = self.state();
                match (state.blocks.get(&digest), state.blocks.get(&parent)) {
                    (Some(block), Some(parent_block)) => {
                        return block.parent == parent && block.height == parent_block.height + 1;
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
        let Some(block) = Block::decode(&bytes) else {
            return;
        };
        self.state().blocks.insert(block.digest(), block);
        self.arrived.notify_waiters();
    }

    async fn finalized(&self, digest: BlockDigest) {
        self.state().finalized_calls += 1;
        loop {
            let result = self.state().finalize(digest);
            match result {
                Ok(()) => return,
                // A broadcast this node missed (e.g. before its links were up): fetch it.
                Err(missing) => self.await_block(missing, true).await,
            }
        }
    }
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address")
}

/// Chain id of every test chain.
const NAMESPACE: &[u8] = b"poi-test";

/// A fresh dealing to the validators with these ed25519 seeds, one key each, in order.
fn deal_to(seeds: &[[u8; 32]]) -> Vec<BeaconKey> {
    let publics: Vec<[u8; 32]> = seeds.iter().map(validator_public_key).collect();
    beacon::deal(&publics).expect("deal beacon keys")
}

fn test_config(dir: &std::path::Path, block_interval: Duration) -> ConsensusConfig {
    let key = deal_to(&[[1; 32]]).remove(0);
    let mut cfg = ConsensusConfig::single(dir, [1; 32], key, free_port(), NAMESPACE.to_vec());
    cfg.block_interval = block_interval;
    cfg.stop_on_ctrl_c = false;
    cfg.worker_threads = 2;
    cfg
}

/// Runs `chain` until its finalized height reaches `target` (or the deadline passes); returns
/// how long that took and the seeds the node recorded.
fn run_until(cfg: ConsensusConfig, chain: &Chain, target: u64) -> (Duration, SeedCache) {
    let started = Instant::now();
    let chain = chain.clone();
    let seeds = Arc::new(Mutex::new(None));
    let seeds_out = Arc::clone(&seeds);
    run(cfg, move |node| async move {
        let app = chain.in_node(&node);
        *seeds_out.lock().expect("seeds") = Some(node.seeds.clone());
        let watched = app.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + RUN_DEADLINE;
            while watched.finalized_height() < target && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            node.shutdown.trigger();
        });
        Ok::<_, std::io::Error>(app)
    })
    .expect("run stops cleanly");
    let seeds = seeds.lock().expect("seeds").take().expect("node started");
    (started.elapsed(), seeds)
}

/// Asserts every seed in `seeds` is the valid seed of its round for `key`'s group, and that
/// rounds `first..=last` are all there (every view of a round-robin chain ends in a
/// certificate); returns how many were checked.
fn assert_seeds(seeds: &SeedCache, key: &BeaconKey, first: u64, last: u64) -> u64 {
    let namespace = beacon::seed_namespace(NAMESPACE);
    let mut checked = 0;
    for view in first..=last {
        let seed = seeds
            .get(0, view)
            .unwrap_or_else(|| panic!("no seed for view {view}"));
        assert!(
            beacon::verify_seed(&key.identity(), &namespace, &seed),
            "view {view}"
        );
        // Core's check (what block execution runs) agrees.
        let carried = poi_core::beacon::BeaconSeed {
            epoch: seed.epoch,
            view: seed.view,
            signature: seed.signature,
        };
        assert_eq!(
            poi_core::beacon::verify_seed(&key.identity(), &namespace, &carried),
            Ok(())
        );
        let mut forged = seed;
        forged.view += 1;
        assert!(!beacon::verify_seed(&key.identity(), &namespace, &forged));
        checked += 1;
    }
    checked
}

fn blocks_per_second(chain: &Chain, first_height: u64) -> f64 {
    let state = chain.state();
    let times = &state.finalized_at[first_height as usize - 1..];
    let span = times[times.len() - 1] - times[0];
    (times.len() - 1) as f64 / span.as_secs_f64()
}

#[test]
fn single_validator_finalizes_contiguous_chain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = test_config(dir.path(), Duration::from_millis(50));
    let key = cfg.beacon_key().expect("a validator").clone();
    let chain = Chain::new(0);
    let app = chain.clone();
    let seeds = Arc::new(Mutex::new(None));
    let seeds_out = Arc::clone(&seeds);
    run(cfg, move |node| async move {
        *seeds_out.lock().expect("seeds") = Some(node.seeds.clone());
        // The caller's own tokio tasks and sockets work inside commonware's runtime.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
        let client = tokio::net::TcpStream::connect(addr).await?;
        let peer = accepted.await.expect("accept task")?;
        assert_eq!(peer, client.local_addr()?);

        let watched = app.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + RUN_DEADLINE;
            while watched.finalized_height() < 20 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            node.shutdown.trigger();
        });
        Ok::<_, std::io::Error>(app)
    })
    .expect("run stops cleanly");

    assert!(
        chain.finalized_height() >= 20,
        "only {} finalized",
        chain.finalized_height()
    );
    chain.assert_chain();
    let rate = blocks_per_second(&chain, 1);
    eprintln!("paced at 50 ms: {rate:.1} blocks/s");
    // Pacing holds: 50 ms between blocks caps the rate at 20 blocks/s.
    assert!(rate <= 21.0, "pacing violated: {rate:.1} blocks/s");
    // Every view notarized, so every view's seed was recorded, and each verifies.
    let seeds = seeds.lock().expect("seeds").take().expect("node started");
    let newest = seeds.newest().expect("seeds recorded");
    assert!(newest.view >= 20, "{newest:?}");
    assert_eq!(assert_seeds(&seeds, &key, 1, newest.view), newest.view);
}

#[test]
fn restart_resumes_from_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chain = Chain::new(0);

    let cfg = test_config(dir.path(), Duration::from_millis(20));
    let key = cfg.beacon_key().expect("a validator").clone();
    run_until(cfg.clone(), &chain, 20);
    let first_height = chain.finalized_height();
    let (first_views, first_calls) = {
        let state = chain.state();
        (state.proposed_views.len(), state.finalized_calls)
    };
    let last_view = chain
        .state()
        .proposed_views
        .last()
        .copied()
        .expect("proposals made");
    assert!(first_height >= 20);
    chain.assert_chain();

    // Same storage directory, key and block store: the engine replays its journal.
    let (_, seeds) = run_until(cfg, &chain, first_height + 20);
    let newest = seeds.newest().expect("seeds after restart");
    assert!(newest.view > last_view);
    assert_seeds(&seeds, &key, last_view + 1, newest.view);
    let state = chain.state();
    let resumed_views = &state.proposed_views[first_views..];
    assert!(!resumed_views.is_empty());
    // The journal holds the votes: views continue (a view in flight may be proposed again)
    // rather than starting over at view 1.
    assert!(
        resumed_views[0] >= last_view,
        "restarted at view {} after view {last_view}",
        resumed_views[0]
    );
    assert!(resumed_views.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(state.finalized_calls > first_calls);
    drop(state);
    assert!(chain.finalized_height() >= first_height + 20);
    chain.assert_chain();
}

#[test]
fn unpaced_throughput() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chain = Chain::new(0);
    let (elapsed, _) = run_until(test_config(dir.path(), Duration::ZERO), &chain, 200);
    assert!(chain.finalized_height() >= 200);
    chain.assert_chain();
    let rate = blocks_per_second(&chain, 1);
    eprintln!("unpaced: {rate:.0} blocks/s ({elapsed:?} for the whole run)");
}

/// Runs `start_at.len()` validators over loopback, validator `i` starting once validator 0 has
/// finalized `start_at[i]` blocks, until every one has finalized `target` blocks; checks they
/// agree, and that every validator recorded the same, valid seeds; returns their chains.
fn run_validators(start_at: &[u64], target: u64) -> Vec<Chain> {
    assert_eq!(start_at[0], 0, "validator 0 starts first");
    let count = u8::try_from(start_at.len()).expect("few validators");
    let dirs: Vec<_> = (0..count)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let seeds: Vec<[u8; 32]> = (0..count).map(|i| [i + 1; 32]).collect();
    let keys = deal_to(&seeds);
    let caches: Vec<Arc<Mutex<Option<SeedCache>>>> =
        (0..count).map(|_| Arc::new(Mutex::new(None))).collect();
    let validators: Vec<Validator> = seeds
        .iter()
        .map(|seed| Validator {
            public_key: validator_public_key(seed),
            address: free_port(),
        })
        .collect();
    let chains: Vec<Chain> = (0..count).map(Chain::new).collect();
    let threads: Vec<_> = (0..start_at.len())
        .map(|i| {
            let mut cfg = ConsensusConfig::new(
                dirs[i].path(),
                seeds[i],
                keys[i].clone(),
                validators[i].address,
                validators.clone(),
                NAMESPACE.to_vec(),
            );
            let cache = Arc::clone(&caches[i]);
            cfg.block_interval = Duration::from_millis(50);
            cfg.stop_on_ctrl_c = false;
            cfg.worker_threads = 1;
            let (chain, all, start_at) = (chains[i].clone(), chains.clone(), start_at[i]);
            // `run` blocks its thread (it owns a tokio runtime), so one thread per validator.
            std::thread::spawn(move || {
                let deadline = Instant::now() + RUN_DEADLINE;
                while all[0].finalized_height() < start_at && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                run(cfg, move |node| async move {
                    let app = chain.in_node(&node);
                    *cache.lock().expect("cache") = Some(node.seeds.clone());
                    tokio::spawn(async move {
                        let deadline = Instant::now() + RUN_DEADLINE;
                        while all.iter().any(|chain| chain.finalized_height() < target)
                            && Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        node.shutdown.trigger();
                    });
                    Ok::<_, std::io::Error>(app)
                })
            })
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .expect("validator thread")
            .expect("run stops cleanly");
    }

    for chain in &chains {
        assert!(
            chain.finalized_height() >= target,
            "{}",
            chain.finalized_height()
        );
        chain.assert_chain();
    }
    // Agreement: every validator finalized the same blocks.
    let common = chains
        .iter()
        .map(Chain::finalized_height)
        .min()
        .unwrap_or(0) as usize;
    let reference = chains[0].state().finalized[..=common].to_vec();
    for chain in &chains[1..] {
        assert_eq!(chain.state().finalized[..=common], reference[..]);
    }
    // Seeds: each validator's are valid; where two saw the same round they agree (a seed is a
    // unique signature of the round).
    let caches: Vec<SeedCache> = caches
        .iter()
        .map(|cache| cache.lock().expect("cache").clone().expect("node started"))
        .collect();
    let namespace = beacon::seed_namespace(NAMESPACE);
    let identity = keys[0].identity();
    let newest = caches[0].newest().expect("seeds recorded").view;
    let mut shared = 0;
    for view in 1..=newest {
        let seen: Vec<CertifiedSeed> = caches.iter().filter_map(|c| c.get(0, view)).collect();
        for seed in &seen {
            assert!(
                beacon::verify_seed(&identity, &namespace, seed),
                "view {view}"
            );
            assert_eq!(seed, &seen[0], "validators disagree on seed {view}");
        }
        // A late or restarted validator misses the seeds of views it was away for, so count
        // the rounds at least two validators certified (and agree on, checked above).
        shared += u64::from(seen.len() >= 2);
    }
    assert!(
        shared >= target / 2,
        "{shared} seeds seen by two or more validators"
    );
    chains
}

/// Distinct proposers among the finalized blocks of `chain`.
fn proposers(chain: &Chain) -> Vec<u8> {
    let state = chain.state();
    let mut proposers: Vec<u8> = state.finalized[1..]
        .iter()
        .map(|digest| state.blocks[digest].proposer)
        .collect();
    proposers.sort_unstable();
    proposers.dedup();
    proposers
}

#[test]
fn four_validators_agree_over_loopback() {
    let started = Instant::now();
    let chains = run_validators(&[0; 4], 20);
    // Leaders rotate, so blocks travelled over the block channel and were verified by peers.
    assert_eq!(proposers(&chains[0]), vec![0, 1, 2, 3]);
    let rate = blocks_per_second(&chains[0], 5);
    let elapsed = started.elapsed();
    eprintln!("4 validators, paced at 50 ms: {rate:.1} blocks/s after warm-up ({elapsed:?} total)");
}

#[test]
fn late_validator_fetches_missed_blocks() {
    // Validator 3 starts after the others have finalized blocks it never saw broadcast; it
    // must request them to walk its finalized chain back to genesis.
    let chains = run_validators(&[0, 0, 0, 10], 40);
    let late_chain = &chains[3];
    let first_own = {
        let state = late_chain.state();
        state.finalized[1..]
            .iter()
            .position(|digest| state.blocks[digest].proposer == 3)
    };
    // Blocks below its first own proposal were built while it was offline.
    assert!(first_own.is_some_and(|height| height > 0), "{first_own:?}");
    let requests = late_chain.state().requests;
    assert!(requests > 0);
    eprintln!("late validator: first own block at {first_own:?}, {requests} requests");
}

#[test]
fn bad_timeouts_are_typed_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(dir.path(), Duration::from_millis(50));
    cfg.timeouts.certification = cfg.timeouts.leader;
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::CertificationNotAfterLeader { .. })
    ));

    let mut cfg = test_config(dir.path(), Duration::from_millis(50));
    cfg.timeouts.leader = Duration::ZERO;
    assert_eq!(cfg.validate(), Err(ConfigError::LeaderTimeoutZero));

    let mut cfg = test_config(dir.path(), Duration::from_millis(50));
    cfg.timeouts.skip = Some(cfg.timeouts.certification);
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::SkipTooShort { .. })
    ));

    let mut cfg = test_config(dir.path(), Duration::from_millis(50));
    cfg.timeouts.nullify_retry = Duration::ZERO;
    assert_eq!(cfg.validate(), Err(ConfigError::NullifyRetryZero));

    let mut cfg = test_config(dir.path(), Duration::from_secs(1));
    cfg.timeouts.leader = Duration::from_secs(1);
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::BlockIntervalTooLong { .. })
    ));

    // `run` rejects the config before building a runtime or touching storage.
    let missing = dir.path().join("never-created");
    let mut cfg = test_config(&missing, Duration::from_millis(50));
    cfg.view_retention = 0;
    let result = run(cfg, |_| async { Ok::<_, std::io::Error>(Chain::new(0)) });
    assert!(matches!(
        result,
        Err(ConsensusError::Config(ConfigError::ViewRetentionZero))
    ));
    assert!(!missing.exists());
}

#[test]
fn bad_validator_sets_are_typed_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = test_config(dir.path(), Duration::from_millis(50));
    base.validate().expect("single validator config is valid");

    let mut cfg = base.clone();
    cfg.validators.clear();
    assert_eq!(cfg.validate(), Err(ConfigError::NoValidators));

    let mut cfg = base.clone();
    cfg.validators.push(cfg.validators[0]);
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::DuplicateValidator { .. })
    ));

    let mut cfg = base.clone();
    cfg.validators[0].public_key = validator_public_key(&[2; 32]);
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::NotAValidator { .. })
    ));

    let mut cfg = base.clone();
    cfg.namespace.clear();
    assert_eq!(cfg.validate(), Err(ConfigError::EmptyNamespace));

    let mut cfg = base;
    cfg.max_block_bytes = 0;
    assert!(matches!(
        cfg.validate(),
        Err(ConfigError::MaxBlockBytes { .. })
    ));
}

#[test]
fn taken_listen_address_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let mut cfg = test_config(dir.path(), Duration::from_millis(50));
    cfg.listen = taken.local_addr().expect("local address");
    cfg.validators[0].address = cfg.listen;
    let result = run(cfg, |_| async { Ok::<_, std::io::Error>(Chain::new(0)) });
    assert!(
        matches!(result, Err(ConsensusError::Bind { .. })),
        "{result:?}"
    );
}

#[test]
fn shutdown_is_observable_and_idempotent() {
    let shutdown = Shutdown::new();
    assert!(!shutdown.is_triggered());
    let clone = shutdown.clone();
    clone.trigger();
    clone.trigger();
    assert!(shutdown.is_triggered());
    futures::executor::block_on(shutdown.wait());
}

#[test]
fn seed_namespace_and_message_are_commonwares() {
    // Pinned: genesis records these bytes and core verifies seeds with them.
    assert_eq!(
        beacon::seed_namespace(NAMESPACE),
        b"poi-test_CONSENSUS_SEED"
    );
    let consensus = commonware_utils::union(NAMESPACE, b"_CONSENSUS");
    assert_eq!(
        beacon::seed_namespace(NAMESPACE),
        Namespace::new(&consensus).seed
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = test_config(dir.path(), Duration::from_millis(50));
    assert_eq!(cfg.seed_namespace(), Namespace::new(&consensus).seed);
    for (epoch, view) in [(0, 0), (0, 1), (0, 127), (0, 128), (3, u64::MAX)] {
        let round = Round::new(Epoch::new(epoch), View::new(view));
        assert_eq!(beacon::seed_message(epoch, view), round.encode().to_vec());
        assert_eq!(
            poi_core::beacon::seed_message(epoch, view),
            round.encode().to_vec()
        );
    }
    assert_eq!(beacon::seed_message(0, 300), vec![0, 0xac, 0x02]);
}

#[test]
fn beacon_keys_round_trip_and_bad_ones_are_typed_errors() {
    let seeds = [[1; 32], [2; 32], [3; 32], [4; 32]];
    let keys = deal_to(&seeds);
    assert_eq!(keys.len(), 4);
    let identity = keys[0].identity();
    for key in &keys {
        assert_eq!(key.identity(), identity);
        assert_eq!((key.validators(), key.threshold()), (4, 3));
        let decoded =
            BeaconKey::from_bytes(&key.polynomial_bytes(), &key.share_bytes()).expect("round trip");
        assert_eq!(decoded.share_bytes(), key.share_bytes());
        assert_eq!(decoded.identity(), identity);
    }
    // A share of another dealing, truncated bytes and garbage are refused, never a panic.
    let other = deal_to(&seeds);
    assert!(matches!(
        BeaconKey::from_bytes(&keys[0].polynomial_bytes(), &other[0].share_bytes()),
        Err(BeaconKeyError::ShareMismatch { .. })
    ));
    let polynomial = keys[0].polynomial_bytes();
    assert!(matches!(
        BeaconKey::from_bytes(&polynomial[..polynomial.len() - 1], &keys[0].share_bytes()),
        Err(BeaconKeyError::Polynomial(_))
    ));
    assert!(matches!(
        BeaconKey::from_bytes(&polynomial, &[7; 5]),
        Err(BeaconKeyError::Share(_))
    ));
    assert!(matches!(
        beacon::deal(&[validator_public_key(&[1; 32]); 2]),
        Err(BeaconKeyError::DuplicateValidator)
    ));
    assert!(matches!(
        beacon::deal(&[]),
        Err(BeaconKeyError::Validators { count: 0 })
    ));

    // A config holding another validator's share, or a key dealt to another set, is refused
    // before commonware's signer could assert.
    let validators: Vec<Validator> = seeds
        .iter()
        .map(|seed| Validator {
            public_key: validator_public_key(seed),
            address: free_port(),
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = |seed: usize, key: &BeaconKey| {
        let mut cfg = ConsensusConfig::new(
            dir.path(),
            seeds[seed],
            key.clone(),
            validators[seed].address,
            validators.clone(),
            NAMESPACE.to_vec(),
        );
        cfg.stop_on_ctrl_c = false;
        cfg
    };
    config(0, &keys[0]).validate().expect("own share is valid");
    let own_position = keys[0].share_index();
    let wrong = keys
        .iter()
        .find(|key| key.share_index() != own_position)
        .expect("four shares");
    assert!(matches!(
        config(0, wrong).validate(),
        Err(ConfigError::BeaconShareNotOurs { .. })
    ));
    let single = deal_to(&[seeds[0]]).remove(0);
    assert!(matches!(
        config(0, &single).validate(),
        Err(ConfigError::BeaconSetSize {
            dealt: 1,
            validators: 4
        })
    ));
}

#[test]
fn seed_cache_is_bounded() {
    let cache = SeedCache::new();
    assert!(cache.is_empty());
    let count = SEED_CACHE_VIEWS_MAX as u64 + 10;
    for view in 0..count {
        cache.insert(CertifiedSeed {
            epoch: 0,
            view,
            signature: [1; beacon::SEED_BYTES],
        });
    }
    assert_eq!(cache.len(), SEED_CACHE_VIEWS_MAX);
    assert!(cache.get(0, 9).is_none());
    assert!(cache.get(0, 10).is_some());
    assert_eq!(cache.newest().map(|seed| seed.view), Some(count - 1));
}

#[test]
fn fault_evidence_verifies_with_public_data_only() {
    use commonware_consensus::simplex::types::{
        Activity, ConflictingFinalize, ConflictingNotarize, Finalize, Notarize, Nullify,
        NullifyFinalize, Proposal,
    };
    let seeds = [[1; 32], [2; 32], [3; 32], [4; 32]];
    let keys = deal_to(&seeds);
    let validators: Vec<Validator> = seeds
        .iter()
        .map(|seed| Validator {
            public_key: validator_public_key(seed),
            address: free_port(),
        })
        .collect();
    let publics: Vec<[u8; 32]> = validators.iter().map(|v| v.public_key).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = ConsensusConfig::new(
        dir.path(),
        seeds[2],
        keys[2].clone(),
        validators[2].address,
        validators.clone(),
        NAMESPACE.to_vec(),
    );
    let prepared = cfg.prepare().expect("valid config");
    let scheme = &prepared.scheme;
    let round = Round::new(Epoch::new(0), View::new(7));
    let proposal = |byte: u8| Proposal::new(round, View::new(6), Digest([byte; 32]));
    let notarize = |byte| Notarize::sign(scheme, proposal(byte)).expect("signer");
    let finalize = |byte| Finalize::sign(scheme, proposal(byte)).expect("signer");
    let nullify = Nullify::sign::<Digest>(scheme, round).expect("signer");
    let activities = [
        Activity::ConflictingNotarize(ConflictingNotarize::new(notarize(1), notarize(2))),
        Activity::ConflictingFinalize(ConflictingFinalize::new(finalize(1), finalize(2))),
        Activity::NullifyFinalize(NullifyFinalize::new(nullify, finalize(1))),
    ];
    let polynomial = keys[0].polynomial_bytes();
    for (activity, kind) in activities.iter().zip([
        FaultKind::ConflictingNotarize,
        FaultKind::ConflictingFinalize,
        FaultKind::NullifyFinalize,
    ]) {
        let fault = fault::fault_of(activity, &prepared.participants).expect("a fault");
        assert_eq!(fault.kind, kind);
        assert_eq!(fault.offender, validator_public_key(&seeds[2]));
        assert_eq!((fault.view, fault.epoch), (7, 0));
        assert!(verify_fault(NAMESPACE, &publics, &polynomial, &fault));
        // Relabelled, tampered, another chain, another dealing, garbage: refused, no panic.
        let mut other = fault.clone();
        other.offender = publics[0];
        assert!(!verify_fault(NAMESPACE, &publics, &polynomial, &other));
        let mut other = fault.clone();
        other.view += 1;
        assert!(!verify_fault(NAMESPACE, &publics, &polynomial, &other));
        let mut other = fault.clone();
        *other.encoded.last_mut().expect("bytes") ^= 1;
        assert!(!verify_fault(NAMESPACE, &publics, &polynomial, &other));
        assert!(!verify_fault(b"other-chain", &publics, &polynomial, &fault));
        let foreign = deal_to(&seeds)[0].polynomial_bytes();
        assert!(!verify_fault(NAMESPACE, &publics, &foreign, &fault));
        assert!(!verify_fault(NAMESPACE, &publics[..3], &polynomial, &fault));
        assert!(!verify_fault(NAMESPACE, &publics, &[1, 2, 3], &fault));
        let mut other = fault.clone();
        other.encoded.truncate(10);
        assert!(!verify_fault(NAMESPACE, &publics, &polynomial, &other));
    }
    // Votes and certificates are not faults.
    let vote = Activity::Notarize(notarize(1));
    assert!(fault::fault_of(&vote, &prepared.participants).is_none());
}

#[test]
fn a_finalization_of_another_epoch_verifies_under_the_group_key_alone() {
    use commonware_consensus::simplex::types::{Finalization, Finalize, Proposal};
    let seeds = [[1; 32], [2; 32], [3; 32], [4; 32]];
    let keys = deal_to(&seeds);
    let validators: Vec<Validator> = seeds
        .iter()
        .map(|seed| Validator {
            public_key: validator_public_key(seed),
            address: free_port(),
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    // Epoch 3: what a node of an older epoch hears from a peer that switched since.
    let round = Round::new(Epoch::new(3), View::new(9));
    let proposal = Proposal::new(round, View::new(8), Digest([7; 32]));
    let schemes: Vec<_> = (0..3)
        .map(|i| {
            let cfg = ConsensusConfig::new(
                dir.path(),
                seeds[i],
                keys[i].clone(),
                validators[i].address,
                validators.clone(),
                NAMESPACE.to_vec(),
            );
            cfg.prepare().expect("valid config").scheme
        })
        .collect();
    let votes: Vec<_> = schemes
        .iter()
        .map(|scheme| Finalize::sign(scheme, proposal.clone()).expect("signer"))
        .collect();
    let finalization = Finalization::from_finalizes(
        &schemes[0],
        commonware_utils::non_empty![@votes.iter()],
        &commonware_parallel::Sequential,
    )
    .expect("a quorum of finalize votes");
    let latest = LatestFinalization::new();
    assert_eq!(latest.response(), None, "nothing seen yet");
    latest.record(&finalization);
    let message = latest.response().expect("a response");
    assert_eq!(message[0], SYNC_RESPONSE);
    let namespace = consensus_namespace(NAMESPACE);
    let verified = verify_finalization(&message, &namespace, &keys[0].identity())
        .expect("verifies under the group key");
    assert_eq!(
        verified,
        VerifiedFinalization {
            epoch: 3,
            view: 9,
            digest: [7; 32],
        }
    );
    // Another group key, another chain, a wrong kind, truncated or padded bytes: refused.
    let other = deal_to(&seeds);
    assert!(verify_finalization(&message, &namespace, &other[0].identity()).is_none());
    let elsewhere = consensus_namespace(b"another-chain");
    assert!(verify_finalization(&message, &elsewhere, &keys[0].identity()).is_none());
    let mut wrong_kind = message.clone();
    wrong_kind[0] = SYNC_REQUEST;
    assert!(verify_finalization(&wrong_kind, &namespace, &keys[0].identity()).is_none());
    assert!(
        verify_finalization(
            &message[..message.len() - 1],
            &namespace,
            &keys[0].identity()
        )
        .is_none()
    );
    let mut padded = message.clone();
    padded.push(0);
    assert!(verify_finalization(&padded, &namespace, &keys[0].identity()).is_none());
    assert!(verify_finalization(&[], &namespace, &keys[0].identity()).is_none());
}
