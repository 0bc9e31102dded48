//! The validator agent: bonds and registers as a verifier, takes the checks assigned to it,
//! re-executes each subject and attests the verdict.
//!
//! One [`Validator::tick`] reads `GET /validators/{me}/checks` and answers every open check
//! in order. A training segment is checked by [`crate::segment::check_segment`]; an inference
//! request by re-running it on the committed model (fetched once, checked against the
//! training job's commitment, cached); an eval check by measuring the committed final
//! checkpoint and the job's initial state ([`crate::eval`]). A provider that does not serve something verifiable
//! is retried on later ticks until the grace point, halfway between the check's assignment
//! and its deadline; then the verdict is `unavailable`. Spot and referee checks are treated
//! alike: both re-check the same subject.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use poi_core::poi::PoiMsg;
use poi_core::poi::checks::Verdict;
use poi_core::staking::StakingMsg;
use poi_core::token::Amount;
use poi_core::tx::Msg;
use poi_repops::commit::Digest;

use crate::behaviour::ValidatorBehaviour;
use crate::chain::{self, CheckView, CommitmentView, JobView, PoiJobView, SubjectView};
use crate::client::{NodeClient, Wallet};
use crate::infer::{self, LoadedModel};
use crate::segment::{self, SegmentOutcome, SegmentRef};
use crate::store::AgentDir;
use crate::wire::{OutputAnswer, output_digest, request_digest};
use crate::{AgentError, Result, eval, spec};

/// How a validator runs.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The agent's name: its directory is `home/agents/<name>`.
    pub name: String,
    /// The home directory.
    pub home: PathBuf,
    /// The node's API.
    pub node: String,
    /// How it behaves.
    pub behaviour: ValidatorBehaviour,
    /// Re-execution threads.
    pub threads: usize,
    /// The verifier bond (bonded first if the free stake does not cover it); `None` takes
    /// the chain's `poi.verifier_bond_min`.
    pub bond: Option<Amount>,
    /// Pause between ticks.
    pub poll: Duration,
}

impl ValidatorConfig {
    /// Defaults: honest, one thread, the minimum bond, 200 ms polls.
    pub fn new(name: &str, home: PathBuf, node: &str) -> Self {
        Self {
            name: name.to_owned(),
            home,
            node: node.to_owned(),
            behaviour: ValidatorBehaviour::Honest,
            threads: 1,
            bond: None,
            poll: Duration::from_millis(200),
        }
    }
}

/// A validator agent.
#[derive(Debug)]
pub struct Validator {
    config: ValidatorConfig,
    node: NodeClient,
    wallet: Wallet,
    dir: AgentDir,
    models: BTreeMap<u64, LoadedModel>,
    done: BTreeSet<(u64, u32, u32)>,
    attested: Vec<(u64, u32, Verdict)>,
}

impl Validator {
    /// A validator signing with `key`.
    pub fn new(config: ValidatorConfig, key: SigningKey) -> Result<Self> {
        let dir = AgentDir::new(&config.home, &config.name);
        std::fs::create_dir_all(dir.root()).map_err(AgentError::io(dir.root()))?;
        Ok(Self {
            node: NodeClient::new(&config.node),
            wallet: Wallet::new(key),
            dir,
            models: BTreeMap::new(),
            done: BTreeSet::new(),
            attested: Vec::new(),
            config,
        })
    }

    /// Its account.
    pub fn address(&self) -> poi_core::Address {
        self.wallet.address()
    }

    /// Every verdict it attested so far: (job, check, verdict).
    pub fn attested(&self) -> &[(u64, u32, Verdict)] {
        &self.attested
    }

    /// Bonds and registers as a verifier unless registered.
    pub fn ensure_registered(&mut self) -> Result<()> {
        let me = self.wallet.address();
        if self.node.get_opt(&format!("/validators/{me}"))?.is_some() {
            return Ok(());
        }
        let bond = match self.config.bond {
            Some(b) => b,
            None => self.node.params()?.poi.verifier_bond_min,
        };
        let stake = self.node.get(&format!("/stake/{me}"))?;
        let free: Amount = stake["free"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if free < bond {
            let amount = bond - free;
            self.wallet
                .send(&self.node, Msg::Staking(StakingMsg::Bond { amount }))?;
        }
        self.wallet
            .send(&self.node, Msg::Poi(PoiMsg::RegisterVerifier { bond }))?;
        tracing::info!(validator = %me, bond, "registered verifier");
        Ok(())
    }

    /// One poll: answers every open check assigned to it.
    pub fn tick(&mut self) -> Result<()> {
        let me = self.wallet.address();
        let checks = chain::assigned_checks(&self.node, &me)?;
        let height = self.node.height()?;
        let window = self.node.params()?.poi.check_blocks;
        for check in checks {
            let key = (check.job, check.index, check.attempts);
            if self.done.contains(&key) {
                continue;
            }
            let grace = check.deadline.saturating_sub(window / 2);
            match self.answer(&check, height >= grace) {
                Ok(Some(verdict)) => {
                    if self.attest(&check, verdict) {
                        self.done.insert(key);
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(job = check.job, check = check.index, %error, "check not answered");
                }
            }
        }
        Ok(())
    }

    /// Sends the attestation; `false` if it should be retried (the node was unreachable or
    /// the transaction not included in time). A refusal by the chain is final.
    fn attest(&mut self, check: &CheckView, verdict: Verdict) -> bool {
        let (job, index) = (check.job, check.index);
        let msg = PoiMsg::Attest {
            job,
            check: index,
            verdict: verdict.clone(),
        };
        match self.wallet.send(&self.node, Msg::Poi(msg)) {
            Ok(included) => {
                let height = included.height;
                tracing::info!(
                    job,
                    check = index,
                    verdict = verdict.as_str(),
                    height,
                    "attested"
                );
                self.attested.push((job, index, verdict));
                true
            }
            Err(error @ (AgentError::Unreachable { .. } | AgentError::TxTimeout { .. })) => {
                tracing::warn!(job, check = index, %error, "attestation not sent; retrying");
                false
            }
            Err(error) => {
                tracing::warn!(job, check = index, %error, "attestation refused");
                true
            }
        }
    }

    /// The verdict on `check`, or `None` to retry later (the provider is unavailable and
    /// the grace point is not reached).
    fn answer(&mut self, check: &CheckView, past_grace: bool) -> Result<Option<Verdict>> {
        let job = chain::job(&self.node, check.job)?;
        let poi = job.poi.clone().ok_or_else(|| AgentError::Job {
            job: check.job,
            reason: "not a PoI job".into(),
        })?;
        let commitment = poi.commitment.clone().ok_or_else(|| AgentError::Job {
            job: check.job,
            reason: "checked but not committed".into(),
        })?;
        let provider = job.provider.ok_or_else(|| AgentError::Job {
            job: check.job,
            reason: "no provider".into(),
        })?;
        let endpoint = chain::provider_endpoint(&self.node, &provider)?;
        let outcome = match (self.config.behaviour, check.subject) {
            (behaviour, SubjectView::Eval) => {
                return self.check_eval(&poi, &endpoint, &commitment, behaviour, past_grace);
            }
            (ValidatorBehaviour::Contrarian, subject) => {
                let step = match subject {
                    SubjectView::Segment(j) => poi.segment_range(j).0 + 1,
                    SubjectView::Request(i) => i,
                    SubjectView::Eval => 0,
                };
                return Ok(Some(Verdict::Mismatch {
                    step,
                    computed: [0; 32],
                }));
            }
            (behaviour, SubjectView::Segment(j)) => {
                let (start, end) = poi.segment_range(j);
                let seg = SegmentRef {
                    endpoint: &endpoint,
                    job: poi.id,
                    start,
                    end,
                    steps: poi.steps,
                    root: commitment.root.digest(),
                };
                if behaviour == ValidatorBehaviour::Lazy {
                    return Ok(Some(lazy_match(&self.node, &seg)));
                }
                let spec = spec::job_spec(&poi)?;
                segment::check_segment(&self.node, &spec, &seg, self.config.threads)?
            }
            (behaviour, SubjectView::Request(i)) => self.check_request(
                &job,
                &poi,
                &endpoint,
                i,
                commitment.root.digest(),
                behaviour,
            )?,
        };
        Ok(match outcome {
            SegmentOutcome::Match(result) => Some(Verdict::Match { result: result.0 }),
            SegmentOutcome::Mismatch { step, computed } => Some(Verdict::Mismatch {
                step,
                computed: computed.0,
            }),
            SegmentOutcome::Unavailable(why) if past_grace => {
                tracing::warn!(job = check.job, check = check.index, %why, "provider unavailable");
                Some(Verdict::Unavailable)
            }
            SegmentOutcome::Unavailable(why) => {
                tracing::debug!(job = check.job, %why, "provider not serving yet; retrying");
                None
            }
        })
    }

    /// An eval check: the scores of the committed model and its base (a lazy validator
    /// copies the claim, a contrarian one contradicts it).
    fn check_eval(
        &self,
        poi: &PoiJobView,
        endpoint: &str,
        commitment: &CommitmentView,
        behaviour: ValidatorBehaviour,
        past_grace: bool,
    ) -> Result<Option<Verdict>> {
        let claim = poi.quality.as_ref().and_then(|q| q.claim);
        match behaviour {
            ValidatorBehaviour::Lazy => {
                return Ok(Some(Verdict::Scores {
                    score: claim.unwrap_or(0),
                    base_score: 0,
                }));
            }
            ValidatorBehaviour::Contrarian => {
                return Ok(Some(Verdict::Scores {
                    score: claim.map_or(1, |c| c.wrapping_add(1)),
                    base_score: 0,
                }));
            }
            ValidatorBehaviour::Honest => {}
        }
        let spec = spec::job_spec(poi)?;
        let final_digest = commitment.final_digest.digest();
        match segment::fetch_checkpoint(&self.node, endpoint, poi.id, poi.steps, &final_digest) {
            Ok(ckpt) => {
                let (score, base_score) = eval::scores(&spec, &ckpt, self.config.threads)?;
                Ok(Some(Verdict::Scores { score, base_score }))
            }
            Err(why) if past_grace => {
                tracing::warn!(job = poi.id, %why, "final checkpoint unavailable");
                Ok(Some(Verdict::Unavailable))
            }
            Err(_) => Ok(None),
        }
    }

    fn check_request(
        &mut self,
        job: &JobView,
        poi: &PoiJobView,
        endpoint: &str,
        index: u64,
        root: Digest,
        behaviour: ValidatorBehaviour,
    ) -> Result<SegmentOutcome> {
        let url = format!("{endpoint}/v1/jobs/{}/outputs/{index}", poi.id);
        let served = match fetch_output(&self.node, &url, index, poi, &root) {
            Ok(served) => served,
            Err(why) => return Ok(SegmentOutcome::Unavailable(why)),
        };
        if behaviour == ValidatorBehaviour::Lazy {
            return Ok(SegmentOutcome::Match(served.digest));
        }
        let version = job.inference_version().ok_or_else(|| AgentError::Job {
            job: poi.id,
            reason: "no model version".into(),
        })?;
        if !self.models.contains_key(&version) {
            let model = infer::fetch_model(&self.node, &self.dir.models_dir(), version)?;
            self.models.insert(version, model);
        }
        let model = self.models.get_mut(&version).expect("inserted above");
        let request = hex::decode(&served.request).map_err(|e| AgentError::Job {
            job: poi.id,
            reason: format!("request not hex: {e}"),
        })?;
        let served_output = hex::decode(&served.output).map_err(|e| AgentError::Job {
            job: poi.id,
            reason: format!("output not hex: {e}"),
        })?;
        let params = model.params_digest();
        if output_digest(&params, &request, &served_output) != served.digest {
            let why = format!("output {index} does not match its committed leaf");
            return Ok(SegmentOutcome::Unavailable(why));
        }
        let output = model.run(&request);
        let computed = output_digest(&params, &request, &output);
        Ok(if computed == served.digest {
            SegmentOutcome::Match(computed)
        } else {
            SegmentOutcome::Mismatch {
                step: index,
                computed,
            }
        })
    }

    /// Registers, then ticks every `poll` until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            match self.ensure_registered() {
                Ok(()) => break,
                Err(error) => tracing::warn!(%error, "registration failed; retrying"),
            }
            std::thread::sleep(self.config.poll);
        }
        while !stop.load(Ordering::Relaxed) {
            if let Err(error) = self.tick() {
                tracing::warn!(%error, "validator tick failed");
            }
            std::thread::sleep(self.config.poll);
        }
        Ok(())
    }
}

/// A lazy validator's `match`: the provider's served digest at the segment's end, unchecked
/// (zero if nothing was served).
fn lazy_match(http: &NodeClient, seg: &SegmentRef<'_>) -> Verdict {
    let url = format!(
        "{}/v1/jobs/{}/digests?from={}&to={}",
        seg.endpoint, seg.job, seg.end, seg.end
    );
    let result = http
        .get_url(&url)
        .ok()
        .and_then(|v| serde_json::from_value::<crate::wire::DigestsAnswer>(v).ok())
        .and_then(|a| a.leaves.first().map(|l| l.digest.0))
        .unwrap_or([0; 32]);
    Verdict::Match { result }
}

/// Fetches request `index`'s served output and checks both proofs: the request under the
/// job's input root, the output leaf (recomputed from the served bytes) under `root`.
fn fetch_output(
    http: &NodeClient,
    url: &str,
    index: u64,
    poi: &PoiJobView,
    root: &Digest,
) -> std::result::Result<OutputAnswer, String> {
    let value = http.get_url(url).map_err(|e| e.to_string())?;
    let served: OutputAnswer = serde_json::from_value(value).map_err(|e| format!("{url}: {e}"))?;
    let request = hex::decode(&served.request).map_err(|e| format!("request: {e}"))?;
    let (rp, op) = (&served.request_proof, &served.proof);
    if served.index != index || rp.index != index || op.index != index {
        return Err(format!("{url}: proofs of another request"));
    }
    rp.verify(&request_digest(&request), &poi.spec_hash.digest())
        .map_err(|e| format!("request {index} is not the owner's: {e}"))?;
    op.verify(&served.digest, root)
        .map_err(|e| format!("output {index} is not the committed one: {e}"))?;
    Ok(served)
}
