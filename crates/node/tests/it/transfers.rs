//! Transfers end to end: admission, commit, receipts, balances and account proofs.

use poi_core::bank;
use poi_core::params::Params;
use poi_store::{StateProof, verify_proof};
use serde_json::json;

use crate::{
    FUNDED, TestNode, addr, alice, amount, bob, hash_hex, key, min_fee, transfer, validator,
};

#[test]
fn transfer_is_pending_then_committed_with_its_receipt_and_balances() {
    let node = TestNode::start();
    let recipient = addr(&key(7));
    let tx = transfer(&alice(), 0, recipient, 1_000);
    let fee = tx.body.fee;
    let hash = node.submit_ok(&tx);

    assert_eq!(
        node.tx_status(&hash),
        json!({ "hash": hash, "status": "pending" })
    );
    assert_eq!(node.account(&addr(&alice())), (FUNDED, 0, 1));
    assert_eq!(node.get_ok("/status")["mempool_txs"], 1);

    node.commit_block();

    let status = node.tx_status(&hash);
    assert_eq!(status["status"], "committed", "{status}");
    assert_eq!(
        (status["height"].as_u64(), status["index"].as_u64()),
        (Some(1), Some(0))
    );
    let alice_address = addr(&alice()).to_string();
    let expected_receipt = json!({
        "tx_hash": hash,
        "height": 1,
        "index": 0,
        "outcome": { "status": "success" },
        "fee_paid": fee.to_string(),
        "events": [
            {
                "module": "bank",
                "kind": "fee",
                "attributes": [["payer", alice_address], ["amount", fee.to_string()]],
            },
            {
                "module": "bank",
                "kind": "transfer",
                "attributes": [
                    ["from", alice_address],
                    ["to", recipient.to_string()],
                    ["amount", "1000"],
                ],
            },
        ],
    });
    assert_eq!(status["receipt"], expected_receipt);

    let block = node.get_ok("/blocks/1");
    assert_eq!(block["txs"], json!([hash]));
    assert_eq!(block["tx_count"], 1);

    let params = Params::default();
    let burned = fee * u128::from(params.fee_burn_bps) / 10_000;
    let to_treasury = fee * u128::from(params.fee_treasury_bps) / 10_000;
    let to_proposer = fee - burned - to_treasury;
    let block_events = block["block_events"].as_array().expect("block events");
    let fees_event = block_events
        .iter()
        .find(|e| e["kind"] == "fees")
        .unwrap_or_else(|| panic!("no fees event in {block}"));
    assert_eq!(
        fees_event,
        &json!({
            "module": "bank",
            "kind": "fees",
            "attributes": [
                ["collected", fee.to_string()],
                ["burned", burned.to_string()],
                ["treasury", to_treasury.to_string()],
                ["proposer", to_proposer.to_string()],
            ],
        })
    );
    let burn_event = block_events
        .iter()
        .find(|e| e["kind"] == "burn")
        .unwrap_or_else(|| panic!("no burn event in {block}"));
    assert_eq!(
        burn_event,
        &json!({
            "module": "supply",
            "kind": "burn",
            "attributes": [
                ["from", bank::fee_collector().to_string()],
                ["amount", burned.to_string()],
                ["reason", "fees"],
            ],
        })
    );

    assert_eq!(node.account(&addr(&alice())), (FUNDED - 1_000 - fee, 1, 1));
    assert_eq!(node.account(&recipient), (1_000, 0, 0));
    assert_eq!(node.account(&addr(&validator())).0, to_proposer);
    assert_eq!(node.account(&bank::treasury()).0, to_treasury);
    assert_eq!(node.account(&bank::fee_collector()).0, 0);
    assert_eq!(node.get_ok("/status")["mempool_txs"], 0);
    let recipient_body = node.get_ok(&format!("/accounts/{recipient}"));
    assert_eq!(recipient_body["exists"], true);
    let unknown = node.get_ok(&format!("/accounts/{}", addr(&key(99))));
    assert_eq!(
        (unknown["exists"].clone(), unknown["balance"].clone()),
        (json!(false), json!("0"))
    );
}

#[test]
fn a_message_that_fails_in_its_block_still_pays_its_fee() {
    // Both transfers pass admission against committed state, but the first leaves too little
    // for the second: the second is included with a `failed` receipt, pays its fee and uses its
    // nonce, and moves nothing.
    let node = TestNode::start();
    let probe = transfer(&alice(), 0, addr(&bob()), 1);
    let fee = min_fee(&probe);
    let first = transfer(&alice(), 0, addr(&bob()), FUNDED - 2 * fee - 10);
    let second = transfer(&alice(), 1, addr(&bob()), 100);
    assert_eq!((first.body.fee, second.body.fee), (fee, fee));
    let first_hash = node.submit_ok(&first);
    let second_hash = node.submit_ok(&second);

    node.commit_block();

    let first_status = node.tx_status(&first_hash);
    assert_eq!(first_status["receipt"]["outcome"]["status"], "success");
    let second_status = node.tx_status(&second_hash);
    assert_eq!(second_status["status"], "committed");
    assert_eq!(second_status["height"], first_status["height"]);
    assert_eq!(second_status["index"], 1);
    let receipt = &second_status["receipt"];
    assert_eq!(receipt["outcome"]["status"], "failed", "{receipt}");
    assert_eq!(
        receipt["outcome"]["code"], "insufficient_funds",
        "{receipt}"
    );
    assert_eq!(receipt["fee_paid"], fee.to_string());
    let events = receipt["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "only the fee event survives: {receipt}");
    assert_eq!(events[0]["kind"], "fee");

    assert_eq!(node.account(&addr(&alice())), (10, 2, 2));
    assert_eq!(
        node.account(&addr(&bob())).0,
        FUNDED + FUNDED - 2 * fee - 10
    );
}

#[test]
fn account_proof_verifies_against_the_reported_state_root() {
    let node = TestNode::start();
    node.submit_ok(&transfer(&alice(), 0, addr(&bob()), 12_345));
    node.commit_block();
    node.commit_block();

    let body = node.get_ok(&format!("/accounts/{}?prove=true", addr(&alice())));
    let latest = node.get_ok("/blocks/latest");
    let proof = &body["proof"];
    assert_eq!(body["height"], latest["height"]);
    assert_eq!(body["state_root"], latest["state_root"]);
    assert_eq!(proof["state_root"], body["state_root"]);
    assert_eq!(proof["height"], body["height"]);
    let key = bank::account_key(&addr(&alice()));
    assert_eq!(proof["key"], hex::encode(&key));

    let root: [u8; 32] = hex::decode(proof["state_root"].as_str().expect("root"))
        .expect("hex root")
        .try_into()
        .expect("32-byte root");
    let value = hex::decode(proof["value"].as_str().expect("value present")).expect("hex value");
    let state_proof =
        StateProof::from_bytes(&hex::decode(proof["proof"].as_str().expect("proof")).expect("hex"))
            .expect("proof decodes");
    verify_proof(root, &key, Some(&value), &state_proof).expect("proof verifies");

    let record: bank::Account = borsh::from_slice(&value).expect("account record");
    assert_eq!(record.balance, amount(&body["balance"]));
    assert_eq!(record.nonce, body["nonce"].as_u64().expect("nonce"));
    assert_eq!(record.nonce, 1);

    // The proof binds the value and the root: any other value or root fails.
    let mut forged = record;
    forged.balance += 1;
    let forged = borsh::to_vec(&forged).expect("encodes");
    assert!(verify_proof(root, &key, Some(&forged), &state_proof).is_err());
    assert!(verify_proof(root, &key, None, &state_proof).is_err());
    let genesis_root: [u8; 32] = hex::decode(
        node.get_ok("/blocks/0")["state_root"]
            .as_str()
            .expect("root"),
    )
    .expect("hex")
    .try_into()
    .expect("32 bytes");
    assert!(verify_proof(genesis_root, &key, Some(&value), &state_proof).is_err());
}

#[test]
fn absent_account_has_a_proof_of_absence() {
    let node = TestNode::start();
    let nobody = addr(&key(42));
    let body = node.get_ok(&format!("/accounts/{nobody}?prove=true"));
    assert_eq!(body["exists"], false);
    let proof = &body["proof"];
    assert!(proof["value"].is_null(), "{body}");
    let root: [u8; 32] = hex::decode(proof["state_root"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let key = bank::account_key(&nobody);
    let state_proof =
        StateProof::from_bytes(&hex::decode(proof["proof"].as_str().expect("proof")).expect("hex"))
            .expect("proof decodes");
    verify_proof(root, &key, None, &state_proof).expect("absence verifies");
    let fake = borsh::to_vec(&bank::Account {
        nonce: 0,
        balance: 1,
    })
    .expect("encodes");
    assert!(verify_proof(root, &key, Some(&fake), &state_proof).is_err());
    // Without ?prove there is no proof.
    assert!(node.get_ok(&format!("/accounts/{nobody}"))["proof"].is_null());
}

#[test]
fn future_nonce_is_held_until_the_gap_closes_then_both_commit_in_nonce_order() {
    let node = TestNode::start();
    let later = transfer(&alice(), 1, addr(&bob()), 2);
    let later_hash = node.submit_ok(&later);
    // Held, not ready: next_nonce does not skip the gap.
    assert_eq!(node.account(&addr(&alice())), (FUNDED, 0, 0));
    for _ in 0..3 {
        node.commit_block();
        assert_eq!(node.tx_status(&later_hash)["status"], "pending");
        assert_eq!(node.get_ok("/blocks/latest")["tx_count"], 0);
    }
    assert_eq!(node.account(&addr(&alice())), (FUNDED, 0, 0));

    let first = transfer(&alice(), 0, addr(&bob()), 1);
    let first_hash = node.submit_ok(&first);
    assert_eq!(
        node.account(&addr(&alice())).2,
        2,
        "both queued contiguously"
    );
    node.commit_block();

    let first_status = node.tx_status(&first_hash);
    let later_status = node.tx_status(&later_hash);
    assert_eq!(first_status["status"], "committed");
    assert_eq!(later_status["status"], "committed");
    let order = |s: &serde_json::Value| (s["height"].as_u64(), s["index"].as_u64());
    assert!(
        order(&first_status) < order(&later_status),
        "nonce 0 at {:?} must precede nonce 1 at {:?}",
        order(&first_status),
        order(&later_status)
    );
    let fees = first.body.fee + later.body.fee;
    assert_eq!(node.account(&addr(&alice())), (FUNDED - 3 - fees, 2, 2));
    assert_eq!(node.account(&addr(&bob())).0, FUNDED + 3);
}

#[test]
fn a_pending_transaction_is_replaced_only_by_a_higher_fee() {
    let node = TestNode::start();
    let original = transfer(&alice(), 0, addr(&bob()), 5);
    let original_hash = node.submit_ok(&original);
    let same_fee = crate::transfer_with_fee(&alice(), 0, addr(&bob()), 6, original.body.fee);
    crate::assert_error(&node.submit(&same_fee), 409, "duplicate");
    let higher = crate::transfer_with_fee(&alice(), 0, addr(&bob()), 7, original.body.fee + 1);
    let higher_hash = node.submit_ok(&higher);
    // The replaced transaction is gone; the replacement commits.
    crate::assert_error(
        &node.get(&format!("/txs/{original_hash}")),
        404,
        "not_found",
    );
    node.commit_block();
    assert_eq!(node.tx_status(&higher_hash)["status"], "committed");
    assert_eq!(node.account(&addr(&bob())).0, FUNDED + 7);
    assert_eq!(hash_hex(&higher), higher_hash);
}

#[test]
fn account_answer_is_one_consistent_snapshot_while_blocks_commit() {
    // The balance, nonce, height and root of one answer, and the proven record, must all
    // describe the same committed state even while blocks are being committed.
    const BLOCKS: u64 = 100;
    let node = TestNode::start();
    let alice_address = addr(&alice());
    let path = format!("/accounts/{alice_address}?prove=true");
    let mut inconsistent = Vec::new();
    let mut answers = 0;
    std::thread::scope(|scope| {
        let committer = scope.spawn(|| {
            for nonce in 0..BLOCKS {
                let tx = transfer(&alice(), nonce, addr(&bob()), 1);
                node.ledger.submit(&tx.encode()).expect("admitted");
                node.commit_block();
            }
        });
        while !committer.is_finished() {
            let body = node.get_ok(&path);
            answers += 1;
            let value = hex::decode(body["proof"]["value"].as_str().expect("value")).expect("hex");
            let record: bank::Account = borsh::from_slice(&value).expect("record");
            let reported = (
                amount(&body["balance"]),
                body["nonce"].as_u64().expect("nonce"),
            );
            // Alice's nonce is the height she was last seen at (one transfer per block).
            let height = body["height"].as_u64().expect("height");
            if reported != (record.balance, record.nonce) || record.nonce != height {
                inconsistent.push(format!(
                    "height {height}: reported {reported:?}, proven {:?}",
                    (record.balance, record.nonce)
                ));
            }
        }
        committer.join().expect("committer");
    });
    assert!(answers > 0);
    assert!(
        inconsistent.is_empty(),
        "{} of {answers} answers mix two states, e.g. {:?}",
        inconsistent.len(),
        &inconsistent[..inconsistent.len().min(3)]
    );
}
