//! Proof of Intelligence through signed transactions and blocks, auditing after every block:
//! a real repops training run committed on chain, every refusal with its code, the market
//! hooks PoI drives, and core's Merkle and step-digest copy pinned to repops'.

use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::market::{self, JobSpec as MarketSpec, JobStatus, MarketMsg};
use poi_core::params::Params;
use poi_core::poi::{self, PoiKind, PoiMsg, PoiStatus, merkle};
use poi_core::staking::StakingMsg;
use poi_core::state::Overlay;
use poi_core::tx::{Msg, Tx};
use poi_repops::backend::CpuBackend;
use poi_repops::commit::digest::{OPT_DOMAIN, PARAMS_DOMAIN};
use poi_repops::commit::{self as rc, Digest, read_checkpoint, tensors_digest};
use poi_repops::model::{MlpSpec, ModelSpec};
use poi_repops::train::{self, JobSpec, checkpoint_path, job_spec_hash, read_digests, train_job};
use proptest::prelude::*;

use crate::chain::{addr, key};
use crate::net::{Net, START};

/// The registry id of the root charlm version [`Net::new_poi`] lists.
pub(crate) const ROOT_MODEL: u32 = 0;
/// The eval set training jobs in these tests commit to.
pub(crate) const EVAL_DATASET: &str = "iris";
/// Its salt.
pub(crate) const EVAL_SALT: [u8; 32] = [0x5a; 32];
/// The commitment to [`EVAL_DATASET`], [`EVAL_SALT`] and half the eval split.
pub(crate) fn eval_commitment() -> [u8; 32] {
    poi::quality::eval_commitment(EVAL_DATASET, &EVAL_SALT, 500)
}

/// Covers the minimum fee of any transaction up to the 32 KiB limit.
const FEE: u128 = 400_000;
const PRICE: u128 = 10;
const UNITS: u64 = 1_000;

impl Net {
    /// A net for PoI tests: every transaction pays [`FEE`].
    /// A net for PoI tests: every transaction pays [`FEE`], and the registry starts with the
    /// root version [`ROOT_MODEL`] (a charlm base), as a genesis listing it would.
    pub(crate) fn new_poi(funded: &[&SigningKey], params: Params) -> Self {
        let mut net = Net::new(funded, params, FEE);
        let mut writes = poi_core::state::WriteSet::new();
        let root = poi::registry::RootVersion::new("charlm-base", "charlm", [0x11; 32]);
        for (key, value) in poi::registry::genesis_writes(&[root]) {
            writes.insert(key, Some(value));
        }
        net.state.apply(&writes);
        net
    }

    pub(crate) fn poi(&mut self, from: &SigningKey, msg: PoiMsg) -> String {
        self.send(from, Msg::Poi(msg))
    }

    pub(crate) fn poi_job(&self, id: u64) -> poi::PoiJob {
        poi::read_job(&self.state, id).unwrap().expect("poi job")
    }

    /// Bonds and registers `who` as a provider (capacity 100, ask 5).
    pub(crate) fn poi_provider(&mut self, who: &SigningKey) {
        let bond = self.tx(who, Msg::Staking(StakingMsg::Bond { amount: 1_000_000 }));
        let register = self.tx(
            who,
            Msg::Market(MarketMsg::Register {
                hardware: "1x test gpu".into(),
                capacity_units_per_block: 100,
                class: 0,
                ask_price: 5,
                endpoint: "https://provider.invalid/ckpt".into(),
                collateral: 100_000,
            }),
        );
        assert_eq!(self.block(vec![bond, register]), ["ok", "ok"]);
    }
}

pub(crate) fn test_params() -> Params {
    let mut params = Params::default();
    params.market.collateral_per_unit = 1_000;
    params.market.provider_collateral_min = 1_000;
    params.market.price_min = PRICE;
    params.market.price_max = PRICE;
    params.market.price_start = PRICE;
    params.market.heartbeat_timeout_blocks = 1_000;
    params.market.reserve_bps = Vec::new();
    params
}

/// A real repops run: its spec, every step digest, and the final state's group digests.
pub(crate) struct Run {
    pub(crate) spec: JobSpec,
    digests: Vec<Digest>,
    root: Digest,
    params_digest: Digest,
    opt_digest: Digest,
}

impl Run {
    fn final_digest(&self) -> Digest {
        *self.digests.last().unwrap()
    }

    fn final_proof(&self) -> Vec<[u8; 32]> {
        let proof = rc::merkle_proof(&self.digests, self.spec.steps).unwrap();
        proof.siblings.iter().map(|d| d.0).collect()
    }

    pub(crate) fn commit(&self, job: u64) -> PoiMsg {
        PoiMsg::CommitTraining {
            job,
            root: self.root.0,
            final_digest: self.final_digest().0,
            params_digest: self.params_digest.0,
            opt_digest: self.opt_digest.0,
            final_proof: self.final_proof(),
            sealed: [0x5e; 32],
        }
    }
}

/// Trains a tiny MLP on iris for `steps` steps (one thread) and reads back what it committed.
pub(crate) fn tiny_run(steps: u64) -> Run {
    let mut spec = JobSpec::default_for("mlp", Some("iris"), steps, 7).unwrap();
    spec.model = ModelSpec::Mlp(MlpSpec {
        hidden: vec![8],
        ..MlpSpec::default()
    });
    spec.batch = 8;
    spec.checkpoint_every = test_params().poi.segment_steps(steps).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = train::with_threads(1, || train_job(&spec, dir.path(), &CpuBackend, &mut |_| {}))
        .unwrap()
        .unwrap();
    let file = read_digests(&dir.path().join(train::DIGESTS_FILE)).unwrap();
    assert_eq!(file.root, summary.root);
    assert_eq!(file.digests.len() as u64, steps + 1);
    assert_eq!(*file.digests.last().unwrap(), summary.final_digest);
    let ckpt = read_checkpoint(&checkpoint_path(dir.path(), steps), None).unwrap();
    assert_eq!(ckpt.meta.step_digest, summary.final_digest);
    Run {
        params_digest: tensors_digest(PARAMS_DOMAIN, &ckpt.param_views()).unwrap(),
        opt_digest: tensors_digest(OPT_DOMAIN, &ckpt.opt_views()).unwrap(),
        digests: file.digests,
        root: file.root,
        spec,
    }
}

pub(crate) fn submit_training(spec: &[u8], steps: u64) -> PoiMsg {
    PoiMsg::SubmitTraining {
        model: "mlp".into(),
        datasets: vec!["iris".into()],
        spec: spec.to_vec(),
        steps,
        eval_commitment: eval_commitment(),
        base_model: None,
        units: UNITS,
        max_price: PRICE,
    }
}

pub(crate) fn submit_inference() -> PoiMsg {
    PoiMsg::SubmitInference {
        model: "charlm".into(),
        version: ROOT_MODEL,
        requests: 16,
        input_root: [7; 32],
        units: UNITS,
        max_price: PRICE,
    }
}

fn flip(mut bytes: [u8; 32], bit: usize) -> [u8; 32] {
    bytes[bit / 8 % 32] ^= 1 << (bit % 8);
    bytes
}

#[test]
fn a_real_training_run_is_committed_held_and_settled_only_when_verified() {
    let run = tiny_run(6);
    let spec_bytes = run.spec.encode();
    let (prov, user, other) = (key(1), key(2), key(3));
    let mut net = Net::new_poi(&[&prov, &user, &other], test_params());
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_training(&spec_bytes, 6)), "ok");
    // The market job commits to the spec exactly as repops hashes it.
    let job = net.job(0);
    let MarketSpec::Training {
        hyperparams_hash, ..
    } = &job.spec
    else {
        panic!("a training job");
    };
    assert_eq!(*hyperparams_hash, job_spec_hash(&run.spec).0);
    assert_eq!(
        poi::read_spec(&net.state, 0).unwrap(),
        Some(spec_bytes.clone())
    );
    let pj = net.poi_job(0);
    assert_eq!(
        (pj.kind, pj.steps, pj.segment_steps, pj.segments, pj.status),
        (PoiKind::Training, 6, 1, 6, PoiStatus::Submitted)
    );
    assert_eq!(job.status, JobStatus::Matched);
    // Not running yet: even a valid commit is refused.
    assert_eq!(net.poi(&prov, run.commit(0)), "bad_job_state");
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");

    // Every refusal, in one block, with its code.
    let mut bad: Vec<(PoiMsg, &str, &SigningKey)> = vec![
        (run.commit(0), "not_assigned_provider", &other),
        (run.commit(1), "not_poi_job", &prov),
    ];
    let PoiMsg::CommitTraining {
        root,
        final_digest,
        params_digest,
        opt_digest,
        final_proof,
        ..
    } = run.commit(0)
    else {
        unreachable!()
    };
    let with = |f: &dyn Fn(&mut PoiMsg)| {
        let mut msg = run.commit(0);
        f(&mut msg);
        msg
    };
    for bit in [0, 77, 255] {
        let r = flip(root, bit);
        let f = flip(final_digest, bit);
        let p = flip(params_digest, bit);
        let o = flip(opt_digest, bit);
        bad.push((with(&|m| set(m, |c| c.root = r)), "bad_proof", &prov));
        bad.push((
            with(&|m| set(m, |c| c.final_digest = f)),
            "digest_mismatch",
            &prov,
        ));
        bad.push((
            with(&|m| set(m, |c| c.params_digest = p)),
            "digest_mismatch",
            &prov,
        ));
        bad.push((
            with(&|m| set(m, |c| c.opt_digest = o)),
            "digest_mismatch",
            &prov,
        ));
        for (i, sibling) in final_proof.iter().enumerate() {
            let s = flip(*sibling, bit);
            bad.push((
                with(&|m| set(m, |c| c.final_proof[i] = s)),
                "bad_proof",
                &prov,
            ));
        }
    }
    assert!(!final_proof.is_empty(), "leaf 6 of 7 has a path");
    bad.push((
        with(&|m| {
            set(m, |c| {
                c.final_proof.pop();
            })
        }),
        "bad_proof",
        &prov,
    ));
    bad.push((
        with(&|m| set(m, |c| c.final_proof.push([0; 32]))),
        "bad_proof",
        &prov,
    ));
    bad.push((
        with(&|m| {
            set(m, |c| {
                c.final_proof = vec![[0; 32]; merkle::FINAL_PROOF_SIBLINGS_MAX + 1]
            })
        }),
        "proof_too_long",
        &prov,
    ));
    let expected: Vec<String> = bad.iter().map(|(_, code, _)| code.to_string()).collect();
    let txs: Vec<Tx> = bad
        .into_iter()
        .map(|(msg, _, from)| net.tx(from, Msg::Poi(msg)))
        .collect();
    // The market's bare commit is refused for a PoI job too.
    let bare = net.tx(
        &prov,
        Msg::Market(MarketMsg::CommitJob {
            id: 0,
            result_root: run.root.0,
            units_delivered: UNITS,
        }),
    );
    let mut codes = net.block(txs.into_iter().chain([bare]).collect());
    assert_eq!(codes.pop().unwrap(), "poi_commit_required");
    assert_eq!(codes, expected);
    assert_eq!(net.job(0).status, JobStatus::Running);

    // The real commitment is accepted: committed, held, recorded.
    assert_eq!(net.poi(&prov, run.commit(0)), "ok");
    let job = net.job(0);
    assert_eq!(job.status, JobStatus::Committed);
    assert!(job.is_held());
    assert_eq!(job.result_root, Some(run.root.0));
    assert_eq!(job.units_delivered, UNITS);
    let pj = net.poi_job(0);
    assert_eq!(pj.status, PoiStatus::Verifying);
    let c = pj.commitment.unwrap();
    assert_eq!((c.root, c.final_digest), (run.root.0, run.final_digest().0));
    assert_eq!(net.poi(&prov, run.commit(0)), "bad_job_state");
    assert_eq!(
        net.market(&user, MarketMsg::AcceptJob { id: 0 }),
        "verification_pending"
    );
    // Held: the challenge window passes and nothing settles by itself.
    let verify_blocks = test_params().market.verify_blocks;
    for _ in 0..=verify_blocks {
        net.block(Vec::new());
    }
    assert!(net.job(0).is_held());

    // Verified: paid exactly as an acceptance would pay.
    let (prov_before, user_before) = (net.balance_of(&addr(&prov)), net.balance_of(&addr(&user)));
    assert_eq!(net.hook(|ctx| market::settle_verified(ctx, 0)), Ok(()));
    let job = net.job(0);
    let paid = u128::from(UNITS) * job.charged_price;
    assert_eq!(job.status, JobStatus::Settled);
    assert_eq!(
        (job.paid, job.refunded),
        (paid, job.units as u128 * PRICE - paid)
    );
    assert_eq!(net.balance_of(&addr(&prov)), prov_before + paid);
    assert_eq!(net.balance_of(&addr(&user)), user_before + job.refunded);
    assert_eq!(
        net.hook(|ctx| market::settle_verified(ctx, 0)),
        Err("bad_job_state".into())
    );
}

/// The editable fields of a `CommitTraining`.
struct CommitFields {
    root: [u8; 32],
    final_digest: [u8; 32],
    params_digest: [u8; 32],
    opt_digest: [u8; 32],
    final_proof: Vec<[u8; 32]>,
}

/// Edits a `CommitTraining` through `f`.
fn set(msg: &mut PoiMsg, f: impl FnOnce(&mut CommitFields)) {
    let PoiMsg::CommitTraining {
        root,
        final_digest,
        params_digest,
        opt_digest,
        final_proof,
        ..
    } = msg
    else {
        unreachable!()
    };
    let mut fields = CommitFields {
        root: *root,
        final_digest: *final_digest,
        params_digest: *params_digest,
        opt_digest: *opt_digest,
        final_proof: final_proof.clone(),
    };
    f(&mut fields);
    *root = fields.root;
    *final_digest = fields.final_digest;
    *params_digest = fields.params_digest;
    *opt_digest = fields.opt_digest;
    *final_proof = fields.final_proof;
}

#[test]
fn submissions_are_bounded_and_split_into_segments() {
    let (prov, user) = (key(1), key(2));
    let params = test_params();
    let mut net = Net::new_poi(&[&prov, &user], params.clone());
    // k = max(1, ceil(S / 256)), n = ceil(S / k).
    for (steps, k, n) in [
        (1, 1, 1),
        (255, 1, 255),
        (256, 1, 256),
        (257, 2, 129),
        (300, 2, 150),
        (100_000, 391, 256),
    ] {
        assert_eq!(params.poi.segment_steps(steps), Some(k));
        assert_eq!(net.poi(&user, submit_training(b"spec", steps)), "ok");
        let id = market::market_stats(&net.state, &params, net.height)
            .unwrap()
            .jobs
            .values()
            .sum::<u64>()
            - 1;
        let pj = net.poi_job(id);
        assert_eq!((pj.steps, pj.segment_steps, pj.segments), (steps, k, n));
        assert_eq!(
            market::job(&net.state, id).unwrap().unwrap().status,
            JobStatus::Queued
        );
    }
    let max = params.poi.spec_bytes_max as usize;
    assert_eq!(net.poi(&user, submit_training(&vec![1; max], 10)), "ok");
    assert_eq!(
        net.poi(&user, submit_training(&vec![1; max + 1], 10)),
        "spec_too_large"
    );
    assert_eq!(net.poi(&user, submit_training(b"", 10)), "invalid_message");
    assert_eq!(
        net.poi(&user, submit_training(b"spec", 0)),
        "invalid_message"
    );
    assert_eq!(
        net.poi(&user, submit_training(b"spec", params.poi.steps_max + 1)),
        "invalid_message"
    );
    // The market's own checks still apply.
    let mut msg = submit_training(b"spec", 10);
    if let PoiMsg::SubmitTraining { datasets, .. } = &mut msg {
        *datasets = vec!["nope".into()];
    }
    assert_eq!(net.poi(&user, msg), "unknown_dataset");
    let mut msg = submit_training(b"spec", 10);
    if let PoiMsg::SubmitTraining { max_price, .. } = &mut msg {
        *max_price = START;
    }
    assert_eq!(net.poi(&user, msg), "over_budget");
    let mut msg = submit_inference();
    if let PoiMsg::SubmitInference { requests, .. } = &mut msg {
        *requests = params.poi.requests_max + 1;
    }
    assert_eq!(net.poi(&user, msg), "invalid_message");
}

#[test]
fn inference_commits_hold_and_a_won_dispute_rewards_the_challenger() {
    let (prov, user, challenger) = (key(1), key(2), key(3));
    let mut net = Net::new_poi(&[&prov, &user, &challenger], test_params());
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_inference()), "ok");
    let pj = net.poi_job(0);
    assert_eq!(
        (pj.kind, pj.segments, pj.spec_hash),
        (PoiKind::Inference, 16, [7; 32])
    );
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = |job| PoiMsg::CommitInference {
        job,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    assert_eq!(net.poi(&user, commit(0)), "not_assigned_provider");
    assert_eq!(net.poi(&prov, tiny_commit_for(0)), "wrong_job_kind");
    assert_eq!(net.poi(&prov, commit(0)), "ok");
    assert!(net.job(0).is_held());
    assert_eq!(net.job(0).result_root, Some([8; 32]));
    assert_eq!(
        net.market(&user, MarketMsg::AcceptJob { id: 0 }),
        "verification_pending"
    );

    // PoI opens a dispute: no owner bond, and hold is gone.
    assert_eq!(
        net.hook(|ctx| market::hold(ctx, 0)),
        Err("bad_job_state".into())
    );
    assert_eq!(net.hook(|ctx| market::open_poi_dispute(ctx, 0)), Ok(()));
    let job = net.job(0);
    assert_eq!((job.status, job.dispute_bond), (JobStatus::Disputed, 0));
    assert_eq!(
        net.hook(|ctx| market::settle_verified(ctx, 0)),
        Err("bad_job_state".into())
    );

    // The provider is found at fault; the challenger gets its share of the slash.
    let params = test_params().market;
    let escrow = u128::from(UNITS) * PRICE;
    let slashed = 100_000 * u128::from(params.slash_bps) / 10_000;
    let credit = escrow * u128::from(params.sla_credit_bps) / 10_000;
    let rest = slashed - credit;
    let reward = rest * u128::from(params.dispute_reward_bps) / 10_000;
    let burned = (rest - reward) * u128::from(params.slash_burn_bps) / 10_000;
    let (user_before, chal_before) = (
        net.balance_of(&addr(&user)),
        net.balance_of(&addr(&challenger)),
    );
    let winner = addr(&challenger);
    let burned_before = net
        .chain
        .audit(&net.state)
        .unwrap()
        .burned_by_reason
        .get("slash")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        net.hook(|ctx| market::resolve_dispute_for(ctx, 0, true, Some(winner))),
        Ok(())
    );
    let job = net.job(0);
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(net.balance_of(&addr(&challenger)), chal_before + reward);
    assert_eq!(net.balance_of(&addr(&user)), user_before + escrow + credit);
    let supply = net.chain.audit(&net.state).unwrap();
    assert_eq!(
        supply.burned_by_reason.get("slash").copied().unwrap_or(0),
        burned_before + burned
    );
    assert!(reward > 0 && burned > 0);
}

/// A `CommitTraining` for `job` with arbitrary (unverified) contents.
fn tiny_commit_for(job: u64) -> PoiMsg {
    PoiMsg::CommitTraining {
        job,
        root: [1; 32],
        final_digest: [2; 32],
        params_digest: [3; 32],
        opt_digest: [4; 32],
        final_proof: Vec::new(),
        sealed: [0; 32],
    }
}

#[test]
fn an_owner_dispute_of_a_held_job_still_runs_its_market_course() {
    let (prov, user) = (key(1), key(2));
    let mut params = test_params();
    params.market.dispute_blocks = 5;
    let mut net = Net::new_poi(&[&prov, &user], params);
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_inference()), "ok");
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    assert_eq!(net.poi(&prov, commit), "ok");
    assert_eq!(net.market(&user, MarketMsg::DisputeJob { id: 0 }), "ok");
    assert_eq!(net.job(0).status, JobStatus::Disputed);
    for _ in 0..6 {
        net.block(Vec::new());
    }
    // No verdict in time: the provider wins, as for any dispute.
    assert_eq!(net.job(0).status, JobStatus::Settled);
    assert_eq!(net.poi_job(0).status, PoiStatus::Verifying);
}

#[test]
fn resolve_dispute_without_a_winner_burns_and_funds_the_treasury_as_before() {
    let (prov, user) = (key(1), key(2));
    let mut net = Net::new_poi(&[&prov, &user], test_params());
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_inference()), "ok");
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    assert_eq!(net.poi(&prov, commit), "ok");
    assert_eq!(net.hook(|ctx| market::open_poi_dispute(ctx, 0)), Ok(()));
    let treasury = poi_core::bank::treasury();
    let before = net.balance_of(&treasury);
    assert_eq!(
        net.hook(|ctx| market::resolve_dispute(ctx, 0, true)),
        Ok(())
    );
    let params = test_params().market;
    let slashed = 100_000 * u128::from(params.slash_bps) / 10_000;
    let rest = slashed - u128::from(UNITS) * PRICE * u128::from(params.sla_credit_bps) / 10_000;
    let burned = rest * u128::from(params.slash_burn_bps) / 10_000;
    assert_eq!(net.balance_of(&treasury), before + rest - burned);
}

fn digests_from(seed: u64, n: u64) -> Vec<Digest> {
    (0..n)
        .map(|i| Digest::of(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Core's Merkle copy agrees with repops' on roots, accepts every repops proof, and
    /// refuses it wherever repops does (a flipped bit, another index, another leaf count).
    #[test]
    fn core_merkle_agrees_with_repops(
        seed in any::<u64>(),
        n in 1u64..600,
        pick in any::<u64>(),
        bit in 0usize..256,
        sib in any::<usize>(),
    ) {
        let digests = digests_from(seed, n);
        let index = pick % n;
        let raw: Vec<[u8; 32]> = digests.iter().map(|d| d.0).collect();
        let root = rc::merkle_root(&digests);
        prop_assert_eq!(merkle::merkle_root(&raw), root.0);
        let proof = rc::merkle_proof(&digests, index).unwrap();
        let siblings: Vec<[u8; 32]> = proof.siblings.iter().map(|d| d.0).collect();
        prop_assert_eq!(merkle::path_len(index, n), proof.siblings.len() as u64);
        let leaf = &raw[index as usize];
        prop_assert!(merkle::verify(index, n, &siblings, leaf, &root.0).is_ok());
        // A flipped bit in the leaf, the root or a sibling: both refuse.
        let bad_leaf = flip(*leaf, bit);
        prop_assert!(merkle::verify(index, n, &siblings, &bad_leaf, &root.0).is_err());
        prop_assert!(proof.verify(&Digest(bad_leaf), &root).is_err());
        prop_assert!(merkle::verify(index, n, &siblings, leaf, &flip(root.0, bit)).is_err());
        if !siblings.is_empty() {
            let i = sib % siblings.len();
            let mut bad = siblings.clone();
            bad[i] = flip(bad[i], bit);
            prop_assert!(merkle::verify(index, n, &bad, leaf, &root.0).is_err());
            let mut theirs = proof.clone();
            theirs.siblings[i] = Digest(bad[i]);
            prop_assert!(theirs.verify(&digests[index as usize], &root).is_err());
        }
        // The same proof for another index or leaf count: the verdicts agree.
        for (other_index, other_count) in [((index + 1) % n, n), (index, n + 1)] {
            let mut theirs = proof.clone();
            theirs.index = other_index;
            theirs.leaf_count = other_count;
            let ours = merkle::verify(other_index, other_count, &siblings, leaf, &root.0).is_ok();
            prop_assert_eq!(ours, theirs.verify(&digests[index as usize], &root).is_ok());
            if (other_index, other_count) != (index, n) {
                prop_assert!(!ours);
            }
        }
    }

    /// Core's step digest is repops' for random group digests, spec hashes and steps.
    #[test]
    fn core_step_digest_agrees_with_repops(seed in any::<u64>(), step in any::<u64>(), values in proptest::collection::vec(-4.0f32..4.0, 1..8)) {
        let shape = [values.len()];
        let params = [rc::NamedTensor::new("w", &shape, &values)];
        let opt = [rc::NamedTensor::new("m", &shape, &values)];
        let job = Digest::of(&seed.to_le_bytes());
        let theirs = rc::step_digest(&job, step, &params, &opt).unwrap();
        let p = tensors_digest(PARAMS_DOMAIN, &params).unwrap();
        let o = tensors_digest(OPT_DOMAIN, &opt).unwrap();
        prop_assert_eq!(merkle::step_digest(&job.0, step, &p.0, &o.0), theirs.0);
    }
}

/// `poi.verifier_bond_min`'s default: 1,000 POI.
pub(crate) const MIN_BOND: u128 = 1_000_000_000_000;

impl Net {
    fn stake(&self, who: &SigningKey) -> poi_core::staking::Stake {
        poi_core::staking::stake(&self.state, &addr(who)).unwrap()
    }

    pub(crate) fn verifier(&self, who: &SigningKey) -> Option<poi::Verifier> {
        poi::read_verifier(&self.state, &addr(who)).unwrap()
    }

    fn stake_op(&mut self, who: &SigningKey, msg: StakingMsg) -> String {
        self.send(who, Msg::Staking(msg))
    }

    /// The dense index, ordinal by ordinal.
    fn index(&self) -> Vec<Address> {
        let n = poi::verifier_count(&self.state).unwrap();
        (0..n)
            .map(|o| poi::verifier_at(&self.state, o).unwrap().expect("dense"))
            .collect()
    }
}

#[test]
fn verifiers_register_add_bond_and_deregister_with_exact_stake_locks() {
    let (v, w) = (key(30), key(31));
    let mut net = Net::new_poi(&[&v, &w], test_params());
    assert_eq!(Params::default().poi.verifier_bond_min, MIN_BOND);
    assert_eq!(
        net.poi(&v, PoiMsg::AddVerifierBond { amount: 1 }),
        "unknown_verifier"
    );
    assert_eq!(net.poi(&v, PoiMsg::DeregisterVerifier), "unknown_verifier");
    assert_eq!(
        net.stake_op(
            &v,
            StakingMsg::Bond {
                amount: 3 * MIN_BOND
            }
        ),
        "ok"
    );
    assert_eq!(
        net.poi(&v, PoiMsg::RegisterVerifier { bond: MIN_BOND - 1 }),
        "verifier_bond_too_low"
    );
    assert_eq!(
        net.poi(&v, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
        "ok"
    );
    assert_eq!(net.stake(&v).locked, MIN_BOND);
    assert_eq!(
        net.verifier(&v).unwrap(),
        poi::Verifier {
            address: addr(&v),
            bond: MIN_BOND,
            open_checks: 0,
            credits_units: 0,
            strikes: 0,
            jailed_until: 0,
            ordinal: 0,
        }
    );
    assert_eq!(net.index(), [addr(&v)]);
    assert_eq!(
        net.poi(&v, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
        "already_verifier"
    );
    // Not enough free bonded stake to lock.
    assert_eq!(
        net.stake_op(&w, StakingMsg::Bond { amount: MIN_BOND }),
        "ok"
    );
    assert_eq!(
        net.poi(&w, PoiMsg::RegisterVerifier { bond: MIN_BOND + 1 }),
        "insufficient_stake"
    );
    assert!(net.verifier(&w).is_none());
    assert_eq!(net.stake(&w).locked, 0);

    assert_eq!(
        net.poi(&v, PoiMsg::AddVerifierBond { amount: 0 }),
        "invalid_message"
    );
    assert_eq!(
        net.poi(&v, PoiMsg::AddVerifierBond { amount: MIN_BOND }),
        "ok"
    );
    assert_eq!(net.stake(&v).locked, 2 * MIN_BOND);
    assert_eq!(net.verifier(&v).unwrap().bond, 2 * MIN_BOND);
    // The bond cannot be unbonded; the free rest can.
    assert_eq!(
        net.stake_op(
            &v,
            StakingMsg::Unbond {
                amount: MIN_BOND + 1
            }
        ),
        "stake_locked"
    );
    assert_eq!(
        net.stake_op(&v, StakingMsg::Unbond { amount: MIN_BOND }),
        "ok"
    );
    assert_eq!(
        net.poi(&v, PoiMsg::AddVerifierBond { amount: 1 }),
        "insufficient_stake"
    );
    assert_eq!(
        net.stake_op(&v, StakingMsg::Unbond { amount: 1 }),
        "stake_locked"
    );

    // A verifier with open checks cannot leave (none exist before spot checks, so plant one in
    // a discarded overlay).
    let v_addr = addr(&v);
    let busy = net.hook(|ctx| {
        let mut record = poi::read_verifier(ctx.state, &v_addr).unwrap().unwrap();
        record.open_checks = 1;
        ctx.state
            .put_borsh(poi::records::verifier_key(&v_addr), &record);
        poi::handle(ctx, v_addr, &PoiMsg::DeregisterVerifier)
    });
    assert_eq!(busy.unwrap_err(), "verifier_busy");
    assert_eq!(net.verifier(&v).unwrap().open_checks, 0);

    assert_eq!(net.poi(&v, PoiMsg::DeregisterVerifier), "ok");
    assert!(net.verifier(&v).is_none());
    assert!(net.index().is_empty());
    let stake = net.stake(&v);
    assert_eq!((stake.bonded, stake.locked), (2 * MIN_BOND, 0));
    assert_eq!(
        net.stake_op(
            &v,
            StakingMsg::Unbond {
                amount: 2 * MIN_BOND
            }
        ),
        "ok"
    );
    assert_eq!(net.poi(&v, PoiMsg::DeregisterVerifier), "unknown_verifier");
}

#[test]
fn verifier_bond_min_is_validated() {
    let mut params = Params::default();
    params.poi.verifier_bond_min = 0;
    let err = params.validate().unwrap_err().to_string();
    assert!(err.contains("verifier_bond_min"), "{err}");
}

#[test]
fn a_provider_that_verifies_has_both_locks_counted() {
    let p = key(32);
    let mut net = Net::new_poi(&[&p], test_params());
    net.poi_provider(&p);
    assert_eq!(net.stake(&p).locked, 100_000);
    assert_eq!(
        net.stake_op(&p, StakingMsg::Bond { amount: MIN_BOND }),
        "ok"
    );
    assert_eq!(
        net.poi(&p, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
        "ok"
    );
    assert_eq!(net.stake(&p).locked, 100_000 + MIN_BOND);
    // Everything but the collateral and the bond is free; neither lock can leave.
    assert_eq!(
        net.stake_op(
            &p,
            StakingMsg::Unbond {
                amount: 1_000_000 - 100_000 + 1
            }
        ),
        "stake_locked"
    );
    // One base unit locked behind both modules' backs fails the audit.
    let mut overlay = Overlay::new(&net.state);
    poi_core::staking::lock(&mut overlay, addr(&p), 1).unwrap();
    overlay.commit_tx();
    let mut state = net.state.clone();
    state.apply(&overlay.into_writes());
    let err = net.chain.audit(&state).unwrap_err();
    assert!(err.contains("staking locks"), "{err}");
    // Leaving either role releases exactly its own lock.
    assert_eq!(net.poi(&p, PoiMsg::DeregisterVerifier), "ok");
    assert_eq!(net.stake(&p).locked, 100_000);
    assert_eq!(
        net.poi(&p, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
        "ok"
    );
    assert_eq!(net.market(&p, MarketMsg::Deregister), "ok");
    assert_eq!(net.stake(&p).locked, MIN_BOND);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random register/deregister sequences (including refused ones) keep the index dense and
    /// equal to a swap-remove model, with the audit run after every block.
    #[test]
    fn the_verifier_index_stays_dense(ops in proptest::collection::vec((0usize..5, any::<bool>()), 1..24)) {
        let keys: Vec<SigningKey> = (40..45).map(key).collect();
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let mut net = Net::new_poi(&refs, test_params());
        let bonds: Vec<Tx> = keys
            .iter()
            .map(|k| net.tx(k, Msg::Staking(StakingMsg::Bond { amount: 2 * MIN_BOND })))
            .collect();
        prop_assert!(net.block(bonds).iter().all(|c| c == "ok"));
        let mut model: Vec<Address> = Vec::new();
        for (who, wrong) in ops {
            let k = &keys[who];
            let a = addr(k);
            let registered = model.contains(&a);
            let code = match (registered, wrong) {
                (false, false) => net.poi(k, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
                (true, false) => net.poi(k, PoiMsg::DeregisterVerifier),
                (false, true) => net.poi(k, PoiMsg::DeregisterVerifier),
                (true, true) => net.poi(k, PoiMsg::RegisterVerifier { bond: MIN_BOND }),
            };
            match (registered, wrong) {
                (false, false) => { prop_assert_eq!(code, "ok"); model.push(a); }
                (true, false) => {
                    prop_assert_eq!(code, "ok");
                    let pos = model.iter().position(|m| *m == a).unwrap();
                    model.swap_remove(pos);
                }
                (false, true) => prop_assert_eq!(code, "unknown_verifier"),
                (true, true) => prop_assert_eq!(code, "already_verifier"),
            }
            prop_assert_eq!(net.index(), model.clone());
            for (o, m) in model.iter().enumerate() {
                let v = poi::read_verifier(&net.state, m).unwrap().unwrap();
                prop_assert_eq!(v.ordinal as usize, o);
            }
            for k in &keys {
                let locked = poi_core::staking::stake(&net.state, &addr(k)).unwrap().locked;
                let expected = if model.contains(&addr(k)) { MIN_BOND } else { 0 };
                prop_assert_eq!(locked, expected);
            }
        }
    }
}
