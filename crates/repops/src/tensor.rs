//! Owns: the dense row-major `f32` [`Tensor`] and [`OpError`], the typed error every operator
//! returns for bad shapes, indices and parameters.
//!
//! Invariants: `tensor.data().len() == tensor.shape().iter().product()` always; the last axis
//! is contiguous (row-major). Operators take plain slices plus explicit dimensions (so hot
//! loops never allocate); a `Tensor` is just a convenient owner of such a slice.
//!
//! Stability: ALPHA; the tensor type may grow strides or other element types.

use crate::gemm::SimdPath;

/// The error every operator returns for input it cannot work on. Messages are lowercase and
/// name the operator and the operand.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    /// A buffer does not hold the number of elements its dimensions imply.
    #[error("{op}: `{operand}` has {len} elements, expected {expected}")]
    Length {
        /// The operator that was called.
        op: &'static str,
        /// The argument with the wrong length.
        operand: &'static str,
        /// Its length.
        len: usize,
        /// The length implied by the dimensions.
        expected: usize,
    },
    /// Dimensions that are inconsistent with each other or too large to address.
    #[error("{op}: {detail}")]
    Shape {
        /// The operator that was called.
        op: &'static str,
        /// What is wrong, quoting the dimensions.
        detail: String,
    },
    /// An integer index (class target, token id) outside its range.
    #[error("{op}: index {index} at position {position} is out of range 0..{bound}")]
    Index {
        /// The operator that was called.
        op: &'static str,
        /// Where in the index buffer the bad value sits.
        position: usize,
        /// The bad value.
        index: usize,
        /// The exclusive upper bound.
        bound: usize,
    },
    /// A scalar hyper-parameter outside its valid range (or not finite).
    #[error("{op}: parameter `{name}` = {value} is out of range")]
    Parameter {
        /// The operator that was called.
        op: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// The rejected value.
        value: f32,
    },
    /// A SIMD path was requested that this CPU (or this build's architecture) cannot run.
    #[error("simd path `{path}` is not supported on this cpu")]
    Unsupported {
        /// The requested path.
        path: SimdPath,
    },
}

/// Result alias for operators.
pub type OpResult<T> = Result<T, OpError>;

/// Checks that `buf` holds exactly `expected` elements.
pub(crate) fn check_len(
    op: &'static str,
    operand: &'static str,
    len: usize,
    expected: usize,
) -> OpResult<()> {
    if len == expected {
        Ok(())
    } else {
        Err(OpError::Length {
            op,
            operand,
            len,
            expected,
        })
    }
}

/// `a * b`, or a shape error quoting both when the product overflows `usize`.
pub(crate) fn checked_elems(op: &'static str, dims: &[usize]) -> OpResult<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| OpError::Shape {
            op,
            detail: format!("dimensions {dims:?} overflow the address space"),
        })
}

/// The bits of `x` with every NaN replaced by the canonical quiet NaN `0x7fc0_0000`, so that
/// hashes of results do not depend on NaN payloads.
pub fn canonical_bits(x: f32) -> u32 {
    if x.is_nan() { 0x7fc0_0000 } else { x.to_bits() }
}

/// A dense, row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `+0.0`s.
    pub fn zeros(shape: &[usize]) -> OpResult<Self> {
        let len = checked_elems("tensor::zeros", shape)?;
        Ok(Self {
            shape: shape.to_vec(),
            data: vec![0.0; len],
        })
    }

    /// Wraps `data` as a tensor of `shape`; fails unless the element counts agree.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> OpResult<Self> {
        let len = checked_elems("tensor::from_vec", shape)?;
        check_len("tensor::from_vec", "data", data.len(), len)?;
        Ok(Self {
            shape: shape.to_vec(),
            data,
        })
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Gives up the element buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(self, shape: &[usize]) -> OpResult<Self> {
        Self::from_vec(shape, self.data)
    }

    /// `(rows, cols)` when the tensor is viewed as a matrix whose columns are the last axis
    /// (a scalar is `1 x 1`, an empty shape list counts as a scalar).
    pub fn as_matrix_dims(&self) -> (usize, usize) {
        let cols = self.shape.last().copied().unwrap_or(1);
        let rows = self.data.len().checked_div(cols).unwrap_or(0);
        (rows, cols)
    }

    /// The element bits with NaNs canonicalised, little-endian, for hashing.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        self.data
            .iter()
            .flat_map(|&x| canonical_bits(x).to_le_bytes())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_the_element_count() {
        assert!(Tensor::from_vec(&[2, 3], vec![0.0; 6]).is_ok());
        let err = Tensor::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor::from_vec: `data` has 5 elements, expected 6"
        );
        assert!(Tensor::zeros(&[usize::MAX, 2]).is_err());
    }

    #[test]
    fn nan_payloads_are_canonicalised() {
        assert_eq!(canonical_bits(f32::from_bits(0x7fc0_1234)), 0x7fc0_0000);
        assert_eq!(canonical_bits(f32::from_bits(0xffc0_0000)), 0x7fc0_0000);
        assert_eq!(canonical_bits(-0.0), 0x8000_0000);
        let t = Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(t.as_matrix_dims(), (1, 3));
        assert_eq!(t.canonical_bytes().len(), 12);
    }
}
