//! Integration tests of `poi-node`: a real [`Ledger`] served by the HTTP API on a loopback port,
//! with blocks built and finalized by hand (no consensus), one module per topic.

mod beacon;
mod blocks;
mod events;
mod market;
mod mempool;
mod reads;
mod rejections;
mod reshare;
mod staking;
mod supply;
mod transfers;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::block::BlockHash;
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::params::Params;
use poi_core::token::Amount;
use poi_core::tx::{Msg, Tx, TxBody};
use poi_node::ledger::Ledger;
use poi_node::metrics::Metrics;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Chain id of every test chain.
pub(crate) const CHAIN_ID: &str = "poi-test";
/// Balance of each funded genesis account: 1,000,000 POI.
pub(crate) const FUNDED: Amount = 1_000_000_000_000_000;
/// Seconds before an HTTP request of a test gives up.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A deterministic signing key.
pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The address of a key.
pub(crate) fn addr(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

/// Funded at genesis.
pub(crate) fn alice() -> SigningKey {
    key(1)
}

/// Funded at genesis.
pub(crate) fn bob() -> SigningKey {
    key(2)
}

/// Funded at genesis.
pub(crate) fn carol() -> SigningKey {
    key(3)
}

/// Never funded.
pub(crate) fn stranger() -> SigningKey {
    key(50)
}

/// The validator (block proposer) of every test chain.
pub(crate) fn validator() -> SigningKey {
    key(100)
}

/// Genesis with the validator and alice, bob and carol funded with [`FUNDED`] each.
pub(crate) fn genesis() -> Genesis {
    genesis_with(
        [alice(), bob(), carol()]
            .iter()
            .map(|k| (addr(k), FUNDED))
            .collect(),
    )
}

/// Genesis with the validator and the given balances.
pub(crate) fn genesis_with(accounts: Vec<(Address, Amount)>) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.into(),
        genesis_time_ms: 1_767_225_600_000,
        validators: vec![addr(&validator())],
        params: Params::default(),
        accounts: accounts
            .into_iter()
            .map(|(address, balance)| GenesisAccount { address, balance })
            .collect(),
        beacon: None,
        models: Vec::new(),
        data: Vec::new(),
    }
}

/// The minimum fee of the default parameters for `tx`'s size (the fee field has a fixed width,
/// so the size does not depend on the fee).
pub(crate) fn min_fee(tx: &Tx) -> Amount {
    Params::default().min_fee(tx.encoded_len())
}

/// A signed transfer paying exactly the minimum fee.
pub(crate) fn transfer(from: &SigningKey, nonce: u64, to: Address, amount: Amount) -> Tx {
    let mut body = TxBody {
        chain_id: CHAIN_ID.into(),
        signer: addr(from),
        nonce,
        fee: 0,
        msg: Msg::Bank(BankMsg::Transfer { to, amount }),
    };
    body.fee = min_fee(&body.clone().sign(from));
    body.sign(from)
}

/// A signed transfer with an explicit fee.
pub(crate) fn transfer_with_fee(
    from: &SigningKey,
    nonce: u64,
    to: Address,
    amount: Amount,
    fee: Amount,
) -> Tx {
    TxBody {
        chain_id: CHAIN_ID.into(),
        signer: addr(from),
        nonce,
        fee,
        msg: Msg::Bank(BankMsg::Transfer { to, amount }),
    }
    .sign(from)
}

/// Hex of a transaction's hash, as the API prints it.
pub(crate) fn hash_hex(tx: &Tx) -> String {
    hex::encode(tx.hash())
}

/// Parses a decimal amount string the API sent.
pub(crate) fn amount(value: &Value) -> Amount {
    value
        .as_str()
        .unwrap_or_else(|| panic!("amount is not a string: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("amount {value} is not decimal: {e}"))
}

/// Asserts an API error: its status and `{"error": {"code", "message"}}` body.
#[track_caller]
pub(crate) fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    let (got_status, body) = answer;
    assert_eq!(
        (*got_status, body["error"]["code"].as_str()),
        (status, Some(code)),
        "unexpected answer {body}"
    );
    let message = body["error"]["message"].as_str().expect("error message");
    assert!(!message.is_empty(), "empty error message in {body}");
}

/// A ledger served over HTTP on 127.0.0.1, with blocks driven by the test.
pub(crate) struct TestNode {
    pub(crate) ledger: Arc<Ledger>,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: std::net::SocketAddr,
    agent: ureq::Agent,
    shutdown: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: TempDir,
}

impl TestNode {
    /// A node on [`genesis`].
    pub(crate) fn start() -> TestNode {
        TestNode::with_genesis(genesis())
    }

    /// A node on `genesis`.
    pub(crate) fn with_genesis(genesis: Genesis) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Arc::new(
            Ledger::open(dir.path().join("data"), genesis, Metrics::default()).expect("open"),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).expect("tokio listener")
        };
        let (shutdown, stop) = oneshot::channel::<()>();
        let served = Arc::clone(&ledger);
        runtime.spawn(async move {
            let stop = async move {
                let _ = stop.await;
            };
            poi_node::api::serve_on(served, listener, stop)
                .await
                .expect("API server");
        });
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build();
        TestNode {
            ledger,
            base: format!("http://{addr}"),
            addr,
            agent: ureq::Agent::new_with_config(config),
            shutdown: Some(shutdown),
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    fn finish(
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> (u16, String) {
        let mut response = response.unwrap_or_else(|e| panic!("request {url} failed: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .unwrap_or_else(|e| panic!("reading {url}: {e}"));
        (status, text)
    }

    fn parse(url: &str, (status, text): (u16, String)) -> (u16, Value) {
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{url} answered {status} with non-JSON {text:?}: {e}"));
        (status, value)
    }

    /// GET `path`: status and raw body.
    pub(crate) fn get_text(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        Self::finish(&url, self.agent.get(&url).call())
    }

    /// GET `path`: status and JSON body.
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        Self::parse(&url, self.get_text(path))
    }

    /// GET `path`, which must answer 200.
    #[track_caller]
    pub(crate) fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST raw bytes to `path`: status and JSON body.
    pub(crate) fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .post(&url)
            .content_type("application/json")
            .send(body);
        Self::parse(&url, Self::finish(&url, response))
    }

    /// Submits hex of `bytes` as a transaction.
    pub(crate) fn submit_bytes(&self, bytes: &[u8]) -> (u16, Value) {
        let body = json!({ "tx": hex::encode(bytes) }).to_string();
        self.post_raw("/txs", body.as_bytes())
    }

    /// Submits a transaction.
    pub(crate) fn submit(&self, tx: &Tx) -> (u16, Value) {
        self.submit_bytes(&tx.encode())
    }

    /// Submits a transaction that must be admitted; returns its hash (hex).
    #[track_caller]
    pub(crate) fn submit_ok(&self, tx: &Tx) -> String {
        let (status, body) = self.submit(tx);
        assert_eq!(status, 202, "submit refused: {body}");
        assert_eq!(body["status"], "pending", "{body}");
        assert_eq!(body["hash"], hash_hex(tx), "{body}");
        hash_hex(tx)
    }

    /// Builds a block on the tip from the mempool and finalizes it; returns its hash.
    #[track_caller]
    pub(crate) fn commit_block(&self) -> BlockHash {
        let tip = self.ledger.tip();
        let hash = self
            .ledger
            .build_block(tip.block_hash, addr(&validator()), tip.height + 1)
            .expect("build block");
        self.ledger.finalize(&hash).expect("finalize");
        let new_tip = self.ledger.tip();
        assert_eq!(
            (new_tip.height, new_tip.block_hash),
            (tip.height + 1, hash),
            "finalize did not commit the block"
        );
        hash
    }

    /// `/accounts/{address}`: balance, nonce and next nonce.
    #[track_caller]
    pub(crate) fn account(&self, address: &Address) -> (Amount, u64, u64) {
        let body = self.get_ok(&format!("/accounts/{address}"));
        (
            amount(&body["balance"]),
            body["nonce"].as_u64().expect("nonce"),
            body["next_nonce"].as_u64().expect("next_nonce"),
        )
    }

    /// `/txs/{hash}`.
    #[track_caller]
    pub(crate) fn tx_status(&self, hash: &str) -> Value {
        self.get_ok(&format!("/txs/{hash}"))
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            // Open streams (SSE) would hold a graceful shutdown forever.
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
