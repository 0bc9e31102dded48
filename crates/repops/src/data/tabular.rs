//! Tabular datasets in training form: f32 feature matrices, labels, targets, the
//! content-hash train/eval split and train-only standardisation.
//!
//! Owns: [`TabularDataset`], [`TabularSplit`], [`Standardizer`], [`in_eval_split`].
//! Invariants: train and eval are disjoint and together hold every record; which side a
//! record is on depends only on its bytes; standardisation statistics come from the train
//! split alone, so nothing about eval leaks into training.
//!
//! # Split rule
//!
//! A record goes to eval iff `u64_le(blake3(record bytes)[0..8]) mod 1000 < eval_permille`.
//! A content hash rather than a seeded shuffle, because it is stable when providers add
//! records: existing records never change side, so an evaluation set stays comparable
//! across dataset versions, and identical records (iris has some) always land together and
//! cannot leak from train to eval. The price is that the eval fraction is only close to
//! `eval_permille / 1000`, not exact.
//!
//! # Standardisation
//!
//! For each feature `j`, in f64 and in record order: `mean = sum(x) / n`,
//! `std = sqrt(sum((x - mean)^2) / n)` (population), `std = 1` where it is 0; then
//! `z = ((x as f64 - mean) / std) as f32`. Targets, when present, are standardised the same
//! way. Each sum runs sequentially in one fixed order with IEEE operations only, so every
//! machine computes the same bits.

use super::dataset::Dataset;
use super::error::{DataError, Result};
use super::format::{Record, RecordKind, Schema};

/// Per-mille of records [`TabularSplit::from_dataset`] puts in eval by default (20%).
pub const EVAL_PERMILLE_DEFAULT: u32 = 200;

/// Whether a record with these canonical bytes' hash belongs to the eval split.
pub fn in_eval_split(record: &Record, eval_permille: u32) -> bool {
    let hash = record.content_hash();
    let head = u64::from_le_bytes(hash.0[..8].try_into().expect("8 bytes"));
    head % 1000 < u64::from(eval_permille)
}

/// A tabular dataset as training reads it: a row-major feature matrix and per-row labels.
#[derive(Clone, Debug, PartialEq)]
pub struct TabularDataset {
    /// Dataset name.
    pub name: String,
    /// Features per row.
    pub n_features: u32,
    /// Number of classes; labels are below it.
    pub n_classes: u32,
    /// `rows * n_features` values, row-major.
    pub features: Vec<f32>,
    /// One class label per row.
    pub labels: Vec<u32>,
    /// One regression target per row, for datasets that have them.
    pub targets: Option<Vec<f32>>,
}

impl TabularDataset {
    fn empty(name: &str, schema: &Schema) -> Self {
        Self {
            name: name.to_owned(),
            n_features: schema.n_features,
            n_classes: schema.n_classes,
            features: Vec::new(),
            labels: Vec::new(),
            targets: schema.has_target.then(Vec::new),
        }
    }

    fn push(&mut self, record: &Record) {
        let Record::Tabular {
            features,
            label,
            target,
        } = record
        else {
            unreachable!("checked to be tabular by the dataset's schema");
        };
        self.features.extend_from_slice(features);
        self.labels.push(*label);
        if let (Some(targets), Some(target)) = (&mut self.targets, target) {
            targets.push(*target);
        }
    }

    /// Every record of a tabular `dataset`, unstandardised, in dataset order.
    pub fn from_dataset(dataset: &Dataset) -> Result<Self> {
        let schema = tabular_schema(dataset)?;
        let mut table = Self::empty(dataset.name(), schema);
        dataset.records().for_each(|r| table.push(r));
        Ok(table)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The features of row `row`.
    ///
    /// # Panics
    /// If `row >= self.len()`.
    pub fn row(&self, row: usize) -> &[f32] {
        let width = self.n_features as usize;
        &self.features[row * width..(row + 1) * width]
    }

    /// Copies rows `indices` into `features` (`indices.len() * n_features`) and `labels`
    /// (`indices.len()`), without allocating.
    pub fn gather_into(
        &self,
        indices: &[u32],
        features: &mut [f32],
        labels: &mut [u32],
    ) -> Result<()> {
        let width = self.n_features as usize;
        check_len("features", indices.len() * width, features.len())?;
        check_len("labels", indices.len(), labels.len())?;
        self.check_indices(indices)?;
        for ((&row, out), label) in indices
            .iter()
            .zip(features.chunks_exact_mut(width))
            .zip(labels)
        {
            out.copy_from_slice(self.row(row as usize));
            *label = self.labels[row as usize];
        }
        Ok(())
    }

    /// Copies the regression targets of rows `indices` into `targets`.
    pub fn gather_targets_into(&self, indices: &[u32], targets: &mut [f32]) -> Result<()> {
        let Some(all) = &self.targets else {
            let reason = format!("dataset `{}` has no regression targets", self.name);
            return Err(DataError::InvalidArgument {
                what: "targets",
                reason,
            });
        };
        check_len("targets", indices.len(), targets.len())?;
        self.check_indices(indices)?;
        for (&row, out) in indices.iter().zip(targets) {
            *out = all[row as usize];
        }
        Ok(())
    }

    fn check_indices(&self, indices: &[u32]) -> Result<()> {
        match indices.iter().find(|&&i| i as usize >= self.len()) {
            Some(&bad) => Err(DataError::InvalidArgument {
                what: "row index",
                reason: format!("{bad} is not below {} rows", self.len()),
            }),
            None => Ok(()),
        }
    }
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(DataError::BufferSize {
        what,
        expected: expected as u64,
        actual: actual as u64,
    })
}

fn tabular_schema(dataset: &Dataset) -> Result<&Schema> {
    let schema = dataset.schema();
    if schema.kind != RecordKind::Tabular {
        return Err(DataError::KindMismatch {
            name: dataset.name().to_owned(),
            expected: RecordKind::Tabular.name(),
            found: schema.kind.name(),
        });
    }
    Ok(schema)
}

/// Mean and standard deviation of one column, sequentially in f64 (see the module docs).
fn column_stats(values: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let (mut sum, mut n) = (0.0f64, 0u64);
    for value in values.clone() {
        sum += f64::from(value);
        n += 1;
    }
    assert!(n > 0, "statistics of an empty column");
    let mean = sum / n as f64;
    let mut squares = 0.0f64;
    for value in values {
        let d = f64::from(value) - mean;
        squares += d * d;
    }
    let std = (squares / n as f64).sqrt();
    (mean, if std > 0.0 { std } else { 1.0 })
}

/// Per-feature (and target) statistics of a train split.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Population standard deviation of each feature (1 where it was 0).
    pub std: Vec<f64>,
    /// Mean and standard deviation of the regression target, if any.
    pub target: Option<(f64, f64)>,
}

impl Standardizer {
    /// Statistics of `train`, which must have at least one row.
    pub fn fit(train: &TabularDataset) -> Self {
        assert!(!train.is_empty(), "fit needs rows");
        let width = train.n_features as usize;
        let (mean, std) = (0..width)
            .map(|j| column_stats(train.features.iter().skip(j).step_by(width).copied()))
            .unzip();
        let target = train
            .targets
            .as_ref()
            .map(|t| column_stats(t.iter().copied()));
        Self { mean, std, target }
    }

    /// Standardises `table`'s features (and targets) in place.
    pub fn apply(&self, table: &mut TabularDataset) {
        assert_eq!(self.mean.len(), table.n_features as usize);
        let width = table.n_features as usize;
        for row in table.features.chunks_exact_mut(width) {
            for ((value, mean), std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *value = ((f64::from(*value) - mean) / std) as f32;
            }
        }
        if let (Some(targets), Some((mean, std))) = (&mut table.targets, self.target) {
            for value in targets {
                *value = ((f64::from(*value) - mean) / std) as f32;
            }
        }
    }

    /// Maps a standardised target back to the original units (in f64).
    pub fn unstandardise_target(&self, value: f32) -> Option<f64> {
        self.target.map(|(mean, std)| f64::from(value) * std + mean)
    }
}

/// A tabular dataset split into train and eval, both standardised with train statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct TabularSplit {
    /// Training rows, in dataset order.
    pub train: TabularDataset,
    /// Evaluation rows, in dataset order.
    pub eval: TabularDataset,
    /// The statistics both were standardised with.
    pub standardizer: Standardizer,
}

impl TabularSplit {
    /// Splits `dataset` by content hash (`eval_permille` of 1000 to eval) and standardises.
    pub fn from_dataset(dataset: &Dataset, eval_permille: u32) -> Result<Self> {
        if eval_permille > 1000 {
            let reason = format!("{eval_permille} is over 1000");
            return Err(DataError::InvalidArgument {
                what: "eval_permille",
                reason,
            });
        }
        let schema = tabular_schema(dataset)?;
        let mut train = TabularDataset::empty(dataset.name(), schema);
        let mut eval = TabularDataset::empty(dataset.name(), schema);
        for record in dataset.records() {
            let side = if in_eval_split(record, eval_permille) {
                &mut eval
            } else {
                &mut train
            };
            side.push(record);
        }
        for (table, what) in [(&train, "train split"), (&eval, "eval split")] {
            if table.is_empty() {
                return Err(DataError::Empty {
                    name: dataset.name().to_owned(),
                    what,
                });
            }
        }
        assert_eq!(train.len() + eval.len(), dataset.record_count() as usize);
        let standardizer = Standardizer::fit(&train);
        standardizer.apply(&mut train);
        standardizer.apply(&mut eval);
        Ok(Self {
            train,
            eval,
            standardizer,
        })
    }
}
