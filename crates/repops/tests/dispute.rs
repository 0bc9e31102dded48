//! The repops side of disputes: the hand-written layout against real traced steps, the
//! referee's check of a served call, and the referee's one-operator execution.

use poi_repops::backend::CpuBackend;
use poi_repops::commit::{Checkpoint, read_checkpoint, step_digest};
use poi_repops::exec::Exec;
use poi_repops::meter::OpKind;
use poi_repops::model::{Activation, CharLmSpec, MlpSpec, ModelSpec};
use poi_repops::trace::{
    BatchPart, CheckError, Layout, OpCall, Source, TraceEntry, check_call, execute, execute_digest,
    trace_leaves, trace_root, verify_prefix,
};
use poi_repops::train::{
    JobSpec, OptimizerSpec, OwnedBatch, StepReplay, Trainer, checkpoint_path, read_digests,
    step_batch, trace_step, train_job,
};

fn mlp(hidden: Vec<u32>, activation: Activation, optimizer: OptimizerSpec) -> JobSpec {
    let mut spec = JobSpec::default_for("mlp", Some("iris"), 6, 3).unwrap();
    spec.model = ModelSpec::Mlp(MlpSpec { hidden, activation });
    spec.batch = 8;
    spec.optimizer = optimizer;
    spec.checkpoint_every = 2;
    spec
}

fn lm(layers: u32) -> JobSpec {
    let mut spec = JobSpec::default_for("charlm", None, 6, 3).unwrap();
    spec.model = ModelSpec::Charlm(CharLmSpec {
        d_model: 16,
        heads: 2,
        layers,
        context: 8,
        d_ff: 32,
    });
    spec.batch = 3;
    spec.checkpoint_every = 2;
    spec
}

fn specs() -> Vec<JobSpec> {
    vec![
        mlp(vec![8, 6], Activation::Relu, OptimizerSpec::adamw(1e-2)),
        mlp(vec![5], Activation::Gelu, OptimizerSpec::sgd(5e-2, 0.9)),
        lm(1),
        lm(2),
    ]
}

/// One step traced with every call captured: (state before, its batch, trace, calls).
struct Step {
    state: Checkpoint,
    batch: OwnedBatch,
    trace: Vec<TraceEntry>,
    calls: Vec<OpCall>,
    after: Trainer,
}

/// Trains `spec` to step `step - 1`, then traces and captures step `step`.
fn traced(spec: &JobSpec, step: u64) -> Step {
    let mut trainer = Trainer::new(spec).unwrap();
    for _ in 1..step {
        trainer.train_step(&mut Exec::new(&CpuBackend)).unwrap();
    }
    let state = trainer.checkpoint().unwrap();
    let batch = trainer.batch_for(step).unwrap();
    assert_eq!(
        step_batch(spec, step).unwrap(),
        batch,
        "referees recompute the batch"
    );
    let mut exec = Exec::new(&CpuBackend).with_trace().with_capture_all();
    trainer.train_step(&mut exec).unwrap();
    let (trace, calls) = (exec.take_trace(), exec.take_captures());
    Step {
        state,
        batch,
        trace,
        calls,
        after: trainer,
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// The bits input `from` must have, taken from the real run (not from digests).
fn source_bits(s: &Step, outs: &[Vec<Vec<f32>>], from: &Source) -> Vec<u32> {
    match from {
        Source::Op { index, slot } => bits(&outs[*index as usize][*slot as usize]),
        Source::State { name } => {
            let (group, bare) = match name.strip_prefix("param/") {
                Some(bare) => (&s.state.params, bare),
                None => (&s.state.opt, name.strip_prefix("opt/").unwrap()),
            };
            bits(&group.iter().find(|t| t.name == bare).unwrap().data)
        }
        Source::Batch { part } => match (part, &s.batch) {
            (BatchPart::Features, OwnedBatch::Rows { features, .. }) => bits(features),
            other => panic!("no float batch part {other:?}"),
        },
    }
}

#[test]
fn layout_matches_traced_steps_bit_for_bit() {
    for spec in specs() {
        let s = traced(&spec, 3);
        let layout = Layout::of(&spec, 3).unwrap();
        let name = format!("{:?}", spec.model);
        assert_eq!(layout.len(), s.trace.len(), "{name}");
        assert_eq!(layout.len(), s.calls.len(), "{name}");
        assert_eq!(Layout::of(&spec, 1).unwrap().len(), layout.len());
        // The real outputs of every call but the last (step_state is hashed, not run).
        let n = layout.len() - 1;
        let outs: Vec<Vec<Vec<f32>>> = s.calls[..n]
            .iter()
            .map(|c| execute(&CpuBackend, c).unwrap())
            .collect();
        for (i, (want, call)) in layout.entries().iter().zip(&s.calls).enumerate() {
            let at = format!("{name} call {i} ({})", call.kind);
            assert_eq!((call.kind, &call.dims), (want.kind, &want.dims), "{at}");
            assert_eq!(bits(&call.scalars), bits(&want.scalars), "{at}");
            assert_eq!(call.inputs.len(), want.inputs.len(), "{at}");
            for (k, (from, input)) in want.inputs.iter().zip(&call.inputs).enumerate() {
                assert_eq!(bits(input), source_bits(&s, &outs, from), "{at} input {k}");
            }
            assert_eq!(s.trace[i].outputs.len(), want.outputs as usize, "{at}");
            if i < n {
                assert_eq!(
                    execute_digest(&CpuBackend, call).unwrap(),
                    s.trace[i].outputs
                );
            }
            check_call(&layout, i as u32, call, &s.trace[..i], &s.state, &s.batch)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
        }
        // The trace ends at the step digest of the state after the step.
        let last = s.trace.last().unwrap();
        assert_eq!(
            (last.op.as_str(), last.outputs[2]),
            ("step_state", s.after.digest().unwrap())
        );
        let mut referee = Exec::new(&CpuBackend);
        let outputs = layout
            .execute(&mut referee, s.calls.last().unwrap())
            .unwrap();
        assert_eq!(outputs, last.outputs, "{name}");
    }
}

/// Flips the lowest bit of value `at` (wrapping) of `values`.
fn flip(values: &mut [f32], at: usize) {
    let v = &mut values[at % values.len()];
    *v = f32::from_bits(v.to_bits() ^ 1);
}

#[test]
fn check_call_refuses_every_altered_input_and_field() {
    for spec in [specs().swap_remove(0), lm(1)] {
        let s = traced(&spec, 2);
        let layout = Layout::of(&spec, 2).unwrap();
        let check = |i: usize, call: &OpCall| {
            check_call(&layout, i as u32, call, &s.trace[..i], &s.state, &s.batch)
        };
        for (i, call) in s.calls.iter().enumerate() {
            for k in 0..call.inputs.len() {
                let mut bad = call.clone();
                flip(&mut bad.inputs[k], i + k);
                let err = check(i, &bad).unwrap_err();
                assert!(
                    matches!(err, CheckError::Input { input, .. } if input == k),
                    "call {i} input {k}: {err}"
                );
            }
            if !call.ids.is_empty() {
                let mut bad = call.clone();
                bad.ids[i % call.ids.len()] ^= 1;
                assert!(matches!(check(i, &bad), Err(CheckError::Ids { .. })));
            }
            let mut bad = call.clone();
            bad.kind = if call.kind == OpKind::AddInto {
                OpKind::AddAssign
            } else {
                OpKind::AddInto
            };
            assert!(
                matches!(check(i, &bad), Err(CheckError::Kind { .. })),
                "call {i}"
            );
            let mut bad = call.clone();
            bad.dims[0] += 1;
            assert!(
                matches!(check(i, &bad), Err(CheckError::Dims { .. })),
                "call {i}"
            );
            for j in 0..call.scalars.len() {
                let mut bad = call.clone();
                flip(&mut bad.scalars, j);
                assert!(
                    matches!(check(i, &bad), Err(CheckError::Scalars { .. })),
                    "call {i}"
                );
            }
            let mut bad = call.clone();
            bad.inputs.pop();
            assert!(matches!(check(i, &bad), Err(CheckError::InputCount { .. })));
        }
        // A call served at another index, without the agreed entries, on another state.
        let i = s.calls.len() / 2;
        assert!(check(i + 1, &s.calls[i]).is_err());
        let last = layout.len() as u32;
        let err = check_call(&layout, last, &s.calls[0], &[], &s.state, &s.batch);
        assert!(matches!(err, Err(CheckError::NoSuchEntry { .. })));
        let err = check_call(&layout, i as u32, &s.calls[i], &[], &s.state, &s.batch);
        assert!(matches!(err, Err(CheckError::Agreed { .. })), "{err:?}");
        let mut state = s.state.clone();
        state.meta.step += 1;
        let err = check_call(&layout, 0, &s.calls[0], &[], &state, &s.batch);
        assert!(matches!(err, Err(CheckError::WrongState { .. })));
        // The agreed prefix must chain to the agreed leaf.
        let start = s.state.meta.step_digest;
        let leaves = trace_leaves(&start, &s.trace);
        verify_prefix(&start, &s.trace[..i], &leaves[i - 1]).unwrap();
        let mut agreed = s.trace[..i].to_vec();
        agreed[0].outputs[0].0[0] ^= 1;
        let err = verify_prefix(&start, &agreed, &leaves[i - 1]);
        assert!(matches!(err, Err(CheckError::Prefix { .. })));
    }
}

#[test]
fn served_trace_and_one_operator_referee_match_the_commitment() {
    for (spec, step) in [(lm(1), 4), (specs().swap_remove(0), 1)] {
        let dir = tempfile::tempdir().unwrap();
        train_job(&spec, dir.path(), &CpuBackend, &mut |_| {}).unwrap();
        let digests = read_digests(&dir.path().join("digests.json"))
            .unwrap()
            .digests;
        let served = trace_step(dir.path(), step, &CpuBackend).unwrap();
        let s = step as usize;
        assert_eq!(served.start, digests[s - 1]);
        assert_eq!(served.entries.last().unwrap().outputs[2], digests[s]);
        assert_eq!(served.root, trace_root(&served.start, &served.entries));
        // The same trace as a step traced in memory.
        assert_eq!(served.entries, traced(&spec, step).trace);

        let replay = StepReplay::open(dir.path(), step, &CpuBackend).unwrap();
        let state = replay.state().unwrap();
        if spec.is_checkpoint(step - 1) {
            let file = read_checkpoint(&checkpoint_path(dir.path(), step - 1), None).unwrap();
            assert_eq!(state, file);
        }
        let views = (state.param_views(), state.opt_views());
        let d = step_digest(&state.meta.job_spec_hash, step - 1, &views.0, &views.1).unwrap();
        assert_eq!(d, digests[s - 1]);
        let layout = Layout::of(&spec, step).unwrap();
        let batch = step_batch(&spec, step).unwrap();
        let leaves = trace_leaves(&served.start, &served.entries);
        let n = served.entries.len();
        for i in [n / 2, n - 1] {
            let file = dir.path().join(format!("op-{i}.bin"));
            replay
                .capture(i as u32, &CpuBackend)
                .unwrap()
                .write(&file)
                .unwrap();
            let call = OpCall::read(&file).unwrap();
            let agreed = &served.entries[..i];
            verify_prefix(&served.start, agreed, &leaves[i - 1]).unwrap();
            check_call(&layout, i as u32, &call, agreed, &state, &batch).unwrap();
            // The referee runs exactly one operator.
            let mut referee = Exec::new(&CpuBackend);
            let outputs = layout.execute(&mut referee, &call).unwrap();
            assert_eq!(
                outputs, served.entries[i].outputs,
                "call {i} ({})",
                call.kind
            );
            assert_eq!(referee.calls(), 1);
            let kinds: Vec<_> = referee.meter().kinds().map(|(k, t)| (k, t.calls)).collect();
            assert_eq!(kinds, vec![(call.kind, 1)]);
            // Its outputs give the committed leaf, which the served root proves.
            let entry = TraceEntry {
                index: i as u32,
                op: call.kind.name().to_owned(),
                outputs,
            };
            assert_eq!(entry.leaf(&leaves[i - 1]), leaves[i]);
            let proof = poi_repops::trace::trace_proof(&served.start, &served.entries, i as u32);
            proof.unwrap().verify(&leaves[i], &served.root).unwrap();
        }
        assert!(replay.capture(n as u32, &CpuBackend).is_err());
    }
}
