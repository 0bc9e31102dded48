//! Emission in the chain: each block mints its schedule's amount into the reward pool, the
//! supply ledger and the emission counter agree, and the supply breakdown shows where tokens
//! are held.

use poi_core::emission::{self, EmissionParams, Schedule};
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::tx::Msg;

use crate::chain::key;
use crate::net::{Net, START};

/// Epochs of this many blocks in these tests.
const EPOCH: u64 = 4;

fn net(schedule: Schedule) -> Net {
    let mut params = Params {
        emission: EmissionParams { schedule },
        ..Params::default()
    };
    params.rewards.epoch_blocks = EPOCH;
    Net::new(&[&key(1)], params, 1_000_000)
}

#[test]
fn blocks_mint_the_schedule_into_the_reward_pool_and_halve_on_time() {
    let mut net = net(Schedule::HalvingByTime {
        initial: 1_000,
        halving_blocks: 5,
        cap: 1_000_000,
    });
    // Every block earns its emission; an epoch's last block mints what its blocks earned.
    let (mut earned, mut minted) = (0u128, 0u128);
    for h in 1..=11u64 {
        let before = net.state.clone();
        net.empty_blocks(1);
        earned += 1_000 >> (h / 5);
        if (h + 1) % EPOCH == 0 {
            minted = earned;
        } else {
            assert_eq!(
                net.state, before,
                "an empty block mid-epoch writes nothing (height {h})"
            );
        }
        let supply = net.chain.audit(&net.state).unwrap();
        assert_eq!(supply.minted, minted, "height {h}");
        assert_eq!(supply.reward_pool + paid_out(&net), minted);
        assert_eq!(emission::issued(&net.state).unwrap(), minted);
        assert_eq!(supply.total, START + minted);
    }
    // 4 blocks at 1,000 (heights 1-4), 5 at 500, 2 at 250.
    assert_eq!(minted, 4 * 1_000 + 5 * 500 + 2 * 250);
}

/// What the ended epochs paid out of the pool.
fn paid_out(net: &Net) -> u128 {
    (0..=net.height / EPOCH)
        .filter_map(|e| poi_core::rewards::read_epoch(&net.state, e).unwrap())
        .map(|r| r.pool)
        .sum()
}

#[test]
fn the_cap_stops_emission_and_no_schedule_mints_nothing() {
    let mut capped = net(Schedule::Decay {
        cap: 10_000,
        rate_ppm: 500_000,
    });
    capped.empty_blocks(40);
    let supply = capped.chain.audit(&capped.state).unwrap();
    assert!(
        supply.minted <= 10_000 && supply.minted >= 9_990,
        "{}",
        supply.minted
    );
    let mut none = net(Schedule::None);
    none.empty_blocks(5);
    assert_eq!(none.chain.audit(&none.state).unwrap().minted, 0);
    // Bad schedules are refused by validation.
    let bad = EmissionParams {
        schedule: Schedule::Decay {
            cap: 1,
            rate_ppm: 0,
        },
    };
    assert!(bad.validate().is_err());
}

#[test]
fn the_supply_breakdown_shows_stake_and_the_treasury() {
    let mut net = net(Schedule::None);
    let alice = key(1);
    assert_eq!(
        net.send(&alice, Msg::Staking(StakingMsg::Bond { amount: 5_000_000 })),
        "ok"
    );
    let supply = net.chain.audit(&net.state).unwrap();
    assert_eq!(supply.staked, 5_000_000);
    assert_eq!((supply.escrowed, supply.bonds), (0, 0));
    // Fees paid a share to the treasury.
    assert!(supply.treasury > 0);
    assert_eq!(supply.circulating, supply.total - supply.staked);
}

mod long_runs {
    use poi_core::bank::BankMsg;
    use poi_core::emission::{self, EmissionParams, Schedule};
    use poi_core::params::Params;
    use poi_core::rewards;
    use poi_core::staking::StakingMsg;
    use poi_core::token::Amount;
    use poi_core::tx::Msg;
    use proptest::prelude::*;

    use crate::chain::{addr, key};
    use crate::net::{Net, START};

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 16,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x59),
            ..ProptestConfig::default()
        })]
        /// Long random runs on the chain, across halving boundaries and epochs: every block is
        /// audited (held == genesis + minted - burned), the emission counter equals what the
        /// ledger minted, and every epoch paid exactly its pool, so what was minted is what
        /// the epochs paid out plus what the pool holds now.
        #[test]
        fn supply_stays_exact_across_halvings_and_epochs(
            initial in 1u128..100_000,
            era in 1u128..400_000,
            by_time in any::<bool>(),
            epoch_blocks in 3u64..15,
            moves in proptest::collection::vec((0u8..3, 0u128..5_000), 40..120),
        ) {
            let schedule = if by_time {
                Schedule::HalvingByTime { initial, halving_blocks: 7, cap: 4 * era }
            } else {
                Schedule::HalvingByIssuance { initial, era_issuance: era, cap: 4 * era }
            };
            let mut params = Params { emission: EmissionParams { schedule }, ..Params::default() };
            params.rewards.epoch_blocks = epoch_blocks;
            let (a, b) = (key(1), key(2));
            let mut net = Net::new(&[&a, &b], params, 1_000_000);
            for (kind, amount) in moves {
                let msg = match kind {
                    0 => Msg::Bank(BankMsg::Transfer { to: addr(&b), amount }),
                    1 => Msg::Staking(StakingMsg::Bond { amount }),
                    _ => {
                        net.empty_blocks(1);
                        continue;
                    }
                };
                let tx = net.tx(&a, msg);
                net.block(vec![tx]);
            }
            let supply = net.chain.audit(&net.state).unwrap();
            prop_assert_eq!(emission::issued(&net.state).unwrap(), supply.minted);
            prop_assert!(supply.minted <= 4 * era);
            prop_assert_eq!(supply.total, START * 2 + supply.minted - supply.burned);
            let mut paid: Amount = 0;
            for epoch in 0..=rewards::epoch_of(net.height, epoch_blocks) {
                if let Some(r) = rewards::read_epoch(&net.state, epoch).unwrap() {
                    prop_assert_eq!(r.emission + r.fees + r.other, r.pool);
                    paid += r.pool;
                }
            }
            prop_assert_eq!(paid + supply.reward_pool, supply.minted);
        }
    }
}
