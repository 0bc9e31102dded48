//! The agents against a real node: a [`Ledger`] served by the node's HTTP API on a loopback
//! port. Blocks come either from a background thread that builds and finalizes one every
//! [`BLOCK_INTERVAL`] (no consensus and so no beacon: commitments wait undrawn), or from a
//! single validator running real consensus on the threshold-VRF scheme with a dealt beacon
//! key ([`TestChain::start_with_beacon`]), whose blocks carry the seeds that draw checks.
//!
//! The test here: a provider agent registers, starts the job matched to it, trains it with
//! repops and commits through PoI; validator agents bond and register as verifiers.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use poi_agents::provider::{Provider, ProviderConfig};
use poi_agents::store::JobRecord;
use poi_agents::validator::{Validator, ValidatorConfig};
use poi_agents::{NodeClient, Wallet};
use poi_core::Address;
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::params::Params;
use poi_core::poi::PoiMsg;
use poi_core::token::Amount;
use poi_core::tx::Msg;
use poi_node::ledger::Ledger;
use poi_node::metrics::Metrics;
use tokio::sync::oneshot;

use crate::{STEPS, init_tracing, tiny_spec};

/// Chain id of the test chain.
const CHAIN_ID: &str = "poi-agents-test";
/// Each funded account's balance.
const FUNDED: Amount = 1_000_000_000_000_000_000;
/// Time between blocks.
const BLOCK_INTERVAL: Duration = Duration::from_millis(100);
/// How long a step of a test may wait for the chain.
const WAIT_MAX: Duration = Duration::from_secs(60);
/// The seed of the proposer's (and consensus validator's) key.
const PROPOSER: u8 = 100;
/// The market price band of the test chain.
const PRICE: Amount = 10;

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn addr(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

/// Test parameters: a fixed price, `k = 3` for 12 steps, every segment checked, short windows.
pub(crate) fn params() -> Params {
    let mut p = Params::default();
    p.market.collateral_per_unit = 1_000;
    p.market.provider_collateral_min = 1_000;
    p.market.price_min = PRICE;
    p.market.price_max = PRICE;
    p.market.price_start = PRICE;
    p.market.heartbeat_timeout_blocks = 1_000;
    p.market.reserve_bps = Vec::new();
    p.poi.segments_target = 4;
    p.poi.check_bps = 10_000;
    p.poi.infer_check_bps = 10_000;
    p.poi.verifier_bond_min = 1_000_000;
    p.poi.beacon_delay_views = 3;
    p.poi.check_blocks = 40;
    p.poi.reveal_blocks = 5;
    p.poi.claim_blocks = 30;
    p.poi.registry_min_improvement_ppm = 1;
    p
}

/// What produces the blocks.
enum Blocks {
    /// A thread building one every [`BLOCK_INTERVAL`].
    Hand(Arc<AtomicBool>),
    /// Consensus (one validator).
    Consensus(poi_node::consensus::Shutdown),
}

/// A node: ledger, API on loopback, blocks by hand or by consensus.
pub(crate) struct TestChain {
    pub(crate) base: String,
    blocks: Blocks,
    thread: Option<JoinHandle<()>>,
    shutdown: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl TestChain {
    fn genesis(funded: &[&SigningKey]) -> Genesis {
        Genesis {
            chain_id: CHAIN_ID.into(),
            genesis_time_ms: 1_767_225_600_000,
            validators: vec![addr(&key(PROPOSER))],
            params: params(),
            accounts: funded
                .iter()
                .map(|k| GenesisAccount {
                    address: addr(k),
                    balance: FUNDED,
                })
                .collect(),
            beacon: None,
            models: Vec::new(),
            data: Vec::new(),
        }
    }

    /// A chain whose blocks a thread builds (no beacon).
    pub(crate) fn start(funded: &[&SigningKey]) -> TestChain {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Arc::new(
            Ledger::open(
                dir.path().join("data"),
                Self::genesis(funded),
                Metrics::default(),
            )
            .expect("open"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (Arc::clone(&ledger), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(BLOCK_INTERVAL);
                let tip = l.tip();
                let hash = l
                    .build_block(tip.block_hash, addr(&key(PROPOSER)), tip.height + 1)
                    .expect("build block");
                l.finalize(&hash).expect("finalize");
            }
        });
        Self::serve(ledger, Blocks::Hand(stop), thread, dir)
    }

    /// A chain run by one consensus validator with a dealt beacon key: blocks carry seeds.
    pub(crate) fn start_with_beacon(funded: &[&SigningKey]) -> TestChain {
        Self::start_with_beacon_params(funded, |_| {})
    }

    /// [`TestChain::start_with_beacon`] with `tweak` applied to the genesis parameters.
    pub(crate) fn start_with_beacon_params(
        funded: &[&SigningKey],
        tweak: impl FnOnce(&mut Params),
    ) -> TestChain {
        use poi_node::consensus::{self, ConsensusConfig, beacon};
        use poi_node::service::{LedgerApp, genesis_beacon};
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = key(PROPOSER).to_bytes();
        let share = beacon::deal(&[consensus::validator_public_key(&seed)])
            .expect("deal")
            .remove(0);
        let mut genesis = Self::genesis(funded);
        tweak(&mut genesis.params);
        genesis.beacon = Some(genesis_beacon(CHAIN_ID, &share));
        let ledger = Arc::new(
            Ledger::open(dir.path().join("data"), genesis, Metrics::default()).expect("open"),
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let mut cfg = ConsensusConfig::single(
            dir.path().join("consensus"),
            seed,
            share,
            port,
            CHAIN_ID.as_bytes().to_vec(),
        );
        cfg.block_interval = BLOCK_INTERVAL;
        cfg.stop_on_ctrl_c = false;
        cfg.worker_threads = 1;
        let (started, handles) = std::sync::mpsc::channel();
        let served = Arc::clone(&ledger);
        let thread = std::thread::spawn(move || {
            consensus::run(cfg, move |node| async move {
                let app = LedgerApp::new(
                    served,
                    addr(&key(PROPOSER)),
                    node.seeds.clone(),
                    node.blocks.clone(),
                    node.shutdown.clone(),
                )?;
                let _ = started.send(node.shutdown.clone());
                Ok::<_, poi_node::error::NodeError>(app)
            })
            .expect("consensus stops cleanly");
        });
        let shutdown = handles.recv_timeout(WAIT_MAX).expect("consensus started");
        Self::serve(ledger, Blocks::Consensus(shutdown), thread, dir)
    }

    fn serve(
        ledger: Arc<Ledger>,
        blocks: Blocks,
        thread: JoinHandle<()>,
        dir: tempfile::TempDir,
    ) -> TestChain {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("listener")
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        runtime.spawn(async move {
            let stop = async move {
                let _ = stopped.await;
            };
            poi_node::api::serve_on(ledger, listener, stop)
                .await
                .expect("API server");
        });
        TestChain {
            base,
            blocks,
            thread: Some(thread),
            shutdown: Some(shutdown),
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    pub(crate) fn client(&self) -> NodeClient {
        NodeClient::new(&self.base)
    }

    /// Waits until `f` returns `Some`.
    #[track_caller]
    pub(crate) fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(BLOCK_INTERVAL);
        }
    }
}

impl Drop for TestChain {
    fn drop(&mut self) {
        match &self.blocks {
            Blocks::Hand(stop) => stop.store(true, Ordering::Relaxed),
            Blocks::Consensus(shutdown) => shutdown.trigger(),
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// An agent running on its own thread until dropped.
pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn run_provider(
    chain: &TestChain,
    home: &Path,
    name: &str,
    key: SigningKey,
    cfg: impl FnOnce(&mut ProviderConfig),
) -> Running {
    let mut config = ProviderConfig::new(
        name,
        home.to_owned(),
        &chain.base,
        "127.0.0.1:0".parse().unwrap(),
    );
    config.poll = Duration::from_millis(100);
    cfg(&mut config);
    let mut provider = Provider::start(config, key).expect("provider starts");
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let thread = std::thread::spawn(move || provider.run(&s).expect("provider runs"));
    Running {
        stop,
        thread: Some(thread),
    }
}

pub(crate) fn run_validator(
    chain: &TestChain,
    home: &Path,
    name: &str,
    key: SigningKey,
    cfg: impl FnOnce(&mut ValidatorConfig),
) -> Running {
    let mut config = ValidatorConfig::new(name, home.to_owned(), &chain.base);
    config.poll = Duration::from_millis(100);
    cfg(&mut config);
    let mut validator = Validator::new(config, key).expect("validator");
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let thread = std::thread::spawn(move || validator.run(&s).expect("validator runs"));
    Running {
        stop,
        thread: Some(thread),
    }
}

/// The owner submits the tiny training job; returns its id.
pub(crate) fn submit_training(chain: &TestChain, owner: &mut Wallet) -> u64 {
    let node = chain.client();
    let msg = PoiMsg::SubmitTraining {
        model: "mlp".into(),
        datasets: vec!["iris".into()],
        spec: tiny_spec().encode(),
        steps: STEPS,
        eval_commitment: [2; 32],
        base_model: None,
        units: 1_000,
        max_price: PRICE,
    };
    let included = owner.send(&node, Msg::Poi(msg)).expect("submitted");
    let events = included.status["receipt"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    events
        .iter()
        .find(|e| e["kind"] == "training_submitted")
        .and_then(|e| {
            e["attributes"].as_array()?.iter().find(|p| p[0] == "job")?[1]
                .as_str()?
                .parse()
                .ok()
        })
        .expect("a training_submitted event with the job id")
}

#[test]
fn a_provider_registers_trains_and_commits_and_validators_register() {
    let (prov, owner, v1, v2) = (key(1), key(2), key(3), key(4));
    let chain = TestChain::start(&[&prov, &owner, &v1, &v2]);
    let home = tempfile::tempdir().expect("home");
    let node = chain.client();
    let _provider = run_provider(&chain, home.path(), "prov", prov.clone(), |_| {});
    let _validators = [
        run_validator(&chain, home.path(), "v1", v1.clone(), |_| {}),
        run_validator(&chain, home.path(), "v2", v2.clone(), |_| {}),
    ];
    chain.wait_for("the provider's registration", || {
        node.get_opt(&format!("/providers/{}", addr(&prov)))
            .ok()
            .flatten()
    });
    let mut wallet = Wallet::new(owner);
    let id = submit_training(&chain, &mut wallet);
    let job = chain.wait_for("the commit", || {
        let job = node.get(&format!("/jobs/{id}")).ok()?;
        (job["status"] == "committed").then_some(job)
    });
    assert_eq!(job["provider"], addr(&prov).to_string());
    let poi = &job["poi"];
    assert_eq!(poi["status"], "verifying", "{poi}");
    assert_eq!(poi["spec"], hex::encode(tiny_spec().encode()));
    // What was committed is what the provider keeps on disk and serves.
    let record = poi_agents::store::AgentDir::new(home.path(), "prov")
        .record(id)
        .expect("record")
        .expect("written");
    let JobRecord::Training { root, .. } = record else {
        panic!("a training record");
    };
    assert_eq!(poi["commitment"]["root"], root.to_hex());
    for v in [&v1, &v2] {
        let verifier = chain.wait_for("a verifier registration", || {
            node.get_opt(&format!("/validators/{}", addr(v)))
                .ok()
                .flatten()
        });
        assert_eq!(verifier["bond"], "1000000");
        let open = node
            .get(&format!("/validators/{}/checks", addr(v)))
            .expect("checks");
        assert_eq!(
            open["checks"],
            serde_json::json!([]),
            "no beacon, no checks"
        );
    }
    let slashes = node.get("/slashes").expect("slashes");
    assert_eq!(slashes["slashes"], serde_json::json!([]));
    // Typed JSON errors of the PoI endpoints.
    for (path, status, code) in [
        ("/slashes?limit=0", 400, "bad_query"),
        ("/slashes?what=1", 400, "bad_query"),
        ("/validators/nope", 400, "bad_address"),
        ("/models/x", 400, "bad_model_id"),
        ("/models/7", 404, "not_found"),
        ("/beacon", 404, "not_found"),
    ] {
        match node.get(path) {
            Err(poi_agents::AgentError::Rejected {
                status: s, code: c, ..
            }) => {
                assert_eq!((s, c.as_str()), (status, code), "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    let stranger = addr(&key(77));
    assert!(
        node.get_opt(&format!("/validators/{stranger}"))
            .expect("read")
            .is_none()
    );
}

#[test]
fn a_restarted_provider_updates_its_endpoint_and_keeps_serving_its_jobs() {
    let (prov, owner) = (key(1), key(2));
    let chain = TestChain::start(&[&prov, &owner]);
    let home = tempfile::tempdir().expect("home");
    let node = chain.client();
    let first = run_provider(&chain, home.path(), "prov", prov.clone(), |_| {});
    chain.wait_for("the provider's registration", || {
        node.get_opt(&format!("/providers/{}", addr(&prov)))
            .ok()
            .flatten()
    });
    let id = submit_training(&chain, &mut Wallet::new(owner));
    chain.wait_for("the commit", || {
        let job = node.get(&format!("/jobs/{id}")).ok()?;
        (job["status"] == "committed").then_some(job)
    });
    let old = node
        .get(&format!("/providers/{}", addr(&prov)))
        .expect("provider")["endpoint"]
        .clone();
    drop(first);
    let _second = run_provider(&chain, home.path(), "prov", prov.clone(), |_| {});
    let endpoint = chain.wait_for("the new endpoint", || {
        let p = node.get(&format!("/providers/{}", addr(&prov))).ok()?;
        (p["endpoint"] != old)
            .then(|| p["endpoint"].as_str().map(str::to_owned))
            .flatten()
    });
    let digests = node
        .get_url(&format!(
            "{endpoint}/v1/jobs/{id}/digests?from=0&to={STEPS}"
        ))
        .expect("the restarted provider serves the committed digests");
    let job = node.get(&format!("/jobs/{id}")).expect("job");
    assert_eq!(digests["root"], job["poi"]["commitment"]["root"]);
    assert_eq!(
        digests["leaves"].as_array().map(Vec::len),
        Some(STEPS as usize + 1)
    );
}
