//! Staking over the API: bond and unbond transactions, `GET /stake/{address}` with its proof,
//! and typed refusals.

use poi_core::params::Params;
use poi_core::staking::{self, StakingMsg};
use poi_core::tx::{Msg, Tx, TxBody};
use poi_store::{StateProof, verify_proof};

use crate::{CHAIN_ID, FUNDED, TestNode, addr, alice, amount, assert_error, min_fee};

fn staking_tx(nonce: u64, msg: StakingMsg) -> Tx {
    let key = alice();
    let mut body = TxBody {
        chain_id: CHAIN_ID.into(),
        signer: addr(&key),
        nonce,
        fee: 0,
        msg: Msg::Staking(msg),
    };
    body.fee = min_fee(&body.clone().sign(&key));
    body.sign(&key)
}

#[test]
fn bonded_stake_reaches_a_tier_and_is_provable() {
    let node = TestNode::start();
    let params = Params::default().staking;
    let bond = params.tier_thresholds[1];
    // Admission dry-runs a transaction against committed state, so the unbond waits a block.
    let first = staking_tx(0, StakingMsg::Bond { amount: bond });
    node.submit_ok(&first);
    node.commit_block();
    let second = staking_tx(1, StakingMsg::Unbond { amount: 5 });
    node.submit_ok(&second);
    node.commit_block();
    let fees = first.body.fee + second.body.fee;

    let who = addr(&alice());
    let body = node.get_ok(&format!("/stake/{who}"));
    assert_eq!(amount(&body["bonded"]), bond - 5, "{body}");
    assert_eq!(amount(&body["free"]), bond - 5);
    assert_eq!(body["tier"], 1, "one unit below tier 2's threshold");
    assert_eq!(
        body["unbonding"][0]["release_height"],
        2 + params.unbonding_blocks
    );
    assert_eq!(amount(&body["unbonding"][0]["amount"]), 5);
    assert_eq!(node.account(&who).0, FUNDED - bond - fees);

    // The record proves against the state root the response names.
    let root: [u8; 32] = hex::decode(body["state_root"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let proof =
        StateProof::from_bytes(&hex::decode(body["proof"]["proof"].as_str().unwrap()).unwrap())
            .unwrap();
    let value = hex::decode(body["proof"]["value"].as_str().unwrap()).unwrap();
    verify_proof(root, &staking::stake_key(&who), Some(&value), &proof).expect("proof verifies");

    // Early withdrawal and over-unbonding are refused at admission with their codes.
    assert_error(
        &node.submit(&staking_tx(2, StakingMsg::Withdraw)),
        422,
        "nothing_to_withdraw",
    );
    let too_much = StakingMsg::Unbond { amount: bond };
    assert_error(
        &node.submit(&staking_tx(2, too_much)),
        422,
        "insufficient_stake",
    );
    assert_error(&node.get("/stake/not-an-address"), 400, "bad_address");
}
