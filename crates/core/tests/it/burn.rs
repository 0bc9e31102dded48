//! The predictive burn schedule against a constant burn rate, on a demand series with growth,
//! seasonality and noise: the same forecaster and rate rule the chain runs at each epoch end.

use poi_core::burn::{BurnSchedule, Forecaster, mul_ppm, predictive_rate};

const EMISSION: u128 = 1_000_000;
const TARGET_BURN_BPS: u32 = 5_000;
const BAND_BPS: u32 = 2_000;
const EPOCHS: usize = 150;
const WARMUP: usize = 5;

/// Metered demand of each epoch: 2% growth a epoch, a 12-epoch season of +-25%, and +-5%
/// noise from a fixed LCG.
fn demand_series(seed: u64) -> Vec<u128> {
    let mut state = seed;
    (0..EPOCHS)
        .map(|e| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = i128::from((state >> 33) % 101) - 50; // -50..=50 per mille
            let season = [
                0i128, 125, 217, 250, 217, 125, 0, -125, -217, -250, -217, -125,
            ][e % 12];
            let growth = 400_000i128 * (1_000 + 20 * e as i128) / 1_000;
            (growth * (1_000 + season + noise) / 1_000) as u128
        })
        .collect()
}

fn schedule() -> BurnSchedule {
    BurnSchedule::Predictive {
        alpha_ppm: 600_000,
        beta_ppm: 200_000,
        target_burn_bps: TARGET_BURN_BPS,
        band_bps: BAND_BPS,
        initial_rate_ppm: 1_250_000,
        rate_min_ppm: 0,
        rate_max_ppm: 100_000_000,
    }
}

/// Net issuance per epoch under each rule: (predictive, constant).
fn run(demand: &[u128]) -> (Vec<i128>, Vec<i128>) {
    let s = schedule();
    let target = EMISSION * u128::from(TARGET_BURN_BPS) / 10_000;
    // The constant rate is the one exactly right for the first epoch's demand.
    let constant = (target * 1_000_000 / demand[0]) as u64;
    let mut f = Forecaster::default();
    let mut rate = constant;
    let (mut predictive, mut fixed) = (Vec::new(), Vec::new());
    for &d in demand {
        predictive.push(EMISSION as i128 - mul_ppm(d, rate) as i128);
        fixed.push(EMISSION as i128 - mul_ppm(d, constant) as i128);
        f.observe(d, 600_000, 200_000);
        rate = predictive_rate(&s, f.forecast(), EMISSION);
    }
    (predictive, fixed)
}

fn variance(xs: &[i128]) -> i128 {
    let n = xs.len() as i128;
    let mean = xs.iter().sum::<i128>() / n;
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<i128>() / n
}

fn in_band(xs: &[i128]) -> usize {
    let target = (EMISSION * u128::from(10_000 - TARGET_BURN_BPS) / 10_000) as i128;
    let half = (EMISSION * u128::from(BAND_BPS) / 10_000) as i128;
    xs.iter().filter(|x| (**x - target).abs() <= half).count()
}

#[test]
fn the_predictive_schedule_keeps_net_issuance_in_band_with_less_variance_than_a_constant_rate() {
    for seed in [1u64, 7, 42, 2026] {
        let demand = demand_series(seed);
        let (predictive, fixed) = run(&demand);
        let (p, c) = (&predictive[WARMUP..], &fixed[WARMUP..]);
        let (vp, vc) = (variance(p), variance(c));
        let (bp, bc) = (in_band(p), in_band(c));
        eprintln!(
            "seed {seed}: epochs in band: predictive {bp}/{n}, constant {bc}/{n}; \
             net issuance std: predictive {:.0}, constant {:.0}",
            (vp as f64).sqrt(),
            (vc as f64).sqrt(),
            n = p.len()
        );
        assert!(
            vp * 10 < vc,
            "seed {seed}: predictive variance {vp} is not a tenth of constant's {vc}"
        );
        assert!(
            bp * 100 >= p.len() * 95,
            "seed {seed}: predictive in band {bp} of {}",
            p.len()
        );
        assert!(
            bp > bc,
            "seed {seed}: predictive {bp} vs constant {bc} epochs in band"
        );
    }
}

#[test]
fn a_demand_collapse_raises_the_rate_only_up_to_its_cap() {
    let s = schedule();
    let mut f = Forecaster::default();
    for d in [1_000_000u128, 1_000_000, 10, 0, 0] {
        f.observe(d, 600_000, 200_000);
    }
    assert_eq!(
        f.forecast(),
        0,
        "a collapse forecasts no demand, never negative"
    );
    assert_eq!(predictive_rate(&s, f.forecast(), EMISSION), 100_000_000);
}
