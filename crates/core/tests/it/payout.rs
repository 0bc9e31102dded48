//! Property test of a verified job's payment split on the real chain: for random fee, royalty
//! and burn parameters and developer shares, the provider's part, the pool's fee, the
//! developers' royalties and the usage burn add up to the payment exactly, each within its cap.

use poi_core::poi::registry::DeveloperShare;
use poi_core::token::Amount;
use proptest::prelude::*;

use crate::chain::addr;
use crate::rewards::{lineage_registry, verify_inference_on_tuned};
use crate::spot::{World, params};

/// Splits of 10,000 bps among `n` developers.
fn shares(cuts: &[u32]) -> Vec<u32> {
    let total: u32 = cuts.iter().map(|c| c + 1).sum();
    let mut out: Vec<u32> = cuts.iter().map(|c| (c + 1) * 10_000 / total).collect();
    let given: u32 = out.iter().sum();
    out[0] += 10_000 - given;
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6a1d),
        ..ProptestConfig::default()
    })]
    #[test]
    fn a_verified_payment_splits_exactly(
        job_fee_bps in 0u32..3_000,
        royalty_bps in 0u32..5_000,
        decay in 0u32..=10_000,
        per_unit in 0u128..2_000,
        per_request in 0u128..100_000,
        payment_max_bps in 0u32..=10_000,
        tuned_cuts in proptest::collection::vec(0u32..100, 1..4),
        root_cuts in proptest::collection::vec(0u32..100, 0..3),
    ) {
        let mut p = params();
        p.rewards.job_fee_bps = job_fee_bps;
        p.rewards.royalty_bps = royalty_bps;
        p.rewards.lineage_decay_bps = decay;
        p.burn.per_unit = per_unit;
        p.burn.per_request = per_request;
        p.burn.payment_max_bps = payment_max_bps;
        let mut w = World::new(p);
        let dev = |i: usize, base: u8| poi_core::Address([base + i as u8; 32]);
        let developers = |cuts: &[u32], base: u8| -> Vec<DeveloperShare> {
            if cuts.is_empty() {
                return Vec::new();
            }
            shares(cuts)
                .into_iter()
                .enumerate()
                .map(|(i, bps)| DeveloperShare { address: dev(i, base), bps })
                .collect()
        };
        lineage_registry(&mut w, developers(&root_cuts, 0xa0), developers(&tuned_cuts, 0xb0));
        let before = verify_inference_on_tuned(&mut w);
        let prov = w.prov.clone();
        let job = w.net.job(0);
        prop_assert!(job.paid > 0);
        let provider = w.net.balance_of(&addr(&prov)) - before;
        let royalties: Amount = (0..4)
            .flat_map(|i| [dev(i, 0xa0), dev(i, 0xb0)])
            .map(|a| w.net.balance_of(&a))
            .sum();
        let fee = w.net.balance_of(&poi_core::emission::pool())
            - poi_core::emission::issued(&w.net.state).unwrap();
        let ledger = poi_core::supply::read(&w.net.state, 0).unwrap();
        let burned = ledger.burned_by_reason.get("usage_inference").copied().unwrap_or(0);
        prop_assert_eq!(provider + royalties + fee + burned, job.paid, "exact split");
        prop_assert_eq!(fee, job.paid * Amount::from(job_fee_bps) / 10_000);
        prop_assert_eq!(royalties, job.paid * Amount::from(royalty_bps) / 10_000);
        prop_assert!(burned <= job.paid * Amount::from(payment_max_bps) / 10_000);
    }
}
