//! `poi provider ...`, `poi job ...`, `poi market ...`: the compute market from the command line.
//!
//! Sizes are compute units ([`FLOPS_PER_COMPUTE_UNIT`] metered FLOPs of crates/repops): a
//! provider's capacity comes from running a reference job here, a training job's size from
//! metering one of its steps, so both sides count the same work the validators will re-run.

use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use poi_core::Address;
use poi_core::market::{self, MarketMsg};
use poi_core::params::Params;
use poi_core::token::{Amount, format_poi, parse_amount};
use poi_core::tx::Msg;
use poi_repops::backend::CpuBackend;
use poi_repops::exec::Exec;
use poi_repops::meter::{FLOPS_PER_COMPUTE_UNIT, compute_units};
use poi_repops::train::{self, JobSpec, Trainer};
use serde_json::{Value, json};

use crate::cli::{
    Global, InferenceJobArgs, JobCmd, MarketCmd, ProviderCmd, RegisterArgs, SubmitCmd,
    TrainingJobArgs,
};
use crate::client::Api;
use crate::{cmd_keys, cmd_tx, output};

/// Wall time the capacity benchmark trains for.
const BENCHMARK_SECONDS: f64 = 1.0;

pub(crate) fn run_provider(global: &Global, cmd: ProviderCmd) -> anyhow::Result<()> {
    match cmd {
        ProviderCmd::Register(args) => register(global, args),
        ProviderCmd::Run(args) => crate::cmd_agents::run_provider(global, args),
        ProviderCmd::Benchmark { block_ms } => {
            let bench = benchmark(block_ms)?;
            if global.json {
                output::json(&bench);
            } else {
                println!(
                    "{} compute units per {block_ms} ms block ({} metered FLOPs/s on {})",
                    bench["units_per_block"],
                    bench["flops_per_second"],
                    text(&bench["hardware"])
                );
            }
            Ok(())
        }
        ProviderCmd::Heartbeat { tx } => {
            let msg = Msg::Market(MarketMsg::Heartbeat);
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let provider = provider_of(global, &done.signer)?;
                report(global, &done, "heartbeat", || print_provider(&provider));
            }
            Ok(())
        }
        ProviderCmd::Status { address } => {
            let address = cmd_keys::resolve_address(global, &address)?;
            let provider = provider_of(global, &address)?;
            if global.json {
                output::json(&provider);
            } else {
                print_provider(&provider);
            }
            Ok(())
        }
        ProviderCmd::Deregister { tx } => {
            let msg = Msg::Market(MarketMsg::Deregister);
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                report(global, &done, "deregistered; collateral unlocked", || {});
            }
            Ok(())
        }
    }
}

pub(crate) fn run_job(global: &Global, cmd: JobCmd) -> anyhow::Result<()> {
    let (id, tx, msg, what) = match cmd {
        JobCmd::Submit(SubmitCmd::Training(args)) => return submit_training(global, args),
        JobCmd::Submit(SubmitCmd::Inference(args)) => return submit_inference(global, args),
        JobCmd::Status { id } => {
            let job = job_of(global, id)?;
            if global.json {
                output::json(&job);
            } else {
                print_job(&job);
            }
            return Ok(());
        }
        JobCmd::List {
            status,
            after,
            limit,
        } => {
            let mut path = format!("/jobs?limit={limit}");
            if let Some(status) = status {
                path.push_str(&format!("&status={status}"));
            }
            if let Some(after) = after {
                path.push_str(&format!("&after={after}"));
            }
            let listed = Api::resolve(global)?.get(&path)?;
            if global.json {
                output::json(&listed);
            } else {
                print_job_list(&listed);
            }
            return Ok(());
        }
        JobCmd::Cancel { id, tx } => (id, tx, MarketMsg::CancelJob { id }, "cancelled"),
        JobCmd::Start { id, tx } => (id, tx, MarketMsg::StartJob { id }, "started"),
        JobCmd::Commit {
            id,
            result_root,
            units_delivered,
            tx,
        } => {
            let units_delivered = match units_delivered {
                Some(units) => units,
                None => job_of(global, id)?["units"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("node sent no units for job {id}"))?,
            };
            let msg = MarketMsg::CommitJob {
                id,
                result_root: parse_hash(&result_root, "--result-root")?,
                units_delivered,
            };
            (id, tx, msg, "committed")
        }
        JobCmd::Accept { id, tx } => (id, tx, MarketMsg::AcceptJob { id }, "accepted"),
        JobCmd::Dispute { id, tx } => (id, tx, MarketMsg::DisputeJob { id }, "disputed"),
    };
    if let Some(done) = cmd_tx::submit(global, &tx, Msg::Market(msg))? {
        let job = job_of(global, id)?;
        report(global, &done, &format!("job {id} {what}"), || {
            print_job(&job)
        });
    }
    Ok(())
}

pub(crate) fn run_market(global: &Global, cmd: MarketCmd) -> anyhow::Result<()> {
    match cmd {
        MarketCmd::Stats => {
            let stats = Api::resolve(global)?.get("/market")?;
            if global.json {
                output::json(&stats);
            } else {
                print_stats(&stats);
            }
            Ok(())
        }
    }
}

fn register(global: &Global, args: RegisterArgs) -> anyhow::Result<()> {
    let capacity = match args.capacity {
        Some(0) => bail!("--capacity must be positive"),
        Some(capacity) => capacity,
        None => {
            let bench = benchmark(block_interval_ms(global))?;
            bench["units_per_block"]
                .as_u64()
                .filter(|units| *units > 0)
                .ok_or_else(|| anyhow!("the benchmark measured no capacity; pass --capacity"))?
        }
    };
    let ask_price = match &args.ask {
        Some(text) => parse_amount(text).context("--ask")?,
        None => base_price(global)?,
    };
    let collateral = match &args.collateral {
        Some(text) => parse_amount(text).context("--collateral")?,
        None => required_now(global, capacity)?,
    };
    let msg = Msg::Market(MarketMsg::Register {
        hardware: args.hardware.unwrap_or_else(hardware_description),
        capacity_units_per_block: capacity,
        class: args.class,
        ask_price,
        endpoint: args.endpoint,
        collateral,
    });
    if let Some(done) = cmd_tx::submit(global, &args.tx, msg)? {
        let provider = provider_of(global, &done.signer)?;
        let what = format!(
            "registered with {capacity} units per block, {} collateral locked",
            format_poi(collateral)
        );
        report(global, &done, &what, || print_provider(&provider));
    }
    Ok(())
}

/// The market's current base price per compute unit.
fn base_price(global: &Global) -> anyhow::Result<Amount> {
    let stats = Api::resolve(global)?.get("/market")?;
    stats["base_price"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| anyhow!("node sent no base price"))
}

/// `--max-price` if given, else twice the current base price: room for the price to rise
/// while the job waits (it moves at most 12.5% a block by default), never charged unless a
/// provider asks that much.
fn max_price_or_default(global: &Global, text: Option<&str>) -> anyhow::Result<Amount> {
    match text {
        Some(text) => parse_amount(text).context("--max-price"),
        None => Ok(base_price(global)?.saturating_mul(2)),
    }
}

/// The collateral `capacity` requires at the current demand multiplier.
fn required_now(global: &Global, capacity: u64) -> anyhow::Result<Amount> {
    let api = Api::resolve(global)?;
    let params: Params =
        serde_json::from_value(api.get("/params")?).context("cannot read params")?;
    let multiplier = api.get("/market")?["demand_multiplier_ppm"]
        .as_u64()
        .and_then(|ppm| u32::try_from(ppm).ok())
        .ok_or_else(|| anyhow!("node sent no demand multiplier"))?;
    market::required_collateral(&params.market, capacity, multiplier)
        .map_err(|e| anyhow!("required collateral: {e}"))
}

fn submit_training(global: &Global, args: TrainingJobArgs) -> anyhow::Result<()> {
    let dataset = args.datasets.first().map(String::as_str);
    let spec = JobSpec::default_for(&args.model, dataset, args.steps, args.seed)?;
    spec.validate()?;
    let units = match args.units {
        Some(0) => bail!("--units must be positive"),
        Some(units) => units,
        None => metered_units(&spec)?,
    };
    let hyperparams_hash = *train::job_spec_hash(&spec).as_bytes();
    let eval_commitment = match &args.eval_commitment {
        Some(hex) => parse_hash(hex, "--eval-commitment")?,
        None => *blake3::hash(&[spec.encode().as_slice(), b"eval"].concat()).as_bytes(),
    };
    let max_price = max_price_or_default(global, args.max_price.as_deref())?;
    let msg = MarketMsg::SubmitTraining {
        model: args.model,
        datasets: args.datasets,
        hyperparams_hash,
        steps: args.steps,
        eval_commitment,
        units,
        max_price,
    };
    submit_job(global, &args.tx, msg, units, max_price)
}

fn submit_inference(global: &Global, args: InferenceJobArgs) -> anyhow::Result<()> {
    if args.units == 0 {
        bail!("--units must be positive");
    }
    let max_price = max_price_or_default(global, args.max_price.as_deref())?;
    let msg = MarketMsg::SubmitInference {
        model: args.model,
        version: args.model_version,
        input_hash: *blake3::hash(args.input.as_bytes()).as_bytes(),
        units: args.units,
        max_price,
    };
    submit_job(global, &args.tx, msg, args.units, max_price)
}

fn submit_job(
    global: &Global,
    tx: &crate::cli::TxOptions,
    msg: MarketMsg,
    units: u64,
    max_price: Amount,
) -> anyhow::Result<()> {
    if let Some(done) = cmd_tx::submit(global, tx, Msg::Market(msg))? {
        let id = done
            .event_attribute(market::NAME, "job_submitted", "job")?
            .parse::<u64>()
            .context("job id in the receipt")?;
        let job = job_of(global, id)?;
        let escrow = Amount::from(units).saturating_mul(max_price);
        let what = format!("job {id} submitted, {} escrowed", format_poi(escrow));
        report(global, &done, &what, || print_job(&job));
    }
    Ok(())
}

/// Compute units of `spec`: one step metered here, times the steps (every step runs the same
/// operators on the same shapes, so the count does not depend on the machine).
fn metered_units(spec: &JobSpec) -> anyhow::Result<u64> {
    let mut trainer = Trainer::new(spec)?;
    let mut exec = Exec::new(&CpuBackend);
    trainer.train_step(&mut exec)?;
    let per_step = exec.meter().total().flops;
    Ok(compute_units(per_step.saturating_mul(spec.steps)).max(1))
}

/// Trains the reference job (MLP on wine quality) for about [`BENCHMARK_SECONDS`] and turns
/// its metered FLOPs per second into compute units per block of `block_ms`.
fn benchmark(block_ms: u64) -> anyhow::Result<Value> {
    if block_ms == 0 {
        bail!("--block-ms must be positive");
    }
    let threads = train::threads_from_env()?;
    let spec = JobSpec::default_for("mlp", Some("winequality"), 1 << 24, 1)?;
    let (flops, seconds, steps) = train::with_threads(threads, || -> anyhow::Result<_> {
        let mut trainer = Trainer::new(&spec)?;
        let mut exec = Exec::new(&CpuBackend);
        let started = Instant::now();
        let mut steps = 0u64;
        while started.elapsed().as_secs_f64() < BENCHMARK_SECONDS {
            trainer.train_step(&mut exec)?;
            steps += 1;
        }
        Ok((
            exec.meter().total().flops,
            started.elapsed().as_secs_f64(),
            steps,
        ))
    })??;
    let flops_per_second = flops as f64 / seconds;
    let units_per_block =
        flops_per_second * block_ms as f64 / 1000.0 / FLOPS_PER_COMPUTE_UNIT as f64;
    Ok(json!({
        "hardware": hardware_description(),
        "threads": threads,
        "reference_job": "mlp on winequality",
        "steps": steps,
        "seconds": seconds,
        "flops_per_second": flops_per_second.round() as u64,
        "block_ms": block_ms,
        "units_per_block": units_per_block.floor() as u64,
        "flops_per_compute_unit": FLOPS_PER_COMPUTE_UNIT,
    }))
}

/// The node's block interval from HOME/config.toml, or one second.
fn block_interval_ms(global: &Global) -> u64 {
    crate::client::home(global)
        .config()
        .map_or(1_000, |config| config.block_interval_ms)
}

/// CPU model and core count, e.g. `AMD EPYC 7B13 (2 cores)`.
fn hardware_description() -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model} ({cores} cores)")
}

fn parse_hash(text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| anyhow!("{what} must be 64 hex digits, got {text:?}"))
}

fn provider_of(global: &Global, address: &Address) -> anyhow::Result<Value> {
    Ok(Api::resolve(global)?.get(&format!("/providers/{address}"))?)
}

fn job_of(global: &Global, id: u64) -> anyhow::Result<Value> {
    Ok(Api::resolve(global)?.get(&format!("/jobs/{id}"))?)
}

/// The committed line, then `details` (human output only).
fn report(global: &Global, done: &cmd_tx::Committed, what: &str, details: impl FnOnce()) {
    if done.print_line(global, what) {
        details();
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_provider(p: &Value) {
    println!("provider:     {}", text(&p["address"]));
    println!("hardware:     {}", text(&p["hardware"]));
    println!(
        "capacity:     {} units per block, class {}",
        p["capacity_units_per_block"], p["class"]
    );
    println!("ask:          {} per unit", output::amount(&p["ask_price"]));
    println!("endpoint:     {}", text(&p["endpoint"]));
    println!("collateral:   {}", output::amount(&p["collateral"]));
    println!(
        "required:     {}",
        output::amount(&p["required_collateral"])
    );
    println!(
        "state:        {}, {}",
        if p["online"] == true {
            "online"
        } else {
            "offline"
        },
        if p["eligible"] == true {
            "takes new jobs"
        } else {
            "takes no new jobs"
        }
    );
    println!(
        "jobs:         {} active, {} settled, load {} units",
        p["jobs"].as_array().map_or(0, Vec::len),
        p["jobs_settled"],
        p["load_units"]
    );
    println!("reputation:   {}", text(&p["reputation"]));
    println!(
        "slashes:      {}, {} in all",
        p["slashes"],
        output::amount(&p["slashed_total"])
    );
    println!("last beat:    height {}", p["last_heartbeat"]);
}

fn print_job(j: &Value) {
    let spec = &j["spec"];
    println!("job:          {}", j["id"]);
    println!("status:       {}", text(&j["status"]));
    println!("owner:        {}", text(&j["owner"]));
    println!(
        "spec:         {} {} {}",
        text(&spec["kind"]),
        text(&spec["model"]),
        spec["datasets"]
            .as_array()
            .map(|d| d.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| format!("v{}", spec["version"]))
    );
    println!(
        "units:        {} at most {} per unit (tier {})",
        j["units"],
        output::amount(&j["max_price"]),
        j["tier"]
    );
    println!("escrow:       {}", output::amount(&j["escrow"]));
    println!("provider:     {}", text(&j["provider"]));
    println!(
        "price:        {} per unit",
        output::amount(&j["charged_price"])
    );
    if let Some(deadline) = j["deadline"].as_object() {
        println!(
            "deadline:     {} at height {}",
            text(&deadline["kind"]),
            text(&deadline["height"])
        );
    }
    println!("delivered:    {} units", j["units_delivered"]);
    println!("paid:         {}", output::amount(&j["paid"]));
    println!("refunded:     {}", output::amount(&j["refunded"]));
    println!("compensated:  {}", output::amount(&j["compensated"]));
}

fn print_job_list(listed: &Value) {
    let jobs = listed["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        println!("no jobs");
    }
    for j in &jobs {
        println!(
            "{:>6}  {:<10} {:<9} {:<8} {:>10} units  paid {}",
            j["id"],
            text(&j["status"]),
            text(&j["spec"]["kind"]),
            text(&j["spec"]["model"]),
            j["units"],
            output::amount(&j["paid"])
        );
    }
    if let Some(next) = listed["next_after"].as_u64() {
        println!("more: --after {next}");
    }
}

fn print_stats(s: &Value) {
    println!("height:       {}", s["height"]);
    println!(
        "utilisation:  {} (target {})",
        text(&s["utilisation"]),
        text(&s["target_utilisation"])
    );
    println!(
        "base price:   {} per unit",
        output::amount(&s["base_price"])
    );
    println!(
        "multiplier:   {} (collateral)",
        text(&s["demand_multiplier"])
    );
    println!(
        "capacity:     {} units per block online, {} units loaded",
        text(&s["capacity_online_units_per_block"]),
        text(&s["load_units"])
    );
    println!("escrow:       {}", output::amount(&s["escrow_total"]));
    let p = &s["providers"];
    println!(
        "providers:    {} registered, {} online, {} eligible, {} under-collateralised",
        p["registered"], p["online"], p["eligible"], p["under_collateralised"]
    );
    println!("queue:        {} jobs", s["queue_length"]);
    for tier in s["queue"].as_array().into_iter().flatten() {
        println!(
            "  tier {}:     {} queued, mean wait {} blocks",
            tier["tier"], tier["length"], tier["mean_wait_blocks"]
        );
    }
    let jobs = s["jobs"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    println!("jobs:         {jobs}");
}
