//! Loading checkpoints: parse, check every byte is canonical, recompute the step digest.
//!
//! Owns: [`decode_checkpoint`] and [`read_checkpoint`]. Invariant: a checkpoint returned
//! from here has `meta.step_digest` equal to the digest of its tensors, and its file bytes
//! are exactly what [`super::checkpoint_bytes`] writes for them.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::checkpoint::{
    CHECKPOINT_BYTES_MAX, Checkpoint, CheckpointMeta, FORMAT_NAME, FORMAT_VERSION, KEYS,
    OPT_PREFIX, OwnedTensor, PARAM_PREFIX, entries, render_header,
};
use super::digest::{CANONICAL_NAN_BITS, Digest, step_digest};
use super::error::{CommitError, Result};

/// Header length field of a safetensors file.
const HEADER_LEN_BYTES: usize = 8;

/// Reads and verifies the checkpoint at `path` (see [`decode_checkpoint`]).
pub fn read_checkpoint(path: &Path, expected: Option<&Digest>) -> Result<Checkpoint> {
    let io = |source| CommitError::Io {
        path: path.to_owned(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > CHECKPOINT_BYTES_MAX {
        let reason = format!("{len} bytes exceeds the {CHECKPOINT_BYTES_MAX}-byte limit");
        return Err(bad("file", reason));
    }
    let bytes = fs::read(path).map_err(io)?;
    decode_checkpoint(&bytes, expected)
}

/// Parses and verifies checkpoint bytes: safetensors structure, metadata, canonical layout
/// and NaNs, and the step digest against the stored one and, if given, `expected`.
pub fn decode_checkpoint(bytes: &[u8], expected: Option<&Digest>) -> Result<Checkpoint> {
    let (header_len, metadata) = SafeTensors::read_metadata(bytes)?;
    let map = metadata
        .metadata()
        .as_ref()
        .ok_or_else(|| bad("__metadata__", "missing"))?;
    let (meta, param_names, opt_names) = parse_meta(map)?;
    let (job_spec_hash, step, stored) = (meta.job_spec_hash, meta.step, meta.step_digest);

    let data = &bytes[HEADER_LEN_BYTES + header_len..];
    let params = load_group(&metadata, data, PARAM_PREFIX, &param_names)?;
    let opt = load_group(&metadata, data, OPT_PREFIX, &opt_names)?;
    let in_file = metadata.tensors().len();
    if in_file != params.len() + opt.len() {
        let reason = format!(
            "file has {in_file} tensors, metadata names {}",
            params.len() + opt.len()
        );
        return Err(CommitError::Tensor {
            name: "*".into(),
            reason,
        });
    }
    let checkpoint = Checkpoint { meta, params, opt };
    let (param_views, opt_views) = (checkpoint.param_views(), checkpoint.opt_views());
    let computed = step_digest(&job_spec_hash, step, &param_views, &opt_views)?;
    if computed != stored {
        return Err(CommitError::StoredDigestMismatch { stored, computed });
    }
    // Equal digests do not rule out a different header (reordered keys, added whitespace),
    // so the header must also be exactly the one this state renders to.
    let header = render_header(
        &checkpoint.meta,
        value(map, "param_names")?,
        value(map, "opt_names")?,
        &entries(&param_views, &opt_views)?,
    );
    if header[..] != bytes[HEADER_LEN_BYTES..HEADER_LEN_BYTES + header_len] {
        return Err(bad("__metadata__", "header is not in canonical form"));
    }
    if let Some(&expected) = expected
        && expected != computed
    {
        return Err(CommitError::ExpectedDigestMismatch { expected, computed });
    }
    Ok(checkpoint)
}

/// The metadata, checked key by key, and the two name lists in digest order.
fn parse_meta(map: &HashMap<String, String>) -> Result<(CheckpointMeta, Vec<String>, Vec<String>)> {
    if let Some(key) = map.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(bad("__metadata__", format!("unknown key `{key}`")));
    }
    let format = value(map, "format")?;
    if format != FORMAT_NAME {
        return Err(bad(
            "format",
            format!("expected `{FORMAT_NAME}`, found `{format}`"),
        ));
    }
    let version = canonical(map, "format_version", |t| t.parse().ok(), u32::to_string)?;
    if version != FORMAT_VERSION {
        return Err(bad(
            "format_version",
            format!("unsupported version {version}"),
        ));
    }
    let step = canonical(map, "step", |t| t.parse().ok(), u64::to_string)?;
    let hex = |t: &str| Digest::from_hex(t).ok();
    let job_spec_hash = canonical(map, "job_spec_hash", hex, Digest::to_hex)?;
    let stored = canonical(map, "step_digest", hex, Digest::to_hex)?;
    let names = |t: &str| serde_json::from_str::<Vec<String>>(t).ok();
    let render = |v: &Vec<String>| serde_json::to_string(v).expect("string lists serialise");
    let param_names = canonical(map, "param_names", names, render)?;
    let opt_names = canonical(map, "opt_names", names, render)?;
    let meta = CheckpointMeta {
        format_version: version,
        step,
        job_spec_hash,
        step_digest: stored,
    };
    Ok((meta, param_names, opt_names))
}

/// The tensors `prefix + name` for each of `names`, in that order.
fn load_group(
    metadata: &safetensors::tensor::Metadata,
    data: &[u8],
    prefix: &str,
    names: &[String],
) -> Result<Vec<OwnedTensor>> {
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let full_name = format!("{prefix}{name}");
        let tensor_error = |reason: String| CommitError::Tensor {
            name: full_name.clone(),
            reason,
        };
        let info = metadata
            .info(&full_name)
            .ok_or_else(|| tensor_error("named in metadata but not in the file".into()))?;
        if info.dtype != Dtype::F32 {
            return Err(tensor_error(format!(
                "dtype {:?}, expected F32",
                info.dtype
            )));
        }
        // read_metadata has checked that the offsets tile the data section.
        let (start, end) = info.data_offsets;
        let mut values = Vec::with_capacity((end - start) / 4);
        for chunk in data[start..end].chunks_exact(4) {
            let value = f32::from_le_bytes(chunk.try_into().expect("chunks of 4"));
            if value.is_nan() && value.to_bits() != CANONICAL_NAN_BITS {
                return Err(tensor_error(format!(
                    "non-canonical NaN {:#010x}",
                    value.to_bits()
                )));
            }
            values.push(value);
        }
        tensors.push(OwnedTensor {
            name: name.clone(),
            shape: info.shape.clone(),
            data: values,
        });
    }
    Ok(tensors)
}

fn bad(key: &'static str, reason: impl Into<String>) -> CommitError {
    CommitError::Metadata {
        key,
        reason: reason.into(),
    }
}

fn value<'m>(map: &'m HashMap<String, String>, key: &'static str) -> Result<&'m str> {
    map.get(key)
        .map(String::as_str)
        .ok_or_else(|| bad(key, "missing"))
}

/// The value under `key`, which must be written exactly as `render` writes it, so that one
/// state has one encoding.
fn canonical<T>(
    map: &HashMap<String, String>,
    key: &'static str,
    parse: impl Fn(&str) -> Option<T>,
    render: impl Fn(&T) -> String,
) -> Result<T> {
    let text = value(map, key)?;
    match parse(text) {
        Some(parsed) if render(&parsed) == text => Ok(parsed),
        _ => {
            let shown: String = text.chars().take(80).collect();
            Err(bad(
                key,
                format!("invalid or non-canonical value `{shown}`"),
            ))
        }
    }
}
