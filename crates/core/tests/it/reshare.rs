//! Resharing the consensus key to a new set: the chain opens a round when the elected set
//! differs from the signers, takes the dealers' signed logs as transactions, and records a new
//! signer generation with the same group identity (or keeps the old one when too few logs).
//! The tests play dealers and players in-process with commonware's feldman_desmedt API.

use std::collections::BTreeMap;

use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::types::{ConflictingNotarize, Notarize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{Dealer, Info, Player, Reveal};
use commonware_cryptography::bls12381::primitives::{
    group::Share,
    ops,
    sharing::{Mode as ShareMode, Sharing},
    variant::MinSig,
};
use commonware_cryptography::{Hasher as _, Sha256, Signer as _, ed25519};
use commonware_utils::{N3f1, ordered::Set};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::tx::Tx;
use poi_core::validators::reshare::{self, RoundStatus};
use poi_core::validators::{self, EvidenceKind, ValidatorsMsg, liveness};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

use crate::chain::{addr, key};
use crate::validators::{D, EPOCH, FEE, Net, S, bond_and_register, namespace, net, params};
use poi_core::token::BASE_UNITS_PER_POI as POI;

/// The commonware signer of a test key.
fn private(k: &SigningKey) -> ed25519::PrivateKey {
    ed25519::PrivateKey::decode(k.to_bytes().to_vec()).expect("32-byte seed")
}

fn public(k: &SigningKey) -> ed25519::PublicKey {
    private(k).public_key()
}

/// A 4-validator chain with a dealt beacon, `set_size_max` 4; at height 1 every genesis
/// validator registers 100 POI and a newcomer (key 5) 200 POI, so the set of epoch 1 is the
/// newcomer and the three genesis validators with the lowest addresses: round 1 opens at
/// height 9 (the last block of epoch 0).
struct Fixture {
    n: Net,
    newcomer: SigningKey,
    /// Current shares by holder.
    shares: BTreeMap<Address, Share>,
    /// Keys by address (genesis validators and the newcomer).
    keys: BTreeMap<Address, SigningKey>,
}

fn fixture() -> Fixture {
    fixture_of(4)
}

/// [`fixture`] with another `set_size_max` (5: the set of epoch 1 is all five).
fn fixture_of(size_max: u32) -> Fixture {
    let newcomer = key(5);
    let mut p = params();
    p.validators.set_size_max = size_max;
    let mut n = net(4, &[&newcomer], p, true);
    let genesis = n.validators.clone();
    let mut txs = Vec::new();
    for k in &genesis {
        txs.extend(bond_and_register(&mut n, k, 100 * POI, 100 * POI));
    }
    txs.extend(bond_and_register(&mut n, &newcomer, 200 * POI, 200 * POI));
    assert!(n.run(1, txs).iter().all(|c| c == "ok"));
    let shares = genesis
        .iter()
        .zip(&n.shares)
        .map(|(k, s)| (addr(k), s.clone()))
        .collect();
    let mut keys: BTreeMap<Address, SigningKey> =
        genesis.iter().map(|k| (addr(k), k.clone())).collect();
    keys.insert(addr(&newcomer), newcomer.clone());
    let mut f = Fixture {
        n,
        newcomer,
        shares,
        keys,
    };
    for h in 2..EPOCH - 1 {
        f.n.run(h, Vec::new());
    }
    assert_eq!(reshare::open_round(&f.n.state).unwrap(), None);
    let (_, out) = f.n.run_view(EPOCH - 1, EPOCH - 1, Vec::new());
    assert!(out.block_events.iter().any(|e| e.kind == "reshare_open"));
    f
}

/// What dealers and players produce for a round: each dealer's encoded signed log, and each
/// player's state machine (to finalize after the round closes).
struct Played {
    logs: BTreeMap<Address, Vec<u8>>,
    players: Vec<(Address, Player<MinSig, ed25519::PrivateKey>)>,
}

/// Plays round `r` in-process: every dealer deals to every player, every player acks.
fn play(f: &Fixture, info: &Info<MinSig, ed25519::PublicKey>, r: u64) -> Played {
    let record = reshare::round(&f.n.state, r).unwrap().expect("round");
    let mut players: Vec<(Address, Player<MinSig, ed25519::PrivateKey>)> = record
        .players
        .iter()
        .map(|a| {
            let k = &f.keys[a];
            (*a, Player::new(info.clone(), private(k)).expect("a player"))
        })
        .collect();
    let mut logs = BTreeMap::new();
    for (i, d) in record.dealers.iter().enumerate() {
        let k = &f.keys[d];
        let rng = ChaCha20Rng::from_seed([i as u8 + 40; 32]);
        let share = f.shares.get(d).cloned();
        let (mut dealer, pub_msg, priv_msgs) =
            Dealer::start::<N3f1>(rng, info.clone(), private(k), share).expect("a dealer");
        for (pk, priv_msg) in priv_msgs {
            let (_, player) = players
                .iter_mut()
                .find(|(a, _)| a.as_bytes().as_slice() == pk.as_ref())
                .expect("a player");
            let ack = player
                .dealer_message::<N3f1>(public(k), pub_msg.clone(), priv_msg)
                .expect("a valid dealing")
                .expect("a first message");
            dealer.receive_player_ack(pk, ack).expect("a valid ack");
        }
        logs.insert(*d, dealer.finalize::<N3f1>().encode().to_vec());
    }
    Played { logs, players }
}

impl Fixture {
    fn log_tx(&mut self, from: &Address, r: u64, log: Vec<u8>) -> Tx {
        let k = self.keys[from].clone();
        let msg = poi_core::tx::Msg::Validators(ValidatorsMsg::ReshareLog { round: r, log });
        // Fees grow with size; a log of 4 players is about 1 KB.
        self.n.tx_with_fee(&k, msg, 100 * FEE)
    }

    /// Runs empty blocks from `from` to `to` inclusive; returns the events of the last.
    fn run_to(&mut self, from: u64, to: u64) -> Vec<String> {
        let mut kinds = Vec::new();
        for h in from..=to {
            let (_, out) = self.n.run_view(h, h, Vec::new());
            kinds = out
                .block_events
                .iter()
                .map(|e| e.kind.to_string())
                .collect();
        }
        kinds
    }

    fn identity(&self, g: u64) -> [u8; 96] {
        let record = reshare::generation(&self.n.state, g)
            .unwrap()
            .expect("generation");
        reshare::identity(&record).expect("an identity")
    }
}

fn sorted_new_set(f: &Fixture) -> Vec<Address> {
    let mut members = f.n.members(1).expect("the set of epoch 1");
    members.sort();
    members
}

#[test]
fn a_reshare_moves_the_key_to_the_new_set_with_the_same_identity() {
    let mut f = fixture();
    let round = reshare::open_round(&f.n.state).unwrap().expect("open");
    let genesis: Vec<Address> = {
        let mut g: Vec<Address> = f.n.validators.iter().map(addr).collect();
        g.sort();
        g
    };
    assert_eq!(
        (round.round, round.epoch, round.generation),
        (1, 1, 0),
        "round e + 1 of epoch e + 1, dealt by generation 0"
    );
    assert_eq!(round.dealers, genesis);
    assert_eq!(round.players, sorted_new_set(&f));
    assert!(round.players.contains(&addr(&f.newcomer)));
    let info = reshare::round_info(&f.n.state, 1).expect("info");
    let played = play(&f, &info, 1);
    let sizes: Vec<usize> = played.logs.values().map(Vec::len).collect();
    println!("signed dealer log, 4 dealers -> 4 players: {sizes:?} bytes");
    let txs: Vec<Tx> = played
        .logs
        .clone()
        .into_iter()
        .map(|(d, log)| f.log_tx(&d, 1, log))
        .collect();
    assert_eq!(f.n.run(12, txs), ["ok"; 4]);
    assert_eq!(reshare::round(&f.n.state, 1).unwrap().unwrap().logs, 4);
    let summary = reshare::summary(&f.n.state).unwrap().unwrap();
    assert_eq!(
        (
            summary.generation,
            summary.open_round,
            summary.open_round_logs
        ),
        (0, Some(1), 4)
    );
    assert_eq!(reshare::round_logs(&f.n.state, 1).unwrap().len(), 4);
    f.run_to(13, 2 * EPOCH - 2);
    assert_eq!(reshare::current_generation_number(&f.n.state).unwrap(), 0);

    let start = std::time::Instant::now();
    let (_, out) = f.n.run_view(2 * EPOCH - 1, 2 * EPOCH - 1, Vec::new());
    println!(
        "closing block (observe over 4 logs, 4 -> 4) executed in {:?}",
        start.elapsed()
    );
    assert!(out.block_events.iter().any(|e| e.kind == "generation"));
    let g1 = reshare::current_generation(&f.n.state)
        .unwrap()
        .expect("gen 1");
    assert_eq!((g1.generation, g1.first_epoch, g1.round), (1, 2, Some(1)));
    assert_eq!(g1.participants, round.players);
    assert_eq!(f.identity(1), f.identity(0), "the group identity is kept");
    let closed = reshare::round(&f.n.state, 1).unwrap().unwrap();
    assert_eq!(closed.status, RoundStatus::Succeeded { generation: 1 });
    assert_eq!(
        reshare::open_round(&f.n.state).unwrap(),
        None,
        "set = signers now"
    );

    // Every player's own finalize agrees with the chain's polynomial.
    let sharing: Sharing<MinSig> =
        reshare::decode_sharing(&g1.polynomial, g1.participants.len()).unwrap();
    let logs = reshare::round_checked_logs(&f.n.state, 1).unwrap();
    let mut new_shares = Vec::new();
    for (i, (a, player)) in played.players.into_iter().enumerate() {
        let mut rng = ChaCha20Rng::from_seed([i as u8 + 90; 32]);
        let (output, share) = player
            .finalize::<N3f1>(&mut rng, logs.clone(), &commonware_parallel::Sequential)
            .expect("a share");
        assert_eq!(output.public(), &sharing);
        assert_eq!(output.encode().to_vec(), g1.output);
        new_shares.push((a, share));
    }

    // A quorum (3) of the new shares signs under the original identity; 2 cannot.
    let ns = b"poi-test-reshare-check";
    let msg = b"same group, new holders";
    let partials: Vec<_> = new_shares
        .iter()
        .skip(1)
        .map(|(_, s)| ops::threshold::sign_message::<MinSig>(s, ns, msg))
        .collect();
    for p in &partials {
        ops::threshold::verify_message::<MinSig>(&sharing, ns, msg, p).expect("a valid partial");
    }
    let recovered =
        ops::threshold::recover::<MinSig, _>(&sharing, &partials, &commonware_parallel::Sequential)
            .expect("a quorum recovers");
    let zero = reshare::generation(&f.n.state, 0).unwrap().unwrap();
    let genesis_sharing = reshare::decode_sharing(&zero.polynomial, 4).unwrap();
    ops::verify_message::<MinSig>(genesis_sharing.public(), ns, msg, &recovered)
        .expect("verifies under the genesis identity");
    assert!(
        ops::threshold::recover::<MinSig, _>(
            &sharing,
            &partials[..2],
            &commonware_parallel::Sequential
        )
        .is_err(),
        "below the quorum nothing recovers"
    );

    // Evidence names its generation: epoch 1 verifies against generation 1.
    let players = Set::try_from(
        g1.participants
            .iter()
            .map(|a| ed25519::PublicKey::decode(a.as_bytes().to_vec()).unwrap())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let signers: Vec<S> = new_shares
        .iter()
        .map(|(_, s)| S::signer(&namespace(), players.clone(), sharing.clone(), s.clone()).unwrap())
        .collect();
    // The leader of (epoch 1, view v) is participant (1 + v) mod 4; pick v so it is player 2.
    let view = 5;
    assert_eq!(liveness::leader_index(1, view, 4), 2);
    let vote = |s: &S, epoch: u64, payload: &[u8]| {
        let round = Round::new(Epoch::new(epoch), View::new(view));
        let proposal = Proposal::new(round, View::new(view - 1), Sha256::hash(&[payload]));
        Notarize::<S, D>::sign(s, proposal).expect("signs")
    };
    let evidence = |a, b| {
        let codec = ConflictingNotarize::<S, D>::new(a, b).encode();
        validators::encode_evidence(EvidenceKind::ConflictingNotarize, &codec)
    };
    let gen1 = evidence(vote(&signers[2], 1, b"a"), vote(&signers[2], 1, b"b"));
    let unknown = evidence(vote(&signers[2], 2, b"a"), vote(&signers[2], 2, b"b"));
    // Genesis shares cannot sign for generation 1 (the old share of index 2 is not a point of
    // the new polynomial).
    let old = evidence(
        vote(&f.n.signers[2], 1, b"a"),
        vote(&f.n.signers[2], 1, b"b"),
    );
    let reporter = f.n.validators[0].clone();
    let snapshot = f.n.snapshot();
    let txs = vec![
        f.n.val(&reporter, ValidatorsMsg::Evidence { bytes: unknown }),
        f.n.val(&reporter, ValidatorsMsg::Evidence { bytes: old }),
    ];
    assert_eq!(
        f.n.run(2 * EPOCH, txs),
        ["evidence_wrong_epoch", "invalid_evidence"]
    );
    assert_eq!(f.n.snapshot(), snapshot, "refused evidence changes nothing");
    let tx = f.n.val(&reporter, ValidatorsMsg::Evidence { bytes: gen1 });
    assert_eq!(f.n.run(2 * EPOCH + 1, vec![tx]), ["ok"]);
    let offender = validators::candidate(&f.n.state, &g1.participants[2])
        .unwrap()
        .unwrap();
    assert_eq!(offender.tombstoned_at, Some(2 * EPOCH + 1));

    // Liveness charges the leader of a skipped view by generation 1's formula: generation 1's
    // engine counts views from its floor block, whose chain view is `view_offset`, so chain
    // view v is led by participant (1 + v - view_offset) mod 4 (generation 0's formula,
    // v mod 4, names another one here).
    let h = 2 * EPOCH + 2;
    let skipped = h;
    let leader = ((1 + skipped - g1.view_offset) % 4) as usize;
    assert_ne!(
        leader,
        (skipped % 4) as usize,
        "the formulas must differ here"
    );
    f.n.run_view(h, h + 1, Vec::new());
    for (i, a) in g1.participants.iter().enumerate() {
        let missed = validators::candidate(&f.n.state, a)
            .unwrap()
            .unwrap()
            .missed;
        assert_eq!(missed, u32::from(i == leader), "participant {i}");
    }
}

#[test]
fn a_reshare_to_a_larger_set_keeps_the_identity() {
    let mut f = fixture_of(5);
    let round = reshare::open_round(&f.n.state).unwrap().expect("open");
    assert_eq!((round.dealers.len(), round.players.len()), (4, 5));
    let info = reshare::round_info(&f.n.state, 1).unwrap();
    let played = play(&f, &info, 1);
    let txs: Vec<Tx> = played
        .logs
        .into_iter()
        .map(|(d, log)| f.log_tx(&d, 1, log))
        .collect();
    assert_eq!(f.n.run(10, txs), ["ok"; 4]);
    f.run_to(11, 2 * EPOCH - 2);
    let start = std::time::Instant::now();
    let outcome = reshare::observe_round(&f.n.state, 1).unwrap();
    println!("observe over 4 logs, 4 -> 5: {:?}", start.elapsed());
    assert!(outcome.is_ok());
    f.run_to(2 * EPOCH - 1, 2 * EPOCH - 1);
    let g1 = reshare::current_generation(&f.n.state).unwrap().unwrap();
    assert_eq!(g1.participants.len(), 5);
    let sharing = reshare::decode_sharing(&g1.polynomial, 5).unwrap();
    assert_eq!((sharing.total().get(), sharing.required()), (5, 4));
    assert_eq!(f.identity(1), f.identity(0));
    let summary = reshare::summary(&f.n.state).unwrap().expect("a summary");
    assert_eq!(
        (summary.generation, summary.first_epoch, summary.open_round),
        (1, 2, None)
    );
    assert_eq!(summary.participants, g1.participants);
}

#[test]
fn too_few_logs_keep_the_generation_and_a_later_round_has_a_new_number() {
    let mut f = fixture();
    let info = reshare::round_info(&f.n.state, 1).unwrap();
    let played = play(&f, &info, 1);
    // The round needs max(dealer quorum, previous quorum) = 3 logs; post 2.
    let txs: Vec<Tx> = played
        .logs
        .clone()
        .into_iter()
        .take(2)
        .map(|(d, log)| f.log_tx(&d, 1, log))
        .collect();
    assert_eq!(f.n.run(11, txs), ["ok"; 2]);
    f.run_to(12, 2 * EPOCH - 2);
    let (_, out) = f.n.run_view(2 * EPOCH - 1, 2 * EPOCH - 1, Vec::new());
    let failed = out
        .block_events
        .iter()
        .find(|e| e.kind == "reshare_failed")
        .expect("a failure event");
    println!("failure event: {failed:?}");
    assert_eq!(
        reshare::round(&f.n.state, 1).unwrap().unwrap().status,
        RoundStatus::Failed {
            required: 3,
            found: 2
        }
    );
    assert_eq!(reshare::current_generation_number(&f.n.state).unwrap(), 0);
    assert_eq!(reshare::generation(&f.n.state, 1).unwrap(), None);
    // The same boundary opens round 2 (the set still differs from the signers).
    let next = reshare::open_round(&f.n.state).unwrap().expect("round 2");
    assert_eq!((next.round, next.epoch, next.generation), (2, 2, 0));
    assert!(out.block_events.iter().any(|e| e.kind == "reshare_open"));
    // Logs of the closed round, even valid ones, are refused; round 1's logs do not verify
    // for round 2 (the round number is in the signed transcript).
    let (d, log) = played.logs.into_iter().nth(2).unwrap();
    let snapshot = f.n.snapshot();
    let txs = vec![f.log_tx(&d, 1, log.clone()), f.log_tx(&d, 2, log)];
    assert_eq!(
        f.n.run(2 * EPOCH, txs),
        ["reshare_round_closed", "invalid_reshare_log"]
    );
    assert_eq!(f.n.snapshot(), snapshot);
    // Round 2 then succeeds with every log.
    let info = reshare::round_info(&f.n.state, 2).unwrap();
    let played = play(&f, &info, 2);
    let txs: Vec<Tx> = played
        .logs
        .into_iter()
        .map(|(d, log)| f.log_tx(&d, 2, log))
        .collect();
    assert_eq!(f.n.run(2 * EPOCH + 1, txs), ["ok"; 4]);
    f.run_to(2 * EPOCH + 2, 3 * EPOCH - 1);
    let g1 = reshare::current_generation(&f.n.state).unwrap().unwrap();
    assert_eq!((g1.generation, g1.round, g1.first_epoch), (1, Some(2), 3));
    assert_eq!(f.identity(1), f.identity(0));
}

#[test]
fn bad_reshare_logs_are_refused_and_change_nothing() {
    let mut f = fixture();
    let info = reshare::round_info(&f.n.state, 1).unwrap();
    let played = play(&f, &info, 1);
    let dealers: Vec<Address> = played.logs.keys().copied().collect();
    let (a, b) = (dealers[0], dealers[1]);
    let valid = played.logs[&a].clone();

    // A log signed for another round (same dealers, players and previous output).
    let zero = reshare::generation(&f.n.state, 0).unwrap().unwrap();
    let previous = reshare::decode_output(&zero.output, 4).unwrap();
    let round = reshare::round(&f.n.state, 1).unwrap().unwrap();
    let keyset = |v: &[Address]| {
        Set::try_from(
            v.iter()
                .map(|x| ed25519::PublicKey::decode(x.as_bytes().to_vec()).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let ns = reshare::reshare_namespace(&f.n.state).unwrap();
    let other = Info::<MinSig, ed25519::PublicKey>::new::<N3f1>(
        &ns,
        7,
        Some(previous),
        ShareMode::NonZeroCounter,
        Reveal::V1,
        keyset(&round.dealers),
        keyset(&round.players),
    )
    .unwrap();
    let (dealer, _, _) = Dealer::start::<N3f1>(
        ChaCha20Rng::from_seed([3; 32]),
        other,
        private(&f.keys[&a]),
        Some(f.shares[&a].clone()),
    )
    .unwrap();
    let wrong_round = dealer.finalize::<N3f1>().encode().to_vec();

    // A log whose dealer field (the codec's first 32 bytes) names a non-dealer.
    let mut not_dealer = valid.clone();
    not_dealer[..32].copy_from_slice(addr(&f.newcomer).as_bytes());
    let mut truncated = valid.clone();
    truncated.pop();
    let mut trailing = valid.clone();
    trailing.push(0);

    let snapshot = f.n.snapshot();
    let txs = vec![
        f.log_tx(&a, 99, valid.clone()),
        f.log_tx(&a, 1, vec![1, 2, 3]),
        f.log_tx(&a, 1, truncated),
        f.log_tx(&a, 1, trailing),
        f.log_tx(&a, 1, wrong_round),
        f.log_tx(&a, 1, not_dealer),
        f.log_tx(&b, 1, valid.clone()),
    ];
    assert_eq!(
        f.n.run(11, txs),
        [
            "unknown_reshare_round",
            "malformed_reshare_log",
            "malformed_reshare_log",
            "malformed_reshare_log",
            "invalid_reshare_log",
            "not_reshare_dealer",
            "reshare_log_not_own",
        ]
    );
    assert_eq!(f.n.snapshot(), snapshot, "refused logs change nothing");
    assert_eq!(reshare::round(&f.n.state, 1).unwrap().unwrap().logs, 0);

    // One log per dealer: the first is kept, a second (even the same) is refused.
    let txs = vec![f.log_tx(&a, 1, valid.clone()), f.log_tx(&a, 1, valid)];
    let (codes, out) = f.n.run_view(12, 12, txs);
    assert_eq!(codes, ["ok", "duplicate_reshare_log"]);
    assert_eq!(
        out.receipts
            .iter()
            .flat_map(|r| r.events.iter())
            .filter(|e| e.kind == "reshare_log")
            .count(),
        1
    );
    assert_eq!(reshare::round(&f.n.state, 1).unwrap().unwrap().logs, 1);
    let kept = reshare::round_logs(&f.n.state, 1).unwrap();
    assert_eq!(kept, vec![(a, played.logs[&a].clone())]);

    // A later second log of the same dealer (here: a fresh dealing) changes nothing either.
    let (dealer, _, _) = Dealer::start::<N3f1>(
        ChaCha20Rng::from_seed([4; 32]),
        info.clone(),
        private(&f.keys[&a]),
        Some(f.shares[&a].clone()),
    )
    .unwrap();
    let fresh = dealer.finalize::<N3f1>().encode().to_vec();
    let snapshot = f.n.snapshot();
    let tx = f.log_tx(&a, 1, fresh);
    assert_eq!(f.n.run(13, vec![tx]), ["duplicate_reshare_log"]);
    assert_eq!(f.n.snapshot(), snapshot);
}

#[test]
fn a_log_for_sixteen_players_fits_a_transaction() {
    // One dealer of a 16-validator generation dealing to 16 players, outside any chain.
    let keys: Vec<ed25519::PrivateKey> = (0..16u8).map(|i| private(&key(100 + i))).collect();
    let players: Set<ed25519::PublicKey> =
        Set::try_from(keys.iter().map(|k| k.public_key()).collect::<Vec<_>>()).unwrap();
    let (output, shares) =
        commonware_cryptography::bls12381::dkg::feldman_desmedt::deal::<MinSig, _, N3f1>(
            ChaCha20Rng::from_seed([1; 32]),
            ShareMode::NonZeroCounter,
            players.clone(),
        )
        .unwrap();
    let info = Info::<MinSig, ed25519::PublicKey>::new::<N3f1>(
        b"ns",
        1,
        Some(output),
        ShareMode::NonZeroCounter,
        Reveal::V1,
        players.clone(),
        players.clone(),
    )
    .unwrap();
    let me = &keys[0];
    let share = shares.get_value(&me.public_key()).unwrap().clone();
    let (mut dealer, pub_msg, msgs) = Dealer::start::<N3f1>(
        ChaCha20Rng::from_seed([2; 32]),
        info.clone(),
        me.clone(),
        Some(share),
    )
    .unwrap();
    for (pk, msg) in msgs {
        let k = keys.iter().find(|k| k.public_key() == pk).unwrap();
        let mut player = Player::new(info.clone(), k.clone()).unwrap();
        let ack = player
            .dealer_message::<N3f1>(me.public_key(), pub_msg.clone(), msg)
            .unwrap()
            .unwrap();
        dealer.receive_player_ack(pk, ack).unwrap();
    }
    let bytes = dealer.finalize::<N3f1>().encode().len();
    println!("signed dealer log, 16 players, all acks: {bytes} bytes");
    assert!(bytes + 512 < poi_core::limits::TX_BYTES_MAX as usize);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Whatever number of dealers post logs in each round, the generation advances exactly at
    /// the first round with at least the quorum (3) of logs, round numbers strictly increase,
    /// the identity never changes, and the audit holds after every block.
    #[test]
    fn rounds_advance_only_with_a_quorum_and_keep_the_identity(
        posted in prop::collection::vec(0usize..=4, 3),
    ) {
        let mut f = fixture();
        let identity = f.identity(0);
        let mut expected_generation = 0;
        let mut last_round = 0;
        for (i, count) in posted.iter().enumerate() {
            let epoch = i as u64 + 1;
            let Some(open) = reshare::open_round(&f.n.state).unwrap() else {
                prop_assert_eq!(expected_generation, 1);
                break;
            };
            prop_assert!(open.round > last_round);
            prop_assert_eq!(open.epoch, epoch);
            last_round = open.round;
            let info = reshare::round_info(&f.n.state, open.round).unwrap();
            let played = play(&f, &info, open.round);
            let txs: Vec<Tx> = played
                .logs
                .into_iter()
                .take(*count)
                .map(|(d, log)| f.log_tx(&d, open.round, log))
                .collect();
            let start = epoch * EPOCH;
            let codes = f.n.run(start, txs);
            prop_assert!(codes.iter().all(|c| c == "ok"));
            f.run_to(start + 1, start + EPOCH - 1);
            if *count >= 3 {
                expected_generation = 1;
            }
            prop_assert_eq!(
                reshare::current_generation_number(&f.n.state).unwrap(),
                expected_generation
            );
            prop_assert_eq!(f.identity(expected_generation), identity);
            if expected_generation == 1 {
                prop_assert_eq!(reshare::open_round(&f.n.state).unwrap(), None);
            }
        }
    }
}
