//! The market over the API: a provider registers, a job is matched to it, and `GET /market`,
//! `GET /providers/{address}` and `GET /jobs/{id}` show what the state holds; bad paths and
//! bad transactions get their typed errors.

use ed25519_dalek::SigningKey;
use poi_core::market::MarketMsg;
use poi_core::staking::StakingMsg;
use poi_core::tx::{Msg, Tx, TxBody};

use crate::{CHAIN_ID, TestNode, addr, alice, amount, assert_error, bob, min_fee};

fn signed(key: &SigningKey, nonce: u64, msg: Msg) -> Tx {
    let mut body = TxBody {
        chain_id: CHAIN_ID.into(),
        signer: addr(key),
        nonce,
        fee: 0,
        msg,
    };
    body.fee = min_fee(&body.clone().sign(key));
    body.sign(key)
}

fn register(collateral: u128) -> Msg {
    Msg::Market(MarketMsg::Register {
        hardware: "2 vCPU".into(),
        capacity_units_per_block: 100,
        class: 0,
        ask_price: 7,
        endpoint: "http://127.0.0.1:9/ckpt".into(),
        collateral,
    })
}

#[test]
fn market_provider_and_job_endpoints_show_the_committed_market() {
    let node = TestNode::start();
    let provider = bob();
    let user = alice();
    let empty = node.get_ok("/market");
    assert_eq!(empty["queue_length"], 0);
    assert_eq!(empty["utilisation"], "0.0000");
    let base_price = amount(&empty["base_price"]);

    // Registration needs bonded stake: refused at admission with its code.
    let stake = 1_000_000_000_000;
    assert_error(
        &node.submit(&signed(&provider, 0, register(stake))),
        422,
        "insufficient_stake",
    );
    node.submit_ok(&signed(
        &provider,
        0,
        Msg::Staking(StakingMsg::Bond { amount: stake }),
    ));
    node.commit_block();
    // Collateral below the requirement is refused with its own code.
    assert_error(
        &node.submit(&signed(&provider, 1, register(1))),
        422,
        "insufficient_collateral",
    );
    node.submit_ok(&signed(&provider, 1, register(stake)));
    node.commit_block();

    let who = addr(&provider);
    let shown = node.get_ok(&format!("/providers/{who}"));
    assert_eq!(amount(&shown["collateral"]), stake);
    assert!(amount(&shown["required_collateral"]) <= stake);
    assert_eq!(shown["eligible"], true);
    assert_eq!(shown["slashes"], 0);
    assert_eq!(shown["reputation"], "0.500000");

    let job = Msg::Market(MarketMsg::SubmitInference {
        model: "charlm".into(),
        version: 1,
        input_hash: [3; 32],
        units: 40,
        max_price: base_price * 2,
    });
    node.submit_ok(&signed(&user, 0, job));
    node.commit_block();
    let job = node.get_ok("/jobs/0");
    assert_eq!(job["status"], "matched", "{job}");
    assert_eq!(job["provider"], who.to_string());
    assert_eq!(amount(&job["escrow"]), 40 * base_price * 2);
    assert!(amount(&job["charged_price"]) <= base_price * 2);

    let market = node.get_ok("/market");
    assert_eq!(market["jobs"]["matched"], 1);
    assert_eq!(market["providers"]["registered"], 1);
    assert_eq!(market["load_units"], 40);
    assert!(market["queue"].as_array().is_some_and(|q| !q.is_empty()));

    let listed = node.get_ok("/jobs?status=matched");
    assert_eq!(listed["jobs"][0]["id"], 0, "{listed}");
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(1));
    let none = node.get_ok("/jobs?status=settled");
    assert_eq!(none["jobs"], serde_json::json!([]));
    assert_eq!(node.get_ok("/jobs?after=0")["jobs"], serde_json::json!([]));
    assert_error(&node.get("/jobs?status=verified"), 400, "bad_status");
    assert_error(&node.get("/jobs?limit=0"), 400, "bad_query");
    assert_error(&node.get("/jobs?colour=red"), 400, "bad_query");
    assert_error(&node.get("/jobs/7"), 404, "not_found");
    assert_error(&node.get("/jobs/seven"), 400, "bad_job_id");
    assert_error(
        &node.get(&format!("/providers/{}", addr(&user))),
        404,
        "not_found",
    );
    assert_error(&node.get("/providers/nope"), 400, "bad_address");
    let unknown = Msg::Market(MarketMsg::SubmitInference {
        model: "gpt9".into(),
        version: 1,
        input_hash: [3; 32],
        units: 1,
        max_price: 1,
    });
    assert_error(
        &node.submit(&signed(&user, 1, unknown)),
        422,
        "unknown_model",
    );
}
