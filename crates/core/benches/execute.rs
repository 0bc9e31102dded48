//! The execution stage alone: a block of 10,000 signed transfers between 20,000 funded accounts,
//! signatures already checked (as the node's signature stage hands them over), over an
//! in-memory base state. Isolates the state machine (overlay, bank, fees, events, receipts, the
//! supply check) from storage and signature verification, whose costs `poi bench ledger`
//! reports.
//!
//! Run: `cargo bench -p poi-core --bench execute`.

use criterion::{BatchSize, Criterion};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::bank::BankMsg;
use poi_core::block::BlockContext;
use poi_core::chain::{Chain, Mode};
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::state::MemState;
use poi_core::tx::{Msg, Prechecks, Tx, TxBody};
use rayon::prelude::*;

const ACCOUNTS: u32 = 20_000;
const TXS: u32 = 10_000;
const CHAIN: &str = "poi-bench";

fn key(i: u32) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 7;
    SigningKey::from_bytes(&seed)
}

fn setup() -> (MemState, Vec<Tx>) {
    let keys: Vec<SigningKey> = (0..ACCOUNTS).into_par_iter().map(key).collect();
    let addresses: Vec<Address> = keys
        .iter()
        .map(|k| Address::from_public_key(&k.verifying_key()))
        .collect();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: vec![addresses[0]],
        params: Default::default(),
        accounts: addresses
            .iter()
            .map(|address| GenesisAccount {
                address: *address,
                balance: 1_000_000_000_000,
            })
            .collect(),
        beacon: None,
        models: Vec::new(),
        data: Vec::new(),
    };
    let mut state = MemState::default();
    state.apply(&genesis.state().expect("genesis state"));
    let fee = genesis.params.min_fee(200);
    let txs = (0..TXS)
        .into_par_iter()
        .map(|i| {
            let recipient = (i.wrapping_mul(7919) + 13) % ACCOUNTS;
            TxBody {
                chain_id: CHAIN.into(),
                signer: addresses[i as usize],
                nonce: 0,
                fee,
                msg: Msg::Bank(BankMsg::Transfer {
                    to: addresses[recipient as usize],
                    amount: 1 + u128::from(i % 1000),
                }),
            }
            .sign(&keys[i as usize])
        })
        .collect();
    (state, txs)
}

fn execute(c: &mut Criterion) {
    let (state, txs) = setup();
    let chain = Chain::new(CHAIN);
    let ctx = BlockContext {
        height: 1,
        timestamp_ms: 1,
        proposer: Address::from_public_key(&key(0).verifying_key()),
        view: 1,
        seeds: Vec::new(),
    };
    let mut group = c.benchmark_group("execute");
    group.sample_size(20);
    group.bench_function("10k transfers, signatures prechecked", |b| {
        b.iter_batched(
            || {
                let prechecks = Prechecks::strictly_verified(&txs);
                (txs.clone(), prechecks)
            },
            |(txs, prechecks)| {
                let outcome = chain
                    .execute_verified_block(&state, &ctx, txs, prechecks, Mode::Verify)
                    .expect("block executes");
                assert_eq!(outcome.receipts.len(), TXS as usize);
                outcome
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

// Written out instead of `criterion_group!`, whose generated function has no doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    execute(&mut criterion);
    criterion.final_summary();
}
