//! `poi localnet --validators 4 --full-nodes 1`: four real validator processes and a full node
//! on loopback. They agree on every block; a transfer sent to the full node is committed by
//! the validators; after SIGKILL of one validator the other three keep finalizing; restarted,
//! it fetches the blocks it missed and agrees with the rest again; and the full node, killed
//! and wiped, rejoins from genesis and catches up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::params::Params;
use poi_core::token::BASE_UNITS_PER_POI as POI_UNIT;
use poi_core::tx::{Msg, TxBody};

use crate::{Api, Node, POI, devnet_key};

/// How long the network may take to reach a height (four debug-built processes on 2 cores).
const PROGRESS_DEADLINE: Duration = Duration::from_secs(90);

/// The running `poi localnet` supervisor; SIGTERM on drop (its validators follow it).
struct Localnet {
    child: Child,
    stdout: PathBuf,
}

impl Drop for Localnet {
    fn drop(&mut self) {
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: kill(2) on a pid has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// One validator as `poi localnet` printed it.
struct Printed {
    api: SocketAddr,
    pid: u32,
}

impl Localnet {
    /// Starts `poi localnet --validators 4 --full-nodes 1` with `extra` arguments.
    fn start(home: &Path, log_dir: &Path, extra: &[&str]) -> (Localnet, Vec<Printed>) {
        let stdout = log_dir.join("localnet.out");
        let out = std::fs::File::create(&stdout).expect("log");
        let child = Command::new(POI)
            .args([
                "localnet",
                "--validators",
                "4",
                "--full-nodes",
                "1",
                "--base-port",
                "0",
            ])
            .args(extra)
            .args(["--accounts", "2", "--block-interval-ms", "100", "--home"])
            .arg(home)
            .env_remove("POI_HOME")
            .env("POI_LOG", "warn,poi_node=info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("spawn poi localnet");
        let net = Localnet { child, stdout };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&net.stdout).unwrap_or_default();
            let printed: Vec<Printed> = text.lines().filter_map(parse_node_line).collect();
            if printed.len() == 5 {
                return (net, printed);
            }
            assert!(Instant::now() < deadline, "localnet printed:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Parses `node 2:    API http://127.0.0.1:1234  p2p ...  pid 99  log ...` (and the same
/// for `full 0:`, printed after the validators).
fn parse_node_line(line: &str) -> Option<Printed> {
    let rest = line
        .strip_prefix("node ")
        .or_else(|| line.strip_prefix("full "))?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let api = words.iter().position(|w| *w == "API")?;
    let pid = words.iter().position(|w| *w == "pid")?;
    Some(Printed {
        api: words.get(api + 1)?.strip_prefix("http://")?.parse().ok()?,
        pid: words.get(pid + 1)?.parse().ok()?,
    })
}

fn height(api: &Api) -> Option<u64> {
    match api.try_get("/blocks/latest") {
        Ok((200, block)) => block["height"].as_u64(),
        _ => None,
    }
}

/// Waits until every API in `apis` reports at least `target`.
#[track_caller]
fn wait_all(apis: &[&Api], target: u64, what: &str, log: &Path) {
    let deadline = Instant::now() + PROGRESS_DEADLINE;
    loop {
        let heights: Vec<Option<u64>> = apis.iter().map(|api| height(api)).collect();
        if heights.iter().all(|h| h.is_some_and(|h| h >= target)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: heights {heights:?} never all reached {target}; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The block hash and state root each API reports at `height`; asserts they all agree.
#[track_caller]
fn assert_agree(apis: &[&Api], height: u64) -> String {
    let blocks: Vec<(String, String)> = apis
        .iter()
        .map(|api| {
            let block = api.get_ok(&format!("/blocks/{height}"));
            (
                block["hash"].as_str().expect("hash").to_owned(),
                block["state_root"].as_str().expect("root").to_owned(),
            )
        })
        .collect();
    for block in &blocks {
        assert_eq!(block, &blocks[0], "validators disagree at height {height}");
    }
    blocks[0].0.clone()
}

#[test]
fn four_validators_and_a_full_node_agree_survive_sigkills_and_catch_up() {
    let _serial = crate::many_processes();
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("net");
    let (net, printed) = Localnet::start(&home, dir.path(), &[]);
    let mut apis: Vec<Api> = printed.iter().map(|p| Api::new(p.api)).collect();
    let full = apis.pop().expect("the full node");
    let full_pid = printed[4].pid;
    let with_full: Vec<&Api> = apis.iter().chain([&full]).collect();
    wait_all(&with_full, 5, "start", &net.stdout);
    assert_agree(&with_full, 5);
    // The full node follows the four validators without voting; they admit it.
    let network = full.get_ok("/network");
    assert_eq!(network["role"], "full_node", "{network}");
    assert_eq!(network["peers"].as_array().expect("peers").len(), 4);
    assert!(
        network["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .all(|peer| peer["this_node"] == false),
        "{network}"
    );
    let network = apis[0].get_ok("/network");
    assert_eq!(network["role"], "validator", "{network}");
    assert_eq!(network["full_nodes"].as_array().expect("full").len(), 1);
    // Every validator serves the same set and its own view of the network, in which every
    // validator, this one included, is seen voting (three of four finalize without the
    // fourth, so a slow starter may join a little later: wait for it).
    let deadline = Instant::now() + PROGRESS_DEADLINE;
    loop {
        let network = apis[1].get_ok("/network");
        let peers = network["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 4, "{network}");
        let voting = peers
            .iter()
            .filter(|peer| peer["finalizes"].as_u64().expect("finalizes") > 0)
            .count();
        if voting == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every validator votes: {network}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The chain's validator set: the four genesis validators, one seat each.
    let set = apis[0].get_ok("/validators");
    assert_eq!(set["seats"], 4, "{set}");
    let listed = set["validators"].as_array().expect("validators");
    assert_eq!(listed.len(), 4, "{set}");
    assert!(
        listed
            .iter()
            .all(|v| v["seats"] == 1 && v["jailed"] == false),
        "{set}"
    );

    // A transfer sent to the full node is gossiped to the validators and committed on all.
    let node0 = home.join("node0");
    let alice = devnet_key(&node0, "alice");
    let bob = Address(devnet_key(&node0, "bob").verifying_key().to_bytes());
    let mut body = TxBody {
        chain_id: "poi-localnet".into(),
        signer: Address::from_public_key(&alice.verifying_key()),
        nonce: 0,
        fee: 0,
        msg: Msg::Bank(BankMsg::Transfer {
            to: bob,
            amount: 12_345,
        }),
    };
    let params: Params = serde_json::from_value(apis[0].get_ok("/params")).expect("params");
    body.fee = params.min_fee(body.clone().sign(&alice).encoded_len());
    let tx = body.sign(&alice);
    let (status, answer) = full.submit(&tx);
    assert_eq!(status, 202, "{answer}");
    let hash = hex::encode(tx.hash());
    let deadline = Instant::now() + PROGRESS_DEADLINE;
    let committed_at = loop {
        // Validator 3 only got it by gossip: 404 until the block carrying it lands there.
        let (_, status) = apis[3].get(&format!("/txs/{hash}"));
        if status["status"] == "committed" {
            break status["height"].as_u64().expect("height");
        }
        assert!(
            Instant::now() < deadline,
            "transfer never committed: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_all(&with_full, committed_at, "transfer", &net.stdout);
    assert_agree(&with_full, committed_at);

    // SIGKILL validator 2: the other three keep finalizing.
    signal(printed[2].pid, libc::SIGKILL);
    let survivors: Vec<&Api> = [0, 1, 3].iter().map(|&i| &apis[i]).collect();
    let at_kill = survivors
        .iter()
        .filter_map(|api| height(api))
        .max()
        .unwrap_or(0);
    wait_all(&survivors, at_kill + 10, "after the kill", &net.stdout);
    let killed_height = height(&apis[2]);
    assert!(
        killed_height.is_none(),
        "the killed validator still answers"
    );

    // Restarted, it fetches what it missed and agrees with the rest.
    let ahead = survivors
        .iter()
        .filter_map(|api| height(api))
        .max()
        .unwrap_or(0);
    let restarted = Node::start(&home.join("node2"), dir.path());
    let everyone: Vec<&Api> = vec![&apis[0], &apis[1], &restarted.api, &apis[3]];
    wait_all(&everyone, ahead + 5, "after the restart", &net.stdout);
    assert_agree(&everyone, ahead);
    assert_agree(&everyone, ahead + 5);
    let synced = restarted.api.get_ok("/network");
    assert!(
        synced["blocks_synced"].as_u64().expect("blocks_synced") > 0,
        "the restarted validator fetched no blocks: {synced}"
    );

    // SIGKILL the full node and wipe its data: restarted, it joins from genesis, fetches and
    // re-executes every block, and agrees with the validators.
    signal(full_pid, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_dir_all(home.join("full0").join("data")).expect("wipe the full node");
    let tip = everyone
        .iter()
        .filter_map(|api| height(api))
        .max()
        .unwrap_or(0);
    let rejoined = Node::start(&home.join("full0"), dir.path());
    let validators: Vec<&Api> = vec![&apis[0], &apis[1], &restarted.api, &apis[3]];
    let mut followers = validators.clone();
    followers.push(&rejoined.api);
    wait_all(
        &followers,
        tip + 3,
        "after the full node rejoined",
        &net.stdout,
    );
    assert_agree(&followers, 1);
    assert_agree(&followers, tip);
    assert_agree(&followers, tip + 3);
    let synced = rejoined.api.get_ok("/network");
    assert!(
        synced["blocks_synced"].as_u64().expect("blocks_synced") >= tip,
        "the rejoined full node did not fetch the chain: {synced}"
    );
    drop(rejoined);
    drop(restarted);
    drop(net);
}

/// The node key of the node home `home` (its `node_key.json`).
fn node_key(home: &Path) -> ed25519_dalek::SigningKey {
    let text = std::fs::read_to_string(home.join("node_key.json")).expect("node_key.json");
    let file: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let seed: [u8; 32] = hex::decode(file["seed"].as_str().expect("seed"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// Signs `msg` from `key` with nonce `nonce` and the minimum fee, submits it to `api`, and
/// returns its hash.
#[track_caller]
fn submit_msg(api: &Api, key: &ed25519_dalek::SigningKey, nonce: u64, msg: Msg) -> String {
    let params: Params = serde_json::from_value(api.get_ok("/params")).expect("params");
    let mut body = TxBody {
        chain_id: "poi-localnet".into(),
        signer: Address::from_public_key(&key.verifying_key()),
        nonce,
        fee: 0,
        msg,
    };
    body.fee = params.min_fee(body.clone().sign(key).encoded_len());
    let tx = body.sign(key);
    let (status, answer) = api.submit(&tx);
    assert_eq!(status, 202, "{answer}");
    hex::encode(tx.hash())
}

#[test]
fn the_set_changes_at_an_epoch_boundary_and_the_new_set_finalizes() {
    let _serial = crate::many_processes();
    use poi_core::staking::StakingMsg;
    use poi_core::validators::ValidatorsMsg;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("net");
    let (net, printed) = Localnet::start(&home, dir.path(), &["--epoch-blocks", "30"]);
    let apis: Vec<Api> = printed.iter().map(|p| Api::new(p.api)).collect();
    wait_all(&apis.iter().collect::<Vec<_>>(), 2, "start", &net.stdout);

    // Validators 0..=2 and the full node bond and register; validator 3 does not, so the
    // set elected at the next epoch boundary is {0, 1, 2, full0}.
    let homes = ["node0", "node1", "node2", "full0"].map(|name| home.join(name));
    let bond = |index: usize| {
        if index == 3 {
            20 * POI_UNIT
        } else {
            10 * POI_UNIT
        }
    };
    // Registering locks bonded stake, which the mempool checks against committed state: bond
    // first, then register.
    for (nonce, step) in [0u64, 1].into_iter().zip(["bond", "register"]) {
        let mut hashes = Vec::new();
        for (index, node) in homes.iter().enumerate() {
            let msg = if nonce == 0 {
                Msg::Staking(StakingMsg::Bond {
                    amount: bond(index),
                })
            } else {
                Msg::Validators(ValidatorsMsg::Register {
                    self_bond: bond(index),
                })
            };
            hashes.push(submit_msg(&apis[0], &node_key(node), nonce, msg));
        }
        let deadline = Instant::now() + PROGRESS_DEADLINE;
        for hash in &hashes {
            loop {
                let (_, status) = apis[0].get(&format!("/txs/{hash}"));
                if status["status"] == "committed" {
                    break;
                }
                assert!(Instant::now() < deadline, "{step} not committed: {status}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    // SIGKILL validator 1 before the boundary: it misses the election, its dealings and the
    // switch (three of four genesis validators still finalize and deal).
    signal(printed[1].pid, libc::SIGKILL);

    // The elected set differs from the genesis signers: the key is reshared to it during the
    // following epoch, and every running node switches its engine after the block that
    // records generation 1.
    let deadline = Instant::now() + Duration::from_secs(240);
    let signers = loop {
        let set = apis[0].get_ok("/validators");
        if set["signers"]["generation"] == 1 {
            break set["signers"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the key was never reshared: {set}; see {}",
            net.stdout.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut expected: Vec<Address> = homes
        .iter()
        .map(|node| Address::from_public_key(&node_key(node).verifying_key()))
        .collect();
    expected.sort_by_key(|a| a.0);
    let expected: Vec<String> = expected.iter().map(|a| a.to_string()).collect();
    let participants: Vec<String> = signers["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p.as_str().expect("address").to_owned())
        .collect();
    assert_eq!(participants, expected, "{signers}");

    // The new set finalizes blocks (three of its four run). Validator 1, restarted, runs the
    // genesis engine that nobody else runs any more: its tip stalls, it asks its peers for
    // their newest finalization, checks it under the group key, fetches and re-executes every
    // block up to it, computes its share of generation 1 from the dealers' logs (their reveals
    // of the dealings it never received), and switches too.
    let switched = height(&apis[0]).expect("height");
    let restarted = Node::start(&home.join("node1"), dir.path());
    let mut everyone: Vec<&Api> = apis.iter().collect();
    everyone[1] = &restarted.api;
    wait_all(&everyone, switched + 12, "after the switch", &net.stdout);
    assert_agree(&everyone, switched + 12);
    let candidate = Address::from_public_key(&node_key(&homes[3]).verifying_key()).to_string();
    let dropped = Address::from_public_key(&node_key(&home.join("node3")).verifying_key());
    let proposers: Vec<String> = (switched + 1..=switched + 12)
        .map(|h| {
            apis[0].get_ok(&format!("/blocks/{h}"))["proposer"]
                .as_str()
                .expect("proposer")
                .to_owned()
        })
        .collect();
    assert!(
        proposers.contains(&candidate),
        "the new validator proposed none of {proposers:?}"
    );
    assert!(
        !proposers.contains(&dropped.to_string()),
        "the dropped validator still proposes: {proposers:?}"
    );
    assert_eq!(apis[4].get_ok("/network")["role"], "validator");
    assert_eq!(apis[3].get_ok("/network")["role"], "full_node");
    // The restarted validator's tip can reach the others' a moment before its engine switches
    // (the commit lands, then its share is computed and consensus restarts): wait, bounded,
    // until its engine runs generation 1, whose set holds the former full node.
    let full0_key = hex::encode(node_key(&homes[3]).verifying_key().to_bytes());
    let deadline = Instant::now() + PROGRESS_DEADLINE;
    loop {
        let network = restarted.api.get_ok("/network");
        let runs_generation_1 = network["peers"]
            .as_array()
            .expect("peers")
            .iter()
            .any(|peer| peer["public_key"] == full0_key.as_str());
        if runs_generation_1 {
            assert_eq!(network["role"], "validator", "{network}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted validator never switched: {network}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        home.join("node1/shares/generation-1.json").exists(),
        "the restarted validator has no share of generation 1"
    );
    drop(restarted);
    drop(net);
}
