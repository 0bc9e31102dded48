//! Real datasets that ship inside crates (no download), converted to the dataset format.
//!
//! Owns: the conversion of `linfa-datasets` tables and `lipsum::LIBER_PRIMUS` to records.
//! Invariant: each conversion is a pure function of the embedded data, so each shipped
//! dataset has one dataset id on every machine (pinned in `tests/data.rs`).
//!
//! - `iris`: 150 rows, 4 features (cm), 3 classes (setosa, versicolor, virginica).
//! - `winequality-red`: 1599 red wines, 11 physico-chemical features, quality scores
//!   3..=8 (the six that occur) mapped to classes `score - 3`, so 6 classes.
//! - `diabetes`: 441 patients (see [`DIABETES_ROWS`]), 10 features (as scaled by scikit-learn), a regression target
//!   (disease progression after one year, 25..346) and a binary label "target above the
//!   median of all 441 targets" (median = mean of the two middle values in f64; a target
//!   equal to the median is class 0). The median is taken over the whole shipped table,
//!   not the train split, because the label is part of each record and the split is
//!   decided by the record's bytes.
//! - `liber-primus`: Cicero, *De finibus bonorum et malorum*, book 1 (49,068 ASCII
//!   characters); one text record per paragraph (split after each blank line, so the
//!   records concatenate back to the exact text).
//!
//! Source floats are f64; they are cast to f32 (round to nearest) when records are made.
//! Every shipped shard is contributed by [`ProviderId::SHIPPED`].

use super::dataset::{Dataset, DatasetBuilder};
use super::error::{DataError, Result};
use super::format::{ProviderId, Record, Schema};
use super::tabular::{EVAL_PERMILLE_DEFAULT, TabularSplit};
use super::text::TextCorpus;

/// Records per shard of the shipped datasets.
pub const SHIPPED_RECORDS_PER_SHARD: u32 = 256;

/// Lowest wine quality score in the red wine table; class = score - this.
pub const WINE_QUALITY_MIN: usize = 3;
/// Highest wine quality score in the red wine table.
pub const WINE_QUALITY_MAX: usize = 8;

/// Names of the shipped datasets, in a fixed order.
pub const SHIPPED_NAMES: [&str; 4] = ["iris", "winequality-red", "diabetes", "liber-primus"];

fn f32_row<'a>(row: impl IntoIterator<Item = &'a f64>) -> Vec<f32> {
    row.into_iter().map(|&v| v as f32).collect()
}

fn build(name: &str, schema: Schema, records: Vec<Record>) -> Result<Dataset> {
    let mut builder = DatasetBuilder::new(name, schema)?;
    builder.add_records(ProviderId::SHIPPED, records, SHIPPED_RECORDS_PER_SHARD)?;
    builder.build()
}

/// The iris flowers in the dataset format.
pub fn iris_dataset() -> Result<Dataset> {
    let table = linfa_datasets::iris();
    let records = table
        .records
        .rows()
        .into_iter()
        .zip(table.targets.iter())
        .map(|(row, &class)| Record::Tabular {
            features: f32_row(row),
            label: class as u32,
            target: None,
        })
        .collect();
    build("iris", Schema::tabular(4, 3, false), records)
}

/// The red wine quality table in the dataset format.
pub fn winequality_dataset() -> Result<Dataset> {
    let table = linfa_datasets::winequality();
    let mut records = Vec::with_capacity(table.targets.len());
    for (row, (features, &score)) in
        (0u64..).zip(table.records.rows().into_iter().zip(table.targets.iter()))
    {
        if !(WINE_QUALITY_MIN..=WINE_QUALITY_MAX).contains(&score) {
            let reason = format!("quality {score} outside {WINE_QUALITY_MIN}..={WINE_QUALITY_MAX}");
            return Err(DataError::Source {
                dataset: "winequality-red",
                row,
                reason,
            });
        }
        let label = (score - WINE_QUALITY_MIN) as u32;
        records.push(Record::Tabular {
            features: f32_row(features),
            label,
            target: None,
        });
    }
    let classes = (WINE_QUALITY_MAX - WINE_QUALITY_MIN + 1) as u32;
    build(
        "winequality-red",
        Schema::tabular(11, classes, false),
        records,
    )
}

/// The median of `values` (mean of the two middle values for an even count).
fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty());
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Patients in the diabetes table as `linfa-datasets` 0.8 ships it: 441 of the 442 in the
/// original data. Its CSV files have no header line but `linfa_datasets::diabetes` reads them
/// as if they had one, so the first patient is dropped. We take the rows exactly as the
/// dependency provides them (the repository holds no data of its own); if a fixed release
/// returns 442 rows, the count check below fails loudly and this constant must move with it.
pub const DIABETES_ROWS: usize = 441;

/// The diabetes rows as (features, target).
fn diabetes_rows() -> Result<Vec<(Vec<f64>, f64)>> {
    let table = linfa_datasets::diabetes();
    let rows: Vec<(Vec<f64>, f64)> = table
        .records
        .rows()
        .into_iter()
        .zip(table.targets.iter())
        .map(|(row, &target)| (row.to_vec(), target))
        .collect();
    if rows.len() != DIABETES_ROWS || rows.iter().any(|(f, _)| f.len() != 10) {
        let reason = format!(
            "{} rows, expected {DIABETES_ROWS} of 10 features",
            rows.len()
        );
        return Err(DataError::Source {
            dataset: "diabetes",
            row: 0,
            reason,
        });
    }
    Ok(rows)
}

/// The diabetes table in the dataset format, with regression targets and the
/// above-median label.
pub fn diabetes_dataset() -> Result<Dataset> {
    let rows = diabetes_rows()?;
    let targets: Vec<f64> = rows.iter().map(|(_, target)| *target).collect();
    let cut = median(&targets);
    let records = rows
        .iter()
        .map(|(features, target)| Record::Tabular {
            features: f32_row(features),
            label: u32::from(*target > cut),
            target: Some(*target as f32),
        })
        .collect();
    build("diabetes", Schema::tabular(10, 2, true), records)
}

/// Cicero's *De finibus*, book 1, as text records (one per paragraph).
pub fn liber_primus_dataset() -> Result<Dataset> {
    let records = lipsum::LIBER_PRIMUS
        .split_inclusive("\n\n")
        .map(|p| Record::Text(p.to_owned()))
        .collect();
    build("liber-primus", Schema::text(), records)
}

/// The shipped dataset called `name` (one of [`SHIPPED_NAMES`]).
pub fn shipped_dataset(name: &str) -> Result<Dataset> {
    match name {
        "iris" => iris_dataset(),
        "winequality-red" => winequality_dataset(),
        "diabetes" => diabetes_dataset(),
        "liber-primus" => liber_primus_dataset(),
        _ => Err(DataError::InvalidArgument {
            what: "shipped dataset",
            reason: format!("`{name}` is not one of {SHIPPED_NAMES:?}"),
        }),
    }
}

/// Iris, split and standardised ([`EVAL_PERMILLE_DEFAULT`]).
pub fn iris() -> Result<TabularSplit> {
    TabularSplit::from_dataset(&iris_dataset()?, EVAL_PERMILLE_DEFAULT)
}

/// Red wine quality, split and standardised ([`EVAL_PERMILLE_DEFAULT`]).
pub fn winequality() -> Result<TabularSplit> {
    TabularSplit::from_dataset(&winequality_dataset()?, EVAL_PERMILLE_DEFAULT)
}

/// Diabetes, split and standardised, targets included ([`EVAL_PERMILLE_DEFAULT`]).
pub fn diabetes() -> Result<TabularSplit> {
    TabularSplit::from_dataset(&diabetes_dataset()?, EVAL_PERMILLE_DEFAULT)
}

/// *Liber primus* as a character-level corpus.
pub fn liber_primus() -> Result<TextCorpus> {
    TextCorpus::from_dataset(&liber_primus_dataset()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
