//! Price discovery: the utilisation window, the base price and the collateral multiplier.
//!
//! Each block ends with one utilisation sample: `load x 10,000 / (online capacity x
//! backlog_blocks)` in bps, rounded down and capped at 10,000 (with no online capacity: 10,000
//! if jobs are queued, else 0). The utilisation `u` is the mean of the last
//! `utilisation_window_blocks` samples, rounded down.
//!
//! Both the base price and the multiplier then move EIP-1559 style toward the target `u*`:
//! `v' = v + v x step_bps x (u - u*) / (u* x 10,000)`, the change limited to `step_bps` of `v`
//! and clamped to the parameter bounds. With a positive `step_bps`, a rise or fall rounds down
//! but is at least one unit (so a small value can still move both ways, down to its floor);
//! with `step_bps` 0 nothing moves.
//! Products saturate instead of overflowing, which only matters past `u128` scale and the
//! bounds then clamp.

use crate::params::BPS_ONE;

use super::params::MarketParams;
use super::records::{JobStatus, MarketState};

/// One block's utilisation sample, bps.
pub fn sample_bps(ms: &MarketState, params: &MarketParams) -> u16 {
    let room = ms
        .capacity_online
        .saturating_mul(u128::from(params.backlog_blocks));
    if room == 0 {
        let queued = ms.jobs_by_status[JobStatus::Queued.index()];
        return if queued > 0 { BPS_ONE } else { 0 };
    }
    let bps = ms.load_units.saturating_mul(u128::from(BPS_ONE)) / room;
    u16::try_from(bps.min(u128::from(BPS_ONE))).expect("capped at 10000")
}

/// `value x num / den` without overflow for `num, den` below 2^64; saturates past `u128`.
fn mul_div(value: u128, num: u128, den: u128) -> u128 {
    (value / den)
        .saturating_mul(num)
        .saturating_add((value % den) * num / den)
}

/// One EIP-1559 step of `value` toward utilisation `target_bps` (see the module docs).
pub fn step(
    value: u128,
    utilisation_bps: u16,
    target_bps: u16,
    step_bps: u16,
    bounds: (u128, u128),
) -> u128 {
    let (u, target, step) = (
        u128::from(utilisation_bps),
        u128::from(target_bps.max(1)),
        u128::from(step_bps),
    );
    let cap = mul_div(value, step, u128::from(BPS_ONE));
    let den = target * u128::from(BPS_ONE);
    if step == 0 || u == target {
        return value.clamp(bounds.0, bounds.1);
    }
    let next = if u > target {
        let rise = mul_div(value, step * (u - target), den).min(cap).max(1);
        value.saturating_add(rise)
    } else {
        let fall = mul_div(value, step * (target - u), den).min(cap).max(1);
        value.saturating_sub(fall)
    };
    next.clamp(bounds.0, bounds.1)
}

/// Samples this block and moves the base price and the multiplier.
pub(crate) fn update(ms: &mut MarketState, params: &MarketParams) {
    ms.samples.push(sample_bps(ms, params));
    let window = params.utilisation_window_blocks as usize;
    if ms.samples.len() > window {
        let excess = ms.samples.len() - window;
        ms.samples.drain(..excess);
    }
    let u = ms.utilisation_bps();
    let target = params.target_utilisation_bps;
    ms.base_price = step(
        ms.base_price,
        u,
        target,
        params.price_step_bps,
        (params.price_min, params.price_max),
    );
    let multiplier = step(
        u128::from(ms.multiplier_ppm),
        u,
        target,
        params.multiplier_step_bps,
        (
            u128::from(params.multiplier_min_ppm),
            u128::from(params.multiplier_max_ppm),
        ),
    );
    ms.multiplier_ppm = u32::try_from(multiplier).expect("clamped to u32 bounds");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_utilisation_and_bounds() {
        let b = (1, 1_000_000);
        // At target nothing moves; at full load +12.5% x 3/7; idle -12.5%.
        assert_eq!(step(1_000, 7_000, 7_000, 1_250, b), 1_000);
        assert_eq!(step(1_000, 10_000, 7_000, 1_250, b), 1_053);
        assert_eq!(step(1_000, 0, 7_000, 1_250, b), 875);
        // The cap binds for a low target; the floor still rises by one unit.
        assert_eq!(step(1_000, 10_000, 1_000, 1_250, b), 1_125);
        assert_eq!(step(1, 10_000, 7_000, 1_250, b), 2);
        assert_eq!(step(1, 0, 7_000, 1_250, b), 1);
        // Small values fall by at least one unit down to the floor; step 0 never moves.
        assert_eq!(step(7, 0, 7_000, 1_250, b), 6);
        assert_eq!(step(2, 6_999, 7_000, 1_250, b), 1);
        assert_eq!(step(7, 10_000, 7_000, 0, b), 7);
        assert_eq!(step(7, 0, 7_000, 0, b), 7);
        let mut price = 1_000;
        for _ in 0..200 {
            price = step(price, 0, 7_000, 1_250, (3, 1_000));
        }
        assert_eq!(price, 3);
        assert_eq!(step(1_000_000, 10_000, 7_000, 1_250, b), 1_000_000);
        assert_eq!(
            step(u128::MAX, 10_000, 7_000, 1_250, (1, u128::MAX)),
            u128::MAX
        );
    }
}
