//! Verified quality and the model registry: eval commit and reveal, the provider's claim, the
//! validators' measurement, forged scores, the multiplier, and the versions registered with
//! their lineage, which inference jobs then run.

use poi_core::market::{JobStatus, MarketMsg};
use poi_core::poi::checks::{self, CheckStatus, Verdict};
use poi_core::poi::quality::{
    self, EvalReveal, QualityStage, improvement_ppm, multiplier_ppm, validate_knots,
};
use poi_core::poi::{PoiMsg, PoiStatus, registry};
use proptest::prelude::*;

use crate::chain::addr;
use crate::poi::{EVAL_DATASET, EVAL_SALT, ROOT_MODEL, tiny_run};
use crate::spot::{World, accuse_check, matching, params, referees_of};

/// Matches every segment check of `id`.
fn match_segments(w: &mut World, id: u64) {
    for c in w.checks(id) {
        if c.status == CheckStatus::Open && c.subject != checks::CheckSubject::Eval {
            assert_eq!(w.attest(id, c.index, matching()), "ok");
        }
    }
}

fn scores(score: u64, base_score: u64) -> Verdict {
    Verdict::Scores { score, base_score }
}

#[test]
fn an_honest_job_is_measured_paid_and_registered_with_its_lineage() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    match_segments(&mut w, id);
    w.reveal_and_claim(id, 700_000);
    let eval = w.eval_check(id);
    assert_eq!(w.attest(id, eval.index, scores(700_000, 1_000_000)), "ok");
    let job = w.net.poi_job(id);
    assert_eq!(job.status, PoiStatus::Verified);
    let q = job.quality.clone().unwrap();
    assert_eq!((q.score, q.base_score), (Some(700_000), Some(1_000_000)));
    assert_eq!(q.improvement_ppm, 300_000);
    let knots = params().poi.quality_knots;
    assert_eq!(q.multiplier_ppm, multiplier_ppm(&knots, 300_000));
    assert_eq!(
        q.multiplier_ppm, 1_166_666,
        "a third of the way from 1.0 to 1.5"
    );
    // Registered: the root charlm is version 0, so this mlp is id 1, version 1 of mlp-iris.
    let model_id = job.model_id.expect("registered");
    let m = registry::read_model(&w.net.state, model_id)
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.name.as_str(), m.version, m.job),
        ("mlp-iris", 1, Some(id))
    );
    assert_eq!(m.params_digest, job.commitment.unwrap().params_digest);
    assert_eq!(
        (m.provider, m.developers[0].address),
        (Some(addr(&w.prov)), addr(&w.user))
    );
    assert_eq!(registry::lineage(&w.net.state, model_id).unwrap().len(), 1);

    // A fine-tune of it names it as base: its lineage runs back to the first version.
    let mut submit = crate::poi::submit_training(&run.spec.encode(), 12);
    if let PoiMsg::SubmitTraining { base_model, .. } = &mut submit {
        *base_model = Some(model_id);
    }
    let user = w.user.clone();
    assert_eq!(w.net.poi(&user, submit), "ok");
    let second = model_id + 1;
    let prov = w.prov.clone();
    assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id: 1 }), "ok");
    assert_eq!(w.net.poi(&prov, run.commit(1)), "ok");
    w.until(|net| net.poi_job(1).randomness.is_some());
    match_segments(&mut w, 1);
    w.reveal_and_claim(1, 650_000);
    let eval = w.eval_check(1);
    assert_eq!(w.attest(1, eval.index, scores(650_000, 700_000)), "ok");
    let lineage = registry::lineage(&w.net.state, second).unwrap();
    let ids: Vec<u64> = lineage.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![second, model_id]);
    assert_eq!(lineage[0].version, 2, "versions count up per name");

    // Inference can run the registered version, and only as the model kind it is.
    let mut infer = crate::poi::submit_inference();
    if let PoiMsg::SubmitInference { model, version, .. } = &mut infer {
        *model = "mlp".into();
        *version = u32::try_from(model_id).unwrap();
    }
    assert_eq!(w.net.poi(&user, infer.clone()), "ok");
    if let PoiMsg::SubmitInference { model, .. } = &mut infer {
        *model = "charlm".into();
    }
    assert_eq!(w.net.poi(&user, infer.clone()), "invalid_message");
    if let PoiMsg::SubmitInference { version, .. } = &mut infer {
        *version = 99;
    }
    assert_eq!(w.net.poi(&user, infer), "invalid_message");
    let _ = ROOT_MODEL;
}

#[test]
fn a_forged_score_is_caught_by_the_referees_and_slashed() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    match_segments(&mut w, id);
    // The provider claims far better than the model does.
    w.reveal_and_claim(id, 100_000);
    let eval = w.eval_check(id);
    let (accused, _) = accuse_check(&mut w, eval, scores(800_000, 1_000_000));
    let referees = referees_of(&w, id, accused.index);
    assert_eq!(
        w.attest(id, referees[0].index, scores(800_000, 1_000_000)),
        "ok"
    );
    assert_eq!(
        w.attest(id, referees[1].index, scores(800_000, 1_000_000)),
        "ok"
    );
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Failed);
    assert_eq!(w.net.job(id).status, JobStatus::Failed);
    let records = checks::slashes(&w.net.state, None, 10).unwrap();
    assert_eq!(records[0].reason, "forged_score");
    assert_eq!(records[0].evidence, scores(800_000, 1_000_000));
    assert!(
        registry::models(&w.net.state, Some("mlp-iris"), None, 10)
            .unwrap()
            .is_empty()
    );
    let q = w.net.poi_job(id).quality.unwrap();
    assert_eq!(q.stage, QualityStage::Done);
}

#[test]
fn an_honest_claim_survives_a_false_accusation() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    match_segments(&mut w, id);
    w.reveal_and_claim(id, 700_000);
    let eval = w.eval_check(id);
    let (accused, accuser) = accuse_check(&mut w, eval, scores(900_000, 1_000_000));
    let referees = referees_of(&w, id, accused.index);
    assert_eq!(
        w.attest(id, referees[0].index, scores(700_000, 1_000_000)),
        "ok"
    );
    assert_eq!(
        w.attest(id, referees[1].index, scores(700_000, 1_000_000)),
        "ok"
    );
    let job = w.net.poi_job(id);
    assert_eq!(job.status, PoiStatus::Verified);
    assert_eq!(job.quality.unwrap().score, Some(700_000));
    assert_eq!(w.net.verifier(w.key_of(accuser)).unwrap().strikes, 1);
}

#[test]
fn no_reveal_caps_the_multiplier_and_no_claim_zeroes_it() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    match_segments(&mut w, id);
    // Nobody reveals or claims: the windows close and the eval check measures anyway.
    w.until(|net| {
        net.poi_job(id)
            .quality
            .as_ref()
            .is_some_and(|q| q.eval_check.is_some())
    });
    let eval = w.eval_check(id);
    assert_eq!(w.attest(id, eval.index, scores(100_000, 1_000_000)), "ok");
    let q = w.net.poi_job(id).quality.unwrap();
    assert_eq!(
        (q.reveal.is_none(), q.claim, q.multiplier_ppm),
        (true, None, 0)
    );
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verified);

    // Revealed but unclaimed: zero. Claimed but unrevealed: at most 1.0.
    let id = w.committed_training(&run);
    match_segments(&mut w, id);
    let prov = w.prov.clone();
    w.until(|net| {
        matches!(
            net.poi_job(id).quality.unwrap().stage,
            QualityStage::AwaitingClaim { .. }
        )
    });
    assert_eq!(
        w.net.poi(
            &prov,
            PoiMsg::ClaimScore {
                job: id,
                score: 100_000
            }
        ),
        "ok"
    );
    w.until(|net| net.poi_job(id).quality.unwrap().eval_check.is_some());
    let eval = w.eval_check(id);
    assert_eq!(w.attest(id, eval.index, scores(100_000, 1_000_000)), "ok");
    let q = w.net.poi_job(id).quality.unwrap();
    assert_eq!(q.improvement_ppm, 900_000);
    assert_eq!(q.multiplier_ppm, 1_000_000, "capped without a reveal");
}

#[test]
fn reveals_and_claims_are_refused_when_wrong() {
    let run = tiny_run(12);
    let mut w = World::new(params());
    let id = w.committed_training(&run);
    let (user, prov) = (w.user.clone(), w.prov.clone());
    let reveal = |salt: [u8; 32], permille: u16| PoiMsg::RevealEval {
        job: id,
        reveal: EvalReveal {
            dataset: EVAL_DATASET.into(),
            salt,
            select_permille: permille,
        },
    };
    assert_eq!(
        w.net.poi(&prov, PoiMsg::ClaimScore { job: id, score: 1 }),
        "bad_job_state"
    );
    assert_eq!(w.net.poi(&prov, reveal(EVAL_SALT, 500)), "not_job_owner");
    assert_eq!(w.net.poi(&user, reveal([0; 32], 500)), "digest_mismatch");
    assert_eq!(w.net.poi(&user, reveal(EVAL_SALT, 499)), "digest_mismatch");
    assert_eq!(w.net.poi(&user, reveal(EVAL_SALT, 0)), "invalid_message");
    assert_eq!(w.net.poi(&user, reveal(EVAL_SALT, 500)), "ok");
    assert_eq!(w.net.poi(&user, reveal(EVAL_SALT, 500)), "bad_job_state");
    assert_eq!(
        w.net.poi(&user, PoiMsg::ClaimScore { job: id, score: 1 }),
        "not_assigned_provider"
    );
    assert_eq!(
        w.net.poi(&prov, PoiMsg::ClaimScore { job: id, score: 1 }),
        "ok"
    );
    assert_eq!(
        w.net.poi(&prov, PoiMsg::ClaimScore { job: id, score: 2 }),
        "bad_job_state"
    );
    // A base model must be registered.
    let mut submit = crate::poi::submit_training(&run.spec.encode(), 12);
    if let PoiMsg::SubmitTraining { base_model, .. } = &mut submit {
        *base_model = Some(42);
    }
    assert_eq!(w.net.poi(&user, submit), "invalid_message");
}

#[test]
fn the_multiplier_interpolates_its_knots() {
    let knots = params().poi.quality_knots;
    assert_eq!(multiplier_ppm(&knots, 0), 0);
    assert_eq!(multiplier_ppm(&knots, 25_000), 250_000);
    assert_eq!(multiplier_ppm(&knots, 50_000), 500_000);
    assert_eq!(multiplier_ppm(&knots, 200_000), 1_000_000);
    assert_eq!(
        multiplier_ppm(&knots, 900_000),
        1_500_000,
        "flat after the last knot"
    );
    assert_eq!(improvement_ppm(700, 1_000), 300_000);
    assert_eq!(
        improvement_ppm(1_200, 1_000),
        0,
        "worse than the base is no improvement"
    );
    assert_eq!(improvement_ppm(0, 0), 0);
    assert!(validate_knots(&[(0, 0), (10, 5), (10, 6)]).is_err());
    assert!(validate_knots(&[(0, 0), (10, 5), (20, 4)]).is_err());
    assert!(validate_knots(&[(1, 0)]).is_err());
    assert!(validate_knots(&knots).is_ok());
    assert_eq!(
        quality::eval_commitment("iris", &[1; 32], 500),
        quality::eval_commitment("iris", &[1; 32], 500)
    );
    assert_ne!(
        quality::eval_commitment("iris", &[1; 32], 500),
        quality::eval_commitment("wine", &[1; 32], 500)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(5), ..ProptestConfig::default() })]
    /// m is monotone in g, zero at zero, and never above the last knot, for any valid knots.
    #[test]
    fn the_multiplier_is_monotone_and_zero_for_no_improvement(
        steps in proptest::collection::vec((1u64..200_000, 0u64..500_000), 1..8),
        a in 0u64..2_000_000,
        b in 0u64..2_000_000,
    ) {
        let mut knots = vec![(0u64, 0u64)];
        for (dx, dy) in steps {
            let (x, y) = *knots.last().unwrap();
            knots.push((x + dx, y + dy));
        }
        prop_assert!(validate_knots(&knots).is_ok());
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(multiplier_ppm(&knots, lo) <= multiplier_ppm(&knots, hi));
        prop_assert_eq!(multiplier_ppm(&knots, 0), 0);
        prop_assert!(multiplier_ppm(&knots, hi) <= knots.last().unwrap().1);
    }
}
