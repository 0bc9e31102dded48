//! Canaries: a lazy validator that matches a planted error is slashed and jailed once the
//! issuer reveals; honest accusers earn double credit; nobody is slashed for the planted work.

use ed25519_dalek::SigningKey;
use poi_core::market::{JobStatus, MarketMsg};
use poi_core::params::Params;
use poi_core::poi::canary::{canary_leaf, canary_seal};
use poi_core::poi::checks::{self, CheckStatus, Verdict};
use poi_core::poi::{PoiMsg, PoiStatus, merkle};

use crate::chain::addr;
use crate::poi::submit_inference;
use crate::spot::{World, matching, params};

const SECRETS: [[u8; 32]; 4] = [[0xc1; 32], [0xc2; 32], [0xc3; 32], [0xc4; 32]];

/// The issuer's client identity (the World's user, key 2).
fn client() -> SigningKey {
    crate::chain::key(2)
}

fn leaves(issuer: &SigningKey) -> Vec<[u8; 32]> {
    SECRETS
        .iter()
        .map(|s| canary_leaf(&addr(&client()), &addr(issuer), s))
        .collect()
}

/// Params whose canary root lists four secrets of the pair (client, `issuer`).
fn canary_params(issuer: &SigningKey) -> Params {
    let mut p = params();
    let leaves = leaves(issuer);
    p.poi.canary_root = Some(merkle::merkle_root(&leaves));
    p.poi.canary_leaves = leaves.len() as u64;
    p
}

/// The audit path of leaf `index` of the four-leaf tree (pairs, then the other pair).
fn proof(issuer: &SigningKey, index: usize) -> Vec<[u8; 32]> {
    let leaves = leaves(issuer);
    let hashed: Vec<[u8; 32]> = (0u64..)
        .zip(&leaves)
        .map(|(i, d)| merkle::leaf_hash(i, d))
        .collect();
    let pair = |a: usize| merkle::node_hash(&hashed[a], &hashed[a + 1]);
    let sibling = hashed[index ^ 1];
    let other_pair = if index < 2 { pair(2) } else { pair(0) };
    vec![sibling, other_pair]
}

/// An inference job sealed as canary `secret`, drawn.
fn canary_job(w: &mut World, secret: &[u8; 32]) -> u64 {
    let id = 0;
    let (user, prov) = (w.user.clone(), w.prov.clone());
    assert_eq!(w.net.poi(&user, submit_inference()), "ok");
    assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id }), "ok");
    let commit = PoiMsg::CommitInference {
        job: id,
        output_root: [8; 32],
        sealed: canary_seal(id, secret),
    };
    assert_eq!(w.net.poi(&prov, commit), "ok");
    w.until(|net| net.poi_job(id).randomness.is_some());
    id
}

fn reveal(id: u64, index: usize, issuer: &SigningKey) -> PoiMsg {
    PoiMsg::RevealCanary {
        job: id,
        secret: SECRETS[index],
        leaf_index: index as u64,
        proof: proof(issuer, index),
    }
}

#[test]
fn a_lazy_match_on_a_canary_is_slashed_and_honest_accusers_are_paid_double() {
    let issuer = crate::chain::key(1);
    let mut p = canary_params(&issuer);
    p.poi.infer_check_bps = 10_000; // every request checked: several validators answer
    p.poi.check_blocks = 200; // one attestation a block: none expires meanwhile
    let mut w = World::new(p.clone());
    let id = canary_job(&mut w, &SECRETS[2]);
    let checks = w.checks(id);
    assert!(checks.len() >= 2);
    // The first check's validator is lazy; the others re-run and find the planted error.
    let lazy = checks[0].validator.unwrap();
    let mismatch = Verdict::Mismatch {
        step: 0,
        computed: [4; 32],
    };
    let mut honest = Vec::new();
    for c in &checks {
        let verdict = if c.validator == Some(lazy) {
            matching()
        } else {
            honest.push(c.validator.unwrap());
            mismatch.clone()
        };
        assert_eq!(w.attest(id, c.index, verdict), "ok");
    }
    // The issuer cannot reveal with a wrong secret, proof, or identity.
    let user = w.user.clone();
    let stranger = w.verifiers[0].clone();
    assert_eq!(
        w.net.poi(&stranger, reveal(id, 2, &issuer)),
        "not_job_owner"
    );
    assert_eq!(
        w.net.poi(&issuer, reveal(id, 1, &issuer)),
        "invalid_message"
    );
    let mut bad = reveal(id, 2, &issuer);
    if let PoiMsg::RevealCanary { proof, .. } = &mut bad {
        proof[0][0] ^= 1;
    }
    assert_eq!(w.net.poi(&issuer, bad), "invalid_message");
    let _ = user;

    let lazy_key = w.key_of(lazy).clone();
    let before = w.net.verifier(&lazy_key).unwrap();
    let honest_before: Vec<u64> = honest
        .iter()
        .map(|a| w.net.verifier(w.key_of(*a)).unwrap().credits_units)
        .collect();
    let collateral = w.collateral();
    assert_eq!(w.net.poi(&issuer, reveal(id, 2, &issuer)), "ok");
    assert_eq!(w.net.poi(&issuer, reveal(id, 2, &issuer)), "bad_job_state");

    let after = w.net.verifier(&lazy_key).unwrap();
    let lazy_checks = w
        .checks(id)
        .iter()
        .filter(|c| c.validator == Some(lazy) && c.verdict == Some(matching()))
        .count();
    assert_eq!(
        lazy_checks,
        checks.iter().filter(|c| c.validator == Some(lazy)).count()
    );
    assert!(after.bond < before.bond && after.bond > 0);
    let mut expected = before.bond;
    for _ in 0..lazy_checks {
        expected -= expected * u128::from(p.poi.lazy_slash_bps) / 10_000;
    }
    assert_eq!(
        after.bond, expected,
        "lazy_slash_bps of the bond per lazy match"
    );
    assert!(after.jailed_until > w.net.height);
    let records = checks::slashes(&w.net.state, None, 10).unwrap();
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|r| r.account == lazy && r.reason == "lazy_validator" && r.role == "validator")
    );
    for (a, credits) in honest.iter().zip(honest_before) {
        let v = w.net.verifier(w.key_of(*a)).unwrap();
        assert!(
            v.credits_units > credits,
            "double credit for finding the planted error"
        );
    }
    // Nobody is slashed for the planted work: the job settles and the collateral is intact.
    assert_eq!(w.collateral(), collateral);
    assert_eq!(w.net.poi_job(id).status, PoiStatus::Verified);
    assert_eq!(w.net.job(id).status, JobStatus::Settled);
    assert!(
        w.checks(id)
            .iter()
            .all(|c| c.status != CheckStatus::Open && !c.status.blocks_settlement())
    );
}

#[test]
fn a_canary_cannot_be_revealed_before_its_draw_or_without_a_root() {
    let issuer = crate::chain::key(1);
    let mut w = World::new(canary_params(&issuer));
    let (user, prov) = (w.user.clone(), w.prov.clone());
    assert_eq!(w.net.poi(&user, submit_inference()), "ok");
    assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id: 0 }), "ok");
    let commit = PoiMsg::CommitInference {
        job: 0,
        output_root: [8; 32],
        sealed: canary_seal(0, &SECRETS[0]),
    };
    assert_eq!(w.net.poi(&prov, commit), "ok");
    assert_eq!(w.net.poi(&issuer, reveal(0, 0, &issuer)), "bad_job_state");
    // Revealed right after the draw: verdicts that come later are judged as they arrive.
    w.until(|net| net.poi_job(0).randomness.is_some());
    assert_eq!(w.net.poi(&issuer, reveal(0, 0, &issuer)), "ok");
    for c in w.checks(0) {
        if c.status == CheckStatus::Open {
            assert_eq!(w.attest(0, c.index, matching()), "ok");
        }
    }
    let records = checks::slashes(&w.net.state, None, 10).unwrap();
    assert!(!records.is_empty() && records.iter().all(|r| r.reason == "lazy_validator"));
    assert_eq!(w.net.poi_job(0).status, PoiStatus::Verified);

    let mut w = World::new(params());
    let id = canary_job(&mut w, &SECRETS[0]);
    for c in w.checks(id) {
        assert_eq!(w.attest(id, c.index, matching()), "ok");
    }
    assert_eq!(
        w.net.poi(&issuer, reveal(id, 0, &issuer)),
        "invalid_message"
    );
}
