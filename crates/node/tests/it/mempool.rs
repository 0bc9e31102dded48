//! Mempool limits: `mempool_full` over HTTP (per sender) and the pool's own capacity.

use poi_core::TxError;
use poi_core::limits::MEMPOOL_TXS_PER_SENDER_MAX;
use poi_node::mempool::Mempool;

use crate::{FUNDED, TestNode, addr, alice, assert_error, bob, carol, transfer};

/// Fills alice's queue with nonces `1..=MEMPOOL_TXS_PER_SENDER_MAX`, all held behind nonce 0.
fn fill_alice_with_future_nonces(node: &TestNode) {
    for nonce in 1..=u64::from(MEMPOOL_TXS_PER_SENDER_MAX) {
        let tx = transfer(&alice(), nonce, addr(&bob()), 1);
        node.ledger
            .submit(&tx.encode())
            .unwrap_or_else(|e| panic!("nonce {nonce} refused: {e}"));
    }
    assert_eq!(
        node.ledger.mempool_len(),
        MEMPOOL_TXS_PER_SENDER_MAX as usize
    );
}

#[test]
fn a_full_sender_queue_is_503_mempool_full_for_that_sender_only() {
    let node = TestNode::start();
    fill_alice_with_future_nonces(&node);
    let next = transfer(
        &alice(),
        u64::from(MEMPOOL_TXS_PER_SENDER_MAX) + 1,
        addr(&bob()),
        1,
    );
    let answer = node.submit(&next);
    assert_error(&answer, 503, "mempool_full");
    // Other senders are unaffected.
    let hash = node.submit_ok(&transfer(&carol(), 0, addr(&bob()), 1));
    node.commit_block();
    assert_eq!(node.tx_status(&hash)["status"], "committed");
    assert_eq!(
        node.get_ok("/status")["mempool_txs"],
        MEMPOOL_TXS_PER_SENDER_MAX
    );
    assert_eq!(node.account(&addr(&alice())), (FUNDED, 0, 0));
}

#[test]
fn the_gap_closing_nonce_is_admitted_when_the_sender_queue_is_full() {
    let node = TestNode::start();
    fill_alice_with_future_nonces(&node);
    let gap = transfer(&alice(), 0, addr(&bob()), 1);
    let hash = node.submit_ok(&gap);
    node.commit_block();
    assert_eq!(node.tx_status(&hash)["status"], "committed");
}

#[test]
fn pool_capacity_refuses_new_transactions_but_allows_replacements() {
    let mut pool = Mempool::with_capacity(2);
    let add = |pool: &mut Mempool, tx: poi_core::tx::Tx| {
        let hash = tx.hash();
        pool.insert(tx, hash)
    };
    add(&mut pool, transfer(&alice(), 0, addr(&carol()), 1)).expect("first");
    add(&mut pool, transfer(&bob(), 0, addr(&carol()), 1)).expect("second");
    let refused = add(&mut pool, transfer(&carol(), 0, addr(&bob()), 1)).unwrap_err();
    assert_eq!(refused, TxError::MempoolFull { capacity: 2 });
    assert_eq!(refused.code(), "mempool_full");
    // Replacing a pending nonce with a higher fee does not need room.
    let mut higher = transfer(&alice(), 0, addr(&carol()), 1).body;
    higher.fee += 1;
    add(&mut pool, higher.sign(&alice())).expect("replacement");
    assert_eq!(pool.len(), 2);
}
