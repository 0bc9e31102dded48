//! SIGKILL the node while transfers stream in, restart it, and check nothing acknowledged is
//! lost or changed: committed blocks keep their hash and state root, committed transactions
//! stay committed at the same height, and the chain goes on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::block::Block;
use poi_core::params::Params;
use poi_core::tx::{Msg, Tx, TxBody};

use crate::{DEVNET_BALANCE, Node, devnet_key, poi, stdout_of};

/// Kill-and-restart rounds.
const ROUNDS: usize = 3;
/// Transactions seen committed in a round before the node is killed.
const COMMITTED_PER_ROUND: usize = 5;
/// Longest a round may stream before it gives up.
const ROUND_DEADLINE: Duration = Duration::from_secs(30);
/// Longest a restarted chain may take to commit new blocks (a consensus view times out in 1 s).
const LIVENESS_DEADLINE: Duration = Duration::from_secs(10);

/// What the test was told by the node before it died.
#[derive(Default)]
struct Seen {
    /// Transfers in nonce order, with their amounts.
    submitted: Vec<Tx>,
    /// Hash (hex) of each transaction reported committed, with its height.
    committed: BTreeMap<String, u64>,
    /// Height of each block seen, with its hash and state root.
    blocks: BTreeMap<u64, (String, String)>,
}

impl Seen {
    fn is_committed(&self, tx: &Tx) -> bool {
        self.committed.contains_key(&hex::encode(tx.hash()))
    }

    fn record_block(&mut self, block: &serde_json::Value) {
        let height = block["height"].as_u64().expect("height");
        let entry = (
            block["hash"].as_str().expect("hash").to_string(),
            block["state_root"]
                .as_str()
                .expect("state_root")
                .to_string(),
        );
        if let Some(previous) = self.blocks.insert(height, entry.clone()) {
            assert_eq!(previous, entry, "block {height} changed while the node ran");
        }
    }

    /// Asks for the status of every transaction not yet seen committed.
    fn poll(&mut self, node: &Node) {
        let open: Vec<String> = self
            .submitted
            .iter()
            .filter(|tx| !self.is_committed(tx))
            .map(|tx| hex::encode(tx.hash()))
            .collect();
        for hash in open {
            let status = node.api.get_ok(&format!("/txs/{hash}"));
            if status["status"] == "committed" {
                let height = status["height"].as_u64().expect("height");
                assert_eq!(
                    status["receipt"]["outcome"]["status"], "success",
                    "{status}"
                );
                self.committed.insert(hash, height);
                let block = node.api.get_ok(&format!("/blocks/{height}"));
                self.record_block(&block);
            }
        }
    }
}

fn transfer(key: &SigningKey, params: &Params, nonce: u64, to: Address) -> Tx {
    let mut body = TxBody {
        chain_id: "poi-devnet".into(),
        signer: Address::from_public_key(&key.verifying_key()),
        nonce,
        fee: 0,
        // A distinct amount per transaction: a double-applied one would show in the balance.
        msg: Msg::Bank(BankMsg::Transfer {
            to,
            amount: 1_000 + u128::from(nonce),
        }),
    };
    body.fee = params.min_fee(body.clone().sign(key).encoded_len());
    body.sign(key)
}

fn amount_of(tx: &Tx) -> u128 {
    match &tx.body.msg {
        Msg::Bank(BankMsg::Transfer { amount, .. }) => *amount,
        other => panic!("crash tests only send transfers, not {other:?}"),
    }
}

/// Checks everything the node acknowledged before it was killed.
fn check_acknowledged(node: &Node, seen: &Seen) {
    for (height, (hash, root)) in &seen.blocks {
        let block = node.api.get_ok(&format!("/blocks/{height}"));
        assert_eq!(
            (block["hash"].as_str(), block["state_root"].as_str()),
            (Some(hash.as_str()), Some(root.as_str())),
            "block {height} changed across the crash"
        );
    }
    for (hash, height) in &seen.committed {
        let status = node.api.get_ok(&format!("/txs/{hash}"));
        assert_eq!(
            status["status"], "committed",
            "acknowledged tx {hash} lost: {status}"
        );
        assert_eq!(status["height"], *height, "tx {hash} moved: {status}");
    }
}

/// Heights of the blocks in HOME/data/proposals (proposed or received, not yet final).
fn proposal_heights(home: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(home.join("data").join("proposals")) else {
        return Vec::new();
    };
    let mut heights: Vec<u64> = entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| Block::decode(&bytes).ok())
        .map(|block| block.header.height)
        .collect();
    heights.sort_unstable();
    heights
}

/// Waits (bounded) until the committed height reaches `target`; explains a stall.
#[track_caller]
fn wait_progress(node: &Node, target: u64) {
    let deadline = Instant::now() + LIVENESS_DEADLINE;
    loop {
        let height = node.api.get_ok("/blocks/latest")["height"]
            .as_u64()
            .expect("height");
        if height >= target {
            return;
        }
        if Instant::now() >= deadline {
            let proposals = proposal_heights(&node.home);
            let why = if proposals.contains(&(height + 1)) {
                "a block proposed at the next height before the crash is never finalized: \
                 consensus keeps asking to build on it and LedgerApp::propose declines because \
                 it is not the committed tip (bug, see crash::rapid_restarts_never_stall_the_chain)"
            } else {
                "cause unknown"
            };
            panic!(
                "the chain stalled at height {height} after a restart (wanted {target}); \
                 proposals on disk at heights {proposals:?}; {why}\n{}",
                node.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn rapid_restarts_never_stall_the_chain() {
    const CYCLES: u64 = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let mut node = Node::devnet_with_interval(&home, dir.path(), "10");
    for cycle in 0..CYCLES {
        std::thread::sleep(Duration::from_millis((cycle * 37) % 100));
        node.kill();
        node = Node::start(&home, dir.path());
        let height = node.api.get_ok("/blocks/latest")["height"]
            .as_u64()
            .expect("height");
        wait_progress(&node, height + 1);
    }
}

#[test]
fn sigkill_while_transfers_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let mut node = Node::devnet(&home, dir.path());
    let alice = devnet_key(&home, "alice");
    let alice_address = Address::from_public_key(&alice.verifying_key()).to_string();
    let recipient = Address([0x5a; 32]);
    let params: Params = serde_json::from_value(node.api.get_ok("/params")).expect("params decode");
    let mut seen = Seen::default();
    let mut in_flight_at_kill = 0;

    for round in 0..ROUNDS {
        let deadline = Instant::now() + ROUND_DEADLINE;
        let round_start = seen.submitted.len();
        loop {
            let tx = transfer(&alice, &params, seen.submitted.len() as u64, recipient);
            let (status, body) = node.api.submit(&tx);
            assert_eq!(status, 202, "round {round}: {body}");
            seen.submitted.push(tx);
            seen.poll(&node);
            seen.record_block(&node.api.get_ok("/blocks/latest"));
            let committed_this_round = seen.submitted[round_start..]
                .iter()
                .filter(|tx| seen.is_committed(tx))
                .count();
            // Kill right after a submission: at least that one is still in flight.
            if committed_this_round >= COMMITTED_PER_ROUND {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: only {committed_this_round} commits in {ROUND_DEADLINE:?}:\n{}",
                node.log()
            );
        }
        let highest_seen = *seen.blocks.keys().last().expect("blocks seen");
        in_flight_at_kill += seen.submitted.len() - seen.committed.len();

        node.kill();
        node = Node::start(&home, dir.path());

        check_acknowledged(&node, &seen);
        // Transactions lost with the mempool are resubmitted as they were; ones committed
        // after all are duplicates. Nothing else is acceptable.
        for tx in seen.submitted.iter().filter(|tx| !seen.is_committed(tx)) {
            let (status, body) = node.api.submit(tx);
            let duplicate = status == 409 && body["error"]["code"] == "duplicate";
            assert!(
                status == 202 || duplicate,
                "resubmit after crash: {status} {body}"
            );
        }
        wait_progress(&node, highest_seen + 2);
    }

    assert!(
        in_flight_at_kill > 0,
        "every kill came after all transfers committed"
    );
    // Everything submitted commits exactly once.
    let deadline = Instant::now() + ROUND_DEADLINE;
    while seen.committed.len() < seen.submitted.len() {
        seen.poll(&node);
        assert!(
            Instant::now() < deadline,
            "{} of {} transactions never committed:\n{}",
            seen.submitted.len() - seen.committed.len(),
            seen.submitted.len(),
            node.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    check_acknowledged(&node, &seen);
    let sent: u128 = seen.submitted.iter().map(amount_of).sum();
    let fees: u128 = seen.submitted.iter().map(|tx| tx.body.fee).sum();
    assert_eq!(node.api.account(&recipient.to_string()), (sent, 0));
    assert_eq!(
        node.api.account(&alice_address),
        (DEVNET_BALANCE - sent - fees, seen.submitted.len() as u64)
    );

    // A new transfer through the CLI commits on the restarted chain.
    let home_arg = home.to_str().expect("utf-8 path");
    let out = stdout_of(
        poi()
            .args(["tx", "send", "--home", home_arg, "--from", "bob"])
            .args(["--to", &recipient.to_string(), "--amount", "7"]),
    );
    assert!(out.starts_with("committed "), "{out}");
    assert_eq!(node.api.account(&recipient.to_string()).0, sent + 7);
}
