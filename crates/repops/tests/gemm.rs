//! The GEMM gives the canonical bits on every path, thread count and blocking.

use poi_repops::gemm::{Accumulate, Dims, GemmConfig, SimdPath, Trans, gemm_with, reference_gemm};
use poi_repops::rng::CounterRng;
use proptest::prelude::*;

/// Values spanning many binades, so that any change in rounding order changes bits.
fn data(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = CounterRng::new(seed, 0);
    (0..len)
        .map(|_| {
            let scale = [1.0, 1e-3, 37.0, 0.5, 1e3][rng.below(5) as usize];
            rng.normal_f32() * scale
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

struct Case {
    dims: Dims,
    ta: Trans,
    tb: Trans,
    acc: Accumulate,
    a: Vec<f32>,
    b: Vec<f32>,
    c0: Vec<f32>,
}

impl Case {
    fn new(dims: Dims, ta: Trans, tb: Trans, acc: Accumulate, seed: u64) -> Self {
        let Dims { m, k, n } = dims;
        Self {
            dims,
            ta,
            tb,
            acc,
            a: data(seed, m * k),
            b: data(seed + 1, k * n),
            c0: data(seed + 2, m * n),
        }
    }

    fn reference(&self) -> Vec<u32> {
        let mut c = match self.acc {
            Accumulate::Add => self.c0.clone(),
            Accumulate::Overwrite => vec![0.0; self.c0.len()],
        };
        reference_gemm(&mut c, &self.a, self.ta, &self.b, self.tb, self.dims);
        bits(&c)
    }

    fn run(&self, cfg: &GemmConfig) -> Vec<u32> {
        // Overwrite must ignore what is in C, so start from garbage.
        let mut c = self.c0.clone();
        gemm_with(
            cfg, &mut c, &self.a, self.ta, &self.b, self.tb, self.dims, self.acc,
        )
        .unwrap();
        bits(&c)
    }
}

const TRANS: [(Trans, Trans); 4] = [
    (Trans::No, Trans::No),
    (Trans::Yes, Trans::No),
    (Trans::No, Trans::Yes),
    (Trans::Yes, Trans::Yes),
];

fn configs() -> Vec<GemmConfig> {
    let mut out = Vec::new();
    for path in SimdPath::supported() {
        let base = GemmConfig::new(path);
        out.push(GemmConfig {
            min_parallel_fmas: 0,
            ..base
        });
        out.push(GemmConfig {
            kc: 3,
            mc: 7,
            nc: 17,
            max_tasks: 3,
            min_parallel_fmas: 0,
            ..base
        });
        out.push(GemmConfig {
            kc: 1,
            mc: 1,
            nc: 1,
            max_tasks: 1,
            ..base
        });
        out.push(GemmConfig {
            kc: 16,
            mc: 48,
            nc: 32,
            max_tasks: 8,
            min_parallel_fmas: 0,
            ..base
        });
    }
    out
}

#[test]
fn every_path_and_blocking_matches_the_reference_on_edge_shapes() {
    let sizes = [0usize, 1, 2, 5, 9, 17, 33];
    let cfgs = configs();
    let mut seed = 0;
    for &m in &sizes {
        for &k in &[0usize, 1, 4, 19, 40] {
            for &n in &sizes {
                for (ta, tb) in TRANS {
                    for acc in [Accumulate::Overwrite, Accumulate::Add] {
                        seed += 3;
                        let case = Case::new(Dims::new(m, k, n), ta, tb, acc, seed);
                        let want = case.reference();
                        for cfg in &cfgs {
                            assert_eq!(
                                case.run(cfg),
                                want,
                                "{m}x{k}x{n} {ta:?} {tb:?} {acc:?} {cfg:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn thread_pools_of_one_two_and_eight_give_the_same_bits() {
    let case = Case::new(
        Dims::new(61, 45, 50),
        Trans::No,
        Trans::Yes,
        Accumulate::Add,
        99,
    );
    let want = case.reference();
    for threads in [1, 2, 8] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for path in SimdPath::supported() {
            let cfg = GemmConfig {
                min_parallel_fmas: 0,
                kc: 20,
                ..GemmConfig::new(path)
            };
            assert_eq!(
                pool.install(|| case.run(&cfg)),
                want,
                "{threads} threads, {path}"
            );
        }
    }
}

#[test]
fn a_zero_inner_dimension_gives_positive_zeros_or_leaves_c() {
    for path in SimdPath::supported() {
        let cfg = GemmConfig::new(path);
        let mut c = vec![-1.0f32; 6];
        gemm_with(
            &cfg,
            &mut c,
            &[],
            Trans::No,
            &[],
            Trans::No,
            Dims::new(2, 0, 3),
            Accumulate::Add,
        )
        .unwrap();
        assert_eq!(c, vec![-1.0; 6]);
        gemm_with(
            &cfg,
            &mut c,
            &[],
            Trans::No,
            &[],
            Trans::No,
            Dims::new(2, 0, 3),
            Accumulate::Overwrite,
        )
        .unwrap();
        assert!(c.iter().all(|x| x.to_bits() == 0));
    }
}

#[test]
fn negative_zero_products_start_from_positive_zero() {
    // fma(-1, 0, +0) = +0: the chain starts at +0.0, not at the first product.
    let mut c = vec![7.0f32; 1];
    for path in SimdPath::supported() {
        let cfg = GemmConfig::new(path);
        gemm_with(
            &cfg,
            &mut c,
            &[-1.0],
            Trans::No,
            &[0.0],
            Trans::No,
            Dims::new(1, 1, 1),
            Accumulate::Overwrite,
        )
        .unwrap();
        assert_eq!(c[0].to_bits(), 0, "{path}");
    }
}

#[test]
fn bad_lengths_and_unsupported_paths_are_errors() {
    let cfg = GemmConfig::new(SimdPath::Scalar);
    let mut c = vec![0.0; 4];
    let err = gemm_with(
        &cfg,
        &mut c,
        &[0.0; 3],
        Trans::No,
        &[0.0; 4],
        Trans::No,
        Dims::new(2, 2, 2),
        Accumulate::Add,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "gemm: `a` has 3 elements, expected 4");
    for path in SimdPath::ALL {
        assert_eq!(GemmConfig::with_path(path).is_ok(), path.is_supported());
    }
    assert!(SimdPath::Scalar.is_supported());
    assert_eq!(SimdPath::parse("AVX2"), Some(SimdPath::Avx2));
    assert_eq!(SimdPath::parse("auto"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_shapes_agree_across_paths(
        m in 0usize..40, k in 0usize..70, n in 0usize..40,
        tr in 0usize..4, add: bool, kc in 1usize..80, seed: u64,
    ) {
        let (ta, tb) = TRANS[tr];
        let acc = if add { Accumulate::Add } else { Accumulate::Overwrite };
        let case = Case::new(Dims::new(m, k, n), ta, tb, acc, seed % 1_000_000);
        let want = case.reference();
        for path in SimdPath::supported() {
            let cfg = GemmConfig { kc, min_parallel_fmas: 0, ..GemmConfig::new(path) };
            prop_assert_eq!(case.run(&cfg), want.clone());
        }
    }
}
