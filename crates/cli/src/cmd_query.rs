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
                for field in ["genesis", "minted", "burned", "total", "circulating"] {
                    println!("{field:<12} {}", output::amount(&supply[field]));
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
