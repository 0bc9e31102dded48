//! Validators: the set follows stake at epoch boundaries, equivocation evidence slashes and
//! tombstones, skipped leader views jail, and supply is conserved throughout.

use commonware_codec::Encode as _;
use commonware_consensus::simplex::elector::{Elector as _, RoundRobin};
use commonware_consensus::simplex::scheme::{Namespace, bls12381_threshold::vrf};
use commonware_consensus::simplex::types::{
    ConflictingFinalize, ConflictingNotarize, Finalize, Notarize, Nullify, NullifyFinalize,
    Proposal,
};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::bls12381::dkg::feldman_desmedt;
use commonware_cryptography::bls12381::primitives::{
    group::Share, sharing::Mode as ShareMode, variant::MinSig,
};
use commonware_cryptography::certificate::Attestation;
use commonware_cryptography::{Hasher as _, Sha256, ed25519};
use commonware_utils::{N3f1, ordered::Set};
use ed25519_dalek::SigningKey;
use poi_core::block::BlockContext;
use poi_core::chain::{BlockOutcome, Chain, Mode};
use poi_core::event::TxOutcome;
use poi_core::genesis::{Genesis, GenesisAccount, GenesisBeacon};
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::state::MemState;
use poi_core::token::BASE_UNITS_PER_POI as POI;
use poi_core::tx::{Msg, Tx, TxBody};
use poi_core::validators::{self, EvidenceKind, ValidatorsMsg, liveness};
use poi_core::{Address, supply};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

use crate::chain::{CHAIN, addr, key};

pub(crate) const FEE: u128 = 10_000;
pub(crate) const START: u128 = 1_000_000 * POI;
pub(crate) const EPOCH: u64 = 10;

pub(crate) type S = vrf::Scheme<ed25519::PublicKey, MinSig>;
pub(crate) type D = commonware_cryptography::sha256::Digest;

/// A test chain: genesis validators (keys 201..), funded users, optionally a dealt beacon.
pub(crate) struct Net {
    pub(crate) chain: Chain,
    pub(crate) state: MemState,
    /// Genesis validators' keys, sorted by address (the participant order).
    pub(crate) validators: Vec<SigningKey>,
    /// Vote signers, parallel to `validators` (empty without a beacon).
    pub(crate) signers: Vec<S>,
    /// Beacon shares, parallel to `validators` (empty without a beacon).
    pub(crate) shares: Vec<Share>,
    nonces: std::collections::BTreeMap<Address, u64>,
}

pub(crate) fn params() -> Params {
    let mut p = Params::default();
    p.rewards.epoch_blocks = EPOCH;
    p
}

pub(crate) fn net(validators: u8, users: &[&SigningKey], params: Params, beacon: bool) -> Net {
    let mut keys: Vec<SigningKey> = (0..validators).map(|i| key(201 + i)).collect();
    keys.sort_by_key(addr);
    let mut accounts: Vec<GenesisAccount> = keys
        .iter()
        .chain(users.iter().copied())
        .map(|k| GenesisAccount {
            address: addr(k),
            balance: START,
        })
        .collect();
    accounts.dedup_by_key(|a| a.address);
    let (genesis_beacon, signers, shares) = if beacon {
        deal(&keys)
    } else {
        (None, Vec::new(), Vec::new())
    };
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: keys.iter().map(addr).collect(),
        params,
        accounts,
        beacon: genesis_beacon,
        models: Vec::new(),
        data: Vec::new(),
    };
    let mut state = MemState::default();
    state.apply(&genesis.state().expect("valid genesis"));
    Net {
        chain: Chain::new(CHAIN),
        state,
        validators: keys,
        signers,
        shares,
        nonces: Default::default(),
    }
}

pub(crate) fn participants(keys: &[SigningKey]) -> Set<ed25519::PublicKey> {
    let pks: Vec<ed25519::PublicKey> = keys
        .iter()
        .map(|k| {
            commonware_codec::DecodeExt::decode(addr(k).as_bytes().to_vec()).expect("ed25519 key")
        })
        .collect();
    Set::try_from(pks).expect("sorted unique keys")
}

pub(crate) fn namespace() -> Vec<u8> {
    [CHAIN.as_bytes(), b"_CONSENSUS"].concat()
}

/// Deals a beacon to `keys` (sorted) with a trusted dealer, as the node's `deal` does.
fn deal(keys: &[SigningKey]) -> (Option<GenesisBeacon>, Vec<S>, Vec<Share>) {
    let players = participants(keys);
    let rng = ChaCha20Rng::from_seed([7; 32]);
    let (output, shares) =
        feldman_desmedt::deal::<MinSig, _, N3f1>(rng, ShareMode::NonZeroCounter, players.clone())
            .expect("deal");
    let polynomial = output.public().clone();
    let ordered: Vec<Share> = players
        .iter()
        .map(|p| shares.get_value(p).expect("dealt").clone())
        .collect();
    let signers = ordered
        .iter()
        .map(|share| {
            S::signer(
                &namespace(),
                players.clone(),
                polynomial.clone(),
                share.clone(),
            )
            .expect("signer")
        })
        .collect();
    let beacon = GenesisBeacon {
        identity: hex::encode(polynomial.public().encode()),
        seed_namespace: hex::encode(Namespace::new(&namespace()).seed),
        polynomial: hex::encode(polynomial.encode()),
    };
    (Some(beacon), signers, ordered)
}

impl Net {
    pub(crate) fn tx(&mut self, from: &SigningKey, msg: Msg) -> Tx {
        self.tx_with_fee(from, msg, FEE)
    }

    /// A transaction paying `fee` (larger ones need more than [`FEE`]).
    pub(crate) fn tx_with_fee(&mut self, from: &SigningKey, msg: Msg, fee: u128) -> Tx {
        let nonce = self.nonces.entry(addr(from)).or_insert(0);
        let body = TxBody {
            chain_id: CHAIN.into(),
            signer: addr(from),
            nonce: *nonce,
            fee,
            msg,
        };
        *nonce += 1;
        body.sign(from)
    }

    pub(crate) fn val(&mut self, from: &SigningKey, msg: ValidatorsMsg) -> Tx {
        self.tx(from, Msg::Validators(msg))
    }

    pub(crate) fn stake(&mut self, from: &SigningKey, msg: StakingMsg) -> Tx {
        self.tx(from, Msg::Staking(msg))
    }

    /// Executes a block at `height` and `view`, applies and audits it; returns the outcome
    /// codes ("ok" for success) and the outcome.
    pub(crate) fn run_view(
        &mut self,
        height: u64,
        view: u64,
        txs: Vec<Tx>,
    ) -> (Vec<String>, BlockOutcome) {
        let ctx = BlockContext {
            height,
            timestamp_ms: height * 1000,
            proposer: Address([9; 32]),
            view,
            seeds: Vec::new(),
        };
        let out = self
            .chain
            .execute_block(&self.state, &ctx, txs, Mode::Verify)
            .expect("block executes");
        self.state.apply(&out.writes);
        self.chain
            .audit(&self.state)
            .expect("supply and invariants hold");
        let codes = out
            .receipts
            .iter()
            .map(|r| match &r.outcome {
                TxOutcome::Success => "ok".to_string(),
                TxOutcome::Failed { code, .. } => code.clone(),
            })
            .collect();
        (codes, out)
    }

    pub(crate) fn run(&mut self, height: u64, txs: Vec<Tx>) -> Vec<String> {
        self.run_view(height, height, txs).0
    }

    pub(crate) fn members(&self, epoch: u64) -> Option<Vec<Address>> {
        validators::active_set(&self.state, epoch)
            .unwrap()
            .map(|s| s.members.iter().map(|m| m.address).collect())
    }

    pub(crate) fn candidate(&self, who: &SigningKey) -> validators::Candidate {
        validators::candidate(&self.state, &addr(who))
            .unwrap()
            .expect("a candidate")
    }

    pub(crate) fn bonded(&self, who: &SigningKey) -> u128 {
        poi_core::staking::stake(&self.state, &addr(who))
            .unwrap()
            .bonded
    }

    /// The state under `val/` and `stk/`.
    pub(crate) fn snapshot(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(b"val/") || k.starts_with(b"stk/"))
            .filter(|(k, _)| k.as_slice() != validators::VIEW_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

pub(crate) fn bond_and_register(
    n: &mut Net,
    who: &SigningKey,
    bond: u128,
    collateral: u128,
) -> Vec<Tx> {
    vec![
        n.stake(who, StakingMsg::Bond { amount: bond }),
        n.val(
            who,
            ValidatorsMsg::Register {
                self_bond: collateral,
            },
        ),
    ]
}

#[test]
fn the_set_follows_stake_exactly_at_epoch_boundaries() {
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let mut n = net(1, &[&alice, &bob, &carol], params(), false);
    let genesis_set = vec![addr(&n.validators[0])];
    assert_eq!(n.members(0), Some(genesis_set.clone()));
    let mut txs = bond_and_register(&mut n, &alice, 10 * POI, 5 * POI);
    txs.extend(bond_and_register(&mut n, &bob, 20 * POI, 2 * POI));
    assert_eq!(n.run(1, txs), ["ok"; 4]);
    for h in 2..9 {
        n.run(h, Vec::new());
        assert_eq!(n.members(1), None, "no set for epoch 1 before its boundary");
    }
    let current = validators::current_set(&n.state, 8, &params())
        .unwrap()
        .unwrap();
    assert_eq!(current.epoch, 0);
    let (_, out) = n.run_view(9, 9, Vec::new());
    assert!(out.block_events.iter().any(|e| e.kind == "set_changed"));
    // The genesis validator bonded nothing, so it has no collateral and drops out.
    assert_eq!(n.members(1), Some(vec![addr(&bob), addr(&alice)]));
    let set = validators::current_set(&n.state, 10, &params())
        .unwrap()
        .unwrap();
    assert_eq!(
        (set.epoch, set.members[0].stake, set.members[0].seats),
        (1, 20 * POI, 1)
    );

    // Epoch 1: carol registers with the most stake, alice leaves, bob bonds past carol.
    let mut txs = bond_and_register(&mut n, &carol, 30 * POI, POI);
    txs.push(n.val(&alice, ValidatorsMsg::Leave));
    txs.push(n.stake(&bob, StakingMsg::Bond { amount: 15 * POI }));
    assert_eq!(n.run(12, txs), ["ok"; 4]);
    let record = validators::candidate(&n.state, &addr(&alice)).unwrap();
    assert_eq!(record, None, "a candidate without history leaves no record");
    let alice_stake = poi_core::staking::stake(&n.state, &addr(&alice)).unwrap();
    assert_eq!(alice_stake.locked, 0, "leaving unlocks the collateral");
    for h in 13..19 {
        n.run(h, Vec::new());
    }
    assert_eq!(n.members(2), None);
    n.run(19, Vec::new());
    assert_eq!(n.members(2), Some(vec![addr(&bob), addr(&carol)]));

    // A registration below the minimum, or without free stake, is refused.
    let below = n.val(&alice, ValidatorsMsg::Register { self_bond: POI - 1 });
    let unbacked = n.val(
        &alice,
        ValidatorsMsg::Register {
            self_bond: 1_000 * POI,
        },
    );
    assert_eq!(
        n.run(20, vec![below, unbacked]),
        ["validator_bond_below_minimum", "insufficient_stake"]
    );
}

#[test]
fn an_empty_computed_set_keeps_the_previous_one() {
    let mut n = net(2, &[], params(), false);
    let genesis = n.members(0).unwrap();
    for h in 1..=9 {
        n.run(h, Vec::new());
    }
    let set = validators::active_set(&n.state, 1).unwrap().unwrap();
    assert!(set.carried_over);
    assert_eq!(n.members(1), Some(genesis));
}

/// A notarize by participant `signer` for view `view`, proposing `payload`.
fn notarize(n: &Net, signer: usize, epoch: u64, view: u64, payload: &[u8]) -> Notarize<S, D> {
    let round = Round::new(Epoch::new(epoch), View::new(view));
    let proposal = Proposal::new(round, View::new(view - 1), Sha256::hash(&[payload]));
    Notarize::sign(&n.signers[signer], proposal).expect("a signer signs")
}

fn evidence(a: Notarize<S, D>, b: Notarize<S, D>) -> Vec<u8> {
    let codec = ConflictingNotarize::new(a, b).encode();
    validators::encode_evidence(EvidenceKind::ConflictingNotarize, &codec)
}

#[test]
fn equivocation_evidence_slashes_tombstones_and_is_recorded_once() {
    let reporter = key(1);
    let mut n = net(4, &[&reporter], params(), true);
    let keys = n.validators.clone();
    let mut txs = Vec::new();
    for k in &keys {
        txs.extend(bond_and_register(&mut n, k, 100 * POI, 100 * POI));
    }
    assert!(n.run(1, txs).iter().all(|c| c == "ok"));
    let offender = &keys[2];
    let before = n.bonded(offender);
    // A conflicting notarize convicts only the view's leader: pick a view validator 2 leads.
    let index = u64::from(notarize(&n, 2, 0, 1, b"a").attestation.signer.get());
    let view = 4 + index;
    let other = 4 + (index + 1) % 4;

    // Forgeries first: none may change state.
    let snapshot = n.snapshot();
    let mut forged = notarize(&n, 3, 0, view, b"b");
    forged.attestation = Attestation {
        signer: notarize(&n, 2, 0, view, b"a").attestation.signer,
        ..forged.attestation
    };
    let forged = evidence(notarize(&n, 2, 0, view, b"a"), forged);
    let same = notarize(&n, 2, 0, view, b"a");
    let twice = validators::encode_evidence(
        EvidenceKind::ConflictingNotarize,
        &[same.encode(), same.encode()].concat(),
    );
    let later_epoch = evidence(
        notarize(&n, 2, 1, view, b"a"),
        notarize(&n, 2, 1, view, b"b"),
    );
    let not_leader = evidence(
        notarize(&n, 2, 0, other, b"a"),
        notarize(&n, 2, 0, other, b"b"),
    );
    let txs = vec![
        n.val(&reporter, ValidatorsMsg::Evidence { bytes: not_leader }),
        n.val(&reporter, ValidatorsMsg::Evidence { bytes: forged }),
        n.val(&reporter, ValidatorsMsg::Evidence { bytes: twice }),
        n.val(&reporter, ValidatorsMsg::Evidence { bytes: later_epoch }),
        n.val(
            &reporter,
            ValidatorsMsg::Evidence {
                bytes: vec![9, 1, 2],
            },
        ),
    ];
    let codes = n.run(2, txs);
    assert_eq!(
        codes,
        [
            "evidence_not_slashable",
            "invalid_evidence",
            "malformed_evidence",
            "evidence_wrong_epoch",
            "malformed_evidence"
        ]
    );
    assert_eq!(n.snapshot(), snapshot, "refused evidence changes nothing");

    let bytes = evidence(
        notarize(&n, 2, 0, view, b"a"),
        notarize(&n, 2, 0, view, b"b"),
    );
    let swapped = evidence(
        notarize(&n, 2, 0, view, b"b"),
        notarize(&n, 2, 0, view, b"a"),
    );
    let burned_before = supply_burned(&n);
    let balance = |n: &Net, who: &SigningKey| {
        poi_core::bank::account(&n.state, &addr(who))
            .unwrap()
            .map_or(0, |a| a.balance)
    };
    let reporter_before = balance(&n, &reporter);
    let supply_before = supply::read(&n.state, 0).unwrap();
    let txs = vec![
        n.val(
            &reporter,
            ValidatorsMsg::Evidence {
                bytes: bytes.clone(),
            },
        ),
        n.val(
            &reporter,
            ValidatorsMsg::Evidence {
                bytes: bytes.clone(),
            },
        ),
        n.val(&reporter, ValidatorsMsg::Evidence { bytes: swapped }),
    ];
    assert_eq!(
        n.run(3, txs),
        ["ok", "duplicate_evidence", "duplicate_evidence"]
    );
    let slash = before * 500 / 10_000;
    assert_eq!(n.bonded(offender), before - slash);
    // The submitter gets floor(10%) of the slash, the rest is burned; fees always stick.
    let reward = slash * 1_000 / 10_000;
    assert!(reward > 0);
    assert_eq!(supply_burned(&n) - burned_before, slash - reward);
    assert_eq!(balance(&n, &reporter), reporter_before - 3 * FEE + reward);
    let supply_after = supply::read(&n.state, 0).unwrap();
    assert_eq!(
        supply_after.total,
        supply_after.genesis + supply_after.minted - supply_after.burned
    );
    // Nothing minted for the reward: minted is unchanged, and the audit after every block
    // (held == genesis + minted - burned) holds with the reward in the reporter's account.
    assert_eq!(supply_after.minted, supply_before.minted);
    let record = n.candidate(offender);
    assert_eq!(
        (record.tombstoned_at, record.evidence, record.slashed),
        (Some(3), 1, slash)
    );
    let stored: validators::EvidenceRecord =
        poi_core::state::read_borsh(&n.state, &validators::evidence::evidence_key(&bytes))
            .unwrap()
            .expect("evidence kept on chain");
    assert_eq!(
        (stored.offender, stored.view, stored.slashed),
        (addr(offender), view, slash)
    );
    assert_eq!(stored.bytes, bytes);

    // A tombstoned validator is in no later set and cannot register again.
    let again = n.val(offender, ValidatorsMsg::Register { self_bond: POI });
    assert_eq!(n.run(4, vec![again]), ["validator_tombstoned"]);
    for h in 5..=9 {
        n.run(h, Vec::new());
    }
    let members = n.members(1).unwrap();
    assert_eq!(members.len(), 3);
    assert!(!members.contains(&addr(offender)));
    let status = validators::status_all(&n.state, &n_params(), 10).unwrap();
    let s = status.iter().find(|s| s.address == addr(offender)).unwrap();
    assert!(s.tombstoned && s.seats == 0 && s.evidence == 1);
}

#[test]
fn conflicting_finalizes_convict_nullify_finalize_never_and_both_need_the_polynomial() {
    let reporter = key(1);
    let mut n = net(4, &[&reporter], params(), true);
    let round = Round::new(Epoch::new(0), View::new(8));
    let proposal = Proposal::new(round, View::new(7), Sha256::hash(&[b"block"]));
    let other = Proposal::new(round, View::new(7), Sha256::hash(&[b"other"]));
    let nullify = Nullify::sign::<D>(&n.signers[0], round).expect("signs");
    let finalize = Finalize::<S, D>::sign(&n.signers[0], proposal.clone()).expect("signs");
    let codec = NullifyFinalize::new(nullify, finalize.clone()).encode();
    let nullify_finalize = validators::encode_evidence(EvidenceKind::NullifyFinalize, &codec);
    let second = Finalize::<S, D>::sign(&n.signers[0], other).expect("signs");
    let codec = ConflictingFinalize::new(finalize, second).encode();
    let bytes = validators::encode_evidence(EvidenceKind::ConflictingFinalize, &codec);
    let snapshot = n.snapshot();
    let tx = n.val(
        &reporter,
        ValidatorsMsg::Evidence {
            bytes: nullify_finalize,
        },
    );
    assert_eq!(n.run(1, vec![tx]), ["evidence_not_slashable"]);
    assert_eq!(n.snapshot(), snapshot, "refused evidence changes nothing");
    let tx = n.val(
        &reporter,
        ValidatorsMsg::Evidence {
            bytes: bytes.clone(),
        },
    );
    assert_eq!(n.run(2, vec![tx]), ["ok"]);
    let offender = n.validators[0].clone();
    assert_eq!(n.candidate(&offender).tombstoned_at, Some(2));

    // The same evidence on a chain whose genesis has no polynomial cannot be verified.
    let mut bare = net(4, &[&reporter], params(), false);
    let tx = bare.val(&reporter, ValidatorsMsg::Evidence { bytes });
    assert_eq!(bare.run(1, vec![tx]), ["evidence_unverifiable"]);
}

#[test]
fn genesis_refuses_a_polynomial_of_another_group() {
    let mut keys: Vec<SigningKey> = (0..4).map(|i| key(201 + i)).collect();
    keys.sort_by_key(addr);
    let (ours, _, _) = deal(&keys);
    let (theirs, _, _) = deal(&keys[..3]);
    let mut beacon = ours.unwrap();
    let genesis = |beacon: GenesisBeacon| Genesis {
        chain_id: CHAIN.into(),
        genesis_time_ms: 0,
        validators: keys.iter().map(addr).collect(),
        params: params(),
        accounts: Vec::new(),
        beacon: Some(beacon),
        models: Vec::new(),
        data: Vec::new(),
    };
    assert!(genesis(beacon.clone()).validate().is_ok());
    beacon.polynomial = theirs.unwrap().polynomial;
    assert!(matches!(
        genesis(beacon.clone()).validate(),
        Err(poi_core::genesis::GenesisError::Beacon(_))
    ));
    beacon.polynomial = "zz".into();
    assert!(genesis(beacon).validate().is_err());
}

fn n_params() -> Params {
    params()
}

pub(crate) fn supply_burned(n: &Net) -> u128 {
    supply::read(&n.state, 0)
        .unwrap()
        .burned_by_reason
        .get("validator_slash")
        .copied()
        .unwrap_or(0)
}

#[test]
fn skipped_leader_views_jail_after_the_threshold_and_unjail_after_the_jail() {
    let mut p = params();
    p.validators.missed_views_max = 3;
    p.validators.jail_blocks = 20;
    let mut n = net(4, &[], p.clone(), false);
    let keys = n.validators.clone();
    let mut txs = Vec::new();
    for k in &keys {
        txs.extend(bond_and_register(&mut n, k, 100 * POI, 100 * POI));
    }
    // Views 2, 3, 4, 6, 7, 8, 10: views 1, 5 and 9 are skipped, all led by participant 1.
    assert!(n.run_view(1, 2, txs).0.iter().all(|c| c == "ok"));
    let lazy = &keys[1];
    for (height, view) in [(2, 3), (3, 4), (4, 6), (5, 7), (6, 8)] {
        n.run_view(height, view, Vec::new());
    }
    assert_eq!(
        (n.candidate(lazy).missed, n.candidate(lazy).jailed),
        (2, false)
    );
    let bonded = n.bonded(lazy);
    n.run_view(7, 10, Vec::new());
    let record = n.candidate(lazy);
    assert_eq!(
        (record.missed, record.jailed, record.jailed_until),
        (3, true, 27)
    );
    assert_eq!(n.bonded(lazy), bonded - bonded * 10 / 10_000);
    for other in [&keys[0], &keys[2], &keys[3]] {
        assert_eq!(n.candidate(other).missed, 0);
    }
    let early = n.val(lazy, ValidatorsMsg::Unjail);
    assert_eq!(n.run_view(8, 11, vec![early]).0, ["validator_still_jailed"]);
    n.run_view(9, 12, Vec::new());
    let members = n.members(1).unwrap();
    assert!(
        !members.contains(&addr(lazy)) && members.len() == 3,
        "jailed: out of the next set"
    );
    for h in 10..27 {
        n.run_view(h, h + 3, Vec::new());
    }
    let on_time = n.val(lazy, ValidatorsMsg::Unjail);
    let not_jailed = n.val(&keys[0], ValidatorsMsg::Unjail);
    assert_eq!(
        n.run_view(27, 30, vec![on_time, not_jailed]).0,
        ["ok", "validator_not_jailed"]
    );
    n.run_view(28, 31, Vec::new());
    n.run_view(29, 32, Vec::new());
    assert!(
        n.members(3).unwrap().contains(&addr(lazy)),
        "unjailed: back at the next boundary"
    );
}

#[test]
fn the_leader_formula_is_commonwares_round_robin() {
    let keys: Vec<SigningKey> = (0..7).map(|i| key(50 + i * 13)).collect();
    let set = participants(&{
        let mut k = keys.clone();
        k.sort_by_key(addr);
        k
    });
    let mut sorted: Vec<Address> = keys.iter().map(addr).collect();
    sorted.sort();
    // commonware orders ed25519 keys as the chain orders addresses: by bytes.
    for (i, pk) in set.iter().enumerate() {
        assert_eq!(pk.as_ref(), sorted[i].as_bytes().as_slice());
    }
    let elector = <RoundRobin<Sha256> as commonware_consensus::simplex::elector::Config<S>>::build(
        RoundRobin::<Sha256>::default(),
        &set,
    );
    for epoch in 0..4u64 {
        for view in 0..60u64 {
            let got = elector.elect(Round::new(Epoch::new(epoch), View::new(view)), ());
            assert_eq!(
                u64::from(got.get()),
                liveness::leader_index(epoch, view, 7),
                "{epoch}/{view}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The evidence reward is the floor of its share and reward + burn is the whole slash.
    #[test]
    fn the_evidence_reward_split_conserves_the_slash(
        slashed in any::<u128>(),
        small in 0u128..1_000_000_000_000,
        bps in 0u16..=10_000,
    ) {
        for amount in [slashed / 10_000, small] {
            let (reward, burned) = validators::evidence_reward_split(amount, bps).unwrap();
            prop_assert_eq!(reward + burned, amount);
            prop_assert_eq!(reward, amount * u128::from(bps) / 10_000);
        }
        // A product past u128 is an overflow error, not a wrong amount.
        if slashed.checked_mul(u128::from(bps)).is_none() {
            prop_assert!(validators::evidence_reward_split(slashed, bps).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The computed set is the top `set_size_max` eligible candidates by (stake desc, address
    /// asc), and supply is conserved (the audit after every block) through downtime slashes.
    #[test]
    fn the_set_is_the_deterministic_top_n(
        bonds in prop::collection::vec((1u128..50, 0u128..3, any::<bool>()), 7),
        size_max in 4u32..8,
        jumps in prop::collection::vec(1u64..4, 8),
    ) {
        let mut p = params();
        p.validators.set_size_max = size_max;
        p.validators.missed_views_max = 2;
        let users: Vec<SigningKey> = (0..3).map(|i| key(10 + i)).collect();
        let mut n = net(4, &users.iter().collect::<Vec<_>>(), p, false);
        // Four genesis validators (who lead views and can be jailed) and three newcomers.
        let keys: Vec<SigningKey> = n.validators.iter().chain(&users).cloned().collect();
        let mut txs = Vec::new();
        for (k, (bond, collateral, register)) in keys.iter().zip(&bonds) {
            txs.push(n.stake(k, StakingMsg::Bond { amount: bond * POI }));
            if *register {
                txs.push(n.val(k, ValidatorsMsg::Register { self_bond: collateral * POI + 1 }));
            }
        }
        n.run(1, txs);
        let mut view = 1;
        for (h, jump) in (2..=9).zip(&jumps) {
            view += jump;
            n.run_view(h, view, Vec::new());
        }
        let mut expected = Vec::new();
        let mut slashed = 0;
        for (k, (bond, collateral, register)) in keys.iter().zip(&bonds) {
            let c = validators::candidate(&n.state, &addr(k)).unwrap().unwrap_or_default();
            slashed += c.slashed;
            let self_bond = collateral * POI + 1;
            // Registered: at least the minimum, and backed by free bonded stake.
            let registered = *register && self_bond >= POI && self_bond <= bond * POI;
            if registered && !c.jailed {
                expected.push((n.bonded(k), addr(k)));
            }
        }
        let total = supply::read(&n.state, 0).unwrap();
        prop_assert_eq!(total.total, total.genesis - total.burned);
        prop_assert_eq!(supply_burned(&n), slashed);
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        expected.truncate(size_max as usize);
        let want: Vec<Address> = expected.iter().map(|e| e.1).collect();
        let got = n.members(1).unwrap();
        if want.is_empty() {
            prop_assert_eq!(got, n.members(0).unwrap());
        } else {
            prop_assert_eq!(got, want);
        }
    }
}
