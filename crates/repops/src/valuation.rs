//! Exact KNN-Shapley data valuation (Jia et al., "Efficient task-specific data valuation for
//! nearest neighbor algorithms", PVLDB 2019), deterministic and in fixed point, so that every
//! validator recomputes the same values bit for bit inside consensus.
//!
//! Owns: [`knn_shapley`] (the value of every shard and provider of a tabular [`Dataset`]) and
//! [`leave_one_shard_out`] (the cheaper, non-Shapley baseline, for comparison and checks).
//!
//! # What is computed
//!
//! 1. **Split.** Walking the records in dataset order (shards as the manifest lists them,
//!    then record order), a record with [`in_eval_split`]`(r, eval_permille)` is an eval
//!    candidate and the others are training points, each remembering its shard. The first
//!    [`ValuationParams::eval_max`] eval candidates that are not copies (step 3) are the eval
//!    points; later eval candidates are ignored (they are neither eval nor train points).
//! 2. **Quantization.** For feature `j`, `min_j` and `max_j` are taken over ALL records of
//!    the dataset (train and eval, copies included), comparing f32 values. Each value becomes
//!    `q = round((x - min_j) / (max_j - min_j) * 65535)` evaluated in f64 from the f32 values
//!    (`f64::from` is exact; `-`, `/`, `*` are IEEE-754 basic operations, correctly rounded,
//!    hence identical on every conforming machine; `f64::round` rounds half away from zero
//!    and is exact), then clamped to `0..=65535`; `q = 0` for every record when
//!    `max_j == min_j`. From here on everything is integer arithmetic: distances are squared
//!    Euclidean over `q` in `u64` (at most `65536 * 65535^2 < 2^48`).
//! 3. **Copies.** A record's *grid key* is BLAKE3 of a domain tag and its quantized features
//!    reduced to [`ValuationParams::grid_bits`] bits (`q >> (16 - grid_bits)`, as `u16` LE);
//!    the label is NOT part of the key, so a label-flipped copy is a copy. Walking all
//!    records in dataset order, a record whose key was already seen (on either side of the
//!    split) is a copy: a copied training point is dropped (value 0) and counted in its
//!    shard's [`ShardValue::duplicates`]; a copied eval candidate is skipped. The first record
//!    of each key wins, so re-uploading a shard, by the same or another provider, in the same
//!    or another record order, with or without flipped labels, earns nothing; nor can a
//!    training point sit on top of an eval point.
//! 4. **KNN-Shapley.** Let `N` be the kept training points and `K` = [`ValuationParams::k`].
//!    For each eval point `t`, the kept points are ranked by `(distance to t, record content
//!    hash)` ascending (the content hash, [`Record::content_hash`], breaks distance ties, so
//!    the ranking does not depend on shard order; equal hashes would mean equal records,
//!    which step 3 already removed). With `m_i = 1[y_i == y_t]` at rank `i` (1-based) and
//!    `m_{N+1} = 0`, the exact Shapley value of the point at rank `i` for the utility
//!    `u(S) = (1/K) * #matches among the min(K, |S|) nearest of S` is
//!    `s_i = sum_{j >= i} (m_j - m_{j+1}) * min(K, j) / (K * j)`, i.e. the paper's recursion
//!    `s_i = s_{i+1} + (m_i - m_{i+1}) / K * min(K, i) / i` started from
//!    `s_N = m_N * min(K, N) / (K * N)` (= `m_N / N` when `N >= K`; the `min` makes it exact
//!    also when there are fewer than `K` points).
//! 5. **Fixed point.** Values are integers with `1.0 =` [`VALUE_SCALE`]. Each term
//!    `(m_j - m_{j+1}) * min(K, j) / (K * j)` is computed at the finer scale
//!    `VALUE_SCALE * 2^40` and floor-divided (`div_euclid`, i.e. rounded toward -inf); the
//!    running sum is exact; `s_i = floor(running sum / 2^40)`. The utility of `t` is
//!    `u_t = floor(VALUE_SCALE * matches / K)`. Each `s_i` lies within one unit below the
//!    exact value, so the residual `u_t - sum_i s_i` is in `0..=N` units (for `N < 2^40`);
//!    it is added to the rank-1 (nearest) point, so `sum_i s_i == u_t` EXACTLY for every `t`.
//!    The total utility is `U = sum_t u_t`, a point's value is `sum_t s_i(t)`, a shard's value
//!    is the sum over its points, and `sum of shard values == U` exactly.
//! 6. **Providers.** A provider's value is the sum of its shards' values. Its payout weight is
//!    `max(0, value)`, then capped at `floor(P * provider_cap_bps / 10000)` where `P` is the
//!    sum of all uncapped weights (computed once, before capping). What a capped provider
//!    loses is not redistributed: the weights sum to at most `P`. (If a payout splits a pool
//!    in proportion to the weights, a capped provider's share of that pool can still exceed
//!    `provider_cap_bps`; the cap bounds its weight against the value of all data.)
//!
//! # Invariants
//!
//! The result is a pure function of the dataset's records, shard order and providers, and
//! of the parameters; no hash map is iterated; every sum after quantization is an exact
//! integer sum (checked for overflow, though with `i128` and the format's caps it cannot
//! overflow), so the order of additions does not matter either.
//!
//! # Cost
//!
//! With `R` records, `F` features, `N` kept training points and `M` eval points: `O(R * F)`
//! to quantize and find copies, `O(N log N)` to sort by hash, then per eval point `O(N * F)`
//! for distances, `O(N log N)` to sort and `O(N)` for the recursion: `O(M * N * (F + log N))`
//! time in all, `O((N + M) * F)` memory. One thread.

use std::collections::{BTreeMap, BTreeSet};

use crate::data::Dataset;
use crate::data::format::{ProviderId, Record, RecordKind};
use crate::data::tabular::{EVAL_PERMILLE_DEFAULT, in_eval_split};

/// Fixed-point scale of values: 1.0 = VALUE_SCALE.
pub const VALUE_SCALE: i128 = 1_000_000_000_000;

/// Extra fractional bits the recursion runs with before each value is floored to
/// [`VALUE_SCALE`].
const GUARD_BITS: u32 = 40;

/// Domain tag of the near-duplicate grid key.
const GRID_KEY_DOMAIN: &[u8] = b"poi/repops/valuation/grid-key/v1";

/// Largest quantized feature value.
const Q_MAX: u32 = 65_535;

/// Parameters of [`knn_shapley`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValuationParams {
    /// Neighbours of the KNN classifier (default 5); at least 1.
    pub k: u32,
    /// Per-mille of records in the eval split (default [`EVAL_PERMILLE_DEFAULT`]); at most
    /// 1000.
    pub eval_permille: u32,
    /// Most eval points: the first ones in dataset order (default 400); at least 1.
    pub eval_max: u32,
    /// Bits per feature of the near-duplicate grid (default 8); `1..=16`.
    pub grid_bits: u32,
    /// Cap of one provider's payout weight in basis points of the total positive value
    /// (default 5000); `1..=10000`.
    pub provider_cap_bps: u32,
}

impl Default for ValuationParams {
    fn default() -> Self {
        Self {
            k: 5,
            eval_permille: EVAL_PERMILLE_DEFAULT,
            eval_max: 400,
            grid_bits: 8,
            provider_cap_bps: 5000,
        }
    }
}

/// The value of one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardValue {
    /// Position of the shard in the manifest.
    pub index: u32,
    /// Who contributed it.
    pub provider: ProviderId,
    /// Its training records (eval-split records excluded), copies included.
    pub records: u32,
    /// Of those, how many were dropped as copies of earlier records.
    pub duplicates: u32,
    /// Sum of its kept training points' values, in [`VALUE_SCALE`] units.
    pub value: i128,
}

/// The value of one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderValue {
    /// The provider.
    pub provider: ProviderId,
    /// Sum of its shards' values, in [`VALUE_SCALE`] units.
    pub value: i128,
    /// Payout weight: `max(0, value)`, capped (see the module docs).
    pub weight: u128,
}

/// The result of [`knn_shapley`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valuation {
    /// Total utility `U`: the sum over eval points of the KNN accuracy term, in
    /// [`VALUE_SCALE`] units; equals the sum of the shard values and of the provider values.
    pub utility: i128,
    /// Number of eval points used.
    pub eval_points: u32,
    /// One entry per shard, in manifest order.
    pub shards: Vec<ShardValue>,
    /// One entry per provider, sorted by provider id.
    pub providers: Vec<ProviderValue>,
}

/// The result of [`leave_one_shard_out`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveOneOut {
    /// Utility with every kept training point (equals [`Valuation::utility`]).
    pub utility: i128,
    /// Per shard in manifest order: `utility - utility without that shard's points`.
    pub shards: Vec<i128>,
}

/// Why a valuation could not be computed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValuationError {
    /// The dataset does not hold tabular records.
    #[error("dataset `{name}` holds {found} records, valuation needs tabular ones")]
    NotTabular {
        /// The dataset's name.
        name: String,
        /// The kind found.
        found: &'static str,
    },
    /// A parameter is out of range.
    #[error("invalid valuation parameter {what}: {reason}")]
    InvalidParams {
        /// Which parameter.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No training point is left.
    #[error("dataset `{name}` has no training records")]
    NoTrain {
        /// The dataset's name.
        name: String,
    },
    /// No eval point is left.
    #[error("dataset `{name}` has no eval records")]
    NoEval {
        /// The dataset's name.
        name: String,
    },
    /// An integer sum overflowed (not reachable within the dataset format's caps).
    #[error("arithmetic overflow in {what}")]
    Overflow {
        /// Which sum.
        what: &'static str,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, ValuationError>;

/// The dataset reduced to integers: kept training points sorted by content hash, eval
/// points in dataset order, per-shard counts.
struct Prepared {
    n_features: usize,
    /// Kept training points, `n_train * n_features`, in content-hash order.
    train_q: Vec<u16>,
    train_label: Vec<u32>,
    train_shard: Vec<u32>,
    /// Eval points, `n_eval * n_features`, in dataset order.
    eval_q: Vec<u16>,
    eval_label: Vec<u32>,
    /// Per shard: training records and copies among them.
    shard_records: Vec<u32>,
    shard_duplicates: Vec<u32>,
}

impl Prepared {
    fn n_train(&self) -> usize {
        self.train_label.len()
    }

    fn n_eval(&self) -> usize {
        self.eval_label.len()
    }

    fn train_row(&self, i: usize) -> &[u16] {
        &self.train_q[i * self.n_features..(i + 1) * self.n_features]
    }

    fn eval_row(&self, t: usize) -> &[u16] {
        &self.eval_q[t * self.n_features..(t + 1) * self.n_features]
    }
}

fn invalid(what: &'static str, reason: String) -> ValuationError {
    ValuationError::InvalidParams { what, reason }
}

fn check_params(params: &ValuationParams) -> Result<()> {
    if params.k == 0 {
        return Err(invalid("k", "must be at least 1".into()));
    }
    if params.eval_permille > 1000 {
        let reason = format!("{} is over 1000", params.eval_permille);
        return Err(invalid("eval_permille", reason));
    }
    if params.eval_max == 0 {
        return Err(invalid("eval_max", "must be at least 1".into()));
    }
    if !(1..=16).contains(&params.grid_bits) {
        let reason = format!("{} is not in 1..=16", params.grid_bits);
        return Err(invalid("grid_bits", reason));
    }
    if !(1..=10_000).contains(&params.provider_cap_bps) {
        let reason = format!("{} is not in 1..=10000", params.provider_cap_bps);
        return Err(invalid("provider_cap_bps", reason));
    }
    Ok(())
}

fn features_of<'a>(dataset: &Dataset, record: &'a Record) -> Result<(&'a [f32], u32)> {
    match record {
        Record::Tabular {
            features, label, ..
        } => Ok((features, *label)),
        Record::Text(_) => Err(ValuationError::NotTabular {
            name: dataset.name().to_owned(),
            found: RecordKind::Text.name(),
        }),
    }
}

/// `round((x - min) / (max - min) * 65535)` in f64, clamped (see the module docs).
fn quantize(x: f32, min: f32, max: f32) -> u16 {
    if max <= min {
        return 0;
    }
    let (x, min, max) = (f64::from(x), f64::from(min), f64::from(max));
    let q = ((x - min) / (max - min) * f64::from(Q_MAX)).round();
    q.clamp(0.0, f64::from(Q_MAX)) as u16
}

fn prepare(dataset: &Dataset, params: &ValuationParams) -> Result<Prepared> {
    check_params(params)?;
    let schema = dataset.schema();
    if schema.kind != RecordKind::Tabular {
        return Err(ValuationError::NotTabular {
            name: dataset.name().to_owned(),
            found: schema.kind.name(),
        });
    }
    let width = schema.n_features as usize;
    let shard_count = dataset.manifest().shards.len();

    // Per-feature range over every record, in f32.
    let mut min = vec![f32::INFINITY; width];
    let mut max = vec![f32::NEG_INFINITY; width];
    for record in dataset.records() {
        let (features, _) = features_of(dataset, record)?;
        for ((value, lo), hi) in features.iter().zip(&mut min).zip(&mut max) {
            *lo = lo.min(*value);
            *hi = hi.max(*value);
        }
    }

    let shift = 16 - params.grid_bits;
    let mut seen = BTreeSet::new();
    let mut q = vec![0u16; width];
    let mut key_bytes = Vec::with_capacity(GRID_KEY_DOMAIN.len() + 2 * width);
    let mut train = Vec::new(); // (content hash, q, label, shard)
    let (mut eval_q, mut eval_label) = (Vec::new(), Vec::new());
    let mut shard_records = vec![0u32; shard_count];
    let mut shard_duplicates = vec![0u32; shard_count];
    for shard in 0..shard_count {
        let records = dataset.shard_records(shard).unwrap_or(&[]);
        for record in records {
            let (features, label) = features_of(dataset, record)?;
            for (j, out) in q.iter_mut().enumerate() {
                *out = quantize(features[j], min[j], max[j]);
            }
            key_bytes.clear();
            key_bytes.extend_from_slice(GRID_KEY_DOMAIN);
            for value in &q {
                key_bytes.extend_from_slice(&(value >> shift).to_le_bytes());
            }
            let fresh = seen.insert(*blake3::hash(&key_bytes).as_bytes());
            if in_eval_split(record, params.eval_permille) {
                if fresh && eval_label.len() < params.eval_max as usize {
                    eval_q.extend_from_slice(&q);
                    eval_label.push(label);
                }
            } else {
                shard_records[shard] += 1;
                if fresh {
                    train.push((record.content_hash(), q.clone(), label, shard as u32));
                } else {
                    shard_duplicates[shard] += 1;
                }
            }
        }
    }
    if train.is_empty() {
        return Err(ValuationError::NoTrain {
            name: dataset.name().to_owned(),
        });
    }
    if eval_label.is_empty() {
        return Err(ValuationError::NoEval {
            name: dataset.name().to_owned(),
        });
    }
    // Content-hash order, so that a point's index is its tie-break rank. Hashes are distinct
    // (equal records share a grid key); the shard index makes the order total regardless.
    train.sort_unstable_by_key(|a| (a.0, a.3));
    let mut train_q = Vec::with_capacity(train.len() * width);
    let (mut train_label, mut train_shard) = (Vec::new(), Vec::new());
    for (_, q, label, shard) in train {
        train_q.extend_from_slice(&q);
        train_label.push(label);
        train_shard.push(shard);
    }
    Ok(Prepared {
        n_features: width,
        train_q,
        train_label,
        train_shard,
        eval_q,
        eval_label,
        shard_records,
        shard_duplicates,
    })
}

fn distance(a: &[u16], b: &[u16]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = u64::from(x.abs_diff(y));
            d * d
        })
        .sum()
}

/// Fills `keys` with `distance << 64 | index` for every kept training point (distances are
/// below 2^48 and indices below 2^36, so keys are distinct and order by distance, then
/// content hash).
fn fill_keys(prepared: &Prepared, t: usize, keys: &mut Vec<u128>) {
    let point = prepared.eval_row(t);
    keys.clear();
    keys.extend(
        (0..prepared.n_train())
            .map(|i| (u128::from(distance(prepared.train_row(i), point)) << 64) | i as u128),
    );
}

fn key_index(key: u128) -> usize {
    (key as u64) as usize
}

/// `floor(VALUE_SCALE * matches / k)`.
fn point_utility(matches: u64, k: u32) -> i128 {
    (VALUE_SCALE * i128::from(matches)).div_euclid(i128::from(k))
}

fn add(a: i128, b: i128, what: &'static str) -> Result<i128> {
    a.checked_add(b).ok_or(ValuationError::Overflow { what })
}

/// Exact KNN-Shapley values of every shard and provider of `dataset` (see the module docs
/// for the split, the quantization, the copy rule, the rounding and the cap).
pub fn knn_shapley(dataset: &Dataset, params: &ValuationParams) -> Result<Valuation> {
    let prepared = prepare(dataset, params)?;
    let n = prepared.n_train();
    let k = i128::from(params.k);
    let fine = VALUE_SCALE << GUARD_BITS;
    let mut point_values = vec![0i128; n];
    let mut utility = 0i128;
    let mut keys = Vec::with_capacity(n);
    for t in 0..prepared.n_eval() {
        fill_keys(&prepared, t, &mut keys);
        keys.sort_unstable();
        let y_t = prepared.eval_label[t];
        let matches = |rank: usize| i128::from(prepared.train_label[key_index(keys[rank])] == y_t);
        // Ranks are 1-based in the docs; `rank` here is 0-based, j = rank + 1.
        let mut running = 0i128;
        let mut sum = 0i128;
        let mut next_match = 0i128;
        for rank in (0..n).rev() {
            let m = matches(rank);
            let diff = m - next_match;
            next_match = m;
            if diff != 0 {
                let j = rank as i128 + 1;
                let numerator = (fine * diff)
                    .checked_mul(k.min(j))
                    .ok_or(ValuationError::Overflow { what: "term" })?;
                let denominator = k
                    .checked_mul(j)
                    .ok_or(ValuationError::Overflow { what: "term" })?;
                running = add(running, numerator.div_euclid(denominator), "running sum")?;
            }
            let value = running.div_euclid(1 << GUARD_BITS);
            let index = key_index(keys[rank]);
            point_values[index] = add(point_values[index], value, "point value")?;
            sum = add(sum, value, "eval point sum")?;
        }
        let nearest = keys.iter().take(params.k as usize);
        let hits = nearest
            .filter(|&&key| prepared.train_label[key_index(key)] == y_t)
            .count() as u64;
        let u_t = point_utility(hits, params.k);
        let first = key_index(keys[0]);
        point_values[first] = add(point_values[first], u_t - sum, "point value")?;
        utility = add(utility, u_t, "utility")?;
    }

    let mut shard_value = vec![0i128; prepared.shard_records.len()];
    for (value, &shard) in point_values.iter().zip(&prepared.train_shard) {
        let slot = &mut shard_value[shard as usize];
        *slot = add(*slot, *value, "shard value")?;
    }
    let entries = &dataset.manifest().shards;
    let shards: Vec<ShardValue> = (0u32..)
        .zip(entries)
        .map(|(index, entry)| ShardValue {
            index,
            provider: entry.provider,
            records: prepared.shard_records[index as usize],
            duplicates: prepared.shard_duplicates[index as usize],
            value: shard_value[index as usize],
        })
        .collect();
    debug_assert_eq!(
        shards.iter().map(|s| s.value).sum::<i128>(),
        utility,
        "shard values sum to the utility"
    );
    let providers = provider_values(&shards, params.provider_cap_bps)?;
    Ok(Valuation {
        utility,
        eval_points: prepared.n_eval() as u32,
        shards,
        providers,
    })
}

/// Sums shard values per provider and computes the capped payout weights.
fn provider_values(shards: &[ShardValue], cap_bps: u32) -> Result<Vec<ProviderValue>> {
    let mut values = BTreeMap::new();
    for shard in shards {
        let slot = values.entry(shard.provider).or_insert(0i128);
        *slot = add(*slot, shard.value, "provider value")?;
    }
    let overflow = ValuationError::Overflow {
        what: "payout weights",
    };
    let mut total: u128 = 0;
    for value in values.values() {
        let weight = u128::try_from((*value).max(0)).map_err(|_| overflow.clone())?;
        total = total.checked_add(weight).ok_or(overflow.clone())?;
    }
    let cap = total.checked_mul(u128::from(cap_bps)).ok_or(overflow)? / 10_000;
    Ok(values
        .into_iter()
        .map(|(provider, value)| ProviderValue {
            provider,
            value,
            weight: (value.max(0) as u128).min(cap),
        })
        .collect())
}

/// The KNN utility of the kept training points with and without each shard: `S + 1` KNN
/// evaluations (each a distance pass and a top-K selection per eval point), with the same
/// split, quantization, copy rule, tie-break and per-point utility as [`knn_shapley`]. The
/// cheapest per-shard contribution, but not a Shapley value: it misses what redundant shards
/// are worth together. Cost `O((S + 1) * M * N * F)`.
pub fn leave_one_shard_out(dataset: &Dataset, params: &ValuationParams) -> Result<LeaveOneOut> {
    let prepared = prepare(dataset, params)?;
    let shard_count = prepared.shard_records.len();
    let k = params.k as usize;
    let mut keys = Vec::with_capacity(prepared.n_train());
    let mut utility_without = |skip: Option<u32>| -> Result<i128> {
        let mut utility = 0i128;
        for t in 0..prepared.n_eval() {
            let point = prepared.eval_row(t);
            keys.clear();
            keys.extend(
                (0..prepared.n_train())
                    .filter(|&i| Some(prepared.train_shard[i]) != skip)
                    .map(|i| {
                        (u128::from(distance(prepared.train_row(i), point)) << 64) | i as u128
                    }),
            );
            if keys.len() > k {
                keys.select_nth_unstable(k - 1);
                keys.truncate(k);
            }
            let y_t = prepared.eval_label[t];
            let hits = keys
                .iter()
                .filter(|&&key| prepared.train_label[key_index(key)] == y_t)
                .count() as u64;
            utility = add(utility, point_utility(hits, params.k), "utility")?;
        }
        Ok(utility)
    };
    let utility = utility_without(None)?;
    let mut shards = Vec::with_capacity(shard_count);
    for shard in 0..shard_count as u32 {
        shards.push(utility - utility_without(Some(shard))?);
    }
    Ok(LeaveOneOut { utility, shards })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_maps_the_range_onto_16_bits() {
        assert_eq!(quantize(1.0, 1.0, 3.0), 0);
        assert_eq!(quantize(3.0, 1.0, 3.0), 65_535);
        // 0.5 * 65535 = 32767.5 rounds half away from zero.
        assert_eq!(quantize(2.0, 1.0, 3.0), 32_768);
        assert_eq!(quantize(5.0, 5.0, 5.0), 0);
    }

    #[test]
    fn cap_limits_one_provider_and_floors() {
        let shard = |p: u8, value: i128| ShardValue {
            index: 0,
            provider: ProviderId([p; 32]),
            records: 1,
            duplicates: 0,
            value,
        };
        let shards = [shard(2, 70), shard(1, 31), shard(3, -5), shard(2, 10)];
        let providers = provider_values(&shards, 5000).unwrap();
        let got: Vec<(u8, i128, u128)> = providers
            .iter()
            .map(|p| (p.provider.0[0], p.value, p.weight))
            .collect();
        // Total positive value 80 + 31 = 111; cap floor(111 * 5000 / 10000) = 55.
        assert_eq!(got, vec![(1, 31, 31), (2, 80, 55), (3, -5, 0)]);
    }

    #[test]
    fn fixed_point_terms_floor_toward_minus_infinity() {
        assert_eq!((-7i128).div_euclid(3), -3);
        assert_eq!(point_utility(2, 3), 666_666_666_666);
        assert_eq!(point_utility(3, 3), VALUE_SCALE);
    }
}
