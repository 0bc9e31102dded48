//! Owns: elementwise operators (bias, ReLU, GELU, add, scale) and the bias gradient.
//!
//! Invariant: each output element is a fixed expression of the same-index inputs, evaluated
//! in the order written in its doc (Rust never contracts `a * b + c` into an fma).

use super::{column_sums, for_each_chunk};
use crate::tensor::{OpResult, check_len, checked_elems};

/// `sqrt(2 / pi)`, rounded to `f32`.
const GELU_C: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh GELU.
const GELU_A: f32 = 0.044_715;
/// `3 * GELU_A`, rounded to `f32` (the derivative's coefficient).
const GELU_3A: f32 = 0.134_145;

/// `x[r][c] += bias[c]` for an `rows x cols` matrix.
pub fn bias_add(x: &mut [f32], bias: &[f32], rows: usize, cols: usize) -> OpResult<()> {
    const OP: &str = "bias_add";
    check_len(OP, "x", x.len(), checked_elems(OP, &[rows, cols])?)?;
    check_len(OP, "bias", bias.len(), cols)?;
    super::for_each_row(x, cols, |_, row| {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    });
    Ok(())
}

/// `dbias[c] = sum_r dy[r][c]`, each column summed sequentially over rows `0..rows` from
/// `+0.0`.
pub fn bias_grad(dbias: &mut [f32], dy: &[f32], rows: usize, cols: usize) -> OpResult<()> {
    const OP: &str = "bias_grad";
    check_len(OP, "dy", dy.len(), checked_elems(OP, &[rows, cols])?)?;
    check_len(OP, "dbias", dbias.len(), cols)?;
    column_sums(dbias, rows, |r, c| dy[r * cols + c]);
    Ok(())
}

/// `y = max(x, 0)` (`x > 0 ? x : +0.0`; NaN gives `+0.0`).
pub fn relu_forward(y: &mut [f32], x: &[f32]) -> OpResult<()> {
    check_len("relu_forward", "x", x.len(), y.len())?;
    for_each_chunk(y, |start, out| {
        for (o, &v) in out.iter_mut().zip(&x[start..]) {
            *o = if v > 0.0 { v } else { 0.0 };
        }
    });
    Ok(())
}

/// `dx = x > 0 ? dy : +0.0`.
pub fn relu_backward(dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()> {
    check_len("relu_backward", "dy", dy.len(), dx.len())?;
    check_len("relu_backward", "x", x.len(), dx.len())?;
    for_each_chunk(dx, |start, out| {
        for ((o, &g), &v) in out.iter_mut().zip(&dy[start..]).zip(&x[start..]) {
            *o = if v > 0.0 { g } else { 0.0 };
        }
    });
    Ok(())
}

/// The tanh form of GELU (as in GPT-2):
/// `u = C * (x + A * ((x * x) * x))`, `y = (0.5 * x) * (1 + tanhf(u))` with
/// `C = sqrt(2 / pi)`, `A = 0.044715` and `libm::tanhf`.
#[inline]
fn gelu(x: f32) -> f32 {
    let u = GELU_C * (x + GELU_A * (x * x * x));
    (0.5 * x) * (1.0 + libm::tanhf(u))
}

/// `dy/dx` of [`gelu`]:
/// `0.5 * (1 + t) + ((0.5 * x) * (1 - t * t)) * (C * (1 + 3A * (x * x)))`, `t = tanhf(u)`.
#[inline]
fn gelu_grad(x: f32) -> f32 {
    let u = GELU_C * (x + GELU_A * (x * x * x));
    let t = libm::tanhf(u);
    let du = GELU_C * (1.0 + GELU_3A * (x * x));
    0.5 * (1.0 + t) + ((0.5 * x) * (1.0 - t * t)) * du
}

/// `y = gelu(x)`, the tanh approximation (see the module constants for the exact expression).
pub fn gelu_forward(y: &mut [f32], x: &[f32]) -> OpResult<()> {
    check_len("gelu_forward", "x", x.len(), y.len())?;
    for_each_chunk(y, |start, out| {
        for (o, &v) in out.iter_mut().zip(&x[start..]) {
            *o = gelu(v);
        }
    });
    Ok(())
}

/// `dx = dy * gelu'(x)`.
pub fn gelu_backward(dx: &mut [f32], dy: &[f32], x: &[f32]) -> OpResult<()> {
    check_len("gelu_backward", "dy", dy.len(), dx.len())?;
    check_len("gelu_backward", "x", x.len(), dx.len())?;
    for_each_chunk(dx, |start, out| {
        for ((o, &g), &v) in out.iter_mut().zip(&dy[start..]).zip(&x[start..]) {
            *o = g * gelu_grad(v);
        }
    });
    Ok(())
}

/// `out = a + b` elementwise (a residual connection).
pub fn add_into(out: &mut [f32], a: &[f32], b: &[f32]) -> OpResult<()> {
    check_len("add_into", "a", a.len(), out.len())?;
    check_len("add_into", "b", b.len(), out.len())?;
    for_each_chunk(out, |start, o| {
        for ((o, &x), &y) in o.iter_mut().zip(&a[start..]).zip(&b[start..]) {
            *o = x + y;
        }
    });
    Ok(())
}

/// `acc += x` elementwise (gradient accumulation; fixed order of calls gives fixed bits).
pub fn add_assign(acc: &mut [f32], x: &[f32]) -> OpResult<()> {
    check_len("add_assign", "x", x.len(), acc.len())?;
    for_each_chunk(acc, |start, o| {
        for (o, &v) in o.iter_mut().zip(&x[start..]) {
            *o += v;
        }
    });
    Ok(())
}

/// `x *= s` elementwise.
pub fn scale_inplace(x: &mut [f32], s: f32) {
    for_each_chunk(x, |_, o| {
        for v in o {
            *v *= s;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_known_values() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_192).abs() < 1e-5);
        assert!((gelu(-1.0) + 0.158_808).abs() < 1e-5);
        assert!((gelu_grad(0.0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn bias_grad_sums_columns_in_row_order() {
        let dy = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut db = [9.0; 2];
        bias_grad(&mut db, &dy, 3, 2).unwrap();
        assert_eq!(db, [9.0, 12.0]);
        assert!(bias_grad(&mut db, &dy, 2, 2).is_err());
    }
}
