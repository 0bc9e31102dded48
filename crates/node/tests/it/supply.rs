//! The supply ledger over HTTP: genesis, minted, burned (the fee burn) and circulating.

use poi_core::bank;
use poi_core::params::Params;
use poi_core::token::Amount;
use serde_json::Value;

use crate::{
    FUNDED, TestNode, addr, alice, amount, bob, carol, genesis_with, key, transfer,
    transfer_with_fee, validator,
};

/// Checks the decimal-string fields and `total = genesis + minted - burned = circulating`.
#[track_caller]
fn checked_supply(body: &Value) -> (Amount, Amount, Amount) {
    for field in ["genesis", "minted", "burned", "total", "circulating"] {
        let text = body[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} not a string"));
        assert!(
            !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
            "{field} = {text:?} is not a decimal string"
        );
    }
    let (genesis, minted, burned) = (
        amount(&body["genesis"]),
        amount(&body["minted"]),
        amount(&body["burned"]),
    );
    assert_eq!(amount(&body["total"]), genesis + minted - burned, "{body}");
    // Nothing is bonded or escrowed here, so everything is circulating.
    assert_eq!(
        amount(&body["circulating"]),
        amount(&body["total"]),
        "{body}"
    );
    let by_reason: Amount = body["burned_by_reason"]
        .as_object()
        .expect("burned_by_reason")
        .values()
        .map(amount)
        .sum();
    assert_eq!(by_reason, burned, "{body}");
    assert_eq!(body["decimals"], 9);
    (genesis, minted, burned)
}

#[test]
fn supply_burns_the_fee_share_of_every_block_and_conserves_tokens() {
    let node = TestNode::start();
    let at_genesis = node.get_ok("/supply");
    assert_eq!(checked_supply(&at_genesis), (3 * FUNDED, 0, 0));
    assert_eq!(at_genesis["height"], 0);

    let params = Params::default();
    let mut expected_burn: Amount = 0;
    let recipient = addr(&key(9));
    // Odd fees so that each block's burn rounds down.
    let blocks: [&[(u8, Amount)]; 3] = [&[(1, 1)], &[(1, 3), (2, 7), (3, 11)], &[(2, 1)]];
    let mut nonces = [0u64; 4];
    for block in blocks {
        let mut collected: Amount = 0;
        for &(who, extra_fee) in block {
            let from = key(who);
            let probe = transfer(&from, nonces[usize::from(who)], recipient, 1);
            let fee = probe.body.fee + extra_fee;
            let tx = transfer_with_fee(&from, nonces[usize::from(who)], recipient, 1, fee);
            nonces[usize::from(who)] += 1;
            node.submit_ok(&tx);
            collected += fee;
        }
        node.commit_block();
        expected_burn += collected * Amount::from(params.fee_burn_bps) / 10_000;
    }

    let body = node.get_ok("/supply");
    let (genesis, minted, burned) = checked_supply(&body);
    assert_eq!((genesis, minted), (3 * FUNDED, 0));
    assert_eq!(burned, expected_burn);
    assert!(burned > 0);
    assert_eq!(amount(&body["burned_by_reason"]["fees"]), burned);
    assert_eq!(body["height"], 3);

    // Every token is in some account: the known accounts hold exactly the total.
    let holders = [
        addr(&alice()),
        addr(&bob()),
        addr(&carol()),
        recipient,
        addr(&validator()),
        bank::treasury(),
        bank::fee_collector(),
    ];
    let held: Amount = holders.iter().map(|a| node.account(a).0).sum();
    assert_eq!(held, amount(&body["total"]));
    assert_eq!(node.account(&recipient).0, 5);
}

#[test]
fn amounts_near_u128_max_stay_exact_and_never_overflow() {
    // Genesis holds the largest supply u128 allows. Transfers cannot overflow a balance (the
    // total is conserved), so `overflow` is unreachable by transfers; a too large amount or fee
    // is `insufficient_funds`.
    let whale = key(20);
    let whale_balance = u128::MAX - FUNDED;
    let node = TestNode::with_genesis(genesis_with(vec![
        (addr(&whale), whale_balance),
        (addr(&alice()), FUNDED),
    ]));
    let body = node.get_ok("/supply");
    assert_eq!(checked_supply(&body).0, u128::MAX);
    assert_eq!(body["total"], u128::MAX.to_string());

    let too_much = transfer(&alice(), 0, addr(&whale), u128::MAX);
    let answer = node.submit(&too_much);
    crate::assert_error(&answer, 422, "insufficient_funds");
    let huge_fee = transfer_with_fee(&alice(), 0, addr(&whale), 1, u128::MAX);
    crate::assert_error(&node.submit(&huge_fee), 422, "insufficient_funds");

    // The whale sends alice everything but the fee: alice's balance approaches u128::MAX.
    let probe = transfer(&whale, 0, addr(&alice()), 1);
    let sent = whale_balance - probe.body.fee;
    let all_in = transfer(&whale, 0, addr(&alice()), sent);
    let hash = node.submit_ok(&all_in);
    node.commit_block();
    let status = node.tx_status(&hash);
    assert_eq!(
        status["receipt"]["outcome"]["status"], "success",
        "{status}"
    );
    assert_eq!(node.account(&addr(&whale)).0, 0);
    assert_eq!(node.account(&addr(&alice())).0, FUNDED + sent);
    let after = node.get_ok("/supply");
    let (_, _, burned) = checked_supply(&after);
    assert_eq!(burned, all_in.body.fee / 2);
    assert_eq!(amount(&after["total"]), u128::MAX - burned);
}

#[test]
fn emission_fills_the_pool_and_get_rewards_shows_each_epoch_paid_exactly() {
    let mut genesis = crate::genesis();
    genesis.params.emission.schedule = poi_core::emission::Schedule::HalvingByTime {
        initial: 1_000,
        halving_blocks: 100,
        cap: Amount::MAX,
    };
    genesis.params.rewards.epoch_blocks = 3;
    let node = TestNode::with_genesis(genesis);
    let (status, body) = node.get("/rewards");
    assert_eq!(status, 404, "{body}");
    let (status, body) = node.get("/rewards?epoch=x");
    assert_eq!(status, 400, "{body}");
    for _ in 0..3 {
        node.commit_block();
    }
    // Heights 1 and 2 minted into the pool; epoch 0 (heights 0-2) ended at height 2 and paid
    // it all to the treasury (nobody did verified work).
    let body = node.get_ok("/rewards?epoch=0");
    assert_eq!(body["pool"], "2000", "{body}");
    assert_eq!(body["treasury"], "2000", "{body}");
    assert_eq!(body["accounts"].as_array().map(Vec::len), Some(0));
    // Epoch 1's first block earned its emission; it is minted at the epoch's end.
    let supply = node.get_ok("/supply");
    assert_eq!(supply["minted"], "2000", "{supply}");
    assert_eq!(supply["reward_pool"], "0", "{supply}");
    let (status, body) = node.get("/rewards?epoch=5");
    assert_eq!(status, 404, "{body}");
}
