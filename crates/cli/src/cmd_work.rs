//! `poi work ...`: train, evaluate, infer, replay and verify reproducible AI work on local
//! files. Training runs in a rayon pool of $POI_THREADS threads; progress bars go to stderr
//! only when it is a terminal and --json is off.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use poi_repops::backend::CpuBackend;
use poi_repops::commit::{Digest, read_checkpoint};
use poi_repops::data::TabularDataset;
use poi_repops::exec::Exec;
use poi_repops::model::{CharLmSpec, MlpSpec, Model, ModelSpec, argmax};
use poi_repops::train::{
    self, DIGESTS_FILE, JOB_FILE, JobSpec, OptimizerSpec, SegmentReport, Trainer, checkpoint_path,
};
use serde_json::{Value, json};

use crate::cli::{Global, InferArgs, TrainArgs, WorkCmd};
use crate::output;

pub(crate) fn run(global: &Global, cmd: WorkCmd) -> anyhow::Result<()> {
    let threads = train::threads_from_env()?;
    match cmd {
        WorkCmd::Train(args) => {
            let spec = job_spec(&args)?;
            let bar = progress_bar(global, spec.steps);
            let out = args.out.clone();
            let summary = train::with_threads(threads, || {
                train::train_job(&spec, &out, &CpuBackend, &mut |p| {
                    bar.set_position(p.step);
                    bar.set_message(format!("loss {:.4}", p.loss));
                })
            })??;
            bar.finish_and_clear();
            let mut value = serde_json::to_value(&summary)?;
            value["out"] = json!(args.out.display().to_string());
            if global.json {
                output::json(&value);
            } else {
                print_summary(&value);
            }
            Ok(())
        }
        WorkCmd::Replay { out, from, steps } => {
            let report =
                train::with_threads(threads, || train::replay(&out, from, steps, &CpuBackend))??;
            finish_segment(global, &report)
        }
        WorkCmd::VerifySegment {
            checkpoint,
            spec,
            digests,
            root,
            steps,
        } => {
            let job = train::read_job(&spec)?;
            let file = train::read_digests(&digests)?;
            let root = match root {
                Some(hex) => Digest::from_hex(&hex).context("--root")?,
                None => file.root,
            };
            let report = train::with_threads(threads, || {
                train::verify_segment(
                    &job,
                    (&checkpoint, None),
                    &file.digests,
                    &root,
                    steps,
                    &CpuBackend,
                )
            })??;
            finish_segment(global, &report)
        }
        WorkCmd::Eval { out, step } => {
            let mut trainer = load(&out, step)?;
            let report =
                train::with_threads(threads, || trainer.evaluate(&mut Exec::new(&CpuBackend)))??;
            let mut value = serde_json::to_value(report)?;
            value["step"] = json!(trainer.step());
            if global.json {
                output::json(&value);
            } else {
                print_summary(&value);
            }
            Ok(())
        }
        WorkCmd::Infer(args) => {
            let mut trainer = load(&args.out, args.step)?;
            let value = train::with_threads(threads, || infer(&mut trainer, &args))??;
            if global.json {
                output::json(&value);
            } else if let Some(text) = value["text"].as_str() {
                println!("{}{text}", args.prompt.as_deref().unwrap_or(""));
            } else {
                for row in value["predictions"].as_array().into_iter().flatten() {
                    println!("class {}", row["class"]);
                }
            }
            Ok(())
        }
    }
}

fn job_spec(args: &TrainArgs) -> anyhow::Result<JobSpec> {
    let mut spec =
        JobSpec::default_for(&args.model, args.dataset.as_deref(), args.steps, args.seed)?;
    if let Some(batch) = args.batch {
        spec.batch = batch;
    }
    let lr = args.lr.unwrap_or(3e-3);
    spec.optimizer = match args.optimizer.as_str() {
        "sgd" => OptimizerSpec::sgd(lr, args.momentum),
        _ => OptimizerSpec::adamw(lr),
    };
    spec.checkpoint_every = args.checkpoint_every;
    match &mut spec.model {
        ModelSpec::Mlp(MlpSpec { hidden, .. }) if !args.hidden.is_empty() => {
            hidden.clone_from(&args.hidden);
        }
        ModelSpec::Charlm(c) => {
            let d = CharLmSpec::default();
            c.d_model = args.d_model.unwrap_or(d.d_model);
            c.d_ff = 4 * c.d_model;
            c.layers = args.layers.unwrap_or(d.layers);
            c.heads = args.heads.unwrap_or(d.heads);
            c.context = args.context.unwrap_or(d.context);
        }
        ModelSpec::Mlp(_) => {}
    }
    spec.validate()?;
    Ok(spec)
}

fn progress_bar(global: &Global, steps: u64) -> ProgressBar {
    if global.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template("{spinner} step {pos}/{len} [{bar:30}] {msg} ({eta})")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn print_summary(value: &Value) {
    for (key, v) in value.as_object().into_iter().flatten() {
        if key == "op_seconds" {
            continue;
        }
        println!("{key:<20} {v}");
    }
}

fn finish_segment(global: &Global, report: &SegmentReport) -> anyhow::Result<()> {
    if global.json {
        output::json(&serde_json::to_value(report)?);
    } else {
        println!(
            "segment {}..{}: {} of {} steps re-executed in {:.2}s",
            report.from,
            report.from + report.steps,
            report.checked,
            report.steps,
            report.seconds
        );
    }
    match report.first_mismatch {
        None => {
            if !global.json {
                println!("every step digest matches root {}", report.root);
            }
            Ok(())
        }
        Some(m) => bail!(
            "step {} digest mismatch: committed {}, recomputed {}",
            m.step,
            m.expected,
            m.computed
        ),
    }
}

/// The job in `out` at checkpoint `step` (the last one by default), checked against the
/// committed digest of that step.
fn load(out: &Path, step: Option<u64>) -> anyhow::Result<Trainer> {
    let spec = train::read_job(&out.join(JOB_FILE))?;
    let digests = train::read_digests(&out.join(DIGESTS_FILE))?;
    let step = step.unwrap_or(spec.steps);
    let expected = digests
        .digests
        .get(step as usize)
        .with_context(|| format!("step {step} is not committed in {}", out.display()))?;
    let path: PathBuf = checkpoint_path(out, step);
    let ckpt = read_checkpoint(&path, Some(expected))
        .with_context(|| format!("cannot load checkpoint {}", path.display()))?;
    Ok(Trainer::from_checkpoint(&spec, &ckpt)?)
}

fn parse_row(text: &str, width: usize) -> anyhow::Result<Vec<f32>> {
    let row: Vec<f32> = text
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f32>()
                .with_context(|| format!("`{v}` in --row is not a number"))
        })
        .collect::<anyhow::Result<_>>()?;
    if row.len() != width {
        bail!("--row has {} values, the model takes {width}", row.len());
    }
    Ok(row)
}

fn infer(trainer: &mut Trainer, args: &InferArgs) -> anyhow::Result<Value> {
    let mut exec = Exec::new(&CpuBackend);
    if let Some(tokenizer) = trainer.tokenizer().cloned() {
        let Some(prompt) = &args.prompt else {
            bail!("a charlm needs --prompt TEXT to continue");
        };
        let ids = tokenizer.encode(prompt)?;
        let Model::CharLm(lm) = trainer.model_mut() else {
            bail!("model is not a charlm")
        };
        let new = lm.generate(&mut exec, &ids, args.tokens as usize, args.seed)?;
        let text = tokenizer.decode(&new)?;
        return Ok(json!({ "prompt": prompt, "text": text, "seed": args.seed }));
    }
    let split = trainer.split().context("model has no tabular data")?;
    if args.row.is_empty() {
        bail!("an mlp needs at least one --row VALUES (comma-separated raw features)");
    }
    let width = split.train.n_features as usize;
    let mut table = TabularDataset {
        name: split.train.name.clone(),
        n_features: split.train.n_features,
        n_classes: split.train.n_classes,
        features: Vec::new(),
        labels: vec![0; args.row.len()],
        targets: None,
    };
    for text in &args.row {
        table.features.extend(parse_row(text, width)?);
    }
    split.standardizer.apply(&mut table);
    let classes = split.train.n_classes as usize;
    let Model::Mlp(mlp) = trainer.model_mut() else {
        bail!("model is not an mlp")
    };
    let logits = mlp.logits(&mut exec, &table.features)?;
    let predictions: Vec<Value> = logits
        .chunks_exact(classes)
        .map(|row| json!({ "class": argmax(row), "logits": row }))
        .collect();
    Ok(json!({ "predictions": predictions }))
}
