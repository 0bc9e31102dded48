use ed25519_dalek::SigningKey;
use poi_core::bank::{self, BankMsg};
use poi_core::block::BlockContext;
use poi_core::chain::{Admission, BlockError, Chain, Mode};
use poi_core::event::TxOutcome;
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::params::Params;
use poi_core::state::MemState;
use poi_core::supply::{self, BurnReason};
use poi_core::tx::{Msg, Prechecks, Tx, TxBody};
use poi_core::{Address, TxError};

pub(crate) const CHAIN: &str = "poi-test";

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn addr(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

pub(crate) fn genesis_state(funded: &[(&SigningKey, u128)]) -> MemState {
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: vec![addr(&key(200))],
        params: Params::default(),
        accounts: funded
            .iter()
            .map(|(k, balance)| GenesisAccount {
                address: addr(k),
                balance: *balance,
            })
            .collect(),
        beacon: None,
        models: Vec::new(),
        data: Vec::new(),
    };
    let mut state = MemState::default();
    state.apply(&genesis.state().unwrap());
    state
}

pub(crate) fn transfer(from: &SigningKey, nonce: u64, to: Address, amount: u128, fee: u128) -> Tx {
    TxBody {
        chain_id: CHAIN.into(),
        signer: addr(from),
        nonce,
        fee,
        msg: Msg::Bank(BankMsg::Transfer { to, amount }),
    }
    .sign(from)
}

pub(crate) fn ctx(height: u64) -> BlockContext {
    BlockContext {
        height,
        timestamp_ms: height * 1000,
        proposer: addr(&key(200)),
        view: height,
        seeds: Vec::new(),
    }
}

fn balance(state: &MemState, who: Address) -> u128 {
    bank::account(state, &who).unwrap().map_or(0, |a| a.balance)
}

#[test]
fn transfer_moves_funds_and_splits_fees() {
    let (alice, bob) = (key(1), key(2));
    let mut state = genesis_state(&[(&alice, 1_000_000)]);
    let chain = Chain::new(CHAIN);
    let tx = transfer(&alice, 0, addr(&bob), 300_000, 10_000);
    assert_eq!(chain.check_tx(&state, &tx, 1), Ok(Admission::Ready));
    let out = chain
        .execute_block(&state, &ctx(1), vec![tx], Mode::Verify)
        .unwrap();
    assert_eq!(out.receipts[0].outcome, TxOutcome::Success);
    state.apply(&out.writes);
    assert_eq!(balance(&state, addr(&alice)), 1_000_000 - 300_000 - 10_000);
    assert_eq!(balance(&state, addr(&bob)), 300_000);
    // Default params: 50% burned, 10% treasury, 40% proposer.
    assert_eq!(balance(&state, bank::treasury()), 1_000);
    assert_eq!(balance(&state, addr(&key(200))), 4_000);
    assert_eq!(balance(&state, bank::fee_collector()), 0);
    let supply = chain.audit(&state).unwrap();
    assert_eq!(
        supply.burned_by_reason.get(BurnReason::Fees.as_str()),
        Some(&5_000)
    );
    assert_eq!(supply.total, 1_000_000 - 5_000);
    assert_eq!(
        bank::account(&state, &addr(&alice)).unwrap().unwrap().nonce,
        1
    );
}

#[test]
fn every_rejection_is_typed_and_changes_nothing() {
    let (alice, bob, nobody) = (key(1), key(2), key(3));
    let state = genesis_state(&[(&alice, 1_000_000)]);
    let chain = Chain::new(CHAIN);
    let to = addr(&bob);
    let mut wrong_chain = TxBody {
        chain_id: "other".into(),
        signer: addr(&alice),
        nonce: 0,
        fee: 10_000,
        msg: Msg::Bank(BankMsg::Transfer { to, amount: 1 }),
    }
    .sign(&alice);
    let mut bad_sig = transfer(&alice, 0, to, 1, 10_000);
    bad_sig.signature[3] ^= 0xff;
    let cases: Vec<(Tx, &str)> = vec![
        (
            transfer(&alice, 0, to, 2_000_000, 10_000),
            "insufficient_funds",
        ),
        (transfer(&alice, 0, to, 1, 1), "fee_too_low"),
        (transfer(&alice, 0, to, 1, 2_000_000), "insufficient_funds"),
        (transfer(&nobody, 0, to, 1, 10_000), "unknown_account"),
        (transfer(&alice, 0, to, 0, 10_000), "invalid_message"),
        (
            transfer(&alice, 0, to, u128::MAX, 10_000),
            "insufficient_funds",
        ),
        (bad_sig, "bad_signature"),
        (wrong_chain.clone(), "wrong_chain_id"),
    ];
    for (tx, code) in &cases {
        let err = chain.check_tx(&state, tx, 1).unwrap_err();
        assert_eq!(err.code(), *code, "{err}");
    }
    // Nonces: stale after one committed transfer; future is admitted but held.
    let mut after = state.clone();
    let out = chain
        .execute_block(
            &state,
            &ctx(1),
            vec![transfer(&alice, 0, to, 1, 10_000)],
            Mode::Verify,
        )
        .unwrap();
    after.apply(&out.writes);
    let stale = chain
        .check_tx(&after, &transfer(&alice, 0, to, 1, 10_000), 2)
        .unwrap_err();
    assert!(matches!(
        stale,
        TxError::StaleNonce {
            got: 0,
            expected: 1,
            ..
        }
    ));
    let future = chain
        .check_tx(&after, &transfer(&alice, 5, to, 1, 10_000), 2)
        .unwrap();
    assert_eq!(future, Admission::Future(4));
    // In a block being verified, an invalid transaction invalidates the block.
    wrong_chain.body.nonce = 1;
    let err = chain
        .execute_block(
            &after,
            &ctx(2),
            vec![transfer(&alice, 3, to, 1, 10_000)],
            Mode::Verify,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        BlockError::InvalidTx {
            index: 0,
            error: TxError::FutureNonce { .. }
        }
    ));
}

#[test]
fn failed_message_pays_fee_but_keeps_no_other_effect() {
    let (alice, bob) = (key(1), key(2));
    let state = genesis_state(&[(&alice, 100_000)]);
    let chain = Chain::new(CHAIN);
    // Passes inclusion (fee covered) but the amount overdraws: included, failed, fee paid.
    let tx = transfer(&alice, 0, addr(&bob), 95_000, 10_000);
    let out = chain
        .execute_block(&state, &ctx(1), vec![tx], Mode::Verify)
        .unwrap();
    assert!(
        matches!(&out.receipts[0].outcome, TxOutcome::Failed { code, .. } if code == "insufficient_funds")
    );
    let mut after = state.clone();
    after.apply(&out.writes);
    assert_eq!(balance(&after, addr(&alice)), 90_000);
    assert_eq!(balance(&after, addr(&bob)), 0);
    assert!(bank::account(&after, &addr(&bob)).unwrap().is_none());
    chain.audit(&after).unwrap();
}

#[test]
fn build_mode_skips_invalid_transactions() {
    let (alice, bob) = (key(1), key(2));
    let state = genesis_state(&[(&alice, 1_000_000)]);
    let chain = Chain::new(CHAIN);
    let txs = vec![
        transfer(&alice, 0, addr(&bob), 10, 10_000),
        transfer(&alice, 7, addr(&bob), 10, 10_000),
        transfer(&key(3), 0, addr(&alice), 10, 10_000),
        transfer(&alice, 1, addr(&bob), 10, 10_000),
        transfer(&bob, 0, addr(&alice), 1, 10_000),
    ];
    let out = chain
        .execute_block(&state, &ctx(1), txs, Mode::Build)
        .unwrap();
    assert_eq!(out.txs.len(), 2);
    assert_eq!(out.rejected.len(), 3);
    assert_eq!(out.rejected[0].1.code(), "future_nonce");
    assert_eq!(out.rejected[1].1.code(), "unknown_account");
    // Bob exists (he received 20) but cannot cover the fee.
    assert_eq!(out.rejected[2].1.code(), "insufficient_funds");
    // The built block verifies and yields the same writes.
    let verified = chain
        .execute_block(&state, &ctx(1), out.txs.clone(), Mode::Verify)
        .unwrap();
    assert_eq!(verified.writes, out.writes);
    assert_eq!(verified.receipts, out.receipts);
}

#[test]
fn prechecked_execution_equals_plain_execution() {
    let (alice, bob) = (key(1), key(2));
    let state = genesis_state(&[(&alice, 1_000_000), (&bob, 1_000_000)]);
    let chain = Chain::new(CHAIN);
    let mut forged = transfer(&bob, 0, addr(&alice), 5, 10_000);
    forged.signature[10] ^= 0x40;
    let valid = vec![
        transfer(&alice, 0, addr(&bob), 10, 10_000),
        transfer(&bob, 0, addr(&alice), 3, 10_000),
        transfer(&alice, 1, addr(&bob), 7, 10_000),
    ];
    // Strictly verified transactions (as the mempool holds) execute exactly as when the block
    // verifies its own signatures.
    let plain = chain
        .execute_block(&state, &ctx(1), valid.clone(), Mode::Verify)
        .unwrap();
    let prechecked = chain
        .execute_verified_block(
            &state,
            &ctx(1),
            valid.clone(),
            Prechecks::strictly_verified(&valid),
            Mode::Verify,
        )
        .unwrap();
    assert_eq!(prechecked.writes, plain.writes);
    assert_eq!(prechecked.receipts, plain.receipts);
    assert_eq!(prechecked.tx_hashes, plain.tx_hashes);
    assert_eq!(
        plain.tx_hashes,
        valid.iter().map(Tx::hash).collect::<Vec<_>>()
    );
    // A forged signature is caught by the precheck and rejects the block like plain execution.
    let mut with_forged = valid.clone();
    with_forged.insert(1, forged);
    let prechecks = Prechecks::verify(&with_forged);
    assert_eq!(prechecks.verdicts(), &[true, false, true, true]);
    let error = chain
        .execute_verified_block(
            &state,
            &ctx(1),
            with_forged.clone(),
            prechecks,
            Mode::Verify,
        )
        .unwrap_err();
    let plain_error = chain
        .execute_block(&state, &ctx(1), with_forged, Mode::Verify)
        .unwrap_err();
    assert_eq!(error.to_string(), plain_error.to_string());
    assert!(error.to_string().contains("signature"), "{error}");
}

#[test]
fn audit_catches_tokens_created_outside_the_ledger() {
    let alice = key(1);
    let mut state = genesis_state(&[(&alice, 1_000)]);
    let chain = Chain::new(CHAIN);
    chain.audit(&state).unwrap();
    let forged = bank::Account {
        nonce: 0,
        balance: 1,
    };
    state.0.insert(
        bank::account_key(&addr(&key(9))),
        borsh::to_vec(&forged).unwrap(),
    );
    assert!(
        chain
            .audit(&state)
            .unwrap_err()
            .contains("modules hold 1001")
    );
    let _ = supply::NAME;
}
