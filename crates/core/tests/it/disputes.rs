//! Disputes on chain, played with real repops work: a real training run, real step traces,
//! and referees that re-execute exactly one operator. The honest side wins within
//! `ceil(log32 S) + ceil(log32 N)` rounds, whether it defends or challenges, and silence loses.

use poi_core::market::{JobStatus, MarketMsg};
use poi_core::poi::checks::{self, CheckRole, CheckStatus, Verdict};
use poi_core::poi::dispute::{self, DisputeStatus};
use poi_core::poi::dissection::{Phase, Status, rounds_bound, split_points};
use poi_core::poi::{PoiMsg, PoiStatus, merkle};
use poi_repops::backend::CpuBackend;
use poi_repops::commit::digest::{OPT_DOMAIN, PARAMS_DOMAIN};
use poi_repops::commit::{self as rc, Digest, read_checkpoint, tensors_digest};
use poi_repops::exec::Exec;
use poi_repops::model::{MlpSpec, ModelSpec};
use poi_repops::trace::{Layout, TraceEntry, trace_leaves, trace_proof};
use poi_repops::train::{
    self, JobSpec, StepReplay, checkpoint_path, read_digests, trace_step, train_job,
};

use crate::poi::submit_training;
use crate::spot::{World, params};

const STEPS: u64 = 12;
/// The first step the cheating provider did not compute.
const FAKED_FROM: u64 = 7;

/// A real run kept on disk: its directory, spec and step digests.
struct Honest {
    dir: tempfile::TempDir,
    spec: JobSpec,
    digests: Vec<Digest>,
}

fn honest_run() -> Honest {
    let mut spec = JobSpec::default_for("mlp", Some("iris"), STEPS, 11).unwrap();
    spec.model = ModelSpec::Mlp(MlpSpec {
        hidden: vec![8],
        ..MlpSpec::default()
    });
    spec.batch = 8;
    spec.checkpoint_every = params().poi.segment_steps(STEPS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    train::with_threads(1, || train_job(&spec, dir.path(), &CpuBackend, &mut |_| {}))
        .unwrap()
        .unwrap();
    let digests = read_digests(&dir.path().join(train::DIGESTS_FILE))
        .unwrap()
        .digests;
    Honest { dir, spec, digests }
}

/// What a provider commits: a list of step digests (true or not) and the final group digests.
struct Committed {
    digests: Vec<[u8; 32]>,
    params_digest: [u8; 32],
    opt_digest: [u8; 32],
}

impl Committed {
    fn honest(run: &Honest) -> Self {
        let ckpt = read_checkpoint(&checkpoint_path(run.dir.path(), STEPS), None).unwrap();
        Self {
            digests: run.digests.iter().map(|d| d.0).collect(),
            params_digest: tensors_digest(PARAMS_DOMAIN, &ckpt.param_views())
                .unwrap()
                .0,
            opt_digest: tensors_digest(OPT_DOMAIN, &ckpt.opt_views()).unwrap().0,
        }
    }

    /// Digests made up from `FAKED_FROM` on, with a final leaf that passes the commit checks.
    fn faked(run: &Honest) -> Self {
        let mut digests: Vec<[u8; 32]> = run.digests.iter().map(|d| d.0).collect();
        for (t, d) in digests.iter_mut().enumerate().skip(FAKED_FROM as usize) {
            *d = *blake3::hash(format!("made up {t}").as_bytes()).as_bytes();
        }
        let (params_digest, opt_digest) = ([0xaa; 32], [0xbb; 32]);
        let spec_hash = *blake3::hash(&run.spec.encode()).as_bytes();
        digests[STEPS as usize] =
            merkle::step_digest(&spec_hash, STEPS, &params_digest, &opt_digest);
        Self {
            digests,
            params_digest,
            opt_digest,
        }
    }

    fn root(&self) -> [u8; 32] {
        merkle::merkle_root(&self.digests)
    }

    fn proof(&self, leaf: u64) -> Vec<[u8; 32]> {
        let digests: Vec<Digest> = self.digests.iter().map(|d| Digest(*d)).collect();
        rc::merkle_proof(&digests, leaf)
            .unwrap()
            .siblings
            .iter()
            .map(|d| d.0)
            .collect()
    }

    fn commit(&self, job: u64) -> PoiMsg {
        PoiMsg::CommitTraining {
            job,
            root: self.root(),
            final_digest: self.digests[STEPS as usize],
            params_digest: self.params_digest,
            opt_digest: self.opt_digest,
            final_proof: self.proof(STEPS),
            sealed: [0x33; 32],
        }
    }
}

/// One side's view of the disputed points: step leaves, and for a step its chained trace.
struct Side {
    committed: Committed,
    run: Honest,
    /// Lies about every point it reveals or claims in the operator phase (a cheater).
    lies_in_ops: bool,
}

impl Side {
    fn trace(&self, step: u64) -> (Digest, Vec<TraceEntry>) {
        let t = trace_step(self.run.dir.path(), step, &CpuBackend).unwrap();
        (t.start, t.entries)
    }

    /// The side's digest of point `k` in the current phase.
    fn point(&self, phase: &Phase, k: u64, n: u64) -> [u8; 32] {
        match phase {
            Phase::Steps => self.committed.digests[k as usize],
            Phase::Ops { step, .. } => {
                if k == 0 {
                    return self.committed.digests[(*step - 1) as usize];
                }
                if k == n {
                    return self.committed.digests[*step as usize];
                }
                let (start, entries) = self.trace(*step);
                let leaf = trace_leaves(&start, &entries)[(k - 1) as usize].0;
                if self.lies_in_ops {
                    *blake3::hash(&leaf).as_bytes()
                } else {
                    leaf
                }
            }
        }
    }
}

/// Plays dispute 0 of `job` between `provider` and `challenger` (the verifier key) until it
/// leaves the playing state; returns the rounds played.
fn play(
    w: &mut World,
    job: u64,
    provider: &Side,
    challenger: &Side,
    challenger_key: &ed25519_dalek::SigningKey,
) -> u32 {
    let prov = w.prov.clone();
    loop {
        let d = dispute::read_dispute(&w.net.state, job, 0)
            .unwrap()
            .unwrap();
        if d.status != DisputeStatus::Playing {
            return d.game.rounds();
        }
        let phase = d.game.phase().clone();
        let n = d.game.ops();
        match d.game.status() {
            Status::AwaitingReveal { .. } => {
                let points = d.game.pending_points();
                let digests: Vec<[u8; 32]> = points
                    .iter()
                    .map(|&k| provider.point(&phase, k, n))
                    .collect();
                let (proofs, trace_root) = match &phase {
                    Phase::Steps => (
                        points
                            .iter()
                            .map(|&k| provider.committed.proof(k))
                            .collect(),
                        None,
                    ),
                    Phase::Ops { step, .. } => {
                        let (start, entries) = provider.trace(*step);
                        let proofs = points
                            .iter()
                            .map(|&k| {
                                trace_proof(&start, &entries, (k - 1) as u32)
                                    .unwrap()
                                    .siblings
                                    .iter()
                                    .map(|d| d.0)
                                    .collect()
                            })
                            .collect();
                        // A lying provider's revealed leaves are not under its trace root: it
                        // can only lie by posting a root over what it reveals.
                        let root = if provider.lies_in_ops {
                            None
                        } else {
                            Some(poi_repops::trace::trace_root(&start, &entries).0)
                        };
                        (proofs, root.or(d.trace_root).or(Some([0; 32])))
                    }
                };
                let msg = PoiMsg::DisputeReveal {
                    job,
                    dispute: 0,
                    digests,
                    proofs,
                    trace_root,
                };
                assert_eq!(w.net.poi(&prov, msg), "ok");
            }
            Status::AwaitingPick { .. } => {
                let (lo, hi) = d.game.range();
                let points = split_points(lo, hi).unwrap();
                let mut pick = (points.len() as u32 + 1, d.game.disputed().1);
                for (j, (&k, revealed)) in points.iter().zip(d.game.pivots()).enumerate() {
                    let mine = challenger.point(&phase, k, n);
                    if mine != *revealed {
                        pick = (j as u32 + 1, mine);
                        break;
                    }
                }
                let msg = PoiMsg::DisputePick {
                    job,
                    dispute: 0,
                    index: pick.0,
                    claim: pick.1,
                };
                assert_eq!(w.net.poi(challenger_key, msg), "ok");
            }
            Status::Over(_) => unreachable!("a playing dispute is not over"),
        }
    }
}

/// Each drawn referee re-executes the one operator from the honest run and attests its output;
/// returns the operators each executed.
fn referee(w: &mut World, job: u64, honest: &Honest) -> Vec<u32> {
    w.until(|net| {
        dispute::read_dispute(&net.state, job, 0)
            .unwrap()
            .unwrap()
            .status
            != DisputeStatus::AwaitingReferees
    });
    let d = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap();
    let Status::Over(poi_core::poi::dissection::Outcome::Referee(task)) = d.game.status().clone()
    else {
        panic!("narrowed to one operator");
    };
    let mut executed = Vec::new();
    let arbiters: Vec<_> = w
        .checks(job)
        .into_iter()
        .filter(|c| c.role == (CheckRole::Arbiter { dispute: 0 }))
        .collect();
    assert_eq!(arbiters.len(), 3);
    for c in arbiters {
        if checks::read_check(&w.net.state, job, c.index)
            .unwrap()
            .unwrap()
            .status
            != CheckStatus::Open
        {
            continue;
        }
        let replay = StepReplay::open(honest.dir.path(), task.step, &CpuBackend).unwrap();
        let call = replay.capture(task.op as u32, &CpuBackend).unwrap();
        let layout = Layout::of(&honest.spec, task.step).unwrap();
        let mut exec = Exec::new(&CpuBackend);
        let outputs = layout.execute(&mut exec, &call).unwrap();
        executed.push(exec.calls());
        let n = layout.len() as u64;
        let digest = if task.op + 1 == n {
            outputs[2].0
        } else {
            TraceEntry {
                index: task.op as u32,
                op: call.kind.name().to_owned(),
                outputs,
            }
            .leaf(&Digest(task.input))
            .0
        };
        assert_eq!(w.attest(job, c.index, Verdict::Output { digest }), "ok");
    }
    executed
}

/// A world with a committed training job of `committed`; returns the job id.
fn committed_job(w: &mut World, run: &Honest, committed: &Committed) -> u64 {
    let (user, prov) = (w.user.clone(), w.prov.clone());
    assert_eq!(
        w.net.poi(&user, submit_training(&run.spec.encode(), STEPS)),
        "ok"
    );
    assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    assert_eq!(w.net.poi(&prov, committed.commit(0)), "ok");
    0
}

fn challenge(committed_by_provider: &Committed, claim: [u8; 32], ops: u64) -> PoiMsg {
    PoiMsg::Challenge {
        job: 0,
        lo: 0,
        lo_digest: committed_by_provider.digests[0],
        lo_proof: committed_by_provider.proof(0),
        hi: STEPS,
        hi_digest: committed_by_provider.digests[STEPS as usize],
        hi_proof: committed_by_provider.proof(STEPS),
        claim,
        ops,
    }
}

fn ops() -> u64 {
    Layout::of(&honest_run().spec, 1).unwrap().len() as u64
}

#[test]
fn an_honest_challenger_beats_a_faking_provider_within_the_round_bound_on_one_operator() {
    let n = ops();
    let mut w = World::new(params());
    let provider = Side {
        committed: Committed::faked(&honest_run()),
        run: honest_run(),
        lies_in_ops: false,
    };
    let challenger_side = Side {
        committed: Committed::honest(&provider.run),
        run: honest_run(),
        lies_in_ops: false,
    };
    let job = committed_job(&mut w, &provider.run, &provider.committed);
    let challenger = w.verifiers[0].clone();
    let claim = challenger_side.committed.digests[STEPS as usize];
    let balance = w.net.balance_of(&crate::chain::addr(&challenger));
    assert_eq!(
        w.net
            .poi(&challenger, challenge(&provider.committed, claim, n)),
        "ok"
    );
    let bond = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap()
        .bond;
    assert!(bond > 0);
    let rounds = play(&mut w, job, &provider, &challenger_side, &challenger);
    assert!(rounds <= rounds_bound(STEPS, n), "{rounds} rounds");
    let d = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap();
    let Status::Over(poi_core::poi::dissection::Outcome::Referee(task)) = d.game.status().clone()
    else {
        panic!("narrowed");
    };
    assert_eq!(task.step, FAKED_FROM, "the first divergent step");
    let executed = referee(&mut w, job, &challenger_side.run);
    assert!(
        executed.iter().all(|&calls| calls == 1),
        "each referee ran exactly one operator"
    );
    let d = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap();
    assert_eq!((d.status, d.bond), (DisputeStatus::ProviderLost, 0));
    assert_eq!(w.net.poi_job(job).status, PoiStatus::Failed);
    assert_eq!(w.net.job(job).status, JobStatus::Failed);
    let slash = &checks::slashes(&w.net.state, None, 10).unwrap()[0];
    assert_eq!(slash.reason, "faked_segment");
    assert!(
        w.net.balance_of(&crate::chain::addr(&challenger)) + w.net.fee(&challenger) > balance,
        "the bond came back with a reward"
    );
}

#[test]
fn an_honest_provider_beats_a_lying_challenger_and_takes_half_its_bond() {
    let n = ops();
    let mut w = World::new(params());
    let run = honest_run();
    let provider = Side {
        committed: Committed::honest(&run),
        run,
        lies_in_ops: false,
    };
    let job = committed_job(&mut w, &provider.run, &provider.committed);
    // The challenger claims a different history from step 4 on, and lies in the trace too.
    let mut lying = Committed::honest(&provider.run);
    for (t, d) in lying.digests.iter_mut().enumerate().skip(4) {
        *d = *blake3::hash(format!("claimed {t}").as_bytes()).as_bytes();
    }
    let challenger_side = Side {
        committed: lying,
        run: honest_run(),
        lies_in_ops: true,
    };
    let challenger = w.verifiers[0].clone();
    let claim = challenger_side.committed.digests[STEPS as usize];
    let provider_before = w.net.balance_of(&crate::chain::addr(&w.prov));
    assert_eq!(
        w.net
            .poi(&challenger, challenge(&provider.committed, claim, n)),
        "ok"
    );
    let bond = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap()
        .bond;
    let rounds = play(&mut w, job, &provider, &challenger_side, &challenger);
    assert!(rounds <= rounds_bound(STEPS, n), "{rounds} rounds");
    let executed = referee(&mut w, job, &provider.run);
    assert!(executed.iter().all(|&calls| calls == 1));
    let d = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DisputeStatus::ChallengerLost);
    assert_eq!(
        w.net.poi_job(job).status,
        PoiStatus::Verifying,
        "the job goes on"
    );
    let provider_after = w.net.balance_of(&crate::chain::addr(&w.prov)) + w.net.fee(&w.prov);
    assert!(
        provider_after >= provider_before + bond / 2,
        "half the bond to the provider"
    );
    let strikes = w.net.verifier(&challenger).unwrap().strikes;
    assert_eq!(strikes, 1);
    assert!(checks::slashes(&w.net.state, None, 10).unwrap().is_empty());
}

#[test]
fn a_provider_that_stops_answering_loses_the_dispute() {
    let n = ops();
    let mut w = World::new(params());
    let run = honest_run();
    let faked = Committed::faked(&run);
    let job = committed_job(&mut w, &run, &faked);
    let challenger = w.verifiers[0].clone();
    let claim = Committed::honest(&run).digests[STEPS as usize];
    assert_eq!(w.net.poi(&challenger, challenge(&faked, claim, n)), "ok");
    let move_blocks = params().poi.move_blocks;
    w.net.empty_blocks(move_blocks + 2);
    let d = dispute::read_dispute(&w.net.state, job, 0)
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DisputeStatus::ProviderLost);
    assert_eq!(w.net.poi_job(job).status, PoiStatus::Failed);
    // Refused challenges: by the provider itself, an unproved leaf, a non-verifier.
    let mut w = World::new(params());
    committed_job(&mut w, &run, &faked);
    let prov = w.prov.clone();
    assert_eq!(
        w.net.poi(&prov, challenge(&faked, claim, n)),
        "unknown_verifier"
    );
    let mut bad = challenge(&faked, claim, n);
    if let PoiMsg::Challenge { lo_digest, .. } = &mut bad {
        lo_digest[0] ^= 1;
    }
    let v = w.verifiers[1].clone();
    assert_eq!(w.net.poi(&v, bad), "bad_proof");
    assert_eq!(
        w.net
            .poi(&v, challenge(&faked, faked.digests[STEPS as usize], n)),
        "invalid_message"
    );
}
