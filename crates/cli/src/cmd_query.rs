//! `poi query ...`.

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::cli::{Global, QueryCmd};
use crate::client::Api;
use crate::{cmd_keys, output};

pub(crate) fn run(global: &Global, cmd: QueryCmd) -> anyhow::Result<()> {
    let api = Api::resolve(global)?;
    match cmd {
        QueryCmd::Account { address, prove } => {
            let address = cmd_keys::resolve_address(global, &address)?;
            let path = if prove {
                format!("/accounts/{address}?prove=true")
            } else {
                format!("/accounts/{address}")
            };
            let account = api.get(&path)?;
            if prove {
                check_proof(&account)?;
            }
            if global.json {
                output::json(&account);
            } else {
                println!("address:  {}", account["address"].as_str().unwrap_or("?"));
                println!("balance:  {}", output::amount(&account["balance"]));
                println!("nonce:    {}", account["nonce"]);
                println!("height:   {}", account["height"]);
                if prove {
                    println!(
                        "proof:    verified against state root {}",
                        account["state_root"].as_str().unwrap_or("?")
                    );
                }
            }
        }
        QueryCmd::Block { id } => {
            let block = api.get(&format!("/blocks/{id}"))?;
            if global.json {
                output::json(&block);
            } else {
                for field in [
                    "height",
                    "hash",
                    "parent_hash",
                    "state_root",
                    "timestamp_ms",
                    "proposer",
                    "tx_count",
                ] {
                    println!("{field:<13} {}", plain(&block[field]));
                }
            }
        }
        QueryCmd::Tx { hash } => {
            let status = api.get(&format!("/txs/{hash}"))?;
            if global.json {
                output::json(&status);
            } else {
                println!("status:  {}", plain(&status["status"]));
                if status["status"] == "committed" {
                    println!("height:  {}", status["height"]);
                    let outcome = &status["receipt"]["outcome"];
                    println!("outcome: {}", plain(&outcome["status"]));
                    if let Some(message) = outcome["message"].as_str() {
                        println!("error:   {message}");
                    }
                }
            }
        }
        QueryCmd::Supply => {
            let supply = api.get("/supply")?;
            if global.json {
                output::json(&supply);
            } else {
                for field in [
                    "genesis",
                    "minted",
                    "burned",
                    "total",
                    "staked",
                    "escrowed",
                    "bonds",
                    "treasury",
                    "reward_pool",
                    "circulating",
                ] {
                    println!("{field:<12} {}", output::amount(&supply[field]));
                }
                if let Some(reasons) = supply["burned_by_reason"].as_object() {
                    for (reason, amount) in reasons {
                        println!("  burned {reason:<16} {}", output::amount(amount));
                    }
                }
            }
        }
        QueryCmd::Rewards { epoch } => {
            let path = match epoch {
                Some(e) => format!("/rewards?epoch={e}"),
                None => "/rewards".to_string(),
            };
            let r = api.get(&path)?;
            if global.json {
                output::json(&r);
            } else {
                println!(
                    "epoch {} (blocks of {}): pool {} = emission {} + fees {} + other {}",
                    r["epoch"],
                    r["epoch_blocks"],
                    output::amount(&r["pool"]),
                    output::amount(&r["emission"]),
                    output::amount(&r["fees"]),
                    output::amount(&r["other"])
                );
                for class in r["classes"].as_array().into_iter().flatten() {
                    println!("  {:<11} {}", plain(&class[0]), output::amount(&class[1]));
                }
                println!("  {:<11} {}", "treasury", output::amount(&r["treasury"]));
                for y in r["yields"].as_array().into_iter().flatten() {
                    let per_epoch = y["yield_ppm"]
                        .as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .map_or("no stake".to_string(), |ppm| {
                            format!("{:.4}% of stake", ppm / 1e4)
                        });
                    println!(
                        "  {} {:<11} {} ({per_epoch})",
                        plain(&y["address"]),
                        plain(&y["class"]),
                        output::amount(&y["reward"])
                    );
                }
            }
        }
        QueryCmd::Burn { from, limit } => {
            let b = api.get(&format!("/burn?from={from}&limit={limit}"))?;
            if global.json {
                output::json(&b);
            } else {
                println!(
                    "usage burns {}; this epoch: rate {} ppm, demand {}, burned {}",
                    if b["enabled"] == true { "on" } else { "off" },
                    b["current"]["rate_ppm"],
                    output::amount(&b["current"]["demand"]),
                    output::amount(&b["current"]["burned"])
                );
                println!(
                    "{:>6} {:>20} {:>12} {:>20} {:>20} {:>22} {:>12}",
                    "epoch", "demand", "rate ppm", "burned", "minted", "net issuance", "next rate"
                );
                for e in b["history"].as_array().into_iter().flatten() {
                    println!(
                        "{:>6} {:>20} {:>12} {:>20} {:>20} {:>22} {:>12}",
                        e["epoch"],
                        plain(&e["demand"]),
                        e["rate_ppm"],
                        plain(&e["burned"]),
                        plain(&e["minted"]),
                        plain(&e["net_issuance"]),
                        e["next_rate_ppm"]
                    );
                }
            }
        }
        QueryCmd::Params => output::json(&api.get("/params")?),
    }
    Ok(())
}

fn plain(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// Checks the account proof the node sent against the state root it claims.
fn check_proof(account: &Value) -> anyhow::Result<()> {
    let proof = &account["proof"];
    let decode = |field: &str| -> anyhow::Result<Vec<u8>> {
        let text = proof[field]
            .as_str()
            .ok_or_else(|| anyhow!("proof lacks {field}"))?;
        Ok(hex::decode(text)?)
    };
    let root: [u8; 32] = decode("state_root")?
        .try_into()
        .map_err(|_| anyhow!("bad root"))?;
    let key = decode("key")?;
    let value = match proof["value"].as_str() {
        Some(text) => Some(hex::decode(text)?),
        None => None,
    };
    let proof_bytes = poi_store::StateProof::from_bytes(&decode("proof")?)?;
    if let Err(e) = poi_store::verify_proof(root, &key, value.as_deref(), &proof_bytes) {
        bail!("the node's Merkle proof does not verify: {e}");
    }
    // The proven record must say what the node reported.
    let proven: poi_core::bank::Account = match value {
        Some(bytes) => borsh::from_slice(&bytes)?,
        None => poi_core::bank::Account::default(),
    };
    if account["balance"].as_str() != Some(proven.balance.to_string().as_str()) {
        bail!("the node's balance does not match its own Merkle proof");
    }
    Ok(())
}
