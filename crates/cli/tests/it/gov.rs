//! Governance through the CLI on a devnet: a parameter change is proposed, voted by the
//! funded test keys, passes, waits out its timelock and takes effect at the next epoch
//! boundary; `GET /proposals/{id}` shows the tally, turnout and each step's height.

use std::time::{Duration, Instant};

use crate::{Node, poi, stdout_of};

#[test]
fn a_parameter_change_is_proposed_voted_and_takes_effect_at_the_epoch_boundary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let node = Node::devnet(&home, dir.path());
    let home = home.to_str().expect("utf-8 path");
    let run = |args: &[&str]| stdout_of(poi().args(args).args(["--home", home]));
    // Voting weight is stake bonded before the proposal.
    for who in ["alice", "bob"] {
        run(&["stake", "bond", "--from", who, "--amount", "1000poi"]);
    }
    let before = node.api.get_ok("/params");
    assert_eq!(before["rewards"]["royalty_bps"], 1_000);
    let out = run(&[
        "gov",
        "propose",
        "--from",
        "carol",
        "--param",
        "rewards.royalty_bps=500",
    ]);
    assert!(out.contains("proposal 0 submitted"), "{out}");
    for who in ["alice", "bob"] {
        let out = run(&["gov", "vote", "0", "yes", "--from", who]);
        assert!(out.contains("voted Yes on proposal 0"), "{out}");
    }
    // Out of range: refused at submission with a one-line typed error.
    let refused = poi()
        .args([
            "gov",
            "propose",
            "--from",
            "carol",
            "--param",
            "rewards.royalty_bps=9999",
        ])
        .args(["--home", home])
        .output()
        .expect("run poi");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("outside its range"), "{err}");

    let started = Instant::now();
    let mut executed = None;
    while started.elapsed() < Duration::from_secs(180) && executed.is_none() {
        std::thread::sleep(Duration::from_millis(500));
        let p = node.api.get_ok("/proposals/0");
        if p["status"] == "executed" {
            executed = Some(p);
        }
    }
    let p = executed.expect("the proposal executed within 3 minutes");
    assert_eq!(p["tally"]["yes"], (2_000u128 * 1_000_000_000).to_string());
    assert!(p["turnout_bps"].as_u64().unwrap() > 0, "{p}");
    let steps: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["submitted", "passed", "executed"], "{p}");
    let executed_at = p["steps"][2][1].as_u64().unwrap();
    let epoch = before["rewards"]["epoch_blocks"].as_u64().unwrap();
    assert_eq!(
        (executed_at + 1) % epoch,
        0,
        "at an epoch's last block: {p}"
    );
    assert_eq!(node.api.get_ok("/params")["rewards"]["royalty_bps"], 500);
    let shown = run(&["gov", "show", "0"]);
    assert!(shown.contains("executed"), "{shown}");
    let listed = run(&["gov", "list"]);
    assert!(listed.contains("set rewards.royalty_bps=500"), "{listed}");
}
