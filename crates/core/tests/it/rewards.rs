//! Epoch rewards in the chain: emission fills the pool, verified work earns weights, and at the
//! epoch's end the pool is paid out by class shares and weights, summing exactly.

use std::collections::BTreeMap;

use poi_core::emission::{EmissionParams, Schedule};
use poi_core::market::MarketMsg;
use poi_core::poi::PoiMsg;
use poi_core::poi::checks::CheckStatus;
use poi_core::poi::registry::{self, DeveloperShare, RootVersion};
use poi_core::rewards::{self, Class};
use poi_core::token::Amount;

use crate::chain::addr;
use crate::spot::{World, matching, params};

const EPOCH: u64 = 40;

/// The spot-check test parameters with 1,000,000 base units of emission a block and epochs of
/// [`EPOCH`] blocks.
fn emitting_params() -> poi_core::params::Params {
    let mut p = params();
    p.emission = EmissionParams {
        schedule: Schedule::HalvingByTime {
            initial: 1_000_000,
            halving_blocks: 1_000,
            cap: Amount::MAX,
        },
    };
    p.rewards.epoch_blocks = EPOCH;
    p
}

/// Replaces the registry with a root (id 0) by `root` and a fine-tune of it (id 1) by `tuned`.
pub(crate) fn lineage_registry(
    w: &mut World,
    root: Vec<DeveloperShare>,
    tuned: Vec<DeveloperShare>,
) {
    let mut base = RootVersion::new("charlm-base", "charlm", [0x11; 32]);
    base.developers = root;
    let mut fine_tune = RootVersion::new("charlm-tuned", "charlm", [0x22; 32]);
    fine_tune.developers = tuned;
    fine_tune.base = Some(0);
    let mut writes = poi_core::state::WriteSet::new();
    for (k, v) in registry::genesis_writes(&[base, fine_tune]) {
        writes.insert(k, Some(v));
    }
    w.net.state.apply(&writes);
}

/// Runs the first job, an inference on the fine-tune (id 1), until every check matched and it
/// settled; returns the provider's balance just before the attestation that settled it.
pub(crate) fn verify_inference_on_tuned(w: &mut World) -> Amount {
    let (user, prov) = (w.user.clone(), w.prov.clone());
    let submit = PoiMsg::SubmitInference {
        model: "charlm".into(),
        version: 1,
        requests: 16,
        input_root: [7; 32],
        units: 1_000,
        max_price: 10,
    };
    assert_eq!(w.net.poi(&user, submit), "ok");
    assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    assert_eq!(w.net.poi(&prov, commit), "ok");
    w.until(|net| net.poi_job(0).randomness.is_some());
    let mut before = 0;
    for ch in w.checks(0) {
        if ch.status == CheckStatus::Open {
            before = w.net.balance_of(&addr(&prov));
            assert_eq!(w.attest(0, ch.index, matching()), "ok");
        }
    }
    assert!(w.net.job(0).paid > 0, "the job settled for the provider");
    before
}

#[test]
fn an_epoch_pays_providers_and_validators_for_verified_work_exactly() {
    let p = emitting_params();
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

/// Every economic flow on at once: a verified inference job on a fine-tuned version pays the
/// reward pool its fee, the developers along the version's lineage their royalties, and
/// burns its usage; the epoch's pool is exactly its emission plus those fees.
#[test]
fn a_verified_inference_pays_its_fee_royalties_along_the_lineage_and_burns_exactly() {
    let mut p = emitting_params();
    p.rewards.job_fee_bps = 500;
    p.rewards.royalty_bps = 1_000;
    p.rewards.lineage_decay_bps = 5_000;
    p.burn.per_unit = 3;
    p.burn.per_request = 100;
    let schedule = poi_core::burn::BurnSchedule::Predictive {
        alpha_ppm: 500_000,
        beta_ppm: 100_000,
        target_burn_bps: 5_000,
        band_bps: 2_000,
        initial_rate_ppm: 1_000_000,
        rate_min_ppm: 0,
        rate_max_ppm: 1_000_000_000_000,
    };
    p.burn.schedule = schedule.clone();
    let mut w = World::new(p.clone());
    // The registry: a root by developer A, and version 1 fine-tuning it, by B (60%) and C (40%).
    let (a, b, c) = (
        poi_core::Address([0xa1; 32]),
        poi_core::Address([0xb2; 32]),
        poi_core::Address([0xc3; 32]),
    );
    let share = |address, bps| DeveloperShare { address, bps };
    lineage_registry(
        &mut w,
        vec![share(a, 10_000)],
        vec![share(b, 6_000), share(c, 4_000)],
    );
    verify_inference_on_tuned(&mut w);
    let job = w.net.job(0);
    assert!(w.net.height < EPOCH - 1, "it settled within epoch 0");

    let paid = job.paid;
    let fee = paid * 500 / 10_000;
    let royalty = paid * 1_000 / 10_000;
    // Lineage weights: B 10,000 x 6,000, C 10,000 x 4,000, A (the base) 5,000 x 10,000.
    let weights = [(a, 50_000_000u128), (b, 60_000_000), (c, 40_000_000)];
    let parts = rewards::split(royalty, &weights).unwrap();
    for (who, part) in &parts {
        assert_eq!(w.net.balance_of(who), *part, "royalty of {who}");
    }
    assert_eq!(
        parts.iter().map(|p| p.1).sum::<Amount>(),
        royalty,
        "royalties sum to their share exactly"
    );
    // The root's multiplier is 0, so the quality modifier sits at its floor (50%).
    let demand = (3 * u128::from(job.units_delivered) + 100) * 500_000 / 1_000_000;
    let ledger = poi_core::supply::read(&w.net.state, 0).unwrap();
    assert_eq!(ledger.burned_by_reason["usage_inference"], demand);

    while w.net.height < EPOCH - 1 {
        w.net.empty_blocks(1);
    }
    let record = rewards::read_epoch(&w.net.state, 0).unwrap().unwrap();
    assert_eq!(record.fees, fee);
    assert_eq!(record.emission, 39 * 1_000_000);
    assert_eq!(record.other, 0);
    assert_eq!(record.pool, record.emission + record.fees);
    let paid_out: Amount = record
        .accounts
        .iter()
        .map(|(_, _, x)| x.parse::<Amount>().unwrap())
        .sum::<Amount>()
        + record.treasury;
    assert_eq!(
        paid_out,
        record.emission + record.fees,
        "emission plus fees, exactly"
    );
    // The developers' class of the pool follows the same version's shares.
    let devs: Vec<_> = record
        .accounts
        .iter()
        .filter(|(_, cl, _)| *cl == Class::Developers)
        .map(|(who, _, _)| *who)
        .collect();
    assert_eq!(devs, vec![b, c]);
    let burn = poi_core::burn::history(&w.net.state, 0, 10).unwrap();
    assert_eq!(burn.len(), 1);
    assert_eq!((burn[0].demand, burn[0].burned), (demand, demand));
    assert_eq!(burn[0].minted, record.emission);
    // The schedule's first forecast is the demand it saw; next epoch mints 40 blocks' worth,
    // half of which the new rate aims to burn.
    assert_eq!(burn[0].forecast, demand);
    assert_eq!(burn[0].next_emission, 40 * 1_000_000);
    let expected_rate = (20_000_000u128 * 1_000_000 / demand) as u64;
    assert_eq!(burn[0].next_rate_ppm, expected_rate);
    assert_eq!(
        poi_core::burn::read_state(&w.net.state, &p.burn)
            .unwrap()
            .rate_ppm,
        expected_rate
    );
    assert_eq!(
        poi_core::burn::predictive_rate(&schedule, demand, 40 * 1_000_000),
        expected_rate
    );
}

/// Data providers are paid by measured contribution: genesis values the iris shards of three
/// owners by exact KNN-Shapley, a verified training job on iris credits the data class
/// `units x multiplier`, split by those values, and the epoch pays the class out exactly.
#[test]
fn a_verified_training_job_pays_its_data_owners_by_shapley_value() {
    use poi_core::poi::checks::{CheckSubject, Verdict};
    use poi_core::rewards::data;

    let p = emitting_params();
    let mut w = World::new(p.clone());
    let owners = [
        poi_core::Address([0xd1; 32]),
        poi_core::Address([0xd2; 32]),
        poi_core::Address([0xd3; 32]),
    ];
    let (k, v) = data::value("iris", &owners).expect("iris is valued");
    let mut writes = poi_core::state::WriteSet::new();
    writes.insert(k, Some(v));
    w.net.state.apply(&writes);
    let valuation = data::read(&w.net.state, "iris").unwrap().unwrap();
    let total: i128 = valuation
        .owners
        .iter()
        .map(|o| o.value.parse::<i128>().unwrap())
        .sum();
    assert_eq!(
        total.to_string(),
        valuation.utility,
        "values sum to the utility"
    );
    assert!(valuation.owners.iter().all(|o| o.weight > 0));

    let run = crate::poi::tiny_run(12);
    let id = w.committed_training(&run);
    for c in w.checks(id) {
        if c.status == CheckStatus::Open && c.subject != CheckSubject::Eval {
            assert_eq!(w.attest(id, c.index, matching()), "ok");
        }
    }
    w.reveal_and_claim(id, 700_000);
    let eval = w.eval_check(id);
    let verdict = Verdict::Scores {
        score: 700_000,
        base_score: 1_000_000,
    };
    assert_eq!(w.attest(id, eval.index, verdict), "ok");
    let job = w.net.poi_job(id);
    let multiplier = job.quality.unwrap().multiplier_ppm;
    assert!(w.net.height < EPOCH - 1, "verified within epoch 0");
    while w.net.height < EPOCH - 1 {
        w.net.empty_blocks(1);
    }
    let record = rewards::read_epoch(&w.net.state, 0).unwrap().unwrap();
    let weights: Vec<_> = valuation
        .owners
        .iter()
        .map(|o| (o.address, o.weight))
        .collect();
    let units = u128::from(w.net.job(id).units);
    let credited = rewards::split(units * u128::from(multiplier), &weights).unwrap();
    let class = record.pool * Amount::from(p.rewards.shares_bps[3]) / 10_000;
    let expected = rewards::split(class, &credited).unwrap();
    let paid: Vec<_> = record
        .accounts
        .iter()
        .filter(|(_, c, _)| *c == Class::Data)
        .map(|(who, _, a)| (*who, a.parse::<Amount>().unwrap()))
        .collect();
    assert_eq!(paid.len(), 3, "all three owners contributed value");
    assert_eq!(paid, expected, "each owner its share of the data class");
    assert_eq!(paid.iter().map(|p| p.1).sum::<Amount>(), class);
}
