//! The devnet's live summary: one line every [`EVERY`], read from the node's API, so what it
//! prints is what anyone can query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use poi_agents::NodeClient;
use poi_core::token::{Amount, format_poi};
use serde_json::Value;

/// How often a line is printed.
const EVERY: Duration = Duration::from_secs(5);

fn amount(value: &Value) -> Amount {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_u64().map(Amount::from))
        .unwrap_or(0)
}

/// One summary line, or why the API did not answer.
pub(crate) fn line(node: &NodeClient, started: Instant) -> poi_agents::Result<String> {
    let market = node.get("/market")?;
    let jobs = &market["jobs"];
    let count = |status: &str| jobs[status].as_u64().unwrap_or(0);
    let settled = node.get("/jobs?status=settled&limit=200")?;
    let verified: Vec<&Value> = settled["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["poi"]["status"] == "verified")
        .collect();
    let training = verified
        .iter()
        .filter(|j| j["poi"]["kind"] == "training")
        .count();
    let slashes = node.get("/slashes?limit=100")?;
    let slash_list: Vec<String> = slashes["slashes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["reason"].as_str().unwrap_or("?").to_owned())
        .collect();
    let models = node.get("/models")?["models"]
        .as_array()
        .map_or(0, Vec::len);
    let supply = node.get("/supply")?;
    // The last ended epoch's payout, once one ended (404 before).
    let epoch = node.get_opt("/rewards")?.map_or_else(
        || "no epoch ended".to_string(),
        |r| {
            format!(
                "epoch {} paid {} ({} emission + {} fees) to {} accounts",
                r["epoch"],
                format_poi(amount(&r["pool"])),
                format_poi(amount(&r["emission"])),
                format_poi(amount(&r["fees"])),
                r["accounts"].as_array().map_or(0, Vec::len)
            )
        },
    );
    let usage_burned = ["usage_training", "usage_inference"]
        .iter()
        .map(|r| amount(&supply["burned_by_reason"][r]))
        .sum::<Amount>();
    Ok(format!(
        "[{:>4}s] height {} | jobs: {} queued, {} running, {} committed, {} settled, {} failed | verified: {} training, {} inference | slashes: {} [{}] | models: {} | {} | minted {}, burned {} (usage {}), circulating {}",
        started.elapsed().as_secs(),
        market["height"],
        count("queued") + count("matched"),
        count("running"),
        count("committed"),
        count("settled"),
        count("failed"),
        training,
        verified.len() - training,
        slash_list.len(),
        slash_list.join(", "),
        models,
        epoch,
        format_poi(amount(&supply["minted"])),
        format_poi(amount(&supply["burned"])),
        format_poi(usage_burned),
        format_poi(amount(&supply["circulating"])),
    ))
}

/// Prints a line every [`EVERY`] until `stop`.
pub(crate) fn run(api: &str, stop: &AtomicBool) {
    let node = NodeClient::new(api);
    let started = Instant::now();
    let mut last = Instant::now() - EVERY;
    while !stop.load(Ordering::SeqCst) {
        if last.elapsed() >= EVERY {
            last = Instant::now();
            match line(&node, started) {
                Ok(text) => println!("{text}"),
                Err(error) => tracing::warn!(%error, "summary"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
