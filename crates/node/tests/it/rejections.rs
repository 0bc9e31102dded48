//! Every way `POST /txs` refuses a transaction: HTTP status, stable code, and no effect.

use poi_core::bank::{self, BankMsg};
use poi_core::limits::TX_BYTES_MAX;
use poi_core::tx::{Msg, TxBody};
use poi_node::api::REQUEST_BYTES_MAX;

use crate::{
    CHAIN_ID, FUNDED, TestNode, addr, alice, assert_error, bob, hash_hex, key, min_fee, stranger,
    transfer, transfer_with_fee,
};

/// Asserts that alice's account and the mempool are as at genesis after a refusal, also once
/// a block has been built from whatever the mempool holds.
#[track_caller]
fn assert_nothing_changed(node: &TestNode) {
    assert_eq!(node.get_ok("/status")["mempool_txs"], 0);
    node.commit_block();
    assert_eq!(node.get_ok("/blocks/latest")["tx_count"], 0);
    assert_eq!(node.account(&addr(&alice())), (FUNDED, 0, 0));
    assert_eq!(node.account(&addr(&bob())), (FUNDED, 0, 0));
}

#[test]
fn bad_borsh_is_malformed() {
    let node = TestNode::start();
    assert_error(&node.submit_bytes(&[1, 2, 3]), 422, "malformed");
    assert_error(&node.submit_bytes(&[]), 422, "malformed");
    // A valid transaction with a trailing byte, or cut short, is not one transaction.
    let mut trailing = transfer(&alice(), 0, addr(&bob()), 1).encode();
    trailing.push(0);
    assert_error(&node.submit_bytes(&trailing), 422, "malformed");
    let whole = transfer(&alice(), 0, addr(&bob()), 1).encode();
    assert_error(
        &node.submit_bytes(&whole[..whole.len() - 1]),
        422,
        "malformed",
    );
    assert_nothing_changed(&node);
}

#[test]
fn bad_hex_is_400_bad_hex() {
    let node = TestNode::start();
    for tx in ["zz", "abc", "0x00", "not hex at all"] {
        let body = serde_json::json!({ "tx": tx }).to_string();
        assert_error(&node.post_raw("/txs", body.as_bytes()), 400, "bad_hex");
    }
    assert_nothing_changed(&node);
}

#[test]
fn bad_json_is_400_bad_json() {
    let node = TestNode::start();
    let hex_tx = hex::encode(transfer(&alice(), 0, addr(&bob()), 1).encode());
    let bodies = [
        "not json".to_string(),
        String::new(),
        "{}".to_string(),
        r#"{"tx": 5}"#.to_string(),
        r#"{"tx": null}"#.to_string(),
        format!(r#"{{"tx": "{hex_tx}", "extra": 1}}"#),
        format!(r#"{{"tx": "{hex_tx}""#),
    ];
    for body in &bodies {
        assert_error(&node.post_raw("/txs", body.as_bytes()), 400, "bad_json");
    }
    assert_nothing_changed(&node);
}

#[test]
fn a_json_array_body_is_bad_json() {
    let node = TestNode::start();
    let hex_tx = hex::encode(transfer(&alice(), 0, addr(&bob()), 1).encode());
    let body = format!(r#"["{hex_tx}"]"#);
    assert_error(&node.post_raw("/txs", body.as_bytes()), 400, "bad_json");
}

#[test]
fn oversized_body_is_413_json_and_oversized_tx_is_413_oversized() {
    let node = TestNode::start();
    let padding = "0".repeat(REQUEST_BYTES_MAX);
    let body = format!(r#"{{"tx": "{padding}"}}"#);
    assert!(body.len() > REQUEST_BYTES_MAX);
    assert_error(
        &node.post_raw("/txs", body.as_bytes()),
        413,
        "body_too_large",
    );

    // Within the body limit but one byte over the transaction limit.
    let bytes = vec![0u8; TX_BYTES_MAX as usize + 1];
    assert_error(&node.submit_bytes(&bytes), 413, "oversized");
    // The server still works after refusing large bodies.
    assert_eq!(node.get("/health").0, 200);
    assert_nothing_changed(&node);
}

#[test]
fn tampered_signature_is_bad_signature() {
    let node = TestNode::start();
    let mut tx = transfer(&alice(), 0, addr(&bob()), 1);
    tx.signature[10] ^= 1;
    assert_error(&node.submit(&tx), 422, "bad_signature");
    // Signed by someone else than the signer it names.
    let mut forged = transfer(&bob(), 0, addr(&bob()), 1);
    forged.body.signer = addr(&alice());
    assert_error(&node.submit(&forged), 422, "bad_signature");
    assert_nothing_changed(&node);
}

#[test]
fn other_chain_id_is_wrong_chain_id() {
    let node = TestNode::start();
    let mut body = transfer(&alice(), 0, addr(&bob()), 1).body;
    body.chain_id = "poi-other".into();
    let answer = node.submit(&body.sign(&alice()));
    assert_error(&answer, 422, "wrong_chain_id");
    let message = answer.1["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("poi-other") && message.contains(CHAIN_ID),
        "{message}"
    );
    assert_nothing_changed(&node);
}

#[test]
fn used_nonce_is_stale_nonce_and_the_same_tx_again_is_duplicate() {
    let node = TestNode::start();
    let first = transfer(&alice(), 0, addr(&bob()), 1);
    let hash = node.submit_ok(&first);
    assert_error(&node.submit(&first), 409, "duplicate");
    node.commit_block();
    assert_eq!(node.tx_status(&hash)["status"], "committed");

    let reuse = transfer(&alice(), 0, addr(&bob()), 2);
    let answer = node.submit(&reuse);
    assert_error(&answer, 422, "stale_nonce");
    let message = answer.1["error"]["message"].as_str().expect("message");
    assert!(message.contains("next nonce is 1"), "{message}");
    // Resubmitting a committed transaction is a duplicate, never a second execution.
    assert_error(&node.submit(&first), 409, "duplicate");
    node.commit_block();
    assert_eq!(
        node.account(&addr(&alice())),
        (FUNDED - 1 - first.body.fee, 1, 1)
    );
    assert_eq!(node.account(&addr(&bob())).0, FUNDED + 1);
}

#[test]
fn never_funded_signer_is_unknown_account() {
    let node = TestNode::start();
    let tx = transfer(&stranger(), 0, addr(&bob()), 1);
    assert_error(&node.submit(&tx), 422, "unknown_account");
    assert_nothing_changed(&node);
    assert!(
        !node.get_ok(&format!("/accounts/{}", addr(&stranger())))["exists"]
            .as_bool()
            .expect("exists")
    );
}

#[test]
fn spending_more_than_the_balance_is_insufficient_funds_and_changes_nothing() {
    let node = TestNode::start();
    let tx = transfer(&alice(), 0, addr(&bob()), FUNDED);
    let fee = tx.body.fee;
    let answer = node.submit(&tx);
    assert_error(&answer, 422, "insufficient_funds");
    assert_nothing_changed(&node);
    assert_nothing_changed(&node);
    // Exactly the balance minus the fee is fine.
    let all = transfer(&alice(), 0, addr(&bob()), FUNDED - fee);
    node.submit_ok(&all);
    node.commit_block();
    assert_eq!(node.account(&addr(&alice())), (0, 1, 1));
}

#[test]
fn insufficient_funds_reports_the_balance_before_the_fee_and_the_fee_in_what_is_needed() {
    let node = TestNode::start();
    let tx = transfer(&alice(), 0, addr(&bob()), FUNDED);
    let fee = tx.body.fee;
    let answer = node.submit(&tx);
    assert_error(&answer, 422, "insufficient_funds");
    let message = answer.1["error"]["message"].as_str().expect("message");
    let expected = format!(
        "insufficient funds in {}: balance {FUNDED}, needs {}",
        addr(&alice()),
        FUNDED + fee
    );
    assert_eq!(message, expected);
}

#[test]
fn fee_below_the_minimum_is_fee_too_low() {
    let node = TestNode::start();
    let probe = transfer(&alice(), 0, addr(&bob()), 1);
    let min = min_fee(&probe);
    for fee in [0, 1, min - 1] {
        let tx = transfer_with_fee(&alice(), 0, addr(&bob()), 1, fee);
        assert_error(&node.submit(&tx), 422, "fee_too_low");
    }
    assert_nothing_changed(&node);
    // The minimum itself is enough.
    let hash = node.submit_ok(&transfer_with_fee(&alice(), 0, addr(&bob()), 1, min));
    node.commit_block();
    assert_eq!(node.tx_status(&hash)["status"], "committed");
}

#[test]
fn pending_tx_submitted_twice_is_duplicate() {
    let node = TestNode::start();
    let tx = transfer(&alice(), 0, addr(&bob()), 1);
    node.submit_ok(&tx);
    let answer = node.submit(&tx);
    assert_error(&answer, 409, "duplicate");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .expect("message")
            .contains(&hash_hex(&tx))
    );
    assert_eq!(node.get_ok("/status")["mempool_txs"], 1);
    node.commit_block();
    assert_eq!(node.account(&addr(&bob())).0, FUNDED + 1);
}

#[test]
fn zero_amount_or_paying_the_fee_collector_is_invalid_message() {
    let node = TestNode::start();
    assert_error(
        &node.submit(&transfer(&alice(), 0, addr(&bob()), 0)),
        422,
        "invalid_message",
    );
    assert_error(
        &node.submit(&transfer(&alice(), 0, bank::fee_collector(), 5)),
        422,
        "invalid_message",
    );
    assert_nothing_changed(&node);
}

#[test]
fn transfer_to_oneself_is_admitted_and_only_costs_the_fee() {
    // Allowed on purpose: it moves nothing, and the sender pays the fee like any transaction.
    let node = TestNode::start();
    let response = node.submit(&transfer(&alice(), 0, addr(&alice()), 5));
    assert_eq!(response.0, 202, "{}", response.1);
}

#[test]
fn every_refusal_leaves_balances_and_nonces_untouched() {
    // All refusals at once, against one node, then a block: nothing moved, nonce unused.
    let node = TestNode::start();
    let to = addr(&bob());
    let mut bad_sig = transfer(&alice(), 0, to, 1);
    bad_sig.signature[0] ^= 0x80;
    let mut wrong_chain = transfer(&alice(), 0, to, 1).body;
    wrong_chain.chain_id = "elsewhere".into();
    let refused = [
        bad_sig,
        wrong_chain.sign(&alice()),
        transfer(&alice(), 0, to, FUNDED),
        transfer(&alice(), 0, to, 0),
        transfer_with_fee(&alice(), 0, to, 1, 10),
        TxBody {
            chain_id: CHAIN_ID.into(),
            signer: addr(&alice()),
            nonce: 0,
            fee: 1_000_000,
            msg: Msg::Bank(BankMsg::Transfer {
                to: bank::fee_collector(),
                amount: 1,
            }),
        }
        .sign(&alice()),
    ];
    for tx in &refused {
        let (status, body) = node.submit(tx);
        assert_eq!(status, 422, "{body}");
    }
    assert_nothing_changed(&node);
    assert_eq!(node.account(&addr(&key(8))).0, 0);
}
