//! The content-addressed dataset format: records, shards, the manifest and the dataset id.
//!
//! Owns: the canonical bytes of records, shards and manifests. Invariants: a shard's id is
//! BLAKE3 of its bytes; a dataset's id is BLAKE3 of its manifest's bytes; every value has
//! exactly one encoding (decoding and re-encoding gives the same bytes), so ids are stable
//! across runs and machines.
//!
//! # Format
//!
//! All integers little endian, all floats IEEE-754 binary32 bits.
//!
//! ```text
//! schema   = kind u8 (0 tabular, 1 text) | n_features u32 | n_classes u32 | has_target u8
//! record   = tabular: feature f32 * n_features | label u32 | [target f32 if has_target]
//!            text:    len u32 | UTF-8 bytes
//! shard    = "POISHRD1" | schema | record_count u32 | record * record_count
//! manifest = "POIDSET1" | name_len u32 | name (UTF-8) | schema | shard_count u32
//!            | per shard: id [32] | provider [32] | record_count u32 | byte_len u64
//! ```
//!
//! Tabular features and targets must be finite (a NaN has many encodings); labels are below
//! `n_classes`. Text schemas have `n_features = n_classes = 0` and no target. Shards are
//! listed in the order they were added, and that order (then record order within a shard)
//! is the dataset's record order. The provider id rides in the manifest, not the shard, so
//! the dataset id commits to who is paid for each shard.

use std::fmt;

use crate::commit::Digest;

use super::error::{DataError, Result};
use super::reader::Reader;

/// First bytes of every shard.
pub const SHARD_MAGIC: [u8; 8] = *b"POISHRD1";
/// First bytes of every manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"POIDSET1";
/// Most records in one shard: bounds a shard's decode work and a provider's payment unit.
pub const SHARD_RECORDS_MAX: u32 = 65_536;
/// Largest shard (256 MiB): a shard is read and hashed whole.
pub const SHARD_BYTES_MAX: u64 = 256 << 20;
/// Most shards in one dataset (a 76 MiB manifest).
pub const MANIFEST_SHARDS_MAX: u32 = 1 << 20;
/// Longest dataset name in bytes.
pub const NAME_BYTES_MAX: u32 = 256;
/// Most features of a tabular record.
pub const FEATURES_MAX: u32 = 1 << 16;
/// Most classes of a tabular schema.
pub const CLASSES_MAX: u32 = 1 << 16;
/// Longest text record (1 MiB).
pub const TEXT_RECORD_BYTES_MAX: u32 = 1 << 20;

const SCHEMA_BYTES: usize = 10;
const MANIFEST_ENTRY_BYTES: usize = 32 + 32 + 4 + 8;

const _: () = assert!(SHARD_RECORDS_MAX as u64 * 8 <= SHARD_BYTES_MAX);
const _: () = assert!((TEXT_RECORD_BYTES_MAX as u64) < SHARD_BYTES_MAX);

/// Who contributed a shard (for example an ed25519 public key); data providers are paid per
/// shard.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ProviderId(pub [u8; 32]);

impl ProviderId {
    /// The provider of the datasets shipped with this crate.
    pub const SHIPPED: Self = Self([0; 32]);
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderId({self})")
    }
}

/// What records hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordKind {
    /// Fixed-width f32 features, a class label and optionally a regression target.
    Tabular,
    /// A UTF-8 string.
    Text,
}

impl RecordKind {
    /// Lowercase name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tabular => "tabular",
            Self::Text => "text",
        }
    }
}

/// The shape every record of a dataset has.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Schema {
    /// Record kind.
    pub kind: RecordKind,
    /// Features per tabular record (0 for text).
    pub n_features: u32,
    /// Number of classes; labels are `0..n_classes` (0 for text).
    pub n_classes: u32,
    /// Whether tabular records carry a regression target.
    pub has_target: bool,
}

impl Schema {
    /// A tabular schema.
    pub fn tabular(n_features: u32, n_classes: u32, has_target: bool) -> Self {
        Self {
            kind: RecordKind::Tabular,
            n_features,
            n_classes,
            has_target,
        }
    }

    /// The text schema.
    pub fn text() -> Self {
        Self {
            kind: RecordKind::Text,
            n_features: 0,
            n_classes: 0,
            has_target: false,
        }
    }

    /// Checks the schema's fields against its kind and the caps.
    pub fn validate(&self) -> Result<()> {
        let reason = match self.kind {
            RecordKind::Text if *self != Self::text() => "text schemas have no features",
            RecordKind::Tabular if self.n_features == 0 => "tabular schemas need a feature",
            RecordKind::Tabular if self.n_features > FEATURES_MAX => "too many features",
            RecordKind::Tabular if self.n_classes == 0 => "tabular schemas need a class",
            RecordKind::Tabular if self.n_classes > CLASSES_MAX => "too many classes",
            _ => return Ok(()),
        };
        Err(DataError::Schema {
            reason: format!("{reason}: {self:?}"),
        })
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            RecordKind::Tabular => 0,
            RecordKind::Text => 1,
        });
        out.extend_from_slice(&self.n_features.to_le_bytes());
        out.extend_from_slice(&self.n_classes.to_le_bytes());
        out.push(u8::from(self.has_target));
    }

    fn decode(reader: &mut Reader<'_>) -> std::result::Result<Self, String> {
        let kind = match reader.u8()? {
            0 => RecordKind::Tabular,
            1 => RecordKind::Text,
            other => return Err(format!("unknown record kind {other}")),
        };
        let (n_features, n_classes) = (reader.u32()?, reader.u32()?);
        let has_target = match reader.u8()? {
            0 => false,
            1 => true,
            other => return Err(format!("has_target byte {other} is not 0 or 1")),
        };
        let schema = Self {
            kind,
            n_features,
            n_classes,
            has_target,
        };
        schema.validate().map_err(|e| e.to_string())?;
        Ok(schema)
    }
}

/// One record of a dataset.
#[derive(Clone, PartialEq, Debug)]
pub enum Record {
    /// A tabular record.
    Tabular {
        /// Raw (unstandardised) features.
        features: Vec<f32>,
        /// Class label.
        label: u32,
        /// Regression target, present iff the schema says so.
        target: Option<f32>,
    },
    /// A text record.
    Text(String),
}

impl Record {
    /// Checks the record against `schema`.
    pub fn check(&self, schema: &Schema) -> std::result::Result<(), String> {
        match (self, schema.kind) {
            (
                Self::Tabular {
                    features,
                    label,
                    target,
                },
                RecordKind::Tabular,
            ) => {
                if features.len() != schema.n_features as usize {
                    return Err(format!(
                        "{} features, schema has {}",
                        features.len(),
                        schema.n_features
                    ));
                }
                if let Some(i) = features.iter().position(|v| !v.is_finite()) {
                    return Err(format!("feature {i} is {}, not finite", features[i]));
                }
                if *label >= schema.n_classes {
                    return Err(format!("label {label} is not below {}", schema.n_classes));
                }
                match target {
                    Some(t) if !t.is_finite() => Err(format!("target {t} is not finite")),
                    _ if target.is_some() != schema.has_target => Err(format!(
                        "target present: {}, schema says {}",
                        target.is_some(),
                        schema.has_target
                    )),
                    _ => Ok(()),
                }
            }
            (Self::Text(text), RecordKind::Text) => {
                if text.len() > TEXT_RECORD_BYTES_MAX as usize {
                    return Err(format!(
                        "text of {} bytes exceeds {TEXT_RECORD_BYTES_MAX}",
                        text.len()
                    ));
                }
                Ok(())
            }
            _ => Err(format!(
                "record kind does not match a {} schema",
                schema.kind.name()
            )),
        }
    }

    /// Appends the record's canonical bytes (see the module docs).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Tabular {
                features,
                label,
                target,
            } => {
                for value in features {
                    out.extend_from_slice(&value.to_le_bytes());
                }
                out.extend_from_slice(&label.to_le_bytes());
                if let Some(target) = target {
                    out.extend_from_slice(&target.to_le_bytes());
                }
            }
            Self::Text(text) => {
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    /// BLAKE3 of the record's canonical bytes: its content hash, used for splits.
    pub fn content_hash(&self) -> Digest {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes);
        Digest::of(&bytes)
    }

    fn decode(reader: &mut Reader<'_>, schema: &Schema) -> std::result::Result<Self, String> {
        let record = match schema.kind {
            RecordKind::Tabular => {
                let features = (0..schema.n_features)
                    .map(|_| reader.f32())
                    .collect::<std::result::Result<_, _>>()?;
                let label = reader.u32()?;
                let target = if schema.has_target {
                    Some(reader.f32()?)
                } else {
                    None
                };
                Self::Tabular {
                    features,
                    label,
                    target,
                }
            }
            RecordKind::Text => {
                let len = reader.u32()?;
                if len > TEXT_RECORD_BYTES_MAX {
                    return Err(format!("text length {len} exceeds {TEXT_RECORD_BYTES_MAX}"));
                }
                let bytes = reader.take(len as usize)?;
                let text =
                    std::str::from_utf8(bytes).map_err(|e| format!("text is not UTF-8: {e}"))?;
                Self::Text(text.to_owned())
            }
        };
        record.check(schema)?;
        Ok(record)
    }
}

/// The canonical bytes of a shard holding `records`, all checked against `schema`.
pub fn encode_shard(schema: &Schema, records: &[Record]) -> Result<Vec<u8>> {
    schema.validate()?;
    let count = records.len() as u64;
    if count == 0 || count > u64::from(SHARD_RECORDS_MAX) {
        let reason = format!("{count} records, a shard holds 1..={SHARD_RECORDS_MAX}");
        return Err(DataError::InvalidArgument {
            what: "shard",
            reason,
        });
    }
    let mut bytes = Vec::with_capacity(SHARD_MAGIC.len() + SCHEMA_BYTES + 4);
    bytes.extend_from_slice(&SHARD_MAGIC);
    schema.encode_into(&mut bytes);
    bytes.extend_from_slice(&(count as u32).to_le_bytes());
    for (index, record) in (0u64..).zip(records) {
        record
            .check(schema)
            .map_err(|reason| DataError::Record { index, reason })?;
        record.encode_into(&mut bytes);
    }
    if bytes.len() as u64 > SHARD_BYTES_MAX {
        return Err(DataError::Limit {
            what: "shard bytes",
            value: bytes.len() as u64,
            max: SHARD_BYTES_MAX,
        });
    }
    Ok(bytes)
}

/// Parses shard bytes, which must use `schema`; `label` names the shard in errors.
pub fn decode_shard(bytes: &[u8], schema: &Schema, label: &str) -> Result<Vec<Record>> {
    let malformed = |reason: String| DataError::ShardMalformed {
        shard: label.to_owned(),
        reason,
    };
    let mut reader = Reader::new(bytes);
    if reader.take(SHARD_MAGIC.len()).map_err(&malformed)? != SHARD_MAGIC {
        return Err(malformed("bad magic".into()));
    }
    let found = Schema::decode(&mut reader).map_err(&malformed)?;
    if found != *schema {
        return Err(malformed(format!(
            "schema {found:?}, dataset has {schema:?}"
        )));
    }
    let count = reader.u32().map_err(&malformed)?;
    if count == 0 || count > SHARD_RECORDS_MAX {
        return Err(malformed(format!(
            "{count} records, a shard holds 1..={SHARD_RECORDS_MAX}"
        )));
    }
    let mut records = Vec::with_capacity(count as usize);
    for index in 0..count {
        let record = Record::decode(&mut reader, schema)
            .map_err(|e| malformed(format!("record {index}: {e}")))?;
        records.push(record);
    }
    if !reader.is_empty() {
        return Err(malformed(format!("{} trailing bytes", reader.remaining())));
    }
    Ok(records)
}

/// One shard as the manifest lists it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShardEntry {
    /// BLAKE3 of the shard's bytes.
    pub id: Digest,
    /// Who contributed it.
    pub provider: ProviderId,
    /// Records in the shard.
    pub records: u32,
    /// Length of the shard's bytes.
    pub bytes: u64,
}

/// A dataset's table of contents; its BLAKE3 is the dataset id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Manifest {
    /// Dataset name.
    pub name: String,
    /// Schema every shard uses.
    pub schema: Schema,
    /// Shards in dataset order.
    pub shards: Vec<ShardEntry>,
}

impl Manifest {
    /// The canonical bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(64 + self.shards.len() * MANIFEST_ENTRY_BYTES);
        bytes.extend_from_slice(&MANIFEST_MAGIC);
        bytes.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        bytes.extend_from_slice(self.name.as_bytes());
        self.schema.encode_into(&mut bytes);
        bytes.extend_from_slice(&(self.shards.len() as u32).to_le_bytes());
        for entry in &self.shards {
            bytes.extend_from_slice(&entry.id.0);
            bytes.extend_from_slice(&entry.provider.0);
            bytes.extend_from_slice(&entry.records.to_le_bytes());
            bytes.extend_from_slice(&entry.bytes.to_le_bytes());
        }
        bytes
    }

    /// The dataset id: BLAKE3 of [`Self::encode`].
    pub fn id(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// Total records over all shards.
    pub fn record_count(&self) -> u64 {
        self.shards.iter().map(|s| u64::from(s.records)).sum()
    }

    /// Parses manifest bytes strictly: caps, valid schema, no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let manifest =
            Self::decode_inner(bytes).map_err(|reason| DataError::ManifestMalformed { reason })?;
        assert_eq!(manifest.encode(), bytes, "manifest encoding is canonical");
        Ok(manifest)
    }

    fn decode_inner(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut reader = Reader::new(bytes);
        if reader.take(MANIFEST_MAGIC.len())? != MANIFEST_MAGIC {
            return Err("bad magic".into());
        }
        let name_len = reader.u32()?;
        if name_len > NAME_BYTES_MAX {
            return Err(format!("name of {name_len} bytes exceeds {NAME_BYTES_MAX}"));
        }
        let name = std::str::from_utf8(reader.take(name_len as usize)?)
            .map_err(|e| format!("name: {e}"))?;
        let schema = Schema::decode(&mut reader)?;
        let count = reader.u32()?;
        if count > MANIFEST_SHARDS_MAX {
            return Err(format!("{count} shards exceeds {MANIFEST_SHARDS_MAX}"));
        }
        let mut shards = Vec::with_capacity(count.min(1024) as usize);
        for index in 0..count {
            let id = Digest(reader.take(32)?.try_into().expect("32 bytes"));
            let provider = ProviderId(reader.take(32)?.try_into().expect("32 bytes"));
            let (records, bytes) = (reader.u32()?, reader.u64()?);
            if records == 0 || records > SHARD_RECORDS_MAX || bytes > SHARD_BYTES_MAX {
                return Err(format!(
                    "shard {index}: {records} records / {bytes} bytes out of range"
                ));
            }
            shards.push(ShardEntry {
                id,
                provider,
                records,
                bytes,
            });
        }
        if !reader.is_empty() {
            return Err(format!("{} trailing bytes", reader.remaining()));
        }
        Ok(Self {
            name: name.to_owned(),
            schema,
            shards,
        })
    }
}
