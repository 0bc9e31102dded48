//! `poi stake ...`: bond, unbond, withdraw, show.

use anyhow::{anyhow, bail};
use poi_core::Address;
use poi_core::staking::StakingMsg;
use poi_core::token::{format_poi, parse_amount};
use poi_core::tx::Msg;
use serde_json::Value;

use crate::cli::{Global, StakeCmd};
use crate::client::Api;
use crate::{cmd_keys, cmd_tx, output};

pub(crate) fn run(global: &Global, cmd: StakeCmd) -> anyhow::Result<()> {
    match cmd {
        StakeCmd::Tier { tier, tx } => {
            // The key's address needs no password; `submit` unlocks it once, to sign.
            let me = cmd_keys::resolve_address(global, &tx.from)?;
            let stake = stake_of(global, &me)?;
            let missing = missing_for_tier(&stake, tier)?;
            if missing == 0 {
                if global.json {
                    output::json(&stake);
                } else {
                    println!(
                        "already at tier {} (asked for {tier}); nothing bonded",
                        stake["tier"]
                    );
                    print_stake(&stake);
                }
                return Ok(());
            }
            let msg = Msg::Staking(StakingMsg::Bond { amount: missing });
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let stake = stake_of(global, &done.signer)?;
                let what = format!("bonded {} to reach tier {tier}", format_poi(missing));
                report(global, &done, &what, &stake);
            }
        }
        StakeCmd::Bond { amount, tx } => {
            let amount = parse_amount(&amount)?;
            let msg = Msg::Staking(StakingMsg::Bond { amount });
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let stake = stake_of(global, &done.signer)?;
                report(
                    global,
                    &done,
                    &format!("bonded {}", format_poi(amount)),
                    &stake,
                );
            }
        }
        StakeCmd::Unbond { amount, tx } => {
            let amount = parse_amount(&amount)?;
            let msg = Msg::Staking(StakingMsg::Unbond { amount });
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let stake = stake_of(global, &done.signer)?;
                let release = stake["unbonding"]
                    .as_array()
                    .and_then(|chunks| chunks.last())
                    .map_or(Value::Null, |chunk| chunk["release_height"].clone());
                let what = format!(
                    "unbonding {}, withdrawable from height {release}",
                    format_poi(amount)
                );
                report(global, &done, &what, &stake);
            }
        }
        StakeCmd::Withdraw { tx } => {
            let msg = Msg::Staking(StakingMsg::Withdraw);
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let withdrawn = done
                    .event_attribute(poi_core::staking::NAME, "withdraw", "amount")
                    .and_then(|text| Ok(parse_amount(&text)?))
                    .unwrap_or_default();
                let stake = stake_of(global, &done.signer)?;
                let what = format!("withdrew {}", format_poi(withdrawn));
                report(global, &done, &what, &stake);
            }
        }
        StakeCmd::Show { address } => {
            let address = cmd_keys::resolve_address(global, &address)?;
            let stake = stake_of(global, &address)?;
            if global.json {
                output::json(&stake);
            } else {
                print_stake(&stake);
            }
        }
    }
    Ok(())
}

/// Base units to bond so that `stake` (a `GET /stake` answer) reaches `tier`; 0 if it has.
fn missing_for_tier(stake: &Value, tier: u8) -> anyhow::Result<u128> {
    let thresholds: Vec<u128> = stake["tier_thresholds"]
        .as_array()
        .ok_or_else(|| anyhow!("node sent no tier thresholds"))?
        .iter()
        .map(|t| t.as_str().unwrap_or("").parse::<u128>())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("node sent a bad tier threshold: {e}"))?;
    if tier == 0 || usize::from(tier) > thresholds.len() {
        bail!(
            "tier {tier} does not exist: this chain has tiers 1 to {}",
            thresholds.len()
        );
    }
    let bonded: u128 = stake["bonded"]
        .as_str()
        .unwrap_or("")
        .parse()
        .map_err(|e| anyhow!("node sent a bad bonded amount: {e}"))?;
    Ok(thresholds[usize::from(tier) - 1].saturating_sub(bonded))
}

fn stake_of(global: &Global, address: &Address) -> anyhow::Result<Value> {
    Ok(Api::resolve(global)?.get(&format!("/stake/{address}"))?)
}

/// One line for the committed transaction, then the stake it left (human output only; with
/// `--json` the transaction status was printed already).
fn report(global: &Global, done: &cmd_tx::Committed, what: &str, stake: &Value) {
    if done.print_line(global, what) {
        print_stake(stake);
    }
}

fn print_stake(stake: &Value) {
    println!("address:   {}", stake["address"].as_str().unwrap_or("?"));
    println!("bonded:    {}", output::amount(&stake["bonded"]));
    println!("locked:    {}", output::amount(&stake["locked"]));
    println!("tier:      {}", stake["tier"]);
    let chunks = stake["unbonding"].as_array().cloned().unwrap_or_default();
    if chunks.is_empty() {
        println!("unbonding: none");
    }
    for chunk in chunks {
        println!(
            "unbonding: {} from height {}",
            output::amount(&chunk["amount"]),
            chunk["release_height"]
        );
    }
    println!("height:    {}", stake["height"]);
}
