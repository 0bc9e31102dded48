//! Checking one training segment the way a validator does: fetch the segment's committed
//! leaves and its starting checkpoint from the provider, verify both against the committed
//! root, re-execute the segment with repops and compare every step digest bit for bit.
//!
//! A failure to fetch, or a leaf or checkpoint that does not verify, is the provider's
//! unavailability ([`SegmentOutcome::Unavailable`], with the reason); a local failure to
//! re-execute is an error of ours ([`crate::AgentError`]), never a verdict.

use poi_repops::backend::CpuBackend;
use poi_repops::commit::{Checkpoint, Digest, decode_checkpoint};
use poi_repops::exec::Exec;
use poi_repops::train::{JobSpec, Trainer, job_spec_hash, with_threads};

use crate::Result;
use crate::client::NodeClient;
use crate::wire::{DigestsAnswer, Leaf};

/// What re-executing a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// Every step reproduced its committed digest; the digest at the segment's end.
    Match(Digest),
    /// Step `step` is the first whose recomputed digest (`computed`) differs.
    Mismatch {
        /// The step.
        step: u64,
        /// What re-execution computed there.
        computed: Digest,
    },
    /// The provider did not serve something verifiable.
    Unavailable(String),
}

/// A segment to check: which job, which steps, under which root.
#[derive(Debug, Clone, Copy)]
pub struct SegmentRef<'a> {
    /// The provider's endpoint (`http://host:port`).
    pub endpoint: &'a str,
    /// The job id.
    pub job: u64,
    /// The checkpoint step that starts the segment (`j * k`).
    pub start: u64,
    /// The segment's last step.
    pub end: u64,
    /// The job's steps `S` (the tree has `S + 1` leaves).
    pub steps: u64,
    /// The committed root.
    pub root: Digest,
}

/// Fetches leaves `start..=end` and checks each proof under the root; `Err` says why they
/// are unavailable.
pub fn fetch_leaves(
    http: &NodeClient,
    seg: &SegmentRef<'_>,
) -> std::result::Result<Vec<Leaf>, String> {
    let url = format!(
        "{}/v1/jobs/{}/digests?from={}&to={}",
        seg.endpoint, seg.job, seg.start, seg.end
    );
    let value = http.get_url(&url).map_err(|e| e.to_string())?;
    let answer: DigestsAnswer = serde_json::from_value(value).map_err(|e| format!("{url}: {e}"))?;
    let count = seg.end - seg.start + 1;
    if answer.leaves.len() as u64 != count {
        return Err(format!(
            "{url}: {} leaves, expected {count}",
            answer.leaves.len()
        ));
    }
    for (leaf, step) in answer.leaves.iter().zip(seg.start..=seg.end) {
        let p = &leaf.proof;
        if leaf.step != step || p.index != step || p.leaf_count != seg.steps + 1 {
            return Err(format!(
                "{url}: leaf {} does not prove step {step}",
                leaf.step
            ));
        }
        p.verify(&leaf.digest, &seg.root)
            .map_err(|e| format!("leaf {step} does not verify: {e}"))?;
    }
    Ok(answer.leaves)
}

/// Fetches the checkpoint of `step` and checks it is the committed leaf `expected`.
pub fn fetch_checkpoint(
    http: &NodeClient,
    endpoint: &str,
    job: u64,
    step: u64,
    expected: &Digest,
) -> std::result::Result<Checkpoint, String> {
    let url = format!("{endpoint}/v1/jobs/{job}/checkpoints/{step}");
    let bytes = http.get_bytes(&url).map_err(|e| e.to_string())?;
    let ckpt = decode_checkpoint(&bytes, Some(expected))
        .map_err(|e| format!("checkpoint {step} is not the committed one: {e}"))?;
    if ckpt.meta.step != step {
        return Err(format!("checkpoint {step} holds step {}", ckpt.meta.step));
    }
    Ok(ckpt)
}

/// Re-executes from `ckpt` (verified: it is leaf `leaves[0]`) over the remaining leaves.
pub fn replay(spec: &JobSpec, ckpt: &Checkpoint, leaves: &[Leaf]) -> Result<SegmentOutcome> {
    if ckpt.meta.job_spec_hash != job_spec_hash(spec) {
        return Ok(SegmentOutcome::Unavailable(
            "checkpoint of another job".into(),
        ));
    }
    let mut trainer = Trainer::from_checkpoint(spec, ckpt)?;
    let backend = CpuBackend;
    let mut exec = Exec::new(&backend);
    let mut last = leaves.first().map(|l| l.digest).unwrap_or_default();
    for leaf in leaves.iter().skip(1) {
        trainer.train_step(&mut exec)?;
        let computed = trainer.digest()?;
        if computed != leaf.digest {
            return Ok(SegmentOutcome::Mismatch {
                step: leaf.step,
                computed,
            });
        }
        last = computed;
    }
    Ok(SegmentOutcome::Match(last))
}

/// Fetches, verifies and re-executes segment `seg` of `spec` on `threads` threads.
pub fn check_segment(
    http: &NodeClient,
    spec: &JobSpec,
    seg: &SegmentRef<'_>,
    threads: usize,
) -> Result<SegmentOutcome> {
    let leaves = match fetch_leaves(http, seg) {
        Ok(leaves) => leaves,
        Err(why) => return Ok(SegmentOutcome::Unavailable(why)),
    };
    let ckpt = match fetch_checkpoint(http, seg.endpoint, seg.job, seg.start, &leaves[0].digest) {
        Ok(ckpt) => ckpt,
        Err(why) => return Ok(SegmentOutcome::Unavailable(why)),
    };
    with_threads(threads, || replay(spec, &ckpt, &leaves))?
}
