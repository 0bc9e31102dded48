//! Shipped datasets, the dataset format, splits, data order and text windows.

use std::collections::BTreeSet;
use std::fs;

use poi_repops::commit::Digest;
use poi_repops::data::format::{SHARD_MAGIC, decode_shard, encode_shard};
use poi_repops::data::shipped::SHIPPED_NAMES;
use poi_repops::data::tabular::in_eval_split;
use poi_repops::data::text::TEXT_WINDOW_DOMAIN;
use poi_repops::data::{
    CharTokenizer, DataError, DatasetBuilder, EpochSampler, ProviderId, Record, Schema,
    TabularDataset, TabularSplit, TextCorpus, dataset_from_shards, eval_window, eval_window_count,
    read_dataset, sample_windows, shipped_dataset, unigram_baseline, write_dataset,
};

/// Dataset ids of the shipped datasets, pinned: they change only if the format, the
/// conversion or the upstream data changes, and then on purpose.
const SHIPPED_IDS: [(&str, &str); 4] = [
    (
        "iris",
        "a44b53daeae781470bd15c91549e63da14eab880ad5abb893feb5a6161f43d65",
    ),
    (
        "winequality-red",
        "cad3c6ec98c548f242a0c6aa95e5e85416f186fa5408316a28de2651feb47052",
    ),
    (
        "diabetes",
        "e937a1a7c91c935816a32b1d24e5b20cd69f545e9f39a1609546edd571b5a9c0",
    ),
    (
        "liber-primus",
        "f7a74cf72f8a9cf7a83b8fb19192f5b5c0f8fcbfa1f7d703f1d067afbbbbf026",
    ),
];

#[test]
fn shipped_dataset_ids_are_pinned_and_stable() {
    for (name, pinned) in SHIPPED_IDS {
        let first = shipped_dataset(name).unwrap().id();
        let second = shipped_dataset(name).unwrap().id();
        assert_eq!(first, second, "{name}");
        assert_eq!(first.to_hex(), pinned, "{name}");
    }
    assert_eq!(SHIPPED_NAMES.len(), SHIPPED_IDS.len());
}

fn check_split(split: &TabularSplit, rows: usize, features: u32, classes: u32) {
    let (train, eval) = (&split.train, &split.eval);
    assert_eq!(train.len() + eval.len(), rows);
    assert_eq!(train.n_features, features);
    assert_eq!(train.n_classes, classes);
    assert_eq!(train.features.len(), train.len() * features as usize);
    assert_eq!(eval.features.len(), eval.len() * features as usize);
    // Near the 20% target, and every label in range.
    let eval_share = eval.len() as f64 / rows as f64;
    assert!(
        (0.12..0.28).contains(&eval_share),
        "eval share {eval_share}"
    );
    assert!(
        train
            .labels
            .iter()
            .chain(&eval.labels)
            .all(|&l| l < classes)
    );
    // Train features are standardised: per-feature mean ~0 and std ~1.
    let width = features as usize;
    for j in 0..width {
        let column: Vec<f64> = train
            .features
            .iter()
            .skip(j)
            .step_by(width)
            .map(|&v| v.into())
            .collect();
        let mean = column.iter().sum::<f64>() / column.len() as f64;
        let var = column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / column.len() as f64;
        assert!(mean.abs() < 1e-5, "feature {j} mean {mean}");
        assert!(
            (var.sqrt() - 1.0).abs() < 1e-4,
            "feature {j} std {}",
            var.sqrt()
        );
    }
}

#[test]
fn shipped_tables_have_expected_shapes_and_deterministic_disjoint_splits() {
    let iris = poi_repops::data::iris().unwrap();
    check_split(&iris, 150, 4, 3);
    // Pinned split sizes (content-hash split at 200 per mille).
    assert_eq!(iris.eval.len(), 37);
    let wine = poi_repops::data::winequality().unwrap();
    check_split(&wine, 1599, 11, 6);
    assert_eq!(wine.eval.len(), 347);
    let diabetes = poi_repops::data::diabetes().unwrap();
    check_split(&diabetes, 441, 10, 2);
    assert_eq!(diabetes.eval.len(), 91);
    assert!(diabetes.train.targets.is_some() && diabetes.standardizer.target.is_some());
    assert!(iris.train.targets.is_none());

    // Deterministic: a second load is identical, bit for bit.
    assert_eq!(poi_repops::data::winequality().unwrap(), wine);

    // Disjoint and complete: every record is on exactly one side, decided by its content.
    for name in ["iris", "winequality-red", "diabetes"] {
        let dataset = shipped_dataset(name).unwrap();
        let table = TabularDataset::from_dataset(&dataset).unwrap();
        let split = TabularSplit::from_dataset(&dataset, 200).unwrap();
        let (mut train_hashes, mut eval_hashes) = (BTreeSet::new(), BTreeSet::new());
        for record in dataset.records() {
            let hash = record.content_hash();
            if in_eval_split(record, 200) {
                &mut eval_hashes
            } else {
                &mut train_hashes
            }
            .insert(hash);
        }
        assert!(train_hashes.is_disjoint(&eval_hashes), "{name}");
        let eval_rows = dataset.records().filter(|r| in_eval_split(r, 200)).count();
        assert_eq!(split.eval.len(), eval_rows, "{name}");
        assert_eq!(split.train.len() + split.eval.len(), table.len(), "{name}");
    }
}

#[test]
fn diabetes_has_every_shipped_patient_and_an_above_median_label() {
    let table = TabularDataset::from_dataset(&shipped_dataset("diabetes").unwrap()).unwrap();
    let targets = table.targets.as_ref().unwrap();
    assert_eq!(targets.len(), 441);
    // The rows come exactly as linfa-datasets 0.8 ships them (it drops the original patient 0).
    assert_eq!(targets[..3], [75.0, 141.0, 206.0]);
    let mut sorted: Vec<f64> = targets.iter().map(|&t| t.into()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[220];
    for (&label, &target) in table.labels.iter().zip(targets) {
        assert!((25.0..=346.0).contains(&target));
        assert_eq!(label, u32::from(f64::from(target) > median));
    }
    let positives = table.labels.iter().filter(|&&l| l == 1).count();
    assert!(
        (215..=221).contains(&positives),
        "{positives} above the median"
    );
}

fn tabular(features: &[f32], label: u32) -> Record {
    Record::Tabular {
        features: features.to_vec(),
        label,
        target: None,
    }
}

#[test]
fn dataset_format_round_trips_and_detects_corruption() {
    let schema = Schema::tabular(2, 3, false);
    let alice = ProviderId([1; 32]);
    let bob = ProviderId([2; 32]);
    let shards = vec![
        (
            alice,
            vec![tabular(&[1.0, 2.0], 0), tabular(&[3.0, 4.0], 1)],
        ),
        (bob, vec![tabular(&[5.0, -6.0], 2)]),
    ];
    let dataset = dataset_from_shards("toy", schema, shards.clone()).unwrap();
    let again = dataset_from_shards("toy", schema, shards).unwrap();
    assert_eq!(dataset.id(), again.id());
    assert_eq!(dataset.manifest().shards[1].provider, bob);
    assert_eq!(dataset.record_count(), 3);

    let dir = tempfile::tempdir().unwrap();
    let id = write_dataset(&dataset, dir.path()).unwrap();
    assert_eq!(id, dataset.id());
    let loaded = read_dataset(dir.path(), Some(&id)).unwrap();
    assert_eq!(loaded, dataset);
    assert!(matches!(
        read_dataset(dir.path(), Some(&Digest([9; 32]))),
        Err(DataError::DatasetIdMismatch { .. })
    ));

    // Flip each byte of each shard in turn: the shard is named in the error.
    for (index, entry) in dataset.manifest().shards.iter().enumerate() {
        let path = dir.path().join(format!("{}.shard", entry.id.to_hex()));
        let good = fs::read(&path).unwrap();
        for position in 0..good.len() {
            let mut bad = good.clone();
            bad[position] ^= 0x01;
            fs::write(&path, &bad).unwrap();
            match read_dataset(dir.path(), Some(&id)) {
                Err(DataError::ShardHashMismatch {
                    index: i, expected, ..
                }) => {
                    assert_eq!((i as usize, expected), (index, entry.id));
                }
                other => panic!("flip at {position} of shard {index}: {other:?}"),
            }
        }
        fs::write(&path, &good).unwrap();
    }
    // Flip each byte of the manifest: the id no longer matches.
    let manifest_path = dir.path().join("manifest.bin");
    let good = fs::read(&manifest_path).unwrap();
    for position in 0..good.len() {
        let mut bad = good.clone();
        bad[position] ^= 0x80;
        fs::write(&manifest_path, &bad).unwrap();
        assert!(matches!(
            read_dataset(dir.path(), Some(&id)),
            Err(DataError::DatasetIdMismatch { .. })
        ));
        // Without an expected id, a changed manifest either fails to load or is a
        // different dataset (for example one paying another provider).
        if let Ok(other) = read_dataset(dir.path(), None) {
            assert_ne!(other.id(), id, "manifest flip at {position}");
        }
    }
    fs::write(&manifest_path, &good).unwrap();
    assert_eq!(read_dataset(dir.path(), Some(&id)).unwrap(), dataset);
}

#[test]
fn shipped_datasets_round_trip_through_a_directory() {
    for name in SHIPPED_NAMES {
        let dataset = shipped_dataset(name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let id = write_dataset(&dataset, dir.path()).unwrap();
        assert_eq!(
            read_dataset(dir.path(), Some(&id)).unwrap(),
            dataset,
            "{name}"
        );
    }
}

#[test]
fn bad_records_and_shards_are_typed_errors() {
    let schema = Schema::tabular(2, 3, false);
    let mut builder = DatasetBuilder::new("toy", schema).unwrap();
    let p = ProviderId::SHIPPED;
    for bad in [
        tabular(&[1.0], 0),
        tabular(&[1.0, 2.0], 3),
        tabular(&[f32::NAN, 2.0], 0),
        Record::Tabular {
            features: vec![1.0, 2.0],
            label: 0,
            target: Some(1.0),
        },
        Record::Text("x".into()),
    ] {
        assert!(matches!(
            builder.add_shard(p, vec![bad]),
            Err(DataError::Record { .. })
        ));
    }
    let good = vec![tabular(&[1.0, 2.0], 0)];
    builder.add_shard(p, good.clone()).unwrap();
    assert!(matches!(
        builder.add_shard(p, good.clone()),
        Err(DataError::DuplicateShard { .. })
    ));
    let bytes = encode_shard(&schema, &good).unwrap();
    assert_eq!(bytes[..8], SHARD_MAGIC);
    assert_eq!(decode_shard(&bytes, &schema, "s").unwrap(), good);
    for cut in 0..bytes.len() {
        assert!(matches!(
            decode_shard(&bytes[..cut], &schema, "s"),
            Err(DataError::ShardMalformed { .. })
        ));
    }
    let other = Schema::tabular(2, 4, false);
    assert!(decode_shard(&bytes, &other, "s").is_err());
    assert!(
        builder
            .add_encoded_shard(p, &[bytes.clone(), vec![0]].concat())
            .is_err()
    );
    assert!(matches!(
        DatasetBuilder::new("empty", schema).unwrap().build(),
        Err(DataError::Empty { .. })
    ));
    assert!(Schema::tabular(0, 3, false).validate().is_err());
}

#[test]
fn tokenizer_round_trips_and_rejects_unknowns() {
    let corpus = poi_repops::data::liber_primus().unwrap();
    let tokenizer = &corpus.tokenizer;
    assert_eq!(tokenizer.vocab_size(), 57);
    assert!(tokenizer.vocab().windows(2).all(|w| w[0] < w[1]));
    let total = corpus.train.len() + corpus.eval.len();
    assert_eq!(total, lipsum::LIBER_PRIMUS.chars().count());
    assert_eq!(corpus.train.len(), total * 9 / 10);
    let text = [
        tokenizer.decode(&corpus.train).unwrap(),
        tokenizer.decode(&corpus.eval).unwrap(),
    ]
    .concat();
    assert_eq!(text, lipsum::LIBER_PRIMUS);
    assert!(matches!(
        tokenizer.encode("Brute!é"),
        Err(DataError::UnknownChar {
            ch: 'é', offset: 6
        })
    ));
    assert!(matches!(
        tokenizer.decode(&[57]),
        Err(DataError::UnknownToken { token: 57, .. })
    ));
    assert!(CharTokenizer::from_vocab(vec!['b', 'a']).is_err());
    assert!(TextCorpus::from_dataset(&shipped_dataset("iris").unwrap()).is_err());
}

#[test]
fn training_windows_are_a_pure_function_of_seed_and_step() {
    let corpus = poi_repops::data::liber_primus().unwrap();
    let (t, b) = (32usize, 4usize);
    let draw = |seed, step| {
        let (mut x, mut y) = (vec![0u32; t * b], vec![0u32; t * b]);
        sample_windows(&corpus.train, seed, step, t as u32, &mut x, &mut y).unwrap();
        (x, y)
    };
    let (x, y) = draw(1, 5);
    assert_eq!((x.clone(), y.clone()), draw(1, 5));
    assert_ne!(x, draw(1, 6).0);
    assert_ne!(x, draw(2, 5).0);
    // Targets are inputs shifted by one within each window.
    for (xw, yw) in x.chunks(t).zip(y.chunks(t)) {
        assert_eq!(xw[1..], yw[..t - 1]);
    }
    assert!(!TEXT_WINDOW_DOMAIN.is_empty());
    let (mut x1, mut y1) = (vec![0u32; 8], vec![0u32; 8]);
    assert!(matches!(
        sample_windows(&[1, 2, 3], 0, 0, 8, &mut x1, &mut y1),
        Err(DataError::TooFewTokens { .. })
    ));
    assert!(matches!(
        sample_windows(&corpus.train, 0, 0, 8, &mut x1, &mut y1[..7]),
        Err(DataError::BufferSize { .. })
    ));

    let count = eval_window_count(corpus.eval.len() as u64, t as u32);
    assert_eq!(count, (corpus.eval.len() as u64 - 1) / t as u64);
    let (mut ex, mut ey) = (vec![0u32; t], vec![0u32; t]);
    eval_window(&corpus.eval, count - 1, &mut ex, &mut ey).unwrap();
    assert!(eval_window(&corpus.eval, count, &mut ex, &mut ey).is_err());
}

#[test]
fn unigram_baseline_matches_its_formula() {
    // Train [0, 0, 1], vocabulary 3: p = (3/6, 2/6, 1/6); eval [0, 2].
    let baseline = unigram_baseline(&[0, 0, 1], &[0, 2], 3).unwrap();
    let expected = -((0.5f64).ln() + (1.0f64 / 6.0).ln()) / 2.0;
    assert!((baseline.nll_nats - expected).abs() < 1e-12);
    assert!((baseline.perplexity - expected.exp()).abs() < 1e-9);

    let corpus = poi_repops::data::liber_primus().unwrap();
    let lm = unigram_baseline(&corpus.train, &corpus.eval, corpus.tokenizer.vocab_size()).unwrap();
    // Pinned: the f64 sums run in one order and libm is the same everywhere.
    assert_eq!(lm.perplexity, 18.301253489252005, "{lm:?}");
    assert_eq!(lm.eval_tokens, 4907);
    assert!(unigram_baseline(&[0], &[5], 3).is_err());
}

#[test]
fn epoch_sampler_covers_each_epoch_once() {
    let mut sampler = EpochSampler::new(11, 150, 16).unwrap();
    assert_eq!(sampler.steps_per_epoch(), 9);
    let mut seen = BTreeSet::new();
    let mut batch = [0u32; 16];
    for step in 9..18 {
        sampler.batch_indices(step, &mut batch).unwrap();
        assert!(batch.iter().all(|&i| seen.insert(i)));
    }
    assert_eq!(seen.len(), 144);
    // Pinned: the permutation and the batch are pure functions of (seed, epoch, step).
    assert_eq!(
        poi_repops::data::epoch_order(7, 0, 10),
        [1, 3, 8, 6, 2, 5, 4, 7, 9, 0]
    );
    assert_eq!(batch[..4], [17, 73, 14, 15]);
}
