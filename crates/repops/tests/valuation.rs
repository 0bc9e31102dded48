//! KNN-Shapley data valuation on the shipped datasets: noisy shards rank low, values add up
//! exactly, copies earn nothing, the cap binds, results are deterministic, and the values
//! match a brute-force Shapley computation on a small dataset.

use std::collections::BTreeSet;

use poi_repops::data::tabular::in_eval_split;
use poi_repops::data::{
    Dataset, DatasetBuilder, ProviderId, Record, Schema, iris_dataset, liber_primus_dataset,
    winequality_dataset,
};
use poi_repops::valuation::{
    ProviderValue, VALUE_SCALE, Valuation, ValuationError, ValuationParams, knn_shapley,
    leave_one_shard_out,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn pid(n: u8) -> ProviderId {
    ProviderId([n; 32])
}

fn build(name: &str, schema: Schema, shards: Vec<(ProviderId, Vec<Record>)>) -> Dataset {
    let mut builder = DatasetBuilder::new(name, schema).unwrap();
    for (provider, records) in shards {
        builder.add_shard(provider, records).unwrap();
    }
    builder.build().unwrap()
}

fn flip(record: &Record, n_classes: u32) -> Record {
    let Record::Tabular {
        features,
        label,
        target,
    } = record
    else {
        panic!("tabular record expected");
    };
    Record::Tabular {
        features: features.clone(),
        label: (label + 1) % n_classes,
        target: *target,
    }
}

fn provider(valuation: &Valuation, id: ProviderId) -> &ProviderValue {
    valuation
        .providers
        .iter()
        .find(|p| p.provider == id)
        .expect("provider present")
}

fn total_weight(valuation: &Valuation) -> u128 {
    valuation.providers.iter().map(|p| p.weight).sum()
}

fn assert_sums(valuation: &Valuation) {
    let shards: i128 = valuation.shards.iter().map(|s| s.value).sum();
    let providers: i128 = valuation.providers.iter().map(|p| p.value).sum();
    assert_eq!(shards, valuation.utility, "shard values sum to the utility");
    assert_eq!(
        providers, valuation.utility,
        "provider values sum to the utility"
    );
    let ids: Vec<ProviderId> = valuation.providers.iter().map(|p| p.provider).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "providers sorted by id, once each");
}

const EVAL_PERMILLE: u32 = 200;

/// Wine split by content hash: (eval records, train records), in dataset order.
fn wine_split() -> (Schema, Vec<Record>, Vec<Record>) {
    let wine = winequality_dataset().unwrap();
    let (eval, train) = wine
        .records()
        .cloned()
        .partition(|r| in_eval_split(r, EVAL_PERMILLE));
    (*wine.schema(), eval, train)
}

/// Wine as an eval shard from the shipped provider plus four equal training shards from
/// providers 1..=4, round-robin over the train records; the shard of provider 4 has flipped
/// labels when `noisy` (taken from records whose flipped copy stays in train, so no noisy
/// record becomes an eval point).
fn wine_four_providers(noisy: bool) -> (Schema, Vec<(ProviderId, Vec<Record>)>) {
    let (schema, eval, train) = wine_split();
    let mut groups: Vec<Vec<Record>> = vec![Vec::new(); 4];
    for (i, record) in train.iter().enumerate() {
        groups[i % 4].push(record.clone());
    }
    if noisy {
        groups[3] = groups[3]
            .iter()
            .map(|r| flip(r, schema.n_classes))
            .filter(|r| !in_eval_split(r, EVAL_PERMILLE))
            .collect();
    }
    let len = groups.iter().map(Vec::len).min().unwrap();
    let mut shards = vec![(ProviderId::SHIPPED, eval)];
    for (n, mut group) in (1u8..).zip(groups) {
        group.truncate(len);
        shards.push((pid(n), group));
    }
    (schema, shards)
}

#[test]
fn label_flipped_shard_ranks_below_every_clean_shard() {
    let (schema, shards) = wine_four_providers(true);
    let dataset = build("wine-noisy", schema, shards);
    let valuation = knn_shapley(&dataset, &ValuationParams::default()).unwrap();
    assert_sums(&valuation);
    assert!(valuation.eval_points > 250, "{}", valuation.eval_points);
    let value = |n: u8| provider(&valuation, pid(n)).value;
    let weight = |n: u8| provider(&valuation, pid(n)).weight;
    eprintln!(
        "U = {}, providers {:?}",
        valuation.utility, valuation.providers
    );
    for clean in 1..=3 {
        assert!(
            value(4) < value(clean),
            "noisy {} >= clean {}",
            value(4),
            value(clean)
        );
        assert!(weight(4) < weight(clean));
    }
    assert_eq!(provider(&valuation, ProviderId::SHIPPED).value, 0);
    // The same ranking holds for the leave-one-shard-out baseline, whose full utility is the
    // same number.
    let loo = leave_one_shard_out(&dataset, &ValuationParams::default()).unwrap();
    assert_eq!(loo.utility, valuation.utility);
    assert_eq!(loo.shards[0], 0);
    for clean in 1..=3 {
        assert!(loo.shards[4] < loo.shards[clean], "{:?}", loo.shards);
    }
}

#[test]
fn shipped_wine_values_sum_exactly_to_the_utility() {
    let wine = winequality_dataset().unwrap();
    let valuation = knn_shapley(&wine, &ValuationParams::default()).unwrap();
    assert_sums(&valuation);
    assert_eq!(valuation.shards.len(), wine.manifest().shards.len());
    let records: u32 = valuation.shards.iter().map(|s| s.records).sum();
    let (_, _, train) = wine_split();
    assert_eq!(records as usize, train.len());
    // Red wine has repeated rows: they are found and dropped.
    let duplicates: u32 = valuation.shards.iter().map(|s| s.duplicates).sum();
    assert!(duplicates > 50, "{duplicates} duplicates");
    // One provider holds everything: its value is the utility, and its weight is capped at
    // half of it.
    assert_eq!(valuation.providers.len(), 1);
    let only = valuation.providers[0];
    assert_eq!(only.value, valuation.utility);
    assert_eq!(only.weight, only.value as u128 / 2);
    // KNN accuracy of a few tens of percent of the eval points.
    let accuracy = valuation.utility / i128::from(valuation.eval_points);
    assert!(
        accuracy > VALUE_SCALE / 3 && accuracy < VALUE_SCALE,
        "{accuracy}"
    );
}

#[test]
fn computing_twice_gives_identical_results() {
    let wine = winequality_dataset().unwrap();
    let params = ValuationParams {
        k: 7,
        ..ValuationParams::default()
    };
    let first = knn_shapley(&wine, &params).unwrap();
    let second = knn_shapley(&wine.clone(), &params).unwrap();
    assert_eq!(first, second);
    assert_eq!(
        leave_one_shard_out(&wine, &params).unwrap(),
        leave_one_shard_out(&wine, &params).unwrap()
    );
}

#[test]
fn copies_of_a_shard_raise_neither_weight_nor_share() {
    let (schema, shards) = wine_four_providers(false);
    let params = ValuationParams::default();
    let base = knn_shapley(&build("wine", schema, shards.clone()), &params).unwrap();
    assert_sums(&base);
    let (a, b) = (pid(1), pid(9));
    let a_shard = shards[1].1.clone();
    let base_a = *provider(&base, a);
    let base_share = base_a.weight as f64 / total_weight(&base) as f64;
    for uploads in [2usize, 10] {
        for copier in [a, b] {
            // Copies in another record order (the builder refuses identical shard bytes),
            // every other one with flipped labels.
            let mut with_copies = shards.clone();
            for r in 1..uploads {
                let mut copy = a_shard.clone();
                copy.rotate_left(r);
                if r % 2 == 0 {
                    copy = copy.iter().map(|x| flip(x, schema.n_classes)).collect();
                }
                with_copies.push((copier, copy));
            }
            let valuation =
                knn_shapley(&build("wine-copies", schema, with_copies), &params).unwrap();
            assert_sums(&valuation);
            let now = provider(&valuation, a);
            assert!(now.weight <= base_a.weight, "{uploads} uploads by {copier}");
            assert_eq!(now.value, base_a.value);
            let share = now.weight as f64 / total_weight(&valuation) as f64;
            assert!(share <= base_share, "share {share} > {base_share}");
            for copy in &valuation.shards[shards.len()..] {
                assert_eq!(copy.value, 0);
                assert_eq!(copy.duplicates, copy.records);
            }
            if copier == b {
                assert_eq!(provider(&valuation, b).value, 0);
                assert_eq!(provider(&valuation, b).weight, 0);
            }
            assert_eq!(valuation.utility, base.utility);
        }
    }
}

#[test]
fn one_provider_with_most_good_data_is_capped() {
    let (schema, mut shards) = wine_four_providers(false);
    let (big, small) = (pid(1), pid(2));
    for (i, shard) in shards.iter_mut().enumerate().skip(1) {
        shard.0 = if i == 2 { small } else { big };
    }
    let dataset = build("wine-big", schema, shards);
    let valuation = knn_shapley(&dataset, &ValuationParams::default()).unwrap();
    assert_sums(&valuation);
    let positive: u128 = valuation
        .providers
        .iter()
        .map(|p| p.value.max(0) as u128)
        .sum();
    let big_value = provider(&valuation, big);
    let small_value = provider(&valuation, small);
    assert!(big_value.value as u128 > positive / 2, "{valuation:?}");
    assert_eq!(big_value.weight, positive * 5000 / 10_000);
    assert_eq!(small_value.weight, small_value.value as u128);
    // With the cap at 100% nothing is capped.
    let uncapped = knn_shapley(
        &dataset,
        &ValuationParams {
            provider_cap_bps: 10_000,
            ..ValuationParams::default()
        },
    )
    .unwrap();
    assert_eq!(provider(&uncapped, big).weight, big_value.value as u128);
}

/// Iris without repeated feature vectors (the first of each kept), in dataset order.
fn iris_distinct() -> (Schema, Vec<Record>) {
    let iris = iris_dataset().unwrap();
    let mut seen = BTreeSet::new();
    let records = iris
        .records()
        .filter(|r| match r {
            Record::Tabular { features, .. } => {
                seen.insert(features.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            }
            Record::Text(_) => false,
        })
        .cloned()
        .collect();
    (*iris.schema(), records)
}

#[test]
fn equal_distance_ties_do_not_depend_on_shard_order() {
    // Iris features have one decimal, so many training points are at equal distances from
    // an eval point; ties are broken by record hash, not by position.
    let (schema, records) = iris_distinct();
    let (first, second): (Vec<_>, Vec<_>) = records
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let first: Vec<Record> = first.into_iter().map(|(_, r)| r).collect();
    let second: Vec<Record> = second.into_iter().map(|(_, r)| r).collect();
    let params = ValuationParams {
        eval_max: 1000,
        k: 3,
        ..ValuationParams::default()
    };
    let ab = knn_shapley(
        &build(
            "iris-ab",
            schema,
            vec![(pid(1), first.clone()), (pid(2), second.clone())],
        ),
        &params,
    )
    .unwrap();
    let ba = knn_shapley(
        &build("iris-ba", schema, vec![(pid(2), second), (pid(1), first)]),
        &params,
    )
    .unwrap();
    assert_sums(&ab);
    assert_eq!(ab.utility, ba.utility);
    assert_eq!(ab.providers, ba.providers);
    assert_eq!(ab.shards[0].value, ba.shards[1].value);
    assert_eq!(ab.shards[0].duplicates, 0);
}

#[test]
fn of_identical_records_the_first_in_dataset_order_is_credited() {
    let iris = iris_dataset().unwrap();
    let schema = *iris.schema();
    let base: Vec<Record> = iris.records().cloned().collect();
    let copied = base
        .iter()
        .find(|r| !in_eval_split(r, EVAL_PERMILLE))
        .unwrap()
        .clone();
    let params = ValuationParams {
        eval_max: 1000,
        ..ValuationParams::default()
    };
    let (a, b) = (pid(1), pid(2));
    let original_first = knn_shapley(
        &build(
            "iris-1",
            schema,
            vec![(a, base.clone()), (b, vec![copied.clone()])],
        ),
        &params,
    )
    .unwrap();
    let copy_first = knn_shapley(
        &build("iris-2", schema, vec![(b, vec![copied]), (a, base)]),
        &params,
    )
    .unwrap();
    assert_sums(&original_first);
    assert_sums(&copy_first);
    // Iris repeats some flowers: those later copies are dropped already.
    assert!(original_first.shards[0].duplicates >= 1);
    assert_eq!(original_first.shards[1].duplicates, 1);
    assert_eq!(original_first.shards[1].value, 0);
    assert_eq!(copy_first.shards[0].duplicates, 0);
    assert_eq!(
        copy_first.shards[1].duplicates,
        original_first.shards[0].duplicates + 1
    );
    // The same kept points, the same eval points: the record's value moves from A to B.
    assert_eq!(original_first.utility, copy_first.utility);
    assert_eq!(
        provider(&original_first, a).value,
        provider(&copy_first, a).value + provider(&copy_first, b).value
    );
}

fn point(x: f32, y: f32, label: u32) -> Record {
    Record::Tabular {
        features: vec![x, y],
        label,
        target: None,
    }
}

#[test]
fn values_match_brute_force_shapley_on_a_small_dataset() {
    // Two features on 0..=10. The eval shard holds the corners (0, 0) and (10, 10), so the
    // quantization range is the same for every subset of training points, and subsets can be
    // valued by building them as datasets.
    const PERMILLE: u32 = 500;
    let schema = Schema::tabular(2, 8, false);
    let corner = |v: f32| {
        (2..8)
            .map(|label| point(v, v, label))
            .find(|r| in_eval_split(r, PERMILLE))
            .expect("a label puts the corner in eval")
    };
    let mut eval = vec![corner(0.0), corner(10.0)];
    let mut players = Vec::new();
    let mut used = BTreeSet::new();
    for i in 0u32..200 {
        let (x, y, label) = (1 + (i * 7) % 9, 1 + (i * 4 + i / 9) % 9, (i * 5 / 3) % 2);
        if !used.insert((x, y)) {
            continue;
        }
        let record = point(x as f32, y as f32, label);
        if in_eval_split(&record, PERMILLE) {
            if eval.len() < 6 {
                eval.push(record);
            }
        } else if players.len() < 5 {
            players.push(record);
        }
    }
    assert_eq!((eval.len(), players.len()), (6, 5));
    let params = ValuationParams {
        k: 3,
        eval_permille: PERMILLE,
        ..ValuationParams::default()
    };
    let utility_of = |subset: u32| -> i128 {
        let mut shards = vec![(ProviderId::SHIPPED, eval.clone())];
        for (i, record) in players.iter().enumerate() {
            if subset & (1 << i) != 0 {
                shards.push((pid(i as u8 + 1), vec![record.clone()]));
            }
        }
        match knn_shapley(&build("tiny", schema, shards), &params) {
            Ok(valuation) => valuation.utility,
            Err(ValuationError::NoTrain { .. }) => 0,
            Err(e) => panic!("{e}"),
        }
    };
    let utilities: Vec<i128> = (0..32).map(utility_of).collect();
    let full = {
        let mut shards = vec![(ProviderId::SHIPPED, eval.clone())];
        for (i, record) in players.iter().enumerate() {
            shards.push((pid(i as u8 + 1), vec![record.clone()]));
        }
        knn_shapley(&build("tiny", schema, shards), &params).unwrap()
    };
    assert_eq!(full.utility, utilities[31]);
    assert_eq!(full.eval_points, 6);
    let factorial = |n: u32| (1..=n).product::<u32>().max(1) as i128;
    for player in 0..5u32 {
        // 120 * Shapley value = sum over S without the player of |S|! (4 - |S|)! * gain.
        let mut scaled = 0i128;
        for subset in 0..32u32 {
            if subset & (1 << player) != 0 {
                continue;
            }
            let size = subset.count_ones();
            let gain = utilities[(subset | (1 << player)) as usize] - utilities[subset as usize];
            scaled += factorial(size) * factorial(4 - size) * gain;
        }
        let value = full.shards[player as usize + 1].value;
        // Rounding: each eval point's utility and values are floored to units (at most
        // `N + 1` units off per eval point in all).
        let tolerance = 2 * 6 * 6 * 120;
        assert!(
            (value * 120 - scaled).abs() <= tolerance,
            "player {player}: {value} vs brute force {}",
            scaled / 120
        );
    }
    assert!(full.shards.iter().any(|s| s.value != 0));
}

#[test]
fn typed_errors_instead_of_panics() {
    let text = liber_primus_dataset().unwrap();
    assert!(matches!(
        knn_shapley(&text, &ValuationParams::default()),
        Err(ValuationError::NotTabular { .. })
    ));
    assert!(matches!(
        leave_one_shard_out(&text, &ValuationParams::default()),
        Err(ValuationError::NotTabular { .. })
    ));
    let iris = iris_dataset().unwrap();
    let with = |params: ValuationParams| knn_shapley(&iris, &params);
    let default = ValuationParams::default();
    assert!(matches!(
        with(ValuationParams { k: 0, ..default }),
        Err(ValuationError::InvalidParams { what: "k", .. })
    ));
    assert!(matches!(
        with(ValuationParams {
            eval_permille: 0,
            ..default
        }),
        Err(ValuationError::NoEval { .. })
    ));
    assert!(matches!(
        with(ValuationParams {
            eval_permille: 1000,
            ..default
        }),
        Err(ValuationError::NoTrain { .. })
    ));
    for bad in [
        ValuationParams {
            eval_permille: 1001,
            ..default
        },
        ValuationParams {
            eval_max: 0,
            ..default
        },
        ValuationParams {
            grid_bits: 0,
            ..default
        },
        ValuationParams {
            grid_bits: 17,
            ..default
        },
        ValuationParams {
            provider_cap_bps: 0,
            ..default
        },
        ValuationParams {
            provider_cap_bps: 10_001,
            ..default
        },
    ] {
        assert!(
            matches!(with(bad), Err(ValuationError::InvalidParams { .. })),
            "{bad:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        rng_seed: RngSeed::Fixed(0x005e_ed0f_da7a),
        ..ProptestConfig::default()
    })]

    /// Random small datasets from iris records: random shards, providers, flipped labels and
    /// parameters; values always add up exactly, and recomputing gives the same result.
    #[test]
    fn values_always_sum_to_the_utility(
        assignment in proptest::collection::vec((0usize..5, any::<bool>()), 150),
        owners in proptest::collection::vec(1u8..4, 5),
        take in 10usize..=150,
        k in 1u32..8,
        eval_max in 1u32..40,
        grid_bits in 1u32..=16,
    ) {
        let iris = iris_dataset().unwrap();
        let schema = *iris.schema();
        let mut shards: Vec<Vec<Record>> = vec![Vec::new(); 5];
        for (record, &(shard, flipped)) in iris.records().zip(&assignment).take(take) {
            let record = if flipped { flip(record, schema.n_classes) } else { record.clone() };
            shards[shard].push(record);
        }
        let mut builder = DatasetBuilder::new("iris-random", schema).unwrap();
        let mut added = 0;
        for (records, &owner) in shards.into_iter().zip(&owners) {
            // Empty shards cannot be added, nor a shard identical to an earlier one.
            if !records.is_empty() && builder.add_shard(pid(owner), records).is_ok() {
                added += 1;
            }
        }
        prop_assume!(added > 0);
        let dataset = builder.build().unwrap();
        let params = ValuationParams { k, eval_max, grid_bits, ..ValuationParams::default() };
        match knn_shapley(&dataset, &params) {
            Ok(valuation) => {
                assert_sums(&valuation);
                prop_assert!(valuation.eval_points <= eval_max);
                prop_assert_eq!(&knn_shapley(&dataset, &params).unwrap(), &valuation);
                let loo = leave_one_shard_out(&dataset, &params).unwrap();
                prop_assert_eq!(loo.utility, valuation.utility);
                let cap = total_positive(&valuation) * 5000 / 10_000;
                for p in &valuation.providers {
                    prop_assert!(p.weight <= cap);
                    prop_assert!(p.weight <= p.value.max(0) as u128);
                }
            }
            Err(ValuationError::NoTrain { .. } | ValuationError::NoEval { .. }) => {}
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

fn total_positive(valuation: &Valuation) -> u128 {
    valuation
        .providers
        .iter()
        .map(|p| p.value.max(0) as u128)
        .sum()
}
