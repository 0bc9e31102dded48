//! Owns: inverted dropout driven by the counter-based generator.
//!
//! Element `i` is kept iff `u_i >= p`, where `u_i = (w >> 8) / 2^24` and `w` is output `i` of
//! [`CounterRng`] stream `(seed, stream)`: the mask depends only on `(seed, stream, i)`, never
//! on thread count or chunking. Kept elements are multiplied by `scale = 1 / (1 - p)` (one `f32`
//! division), dropped ones become `+0.0`. The backward pass recomputes the same mask.

use super::for_each_chunk;
use crate::rng::CounterRng;
use crate::tensor::{OpError, OpResult, check_len};

fn check_p(op: &'static str, p: f32) -> OpResult<f32> {
    if (0.0..1.0).contains(&p) {
        Ok(1.0 / (1.0 - p))
    } else {
        Err(OpError::Parameter {
            op,
            name: "p",
            value: p,
        })
    }
}

/// Whether element `index` survives dropout with probability `p` of being dropped.
pub fn dropout_keep(seed: u64, stream: u64, index: u64, p: f32) -> bool {
    CounterRng::at(seed, stream, index).uniform_f32() >= p
}

/// `out[i] = keep(i) ? x[i] * scale : 0`, the mask of chunk starting at `start`.
fn apply(out: &mut [f32], x: &[f32], (seed, stream, start): (u64, u64, usize), p: f32, scale: f32) {
    // Chunks start at multiples of 4, so one Philox block serves four elements.
    let mut rng = CounterRng::at(seed, stream, start as u64);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = if rng.uniform_f32() >= p {
            v * scale
        } else {
            0.0
        };
    }
}

/// `y = dropout(x)` with drop probability `p` in `[0, 1)`.
pub fn dropout_forward(y: &mut [f32], x: &[f32], p: f32, seed: u64, stream: u64) -> OpResult<()> {
    check_len("dropout_forward", "x", x.len(), y.len())?;
    let scale = check_p("dropout_forward", p)?;
    for_each_chunk(y, |start, out| {
        apply(out, &x[start..], (seed, stream, start), p, scale)
    });
    Ok(())
}

/// `dx = keep(i) ? dy[i] * scale : 0`, with the mask of the forward call with the same
/// `(p, seed, stream)`.
pub fn dropout_backward(
    dx: &mut [f32],
    dy: &[f32],
    p: f32,
    seed: u64,
    stream: u64,
) -> OpResult<()> {
    check_len("dropout_backward", "dy", dy.len(), dx.len())?;
    let scale = check_p("dropout_backward", p)?;
    for_each_chunk(dx, |start, out| {
        apply(out, &dy[start..], (seed, stream, start), p, scale)
    });
    Ok(())
}
