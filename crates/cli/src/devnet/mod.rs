//! `poi devnet`'s main job: a whole network doing real AI work next to the node.
//!
//! Besides the single consensus validator, the devnet runs in-process agents
//! ([`poi_agents`]), each on its own thread with its own key and directory under
//! `HOME/agents/<name>/`:
//! - three honest providers, one `fake-segments=5000` cheater, and a canary issuer's provider
//!   (honest on other clients' jobs, planted errors on its partner client's inference jobs);
//! - three honest validators and one `lazy` validator;
//! - a client ([`client`]) that submits real training jobs on the shipped datasets (MLP on
//!   wine quality and iris, the char LM on *De finibus*), reveals their eval sets, and runs
//!   inference batches on every newly registered model version; the canary client runs small
//!   inference jobs that, matched to its partner, catch the lazy validator;
//! - a summary ([`summary`]) printed every 5 seconds.
//!
//! Everything stays queryable through the API (`/jobs?status=settled`, `/slashes`, `/models`).
//! The devnet's PoI parameters ([`poi_params`]) check more often than mainnet defaults would
//! (`check_bps` 1,000) so a cheater of a 300-step job is caught within a minute or two.

pub(crate) mod client;
pub(crate) mod summary;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use poi_agents::provider::canary::CanaryConfig;
use poi_agents::provider::{Provider, ProviderConfig};
use poi_agents::validator::{Validator, ValidatorConfig};
use poi_agents::{NodeClient, ProviderBehaviour, ValidatorBehaviour};
use poi_core::Address;
use poi_core::params::Params;
use poi_core::token::BASE_UNITS_PER_POI;
use poi_node::home::Home;

use crate::keystore::Keystore;

/// An agent of the devnet: its key name and role.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    /// A provider behaving so.
    Provider(ProviderBehaviour),
    /// The canary issuer's provider.
    CanaryProvider,
    /// A validator behaving so.
    Validator(ValidatorBehaviour),
    /// The job-submitting client.
    Client,
    /// The canary issuer's client.
    CanaryClient,
}

/// The devnet's agents, by key name.
pub(crate) const AGENTS: [(&str, Role); 11] = [
    ("prov-1", Role::Provider(ProviderBehaviour::Honest)),
    ("prov-2", Role::Provider(ProviderBehaviour::Honest)),
    ("prov-3", Role::Provider(ProviderBehaviour::Honest)),
    (
        "cheater",
        Role::Provider(ProviderBehaviour::FakeSegments { bps: 5_000 }),
    ),
    ("canary-prov", Role::CanaryProvider),
    ("val-1", Role::Validator(ValidatorBehaviour::Honest)),
    ("val-2", Role::Validator(ValidatorBehaviour::Honest)),
    ("val-3", Role::Validator(ValidatorBehaviour::Honest)),
    ("lazy", Role::Validator(ValidatorBehaviour::Lazy)),
    ("client", Role::Client),
    ("canary-client", Role::CanaryClient),
];

/// Canary secrets the issuer may use.
const CANARY_SECRETS: u32 = 64;

/// The canary issuer's secrets, derived from the node's seed (so they survive a restart and
/// nobody without the home knows them).
pub(crate) fn canary_secrets(node_seed: &[u8; 32]) -> Vec<[u8; 32]> {
    (0..CANARY_SECRETS)
        .map(|i| {
            let mut h = blake3::Hasher::new();
            h.update(b"poi/devnet/canary/v1");
            h.update(node_seed);
            h.update(&i.to_le_bytes());
            *h.finalize().as_bytes()
        })
        .collect()
}

/// The devnet's PoI parameters on top of `params` (already scaled to the block interval):
/// frequent checks, short windows, and the canary issuer's root.
pub(crate) fn poi_params(params: &mut Params, canary: Option<(&CanaryConfig, Address)>) {
    let poi = &mut params.poi;
    poi.check_bps = 1_000;
    poi.infer_check_bps = 1_000;
    poi.beacon_delay_views = 3;
    poi.check_blocks = 240;
    poi.reveal_blocks = 40;
    poi.claim_blocks = 80;
    poi.move_blocks = 80;
    if let Some((config, provider)) = canary {
        poi.canary_root = Some(config.root(&provider));
        poi.canary_leaves = config.secrets.len() as u64;
    }
    // One active job per provider, so the market spreads work over all of them (the
    // cheater included) instead of filling the cheapest.
    params.market.provider_jobs_max = 1;
    // Training a char LM on a loaded 2-core machine takes tens of seconds: leave room.
    params.market.commit_grace_blocks = params.market.commit_grace_blocks.max(480);
    params.market.start_blocks = params.market.start_blocks.max(120);
}

/// The running agents; dropping it stops them.
pub(crate) struct Agents {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn unlock(keystore: &Keystore, name: &str) -> anyhow::Result<SigningKey> {
    keystore
        .unlock(name, None)
        .with_context(|| format!("devnet key {name}"))
}

/// Starts every agent against the node at `api` once it answers; returns at once.
pub(crate) fn start(home: &Home, keystore: &Keystore, api: String) -> anyhow::Result<Agents> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut keys = Vec::new();
    for (name, role) in AGENTS {
        keys.push((name, role, unlock(keystore, name)?));
    }
    let canary_client =
        Address::from_public_key(&unlock(keystore, "canary-client")?.verifying_key());
    let secrets = canary_secrets(&home.node_seed()?);
    let root = home.root().to_path_buf();
    let mut threads = Vec::new();
    for (name, role, key) in keys {
        let (api, stop, root) = (api.clone(), Arc::clone(&stop), root.clone());
        let secrets = secrets.clone();
        let spawn = std::thread::Builder::new().name(format!("agent-{name}"));
        let handle = spawn.spawn(move || {
            if !wait_for_node(&api, &stop) {
                return;
            }
            let result = match role {
                Role::Provider(behaviour) => {
                    run_provider(name, &root, &api, key, behaviour, None, &stop)
                }
                Role::CanaryProvider => {
                    let canary = CanaryConfig {
                        client: canary_client,
                        secrets,
                    };
                    run_provider(
                        name,
                        &root,
                        &api,
                        key,
                        ProviderBehaviour::Honest,
                        Some(canary),
                        &stop,
                    )
                }
                Role::Validator(behaviour) => {
                    let mut config = ValidatorConfig::new(name, root.clone(), &api);
                    config.behaviour = behaviour;
                    Validator::new(config, key).and_then(|mut v| v.run(&stop))
                }
                Role::Client => client::run(client::Mode::Client, &api, key, &stop),
                Role::CanaryClient => client::run(client::Mode::Canary, &api, key, &stop),
            };
            if let Err(error) = result {
                tracing::error!(agent = name, %error, "agent stopped");
            }
        })?;
        threads.push(handle);
    }
    let (api2, stop2) = (api.clone(), Arc::clone(&stop));
    threads.push(
        std::thread::Builder::new()
            .name("devnet-summary".into())
            .spawn(move || {
                if wait_for_node(&api2, &stop2) {
                    summary::run(&api2, &stop2);
                }
            })?,
    );
    Ok(Agents { stop, threads })
}

#[allow(clippy::too_many_arguments)]
fn run_provider(
    name: &str,
    root: &std::path::Path,
    api: &str,
    key: SigningKey,
    behaviour: ProviderBehaviour,
    canary: Option<CanaryConfig>,
    stop: &AtomicBool,
) -> poi_agents::Result<()> {
    let listen = "127.0.0.1:0".parse().expect("a loopback address");
    let mut config = ProviderConfig::new(name, root.to_path_buf(), api, listen);
    config.behaviour = behaviour;
    config.capacity_units_per_block = 2_000;
    config.collateral = 2_000 * BASE_UNITS_PER_POI;
    // Asks order who gets work first: the canary issuer (so its partner's jobs usually land
    // with it), then the cheater (cheaters undercut), then the honest providers.
    config.ask_price = if canary.is_some() {
        1
    } else if behaviour != ProviderBehaviour::Honest {
        2
    } else {
        3
    };
    config.canary = canary;
    Provider::start(config, key)?.run(stop)
}

/// Waits until the node's API answers (or the devnet stops).
fn wait_for_node(api: &str, stop: &AtomicBool) -> bool {
    let node = NodeClient::new(api);
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if node.get("/health").is_ok() {
            return true;
        }
        if started.elapsed() > Duration::from_secs(120) {
            tracing::error!("the node never answered; the devnet agents are not running");
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
