//! Exact KNN-Shapley data valuation against the cheapest per-shard alternative.
//!
//! The full red wine quality table (1,599 records) is split into 8 contiguous shards from 8
//! providers. `knn_shapley` values every shard exactly (one sort of the training points per
//! eval point); `leave_one_shard_out` runs 8 + 1 KNN evaluations (all shards, then without
//! each shard; a distance pass and a top-K selection per eval point). Both include the same
//! preparation (split, quantization, copy detection). Default parameters (K = 5, 20% eval,
//! at most 400 eval points). One thread.
//!
//! Run: `cargo bench -p poi-repops --bench valuation`.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use poi_repops::data::{Dataset, DatasetBuilder, ProviderId, Record, winequality_dataset};
use poi_repops::valuation::{ValuationParams, knn_shapley, leave_one_shard_out};

const PROVIDERS: usize = 8;

fn wine_eight_providers() -> Dataset {
    let wine = winequality_dataset().unwrap();
    let records: Vec<Record> = wine.records().cloned().collect();
    let per_shard = records.len().div_ceil(PROVIDERS);
    let mut builder = DatasetBuilder::new("winequality-red-8", *wine.schema()).unwrap();
    for (n, chunk) in (1u8..).zip(records.chunks(per_shard)) {
        builder
            .add_shard(ProviderId([n; 32]), chunk.to_vec())
            .unwrap();
    }
    builder.build().unwrap()
}

fn main() {
    let dataset = wine_eight_providers();
    let params = ValuationParams::default();
    let valuation = knn_shapley(&dataset, &params).unwrap();
    let loo = leave_one_shard_out(&dataset, &params).unwrap();
    assert_eq!(loo.utility, valuation.utility);
    let train: u32 = valuation.shards.iter().map(|s| s.records).sum();
    let copies: u32 = valuation.shards.iter().map(|s| s.duplicates).sum();
    println!(
        "winequality-red in {} shards: N = {} train records ({} kept, {} copies dropped), \
         M = {} eval points, F = 11, K = {}",
        valuation.shards.len(),
        train,
        train - copies,
        copies,
        valuation.eval_points,
        params.k
    );
    for (shard, loo_value) in valuation.shards.iter().zip(&loo.shards) {
        println!(
            "  shard {} ({} records): shapley {:.4}, leave-one-out {:.4}",
            shard.index,
            shard.records,
            shard.value as f64 / 1e12,
            *loo_value as f64 / 1e12
        );
    }

    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = criterion.benchmark_group("valuation");
    group.bench_function("knn_shapley", |b| {
        b.iter(|| knn_shapley(black_box(&dataset), &params).unwrap())
    });
    group.bench_function("leave_one_shard_out", |b| {
        b.iter(|| leave_one_shard_out(black_box(&dataset), &params).unwrap())
    });
    group.finish();
    criterion.final_summary();
}
