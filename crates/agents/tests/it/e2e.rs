//! Proof of Intelligence end to end: one consensus validator with a dealt beacon (blocks
//! carry seeds), a provider agent and validator agents, all over loopback HTTP. Every
//! segment is checked (`check_bps` 10,000). An honest job is verified, measured and paid; each
//! cheating provider is slashed with the reason its cheat earns; contrarian accusations are
//! overturned; lazy validators match without re-executing.

use std::time::Instant;

use poi_agents::Wallet;
use poi_agents::behaviour::{ProviderBehaviour, ValidatorBehaviour};
use poi_agents::provider::work;
use poi_core::poi::PoiMsg;
use poi_core::tx::Msg;
use serde_json::{Value, json};

use crate::chain::{Running, TestChain, addr, key, run_provider, run_validator, submit_training};

/// Validators in most scenarios: an accuser plus three referees.
const VALIDATORS: u8 = 4;

/// Fields drop in order: the agents stop before the chain.
struct Scenario {
    _agents: Vec<Running>,
    chain: TestChain,
    _home: tempfile::TempDir,
    owner: Wallet,
    provider: poi_core::Address,
}

impl Scenario {
    fn start(provider: ProviderBehaviour, validators: &[ValidatorBehaviour]) -> Scenario {
        let count = u8::try_from(validators.len()).expect("few validators");
        let keys: Vec<_> = (0..count).map(|i| key(10 + i)).collect();
        let (prov, owner) = (key(1), key(2));
        let mut funded = vec![&prov, &owner];
        funded.extend(keys.iter());
        let chain = TestChain::start_with_beacon(&funded);
        let home = tempfile::tempdir().expect("home");
        let mut agents = vec![run_provider(
            &chain,
            home.path(),
            "provider",
            prov.clone(),
            |c| {
                c.behaviour = provider;
            },
        )];
        for (i, (k, behaviour)) in keys.iter().zip(validators).enumerate() {
            let name = format!("validator-{i}");
            agents.push(run_validator(&chain, home.path(), &name, k.clone(), |c| {
                c.behaviour = *behaviour;
            }));
        }
        let node = chain.client();
        for k in &keys {
            chain.wait_for("verifier registrations", || {
                node.get_opt(&format!("/validators/{}", addr(k)))
                    .ok()
                    .flatten()
            });
        }
        chain.wait_for("the provider's registration", || {
            node.get_opt(&format!("/providers/{}", addr(&prov)))
                .ok()
                .flatten()
        });
        Scenario {
            chain,
            _home: home,
            _agents: agents,
            owner: Wallet::new(owner),
            provider: addr(&prov),
        }
    }

    fn job(&self, id: u64) -> Value {
        self.chain
            .client()
            .get(&format!("/jobs/{id}"))
            .expect("job")
    }

    /// Waits until job `id`'s PoI status is `want`.
    fn wait_status(&self, id: u64, want: &str) -> Value {
        self.chain.wait_for(&format!("job {id} {want}"), || {
            let job = self.job(id);
            assert!(
                want == "failed" || job["poi"]["status"] != "failed",
                "job {id} failed: {}",
                job["poi"]
            );
            (job["poi"]["status"] == want).then_some(job)
        })
    }

    /// Waits for the slash record of job `id`.
    fn wait_slash(&self, id: u64) -> Value {
        let node = self.chain.client();
        self.chain.wait_for(&format!("a slash for job {id}"), || {
            let page = node.get("/slashes").ok()?;
            page["slashes"]
                .as_array()?
                .iter()
                .find(|s| s["job"] == id)
                .cloned()
        })
    }

    fn run_training(&mut self) -> u64 {
        submit_training(&self.chain, &mut self.owner)
    }

    /// Asserts the provider was slashed for `reason` on job `id`, which failed.
    fn assert_slashed(&self, id: u64, reason: &str) {
        let started = Instant::now();
        let slash = self.wait_slash(id);
        assert_eq!(slash["reason"], reason, "{slash}");
        assert_eq!(slash["role"], "provider");
        assert_eq!(slash["account"], self.provider.to_string());
        let upheld_by = slash["referees"].as_array().map_or(0, Vec::len);
        assert!(
            upheld_by >= 2,
            "a majority of three referees upheld it: {slash}"
        );
        let job = self.wait_status(id, "failed");
        assert_eq!(job["status"], "failed", "{job}");
        eprintln!(
            "job {id}: slashed for {reason} {:.1} s after its submission",
            started.elapsed().as_secs_f64()
        );
    }
}

fn honest_validators() -> Vec<ValidatorBehaviour> {
    vec![ValidatorBehaviour::Honest; VALIDATORS as usize]
}

#[test]
fn an_honest_training_job_is_checked_verified_measured_and_paid() {
    let started = Instant::now();
    let mut s = Scenario::start(ProviderBehaviour::Honest, &honest_validators());
    let id = s.run_training();
    let job = s.wait_status(id, "verified");
    let settled = s.chain.wait_for("settlement", || {
        let job = s.job(id);
        (job["status"] == "settled").then_some(job)
    });
    let checks = job["poi"]["check_list"].as_array().expect("checks").clone();
    // Four segments and the eval, each answered by a validator.
    assert_eq!(checks.len(), 5, "{checks:?}");
    for c in &checks {
        assert!(c["validator"].is_string(), "{c}");
        assert_eq!(c["status"], "matched", "{c}");
    }
    let quality = &job["poi"]["quality"];
    assert!(
        quality["score"].as_u64().expect("measured")
            < quality["base_score"].as_u64().expect("base"),
        "{quality}"
    );
    assert_eq!(quality["claim"], quality["score"]);
    let paid: u128 = settled["paid"]
        .as_str()
        .expect("paid")
        .parse()
        .expect("decimal");
    assert!(paid > 0, "{settled}");
    let models = s.chain.client().get("/models").expect("models");
    assert!(
        models["models"]
            .as_array()
            .expect("models")
            .iter()
            .any(|m| m["job"] == id),
        "the verified job registered a model: {models}"
    );
    eprintln!(
        "honest job verified and paid {paid} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn faked_segments_are_slashed_as_faked_segment() {
    let mut s = Scenario::start(
        ProviderBehaviour::FakeSegments { bps: 10_000 },
        &honest_validators(),
    );
    let id = s.run_training();
    s.assert_slashed(id, "faked_segment");
}

#[test]
fn skipped_steps_are_slashed_as_faked_segment() {
    let mut s = Scenario::start(ProviderBehaviour::SkipSteps, &honest_validators());
    let id = s.run_training();
    s.assert_slashed(id, "faked_segment");
}

#[test]
fn a_withheld_checkpoint_is_slashed_as_withheld_checkpoint() {
    let mut s = Scenario::start(ProviderBehaviour::WithholdCheckpoint, &honest_validators());
    let id = s.run_training();
    s.assert_slashed(id, "withheld_checkpoint");
}

#[test]
fn a_wrong_checkpoint_is_slashed_as_withheld_checkpoint() {
    let mut s = Scenario::start(ProviderBehaviour::WrongCheckpoint, &honest_validators());
    let id = s.run_training();
    s.assert_slashed(id, "withheld_checkpoint");
}

#[test]
fn a_forged_score_is_slashed_as_forged_score() {
    let mut s = Scenario::start(ProviderBehaviour::ForgeScore, &honest_validators());
    let id = s.run_training();
    s.assert_slashed(id, "forged_score");
}

#[test]
fn wrong_inference_is_slashed_as_wrong_inference() {
    // The provider trains honestly (its model is verified and registered), then answers
    // inference wrongly.
    let mut s = Scenario::start(ProviderBehaviour::WrongInference, &honest_validators());
    let trained = s.run_training();
    s.wait_status(trained, "verified");
    let node = s.chain.client();
    let model = s.chain.wait_for("the registered model", || {
        let page = node.get("/models").ok()?;
        page["models"]
            .as_array()?
            .iter()
            .find(|m| m["job"] == trained)?["id"]
            .as_u64()
    });
    let requests: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            json!({ "features": [0.2 * i as f32, -0.4, 0.1, 0.9] })
                .to_string()
                .into_bytes()
        })
        .collect();
    let msg = PoiMsg::SubmitInference {
        model: "mlp".into(),
        version: u32::try_from(model).expect("small id"),
        requests: requests.len() as u64,
        input_root: work::input_root(&requests).0,
        units: 1_000,
        max_price: 10,
    };
    let included = s
        .owner
        .send(&node, Msg::Poi(msg))
        .expect("inference submitted");
    let id = included.status["receipt"]["events"]
        .as_array()
        .and_then(|events| {
            let e = events.iter().find(|e| e["kind"] == "inference_submitted")?;
            e["attributes"].as_array()?.iter().find(|p| p[0] == "job")?[1]
                .as_str()?
                .parse()
                .ok()
        })
        .expect("an inference_submitted event");
    let endpoint = s.chain.wait_for("the match", || {
        let provider = s.job(id)["provider"].as_str()?.to_owned();
        node.get(&format!("/providers/{provider}")).ok()?["endpoint"]
            .as_str()
            .map(str::to_owned)
    });
    let body = json!({ "requests": requests.iter().map(hex::encode).collect::<Vec<_>>() });
    node.post_url(&format!("{endpoint}/v1/jobs/{id}/requests"), &body)
        .expect("requests posted");
    s.assert_slashed(id, "wrong_inference");
}

#[test]
fn lazy_validators_match_without_re_executing_so_a_faked_job_passes() {
    // Only canaries (a later step) catch this: lazy validators copy the served digests.
    let lazy = vec![ValidatorBehaviour::Lazy; VALIDATORS as usize];
    let mut s = Scenario::start(ProviderBehaviour::FakeSegments { bps: 10_000 }, &lazy);
    let id = s.run_training();
    let job = s.wait_status(id, "verified");
    let served = poi_agents::store::AgentDir::new(s._home.path(), "provider")
        .record(id)
        .expect("record")
        .expect("written");
    let poi_agents::store::JobRecord::Training { digests, .. } = served else {
        panic!("a training record");
    };
    for c in job["poi"]["check_list"].as_array().expect("checks") {
        if let Some(j) = c["subject"]["segment"].as_u64() {
            let end = ((j + 1) * crate::K).min(crate::STEPS) as usize;
            assert_eq!(c["verdict"]["verdict"], "match", "{c}");
            assert_eq!(
                c["verdict"]["result"],
                digests[end].to_hex(),
                "copied, not computed: {c}"
            );
        }
    }
}

#[test]
fn contrarian_accusations_are_overturned_and_struck() {
    use ValidatorBehaviour::{Contrarian, Honest};
    let mut s = Scenario::start(
        ProviderBehaviour::Honest,
        &[Contrarian, Contrarian, Honest, Honest, Honest],
    );
    let contrarians = [addr(&key(10)).to_string(), addr(&key(11)).to_string()];
    let id = s.run_training();
    let job = s.wait_status(id, "verified");
    let mut accused = 0;
    for c in job["poi"]["check_list"].as_array().expect("checks") {
        let by_contrarian = c["validator"]
            .as_str()
            .is_some_and(|v| contrarians.iter().any(|x| x == v));
        if c["role"] == "spot" && by_contrarian {
            assert_eq!(c["status"], "overturned", "{c}");
            accused += 1;
        }
    }
    let node = s.chain.client();
    let strikes: u64 = contrarians
        .iter()
        .map(|a| {
            node.get(&format!("/validators/{a}")).expect("verifier")["strikes"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    let jailed = contrarians.iter().any(|a| {
        node.get(&format!("/validators/{a}")).expect("verifier")["jailed_until"].as_u64() > Some(0)
    });
    assert!(
        accused == 0 || strikes > 0 || jailed,
        "an overturned accuser is struck"
    );
    let slashes = node.get("/slashes").expect("slashes");
    assert_eq!(
        slashes["slashes"],
        json!([]),
        "an honest provider is never slashed"
    );
    eprintln!("contrarians accused {accused} checks; all overturned");
}

#[test]
fn a_canary_catches_a_lazy_validator_and_slashes_it() {
    use poi_agents::provider::canary::CanaryConfig;
    let (prov, owner) = (key(1), key(2));
    let honest: Vec<_> = (10..13).map(key).collect();
    let lazy = key(20);
    let canary = CanaryConfig {
        client: addr(&owner),
        secrets: (0u8..4).map(|i| [0xc0 + i; 32]).collect(),
    };
    let mut funded = vec![&prov, &owner, &lazy];
    funded.extend(honest.iter());
    let root = canary.root(&addr(&prov));
    let chain = TestChain::start_with_beacon_params(&funded, |p| {
        p.poi.canary_root = Some(root);
        p.poi.canary_leaves = 4;
    });
    let home = tempfile::tempdir().expect("home");
    let node = chain.client();
    let _provider = run_provider(&chain, home.path(), "issuer", prov.clone(), |c| {
        c.canary = Some(canary.clone());
    });
    // Honest validators verify the partner's training job, so a model gets registered; the
    // issuer trains its partner's jobs honestly (only inference canaries are planted).
    let validators: Vec<Running> = honest
        .iter()
        .enumerate()
        .map(|(i, k)| run_validator(&chain, home.path(), &format!("v{i}"), k.clone(), |_| {}))
        .collect();
    let mut owner = Wallet::new(owner);
    chain.wait_for("the issuer's registration", || {
        node.get_opt(&format!("/providers/{}", addr(&prov)))
            .ok()
            .flatten()
    });
    let trained = submit_training(&chain, &mut owner);
    let model = chain.wait_for("the registered model", || {
        let page = node.get("/models").ok()?;
        page["models"]
            .as_array()?
            .iter()
            .find(|m| m["job"] == trained)?["id"]
            .as_u64()
    });
    // Now only the lazy validator is verifying: the honest ones stop and deregister, so every
    // check of the canary is drawn to it.
    drop(validators);
    for k in &honest {
        Wallet::new(k.clone())
            .send(&node, Msg::Poi(PoiMsg::DeregisterVerifier))
            .expect("an idle verifier deregisters");
    }
    let _lazy = run_validator(&chain, home.path(), "lazy", lazy.clone(), |c| {
        c.behaviour = ValidatorBehaviour::Lazy;
    });
    chain.wait_for("the lazy validator's registration", || {
        node.get_opt(&format!("/validators/{}", addr(&lazy)))
            .ok()
            .flatten()
    });
    let requests: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            json!({ "features": [0.1 * i as f32, 0.3, -0.2, 0.5] })
                .to_string()
                .into_bytes()
        })
        .collect();
    let msg = PoiMsg::SubmitInference {
        model: "mlp".into(),
        version: u32::try_from(model).expect("small id"),
        requests: requests.len() as u64,
        input_root: work::input_root(&requests).0,
        units: 1_000,
        max_price: 10,
    };
    let included = owner.send(&node, Msg::Poi(msg)).expect("submitted");
    let id: u64 = included.status["receipt"]["events"]
        .as_array()
        .and_then(|events| {
            let e = events.iter().find(|e| e["kind"] == "inference_submitted")?;
            e["attributes"].as_array()?.iter().find(|p| p[0] == "job")?[1]
                .as_str()?
                .parse()
                .ok()
        })
        .expect("the job id");
    let endpoint = chain.wait_for("the match", || {
        let job = node.get(&format!("/jobs/{id}")).ok()?;
        (job["provider"] == addr(&prov).to_string()).then_some(())?;
        node.get(&format!("/providers/{}", addr(&prov))).ok()?["endpoint"]
            .as_str()
            .map(str::to_owned)
    });
    let body = json!({ "requests": requests.iter().map(hex::encode).collect::<Vec<_>>() });
    node.post_url(&format!("{endpoint}/v1/jobs/{id}/requests"), &body)
        .expect("requests posted");
    let slash = chain.wait_for("the lazy validator's slash", || {
        let page = node.get("/slashes").ok()?;
        page["slashes"]
            .as_array()?
            .iter()
            .find(|s| s["job"] == id && s["reason"] == "lazy_validator")
            .cloned()
    });
    assert_eq!(slash["account"], addr(&lazy).to_string(), "{slash}");
    assert_eq!(slash["role"], "validator");
    let job = node.get(&format!("/jobs/{id}")).expect("job");
    assert_eq!(job["poi"]["canary_revealed"], true, "{}", job["poi"]);
    let v = node
        .get(&format!("/validators/{}", addr(&lazy)))
        .expect("verifier");
    assert_eq!(v["jailed"], true, "{v}");
}
