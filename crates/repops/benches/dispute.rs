//! Dispute primitives on the default char LM (`d 64, 4 heads, 2 blocks, context 64`, batch
//! 16): one training step plain vs traced (the overhead of serving a trace), and the
//! referee's one-operator execution of the step's biggest operator and of `step_state`.
//!
//! `POI_BENCH_THREADS` (default 1) sets the pool size. After the criterion groups the bench
//! prints a table measured with interleaved rounds (plain and traced steps alternate; each
//! keeps its fastest round), so that noise from other work on the machine hits both alike.
//! `POI_BENCH_TABLE_ONLY=1` skips criterion.
//!
//! Run: `cargo bench -p poi-repops --bench dispute`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use poi_repops::backend::CpuBackend;
use poi_repops::exec::Exec;
use poi_repops::meter::{OpKind, op_cost};
use poi_repops::trace::{Layout, OpCall, check_call};
use poi_repops::train::{self, JobSpec, Trainer, step_batch};

/// Interleaved rounds of the ratio table.
const ROUNDS: u32 = 10;

struct Fixture {
    spec: JobSpec,
    trainer: Trainer,
    layout: Layout,
    biggest: (u32, OpCall),
    state: (u32, OpCall),
}

fn fixture() -> Fixture {
    let spec = JobSpec::default_for("charlm", None, 2, 1).unwrap();
    let mut trainer = Trainer::new(&spec).unwrap();
    trainer.train_step(&mut Exec::new(&CpuBackend)).unwrap();
    let layout = Layout::of(&spec, 2).unwrap();
    let flops = |i: usize| {
        let e = &layout.entries()[i];
        op_cost(e.kind, &e.dims).flops
    };
    let big = (0..layout.len())
        .max_by_key(|&i| (flops(i), usize::MAX - i))
        .unwrap();
    let capture = |i: usize| {
        let mut exec = Exec::new(&CpuBackend).with_capture(i as u32);
        trainer.clone().train_step(&mut exec).unwrap();
        (i as u32, exec.take_captured().unwrap())
    };
    let (biggest, state) = (capture(big), capture(layout.len() - 1));
    assert_eq!(state.1.kind, OpKind::StepState);
    Fixture {
        spec,
        trainer,
        layout,
        biggest,
        state,
    }
}

fn step(trainer: &Trainer, traced: bool) -> Duration {
    let mut t = trainer.clone();
    let exec = Exec::new(&CpuBackend);
    let mut exec = if traced { exec.with_trace() } else { exec };
    let start = Instant::now();
    black_box(t.train_step(&mut exec).unwrap());
    start.elapsed()
}

fn referee(f: &Fixture, call: &OpCall) -> Duration {
    let mut exec = Exec::new(&CpuBackend);
    let start = Instant::now();
    black_box(f.layout.execute(&mut exec, call).unwrap());
    start.elapsed()
}

fn criterion_groups(f: &Fixture) {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut g = c.benchmark_group("charlm_step");
    for (name, traced) in [("plain", false), ("traced", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || f.trainer.clone(),
                |mut t| {
                    let exec = Exec::new(&CpuBackend);
                    let mut exec = if traced { exec.with_trace() } else { exec };
                    t.train_step(&mut exec).unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    let mut g = c.benchmark_group("referee");
    for (name, call) in [("biggest_op", &f.biggest.1), ("step_state", &f.state.1)] {
        g.bench_function(name, |b| {
            b.iter(|| f.layout.execute(&mut Exec::new(&CpuBackend), call).unwrap())
        });
    }
    g.finish();
}

fn table(f: &Fixture) {
    let (mut plain, mut traced) = (Duration::MAX, Duration::MAX);
    let (mut big, mut state) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        plain = plain.min(step(&f.trainer, false));
        traced = traced.min(step(&f.trainer, true));
        big = big.min(referee(f, &f.biggest.1));
        state = state.min(referee(f, &f.state.1));
    }
    let (i, call) = &f.biggest;
    let trace = {
        let mut t = f.trainer.clone();
        let mut exec = Exec::new(&CpuBackend).with_trace();
        t.train_step(&mut exec).unwrap();
        exec.take_trace()
    };
    let batch = step_batch(&f.spec, 2).unwrap();
    let ckpt = f.trainer.checkpoint().unwrap();
    let start = Instant::now();
    check_call(&f.layout, *i, call, &trace[..*i as usize], &ckpt, &batch).unwrap();
    let check = start.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let flops = op_cost(call.kind, &call.dims).flops;
    println!(
        "\ndispute primitives, default char LM, {} entries per step",
        f.layout.len()
    );
    println!("plain step   {:8.2} ms", ms(plain));
    println!(
        "traced step  {:8.2} ms  ({:.3}x plain)",
        ms(traced),
        ms(traced) / ms(plain)
    );
    println!(
        "referee op {i} {} {:?} ({:.1} MFLOP): {:.3} ms, check_call {:.3} ms",
        call.kind,
        call.dims,
        flops as f64 * 1e-6,
        ms(big),
        ms(check)
    );
    println!(
        "referee step_state (hash {} values): {:.3} ms",
        call_len(&f.state.1),
        ms(state)
    );
}

fn call_len(call: &OpCall) -> usize {
    call.inputs.iter().map(Vec::len).sum()
}

fn main() {
    let threads = std::env::var("POI_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    train::with_threads(threads, || {
        let f = fixture();
        if std::env::var("POI_BENCH_TABLE_ONLY").is_err() {
            criterion_groups(&f);
        }
        table(&f);
    })
    .unwrap();
}
