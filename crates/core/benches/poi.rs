//! Proof-of-Intelligence benchmarks (the table of `docs/benchmarks.md`, "Proof of
//! Intelligence"):
//!
//! 1. **Detection rate**: 1,000 seeded draws over a 4,096-segment job with 5% of its segments
//!    faked, through the chain's own selection (`poi::spot::selected`), against the theory
//!    `1 - (1 - f)^s`.
//! 2. **Honest verification compute**: real repops jobs (MLP on wine quality, char LM on De
//!    finibus) trained once; for 20 seeds, the segments the chain selects are re-executed with
//!    `train::verify_segment`, plus one eval pass, and compared with the training compute in
//!    deterministic metered FLOPs (and wall time).
//! 3. **Inference verification**: the share of requests re-executed at `r` = 2%, 3%, 5%.
//! 4. **Dispute rounds** of the on-chain dissection (`poi::dissection`) played to the end
//!    against a provider that faked from a random step, by job size, against the bound.
//!
//! Run: `cargo bench -p poi-core --bench poi` (`POI_BENCH_QUICK=1` skips the char LM).

use std::time::Instant;

use poi_core::poi::dissection::{
    Dissection, DissectionParams, Move, Opening, Outcome, Party, PhaseKind, Status, rounds_bound,
    split_points,
};
use poi_core::poi::spot::selected;
use poi_core::poi::{PoiJob, PoiKind, PoiParams, PoiStatus};
use poi_repops::backend::CpuBackend;
use poi_repops::exec::Exec;
use poi_repops::train::{self, JobSpec, Trainer, checkpoint_path, read_digests, train_job};

fn job(kind: PoiKind, steps: u64, segment_steps: u64, segments: u64) -> PoiJob {
    PoiJob {
        id: 1,
        kind,
        steps,
        segment_steps,
        segments,
        spec_hash: [0; 32],
        commitment: None,
        status: PoiStatus::Verifying,
        draw_target: None,
        randomness: None,
        checks: 0,
        checks_pending: 0,
        quality: None,
        model_id: None,
        canary_revealed: false,
        disputes: 0,
        disputes_open: 0,
    }
}

fn seed(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

fn detection() {
    println!("\n## Detection: 4,096 segments, 5% faked (s = 205), 1,000 seeded runs");
    println!("| f (check_bps) | detected | theory 1-(1-f)^s |");
    println!("|---|---|---|");
    let segments = 4_096u64;
    let faked_count = 205usize;
    let j = job(PoiKind::Training, segments, 1, segments);
    for bps in [100u32, 200, 300, 400, 500] {
        let runs = 1_000u64;
        let mut caught = 0u64;
        for run in 0..runs {
            // The cheater's faked segments: a seeded sample, never the last (always checked).
            let mut faked = std::collections::BTreeSet::new();
            let mut k = 0u64;
            while faked.len() < faked_count {
                let h = blake3::hash(&[run.to_le_bytes(), k.to_le_bytes()].concat());
                let s = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()) % (segments - 1);
                faked.insert(s);
                k += 1;
            }
            let picked = selected(&j, &seed(run + 1_000_000), bps, bps);
            if picked.iter().any(|c| match c {
                poi_core::poi::checks::CheckSubject::Segment(s) => faked.contains(s),
                _ => false,
            }) {
                caught += 1;
            }
        }
        let f = f64::from(bps) / 10_000.0;
        let theory = 1.0 - (1.0 - f).powi(faked_count as i32);
        println!(
            "| {:.0}% ({bps}) | {:.1}% | {:.1}% |",
            f * 100.0,
            caught as f64 * 100.0 / runs as f64,
            theory * 100.0
        );
    }
}

fn verification(name: &str, spec: JobSpec) {
    let params = PoiParams::default();
    let k = params.segment_steps(spec.steps).unwrap();
    let mut spec = spec;
    spec.checkpoint_every = k;
    let segments = spec.steps.div_ceil(k);
    let dir = tempfile::tempdir().unwrap();
    let summary = train::with_threads(1, || train_job(&spec, dir.path(), &CpuBackend, &mut |_| {}))
        .unwrap()
        .unwrap();
    let file = read_digests(&dir.path().join(train::DIGESTS_FILE)).unwrap();
    // One eval pass of the final model (the eval check re-runs it for the model and its base).
    let ckpt = poi_repops::commit::read_checkpoint(&checkpoint_path(dir.path(), spec.steps), None)
        .unwrap();
    let mut trainer = Trainer::from_checkpoint(&spec, &ckpt).unwrap();
    let mut exec = Exec::new(&CpuBackend);
    let t = Instant::now();
    trainer.evaluate(&mut exec).unwrap();
    let eval_seconds = t.elapsed().as_secs_f64();
    let eval_flops = exec.meter().total().flops * 2; // model and base
    let j = job(PoiKind::Training, spec.steps, k, segments);
    let seeds = 20u64;
    let (mut flops, mut seconds, mut checks) = (0u64, 0f64, 0usize);
    for s in 0..seeds {
        let picked = selected(&j, &seed(s), params.check_bps, params.infer_check_bps);
        checks += picked.len();
        for c in picked {
            let poi_core::poi::checks::CheckSubject::Segment(seg) = c else {
                continue;
            };
            let from = seg * k;
            let steps = k.min(spec.steps - from);
            let report = train::with_threads(1, || {
                train::verify_segment(
                    &spec,
                    (&checkpoint_path(dir.path(), from), Some(from)),
                    &file.digests,
                    &file.root,
                    steps,
                    &CpuBackend,
                )
            })
            .unwrap()
            .unwrap();
            assert!(report.first_mismatch.is_none());
            flops += report.flops;
            seconds += report.seconds;
        }
    }
    // The revealed eval set is `select_permille` (500) of the public eval split, and eval cost
    // is linear in the records, so the eval check costs half a full pass per model.
    let half = 0.5;
    let per_job_flops = flops as f64 / seeds as f64 + eval_flops as f64 * half;
    let per_job_seconds = seconds / seeds as f64 + 2.0 * eval_seconds * half;
    println!(
        "| {name} | {} steps, k = {k}, {segments} segments | {:.1} | {:.2}% | {:.2}% | {:.2}% | {:.2}% |",
        spec.steps,
        checks as f64 / seeds as f64,
        flops as f64 / seeds as f64 * 100.0 / summary.flops as f64,
        eval_flops as f64 * half * 100.0 / summary.flops as f64,
        per_job_flops * 100.0 / summary.flops as f64,
        per_job_seconds * 100.0 / summary.train_seconds,
    );
}

fn inference() {
    println!("\n## Inference verification: share of requests re-executed (1,000 seeds)");
    println!("| r | m = 32 | m = 256 | m = 4,096 |");
    println!("|---|---|---|---|");
    for bps in [200u32, 300, 500] {
        let mut row = format!("| {}% |", bps / 100);
        for m in [32u64, 256, 4_096] {
            let j = job(PoiKind::Inference, m, 1, m);
            let total: usize = (0..1_000)
                .map(|s| selected(&j, &seed(s), 0, bps).len())
                .sum();
            row.push_str(&format!(
                " {:.2}% |",
                total as f64 * 100.0 / (1_000.0 * m as f64)
            ));
        }
        println!("{row}");
    }
}

/// One side's digest of each point.
type PointFn<'a> = Box<dyn Fn(u64) -> [u8; 32] + 'a>;

/// Plays a full dispute between an honest challenger and a provider whose digests are wrong
/// from step `faked` on (operator `bad_op` of that step); returns (rounds, moves).
fn play(steps: u64, ops: u64, faked: u64, bad_op: u64) -> (u32, u32) {
    let truth = |k: u64| *blake3::hash(&[b"t".as_slice(), &k.to_le_bytes()].concat()).as_bytes();
    let lie = |k: u64| *blake3::hash(&[b"l".as_slice(), &k.to_le_bytes()].concat()).as_bytes();
    let provider_step = |k: u64| if k >= faked { lie(k) } else { truth(k) };
    let op_truth =
        |k: u64| *blake3::hash(&[b"ot".as_slice(), &k.to_le_bytes()].concat()).as_bytes();
    let op_lie = |k: u64| *blake3::hash(&[b"ol".as_slice(), &k.to_le_bytes()].concat()).as_bytes();
    let opening = Opening::full(steps, ops, truth(0), provider_step(steps), truth(steps));
    let mut game = Dissection::open(DissectionParams::default(), &opening, 0).unwrap();
    let mut moves = 0u32;
    let mut now = 0;
    loop {
        let (lo, hi) = game.range();
        let in_ops = matches!(game.phase(), poi_core::poi::dissection::Phase::Ops { .. });
        let (defender, challenger): (PointFn<'_>, PointFn<'_>) = if in_ops {
            let n = ops;
            (
                Box::new(move |k| {
                    if k == n {
                        provider_step(faked)
                    } else if k > bad_op {
                        op_lie(k)
                    } else {
                        op_truth(k)
                    }
                }),
                Box::new(move |k| if k == n { truth(faked) } else { op_truth(k) }),
            )
        } else {
            (Box::new(provider_step), Box::new(truth))
        };
        now += 1;
        let phase = if in_ops {
            PhaseKind::Ops
        } else {
            PhaseKind::Steps
        };
        match game.status().clone() {
            Status::AwaitingReveal { .. } => {
                let digests = game.pending_points().into_iter().map(&defender).collect();
                game.apply(Party::Defender, &Move::Reveal { phase, digests }, now)
                    .unwrap();
            }
            Status::AwaitingPick { .. } => {
                let points = split_points(lo, hi).unwrap();
                let mut pick = (points.len() as u32 + 1, game.disputed().1);
                for (j, (&k, d)) in points.iter().zip(game.pivots()).enumerate() {
                    if challenger(k) != *d {
                        pick = (j as u32 + 1, challenger(k));
                        break;
                    }
                }
                let mv = Move::Pick {
                    phase,
                    index: pick.0,
                    claim: pick.1,
                };
                game.apply(Party::Challenger, &mv, now).unwrap();
            }
            Status::Over(Outcome::Referee(task)) => {
                assert_eq!(
                    (task.step, task.op),
                    (faked, bad_op),
                    "found the first divergence"
                );
                return (game.rounds(), moves);
            }
            Status::Over(other) => panic!("{other:?}"),
        }
        moves += 1;
    }
}

fn disputes() {
    println!("\n## Dispute rounds: honest challenger vs a provider faking from a random step");
    println!("| S | N | rounds (max over 200 games) | bound ceil(log32 S)+ceil(log32 N) | moves |");
    println!("|---|---|---|---|---|");
    for (steps, ops) in [
        (12u64, 26u64),
        (300, 117),
        (4_096, 117),
        (1 << 20, 117),
        (1 << 24, 4_096),
    ] {
        let (mut rounds, mut moves) = (0, 0);
        for g in 0..200u64 {
            let h = blake3::hash(&g.to_le_bytes());
            let r = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap());
            let faked = 1 + r % steps;
            let bad_op = (r >> 32) % ops;
            let (rd, mv) = play(steps, ops, faked, bad_op);
            rounds = rounds.max(rd);
            moves = moves.max(mv);
        }
        println!(
            "| {steps} | {ops} | {rounds} | {} | {moves} |",
            rounds_bound(steps, ops)
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; there is nothing to list.
    }
    detection();
    println!("\n## Honest verification compute (20 seeds; default f = 3%, segments_target 256)");
    println!(
        "| job | shape | checks/job | segments re-run / training FLOPs | eval of model + base on the revealed half | total FLOPs | total wall time |"
    );
    println!("|---|---|---|---|---|---|---|");
    verification(
        "MLP, wine quality",
        JobSpec::default_for("mlp", Some("winequality"), 300, 1).unwrap(),
    );
    if std::env::var_os("POI_BENCH_QUICK").is_none() {
        verification(
            "char LM, De finibus",
            JobSpec::default_for("charlm", None, 300, 1).unwrap(),
        );
    }
    inference();
    disputes();
}
