//! Verifying one threshold-VRF seed against the group identity, no baseline.
//!
//! Scenario: what core pays per seed a block carries (`seeds_per_block_max` is 8): decode the
//! 96-byte identity and the 48-byte signature, hash the round to G1 and check one pairing
//! equation (`beacon::verify_seed`). Seeds come from a 4-validator dealing, signed by 3 shares
//! and recovered, as certificates carry them. `verify_seed_8` is a block's worth in a row;
//! `verify_seed_invalid` is a forged seed (the wrong round), which costs the same.

use std::hint::black_box;

use commonware_codec::Encode as _;
use commonware_consensus::{
    simplex::scheme::bls12381_threshold::vrf::Seed,
    types::{Epoch, Round, View},
};
use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt,
    primitives::{ops::threshold, sharing::Mode, variant::MinSig},
};
use commonware_parallel::Sequential;
use commonware_utils::N3f1;
use criterion::Criterion;
use poi_node::consensus::beacon::{self, CertifiedSeed, IDENTITY_BYTES};

/// Chain id the seeds are signed for.
const NAMESPACE: &[u8] = b"poi-bench";
/// Seeds measured by `verify_seed_8` (a block's maximum).
const SEEDS_PER_BLOCK: u64 = 8;

/// The group identity and `count` valid seeds of views 1..=count.
fn seeds(count: u64) -> ([u8; IDENTITY_BYTES], Vec<CertifiedSeed>) {
    let validators = std::num::NonZeroU32::new(4).expect("non-zero");
    let (sharing, shares) = feldman_desmedt::deal_anonymous::<MinSig, N3f1>(
        commonware_utils::sys_rng(),
        Mode::NonZeroCounter,
        validators,
    );
    let namespace = beacon::seed_namespace(NAMESPACE);
    let seeds = (1..=count)
        .map(|view| {
            let message = beacon::seed_message(0, view);
            let partials: Vec<_> = shares[..3]
                .iter()
                .map(|share| threshold::sign_message::<MinSig>(share, &namespace, &message))
                .collect();
            let signature =
                threshold::recover::<MinSig, _>(&sharing, &partials, &Sequential).expect("3 of 4");
            let round = Round::new(Epoch::new(0), View::new(view));
            CertifiedSeed::from_seed(&Seed::new(round, signature))
        })
        .collect();
    let mut identity = [0u8; IDENTITY_BYTES];
    identity.copy_from_slice(&sharing.public().encode());
    (identity, seeds)
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let (identity, seeds) = seeds(SEEDS_PER_BLOCK);
    let namespace = beacon::seed_namespace(NAMESPACE);
    for seed in &seeds {
        assert!(beacon::verify_seed(&identity, &namespace, seed));
    }
    criterion.bench_function("verify_seed", |b| {
        b.iter(|| beacon::verify_seed(black_box(&identity), &namespace, black_box(&seeds[0])));
    });
    criterion.bench_function("verify_seed_8", |b| {
        b.iter(|| {
            seeds
                .iter()
                .all(|seed| beacon::verify_seed(black_box(&identity), &namespace, seed))
        });
    });
    let mut forged = seeds[0];
    forged.view += 1;
    assert!(!beacon::verify_seed(&identity, &namespace, &forged));
    criterion.bench_function("verify_seed_invalid", |b| {
        b.iter(|| beacon::verify_seed(black_box(&identity), &namespace, black_box(&forged)));
    });
    criterion.final_summary();
}
