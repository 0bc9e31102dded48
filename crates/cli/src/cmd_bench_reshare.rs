//! `poi bench reshare`: what moving the validator set costs on real processes.
//!
//! It creates a throwaway localnet of four validators and one full node, has validators 0..=2
//! and the full node bond and register (validator 3 does not), and waits for the chain to
//! elect {0, 1, 2, full0}, reshare the key to it and switch every node's engine. It reports
//! the time from the registrations being committed to the switch, and the *switch gap*: the
//! time between the proposals of the last block of the old generation and the first block of
//! the new one (the old engine finalizes its last block, every player computes its share,
//! consensus restarts with the new set and its first leader proposes), against the median gap
//! between ordinary blocks of the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::token::BASE_UNITS_PER_POI;
use poi_core::tx::{Msg, TxBody};
use poi_core::validators::ValidatorsMsg;
use serde::Serialize;
use serde_json::json;

use crate::cli::LocalnetArgs;
use crate::client::Api;
use crate::cmd_bench_network::{height, wait_until_within};
use crate::cmd_localnet;

/// Longest any phase may take before the bench gives up.
const PHASE_DEADLINE: Duration = Duration::from_secs(300);

/// What one reshare run measured.
#[derive(Debug, Serialize)]
pub(crate) struct ReshareRun {
    /// Blocks per chain epoch.
    pub(crate) epoch_blocks: u64,
    /// Height of the block that recorded generation 1 (the old engine's last block).
    pub(crate) boundary_height: u64,
    /// Seconds from the registrations being committed until node 0 ran generation 1.
    pub(crate) registered_to_switch_s: f64,
    /// Milliseconds between the proposals of the boundary block and the first block of the
    /// new generation.
    pub(crate) switch_gap_ms: u64,
    /// Median milliseconds between consecutive blocks in the 20 blocks either side (the
    /// switch gap excluded).
    pub(crate) block_gap_p50_ms: u64,
}

/// Runs the bench.
pub(crate) fn run(
    epoch_blocks: u64,
    block_interval_ms: u64,
    progress: impl Fn(&str),
) -> anyhow::Result<ReshareRun> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let args = LocalnetArgs {
        validators: 4,
        full_nodes: 1,
        epoch_blocks,
        base_port: 0,
        accounts: 0,
        block_interval_ms,
    };
    cmd_localnet::create(dir.path(), &args)?;
    let mut homes: Vec<_> = (0..4)
        .map(|i| cmd_localnet::node_home(dir.path(), i))
        .collect();
    homes.push(cmd_localnet::full_node_home(dir.path(), 0));
    let mut nodes = Vec::with_capacity(homes.len());
    let mut apis = Vec::with_capacity(homes.len());
    for (index, home) in homes.iter().enumerate() {
        apis.push(Api::new(format!("http://{}", home.config()?.api_addr)));
        let name = if index < 4 {
            format!("node {index}")
        } else {
            "full 0".to_owned()
        };
        nodes.push(cmd_localnet::spawn_named(name, home.clone())?);
    }
    let result = measure(&homes, &apis, epoch_blocks, &progress);
    cmd_localnet::stop(&mut nodes);
    result
}

fn measure(
    homes: &[poi_node::home::Home],
    apis: &[Api],
    epoch_blocks: u64,
    progress: &impl Fn(&str),
) -> anyhow::Result<ReshareRun> {
    wait_until("every node reaches height 2", || {
        Ok(apis.iter().all(|api| height(api).is_some_and(|h| h >= 2)))
    })?;
    let params: Params = serde_json::from_value(apis[0].get("/params")?)?;
    let chain_id = apis[0].get("/status")?["chain_id"]
        .as_str()
        .context("status has no chain_id")?
        .to_owned();
    let candidates = [&homes[0], &homes[1], &homes[2], &homes[4]];
    progress("validators 0..=2 and full node 0 bond and register");
    for (nonce, register) in [(0u64, false), (1, true)] {
        let mut hashes = Vec::new();
        for (index, home) in candidates.iter().enumerate() {
            let key = SigningKey::from_bytes(&home.node_seed()?);
            let amount = if index == 3 { 20 } else { 10 } * BASE_UNITS_PER_POI;
            let msg = if register {
                Msg::Validators(ValidatorsMsg::Register { self_bond: amount })
            } else {
                Msg::Staking(StakingMsg::Bond { amount })
            };
            let mut body = TxBody {
                chain_id: chain_id.clone(),
                signer: Address::from_public_key(&key.verifying_key()),
                nonce,
                fee: 0,
                msg,
            };
            body.fee = params.min_fee(body.clone().sign(&key).encoded_len());
            let tx = body.sign(&key);
            apis[0].post("/txs", &json!({ "tx": hex::encode(tx.encode()) }))?;
            hashes.push(hex::encode(tx.hash()));
        }
        wait_until("the candidacy transactions commit", || {
            for hash in &hashes {
                if apis[0].get(&format!("/txs/{hash}"))?["status"] != "committed" {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
    }
    let registered = Instant::now();
    progress("waiting for the election, the reshare and the switch");
    let mut first_epoch = 0;
    wait_until("generation 1 runs", || {
        let signers = &apis[0].get("/validators")?["signers"];
        if signers["generation"] != 1 {
            return Ok(false);
        }
        first_epoch = signers["first_epoch"].as_u64().unwrap_or(0);
        Ok(true)
    })?;
    let registered_to_switch_s = registered.elapsed().as_secs_f64();
    let boundary_height = first_epoch
        .checked_mul(epoch_blocks)
        .and_then(|h| h.checked_sub(1))
        .context("generation 1 has no boundary block")?;
    progress("reading block times around the switch");
    let last = boundary_height + 21;
    wait_until("20 blocks after the switch", || {
        Ok(height(&apis[0]).is_some_and(|h| h >= last))
    })?;
    let first = boundary_height.saturating_sub(20).max(1);
    let mut times = Vec::new();
    for h in first..=last {
        let block = apis[0].get(&format!("/blocks/{h}"))?;
        let at = block["timestamp_ms"]
            .as_u64()
            .with_context(|| format!("block {h} has no timestamp"))?;
        times.push((h, at));
    }
    let mut gaps = Vec::new();
    let mut switch_gap_ms = 0;
    for pair in times.windows(2) {
        let gap = pair[1].1.saturating_sub(pair[0].1);
        if pair[0].0 == boundary_height {
            switch_gap_ms = gap;
        } else {
            gaps.push(gap);
        }
    }
    gaps.sort_unstable();
    if gaps.is_empty() {
        bail!("no block gaps around the switch");
    }
    Ok(ReshareRun {
        epoch_blocks,
        boundary_height,
        registered_to_switch_s,
        switch_gap_ms,
        block_gap_p50_ms: gaps[gaps.len() / 2],
    })
}

fn wait_until(what: &str, done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    wait_until_within(what, PHASE_DEADLINE, done)
}
