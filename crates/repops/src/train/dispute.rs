//! Owns: what a party serves in a dispute over step `s` of a job directory: the state
//! before the step, the step's operator trace ([`trace_step`]) and any one call of it
//! ([`StepReplay::capture`]).
//!
//! Invariant: a [`StepReplay`] holds the state after step `s - 1`, reached by replaying from
//! the verified checkpoint that starts `s - 1`'s segment with every digest matching the
//! committed one; its trace is accepted only if its `step_state` entry ends at the committed
//! digest of `s`, so an honest party never serves a trace its own commitment contradicts.

use std::path::Path;

use super::files::{self, DIGESTS_FILE, JOB_FILE};
use super::replay::replay_segment;
use super::{JobSpec, OwnedBatch, Result, TrainError, Trainer};
use crate::backend::Backend;
use crate::commit::{Checkpoint, Digest};
use crate::exec::Exec;
use crate::trace::{OpCall, TraceEntry, trace_root};

/// A job directory's state just before step `s`, ready to trace or capture the step.
#[derive(Debug, Clone)]
pub struct StepReplay {
    before: Trainer,
    /// The committed digest of step `s`.
    committed: Digest,
}

/// The trace of one step, as a party commits to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTrace {
    /// The step.
    pub step: u64,
    /// The step digest of `s - 1`, where the trace's leaf chain starts.
    pub start: Digest,
    /// Every entry, the `step_state` entry last.
    pub entries: Vec<TraceEntry>,
    /// [`trace_root`] of the entries.
    pub root: Digest,
}

impl StepReplay {
    /// Replays job directory `out` to just before step `step` (`1..=steps`): verifies the
    /// digests against the root and the checkpoint of `s - 1`'s segment against its leaf,
    /// then re-executes the steps from there to `s - 1`, each against its digest.
    pub fn open(out: &Path, step: u64, backend: &dyn Backend) -> Result<Self> {
        let spec: JobSpec = files::read_job(&out.join(JOB_FILE))?;
        let digests = files::read_digests(&out.join(DIGESTS_FILE))?;
        if !(1..=spec.steps).contains(&step) {
            return Err(TrainError::StepOutOfRange {
                step,
                steps: spec.steps,
            });
        }
        // Every multiple of checkpoint_every is checkpointed, and step 0 always is.
        let from = (step - 1) / spec.checkpoint_every * spec.checkpoint_every;
        let path = files::checkpoint_path(out, from);
        let committed = (digests.digests.as_slice(), &digests.root);
        let steps = step - 1 - from;
        let (report, before) =
            replay_segment(&spec, (&path, Some(from)), committed, steps, backend)?;
        if let Some(m) = report.first_mismatch {
            return Err(TrainError::Diverged {
                step: m.step,
                expected: m.expected,
                computed: m.computed,
            });
        }
        // replay_segment checked the digest count, so leaf `step` exists.
        assert_eq!(before.step(), step - 1);
        Ok(Self {
            before,
            committed: digests.digests[step as usize],
        })
    }

    /// The step `s` this replay is before.
    pub fn step(&self) -> u64 {
        self.before.step() + 1
    }

    /// The committed step digest of `s - 1`: where the trace's leaf chain starts.
    pub fn start(&self) -> Result<Digest> {
        self.before.digest()
    }

    /// The agreed state `s - 1`, as the checkpoint a party serves to referees.
    pub fn state(&self) -> Result<Checkpoint> {
        self.before.checkpoint()
    }

    /// The minibatch of step `s`.
    pub fn batch(&self) -> Result<OwnedBatch> {
        self.before.clone().batch_for(self.step())
    }

    /// Re-runs step `s` with tracing; its last entry ends at the committed digest of `s`.
    pub fn trace(&self, backend: &dyn Backend) -> Result<Vec<TraceEntry>> {
        let mut trainer = self.before.clone();
        let mut exec = Exec::new(backend).with_trace();
        trainer.train_step(&mut exec)?;
        let entries = exec.take_trace();
        let last = entries.last().and_then(|e| e.outputs.last()).copied();
        let computed = last.unwrap_or_default();
        if computed != self.committed {
            return Err(TrainError::Diverged {
                step: self.step(),
                expected: self.committed,
                computed,
            });
        }
        Ok(entries)
    }

    /// Re-runs step `s`, copying the inputs of call `index` (the `OpCall` a party serves).
    pub fn capture(&self, index: u32, backend: &dyn Backend) -> Result<OpCall> {
        let mut trainer = self.before.clone();
        let mut exec = Exec::new(backend).with_capture(index);
        trainer.train_step(&mut exec)?;
        let calls = exec.calls();
        exec.take_captured().ok_or_else(|| {
            TrainError::invalid("op index", format!("{index}: the step makes {calls} calls"))
        })
    }
}

/// The trace of step `step` of job directory `out` (see [`StepReplay`]).
pub fn trace_step(out: &Path, step: u64, backend: &dyn Backend) -> Result<StepTrace> {
    let replay = StepReplay::open(out, step, backend)?;
    let (start, entries) = (replay.start()?, replay.trace(backend)?);
    Ok(StepTrace {
        step,
        root: trace_root(&start, &entries),
        start,
        entries,
    })
}
