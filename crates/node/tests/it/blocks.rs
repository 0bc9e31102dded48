//! Blocks by height, by hash and latest.

use serde_json::Value;

use crate::{TestNode, addr, alice, assert_error, bob, transfer};

#[test]
fn blocks_by_height_and_by_hash_equal_latest_and_link_to_their_parents() {
    let node = TestNode::start();
    node.commit_block();
    let tx_hash = node.submit_ok(&transfer(&alice(), 0, addr(&bob()), 9));
    let with_tx = node.commit_block();
    let last = node.commit_block();

    let latest = node.get_ok("/blocks/latest");
    assert_eq!(latest["height"], 3);
    assert_eq!(latest["hash"], hex::encode(last));
    assert_eq!(latest, node.get_ok("/blocks/3"));

    let tip = node.ledger.tip();
    assert_eq!(latest["state_root"], hex::encode(tip.state_root));
    let status = node.get_ok("/status");
    assert_eq!(
        (&status["height"], &status["hash"], &status["state_root"]),
        (&latest["height"], &latest["hash"], &latest["state_root"])
    );

    let mut previous: Option<Value> = None;
    for height in 0..=3u64 {
        let by_height = node.get_ok(&format!("/blocks/{height}"));
        let hash = by_height["hash"].as_str().expect("hash").to_string();
        assert_eq!(hash.len(), 64);
        assert_eq!(by_height["height"], height);
        assert_eq!(node.get_ok(&format!("/blocks/{hash}")), by_height);
        assert_eq!(
            node.get_ok(&format!("/blocks/{}", hash.to_uppercase())),
            by_height,
            "hex is case-insensitive"
        );
        let header = &by_height["header"];
        assert_eq!(header["height"], height);
        assert_eq!(header["state_root"], by_height["state_root"]);
        assert_eq!(header["parent_hash"], by_height["parent_hash"]);
        assert_eq!(header["chain_id"], crate::CHAIN_ID);
        match &previous {
            None => assert_eq!(by_height["parent_hash"], "0".repeat(64)),
            Some(parent) => {
                assert_eq!(by_height["parent_hash"], parent["hash"]);
                assert!(by_height["timestamp_ms"].as_u64() >= parent["timestamp_ms"].as_u64());
                assert_eq!(by_height["proposer"], addr(&crate::validator()).to_string());
            }
        }
        previous = Some(by_height);
    }
    let block2 = node.get_ok(&format!("/blocks/{}", hex::encode(with_tx)));
    assert_eq!(block2["height"], 2);
    assert_eq!(block2["txs"], serde_json::json!([tx_hash]));
    // A block with a transaction changes the state root; an empty one keeps it.
    let root = |h: u64| node.get_ok(&format!("/blocks/{h}"))["state_root"].clone();
    assert_eq!(root(0), root(1));
    assert_ne!(root(1), root(2));
    assert_eq!(root(2), root(3));
}

#[test]
fn bad_and_missing_block_ids_are_json_errors() {
    let node = TestNode::start();
    node.commit_block();
    for id in ["abc", "-1", "1.5", "latest2", "0x01", &"1".repeat(30)] {
        assert_error(&node.get(&format!("/blocks/{id}")), 400, "bad_block_id");
    }
    assert_error(
        &node.get(&format!("/blocks/{}", "z".repeat(64))),
        400,
        "bad_hash",
    );
    assert_error(&node.get("/blocks/2"), 404, "not_found");
    assert_error(
        &node.get(&format!("/blocks/{}", u64::MAX)),
        404,
        "not_found",
    );
    assert_error(
        &node.get(&format!("/blocks/{}", "ab".repeat(32))),
        404,
        "not_found",
    );
}
