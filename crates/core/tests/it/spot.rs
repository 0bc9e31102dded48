//! Spot checks end to end over the in-memory chain: the draw, assignment, verdicts, referee
//! re-checks of accusations, deadlines, strikes and jail, and the settlement or slash that
//! follows. Every block is audited by the harness.

use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::market::{JobStatus, MarketMsg};
use poi_core::params::Params;
use poi_core::poi::checks::{self, Check, CheckRole, CheckStatus, CheckSubject, Verdict};
use poi_core::poi::{PoiKind, PoiMsg, PoiStatus, spot};
use poi_core::staking::StakingMsg;
use poi_core::tx::Msg;

use crate::chain::{addr, key};
use crate::net::Net;
use crate::poi::{
    EVAL_DATASET, EVAL_SALT, MIN_BOND, Run, submit_inference, submit_training, test_params,
    tiny_run,
};
use poi_core::poi::quality::EvalReveal;

/// Verifier keys.
fn verifier_keys() -> Vec<SigningKey> {
    (40..46).map(key).collect()
}

pub(crate) fn params() -> Params {
    let mut p = test_params();
    p.poi.beacon_delay_views = 3;
    p.poi.check_blocks = 10;
    p
}

pub(crate) struct World {
    pub(crate) net: Net,
    pub(crate) prov: SigningKey,
    pub(crate) user: SigningKey,
    pub(crate) verifiers: Vec<SigningKey>,
}

impl World {
    pub(crate) fn new(params: Params) -> Self {
        let (prov, user) = (key(1), key(2));
        let verifiers = verifier_keys();
        let mut funded: Vec<&SigningKey> = vec![&prov, &user];
        funded.extend(verifiers.iter());
        let mut net = Net::new_poi(&funded, params).with_beacon();
        net.poi_provider(&prov);
        for v in &verifiers {
            let bond = net.tx(v, Msg::Staking(StakingMsg::Bond { amount: MIN_BOND }));
            let register = net.tx(v, Msg::Poi(PoiMsg::RegisterVerifier { bond: MIN_BOND }));
            assert_eq!(net.block(vec![bond, register]), ["ok", "ok"]);
        }
        Self {
            net,
            prov,
            user,
            verifiers,
        }
    }

    pub(crate) fn key_of(&self, who: Address) -> &SigningKey {
        self.verifiers
            .iter()
            .find(|k| addr(k) == who)
            .expect("a verifier key")
    }

    /// Submits, starts and commits an inference job; runs blocks until its checks are drawn.
    pub(crate) fn committed_inference(&mut self) -> u64 {
        let id = self.net.job_count();
        assert_eq!(self.net.poi(&self.user, submit_inference()), "ok");
        assert_eq!(
            self.net.market(&self.prov, MarketMsg::StartJob { id }),
            "ok"
        );
        let commit = PoiMsg::CommitInference {
            job: id,
            output_root: [8; 32],
            sealed: [9; 32],
        };
        assert_eq!(self.net.poi(&self.prov, commit), "ok");
        self.until(|net| net.poi_job(id).randomness.is_some());
        id
    }

    /// Submits, starts and commits `run` as a training job; runs blocks until it is drawn.
    pub(crate) fn committed_training(&mut self, run: &Run) -> u64 {
        let id = self.net.job_count();
        let spec = run.spec.encode();
        let (user, prov) = (self.user.clone(), self.prov.clone());
        assert_eq!(
            self.net.poi(&user, submit_training(&spec, run.spec.steps)),
            "ok"
        );
        assert_eq!(self.net.market(&prov, MarketMsg::StartJob { id }), "ok");
        assert_eq!(self.net.poi(&prov, run.commit(id)), "ok");
        self.until(|net| net.poi_job(id).randomness.is_some());
        id
    }

    /// The owner reveals the eval set and the provider claims `score`; runs blocks until the
    /// eval check exists.
    pub(crate) fn reveal_and_claim(&mut self, id: u64, score: u64) {
        let (user, prov) = (self.user.clone(), self.prov.clone());
        let reveal = PoiMsg::RevealEval {
            job: id,
            reveal: EvalReveal {
                dataset: EVAL_DATASET.into(),
                salt: EVAL_SALT,
                select_permille: 500,
            },
        };
        assert_eq!(self.net.poi(&user, reveal), "ok");
        assert_eq!(
            self.net.poi(&prov, PoiMsg::ClaimScore { job: id, score }),
            "ok"
        );
        self.until(|net| {
            net.poi_job(id)
                .quality
                .as_ref()
                .is_some_and(|q| q.eval_check.is_some())
        });
    }

    /// Job `id`'s eval check.
    pub(crate) fn eval_check(&self, id: u64) -> Check {
        let index = self.net.poi_job(id).quality.unwrap().eval_check.unwrap();
        checks::read_check(&self.net.state, id, index)
            .unwrap()
            .unwrap()
    }

    pub(crate) fn until(&mut self, mut done: impl FnMut(&Net) -> bool) {
        for _ in 0..200 {
            if done(&self.net) {
                return;
            }
            self.net.empty_blocks(1);
        }
        panic!("condition not reached in 200 blocks");
    }

    pub(crate) fn checks(&self, id: u64) -> Vec<Check> {
        checks::job_checks(&self.net.state, id).unwrap()
    }

    /// The verifier assigned to check `index` attests `verdict`; its code.
    pub(crate) fn attest(&mut self, id: u64, index: u32, verdict: Verdict) -> String {
        let check = checks::read_check(&self.net.state, id, index)
            .unwrap()
            .unwrap();
        let who = self.key_of(check.validator.expect("assigned")).clone();
        self.net.poi(
            &who,
            PoiMsg::Attest {
                job: id,
                check: index,
                verdict,
            },
        )
    }

    pub(crate) fn collateral(&self) -> u128 {
        poi_core::market::provider(&self.net.state, &addr(&self.prov))
            .unwrap()
            .unwrap()
            .record
            .collateral
    }
}

impl Net {
    fn job_count(&self) -> u64 {
        (0..)
            .find(|&id| poi_core::market::job(&self.state, id).unwrap().is_none())
            .unwrap()
    }
}

pub(crate) fn matching() -> Verdict {
    Verdict::Match { result: [3; 32] }
}

fn mismatch() -> Verdict {
    Verdict::Mismatch {
        step: 0,
        computed: [4; 32],
    }
}

#[test]
fn an_honest_inference_job_is_checked_by_others_and_settles_for_the_provider() {
    let mut w = World::new(params());
    let id = w.committed_inference();
    let checks = w.checks(id);
    assert!(!checks.is_empty());
    let job = w.net.poi_job(id);
    assert_eq!(
        (job.checks, job.checks_pending),
        (checks.len() as u32, checks.len() as u32)
    );
    for c in &checks {
        let v = c.validator.expect("six verifiers: every check is assigned");
        assert!(v != addr(&w.prov) && v != addr(&w.user));
        assert_eq!((c.role, c.status), (CheckRole::Spot, CheckStatus::Open));
        assert!(matches!(c.subject, CheckSubject::Request(i) if i < 16));
    }
    for c in &checks {
        let mine = checks::assigned_checks(&w.net.state, &c.validator.unwrap(), 100).unwrap();
        assert!(mine.contains(c), "the assignment index lists the check");
    }
    let paid_before = w.net.balance_of(&addr(&w.prov));
    for c in &checks {
        let credits = w
            .net
            .verifier(w.key_of(c.validator.unwrap()))
            .unwrap()
            .credits_units;
        assert_eq!(w.attest(id, c.index, matching()), "ok");
        let after = w.net.verifier(w.key_of(c.validator.unwrap())).unwrap();
        assert_eq!(after.credits_units, credits + c.units);
    }
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verified);
    assert_eq!(w.net.job(id).status, JobStatus::Settled);
    assert!(
        w.net.balance_of(&addr(&w.prov)) > paid_before,
        "the provider was paid"
    );
    assert!(
        w.checks(id)
            .iter()
            .all(|c| c.status == CheckStatus::Matched)
    );
    for v in &w.verifiers {
        assert!(
            checks::assigned_checks(&w.net.state, &addr(v), 100)
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn a_real_training_job_checks_its_last_segment_and_settles_when_all_match() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    let job = w.net.poi_job(id);
    assert_eq!(job.kind, PoiKind::Training);
    let checks = w.checks(id);
    let last = CheckSubject::Segment(job.segments - 1);
    assert!(
        checks.iter().any(|c| c.subject == last),
        "the last segment is always checked"
    );
    // The chain refuses a mismatch outside the checked segment, and scores on a segment.
    let c = checks.iter().find(|c| c.subject == last).unwrap().clone();
    let first = (job.segments - 1) * job.segment_steps;
    let outside = Verdict::Mismatch {
        step: first,
        computed: [0; 32],
    };
    assert_eq!(w.attest(id, c.index, outside), "invalid_message");
    let scores = Verdict::Scores {
        score: 1,
        base_score: 2,
    };
    assert_eq!(w.attest(id, c.index, scores), "invalid_message");
    for c in &checks {
        assert_eq!(w.attest(id, c.index, matching()), "ok");
    }
    // Every segment matched, but the job waits for its quality.
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verifying);
    w.reveal_and_claim(id, 600_000);
    let eval = w.eval_check(id);
    assert_eq!(w.attest(id, eval.index, matching()), "invalid_message");
    let measured = Verdict::Scores {
        score: 600_000,
        base_score: 1_000_000,
    };
    assert_eq!(w.attest(id, eval.index, measured), "ok");
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verified);
    assert_eq!(w.net.job(id).status, JobStatus::Settled);
}

#[test]
fn attestations_are_refused_from_anyone_but_the_assigned_verifier_and_only_once() {
    let mut w = World::new(params());
    let id = w.committed_inference();
    let c = w.checks(id)[0].clone();
    let assigned = c.validator.unwrap();
    let other = w
        .verifiers
        .iter()
        .find(|k| addr(k) != assigned)
        .unwrap()
        .clone();
    let attest = |check| PoiMsg::Attest {
        job: id,
        check,
        verdict: matching(),
    };
    assert_eq!(w.net.poi(&other, attest(c.index)), "not_assigned_verifier");
    assert_eq!(w.net.poi(&other, attest(999)), "unknown_check");
    let provider = w.prov.clone();
    assert_eq!(
        w.net.poi(&provider, attest(c.index)),
        "not_assigned_verifier"
    );
    assert_eq!(w.attest(id, c.index, matching()), "ok");
    let who = w.key_of(assigned).clone();
    assert_eq!(w.net.poi(&who, attest(c.index)), "check_closed");
}

/// An accusation on the first check; returns the accused check and the accuser.
pub(crate) fn accuse(w: &mut World, id: u64, verdict: Verdict) -> (Check, Address) {
    let first = w.checks(id)[0].clone();
    accuse_check(w, first, verdict)
}

/// An accusation on check `c`, waited on until its referees are drawn.
pub(crate) fn accuse_check(w: &mut World, c: Check, verdict: Verdict) -> (Check, Address) {
    let id = c.job;
    assert_eq!(w.attest(id, c.index, verdict), "ok");
    let accused = checks::read_check(&w.net.state, id, c.index)
        .unwrap()
        .unwrap();
    assert_eq!(accused.status, CheckStatus::AwaitingReferees);
    assert!(accused.referee_target.is_some());
    w.until(|net| {
        checks::read_check(&net.state, id, c.index)
            .unwrap()
            .unwrap()
            .status
            == CheckStatus::Refereed
    });
    (accused, c.validator.unwrap())
}

pub(crate) fn referees_of(w: &World, id: u64, of: u32) -> Vec<Check> {
    w.checks(id)
        .into_iter()
        .filter(|c| c.role == CheckRole::Referee { of })
        .collect()
}

#[test]
fn a_mismatch_the_referees_uphold_slashes_the_provider_and_pays_the_accuser() {
    let mut w = World::new(params());
    let id = w.committed_inference();
    let (accused, accuser) = accuse(&mut w, id, mismatch());
    let referees = referees_of(&w, id, accused.index);
    assert_eq!(referees.len(), 3);
    let chosen: Vec<Address> = referees.iter().map(|r| r.validator.unwrap()).collect();
    assert!(
        !chosen.contains(&accuser),
        "the accuser does not referee itself"
    );
    assert!(
        chosen
            .iter()
            .all(|v| *v != addr(&w.prov) && *v != addr(&w.user))
    );
    let mut distinct = chosen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "three different referees");
    let (collateral, accuser_balance, owner_balance) = (
        w.collateral(),
        w.net.balance_of(&accuser),
        w.net.balance_of(&addr(&w.user)),
    );
    // One referee disagrees, two confirm: upheld at the second confirmation.
    assert_eq!(w.attest(id, referees[0].index, matching()), "ok");
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verifying);
    assert_eq!(w.attest(id, referees[1].index, mismatch()), "ok");
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verifying);
    assert_eq!(w.attest(id, referees[2].index, mismatch()), "ok");
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Failed);
    assert_eq!(w.net.job(id).status, JobStatus::Failed);
    let slashed = collateral - w.collateral();
    assert!(slashed > 0);
    assert!(
        w.net.balance_of(&accuser) > accuser_balance,
        "the accuser is paid"
    );
    assert!(
        w.net.balance_of(&addr(&w.user)) > owner_balance,
        "the owner is refunded"
    );
    let records = checks::slashes(&w.net.state, None, 10).unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (r.account, r.reason.as_str(), r.job, r.check, r.amount),
        (addr(&w.prov), "wrong_inference", id, accused.index, slashed)
    );
    assert_eq!(r.evidence, mismatch());
    assert_eq!(r.referees, vec![chosen[1], chosen[2]]);
    // The dissenting referee has a strike; the others none.
    let strikes = |a: Address| w.net.verifier(w.key_of(a)).unwrap().strikes;
    assert_eq!(
        (
            strikes(chosen[0]),
            strikes(chosen[1]),
            strikes(chosen[2]),
            strikes(accuser)
        ),
        (1, 0, 0, 0)
    );
    // Every other check of the failed job is closed and holds no verifier.
    assert!(w.checks(id).iter().all(|c| !c.status.blocks_settlement()));
    for v in &w.verifiers {
        assert_eq!(w.net.verifier(v).unwrap().open_checks, 0);
    }
}

#[test]
fn an_unserved_checkpoint_upheld_is_a_withheld_checkpoint_slash() {
    let mut w = World::new(params());
    let id = w.committed_inference();
    let (accused, _) = accuse(&mut w, id, Verdict::Unavailable);
    let referees = referees_of(&w, id, accused.index);
    assert_eq!(w.attest(id, referees[0].index, Verdict::Unavailable), "ok");
    assert_eq!(w.attest(id, referees[1].index, Verdict::Unavailable), "ok");
    let records = checks::slashes(&w.net.state, None, 10).unwrap();
    assert_eq!(records[0].reason, "withheld_checkpoint");
    // The third referee's check was waived with the job.
    let third = checks::read_check(&w.net.state, id, referees[2].index)
        .unwrap()
        .unwrap();
    assert_eq!(third.status, CheckStatus::Waived);
}

#[test]
fn an_accusation_the_referees_reject_strikes_the_accuser_and_the_job_settles() {
    let mut w = World::new(params());
    let id = w.committed_inference();
    let (accused, accuser) = accuse(&mut w, id, mismatch());
    let referees = referees_of(&w, id, accused.index);
    assert_eq!(w.attest(id, referees[0].index, matching()), "ok");
    assert_eq!(w.attest(id, referees[1].index, matching()), "ok");
    let check = checks::read_check(&w.net.state, id, accused.index)
        .unwrap()
        .unwrap();
    assert_eq!(check.status, CheckStatus::Overturned);
    assert_eq!(w.net.verifier(w.key_of(accuser)).unwrap().strikes, 1);
    // The remaining spot checks match: the job settles for the provider, nobody slashed.
    let open: Vec<Check> = w
        .checks(id)
        .into_iter()
        .filter(|c| c.role == CheckRole::Spot && c.status == CheckStatus::Open)
        .collect();
    for c in open {
        assert_eq!(w.attest(id, c.index, matching()), "ok");
    }
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verified);
    assert_eq!(w.net.job(id).status, JobStatus::Settled);
    assert!(checks::slashes(&w.net.state, None, 10).unwrap().is_empty());
}

#[test]
fn missed_deadlines_strike_reassign_jail_and_finally_waive() {
    let mut p = params();
    p.poi.strikes_to_jail = 2;
    p.poi.jail_blocks = 1_000;
    let mut w = World::new(p.clone());
    let id = w.committed_inference();
    let first = w.checks(id)[0].clone();
    // Nobody answers: each deadline strikes the verifier and reassigns, up to the attempts.
    let mut seen = vec![first.validator.unwrap()];
    for attempt in 2..=p.poi.check_attempts_max {
        let deadline = checks::read_check(&w.net.state, id, first.index)
            .unwrap()
            .unwrap()
            .deadline;
        while w.net.height < deadline {
            w.net.empty_blocks(1);
        }
        let c = checks::read_check(&w.net.state, id, first.index)
            .unwrap()
            .unwrap();
        assert_eq!((c.status, c.attempts), (CheckStatus::Open, attempt));
        seen.push(c.validator.unwrap());
    }
    w.until(|net| {
        checks::read_check(&net.state, id, first.index)
            .unwrap()
            .unwrap()
            .status
            == CheckStatus::Waived
    });
    // Every verifier that held a check and missed it has strikes or was jailed for them.
    for v in &seen {
        let rec = w.net.verifier(w.key_of(*v)).unwrap();
        assert!(rec.strikes > 0 || rec.jailed_until > w.net.height, "{v}");
    }
    // With every check waived the job settles: waived checks do not block payment.
    w.until(|net| net.poi_job(id).status == PoiStatus::Verified);
    assert_eq!(w.net.job(id).status, JobStatus::Settled);
    let jailed = w
        .verifiers
        .iter()
        .filter(|k| w.net.verifier(k).unwrap().jailed_until > w.net.height)
        .count();
    assert!(jailed > 0, "two missed checks jail a verifier");
}

#[test]
fn without_eligible_verifiers_checks_wait_and_nothing_is_paid() {
    let (prov, user) = (key(1), key(2));
    let mut net = Net::new_poi(&[&prov, &user], params()).with_beacon();
    net.poi_provider(&prov);
    assert_eq!(net.poi(&user, submit_inference()), "ok");
    assert_eq!(net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: [9; 32],
    };
    assert_eq!(net.poi(&prov, commit), "ok");
    net.empty_blocks(60);
    let checks = checks::job_checks(&net.state, 0).unwrap();
    assert!(!checks.is_empty());
    assert!(
        checks
            .iter()
            .all(|c| c.validator.is_none() && c.status == CheckStatus::Open)
    );
    assert_eq!(net.poi_job(0).status, PoiStatus::Verifying);
    assert!(net.job(0).is_held());
}

#[test]
fn segment_selection_frequency_matches_check_bps() {
    // 400 seeds x 4,096 segments at f = 3%: the observed fraction is within 0.1 point.
    let mut job = poi_core::poi::PoiJob {
        id: 7,
        kind: PoiKind::Training,
        steps: 4_096,
        segment_steps: 1,
        segments: 4_096,
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
    };
    let mut picked = 0u64;
    let mut total = 0u64;
    for seed in 0u32..400 {
        let r = *blake3::hash(&seed.to_le_bytes()).as_bytes();
        let subjects = spot::selected(&job, &r, 300, 300);
        assert_eq!(
            subjects.last(),
            Some(&CheckSubject::Segment(4_095)),
            "the last segment is always checked"
        );
        picked += subjects.len() as u64 - 1;
        total += 4_095;
    }
    let ppm = picked * 1_000_000 / total;
    assert!((29_000..=31_000).contains(&ppm), "selected {ppm} ppm");
    // Inference always checks at least one request, even at r = 0.
    job.kind = PoiKind::Inference;
    job.segments = 5;
    for seed in 0u32..50 {
        let r = *blake3::hash(&seed.to_le_bytes()).as_bytes();
        assert!(!spot::selected(&job, &r, 0, 0).is_empty());
    }
}
