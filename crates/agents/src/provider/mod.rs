//! The provider agent: registers with the market, heartbeats, starts the jobs matched to it,
//! computes them ([`work`]), commits through PoI, and serves them ([`server`]).
//!
//! One [`Provider::tick`] is one poll of the chain: a heartbeat when half the timeout has
//! passed since the last one, then every active job of the provider in id order: `matched`
//! is started (`StartJob`, after checking a training spec), `running` is computed (unless
//! its record is on disk already: a restarted provider resumes there) and committed, and a
//! `committed` training job whose claim window is open gets its eval score claimed. Work is
//! done inside the tick, so a tick may take as long as a job trains.

pub mod canary;
pub mod server;
pub mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use poi_core::market::MarketMsg;
use poi_core::poi::PoiMsg;
use poi_core::staking::StakingMsg;
use poi_core::token::Amount;
use poi_core::tx::Msg;

use crate::behaviour::ProviderBehaviour;
use crate::chain::{self, JobView, PoiJobView};
use crate::client::{NodeClient, Wallet, u64_field};
use crate::store::{AgentDir, JobRecord};
use crate::{AgentError, Result, eval, infer, spec};
use poi_repops::commit::read_checkpoint;
use poi_repops::train::checkpoint_path;

/// How a provider runs.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The agent's name: its directory is `home/agents/<name>`.
    pub name: String,
    /// The home directory.
    pub home: PathBuf,
    /// The node's API (`http://127.0.0.1:PORT`).
    pub node: String,
    /// Where the server listens; its URL is the registered endpoint.
    pub listen: SocketAddr,
    /// How it behaves.
    pub behaviour: ProviderBehaviour,
    /// Training threads.
    pub threads: usize,
    /// Stake bonded before registering, if not bonded already.
    pub bond: Amount,
    /// Collateral locked at registration.
    pub collateral: Amount,
    /// Registered capacity, units per block.
    pub capacity_units_per_block: u64,
    /// Ask price per unit.
    pub ask_price: Amount,
    /// Pause between ticks.
    pub poll: Duration,
    /// Canary issuing, if this provider is half of an issuer pair ([`canary`]).
    pub canary: Option<canary::CanaryConfig>,
}

impl ProviderConfig {
    /// Defaults for a provider named `name` serving on `listen`: honest, one thread, 10,000
    /// POI bonded and 1,000 POI of it locked as collateral, capacity 1,000 units per block,
    /// ask 1 base unit, 200 ms polls.
    pub fn new(name: &str, home: PathBuf, node: &str, listen: SocketAddr) -> Self {
        Self {
            name: name.to_owned(),
            home,
            node: node.to_owned(),
            listen,
            behaviour: ProviderBehaviour::Honest,
            threads: 1,
            bond: 10_000_000_000_000,
            collateral: 1_000_000_000_000,
            capacity_units_per_block: 1_000,
            ask_price: 1,
            poll: Duration::from_millis(200),
            canary: None,
        }
    }
}

/// A provider agent.
#[derive(Debug)]
pub struct Provider {
    config: ProviderConfig,
    node: NodeClient,
    wallet: Wallet,
    dir: AgentDir,
    endpoint: String,
    server: Option<server::ServerHandle>,
}

impl Provider {
    /// A provider signing with `key`; starts its HTTP server (binding `config.listen`).
    pub fn start(config: ProviderConfig, key: SigningKey) -> Result<Self> {
        let dir = AgentDir::new(&config.home, &config.name);
        std::fs::create_dir_all(dir.root()).map_err(AgentError::io(dir.root()))?;
        let server = server::start(config.listen, dir.clone(), config.behaviour)?;
        let endpoint = format!("http://{}", server.addr());
        Ok(Self {
            node: NodeClient::new(&config.node),
            wallet: Wallet::new(key),
            dir,
            endpoint,
            server: Some(server),
            config,
        })
    }

    /// The endpoint it serves and registers (`http://host:port`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Its account.
    pub fn address(&self) -> poi_core::Address {
        self.wallet.address()
    }

    /// Its directory.
    pub fn dir(&self) -> &AgentDir {
        &self.dir
    }

    /// Bonds and registers with the market unless registered; updates the endpoint if it
    /// changed.
    pub fn ensure_registered(&mut self) -> Result<()> {
        let me = self.wallet.address();
        if let Some(p) = self.node.get_opt(&format!("/providers/{me}"))? {
            if p["endpoint"].as_str() != Some(self.endpoint.as_str()) {
                let msg = MarketMsg::Update {
                    ask_price: None,
                    endpoint: Some(self.endpoint.clone()),
                    capacity_units_per_block: None,
                };
                self.wallet.send(&self.node, Msg::Market(msg))?;
            }
            return Ok(());
        }
        let stake = self.node.get(&format!("/stake/{me}"))?;
        let free: Amount = stake["free"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if free < self.config.collateral {
            let amount = self.config.bond.max(self.config.collateral - free);
            self.wallet
                .send(&self.node, Msg::Staking(StakingMsg::Bond { amount }))?;
        }
        let msg = MarketMsg::Register {
            hardware: format!("poi-agents cpu x{}", self.config.threads),
            capacity_units_per_block: self.config.capacity_units_per_block,
            class: 0,
            ask_price: self.config.ask_price,
            endpoint: self.endpoint.clone(),
            collateral: self.config.collateral,
        };
        self.wallet.send(&self.node, Msg::Market(msg))?;
        tracing::info!(provider = %me, endpoint = %self.endpoint, "registered");
        Ok(())
    }

    /// One poll: heartbeat if due, then every active job.
    pub fn tick(&mut self) -> Result<()> {
        let me = self.wallet.address();
        let record = self.node.get(&format!("/providers/{me}"))?;
        let height = self.node.height()?;
        let last = u64_field(&record, "last_heartbeat", "/providers")?;
        let timeout = self.node.params()?.market.heartbeat_timeout_blocks;
        if height >= last + timeout / 2 || record["online"] == false {
            self.wallet
                .send(&self.node, Msg::Market(MarketMsg::Heartbeat))?;
        }
        let jobs: Vec<u64> = record["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|j| j.as_u64())
            .collect();
        // Each job is read once. Committed jobs go first (claims and canary reveals are due
        // within blocks), then the rest, which may train for a while.
        let mut fetched: Vec<(u64, Result<chain::JobView>)> = jobs
            .into_iter()
            .map(|id| (id, chain::job(&self.node, id)))
            .collect();
        fetched.sort_by_key(|(_, job)| !job.as_ref().is_ok_and(|j| j.status == "committed"));
        for (id, job) in fetched {
            if let Err(error) = job.and_then(|job| self.work_on(job)) {
                tracing::warn!(job = id, %error, "job not advanced");
            }
        }
        Ok(())
    }

    fn work_on(&mut self, job: chain::JobView) -> Result<()> {
        let id = job.id;
        let Some(poi) = &job.poi else {
            return Ok(()); // a bare market job: nothing PoI can do with it
        };
        match job.status.as_str() {
            "matched" => {
                if poi.is_training() {
                    spec::job_spec(poi)?;
                }
                self.wallet
                    .send(&self.node, Msg::Market(MarketMsg::StartJob { id }))?;
                tracing::info!(job = id, kind = %poi.kind, "started");
                Ok(())
            }
            "running" if poi.status == "submitted" => self.compute_and_commit(&job, poi),
            "committed" if poi.quality.as_ref().is_some_and(|q| q.awaiting_claim()) => {
                self.claim_score(poi)
            }
            "committed" if self.is_canary(&job) => self.maybe_reveal_canary(id),
            _ => Ok(()),
        }
    }

    /// Whether `job` is one this provider plants errors in: an inference job of its canary
    /// partner. (Training jobs of the partner are done honestly: a planted model would reach
    /// the registry.)
    fn is_canary(&self, job: &JobView) -> bool {
        job.spec["kind"] == "inference"
            && self
                .config
                .canary
                .as_ref()
                .is_some_and(|c| c.client == job.owner)
    }

    /// Reveals canary `id` as soon as it is drawn: verdicts given before are judged at once
    /// and later ones as they arrive, and an accusation must not reach its referees' verdict
    /// first (the planted errors would be upheld against this provider).
    fn maybe_reveal_canary(&mut self, id: u64) -> Result<()> {
        let Some(config) = self.config.canary.clone() else {
            return Ok(());
        };
        let view = self.node.get(&format!("/jobs/{id}"))?;
        let poi = &view["poi"];
        if poi["canary_revealed"] == true || poi["randomness"].is_null() {
            return Ok(());
        }
        let Some(index) = canary::CanaryLog::read(&self.dir)?.jobs.get(&id).copied() else {
            return Ok(()); // sealed at random: out of secrets when it committed
        };
        let me = self.wallet.address();
        let msg = PoiMsg::RevealCanary {
            job: id,
            secret: config.secrets[index as usize],
            leaf_index: index,
            proof: config.proof(&me, index)?,
        };
        self.wallet.send(&self.node, Msg::Poi(msg))?;
        tracing::info!(job = id, leaf = index, "revealed canary");
        Ok(())
    }

    fn compute_and_commit(&mut self, job: &JobView, poi: &PoiJobView) -> Result<()> {
        let id = job.id;
        let record = match self.dir.record(id)? {
            Some(record) => record,
            None => {
                let Some(record) = self.compute(job, poi)? else {
                    return Ok(()); // waiting for the owner's requests
                };
                self.dir.write_record(&record)?;
                record
            }
        };
        let mut sealed = [0u8; 32];
        getrandom::fill(&mut sealed).map_err(|e| AgentError::Job {
            job: id,
            reason: format!("no OS randomness for sealed: {e}"),
        })?;
        if let (true, Some(config)) = (self.is_canary(job), &self.config.canary)
            && let Some(index) = canary::CanaryLog::index_for(&self.dir, id, config.secrets.len())?
        {
            sealed = canary::seal(id, &config.secrets[index as usize]);
            tracing::info!(job = id, leaf = index, "sealed a canary");
        }
        let msg = match &record {
            JobRecord::Training {
                digests,
                root,
                params_digest,
                opt_digest,
                ..
            } => {
                if digests.len() as u64 != poi.steps + 1 {
                    return Err(AgentError::Job {
                        job: id,
                        reason: format!(
                            "{} holds {} digests, not the job's {} + 1: a record of another chain?",
                            self.dir.job_dir(id).display(),
                            digests.len(),
                            poi.steps
                        ),
                    });
                }
                let proof = poi_repops::commit::merkle_proof(digests, poi.steps)?;
                let final_digest = digests[digests.len() - 1];
                PoiMsg::CommitTraining {
                    job: id,
                    root: root.0,
                    final_digest: final_digest.0,
                    params_digest: params_digest.0,
                    opt_digest: opt_digest.0,
                    final_proof: proof.siblings.iter().map(|d| d.0).collect(),
                    sealed,
                }
            }
            JobRecord::Inference { root, .. } => PoiMsg::CommitInference {
                job: id,
                output_root: root.0,
                sealed,
            },
        };
        let included = self.wallet.send(&self.node, Msg::Poi(msg))?;
        tracing::info!(job = id, height = included.height, "committed");
        Ok(())
    }

    /// Claims the eval score of its committed model ([`crate::eval`]).
    fn claim_score(&mut self, poi: &PoiJobView) -> Result<()> {
        let id = poi.id;
        let spec = spec::job_spec(poi)?;
        let out = self.dir.train_dir(id);
        let ckpt = read_checkpoint(&checkpoint_path(&out, poi.steps), None)?;
        let (measured, base) = eval::scores(&spec, &ckpt, self.config.threads)?;
        let score = match self.config.behaviour {
            ProviderBehaviour::ForgeScore => measured / 2,
            _ => measured,
        };
        let msg = PoiMsg::ClaimScore { job: id, score };
        self.wallet.send(&self.node, Msg::Poi(msg))?;
        tracing::info!(job = id, score, base, "claimed score");
        Ok(())
    }

    /// Computes job `job`; `None` while an inference job's requests have not arrived.
    fn compute(&self, job: &JobView, poi: &PoiJobView) -> Result<Option<JobRecord>> {
        let id = job.id;
        // A canary gets planted errors: a wrong output for every request.
        let behaviour = if self.is_canary(job) {
            ProviderBehaviour::WrongInference
        } else {
            self.config.behaviour
        };
        if poi.is_training() {
            let spec = spec::job_spec(poi)?;
            tracing::info!(job = id, steps = spec.steps, %behaviour, "training");
            let out = self.dir.train_dir(id);
            return work::train(id, &spec, &out, behaviour, self.config.threads).map(Some);
        }
        let Some(body) = self.dir.requests(id)? else {
            return Ok(None);
        };
        let requests = body
            .requests
            .iter()
            .map(hex::decode)
            .collect::<std::result::Result<Vec<Vec<u8>>, _>>()
            .map_err(|e| AgentError::Job {
                job: id,
                reason: format!("stored request is not hex: {e}"),
            })?;
        if requests.len() as u64 != poi.steps || work::input_root(&requests).0 != poi.spec_hash.0 {
            tracing::warn!(job = id, "the posted requests do not match the input root");
            return Ok(None);
        }
        let version = job.inference_version().ok_or_else(|| AgentError::Job {
            job: id,
            reason: "no model version".into(),
        })?;
        let mut model = infer::fetch_model(&self.node, &self.dir.models_dir(), version)?;
        tracing::info!(
            job = id,
            requests = requests.len(),
            model = version,
            "inferring"
        );
        Ok(Some(work::infer(id, &mut model, &requests, behaviour)))
    }

    /// Registers, then ticks every `poll` until `stop` is set; a failed tick is logged and
    /// retried.
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
                tracing::warn!(%error, "provider tick failed");
            }
            std::thread::sleep(self.config.poll);
        }
        drop(self.server.take());
        Ok(())
    }
}
