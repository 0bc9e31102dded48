//! `poi bench network`: finality latency and signed-transfer throughput of real validator
//! processes on loopback, for several validator counts in one run.
//!
//! For each count N it creates a throwaway localnet (`poi localnet`'s homes), starts the N
//! `poi node start` processes, and measures:
//! - latency: transfers sent one at a time; the time from submission until node 0 reports
//!   the transfer committed (finalized, executed and durable there);
//! - throughput: a burst of transfers from several accounts; transfers over the time from the
//!   first submission until every sender's nonce shows all of them committed.
//!
//! Every transfer is submitted to validator 0's API only; transaction gossip carries it to the
//! other validators' mempools, so whichever leads the next view includes it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::params::Params;
use poi_core::tx::{Msg, Tx, TxBody};
use serde::Serialize;
use serde_json::json;

use crate::cli::LocalnetArgs;
use crate::client::Api;
use crate::cmd_localnet;
use crate::cmd_node::DEVNET_NAMES;
use crate::keystore::Keystore;

/// Accounts the throughput burst sends from (each with its own nonce sequence).
const SENDERS: u8 = 8;
/// Longest any phase may take before the bench gives up.
const PHASE_DEADLINE: Duration = Duration::from_secs(120);

/// What one validator count measured.
#[derive(Debug, Serialize)]
pub(crate) struct NetworkRun {
    /// Validator processes.
    pub(crate) validators: usize,
    /// Transfers in the latency phase.
    pub(crate) latency_samples: usize,
    /// Median submit-to-committed latency, milliseconds.
    pub(crate) latency_p50_ms: f64,
    /// 90th percentile, milliseconds.
    pub(crate) latency_p90_ms: f64,
    /// Transfers in the throughput burst.
    pub(crate) burst: usize,
    /// Committed transfers per second over the burst.
    pub(crate) tps: f64,
}

/// Runs the bench for each count in `counts`.
pub(crate) fn run(
    counts: &[usize],
    latency_samples: usize,
    burst: usize,
    block_interval_ms: u64,
    progress: impl Fn(&str),
) -> anyhow::Result<Vec<NetworkRun>> {
    let mut runs = Vec::new();
    for &count in counts {
        if !(1..=16).contains(&count) {
            bail!("--validators {count}: each count must be 1..=16");
        }
        progress(&format!("{count} validator(s): starting"));
        runs.push(run_one(
            count,
            latency_samples,
            burst,
            block_interval_ms,
            &progress,
        )?);
    }
    Ok(runs)
}

fn run_one(
    count: usize,
    latency_samples: usize,
    burst: usize,
    block_interval_ms: u64,
    progress: &impl Fn(&str),
) -> anyhow::Result<NetworkRun> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let args = LocalnetArgs {
        full_nodes: 0,
        epoch_blocks: 100,
        validators: u8::try_from(count).context("count")?,
        base_port: 0,
        accounts: SENDERS + 1,
        block_interval_ms,
    };
    cmd_localnet::create(dir.path(), &args)?;
    let mut validators = Vec::with_capacity(count);
    let mut apis = Vec::with_capacity(count);
    for index in 0..count {
        let home = cmd_localnet::node_home(dir.path(), index);
        apis.push(Api::new(format!("http://{}", home.config()?.api_addr)));
        validators.push(cmd_localnet::spawn(index, home)?);
    }
    let result = measure(dir.path(), &apis, latency_samples, burst, count, progress);
    cmd_localnet::stop(&mut validators);
    result
}

fn measure(
    root: &std::path::Path,
    apis: &[Api],
    latency_samples: usize,
    burst: usize,
    count: usize,
    progress: &impl Fn(&str),
) -> anyhow::Result<NetworkRun> {
    wait_until("every validator reaches height 3", || {
        Ok(apis.iter().all(|api| height(api).is_some_and(|h| h >= 3)))
    })?;
    let params: Params = serde_json::from_value(apis[0].get("/params")?)?;
    let keystore = Keystore::open(&cmd_localnet::node_home(root, 0).keys_dir())?;
    let mut senders = Vec::new();
    for name in DEVNET_NAMES.iter().take(usize::from(SENDERS) + 1) {
        senders.push(keystore.unlock(name, None)?);
    }
    let sink = Address::from_public_key(&senders[0].verifying_key());
    let chain_id = apis[0].get("/status")?["chain_id"]
        .as_str()
        .context("status has no chain_id")?
        .to_owned();
    let transfer = |key: &SigningKey, nonce: u64| -> Tx {
        let mut body = TxBody {
            chain_id: chain_id.clone(),
            signer: Address::from_public_key(&key.verifying_key()),
            nonce,
            fee: 0,
            msg: Msg::Bank(BankMsg::Transfer {
                to: sink,
                amount: 1 + u128::from(nonce),
            }),
        };
        body.fee = params.min_fee(body.clone().sign(key).encoded_len());
        body.sign(key)
    };
    let submit = |tx: &Tx| -> anyhow::Result<()> {
        let body = json!({ "tx": hex::encode(tx.encode()) });
        apis[0].post("/txs", &body)?;
        Ok(())
    };

    progress(&format!(
        "{count} validator(s): latency, {latency_samples} transfers"
    ));
    let latency_key = &senders[1];
    let mut latencies = Vec::with_capacity(latency_samples);
    for nonce in 0..latency_samples as u64 {
        let tx = transfer(latency_key, nonce);
        let hash = hex::encode(tx.hash());
        let started = Instant::now();
        submit(&tx)?;
        wait_until("a transfer commits", || {
            Ok(apis[0].get(&format!("/txs/{hash}"))?["status"] == "committed")
        })?;
        latencies.push(started.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);

    progress(&format!(
        "{count} validator(s): throughput, {burst} transfers"
    ));
    let burst_senders = &senders[2..];
    let per_sender = burst.div_ceil(burst_senders.len());
    let mut txs = Vec::with_capacity(burst);
    for nonce in 0..per_sender as u64 {
        for key in burst_senders {
            if txs.len() < burst {
                txs.push(transfer(key, nonce));
            }
        }
    }
    let mut expected = vec![0u64; burst_senders.len()];
    for (i, _) in txs.iter().enumerate() {
        expected[i % burst_senders.len()] += 1;
    }
    let bodies: Vec<serde_json::Value> = txs
        .iter()
        .map(|tx| json!({ "tx": hex::encode(tx.encode()) }))
        .collect();
    let started = Instant::now();
    for body in &bodies {
        apis[0].post("/txs", body)?;
    }
    wait_until("the burst commits", || {
        for (key, want) in burst_senders.iter().zip(&expected) {
            let address = Address::from_public_key(&key.verifying_key());
            let nonce = apis[0].get(&format!("/accounts/{address}"))?["nonce"]
                .as_u64()
                .unwrap_or(0);
            if nonce < *want {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(NetworkRun {
        validators: count,
        latency_samples,
        latency_p50_ms: percentile(&latencies, 50),
        latency_p90_ms: percentile(&latencies, 90),
        burst: txs.len(),
        tps: txs.len() as f64 / seconds,
    })
}

fn percentile(sorted: &[f64], pct: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = (sorted.len() - 1) * pct / 100;
    sorted[index]
}

/// The height `api` reports, if it answers.
pub(crate) fn height(api: &Api) -> Option<u64> {
    api.get("/blocks/latest").ok()?["height"].as_u64()
}

fn wait_until(what: &str, done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    wait_until_within(what, PHASE_DEADLINE, done)
}

/// Polls `done` until it answers `Ok(true)`; an error counts as "not yet" (a node still
/// starting, or switching engines, refuses or fails requests). Fails after `limit`.
pub(crate) fn wait_until_within(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if done().unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("gave up waiting until {what} after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
