//! Emission in the chain: each block mints its schedule's amount into the reward pool, the
//! supply ledger and the emission counter agree, and the supply breakdown shows where tokens
//! are held.

use poi_core::emission::{self, EmissionParams, Schedule};
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::tx::Msg;

use crate::chain::key;
use crate::net::{Net, START};

fn net(schedule: Schedule) -> Net {
    let params = Params {
        emission: EmissionParams { schedule },
        ..Params::default()
    };
    Net::new(&[&key(1)], params, 1_000_000)
}

#[test]
fn blocks_mint_the_schedule_into_the_reward_pool_and_halve_on_time() {
    let mut net = net(Schedule::HalvingByTime {
        initial: 1_000,
        halving_blocks: 5,
        cap: 1_000_000,
    });
    let mut expected = 0u128;
    for h in 1..=12u64 {
        net.empty_blocks(1);
        expected += 1_000 >> (h / 5);
        let supply = net.chain.audit(&net.state).unwrap();
        assert_eq!(supply.minted, expected, "height {h}");
        assert_eq!(supply.reward_pool, expected);
        assert_eq!(emission::issued(&net.state).unwrap(), expected);
        assert_eq!(supply.total, START + expected);
    }
    // 4 blocks at 1,000 (heights 1-4), 5 at 500, 3 at 250.
    assert_eq!(expected, 4 * 1_000 + 5 * 500 + 3 * 250);
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
