//! Governance on the chain: submission, stake-weighted votes fixed at submission, delegation,
//! quorum, veto and threshold, the timelock, execution at an epoch boundary, and every typed
//! refusal. Every block is audited by the harness (supply included).

use ed25519_dalek::SigningKey;
use poi_core::governance::{
    self, GovMsg, Payload, Proposal, ProposalStatus, VoteOption, read_proposal,
};
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::token::Amount;
use poi_core::tx::Msg;
use proptest::prelude::*;

use crate::chain::{addr, key};
use crate::net::Net;

const DEPOSIT: Amount = 1_000;
const VOTING: u64 = 20;
const TIMELOCK: u64 = 10;
const EPOCH: u64 = 50;

fn params() -> Params {
    let mut p = Params::default();
    p.governance.deposit_min = DEPOSIT;
    p.governance.voting_blocks = VOTING;
    p.governance.timelock_blocks = TIMELOCK;
    p.governance.extension_blocks = 0;
    p.rewards.epoch_blocks = EPOCH;
    p
}

fn keys() -> Vec<SigningKey> {
    (1..=6).map(key).collect()
}

fn net() -> (Net, Vec<SigningKey>) {
    let ks = keys();
    let refs: Vec<&SigningKey> = ks.iter().collect();
    (Net::new(&refs, params(), 1_000_000), ks)
}

fn gov(net: &mut Net, from: &SigningKey, msg: GovMsg) -> String {
    net.send(from, Msg::Gov(msg))
}

fn bond(net: &mut Net, from: &SigningKey, amount: Amount) {
    assert_eq!(
        net.send(from, Msg::Staking(StakingMsg::Bond { amount })),
        "ok"
    );
}

fn submit(net: &mut Net, from: &SigningKey, payload: Payload) -> u64 {
    let id = governance::proposals(&net.state, 0, 1_000).unwrap().len() as u64;
    let msg = GovMsg::Submit {
        payload,
        deposit: DEPOSIT,
    };
    assert_eq!(gov(net, from, msg), "ok");
    id
}

fn vote(net: &mut Net, from: &SigningKey, proposal: u64, option: VoteOption) -> String {
    gov(net, from, GovMsg::Vote { proposal, option })
}

fn until(net: &mut Net, height: u64) {
    while net.height < height {
        net.empty_blocks(1);
    }
}

fn proposal(net: &Net, id: u64) -> Proposal {
    read_proposal(&net.state, id).unwrap().expect("proposal")
}

/// Runs blocks until `id`'s vote has ended.
fn end_vote(net: &mut Net, id: u64) -> Proposal {
    let end = proposal(net, id).voting_end;
    until(net, end);
    proposal(net, id)
}

fn royalty(bps: u32) -> Payload {
    Payload::ParamChange(vec![("rewards.royalty_bps".into(), bps.to_string())])
}

fn current_params(net: &Net) -> Params {
    poi_core::state::read_borsh(&net.state, poi_core::params::PARAMS_KEY)
        .unwrap()
        .unwrap()
}

#[test]
fn stake_bonded_after_submission_has_no_weight() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100);
    let id = submit(
        &mut net,
        &k[0],
        Payload::Text("fund a GPU grant round".into()),
    );
    // Bonded after the submission: no weight, however much (flash-loaned stake is useless).
    bond(&mut net, &k[1], 1_000_000);
    assert_eq!(vote(&mut net, &k[1], id, VoteOption::No), "no_voting_power");
    // More stake bonded later by a voter does not raise its weight either.
    bond(&mut net, &k[0], 900);
    assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "ok");
    let p = end_vote(&mut net, id);
    let t = p.tally.expect("tallied");
    assert_eq!((t.yes, t.no), (100, 0));
    assert_eq!(
        p.status,
        ProposalStatus::Passed,
        "100 of 100 bonded at submission"
    );
    assert_eq!(p.turnout_bps, Some(10_000));
}

#[test]
fn delegators_inherit_their_delegates_vote_unless_they_vote_themselves() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100); // the delegate
    bond(&mut net, &k[1], 50);
    bond(&mut net, &k[2], 30);
    let to = Some(addr(&k[0]));
    assert_eq!(gov(&mut net, &k[1], GovMsg::Delegate { to }), "ok");
    assert_eq!(gov(&mut net, &k[2], GovMsg::Delegate { to }), "ok");
    let id = submit(&mut net, &k[3], Payload::Text("signal".into()));
    assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "ok");
    // k[2] overrides its delegate for its own stake; a vote can change until the end.
    assert_eq!(vote(&mut net, &k[2], id, VoteOption::Yes), "ok");
    assert_eq!(vote(&mut net, &k[2], id, VoteOption::No), "ok");
    let t = end_vote(&mut net, id).tally.unwrap();
    assert_eq!((t.yes, t.no), (150, 30), "no stake counted twice");
}

#[test]
fn a_parameter_change_passes_and_takes_effect_at_the_next_epoch_boundary() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100);
    let id = submit(&mut net, &k[0], royalty(250));
    assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "ok");
    let balance = net.balance_of(&addr(&k[0]));
    let p = end_vote(&mut net, id);
    assert_eq!(p.status, ProposalStatus::Passed);
    assert!(
        net.balance_of(&addr(&k[0])) >= balance + DEPOSIT - 10_000_000,
        "refunded"
    );
    let after = p.execute_after.unwrap();
    assert_eq!(after, p.voting_end + TIMELOCK);
    until(&mut net, after);
    // The timelock is over but the epoch is not: unchanged until its last block.
    assert!(after < EPOCH - 1);
    assert_eq!(current_params(&net).rewards.royalty_bps, 0);
    until(&mut net, EPOCH - 2);
    assert_eq!(current_params(&net).rewards.royalty_bps, 0);
    until(&mut net, EPOCH - 1);
    assert_eq!(current_params(&net).rewards.royalty_bps, 250);
    let p = proposal(&net, id);
    assert_eq!(p.status, ProposalStatus::Executed);
    let steps: Vec<&str> = p.steps.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(steps, ["submitted", "passed", "executed"]);
    assert_eq!(p.steps[2].1, EPOCH - 1);
}

#[test]
fn missing_quorum_or_a_veto_fails_and_burns_the_deposit_and_a_rejection_refunds_it() {
    let ks = keys();
    let refs: Vec<&SigningKey> = ks.iter().collect();
    let mut p = params();
    p.governance.burn_no_quorum = true;
    let mut net = Net::new(&refs, p, 1_000_000);
    let k = ks;
    bond(&mut net, &k[0], 100);
    bond(&mut net, &k[1], 100);
    bond(&mut net, &k[2], 1_000);
    let quiet = submit(&mut net, &k[0], royalty(300));
    let vetoed = submit(&mut net, &k[0], royalty(400));
    let rejected = submit(&mut net, &k[0], royalty(500));
    // Quiet: 100 of 1,200 bonded votes, under the 33.4% quorum.
    assert_eq!(vote(&mut net, &k[0], quiet, VoteOption::Yes), "ok");
    // Vetoed: yes 200 against a veto of 1,000.
    for v in [&k[0], &k[1]] {
        assert_eq!(vote(&mut net, v, vetoed, VoteOption::Yes), "ok");
    }
    assert_eq!(vote(&mut net, &k[2], vetoed, VoteOption::Veto), "ok");
    // Rejected: no 1,000 against yes 200.
    for v in [&k[0], &k[1]] {
        assert_eq!(vote(&mut net, v, rejected, VoteOption::Yes), "ok");
    }
    assert_eq!(vote(&mut net, &k[2], rejected, VoteOption::No), "ok");
    end_vote(&mut net, rejected);
    assert_eq!(proposal(&net, quiet).status, ProposalStatus::NoQuorum);
    assert_eq!(proposal(&net, vetoed).status, ProposalStatus::Vetoed);
    assert_eq!(proposal(&net, rejected).status, ProposalStatus::Rejected);
    let supply = net.chain.audit(&net.state).unwrap();
    assert_eq!(supply.burned_by_reason["governance_deposit"], 2 * DEPOSIT);
    until(&mut net, EPOCH + 5);
    assert_eq!(
        current_params(&net).rewards.royalty_bps,
        0,
        "nothing executed"
    );
}

#[test]
fn a_mutated_payload_cannot_execute_under_an_approved_id() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100);
    let id = submit(&mut net, &k[0], royalty(250));
    assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "ok");
    end_vote(&mut net, id);
    // Someone swaps the payload after approval (as a malicious upgrade would).
    let mut p = proposal(&net, id);
    p.payload = royalty(5_000);
    let mut writes = poi_core::state::WriteSet::new();
    writes.insert(
        [governance::PROPOSAL_PREFIX, &id.to_be_bytes()].concat(),
        Some(borsh::to_vec(&p).unwrap()),
    );
    net.state.apply(&writes);
    until(&mut net, EPOCH - 1);
    let p = proposal(&net, id);
    assert!(
        matches!(&p.status, ProposalStatus::ExecutionFailed(r) if r.contains("hash")),
        "{:?}",
        p.status
    );
    assert_eq!(current_params(&net).rewards.royalty_bps, 0);
}

#[test]
fn treasury_grants_pay_out_only_what_the_treasury_holds() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100);
    let treasury = net.balance_of(&poi_core::bank::treasury());
    assert!(treasury > 0, "fees fund the treasury");
    let to = addr(&k[5]);
    let small = submit(&mut net, &k[0], Payload::TreasuryGrant { to, amount: 1 });
    let huge = submit(
        &mut net,
        &k[0],
        Payload::TreasuryGrant {
            to,
            amount: Amount::MAX / 2,
        },
    );
    for id in [small, huge] {
        assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "ok");
    }
    let before = net.balance_of(&to);
    let end = end_vote(&mut net, huge).execute_after.unwrap();
    until(&mut net, end);
    assert_eq!(proposal(&net, small).status, ProposalStatus::Executed);
    assert!(matches!(
        proposal(&net, huge).status,
        ProposalStatus::ExecutionFailed(_)
    ));
    assert_eq!(net.balance_of(&to), before + 1);
}

#[test]
fn bad_proposals_votes_and_delegations_are_refused_with_typed_errors() {
    let (mut net, k) = net();
    bond(&mut net, &k[0], 100);
    let out_of_range = GovMsg::Submit {
        payload: royalty(5_001),
        deposit: DEPOSIT,
    };
    assert_eq!(gov(&mut net, &k[0], out_of_range), "param_out_of_range");
    let unknown = GovMsg::Submit {
        payload: Payload::ParamChange(vec![("chain_id".into(), "1".into())]),
        deposit: DEPOSIT,
    };
    assert_eq!(gov(&mut net, &k[0], unknown), "param_out_of_range");
    // Changes that are each in range but together break an invariant (fees above 100%).
    let together = GovMsg::Submit {
        payload: Payload::ParamChange(vec![
            ("fee_burn_bps".into(), "9000".into()),
            ("fee_treasury_bps".into(), "9000".into()),
        ]),
        deposit: DEPOSIT,
    };
    assert_eq!(gov(&mut net, &k[0], together), "param_out_of_range");
    let cheap = GovMsg::Submit {
        payload: Payload::Text("x".into()),
        deposit: DEPOSIT - 1,
    };
    assert_eq!(gov(&mut net, &k[0], cheap), "invalid_message");
    assert_eq!(
        vote(&mut net, &k[0], 99, VoteOption::Yes),
        "unknown_proposal"
    );
    // Unbonding stake does not vote: the weight is capped by what is still bonded.
    let id = submit(&mut net, &k[0], Payload::Text("x".into()));
    let unbond = Msg::Staking(StakingMsg::Unbond { amount: 100 });
    assert_eq!(net.send(&k[0], unbond), "ok");
    assert_eq!(
        vote(&mut net, &k[0], id, VoteOption::Yes),
        "no_voting_power"
    );
    // Delegation: not to oneself, and one hop only.
    let me = Some(addr(&k[1]));
    assert_eq!(
        gov(&mut net, &k[1], GovMsg::Delegate { to: me }),
        "invalid_message"
    );
    let to2 = Some(addr(&k[2]));
    assert_eq!(gov(&mut net, &k[1], GovMsg::Delegate { to: to2 }), "ok");
    let to1 = Some(addr(&k[1]));
    assert_eq!(
        gov(&mut net, &k[3], GovMsg::Delegate { to: to1 }),
        "invalid_message"
    );
    end_vote(&mut net, id);
    assert_eq!(vote(&mut net, &k[0], id, VoteOption::Yes), "voting_closed");
}

#[test]
fn quorum_reached_late_extends_the_vote_once() {
    let ks = keys();
    let refs: Vec<&SigningKey> = ks.iter().collect();
    let mut p = params();
    p.governance.extension_blocks = 5;
    let mut net = Net::new(&refs, p, 1_000_000);
    bond(&mut net, &ks[0], 100);
    let id = submit(&mut net, &ks[0], Payload::Text("late".into()));
    let end = proposal(&net, id).voting_end;
    until(&mut net, end - 2);
    assert_eq!(vote(&mut net, &ks[0], id, VoteOption::Yes), "ok");
    until(&mut net, end);
    let p = proposal(&net, id);
    assert_eq!(
        (p.status.clone(), p.extended),
        (ProposalStatus::Voting, true)
    );
    assert_eq!(p.voting_end, end + 5);
    until(&mut net, end + 5);
    assert_eq!(proposal(&net, id).status, ProposalStatus::Passed);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x60f),
        ..ProptestConfig::default()
    })]
    /// Random stakes, delegations and votes: the tally equals the sum of eligible weights,
    /// computed here from first principles, and the audited supply holds every block.
    #[test]
    fn tallies_equal_the_sum_of_eligible_weights(
        stakes in proptest::collection::vec(0u128..1_000, 6),
        later in proptest::collection::vec(0u128..1_000, 6),
        delegate_to in proptest::collection::vec(proptest::option::of(0usize..6), 6),
        votes in proptest::collection::vec(proptest::option::of(0u8..4), 6),
    ) {
        let (mut net, k) = net();
        for (i, s) in stakes.iter().enumerate() {
            if *s > 0 {
                bond(&mut net, &k[i], *s);
            }
        }
        // Delegations, in order.
        let mut delegated: Vec<Option<usize>> = vec![None; 6];
        for (i, d) in delegate_to.iter().enumerate() {
            if let Some(d) = d {
                // Refused: to oneself, or to an account that delegates (one hop).
                let ok_target = *d != i && delegated[*d].is_none();
                let code = gov(&mut net, &k[i], GovMsg::Delegate { to: Some(addr(&k[*d])) });
                prop_assert_eq!(code == "ok", ok_target, "delegation {} -> {}", i, d);
                if ok_target {
                    delegated[i] = Some(*d);
                }
            }
        }
        let id = submit(&mut net, &k[0], Payload::Text("p".into()));
        for (i, s) in later.iter().enumerate() {
            if *s > 0 {
                bond(&mut net, &k[i], *s);
            }
        }
        let option = |v: u8| [VoteOption::Yes, VoteOption::No, VoteOption::Abstain, VoteOption::Veto][v as usize];
        let mut cast: Vec<Option<VoteOption>> = vec![None; 6];
        for (i, v) in votes.iter().enumerate() {
            if let Some(v) = v {
                let has_delegators = delegated.contains(&Some(i));
                let code = vote(&mut net, &k[i], id, option(*v));
                prop_assert_eq!(code == "ok", stakes[i] > 0 || has_delegators);
                if code == "ok" {
                    cast[i] = Some(option(*v));
                }
            }
        }
        let mut expected = [0u128; 4];
        for i in 0..6 {
            let chosen = cast[i].or_else(|| delegated[i].and_then(|d| cast[d]));
            if let Some(o) = chosen {
                expected[o as usize] += stakes[i];
            }
        }
        let t = end_vote(&mut net, id).tally.unwrap();
        prop_assert_eq!([t.yes, t.no, t.abstain, t.veto], expected);
        let bonded: u128 = stakes.iter().sum();
        prop_assert!(t.turnout() <= bonded);
    }
}

mod models {
    use poi_core::governance::{GovMsg, Payload, ProposalStatus, VoteOption, read_proposal};
    use poi_core::market::MarketMsg;
    use poi_core::poi::PoiMsg;
    use poi_core::poi::checks::CheckStatus;
    use poi_core::poi::registry::{
        self, DEFAULT_VERSION, DeveloperShare, ModelVersion, RootVersion,
    };
    use poi_core::staking::StakingMsg;
    use poi_core::tx::Msg;

    use crate::spot::{World, matching, params};

    fn default_inference(name: &str) -> PoiMsg {
        PoiMsg::SubmitInference {
            model: name.into(),
            version: DEFAULT_VERSION,
            requests: 16,
            input_root: [7; 32],
            units: 1_000,
            max_price: 10,
        }
    }

    /// Submits `msg` as job `id`, commits and verifies it; returns the version it served.
    fn serve(w: &mut World, id: u64, msg: PoiMsg) -> u64 {
        let (user, prov) = (w.user.clone(), w.prov.clone());
        assert_eq!(w.net.poi(&user, msg), "ok");
        assert_eq!(w.net.market(&prov, MarketMsg::StartJob { id }), "ok");
        let commit = PoiMsg::CommitInference {
            job: id,
            output_root: [8; 32],
            sealed: [9; 32],
        };
        assert_eq!(w.net.poi(&prov, commit), "ok");
        w.until(|net| net.poi_job(id).randomness.is_some());
        for c in w.checks(id) {
            if c.status == CheckStatus::Open {
                assert_eq!(w.attest(id, c.index, matching()), "ok");
            }
        }
        assert!(w.net.job(id).paid > 0);
        w.net.poi_job(id).model_id.expect("a version")
    }

    /// Proposes `payload`, votes it through with the user's stake and runs to its execution.
    fn govern(w: &mut World, payload: Payload) {
        let user = w.user.clone();
        let id = poi_core::governance::proposals(&w.net.state, 0, 100)
            .unwrap()
            .len() as u64;
        let submit = Msg::Gov(GovMsg::Submit {
            payload,
            deposit: 1_000,
        });
        assert_eq!(w.net.send(&user, submit), "ok");
        let vote = Msg::Gov(GovMsg::Vote {
            proposal: id,
            option: VoteOption::Yes,
        });
        assert_eq!(w.net.send(&user, vote), "ok");
        w.until(|net| {
            let status = read_proposal(&net.state, id).unwrap().unwrap().status;
            !matches!(status, ProposalStatus::Voting | ProposalStatus::Passed)
        });
        let p = read_proposal(&w.net.state, id).unwrap().unwrap();
        assert_eq!(p.status, ProposalStatus::Executed, "{p:?}");
    }

    #[test]
    fn promotion_changes_the_version_served_and_royalties_follow_and_retirement_stops_it() {
        let mut p = params();
        p.governance.deposit_min = 1_000;
        p.governance.voting_blocks = 10;
        p.governance.timelock_blocks = 10;
        p.governance.extension_blocks = 0;
        p.rewards.royalty_bps = 1_000;
        let mut w = World::new(p);
        let user = w.user.clone();
        // Most of the bonded stake, so the user's vote alone meets quorum.
        let bond = Msg::Staking(StakingMsg::Bond {
            amount: 10_000_000_000_000,
        });
        assert_eq!(w.net.send(&user, bond), "ok");
        // charlm-base v1 (id 0) by A; v2 (id 1) fine-tunes it, by B.
        let (a, b) = (poi_core::Address([0xa1; 32]), poi_core::Address([0xb2; 32]));
        let mut root = RootVersion::new("charlm-base", "charlm", [0x11; 32]);
        root.developers = vec![DeveloperShare {
            address: a,
            bps: 10_000,
        }];
        let mut writes = poi_core::state::WriteSet::new();
        for (k, v) in registry::genesis_writes(&[root]) {
            writes.insert(k, Some(v));
        }
        let mut v2: ModelVersion = registry::read_model(&w.net.state, 0).unwrap().unwrap();
        v2.id = 1;
        v2.version = 2;
        v2.base = Some(0);
        v2.params_digest = [0x22; 32];
        v2.developers = vec![DeveloperShare {
            address: b,
            bps: 10_000,
        }];
        writes.insert(registry::model_key(1), Some(borsh::to_vec(&v2).unwrap()));
        writes.insert(
            registry::name_key("charlm-base", 2),
            Some(borsh::to_vec(&1u64).unwrap()),
        );
        writes.insert(
            registry::MODEL_COUNT_KEY.to_vec(),
            Some(borsh::to_vec(&2u64).unwrap()),
        );
        w.net.state.apply(&writes);

        // Naming version 1 serves it (job 0 records version 1, not its own id).
        let mut explicit = default_inference("charlm");
        if let PoiMsg::SubmitInference { version, .. } = &mut explicit {
            *version = 1;
        }
        assert_eq!(serve(&mut w, 0, explicit.clone()), 1);
        // Before any promotion the name serves its first version: royalties to A only.
        let (a0, b0) = (w.net.balance_of(&a), w.net.balance_of(&b));
        assert_eq!(serve(&mut w, 1, default_inference("charlm-base")), 0);
        assert!(w.net.balance_of(&a) > a0);
        assert_eq!(w.net.balance_of(&b), b0);

        govern(&mut w, Payload::PromoteModel { version: 1 });
        let (a1, b1) = (w.net.balance_of(&a), w.net.balance_of(&b));
        assert_eq!(serve(&mut w, 2, default_inference("charlm-base")), 1);
        assert!(
            w.net.balance_of(&b) > b1,
            "the promoted version's developer is paid"
        );
        assert!(
            w.net.balance_of(&a) > a1,
            "and its base's, along the lineage"
        );

        govern(&mut w, Payload::RetireModel { version: 1 });
        assert_eq!(
            registry::default_version(&w.net.state, "charlm-base").unwrap(),
            Some(0)
        );
        assert_eq!(
            w.net.poi(&user, explicit),
            "invalid_message",
            "a retired version serves nothing"
        );
    }
}
