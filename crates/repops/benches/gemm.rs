//! Deterministic GEMM vs the `gemm` crate (0.19) and `matrixmultiply` (0.3), on the MLP and
//! transformer shapes poi trains, 1 or 2 threads.
//!
//! `POI_BENCH_THREADS` (1 or 2, default 1) sets the thread count of every contender for the
//! whole process: poi splits rows over a rayon pool of that size, `gemm` gets
//! `Parallelism::None` (1) or `Parallelism::Rayon(n)`, `matrixmultiply` (built with its
//! `threading` feature) gets `MATMUL_NUM_THREADS=n`, which it reads once per process.
//!
//! After the criterion groups the bench prints a ratio table measured with interleaved rounds
//! (each round times a batch of every contender in turn; the table keeps each one's fastest
//! batch), so that noise from other work on the machine hits every contender alike.
//! `POI_BENCH_TABLE_ONLY=1` skips criterion and prints only the table; `POI_BENCH_SHAPES`
//! (`512x512x512,64x11x64`) picks shapes; `POI_BENCH_{KC,MC,NC,TASKS,MIN_PAR,ROUNDS}` override
//! poi's blocking and threading knobs (none changes a result bit) for tuning.
//!
//! Run: `POI_BENCH_THREADS=1 cargo bench -p poi-repops --features compare --bench gemm` (then `=2`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use poi_repops::gemm::{Accumulate, Dims, GemmConfig, Trans, gemm_with};

/// `(m, k, n)`: MLP layers, then transformer projections, then square references.
const ALL_SHAPES: [(usize, usize, usize); 11] = [
    (64, 11, 64),
    (256, 11, 128),
    (128, 64, 64),
    (256, 64, 128),
    (256, 128, 128),
    (256, 128, 512),
    (256, 512, 128),
    (256, 128, 64),
    (256, 128, 11),
    (256, 256, 256),
    (512, 512, 512),
];

const CONTENDERS: [&str; 3] = ["poi", "gemm", "matrixmultiply"];

/// Interleaved rounds per shape in the ratio table (`POI_BENCH_ROUNDS` overrides).
const ROUNDS: usize = 60;

struct Bufs {
    dims: Dims,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Bufs {
    fn new((m, k, n): (usize, usize, usize)) -> Self {
        let fill = |len: usize, s: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7 + s) % 23) as f32 * 0.1 - 1.1)
                .collect()
        };
        Self {
            dims: Dims::new(m, k, n),
            a: fill(m * k, 1),
            b: fill(k * n, 2),
            c: vec![0.0; m * n],
        }
    }

    fn run(&mut self, who: &str, cfg: &GemmConfig, threads: usize) {
        let Dims { m, k, n } = self.dims;
        let (a, b, c) = (self.a.as_ptr(), self.b.as_ptr(), self.c.as_mut_ptr());
        match who {
            "poi" => gemm_with(
                cfg,
                &mut self.c,
                &self.a,
                Trans::No,
                &self.b,
                Trans::No,
                self.dims,
                Accumulate::Overwrite,
            )
            .expect("bench shapes are consistent"),
            "gemm" => {
                let par = if threads == 1 {
                    gemm::Parallelism::None
                } else {
                    gemm::Parallelism::Rayon(threads)
                };
                let (m_, n_, k_) = (m as isize, n as isize, k as isize);
                // SAFETY: the buffers hold m x k, k x n and m x n row-major floats.
                unsafe {
                    gemm::gemm(
                        m, n, k, c, 1, n_, false, a, 1, k_, b, 1, n_, 0.0, 1.0, false, false,
                        false, par,
                    );
                }
                let _ = m_;
            }
            _ => {
                // SAFETY: as above.
                unsafe {
                    matrixmultiply::sgemm(
                        m, k, n, 1.0, a, k as isize, 1, b, n as isize, 1, 0.0, c, n as isize, 1,
                    );
                }
            }
        }
        black_box(&self.c);
    }
}

/// Fastest per-call time of each contender over interleaved rounds, and the median over
/// rounds of `poi / fastest other in the same round` (robust when the machine's load comes
/// and goes: both sides of each ratio ran within milliseconds of each other).
fn interleaved(
    bufs: &mut Bufs,
    cfg: &GemmConfig,
    threads: usize,
    rounds: usize,
) -> ([f64; 3], f64) {
    let Dims { m, k, n } = bufs.dims;
    let flops = (m * k * n) as f64;
    // About 2 ms per batch at ~50 GFMA/s.
    let iters = ((1e8 / flops) as usize).clamp(1, 20_000);
    let mut best = [f64::INFINITY; 3];
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..2 {
        for who in CONTENDERS {
            bufs.run(who, cfg, threads);
        }
    }
    for _round in 0..rounds {
        let mut this = [0.0; 3];
        for (slot, who) in CONTENDERS.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..iters {
                bufs.run(who, cfg, threads);
            }
            this[slot] = start.elapsed().as_secs_f64() / iters as f64;
            best[slot] = best[slot].min(this[slot]);
        }
        ratios.push(this[0] / this[1].min(this[2]));
    }
    ratios.sort_by(f64::total_cmp);
    (best, ratios[ratios.len() / 2])
}

fn main() {
    // `POI_BENCH_SHAPES=512x512x512,256x128x128` restricts the run.
    let picked: Vec<(usize, usize, usize)> = std::env::var("POI_BENCH_SHAPES")
        .map(|v| {
            v.split(',')
                .filter_map(|s| {
                    let d: Vec<usize> = s.split('x').filter_map(|x| x.parse().ok()).collect();
                    (d.len() == 3).then(|| (d[0], d[1], d[2]))
                })
                .collect()
        })
        .unwrap_or_else(|_| ALL_SHAPES.to_vec());
    let threads: usize = std::env::var("POI_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // SAFETY: no other thread exists yet; matrixmultiply reads this once, on first use.
    unsafe { std::env::set_var("MATMUL_NUM_THREADS", threads.to_string()) };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("first pool");
    let mut cfg = GemmConfig::global();
    let knob = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // Blocking knobs for tuning (they never change results, only speed).
    cfg.kc = knob("POI_BENCH_KC", cfg.kc);
    cfg.mc = knob("POI_BENCH_MC", cfg.mc);
    cfg.nc = knob("POI_BENCH_NC", cfg.nc);
    cfg.max_tasks = knob("POI_BENCH_TASKS", cfg.max_tasks);
    cfg.min_parallel_fmas = knob("POI_BENCH_MIN_PAR", cfg.min_parallel_fmas);
    let rounds = knob("POI_BENCH_ROUNDS", ROUNDS).max(1);
    let table_only = std::env::var("POI_BENCH_TABLE_ONLY").is_ok_and(|v| v == "1");
    if !table_only {
        let mut criterion = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .configure_from_args();
        for &shape in &picked {
            let mut group = criterion.benchmark_group(format!(
                "gemm_{}x{}x{}_{threads}t",
                shape.0, shape.1, shape.2
            ));
            let mut bufs = Bufs::new(shape);
            for who in CONTENDERS {
                group.bench_function(who, |bench| bench.iter(|| bufs.run(who, &cfg, threads)));
            }
            group.finish();
        }
        criterion.final_summary();
    }
    println!(
        "\n{threads} thread(s), poi path {}; fastest time per call; ratio = poi / fastest \
         other; median = median over rounds of the same ratio within one round",
        cfg.path
    );
    println!(
        "{:>14} {:>10} {:>10} {:>10} {:>7} {:>7} {:>9}",
        "m x k x n", "poi us", "gemm us", "mm us", "ratio", "median", "poi GF/s"
    );
    for &shape in &picked {
        let mut bufs = Bufs::new(shape);
        let ([ours, gemm_t, mm_t], median) = interleaved(&mut bufs, &cfg, threads, rounds);
        let gflops = 2.0 * (shape.0 * shape.1 * shape.2) as f64 / ours / 1e9;
        println!(
            "{:>14} {:>10.2} {:>10.2} {:>10.2} {:>7.3} {:>7.3} {:>9.1}",
            format!("{}x{}x{}", shape.0, shape.1, shape.2),
            ours * 1e6,
            gemm_t * 1e6,
            mm_t * 1e6,
            ours / gemm_t.min(mm_t),
            median,
            gflops
        );
    }
}
