//! Datasets built from providers' shards, and their on-disk directory form.
//!
//! Owns: [`Dataset`], [`DatasetBuilder`], [`write_dataset`], [`read_dataset`]. Invariants:
//! a [`Dataset`]'s manifest lists exactly its shards, in order, with their ids, providers,
//! record counts and byte lengths; no shard id appears twice; [`Dataset::id`] is the
//! manifest's hash.
//!
//! # Directory layout
//!
//! ```text
//! <dir>/manifest.bin         the manifest's canonical bytes
//! <dir>/<shard id hex>.shard each shard's canonical bytes
//! ```
//!
//! Shards are written first and the manifest last, each through a temporary file, fsync and
//! rename, so a directory with a manifest has all its shards. Loading checks the manifest
//! against the expected dataset id, then every shard's length and hash against the manifest,
//! then parses it; the first problem is an error naming the shard.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::commit::Digest;

use super::error::{DataError, Result};
use super::format::{
    MANIFEST_SHARDS_MAX, Manifest, NAME_BYTES_MAX, ProviderId, Record, SHARD_RECORDS_MAX, Schema,
    ShardEntry, decode_shard, encode_shard,
};

/// File name of the manifest in a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.bin";
/// Extension of shard files.
pub const SHARD_EXTENSION: &str = "shard";
/// Largest manifest read from disk (the size of [`MANIFEST_SHARDS_MAX`] entries).
const MANIFEST_BYTES_MAX: u64 = 1024 + MANIFEST_SHARDS_MAX as u64 * 76;

/// A dataset in memory: its manifest and the records of each shard.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    manifest: Manifest,
    shards: Vec<Vec<Record>>,
}

impl Dataset {
    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The dataset id: BLAKE3 of the manifest's canonical bytes.
    pub fn id(&self) -> Digest {
        self.manifest.id()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.manifest.schema
    }

    /// Records of shard `index`, in order.
    pub fn shard_records(&self, index: usize) -> Option<&[Record]> {
        self.shards.get(index).map(Vec::as_slice)
    }

    /// Every record in dataset order: shard by shard, as listed in the manifest.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.shards.iter().flatten()
    }

    /// Total records.
    pub fn record_count(&self) -> u64 {
        self.manifest.record_count()
    }
}

/// Assembles a dataset from shards contributed by providers, in the order they are added.
#[derive(Debug)]
pub struct DatasetBuilder {
    manifest: Manifest,
    shards: Vec<Vec<Record>>,
    seen: BTreeSet<Digest>,
}

impl DatasetBuilder {
    /// An empty dataset called `name` whose records follow `schema`.
    pub fn new(name: &str, schema: Schema) -> Result<Self> {
        schema.validate()?;
        if name.is_empty() || name.len() > NAME_BYTES_MAX as usize {
            let reason = format!("`{name}` must be 1..={NAME_BYTES_MAX} bytes");
            return Err(DataError::InvalidArgument {
                what: "dataset name",
                reason,
            });
        }
        let manifest = Manifest {
            name: name.to_owned(),
            schema,
            shards: Vec::new(),
        };
        Ok(Self {
            manifest,
            shards: Vec::new(),
            seen: BTreeSet::new(),
        })
    }

    /// Adds one shard of `records` from `provider`; returns its id.
    pub fn add_shard(&mut self, provider: ProviderId, records: Vec<Record>) -> Result<Digest> {
        let bytes = encode_shard(&self.manifest.schema, &records)?;
        self.push(provider, &bytes, records)
    }

    /// Adds a shard a provider submitted as bytes, after parsing and checking it.
    pub fn add_encoded_shard(&mut self, provider: ProviderId, bytes: &[u8]) -> Result<Digest> {
        let label = format!("submitted shard {}", self.shards.len());
        let records = decode_shard(bytes, &self.manifest.schema, &label)?;
        self.push(provider, bytes, records)
    }

    /// Adds `records` from `provider` as shards of at most `records_per_shard`; returns
    /// their ids in order.
    pub fn add_records(
        &mut self,
        provider: ProviderId,
        records: Vec<Record>,
        records_per_shard: u32,
    ) -> Result<Vec<Digest>> {
        if records_per_shard == 0 || records_per_shard > SHARD_RECORDS_MAX {
            let reason = format!("{records_per_shard} is not in 1..={SHARD_RECORDS_MAX}");
            return Err(DataError::InvalidArgument {
                what: "records per shard",
                reason,
            });
        }
        records
            .chunks(records_per_shard as usize)
            .map(|chunk| self.add_shard(provider, chunk.to_vec()))
            .collect()
    }

    fn push(&mut self, provider: ProviderId, bytes: &[u8], records: Vec<Record>) -> Result<Digest> {
        let id = Digest::of(bytes);
        if self.shards.len() >= MANIFEST_SHARDS_MAX as usize {
            let value = self.shards.len() as u64 + 1;
            return Err(DataError::Limit {
                what: "shards",
                value,
                max: MANIFEST_SHARDS_MAX.into(),
            });
        }
        if !self.seen.insert(id) {
            return Err(DataError::DuplicateShard { id });
        }
        let entry = ShardEntry {
            id,
            provider,
            records: records.len() as u32,
            bytes: bytes.len() as u64,
        };
        self.manifest.shards.push(entry);
        self.shards.push(records);
        Ok(id)
    }

    /// The finished dataset; it must hold at least one record.
    pub fn build(self) -> Result<Dataset> {
        if self.shards.is_empty() {
            return Err(DataError::Empty {
                name: self.manifest.name,
                what: "dataset",
            });
        }
        assert_eq!(self.manifest.shards.len(), self.shards.len());
        Ok(Dataset {
            manifest: self.manifest,
            shards: self.shards,
        })
    }
}

/// Builds a dataset from providers' shards, in the order given.
pub fn dataset_from_shards(
    name: &str,
    schema: Schema,
    shards: Vec<(ProviderId, Vec<Record>)>,
) -> Result<Dataset> {
    let mut builder = DatasetBuilder::new(name, schema)?;
    for (provider, records) in shards {
        builder.add_shard(provider, records)?;
    }
    builder.build()
}

/// The file name of shard `id`.
pub fn shard_file_name(id: &Digest) -> String {
    format!("{}.{SHARD_EXTENSION}", id.to_hex())
}

/// Writes `dataset` into `dir` (created if missing); returns the dataset id.
pub fn write_dataset(dataset: &Dataset, dir: &Path) -> Result<Digest> {
    fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let schema = dataset.schema();
    for (entry, records) in dataset.manifest.shards.iter().zip(&dataset.shards) {
        let bytes = encode_shard(schema, records)?;
        assert_eq!(
            Digest::of(&bytes),
            entry.id,
            "shard encoding is deterministic"
        );
        write_atomic(&dir.join(shard_file_name(&entry.id)), &bytes)?;
    }
    write_atomic(&dir.join(MANIFEST_FILE), &dataset.manifest.encode())?;
    sync_dir(dir)?;
    Ok(dataset.id())
}

/// Reads the dataset in `dir`, verifying the manifest against `expected` (if given) and
/// every shard against the manifest.
pub fn read_dataset(dir: &Path, expected: Option<&Digest>) -> Result<Dataset> {
    let manifest_bytes = read_capped(&dir.join(MANIFEST_FILE), MANIFEST_BYTES_MAX)?;
    let actual = Digest::of(&manifest_bytes);
    if let Some(&expected) = expected
        && expected != actual
    {
        return Err(DataError::DatasetIdMismatch { expected, actual });
    }
    let manifest = Manifest::decode(&manifest_bytes)?;
    let mut shards = Vec::with_capacity(manifest.shards.len());
    let mut seen = BTreeSet::new();
    for (index, entry) in (0u32..).zip(&manifest.shards) {
        if !seen.insert(entry.id) {
            return Err(DataError::DuplicateShard { id: entry.id });
        }
        let bytes = read_capped(&dir.join(shard_file_name(&entry.id)), entry.bytes)?;
        let hash = Digest::of(&bytes);
        if hash != entry.id || bytes.len() as u64 != entry.bytes {
            return Err(DataError::ShardHashMismatch {
                index,
                expected: entry.id,
                actual: hash,
            });
        }
        let label = format!("shard {index} ({})", entry.id);
        let records = decode_shard(&bytes, &manifest.schema, &label)?;
        if records.len() as u64 != u64::from(entry.records) {
            let reason = format!("{} records, manifest says {}", records.len(), entry.records);
            return Err(DataError::ShardMalformed {
                shard: label,
                reason,
            });
        }
        shards.push(records);
    }
    if shards.is_empty() {
        return Err(DataError::Empty {
            name: manifest.name,
            what: "dataset",
        });
    }
    Ok(Dataset { manifest, shards })
}

/// Reads at most `max + 1` bytes of `path`, so a huge or corrupt file cannot make us allocate
/// without bound; callers see the extra byte as a length or hash mismatch.
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    result.map_err(|source| {
        let _ = fs::remove_file(&temp);
        DataError::Io {
            path: path.to_owned(),
            source,
        }
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Persists the directory's entries (the renames) on Unix.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| DataError::Io {
            path: dir.to_owned(),
            source,
        })?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
