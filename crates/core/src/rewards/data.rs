//! Data providers' reward weights, by measured contribution (exact KNN-Shapley).
//!
//! Owns `rewards/d/<dataset name>` -> [`DataValuation`]. Genesis may name who contributed a
//! shipped dataset (`[[data]]`: its records cut into one contiguous shard per listed owner); the
//! chain then values every owner's shards once, at genesis, with
//! [`poi_repops::valuation::knn_shapley`]: exact Shapley values of a K-nearest-neighbour
//! classifier's accuracy on the dataset's eval split, on hash-quantized features, in fixed
//! point, ties broken by record hash, copies (also label-flipped ones) dropped so uploading the
//! same data k times earns nothing, each owner's weight capped at `provider_cap_bps` of all
//! positive value. Every validator recomputes the same integers.
//!
//! Each verified training job on a valued dataset then credits the data class
//! `units x multiplier_ppm` (verified compute times verified improvement: no improvement, no
//! data reward), split among the owners by weight with the largest-remainder method, so data
//! is paid per use and by contribution, never by volume.
//!
//! Cost: O(M x N x (F + log N)) once per dataset (M eval points, N train records, F
//! features); about 16 ms for the 1,599 red wines (see `docs/benchmarks.md`).

use borsh::{BorshDeserialize, BorshSerialize};
use poi_repops::data::{ProviderId, dataset_from_shards, shipped_dataset};
use poi_repops::valuation::{ValuationParams, knn_shapley};
use serde::Serialize;

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::module::ExecContext;
use crate::state::{self, StateReader};

/// Prefix of dataset valuations.
pub const DATA_PREFIX: &[u8] = b"rewards/d/";

/// One owner's measured contribution.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct DataOwner {
    /// The owner.
    pub address: Address,
    /// Shards it contributed.
    pub shards: u32,
    /// Its records dropped as copies.
    pub duplicates: u32,
    /// Shapley value (1.0 = 10^12), signed, as a decimal string.
    pub value: String,
    /// Payout weight (positive value, capped).
    #[serde(serialize_with = "crate::event::decimal")]
    pub weight: u128,
}

/// A dataset's valuation.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct DataValuation {
    /// The shipped dataset.
    pub dataset: String,
    /// Total utility (the sum of every owner's value), decimal.
    pub utility: String,
    /// Eval points it was measured on.
    pub eval_points: u32,
    /// Each owner, by address.
    pub owners: Vec<DataOwner>,
}

/// Valuations are keyed by the shipped dataset's canonical name, so `winequality` (the
/// market's spelling) and `winequality-red` find the same record.
fn key(dataset: &str) -> Vec<u8> {
    let canonical = poi_repops::train::resolve_dataset(dataset).unwrap_or(dataset);
    [DATA_PREFIX, canonical.as_bytes()].concat()
}

/// The valuation of `dataset`, if genesis named its owners.
pub fn read(state: &dyn StateReader, dataset: &str) -> Result<Option<DataValuation>, StateError> {
    state::read_borsh(state, &key(dataset))
}

/// Every valuation, by dataset name.
pub fn all(state: &dyn StateReader) -> Result<Vec<DataValuation>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(DATA_PREFIX, &mut |k, v| {
        match state::decode::<DataValuation>(k, v) {
            Ok(r) => out.push(r),
            Err(e) => failure = Some(e),
        }
        failure.is_none()
    })?;
    failure.map_or(Ok(out), Err)
}

/// Values `dataset` as contributed by `owners`: its records in order, cut into `n` contiguous
/// shards of `ceil(records / n)`, shard `j` by `owners[j]` (an owner listed twice holds two
/// shards). Returns the genesis record, or why it cannot be made.
pub fn value(dataset: &str, owners: &[Address]) -> Result<(Vec<u8>, Vec<u8>), String> {
    if owners.is_empty() {
        return Err(format!("{dataset}: no owners"));
    }
    let canonical = poi_repops::train::resolve_dataset(dataset).map_err(|e| e.to_string())?;
    let shipped = shipped_dataset(canonical).map_err(|e| e.to_string())?;
    let records: Vec<_> = shipped.records().cloned().collect();
    let chunk = records.len().div_ceil(owners.len()).max(1);
    let shards = records
        .chunks(chunk)
        .zip(owners)
        .map(|(part, owner)| (ProviderId(owner.0), part.to_vec()))
        .collect();
    let rebuilt =
        dataset_from_shards(canonical, *shipped.schema(), shards).map_err(|e| e.to_string())?;
    let v = knn_shapley(&rebuilt, &ValuationParams::default()).map_err(|e| e.to_string())?;
    let owners = v
        .providers
        .iter()
        .map(|p| {
            let shards = v.shards.iter().filter(|s| s.provider == p.provider);
            DataOwner {
                address: Address(p.provider.0),
                shards: shards.clone().count() as u32,
                duplicates: shards.map(|s| s.duplicates).sum(),
                value: p.value.to_string(),
                weight: p.weight,
            }
        })
        .collect();
    let record = DataValuation {
        dataset: canonical.to_string(),
        utility: v.utility.to_string(),
        eval_points: v.eval_points,
        owners,
    };
    Ok((key(dataset), borsh::to_vec(&record).expect("encodes")))
}

/// Credits the data class for a verified training job of `units x multiplier_ppm` on
/// `datasets`: each valued dataset's owners by weight (exact split).
pub(crate) fn credit_job(
    ctx: &mut ExecContext<'_, '_>,
    datasets: &[String],
    units: u64,
    multiplier_ppm: u64,
) -> Result<(), TxError> {
    let amount = u128::from(units).saturating_mul(u128::from(multiplier_ppm));
    if amount == 0 {
        return Ok(());
    }
    for dataset in datasets {
        let Some(valuation) = read(ctx.state, dataset)? else {
            continue;
        };
        let weights: Vec<(Address, u128)> = valuation
            .owners
            .iter()
            .map(|o| (o.address, o.weight))
            .collect();
        let Some(parts) = super::split(amount, &weights) else {
            continue;
        };
        for (who, part) in parts {
            super::credit(ctx, super::Class::Data, who, part)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tabular_shipped_datasets_with_owners_are_valued() {
        let a = Address([1; 32]);
        assert!(value("iris", &[]).unwrap_err().contains("no owners"));
        assert!(value("nope", &[a]).is_err());
        assert!(
            value("liber-primus", &[a]).is_err(),
            "text has no KNN value"
        );
        let (key, bytes) = value("iris", &[a, Address([2; 32])]).unwrap();
        assert!(key.starts_with(DATA_PREFIX));
        let v: DataValuation = borsh::from_slice(&bytes).unwrap();
        let sum: i128 = v
            .owners
            .iter()
            .map(|o| o.value.parse::<i128>().unwrap())
            .sum();
        assert_eq!(sum.to_string(), v.utility);
        assert_eq!(v.owners.len(), 2);
    }
}
