//! The devnet's clients: one submits real training jobs in rotation and reveals their eval
//! sets, then runs an inference batch on every model version the registry gains; the canary
//! client runs small inference jobs for its partner provider to plant errors in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use poi_agents::provider::work::input_root;
use poi_agents::{AgentError, NodeClient, Result, Wallet};
use poi_core::poi::PoiMsg;
use poi_core::poi::quality::{EvalReveal, eval_commitment};
use poi_core::token::Amount;
use poi_core::tx::Msg;
use poi_repops::backend::CpuBackend;
use poi_repops::exec::Exec;
use poi_repops::meter::compute_units;
use poi_repops::train::{JobSpec, Trainer};
use serde_json::{Value, json};

/// Which client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Training jobs, eval reveals, inference on new versions.
    Client,
    /// Small inference jobs, one at a time, every [`CANARY_EVERY`].
    Canary,
}

/// The training jobs the client cycles through: model, dataset, steps.
const ROTATION: [(&str, &str, u64); 3] = [
    ("mlp", "winequality", 300),
    ("mlp", "iris", 300),
    ("charlm", "liber-primus", 60),
];
/// Training jobs the client keeps in flight.
const TRAINING_IN_FLIGHT: usize = 2;
/// Requests in an inference batch.
const BATCH: usize = 8;
/// How often the canary client runs a canary.
const CANARY_EVERY: Duration = Duration::from_secs(5);
/// Pause between polls.
const POLL: Duration = Duration::from_millis(500);

/// A job this client submitted.
#[derive(Debug)]
struct Mine {
    /// Training: the eval set it committed to.
    reveal: Option<EvalReveal>,
    /// Inference: the requests, until posted to the provider.
    requests: Option<Vec<Vec<u8>>>,
}

/// Runs a client until `stop`.
pub(crate) fn run(mode: Mode, api: &str, key: SigningKey, stop: &AtomicBool) -> Result<()> {
    let node = NodeClient::new(api);
    let mut wallet = Wallet::new(key);
    let mut mine: BTreeMap<u64, Mine> = BTreeMap::new();
    let mut used_models = BTreeSet::new();
    let mut next = 0usize;
    let mut last_canary: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        if let Err(error) = tick(
            mode,
            &node,
            &mut wallet,
            &mut mine,
            &mut used_models,
            &mut next,
            &mut last_canary,
        ) {
            tracing::warn!(?mode, %error, "client tick");
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn tick(
    mode: Mode,
    node: &NodeClient,
    wallet: &mut Wallet,
    mine: &mut BTreeMap<u64, Mine>,
    used_models: &mut BTreeSet<u64>,
    next: &mut usize,
    last_canary: &mut Option<Instant>,
) -> Result<()> {
    let mut open_training = 0;
    let mut open_inference = 0;
    let ids: Vec<u64> = mine.keys().copied().collect();
    for id in ids {
        let job = node.get(&format!("/jobs/{id}"))?;
        let poi = &job["poi"];
        let done = matches!(poi["status"].as_str(), Some("verified" | "failed"))
            || matches!(
                job["status"].as_str(),
                Some("cancelled" | "expired" | "failed")
            );
        if done {
            mine.remove(&id);
            continue;
        }
        if poi["kind"] == "training" {
            open_training += 1;
        } else {
            open_inference += 1;
        }
        let entry = mine.get_mut(&id).expect("listed");
        if poi["quality"]["stage"].get("awaiting_reveal").is_some()
            && let Some(reveal) = entry.reveal.take()
        {
            wallet.send(node, Msg::Poi(PoiMsg::RevealEval { job: id, reveal }))?;
            tracing::info!(job = id, "revealed the eval set");
        }
        if let (Some(requests), Some(provider)) = (&entry.requests, job["provider"].as_str()) {
            let endpoint = node.get(&format!("/providers/{provider}"))?["endpoint"]
                .as_str()
                .map(str::to_owned);
            if let Some(endpoint) = endpoint {
                let body =
                    json!({ "requests": requests.iter().map(hex::encode).collect::<Vec<_>>() });
                node.post_url(&format!("{endpoint}/v1/jobs/{id}/requests"), &body)?;
                entry.requests = None;
                tracing::info!(job = id, %endpoint, "posted the requests");
            }
        }
    }
    match mode {
        Mode::Client => {
            if open_training < TRAINING_IN_FLIGHT {
                let (model, dataset, steps) = ROTATION[*next % ROTATION.len()];
                *next += 1;
                let (id, reveal) =
                    submit_training(node, wallet, model, dataset, steps, *next as u64)?;
                mine.insert(
                    id,
                    Mine {
                        reveal: Some(reveal),
                        requests: None,
                    },
                );
            }
            let models = node.get("/models")?;
            for m in models["models"].as_array().into_iter().flatten() {
                let Some(id) = m["id"].as_u64() else { continue };
                if !used_models.insert(id) || open_inference >= 2 {
                    continue;
                }
                let (job, requests) = submit_inference(node, wallet, m, BATCH)?;
                open_inference += 1;
                mine.insert(
                    job,
                    Mine {
                        reveal: None,
                        requests: Some(requests),
                    },
                );
            }
        }
        Mode::Canary => {
            let due = last_canary.is_none_or(|t| t.elapsed() >= CANARY_EVERY);
            if open_inference == 0 && due {
                let models = node.get("/models")?;
                if let Some(m) = models["models"].as_array().and_then(|a| a.last()) {
                    let (job, requests) = submit_inference(node, wallet, m, 4)?;
                    *last_canary = Some(Instant::now());
                    mine.insert(
                        job,
                        Mine {
                            reveal: None,
                            requests: Some(requests),
                        },
                    );
                }
            }
        }
    }
    Ok(())
}

fn amount(value: &Value) -> Option<Amount> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_u64().map(Amount::from))
}

/// Twice the current base price: room for it to rise while the job waits.
fn max_price(node: &NodeClient) -> Result<Amount> {
    let base = amount(&node.get("/market")?["base_price"]).unwrap_or(1_000);
    Ok(base.saturating_mul(2).max(2))
}

fn job_id(included: &poi_agents::client::Included, kind: &str) -> Result<u64> {
    included.status["receipt"]["events"]
        .as_array()
        .and_then(|events| {
            let e = events.iter().find(|e| e["kind"] == kind)?;
            e["attributes"].as_array()?.iter().find(|p| p[0] == "job")?[1]
                .as_str()?
                .parse()
                .ok()
        })
        .ok_or_else(|| AgentError::Job {
            job: 0,
            reason: format!("no {kind} event in the receipt"),
        })
}

fn submit_training(
    node: &NodeClient,
    wallet: &mut Wallet,
    model: &str,
    dataset: &str,
    steps: u64,
    seed: u64,
) -> Result<(u64, EvalReveal)> {
    let params = node.params()?;
    let mut spec = JobSpec::default_for(model, Some(dataset), steps, seed)?;
    spec.checkpoint_every = params.poi.segment_steps(steps).unwrap_or(1);
    let units = {
        let mut trainer = Trainer::new(&spec)?;
        let mut exec = Exec::new(&CpuBackend);
        trainer.train_step(&mut exec)?;
        compute_units(exec.meter().total().flops.saturating_mul(steps)).max(1)
    };
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| AgentError::Job {
        job: 0,
        reason: format!("no OS randomness for an eval salt: {e}"),
    })?;
    let reveal = EvalReveal {
        dataset: dataset.to_owned(),
        salt,
        select_permille: 500,
    };
    let msg = PoiMsg::SubmitTraining {
        model: model.to_owned(),
        datasets: vec![dataset.to_owned()],
        spec: spec.encode(),
        steps,
        eval_commitment: eval_commitment(dataset, &salt, 500),
        base_model: None,
        units,
        max_price: max_price(node)?,
    };
    let included = wallet.send(node, Msg::Poi(msg))?;
    let id = job_id(&included, "training_submitted")?;
    tracing::info!(
        job = id,
        model,
        dataset,
        steps,
        units,
        "submitted a training job"
    );
    Ok((id, reveal))
}

/// Requests fitting model version `m`: prompts for a char LM, feature rows for an MLP.
fn requests_for(m: &Value, count: usize) -> Vec<Vec<u8>> {
    let prompts = [
        "Non eram nescius",
        "Sed ut perspiciatis",
        "Quid est enim",
        "Voluptas",
    ];
    let features = match m["datasets"][0].as_str() {
        Some("iris") => 4,
        Some("winequality") => 11,
        _ => 8,
    };
    (0..count)
        .map(|i| {
            let request = if m["model"] == "charlm" {
                json!({ "prompt": prompts[i % prompts.len()], "tokens": 24 })
            } else {
                let row: Vec<f32> = (0..features)
                    .map(|f| ((i * 7 + f * 3) % 11) as f32 / 5.0 - 1.0)
                    .collect();
                json!({ "features": row })
            };
            request.to_string().into_bytes()
        })
        .collect()
}

fn submit_inference(
    node: &NodeClient,
    wallet: &mut Wallet,
    m: &Value,
    count: usize,
) -> Result<(u64, Vec<Vec<u8>>)> {
    let version = m["id"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| AgentError::Job {
            job: 0,
            reason: format!("a model without an id: {m}"),
        })?;
    let requests = requests_for(m, count);
    let msg = PoiMsg::SubmitInference {
        model: m["model"].as_str().unwrap_or("mlp").to_owned(),
        version,
        requests: requests.len() as u64,
        input_root: input_root(&requests).0,
        units: 100,
        max_price: max_price(node)?,
    };
    let included = wallet.send(node, Msg::Poi(msg))?;
    let id = job_id(&included, "inference_submitted")?;
    tracing::info!(
        job = id,
        version,
        requests = count,
        "submitted an inference job"
    );
    Ok((id, requests))
}
