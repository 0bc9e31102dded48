//! The randomness beacon end to end: a single validator runs real consensus (the threshold-VRF
//! scheme over loopback p2p) on a real ledger; a PoI commitment creates a draw target, and the
//! target's seed, certified by consensus, lands in a block header, verifies against genesis'
//! identity and is drawn from. A block carrying a seed nobody wants, or one naming another view
//! than the round it is verified for, is refused.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use poi_core::beacon::{self as core_beacon, BeaconSeed};
use poi_core::block::Block;
use poi_core::chain::{BlockError, Mode};
use poi_core::event::TxOutcome;
use poi_core::genesis::Genesis;
use poi_core::market::MarketMsg;
use poi_core::params::Params;
use poi_core::poi::{self, PoiMsg};
use poi_core::staking::StakingMsg;
use poi_core::tx::{Msg, Tx, TxBody};
use poi_node::consensus::{self, ConsensusConfig, SeedCache, Shutdown, beacon};
use poi_node::ledger::Ledger;
use poi_node::metrics::Metrics;
use poi_node::service::{LedgerApp, genesis_beacon};

use crate::{CHAIN_ID, FUNDED, addr, alice, bob, genesis_with, min_fee, validator};

/// Views between a commitment and its draw target: the smallest core allows.
const DELAY_VIEWS: u64 = 3;
/// The market price of the test chain (a fixed price band, as in core's PoI tests).
const PRICE: u128 = 10;
/// How long a step of the test may wait for the chain.
const WAIT_MAX: Duration = Duration::from_secs(30);

fn signed(key: &SigningKey, nonce: u64, msg: Msg) -> Tx {
    let mut body = TxBody {
        chain_id: CHAIN_ID.into(),
        signer: addr(key),
        nonce,
        fee: 0,
        msg,
    };
    body.fee = min_fee(&body.clone().sign(key));
    body.sign(key)
}

fn params() -> Params {
    let mut params = Params::default();
    params.market.collateral_per_unit = 1_000;
    params.market.provider_collateral_min = 1_000;
    params.market.price_min = PRICE;
    params.market.price_max = PRICE;
    params.market.price_start = PRICE;
    params.market.heartbeat_timeout_blocks = 100_000;
    params.market.reserve_bps = Vec::new();
    params.poi.beacon_delay_views = DELAY_VIEWS;
    params
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address")
}

/// A single validator running consensus on a ledger, in its own thread.
struct Validator {
    ledger: Arc<Ledger>,
    seeds: SeedCache,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Validator {
    fn start() -> (Validator, Genesis) {
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = validator().to_bytes();
        let key = beacon::deal(&[consensus::validator_public_key(&seed)])
            .expect("deal")
            .remove(0);
        let mut genesis = genesis_with(vec![(addr(&alice()), FUNDED), (addr(&bob()), FUNDED)]);
        genesis.params = params();
        genesis.beacon = Some(genesis_beacon(CHAIN_ID, &key));
        // Inference jobs name a registered version: a root charlm listed at genesis (id 0).
        genesis.models = vec![poi_core::genesis::GenesisModel {
            name: "charlm-base".into(),
            model: "charlm".into(),
            params_digest: hex::encode([0x11; 32]),
            developers: vec![],
            base: None,
        }];
        let ledger = Arc::new(
            Ledger::open(dir.path().join("data"), genesis.clone(), Metrics::default())
                .expect("open"),
        );
        let mut cfg = ConsensusConfig::single(
            dir.path().join("consensus"),
            seed,
            key,
            free_port(),
            CHAIN_ID.as_bytes().to_vec(),
        );
        cfg.block_interval = Duration::from_millis(20);
        cfg.stop_on_ctrl_c = false;
        cfg.worker_threads = 2;
        let (started, handles) = mpsc::channel();
        let served = Arc::clone(&ledger);
        let thread = std::thread::spawn(move || {
            consensus::run(cfg, move |node| async move {
                let app = LedgerApp::new(
                    served,
                    addr(&validator()),
                    node.seeds.clone(),
                    node.blocks.clone(),
                    node.shutdown.clone(),
                )?;
                let _ = started.send((node.seeds.clone(), node.shutdown.clone()));
                Ok::<_, poi_node::error::NodeError>(app)
            })
            .expect("consensus stops cleanly");
        });
        let (seeds, shutdown) = handles.recv_timeout(WAIT_MAX).expect("consensus started");
        let validator = Validator {
            ledger,
            seeds,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        };
        (validator, genesis)
    }

    /// Submits `tx` and waits until a block commits it successfully; returns that height.
    #[track_caller]
    fn commit(&self, tx: &Tx) -> u64 {
        let hash = self.ledger.submit(&tx.encode()).expect("admitted");
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            if let Some(receipt) = self.ledger.receipt(&hash).expect("receipt") {
                assert_eq!(receipt.outcome, TxOutcome::Success, "{receipt:?}");
                return receipt.height;
            }
            assert!(Instant::now() < deadline, "transaction not committed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn block(&self, height: u64) -> Block {
        self.ledger
            .block(height)
            .expect("read block")
            .expect("committed block")
            .block
    }
}

impl Validator {
    /// Stops consensus and waits for it (the ledger stays open).
    fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("consensus thread");
        }
        self.ledger.land().expect("last commit lands");
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_commitments_target_seed_is_certified_carried_and_drawn() {
    let (node, genesis) = Validator::start();
    let (provider, user) = (bob(), alice());
    node.commit(&signed(
        &provider,
        0,
        Msg::Staking(StakingMsg::Bond { amount: 1_000_000 }),
    ));
    node.commit(&signed(
        &provider,
        1,
        Msg::Market(MarketMsg::Register {
            hardware: "1x test gpu".into(),
            capacity_units_per_block: 100,
            class: 0,
            ask_price: 5,
            endpoint: "https://provider.invalid/ckpt".into(),
            collateral: 100_000,
        }),
    ));
    let inference = PoiMsg::SubmitInference {
        model: "charlm".into(),
        version: 0,
        requests: 16,
        input_root: [7; 32],
        units: 1_000,
        max_price: PRICE,
    };
    node.commit(&signed(&user, 0, Msg::Poi(inference)));
    node.commit(&signed(
        &provider,
        2,
        Msg::Market(MarketMsg::StartJob { id: 0 }),
    ));
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    let commit_height = node.commit(&signed(&provider, 3, Msg::Poi(commit)));
    let commit_view = node.block(commit_height).header.view;
    let snapshot = node.ledger.snapshot().expect("snapshot");
    let job = poi::read_job(&snapshot, 0).expect("read").expect("job");
    let target = (0, commit_view + DELAY_VIEWS);
    assert_eq!(job.draw_target, Some(target));

    // Consensus certifies the target view; the next proposer carries its seed.
    let deadline = Instant::now() + WAIT_MAX;
    let randomness = loop {
        let snapshot = node.ledger.snapshot().expect("snapshot");
        let job = poi::read_job(&snapshot, 0).expect("read").expect("job");
        if let Some(randomness) = job.randomness {
            break randomness;
        }
        assert!(Instant::now() < deadline, "target {target:?} never drawn");
        std::thread::sleep(Duration::from_millis(10));
    };
    let tip = node.ledger.tip().height;
    let carriers: Vec<Block> = (commit_height..=tip)
        .map(|height| node.block(height))
        .filter(|block| !block.header.seeds.is_empty())
        .collect();
    assert_eq!(carriers.len(), 1, "one block carries the seed");
    let carrier = &carriers[0];
    assert_eq!(carrier.header.seeds.len(), 1);
    let seed = &carrier.header.seeds[0];
    assert_eq!((seed.epoch, seed.view), target);
    // Carried by the first block whose view is past the target (allowing one view of slack
    // for the certificate to reach the cache before the proposal).
    assert!(carrier.header.view > target.1);
    eprintln!(
        "commit at view {commit_view}, target view {}, seed carried at view {}",
        target.1, carrier.header.view
    );
    assert!(
        carrier.header.view <= target.1 + 3,
        "carried at view {} for target view {}",
        carrier.header.view,
        target.1
    );
    let (identity, namespace) = genesis
        .beacon
        .as_ref()
        .expect("beacon")
        .decode()
        .expect("ok");
    assert_eq!(
        core_beacon::verify_seed(&identity, &namespace, seed),
        Ok(())
    );
    assert_eq!(randomness, seed.randomness());
    let cached = node.seeds.get(seed.epoch, seed.view).expect("cached");
    assert_eq!(cached.signature, seed.signature);
    let snapshot = node.ledger.snapshot().expect("snapshot");
    let record = poi::beacon::read_beacon(&snapshot)
        .expect("read")
        .expect("beacon");
    assert_eq!(
        (record.seeds_recorded, record.last_seed_view),
        (1, target.1)
    );
}

#[test]
fn blocks_with_unwanted_seeds_or_another_view_are_refused() {
    let (mut node, _) = Validator::start();
    // Let consensus certify a few views, so the cache holds real seeds.
    let deadline = Instant::now() + WAIT_MAX;
    while node.seeds.len() < 3 {
        assert!(Instant::now() < deadline, "no seeds recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    node.stop();
    let real = node.seeds.newest().expect("a seed");
    // A second ledger on the same genesis verifies blocks the first one builds by hand.
    let tip = node.ledger.tip();
    let parent = node.block(tip.height).header;
    let me = addr(&validator());
    let view = parent.view + 1;
    let good = node
        .ledger
        .build_block(tip.block_hash, me, view)
        .expect("build");
    let bytes = node
        .ledger
        .block_bytes(&good)
        .expect("read")
        .expect("bytes");
    let block = Block::decode(&bytes).expect("decode");
    assert!(
        block.header.seeds.is_empty(),
        "no PoI target, no seed wanted"
    );

    // The same block claiming another view than its round: refused.
    let other = tempfile::tempdir().expect("temp dir");
    let verifier = Ledger::open(
        other.path().join("data"),
        node.ledger.genesis().clone(),
        Metrics::default(),
    )
    .expect("open");
    for height in 1..=tip.height {
        let bytes = node
            .ledger
            .block_bytes(&node.block(height).hash())
            .expect("read");
        let hash = verifier
            .receive_block(&bytes.expect("bytes"))
            .expect("receive");
        let view = node.block(height).header.view;
        assert!(
            verifier.verify_block(&hash, view).expect("verify"),
            "height {height}"
        );
        verifier.finalize(&hash).expect("finalize");
    }
    let hash = verifier.receive_block(&bytes).expect("receive");
    assert!(!verifier.verify_block(&hash, view + 1).expect("verify"));
    assert!(verifier.verify_block(&hash, view).expect("verify"));

    // A real, valid seed that no job waits for: the block is invalid, not a crash.
    let mut seeded = block.clone();
    seeded.header.seeds = vec![BeaconSeed {
        epoch: real.epoch,
        view: real.view,
        signature: real.signature,
    }];
    let hash = verifier.receive_block(&seeded.encode()).expect("receive");
    assert!(!verifier.verify_block(&hash, view).expect("verify"));
    // Refused for the seed: core's begin-block hook rejects it.
    let snapshot = verifier.snapshot().expect("snapshot");
    let refused = verifier
        .chain()
        .execute_block(&snapshot, &seeded.header.context(), vec![], Mode::Verify)
        .map(|_| ())
        .expect_err("an unwanted seed");
    assert!(
        matches!(
            &refused,
            BlockError::Hook {
                hook: "begin_block",
                ..
            }
        ) && refused.to_string().contains("not wanted"),
        "{refused}"
    );
    // Corrupt bytes too.
    seeded.header.seeds[0].signature[0] ^= 1;
    let hash = verifier.receive_block(&seeded.encode()).expect("receive");
    assert!(!verifier.verify_block(&hash, view).expect("verify"));
}
