//! Training data: real datasets shipped in crates, the content-addressed sharded dataset
//! format data providers contribute in, deterministic splits and seeded data order.
//!
//! Stability: ALPHA; the shard and manifest encodings are versioned by their magic bytes
//! (`POISHRD1`, `POIDSET1`) and change only with them.
//!
//! Owns: records, shards, manifests and dataset ids; conversion of the shipped tables and
//! text; train/eval splits; standardisation; tokenization; which examples each step uses.
//!
//! Invariants:
//! - A dataset id is BLAKE3 of its manifest, which lists BLAKE3 of every shard: loading
//!   verifies both, so training reads exactly the bytes the id names.
//! - Everything a step reads (split membership, standardised values, batch indices, text
//!   windows) is a pure function of the dataset bytes, the seed and the step number, computed
//!   with sequential integer or IEEE arithmetic only.
//!
//! - [`format`](mod@format): [`Record`], [`Schema`], shard and [`Manifest`] encodings.
//! - [`dataset`]: [`Dataset`], [`DatasetBuilder`], [`write_dataset`], [`read_dataset`].
//! - [`tabular`]: [`TabularDataset`], [`TabularSplit`], [`Standardizer`].
//! - [`text`]: [`CharTokenizer`], [`TextCorpus`], windows, [`unigram_baseline`].
//! - [`order`]: [`epoch_order`], [`EpochSampler`].
//! - [`shipped`]: iris, red wine quality, diabetes, *Liber primus*.

pub mod dataset;
mod error;
pub mod format;
pub mod order;
mod reader;
pub mod shipped;
pub mod tabular;
pub mod text;

pub use dataset::{Dataset, DatasetBuilder, dataset_from_shards, read_dataset, write_dataset};
pub use error::{DataError, Result};
pub use format::{Manifest, ProviderId, Record, RecordKind, Schema, ShardEntry};
pub use order::{EpochSampler, derive_seed, epoch_order};
pub use shipped::{
    diabetes, diabetes_dataset, iris, iris_dataset, liber_primus, liber_primus_dataset,
    shipped_dataset, winequality, winequality_dataset,
};
pub use tabular::{EVAL_PERMILLE_DEFAULT, Standardizer, TabularDataset, TabularSplit};
pub use text::{
    CharTokenizer, TextCorpus, UnigramBaseline, eval_window, eval_window_count, sample_windows,
    unigram_baseline,
};
