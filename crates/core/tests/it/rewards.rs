//! Epoch rewards in the chain: emission fills the pool, verified work earns weights, and at the
//! epoch's end the pool is paid out by class shares and weights, summing exactly.

use std::collections::BTreeMap;

use poi_core::emission::{EmissionParams, Schedule};
use poi_core::poi::checks::CheckStatus;
use poi_core::rewards::{self, Class};
use poi_core::token::Amount;

use crate::chain::addr;
use crate::spot::{World, matching, params};

const EPOCH: u64 = 40;

#[test]
fn an_epoch_pays_providers_and_validators_for_verified_work_exactly() {
    let mut p = params();
    p.emission = EmissionParams {
        schedule: Schedule::HalvingByTime {
            initial: 1_000_000,
            halving_blocks: 1_000,
            cap: Amount::MAX,
        },
    };
    p.rewards.epoch_blocks = EPOCH;
    let mut w = World::new(p.clone());
    let id = w.committed_inference();
    for c in w.checks(id) {
        if c.status == CheckStatus::Open {
            assert_eq!(w.attest(id, c.index, matching()), "ok");
        }
    }
    assert!(w.net.height < EPOCH, "the job verified within epoch 0");
    let treasury_before = w.net.balance_of(&poi_core::bank::treasury());
    let prov_before = w.net.balance_of(&addr(&w.prov));
    // Block EPOCH - 1 is epoch 0's last: it mints, then pays the pool out.
    while w.net.height < EPOCH - 1 {
        w.net.empty_blocks(1);
    }
    let record = rewards::read_epoch(&w.net.state, 0)
        .unwrap()
        .expect("epoch 0 paid");
    // Heights 1..=39 minted (epoch 0 is heights 0..40; genesis mints nothing).
    assert_eq!(record.pool, 39 * 1_000_000);
    let paid: Amount = record
        .accounts
        .iter()
        .map(|(_, _, a)| a.parse::<Amount>().unwrap())
        .sum::<Amount>()
        + record.treasury;
    assert_eq!(paid, record.pool, "every base unit of the pool is paid");
    let by_class: BTreeMap<Class, Amount> =
        record
            .accounts
            .iter()
            .fold(BTreeMap::new(), |mut m, (_, c, a)| {
                *m.entry(*c).or_default() += a.parse::<Amount>().unwrap();
                m
            });
    let share = |i: usize| record.pool * Amount::from(p.rewards.shares_bps[i]) / 10_000;
    assert_eq!(
        by_class[&Class::Providers],
        share(0),
        "the one provider takes the class"
    );
    assert_eq!(by_class[&Class::Validators], share(1));
    // No developers (the root version lists none) and no data valuation yet: to the treasury.
    assert!(!by_class.contains_key(&Class::Developers));
    assert_eq!(record.treasury, record.pool - share(0) - share(1));
    assert!(w.net.balance_of(&poi_core::bank::treasury()) >= treasury_before + record.treasury);
    assert!(w.net.balance_of(&addr(&w.prov)) > prov_before);
    // Validators were paid in proportion to the units they were credited for.
    let paid_validators: Vec<_> = record
        .accounts
        .iter()
        .filter(|(_, c, _)| *c == Class::Validators)
        .collect();
    assert!(!paid_validators.is_empty());
    let pool_left = w.net.balance_of(&poi_core::emission::pool());
    assert_eq!(pool_left, 0, "the pool is emptied at the epoch's end");
}
