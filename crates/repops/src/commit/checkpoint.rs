//! Checkpoints: parameters, optimizer state and the step digest in one `.safetensors` file.
//!
//! # Format
//!
//! A standard safetensors file (`u64 LE header length | JSON header | data`), readable by any
//! safetensors reader, written by this module in one canonical byte layout:
//!
//! - Tensors are named `param/<name>` and `opt/<name>`, dtype `F32`, little endian, row-major;
//!   they appear in the header and in the data in ascending byte order of their full names.
//! - `__metadata__` (first in the header, keys ascending) holds
//!   `format` = `"poi-checkpoint"`, `format_version` = `"1"`, `step` (decimal),
//!   `job_spec_hash` and `step_digest` (64 lowercase hex digits), and `param_names` /
//!   `opt_names`: JSON arrays of the tensor names in the model's digest order, which the
//!   file's name-sorted layout would otherwise lose.
//! - The header has no whitespace except the trailing spaces that pad it to a multiple of
//!   8 bytes. Every NaN is stored as `0x7fc0_0000`.
//!
//! Loading parses with the `safetensors` crate, re-renders the header from what it parsed and
//! requires it byte for byte, rejects non-canonical NaNs, and recomputes the step digest
//! ([`super::step_digest`]); so the file is a pure function of its contents, and any change to
//! any byte is a typed error, not a silently different state.
//!
//! Writes are atomic: a sibling temporary file is written, fsynced, renamed over the target,
//! and the directory is fsynced, so a crash leaves the old checkpoint or the new one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::digest::{Digest, NamedTensor, canonical_f32_bits, step_digest};
use super::error::{CommitError, Result};
use super::merkle::MerkleProof;

/// The value of the `format` metadata key.
pub const FORMAT_NAME: &str = "poi-checkpoint";
/// The value of the `format_version` metadata key written by this code.
pub const FORMAT_VERSION: u32 = 1;
/// Prefix of parameter tensor names in the file.
pub const PARAM_PREFIX: &str = "param/";
/// Prefix of optimizer-state tensor names in the file.
pub const OPT_PREFIX: &str = "opt/";
/// Largest checkpoint file read (16 GiB): the whole file is read into memory.
pub const CHECKPOINT_BYTES_MAX: u64 = 16 << 30;

pub(super) const KEYS: [&str; 7] = [
    "format",
    "format_version",
    "job_spec_hash",
    "opt_names",
    "param_names",
    "step",
    "step_digest",
];

/// An owned tensor, as loaded from a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedTensor {
    /// The name without its `param/` or `opt/` prefix.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl OwnedTensor {
    /// A borrowed view, for digests and writing.
    pub fn view(&self) -> NamedTensor<'_> {
        NamedTensor::new(&self.name, &self.shape, &self.data)
    }
}

/// The metadata of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// File format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The step the state is after.
    pub step: u64,
    /// Hash of the job spec the training runs.
    pub job_spec_hash: Digest,
    /// [`step_digest`] of the state; verified on load.
    pub step_digest: Digest,
}

/// A loaded, verified checkpoint: tensors in the model's digest order.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Metadata; `step_digest` equals the digest of the tensors below.
    pub meta: CheckpointMeta,
    /// Parameters, in digest order.
    pub params: Vec<OwnedTensor>,
    /// Optimizer state, in digest order.
    pub opt: Vec<OwnedTensor>,
}

impl Checkpoint {
    /// Views of the parameters, in digest order.
    pub fn param_views(&self) -> Vec<NamedTensor<'_>> {
        self.params.iter().map(OwnedTensor::view).collect()
    }

    /// Views of the optimizer state, in digest order.
    pub fn opt_views(&self) -> Vec<NamedTensor<'_>> {
        self.opt.iter().map(OwnedTensor::view).collect()
    }
}

/// A checkpoint's place in a committed training run: its step digest and the Merkle proof
/// that the digest is a leaf of the committed root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointProof {
    /// The step digest the proof is for.
    pub step_digest: Digest,
    /// Inclusion proof of `step_digest` in the run's Merkle tree.
    pub proof: MerkleProof,
}

impl CheckpointProof {
    /// Checks that `checkpoint` (already verified on load) is the state committed at leaf
    /// `proof.index` of the tree with root `root`. The step and the job are inside the digest.
    pub fn verify(&self, checkpoint: &Checkpoint, root: &Digest) -> Result<()> {
        if self.step_digest != checkpoint.meta.step_digest {
            return Err(CommitError::ProofDigestMismatch {
                proof: self.step_digest,
                checkpoint: checkpoint.meta.step_digest,
            });
        }
        self.proof.verify(&self.step_digest, root)
    }
}

/// One tensor's place in the file.
pub(super) struct Entry<'a> {
    full_name: String,
    shape: &'a [usize],
    data: &'a [f32],
}

pub(super) fn entries<'a>(
    params: &[NamedTensor<'a>],
    opt: &[NamedTensor<'a>],
) -> Result<Vec<Entry<'a>>> {
    let mut entries = Vec::with_capacity(params.len() + opt.len());
    for (prefix, group) in [(PARAM_PREFIX, params), (OPT_PREFIX, opt)] {
        for tensor in group {
            tensor.validate()?;
            let full_name = format!("{prefix}{}", tensor.name);
            entries.push(Entry {
                full_name,
                shape: tensor.shape,
                data: tensor.data,
            });
        }
    }
    entries.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    if let Some(pair) = entries
        .windows(2)
        .find(|w| w[0].full_name == w[1].full_name)
    {
        return Err(CommitError::DuplicateName {
            name: pair[0].full_name.clone(),
        });
    }
    Ok(entries)
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings always serialise")
}

fn names_json(tensors: &[NamedTensor<'_>]) -> String {
    let names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
    serde_json::to_string(&names).expect("string lists always serialise")
}

/// The canonical header: metadata then tensors, padded with spaces to a multiple of 8.
pub(super) fn render_header(
    meta: &CheckpointMeta,
    param_names: &str,
    opt_names: &str,
    entries: &[Entry<'_>],
) -> Vec<u8> {
    let values = [
        FORMAT_NAME.to_owned(),
        meta.format_version.to_string(),
        meta.job_spec_hash.to_hex(),
        opt_names.to_owned(),
        param_names.to_owned(),
        meta.step.to_string(),
        meta.step_digest.to_hex(),
    ];
    let metadata: BTreeMap<&str, String> = KEYS.into_iter().zip(values).collect();
    let mut header = String::from("{\"__metadata__\":");
    header.push_str(&serde_json::to_string(&metadata).expect("string maps always serialise"));
    let mut offset = 0usize;
    for entry in entries {
        let end = offset + entry.data.len() * 4;
        let shape: Vec<String> = entry.shape.iter().map(usize::to_string).collect();
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_string(&entry.full_name),
            shape.join(","),
        ));
        offset = end;
    }
    header.push('}');
    let mut bytes = header.into_bytes();
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    bytes
}

/// Everything needed to write a checkpoint: the header and the tensors in file order.
struct Prepared<'a> {
    header: Vec<u8>,
    entries: Vec<Entry<'a>>,
    digest: Digest,
}

fn prepare<'a>(
    job_spec_hash: &Digest,
    step: u64,
    params: &[NamedTensor<'a>],
    opt: &[NamedTensor<'a>],
) -> Result<Prepared<'a>> {
    let entries = entries(params, opt)?;
    let digest = step_digest(job_spec_hash, step, params, opt)?;
    let meta = CheckpointMeta {
        format_version: FORMAT_VERSION,
        step,
        job_spec_hash: *job_spec_hash,
        step_digest: digest,
    };
    let header = render_header(&meta, &names_json(params), &names_json(opt), &entries);
    Ok(Prepared {
        header,
        entries,
        digest,
    })
}

fn emit(out: &mut impl Write, prepared: &Prepared<'_>) -> std::io::Result<()> {
    out.write_all(&(prepared.header.len() as u64).to_le_bytes())?;
    out.write_all(&prepared.header)?;
    let mut buffer = [0u8; 4096];
    for entry in &prepared.entries {
        for chunk in entry.data.chunks(buffer.len() / 4) {
            for (slot, &value) in buffer.chunks_exact_mut(4).zip(chunk) {
                slot.copy_from_slice(&canonical_f32_bits(value).to_le_bytes());
            }
            out.write_all(&buffer[..chunk.len() * 4])?;
        }
    }
    Ok(())
}

/// The checkpoint file's bytes and the step digest they carry.
pub fn checkpoint_bytes(
    job_spec_hash: &Digest,
    step: u64,
    params: &[NamedTensor<'_>],
    opt: &[NamedTensor<'_>],
) -> Result<(Vec<u8>, Digest)> {
    let prepared = prepare(job_spec_hash, step, params, opt)?;
    let mut bytes = Vec::new();
    emit(&mut bytes, &prepared).expect("writing to a Vec cannot fail");
    Ok((bytes, prepared.digest))
}

/// Writes a checkpoint to `path` atomically; returns its step digest.
pub fn write_checkpoint(
    path: &Path,
    job_spec_hash: &Digest,
    step: u64,
    params: &[NamedTensor<'_>],
    opt: &[NamedTensor<'_>],
) -> Result<Digest> {
    let prepared = prepare(job_spec_hash, step, params, opt)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{}.tmp", file_name.unwrap_or_default()));
    let io = |source| CommitError::Io {
        path: temp.clone(),
        source,
    };
    let result = (|| {
        let file = File::create(&temp)?;
        let mut out = BufWriter::new(file);
        emit(&mut out, &prepared)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temp);
        return Err(io(source));
    }
    sync_parent(path)?;
    Ok(prepared.digest)
}

/// Makes the rename durable: on Unix a directory's entries are persisted by fsyncing it.
fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| CommitError::Io {
                path: parent.to_owned(),
                source,
            })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
