//! Random sequences of valid and invalid transactions keep the supply invariant and replay to the
//! same state on a fresh node.

use poi_core::chain::{Chain, Mode};
use poi_core::state::{MemState, StateReader};
use proptest::prelude::*;

use crate::chain::{CHAIN, addr, ctx, genesis_state, key, transfer};

fn digest(state: &MemState) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    state
        .scan_prefix(b"", &mut |k, v| {
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v);
            true
        })
        .unwrap();
    *h.finalize().as_bytes()
}

#[derive(Debug, Clone)]
struct Op {
    from: u8,
    to: u8,
    amount: u128,
    fee: u128,
    nonce_skew: i8,
    corrupt: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..5,
        0u8..6,
        0u128..400_000,
        0u128..30_000,
        -1i8..=1,
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(from, to, amount, fee, nonce_skew, corrupt)| Op {
            from,
            to,
            amount,
            fee,
            nonce_skew,
            corrupt,
        })
}

fn run(blocks: &[Vec<Op>]) -> (Vec<[u8; 32]>, MemState) {
    let keys: Vec<_> = (1..=6).map(key).collect();
    let funded: Vec<_> = keys[..4].iter().map(|k| (k, 1_000_000u128)).collect();
    let mut state = genesis_state(&funded);
    let chain = Chain::new(CHAIN);
    let mut nonces = [0u64; 6];
    let mut digests = Vec::new();
    for (height, ops) in blocks.iter().enumerate() {
        let mut txs = Vec::new();
        for op in ops {
            let from = op.from as usize;
            let nonce = nonces[from].saturating_add_signed(op.nonce_skew.into());
            let mut tx = transfer(
                &keys[from],
                nonce,
                addr(&keys[op.to as usize]),
                op.amount,
                op.fee,
            );
            if op.corrupt {
                tx.signature[0] ^= 1;
            }
            txs.push(tx);
        }
        let out = chain
            .execute_block(&state, &ctx(height as u64 + 1), txs, Mode::Build)
            .unwrap();
        for tx in &out.txs {
            let i = keys.iter().position(|k| addr(k) == tx.body.signer).unwrap();
            nonces[i] += 1;
        }
        // A block built by a proposer must verify on another node.
        let verified = chain
            .execute_block(
                &state,
                &ctx(height as u64 + 1),
                out.txs.clone(),
                Mode::Verify,
            )
            .unwrap();
        assert_eq!(verified.writes, out.writes);
        state.apply(&out.writes);
        chain.audit(&state).unwrap();
        digests.push(digest(&state));
    }
    (digests, state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_blocks_keep_supply_and_replay_identically(
        blocks in proptest::collection::vec(proptest::collection::vec(op(), 0..12), 1..6)
    ) {
        let (first, _) = run(&blocks);
        let (second, _) = run(&blocks);
        prop_assert_eq!(first, second);
    }
}
