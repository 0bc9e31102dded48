//! The market's end-of-block hook over 10,000 queued jobs and 1,000 providers, in memory:
//! - `match`: one empty block whose hook matches `match_per_block_max` (1,000) jobs, reported
//!   as jobs matched per second;
//! - `idle hook`: one empty block with matching paused (deadline scan and price step only),
//!   the floor every block pays.
//!
//! - `baseline`: the same greedy matching (tier, then price, then age; cheapest provider with
//!   room) over plain in-memory vectors and a `BTreeMap`, with no state, encoding, indexes or
//!   events: the fastest alternative, against which the hook's cost is a ratio.
//!
//! The state is built through signed transactions (bonds, registrations, submissions) with
//! matching paused, then matching is switched on for the measured block.
//!
//! Run: `cargo bench -p poi-core --bench market`.

use criterion::{BatchSize, Criterion, Throughput};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::block::BlockContext;
use poi_core::chain::{Chain, Mode};
use poi_core::event::TxOutcome;
use poi_core::genesis::{Genesis, GenesisAccount};
use poi_core::market::MarketMsg;
use poi_core::params::{PARAMS_KEY, Params};
use poi_core::staking::StakingMsg;
use poi_core::state::{MemState, WriteSet};
use poi_core::tx::{Msg, Tx, TxBody};
use rayon::prelude::*;

const PROVIDERS: u32 = 1_000;
const USERS: u32 = 1_000;
const JOBS_PER_USER: u64 = 10;
const CHAIN: &str = "poi-bench";
const FEE: u128 = 100_000;

fn key(i: u32) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed[31] = 9;
    SigningKey::from_bytes(&seed)
}

fn address(key: &SigningKey) -> Address {
    Address::from_public_key(&key.verifying_key())
}

fn sign(key: &SigningKey, nonce: u64, msg: Msg) -> Tx {
    TxBody {
        chain_id: CHAIN.into(),
        signer: address(key),
        nonce,
        fee: FEE,
        msg,
    }
    .sign(key)
}

fn ctx(height: u64) -> BlockContext {
    BlockContext {
        height,
        timestamp_ms: height,
        proposer: address(&key(0)),
        view: height,
        seeds: Vec::new(),
    }
}

fn set_params(state: &mut MemState, params: &Params) {
    let mut writes = WriteSet::new();
    writes.insert(PARAMS_KEY.to_vec(), Some(borsh::to_vec(params).unwrap()));
    state.apply(&writes);
}

fn run_block(chain: &Chain, state: &mut MemState, height: u64, txs: Vec<Tx>) {
    let out = chain
        .execute_block(state, &ctx(height), txs, Mode::Verify)
        .expect("block executes");
    assert!(
        out.receipts.iter().all(|r| r.outcome == TxOutcome::Success),
        "setup transactions succeed"
    );
    state.apply(&out.writes);
}

/// 1,000 registered providers and 10,000 queued jobs, matching paused; and the params that
/// switch it on.
fn setup(chain: &Chain) -> (MemState, Params) {
    let providers: Vec<SigningKey> = (0..PROVIDERS).into_par_iter().map(key).collect();
    let users: Vec<SigningKey> = (0..USERS)
        .into_par_iter()
        .map(|i| key(PROVIDERS + i))
        .collect();
    let mut params = Params::default();
    params.market.heartbeat_timeout_blocks = 1_000_000;
    params.market.queue_ttl_blocks = 1_000_000;
    let mut paused = params.clone();
    paused.market.match_per_block_max = 0;
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: vec![address(&key(0))],
        params: paused,
        accounts: providers
            .iter()
            .chain(&users)
            .map(|k| GenesisAccount {
                address: address(k),
                balance: 1_000_000_000_000_000,
            })
            .collect(),
        beacon: None,
        models: Vec::new(),
        data: Vec::new(),
    };
    let mut state = MemState::default();
    state.apply(&genesis.state().expect("genesis state"));
    // What 1,000 units per block require at the highest multiplier, plus the minimum.
    let collateral = 1_000 * Params::default().market.collateral_per_unit * 4
        + Params::default().market.provider_collateral_min;
    let register: Vec<Tx> = providers
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, k)| {
            let register = MarketMsg::Register {
                hardware: "bench".into(),
                capacity_units_per_block: 1_000,
                class: 0,
                ask_price: 1 + (i as u128 % 100),
                endpoint: String::new(),
                collateral,
            };
            let bond = StakingMsg::Bond { amount: collateral };
            [
                sign(k, 0, Msg::Staking(bond)),
                sign(k, 1, Msg::Market(register)),
            ]
        })
        .collect();
    run_block(chain, &mut state, 1, register);
    let submit: Vec<Tx> = users
        .par_iter()
        .flat_map_iter(|k| {
            (0..JOBS_PER_USER).map(move |nonce| {
                let job = MarketMsg::SubmitInference {
                    model: "mlp".into(),
                    version: 1,
                    input_hash: [nonce as u8; 32],
                    units: 100,
                    max_price: 1_000_000,
                };
                sign(k, nonce, Msg::Market(job))
            })
        })
        .collect();
    run_block(chain, &mut state, 2, submit);
    (state, params)
}

fn market(c: &mut Criterion) {
    let chain = Chain::new(CHAIN);
    let (paused, params) = setup(&chain);
    let mut live = paused.clone();
    set_params(&mut live, &params);
    let matched = {
        let out = chain
            .execute_block(&live, &ctx(3), Vec::new(), Mode::Verify)
            .expect("block executes");
        out.block_events
            .iter()
            .filter(|e| e.kind == "job_matched")
            .count() as u64
    };
    assert!(matched > 0, "the measured block matches jobs");
    let mut group = c.benchmark_group("market");
    group.sample_size(10);
    group.throughput(Throughput::Elements(matched));
    group.bench_function("match: 10k queued, 1k providers, one block", |b| {
        b.iter_batched(
            || (),
            |()| {
                chain
                    .execute_block(&live, &ctx(3), Vec::new(), Mode::Verify)
                    .expect("block executes")
            },
            BatchSize::SmallInput,
        );
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "idle hook: 10k queued, 1k providers, matching paused",
        |b| {
            b.iter(|| {
                chain
                    .execute_block(&paused, &ctx(3), Vec::new(), Mode::Verify)
                    .expect("block executes")
            });
        },
    );
    group.finish();
}

/// A queued job as the baseline sees it.
#[derive(Clone, Copy)]
struct PlainJob {
    tier: u8,
    max_price: u128,
    submitted: u64,
    id: u64,
    units: u128,
}

/// Greedy matching over plain data: jobs in priority order, each to the cheapest provider
/// (then best reputation, then lowest address) with room and an ask within its price. Returns
/// how many jobs were matched.
fn baseline_match(
    jobs: &[PlainJob],
    providers: &std::collections::BTreeMap<(u128, std::cmp::Reverse<u32>, [u8; 32]), u128>,
    max: usize,
) -> usize {
    let mut order: Vec<PlainJob> = jobs.to_vec();
    order.sort_unstable_by_key(|j| {
        (
            std::cmp::Reverse(j.tier),
            std::cmp::Reverse(j.max_price),
            j.submitted,
            j.id,
        )
    });
    let mut free = providers.clone();
    let mut matched = 0;
    for job in order.iter().take(max) {
        let chosen = free
            .iter()
            .take_while(|((ask, _, _), _)| *ask <= job.max_price)
            .find(|(_, room)| **room >= job.units)
            .map(|(k, _)| *k);
        if let Some(k) = chosen {
            *free.get_mut(&k).expect("chosen from the map") -= job.units;
            matched += 1;
        }
    }
    matched
}

fn baseline(c: &mut Criterion) {
    let jobs: Vec<PlainJob> = (0..u64::from(USERS) * JOBS_PER_USER)
        .map(|id| PlainJob {
            tier: 0,
            max_price: 1_000_000,
            submitted: 2,
            id,
            units: 100,
        })
        .collect();
    let backlog = u128::from(Params::default().market.backlog_blocks);
    let providers = (0..PROVIDERS)
        .map(|i| {
            let k = key(i);
            let ask = 1 + u128::from(i % 100);
            (
                (ask, std::cmp::Reverse(500_000), address(&k).0),
                1_000 * backlog,
            )
        })
        .collect();
    let max = Params::default().market.match_per_block_max as usize;
    let matched = baseline_match(&jobs, &providers, max) as u64;
    assert_eq!(matched, max as u64, "the baseline matches a full block");
    let mut group = c.benchmark_group("market");
    group.sample_size(10);
    group.throughput(Throughput::Elements(matched));
    group.bench_function("baseline: same matching over plain in-memory data", |b| {
        b.iter(|| baseline_match(&jobs, &providers, max));
    });
    group.finish();
}

// Written out instead of `criterion_group!`, whose generated function has no doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    market(&mut criterion);
    baseline(&mut criterion);
    criterion.final_summary();
}
