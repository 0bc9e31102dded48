//! Owns: [`OpCall`], a recorded operator call, and its operator file format.
//!
//! # Operator file format
//!
//! ```text
//! "POIOPCL1" | header_len u64 LE | header JSON (no whitespace)
//!            | every input: len f32 values, LE, NaN -> 0x7fc0_0000 | ids: u32 LE
//! header = {"kind":"linear_forward","dims":[..],"scalars":[f32 bits as u32..],
//!           "inputs":[len..],"ids":len}
//! ```
//!
//! Invariant: [`OpCall::from_bytes`] of [`OpCall::to_bytes`] is the call itself (NaNs
//! canonicalised), and parsing never allocates more than [`OP_ELEMS_MAX`] values.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::commit::canonical_f32_bits;
use crate::meter::OpKind;
use crate::train::{Result, TrainError};

/// Magic bytes opening an operator file.
pub const OP_FILE_MAGIC: &[u8; 8] = b"POIOPCL1";
/// Largest buffer (elements) an operator file may make [`super::execute`] allocate: 1 GiB
/// of f32.
pub const OP_ELEMS_MAX: u64 = 1 << 28;
/// Largest operator file header, bytes.
const HEADER_BYTES_MAX: u64 = 1 << 16;

/// A recorded operator call: kind, integer dimensions (as in [`crate::meter`]), scalar
/// parameters, and copies of its inputs, in the order [`super::execute`] documents.
#[derive(Debug, Clone, PartialEq)]
pub struct OpCall {
    /// The operator.
    pub kind: OpKind,
    /// Its dimensions.
    pub dims: Vec<u64>,
    /// Scalar parameters (`eps`; AdamW `lr b1 b2 eps wd`; SGD `lr momentum wd`).
    pub scalars: Vec<f32>,
    /// Float inputs.
    pub inputs: Vec<Vec<f32>>,
    /// Integer inputs (targets, token ids), if any.
    pub ids: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    dims: Vec<u64>,
    scalars: Vec<u32>,
    inputs: Vec<u64>,
    ids: u64,
}

pub(super) fn bad(reason: impl Into<String>) -> TrainError {
    TrainError::OpFile {
        reason: reason.into(),
    }
}

impl OpCall {
    /// The operator file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = Header {
            kind: self.kind.name().to_owned(),
            dims: self.dims.clone(),
            scalars: self
                .scalars
                .iter()
                .map(|&s| canonical_f32_bits(s))
                .collect(),
            inputs: self.inputs.iter().map(|i| i.len() as u64).collect(),
            ids: self.ids.len() as u64,
        };
        let json = serde_json::to_vec(&header).expect("headers always serialise");
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(OP_FILE_MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        for value in self.inputs.iter().flatten() {
            out.extend_from_slice(&canonical_f32_bits(*value).to_le_bytes());
        }
        for id in &self.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// Parses an operator file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let rest = bytes
            .strip_prefix(OP_FILE_MAGIC)
            .ok_or_else(|| bad("missing POIOPCL1 magic"))?;
        let (len, rest) = rest.split_at_checked(8).ok_or_else(|| bad("truncated"))?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        if len > HEADER_BYTES_MAX || len > rest.len() as u64 {
            return Err(bad(format!("header length {len} is out of range")));
        }
        let (json, mut data) = rest.split_at(len as usize);
        let header: Header =
            serde_json::from_slice(json).map_err(|e| bad(format!("header: {e}")))?;
        let kind = OpKind::parse(&header.kind)
            .ok_or_else(|| bad(format!("unknown op {}", header.kind)))?;
        if header.dims.len() != kind.dims_len() {
            return Err(bad(format!("{kind} takes {} dims", kind.dims_len())));
        }
        let total: u64 = header
            .inputs
            .iter()
            .fold(header.ids, |a, &l| a.saturating_add(l));
        if total.saturating_mul(4) != data.len() as u64 || total > OP_ELEMS_MAX {
            return Err(bad(format!("{} data bytes for {total} values", data.len())));
        }
        let mut words = |n: u64| -> Vec<u32> {
            let (head, tail) = data.split_at(n as usize * 4);
            data = tail;
            head.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect()
        };
        let inputs = header
            .inputs
            .iter()
            .map(|&n| words(n).into_iter().map(f32::from_bits).collect())
            .collect();
        let ids = words(header.ids);
        Ok(Self {
            kind,
            dims: header.dims,
            scalars: header.scalars.into_iter().map(f32::from_bits).collect(),
            inputs,
            ids,
        })
    }

    /// Writes the operator file.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()).map_err(TrainError::io(path))
    }

    /// Reads an operator file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
        Self::from_bytes(&bytes)
    }

    pub(super) fn input(&self, i: usize) -> Result<&[f32]> {
        self.inputs
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("{} needs input {i}", self.kind)))
    }

    pub(super) fn scalar(&self, i: usize) -> Result<f32> {
        self.scalars
            .get(i)
            .copied()
            .ok_or_else(|| bad(format!("{} needs scalar {i}", self.kind)))
    }

    /// `product(dims[i] for i in idx)` as a buffer length, bounded by [`OP_ELEMS_MAX`].
    pub(super) fn len(&self, idx: &[usize]) -> Result<usize> {
        let n = idx
            .iter()
            .try_fold(1u64, |a, &i| a.checked_mul(self.dims[i]))
            .filter(|&n| n <= OP_ELEMS_MAX)
            .ok_or_else(|| bad(format!("{} dims {:?} too large", self.kind, self.dims)))?;
        Ok(n as usize)
    }

    pub(super) fn dim(&self, i: usize) -> usize {
        self.dims[i] as usize
    }
}
