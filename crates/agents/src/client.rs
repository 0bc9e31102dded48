//! A blocking client for the node's HTTP API ([`NodeClient`]) and an account that signs and
//! submits transactions with nonce tracking ([`Wallet`]).

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::params::Params;
use poi_core::tx::{Msg, TxBody};
use serde_json::{Value, json};

use crate::{AgentError, Result};

/// Seconds before one HTTP request gives up.
pub const REQUEST_TIMEOUT_SECS: u64 = 15;
/// How often a submitted transaction is polled for inclusion.
pub const TX_POLL: Duration = Duration::from_millis(50);
/// Seconds a transaction may take to be included before [`AgentError::TxTimeout`].
pub const TX_WAIT_SECS: u64 = 60;
/// Largest body read from a provider endpoint (a checkpoint): 256 MiB.
pub const BODY_BYTES_MAX: u64 = 256 << 20;

/// A blocking HTTP client: the node's JSON API, and raw GETs of provider endpoints.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// A client of the node at `base` (`http://127.0.0.1:26657`).
    pub fn new(base: impl Into<String>) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(REQUEST_TIMEOUT_SECS)))
            .build();
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET a node path as JSON; an error status is [`AgentError::Rejected`].
    pub fn get(&self, path: &str) -> Result<Value> {
        self.get_url(&format!("{}{path}", self.base))
    }

    /// GET a node path as JSON; `None` on 404.
    pub fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(AgentError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// POST JSON to a node path.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).send_json(body);
        Self::json(url, response)
    }

    /// GET any URL as JSON.
    pub fn get_url(&self, url: &str) -> Result<Value> {
        let response = self.agent.get(url).call();
        Self::json(url.to_owned(), response)
    }

    /// POST JSON to any URL.
    pub fn post_url(&self, url: &str, body: &Value) -> Result<Value> {
        let response = self.agent.post(url).send_json(body);
        Self::json(url.to_owned(), response)
    }

    /// GET any URL as bytes (at most [`BODY_BYTES_MAX`]).
    pub fn get_bytes(&self, url: &str) -> Result<Vec<u8>> {
        let unreachable = |e: ureq::Error| AgentError::Unreachable {
            url: url.to_owned(),
            cause: e.to_string(),
        };
        let mut response = self.agent.get(url).call().map_err(unreachable)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_BYTES_MAX)
            .read_to_vec()
            .map_err(unreachable)?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(Self::rejection(url.to_owned(), status, &body))
    }

    fn rejection(url: String, status: u16, body: &Value) -> AgentError {
        let error = &body["error"];
        AgentError::Rejected {
            url,
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"].as_str().unwrap_or("no message").to_owned(),
        }
    }

    fn json(
        url: String,
        response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value> {
        let mut response = response.map_err(|e| AgentError::Unreachable {
            url: url.clone(),
            cause: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(BODY_BYTES_MAX)
            .read_json()
            .map_err(|e| AgentError::BadResponse {
                url: url.clone(),
                cause: e.to_string(),
            })?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(Self::rejection(url, status, &body))
        }
    }

    /// The committed height.
    pub fn height(&self) -> Result<u64> {
        let status = self.get("/status")?;
        u64_field(&status, "height", "/status")
    }

    /// The chain parameters.
    pub fn params(&self) -> Result<Params> {
        let value = self.get("/params")?;
        serde_json::from_value(value).map_err(|e| AgentError::BadResponse {
            url: format!("{}/params", self.base),
            cause: e.to_string(),
        })
    }
}

/// `value[field]` as a `u64`, or a bad-response error naming `what`.
pub(crate) fn u64_field(value: &Value, field: &str, what: &str) -> Result<u64> {
    value[field]
        .as_u64()
        .ok_or_else(|| AgentError::BadResponse {
            url: what.to_owned(),
            cause: format!("no integer {field:?} in {value}"),
        })
}

/// A transaction included with success.
#[derive(Debug, Clone)]
pub struct Included {
    /// Its hash, hex.
    pub hash: String,
    /// The block.
    pub height: u64,
    /// `GET /txs/{hash}`: the receipt with its events.
    pub status: Value,
}

/// An account that signs with its own key and submits through a node: it tracks its next
/// nonce locally and refreshes it from the node when the node says it is stale.
#[derive(Debug)]
pub struct Wallet {
    key: SigningKey,
    address: Address,
    chain_id: Option<String>,
    params: Option<Params>,
    next_nonce: Option<u64>,
}

impl Wallet {
    /// A wallet of `key`.
    pub fn new(key: SigningKey) -> Self {
        let address = Address::from_public_key(&key.verifying_key());
        Self {
            key,
            address,
            chain_id: None,
            params: None,
            next_nonce: None,
        }
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs `msg` (next nonce, minimum fee) and submits it; returns its hash without
    /// waiting. Retries once with a fresh nonce if the node says the nonce is stale.
    pub fn submit(&mut self, node: &NodeClient, msg: Msg) -> Result<String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let bytes = self.sign(node, msg.clone())?;
            match node.post("/txs", &json!({ "tx": hex::encode(&bytes) })) {
                Ok(answer) => {
                    self.next_nonce = self.next_nonce.map(|n| n + 1);
                    return answer["hash"].as_str().map(str::to_owned).ok_or_else(|| {
                        AgentError::BadResponse {
                            url: format!("{}/txs", node.base()),
                            cause: format!("no hash in {answer}"),
                        }
                    });
                }
                Err(e)
                    if attempt == 1
                        && matches!(
                            e.code(),
                            Some("stale_nonce" | "future_nonce" | "duplicate")
                        ) =>
                {
                    self.next_nonce = None;
                }
                Err(e) => {
                    self.next_nonce = None;
                    return Err(e);
                }
            }
        }
    }

    /// [`Self::submit`], then waits until the transaction is included; an included failure is
    /// [`AgentError::TxFailed`].
    pub fn send(&mut self, node: &NodeClient, msg: Msg) -> Result<Included> {
        let hash = self.submit(node, msg)?;
        wait_included(node, &hash)
    }

    fn sign(&mut self, node: &NodeClient, msg: Msg) -> Result<Vec<u8>> {
        if self.chain_id.is_none() {
            let status = node.get("/status")?;
            let id = status["chain_id"].as_str().unwrap_or_default().to_owned();
            self.chain_id = Some(id);
        }
        if self.params.is_none() {
            self.params = Some(node.params()?);
        }
        let nonce = match self.next_nonce {
            Some(n) => n,
            None => {
                let account = node.get(&format!("/accounts/{}", self.address))?;
                u64_field(&account, "next_nonce", "/accounts")?
            }
        };
        self.next_nonce = Some(nonce);
        let mut body = TxBody {
            chain_id: self.chain_id.clone().unwrap_or_default(),
            signer: self.address,
            nonce,
            fee: 0,
            msg,
        };
        let params = self.params.as_ref().expect("set above");
        // The fee field has a fixed width, so the size does not depend on the fee.
        body.fee = params.min_fee(body.clone().sign(&self.key).encoded_len());
        Ok(body.sign(&self.key).encode())
    }
}

/// Polls `GET /txs/{hash}` until the transaction is committed (at most [`TX_WAIT_SECS`]).
pub fn wait_included(node: &NodeClient, hash: &str) -> Result<Included> {
    let deadline = Instant::now() + Duration::from_secs(TX_WAIT_SECS);
    loop {
        if let Some(status) = node.get_opt(&format!("/txs/{hash}"))?
            && status["status"] == "committed"
        {
            let height = u64_field(&status, "height", "/txs")?;
            let outcome = &status["receipt"]["outcome"];
            if outcome["status"] != "success" {
                return Err(AgentError::TxFailed {
                    hash: hash.to_owned(),
                    height,
                    code: outcome["code"].as_str().unwrap_or("unknown").to_owned(),
                    message: outcome["message"].as_str().unwrap_or("").to_owned(),
                });
            }
            return Ok(Included {
                hash: hash.to_owned(),
                height,
                status,
            });
        }
        if Instant::now() >= deadline {
            return Err(AgentError::TxTimeout {
                hash: hash.to_owned(),
                secs: TX_WAIT_SECS,
            });
        }
        std::thread::sleep(TX_POLL);
    }
}
