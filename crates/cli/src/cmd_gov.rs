//! `poi gov ...`: propose, vote, delegate, show, list.

use anyhow::{anyhow, bail};
use poi_core::governance::{GovMsg, Payload, VoteOption};
use poi_core::token::parse_amount;
use poi_core::tx::Msg;
use serde_json::Value;

use crate::cli::{Global, GovCmd};
use crate::client::Api;
use crate::{cmd_keys, cmd_tx, output};

pub(crate) fn run(global: &Global, cmd: GovCmd) -> anyhow::Result<()> {
    match cmd {
        GovCmd::Propose {
            param,
            grant_to,
            grant_amount,
            text,
            promote,
            retire,
            deposit,
            tx,
        } => {
            let payload = match (promote, retire) {
                (Some(version), None)
                    if param.is_empty() && grant_to.is_none() && text.is_none() =>
                {
                    Payload::PromoteModel { version }
                }
                (None, Some(version))
                    if param.is_empty() && grant_to.is_none() && text.is_none() =>
                {
                    Payload::RetireModel { version }
                }
                (None, None) => payload(global, param, grant_to, grant_amount, text)?,
                _ => bail!(
                    "a proposal does one thing: --promote, --retire, --param, a grant or --text"
                ),
            };
            let deposit = match deposit {
                Some(d) => parse_amount(&d)?,
                None => {
                    let params = Api::resolve(global)?.get("/params")?;
                    params["governance"]["deposit_min"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            anyhow!("the node's params have no governance.deposit_min")
                        })?
                }
            };
            let msg = Msg::Gov(GovMsg::Submit { payload, deposit });
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                let id =
                    done.event_attribute(poi_core::governance::NAME, "submitted", "proposal")?;
                let end =
                    done.event_attribute(poi_core::governance::NAME, "submitted", "voting_end")?;
                done.print_line(
                    global,
                    &format!("proposal {id} submitted; voting ends at height {end}"),
                );
            }
        }
        GovCmd::Vote {
            proposal,
            option,
            tx,
        } => {
            let option = match option.to_ascii_lowercase().as_str() {
                "yes" => VoteOption::Yes,
                "no" => VoteOption::No,
                "abstain" => VoteOption::Abstain,
                "veto" | "no_with_veto" => VoteOption::Veto,
                other => bail!("invalid vote `{other}`: use yes, no, abstain or veto"),
            };
            let msg = Msg::Gov(GovMsg::Vote { proposal, option });
            if let Some(done) = cmd_tx::submit(global, &tx, msg)? {
                done.print_line(global, &format!("voted {option:?} on proposal {proposal}"));
            }
        }
        GovCmd::Delegate { to, tx } => {
            let to = match to.as_str() {
                "none" => None,
                other => Some(cmd_keys::resolve_address(global, other)?),
            };
            let what = to.map_or("stopped delegating".to_string(), |a| {
                format!("delegated to {a}")
            });
            if let Some(done) = cmd_tx::submit(global, &tx, Msg::Gov(GovMsg::Delegate { to }))? {
                done.print_line(global, &what);
            }
        }
        GovCmd::Show { proposal } => {
            let p = Api::resolve(global)?.get(&format!("/proposals/{proposal}"))?;
            if global.json {
                output::json(&p);
            } else {
                print_proposal(&p);
            }
        }
        GovCmd::List => {
            let list = Api::resolve(global)?.get("/proposals?limit=200")?;
            if global.json {
                output::json(&list);
            } else {
                for p in list["proposals"].as_array().into_iter().flatten() {
                    println!(
                        "{:>4}  {:<16} ends {:<8} {}",
                        p["id"],
                        p["status"].as_str().unwrap_or("?"),
                        p["voting_end"],
                        summary(&p["payload"])
                    );
                }
            }
        }
    }
    Ok(())
}

fn payload(
    global: &Global,
    params: Vec<String>,
    grant_to: Option<String>,
    grant_amount: Option<String>,
    text: Option<String>,
) -> anyhow::Result<Payload> {
    match (params.is_empty(), grant_to, grant_amount, text) {
        (false, None, None, None) => {
            let changes = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| anyhow!("invalid --param `{p}`: use PATH=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Payload::ParamChange(changes))
        }
        (true, Some(to), Some(amount), None) => Ok(Payload::TreasuryGrant {
            to: cmd_keys::resolve_address(global, &to)?,
            amount: parse_amount(&amount)?,
        }),
        (true, None, None, Some(text)) => Ok(Payload::Text(text)),
        _ => bail!(
            "a proposal is one of: --param PATH=VALUE (repeatable), --grant-to ADDR --grant-amount AMOUNT, or --text TEXT"
        ),
    }
}

fn summary(payload: &Value) -> String {
    if let Some(changes) = payload["param_change"].as_array() {
        let parts: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{}={}",
                    c[0].as_str().unwrap_or("?"),
                    c[1].as_str().unwrap_or("?")
                )
            })
            .collect();
        format!("set {}", parts.join(", "))
    } else if let Some(v) = payload["promote_model"]["version"].as_u64() {
        format!("promote model version {v}")
    } else if let Some(v) = payload["retire_model"]["version"].as_u64() {
        format!("retire model version {v}")
    } else if payload["treasury_grant"].is_object() {
        format!(
            "grant {} to {}",
            output::amount(&payload["treasury_grant"]["amount"]),
            payload["treasury_grant"]["to"].as_str().unwrap_or("?")
        )
    } else {
        format!("text: {}", payload["text"].as_str().unwrap_or("?"))
    }
}

fn print_proposal(p: &Value) {
    println!("proposal {}: {}", p["id"], summary(&p["payload"]));
    println!("status:     {}", p["status"].as_str().unwrap_or("?"));
    if let Some(reason) = p["reason"].as_str() {
        println!("reason:     {reason}");
    }
    println!("payload:    {}", p["payload_hash"].as_str().unwrap_or("?"));
    let t = &p["tally"];
    println!(
        "tally:      yes {}, no {}, abstain {}, veto {}{}",
        output::amount(&t["yes"]),
        output::amount(&t["no"]),
        output::amount(&t["abstain"]),
        output::amount(&t["veto"]),
        if p["live"] == true { " (live)" } else { "" }
    );
    println!(
        "turnout:    {:.2}% of {} bonded at submission",
        p["turnout_bps"].as_u64().unwrap_or(0) as f64 / 100.0,
        output::amount(&p["bonded"])
    );
    for step in p["steps"].as_array().into_iter().flatten() {
        println!(
            "  {:<18} at height {}",
            step[0].as_str().unwrap_or("?"),
            step[1]
        );
    }
}
