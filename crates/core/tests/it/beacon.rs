//! The randomness beacon in the chain: draw targets set at commit, seeds carried by blocks and
//! checked against the group key, draws, retargeting, budgets, and the blocks it refuses.

use commonware_codec::Encode;
use commonware_cryptography::bls12381::primitives::{group::Private, ops, variant::MinSig};
use poi_core::beacon::BeaconSeed;
use poi_core::genesis::{Genesis, GenesisBeacon, GenesisError};
use poi_core::market::MarketMsg;
use poi_core::params::Params;
use poi_core::poi::PoiMsg;
use poi_core::poi::beacon::{self, Beacon};

use crate::chain::{CHAIN, addr, key};
use crate::net::{Net, SEED_NAMESPACE, beacon_key, sign_seed};
use crate::poi::{submit_inference, test_params};

fn commit_inference(job: u64) -> PoiMsg {
    PoiMsg::CommitInference {
        job,
        output_root: [8; 32],
        sealed: [9; 32],
    }
}

/// A beacon net with one provider, and `jobs` inference jobs submitted and started.
fn started(params: Params, jobs: u64) -> (Net, ed25519_dalek::SigningKey) {
    let (prov, user) = (key(1), key(2));
    let mut net = Net::new_poi(&[&prov, &user], params).with_beacon();
    net.poi_provider(&prov);
    for id in 0..jobs {
        assert_eq!(net.poi(&user, submit_inference()), "ok");
        assert_eq!(net.market(&prov, MarketMsg::StartJob { id }), "ok");
    }
    (net, prov)
}

fn beacon_record(net: &Net) -> Beacon {
    beacon::read_beacon(&net.state).unwrap().expect("beacon")
}

#[test]
fn a_commit_waits_for_a_seed_of_a_later_view_and_draws_from_it() {
    let (mut net, prov) = started(test_params(), 1);
    let delay = test_params().poi.beacon_delay_views;
    assert_eq!(net.poi(&prov, commit_inference(0)), "ok");
    let commit_view = net.height;
    let target = (0, commit_view + delay);
    assert_eq!(net.poi_job(0).draw_target, Some(target));
    // No proposer may carry the seed before the target view is over.
    while net.height < target.1 {
        assert!(net.wanted_seeds().is_empty(), "view {}", net.height + 1);
        net.empty_blocks(1);
    }
    assert_eq!(net.poi_job(0).randomness, None);
    let wanted = net.wanted_seeds();
    assert_eq!(wanted, vec![sign_seed(&beacon_key(), target.0, target.1)]);
    net.empty_blocks(1);
    let job = net.poi_job(0);
    assert_eq!(job.randomness, Some(wanted[0].randomness()));
    let record = beacon_record(&net);
    assert_eq!(
        (record.seeds_recorded, record.last_seed_view),
        (1, target.1)
    );
    assert_eq!(
        beacon::read_seed(&net.state, 0, target.1).unwrap(),
        Some(wanted[0].clone())
    );
    // Drawn: nothing is wanted any more.
    assert!(net.wanted_seeds().is_empty());
}

#[test]
fn blocks_with_bad_or_unwanted_seeds_are_invalid_and_change_nothing() {
    let (mut net, prov) = started(test_params(), 2);
    assert_eq!(net.poi(&prov, commit_inference(0)), "ok");
    net.empty_blocks(1);
    assert_eq!(net.poi(&prov, commit_inference(1)), "ok");
    let first = net.poi_job(0).draw_target.unwrap().1;
    let second = net.poi_job(1).draw_target.unwrap().1;
    while net.height <= second {
        net.block_with_seeds(Vec::new(), Vec::new()).unwrap();
    }
    let key = beacon_key();
    let mut stranger_scalar = [0u8; 32];
    stranger_scalar[31] = 5;
    let stranger = {
        use commonware_codec::DecodeExt;
        Private::decode(stranger_scalar.to_vec()).unwrap()
    };
    let good = |view| sign_seed(&key, 0, view);
    let mut corrupt = good(first);
    corrupt.signature[0] ^= 0x01;
    let cases: Vec<(&str, Vec<BeaconSeed>)> = vec![
        (
            "signed by another key",
            vec![sign_seed(&stranger, 0, first)],
        ),
        ("of an untargeted view", vec![good(first + 1)]),
        ("of another epoch", vec![sign_seed(&key, 1, first)]),
        ("of the block's own view", vec![good(net.height + 1)]),
        ("not ascending", vec![good(second), good(first)]),
        ("twice", vec![good(first), good(first)]),
        (
            "a right signature for the wrong view",
            vec![BeaconSeed {
                view: second,
                ..good(first)
            }],
        ),
        ("corrupt bytes", vec![corrupt]),
    ];
    for (what, seeds) in cases {
        let (before, height) = (net.state.clone(), net.height);
        let result = net.block_with_seeds(Vec::new(), seeds);
        assert!(result.is_err(), "a seed {what} was accepted");
        assert_eq!((net.height, &net.state), (height, &before), "{what}");
    }
    // Too many: the limit is a parameter.
    let mut params = test_params();
    params.poi.seeds_per_block_max = 1;
    let (mut small, prov) = started(params, 2);
    assert_eq!(small.poi(&prov, commit_inference(0)), "ok");
    small.empty_blocks(1);
    assert_eq!(small.poi(&prov, commit_inference(1)), "ok");
    let (a, b) = (
        small.poi_job(0).draw_target.unwrap().1,
        small.poi_job(1).draw_target.unwrap().1,
    );
    while small.height <= b {
        small.block_with_seeds(Vec::new(), Vec::new()).unwrap();
    }
    assert_eq!(
        small.wanted_seeds().len(),
        1,
        "wanted is capped at the limit"
    );
    assert!(
        small
            .block_with_seeds(Vec::new(), vec![good(a), good(b)])
            .is_err()
    );
    // The honest seeds, one per block, are accepted, and a replay of a recorded seed is not.
    small.block_with_seeds(Vec::new(), vec![good(a)]).unwrap();
    assert!(small.block_with_seeds(Vec::new(), vec![good(a)]).is_err());
    small.block_with_seeds(Vec::new(), vec![good(b)]).unwrap();
    assert!(small.poi_job(0).randomness.is_some() && small.poi_job(1).randomness.is_some());
    assert_ne!(small.poi_job(0).randomness, small.poi_job(1).randomness);
}

#[test]
fn a_chain_without_a_beacon_refuses_seeds_and_never_draws() {
    let (prov, user) = (key(1), key(2));
    let mut net = Net::new_poi(&[&prov, &user], test_params());
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_inference()), "ok");
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    assert_eq!(net.poi(&prov, commit_inference(0)), "ok");
    assert_eq!(net.poi_job(0).draw_target, None);
    assert!(
        net.block_with_seeds(Vec::new(), vec![sign_seed(&beacon_key(), 0, 1)])
            .is_err()
    );
    net.empty_blocks(30);
    assert_eq!(net.poi_job(0).randomness, None);
    assert!(
        net.chain
            .wanted_seeds(&net.state, net.height + 1)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_target_no_block_fills_moves_after_the_timeout() {
    let mut params = test_params();
    params.poi.beacon_timeout_views = 5;
    let delay = params.poi.beacon_delay_views;
    let (mut net, prov) = started(params, 1);
    assert_eq!(net.poi(&prov, commit_inference(0)), "ok");
    let (_, first) = net.poi_job(0).draw_target.unwrap();
    // Proposers withhold the seed: the target stays until view first + 5 has passed.
    while net.height < first + 5 {
        net.block_with_seeds(Vec::new(), Vec::new()).unwrap();
        assert_eq!(net.poi_job(0).draw_target, Some((0, first)));
    }
    net.block_with_seeds(Vec::new(), Vec::new()).unwrap();
    let moved = net.height + delay;
    assert_eq!(net.poi_job(0).draw_target, Some((0, moved)));
    // The old seed is no longer wanted; the new one draws.
    assert!(
        net.block_with_seeds(Vec::new(), vec![sign_seed(&beacon_key(), 0, first)])
            .is_err()
    );
    while net.height < moved {
        net.block_with_seeds(Vec::new(), Vec::new()).unwrap();
    }
    net.empty_blocks(1);
    assert_eq!(
        net.poi_job(0).randomness,
        Some(sign_seed(&beacon_key(), 0, moved).randomness())
    );
}

#[test]
fn draws_per_block_are_bounded_and_the_rest_wait() {
    let mut params = test_params();
    params.poi.draws_per_block_max = 2;
    let (mut net, prov) = started(params, 5);
    let commits: Vec<_> = (0..5)
        .map(|id| net.tx(&prov, poi_core::tx::Msg::Poi(commit_inference(id))))
        .collect();
    assert_eq!(net.block(commits), ["ok"; 5]);
    let (_, view) = net.poi_job(0).draw_target.unwrap();
    while net.height < view {
        net.empty_blocks(1);
    }
    let drawn = |net: &Net| {
        (0..5)
            .filter(|&id| net.poi_job(id).randomness.is_some())
            .count()
    };
    for expected in [2, 4, 5] {
        net.empty_blocks(1);
        assert_eq!(drawn(&net), expected);
    }
    // All five drew from the one seed of their shared target.
    let r: Vec<_> = (0..5).map(|id| net.poi_job(id).randomness).collect();
    assert!(r.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(beacon_record(&net).seeds_recorded, 1);
}

#[test]
fn genesis_beacon_is_validated_and_written() {
    let identity = hex::encode(
        ops::compute_public::<MinSig>(&beacon_key())
            .encode()
            .as_ref(),
    );
    let mut genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: vec![addr(&key(200))],
        params: Params::default(),
        accounts: Vec::new(),
        beacon: Some(GenesisBeacon {
            identity: identity.clone(),
            seed_namespace: hex::encode(SEED_NAMESPACE),
            polynomial: String::new(),
        }),
        models: Vec::new(),
        data: Vec::new(),
    };
    let text = genesis.to_toml();
    assert!(text.contains("[beacon]"), "{text}");
    assert_eq!(Genesis::from_toml(&text).unwrap(), genesis);
    let writes = genesis.state().unwrap();
    let record: Beacon = borsh::from_slice(writes[beacon::BEACON_KEY].as_ref().unwrap()).unwrap();
    assert_eq!(hex::encode(record.identity), identity);
    assert_eq!(record.seed_namespace, SEED_NAMESPACE);
    let bad: [(&str, &str); 5] = [
        ("zz", "00"),
        ("abcd", "00"),
        (&"cd".repeat(96), "00"),
        (&identity, ""),
        (&identity, "not hex"),
    ];
    for (id, ns) in bad {
        genesis.beacon = Some(GenesisBeacon {
            identity: id.to_owned(),
            seed_namespace: ns.to_owned(),
            polynomial: String::new(),
        });
        assert!(
            matches!(genesis.validate(), Err(GenesisError::Beacon(_))),
            "{id} / {ns}"
        );
    }
}
