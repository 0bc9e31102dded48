//! Resharing the consensus key with [`Resharer`]s: four genesis validators and a newcomer run
//! one resharer each against a real in-process poi-core chain (blocks executed by hand, no
//! consensus). Their `Send`s are routed to each other's `on_message`, their `PostLog`s become
//! `ReshareLog` transactions in the next block, and the round runs to its close.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;

use commonware_codec::DecodeExt as _;
use commonware_cryptography::bls12381::primitives::{
    group::Share,
    ops,
    variant::{MinSig, Variant},
};
use ed25519_dalek::SigningKey;
use poi_core::Address;
use poi_core::block::BlockContext;
use poi_core::chain::{Chain, Mode};
use poi_core::event::TxOutcome;
use poi_core::genesis::{Genesis, GenesisAccount, GenesisBeacon};
use poi_core::params::Params;
use poi_core::staking::StakingMsg;
use poi_core::state::MemState;
use poi_core::token::BASE_UNITS_PER_POI as POI;
use poi_core::tx::{Msg, Tx, TxBody};
use poi_core::validators::ValidatorsMsg;
use poi_core::validators::reshare::{self, RoundStatus};
use poi_node::consensus::{BeaconKey, beacon};
use poi_node::reshare::{ReshareOutput, Resharer};

use crate::{CHAIN_ID, addr, key};

const EPOCH: u64 = 10;
const FEE: u128 = 10_000;
/// The round opens at the last block of epoch 0 and closes at the last block of epoch 1.
const OPEN: u64 = EPOCH - 1;
const CLOSE: u64 = 2 * EPOCH - 1;

/// A deterministic rng for the genesis dealing (blake3's output stream).
struct TestRng(blake3::OutputReader);

impl rand_core::TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for TestRng {}

fn empty_journal() -> Vec<u8> {
    [
        vec![1],
        0u64.to_be_bytes().to_vec(),
        0u32.to_be_bytes().to_vec(),
    ]
    .concat()
}

/// One validator: its key, resharer and what it persisted.
struct Node {
    key: SigningKey,
    /// Genesis share (`None` for the newcomer).
    genesis: Option<BeaconKey>,
    resharer: Resharer,
    /// The last journal persisted.
    journal: Vec<u8>,
    /// Every `Share` emitted: (generation, polynomial, share).
    shares: Vec<(u64, Vec<u8>, Vec<u8>)>,
    posts: usize,
}

impl Node {
    fn me(&self) -> [u8; 32] {
        addr(&self.key).0
    }

    /// Rebuilds the resharer as after a restart: from its seed, genesis share and journal.
    fn restart(&mut self) {
        let current = self.genesis.as_ref().map(|k| (0, k.share_bytes()));
        self.resharer =
            Resharer::new(self.key.to_bytes(), current, &self.journal).expect("a resharer");
    }
}

/// A message in flight: (from, to, bytes).
type Flight = ([u8; 32], [u8; 32], Vec<u8>);

struct Sim {
    chain: Chain,
    state: MemState,
    nonces: BTreeMap<Address, u64>,
    nodes: Vec<Node>,
    /// Transactions for the next block.
    pending: Vec<Tx>,
    queue: VecDeque<Flight>,
    /// While set, `Send`s are dropped (and kept here).
    dropping: bool,
    /// Dealers whose `PostLog`s are counted but whose transactions are lost.
    muted: Vec<[u8; 32]>,
    dropped: Vec<Flight>,
    height: u64,
    identity: [u8; 96],
}

impl Sim {
    /// Four genesis validators (keys 201..=204) with a dealt beacon and a newcomer (key 5),
    /// `set_size_max` 4; at height 1 the genesis validators bond 100 POI and the newcomer
    /// 200 POI, so the set of epoch 1 is the newcomer and the three genesis validators of
    /// lowest address. Runs to height `OPEN - 1`.
    fn new() -> Self {
        let mut keys: Vec<SigningKey> = (0..4).map(|i| key(201 + i)).collect();
        keys.sort_by_key(addr);
        let newcomer = key(5);
        let validators: Vec<[u8; 32]> = keys.iter().map(|k| addr(k).0).collect();
        let mut rng = blake3::Hasher::new();
        rng.update(b"reshare test dealing");
        let dealt = beacon::deal_with(TestRng(rng.finalize_xof()), &validators).expect("a dealing");
        let mut params = Params::default();
        params.rewards.epoch_blocks = EPOCH;
        params.validators.set_size_max = 4;
        let genesis = Genesis {
            chain_id: CHAIN_ID.into(),
            genesis_time_ms: 0,
            validators: keys.iter().map(addr).collect(),
            params,
            accounts: keys
                .iter()
                .chain([&newcomer])
                .map(|k| GenesisAccount {
                    address: addr(k),
                    balance: 1_000_000 * POI,
                })
                .collect(),
            beacon: Some(GenesisBeacon {
                identity: hex::encode(dealt[0].identity()),
                seed_namespace: hex::encode(beacon::seed_namespace(CHAIN_ID.as_bytes())),
                polynomial: hex::encode(dealt[0].polynomial_bytes()),
            }),
            models: Vec::new(),
            data: Vec::new(),
        };
        let mut state = MemState::default();
        state.apply(&genesis.state().expect("a valid genesis"));
        let mut nodes: Vec<Node> = keys
            .into_iter()
            .zip(dealt.iter().cloned().map(Some))
            .chain([(newcomer, None)])
            .map(|(key, genesis)| {
                let current = genesis.as_ref().map(|k: &BeaconKey| (0, k.share_bytes()));
                Node {
                    resharer: Resharer::new(key.to_bytes(), current, &[]).expect("a resharer"),
                    key,
                    genesis,
                    journal: Vec::new(),
                    shares: Vec::new(),
                    posts: 0,
                }
            })
            .collect();
        nodes.sort_by_key(Node::me);
        let mut sim = Sim {
            chain: Chain::new(CHAIN_ID),
            state,
            nonces: BTreeMap::new(),
            nodes,
            pending: Vec::new(),
            queue: VecDeque::new(),
            dropping: false,
            muted: Vec::new(),
            dropped: Vec::new(),
            height: 0,
            identity: dealt[0].identity(),
        };
        for i in 0..sim.nodes.len() {
            let k = sim.nodes[i].key.clone();
            let bond = if sim.nodes[i].genesis.is_some() {
                100
            } else {
                200
            } * POI;
            let txs = [
                Msg::Staking(StakingMsg::Bond { amount: bond }),
                Msg::Validators(ValidatorsMsg::Register { self_bond: bond }),
            ]
            .map(|m| sim.tx(&k, m, FEE));
            sim.pending.extend(txs);
        }
        sim.run_to(OPEN - 1);
        assert_eq!(reshare::open_round(&sim.state).unwrap(), None);
        sim
    }

    fn tx(&mut self, from: &SigningKey, msg: Msg, fee: u128) -> Tx {
        let nonce = self.nonces.entry(addr(from)).or_insert(0);
        let body = TxBody {
            chain_id: CHAIN_ID.into(),
            signer: addr(from),
            nonce: *nonce,
            fee,
            msg,
        };
        *nonce += 1;
        body.sign(from)
    }

    fn index(&self, who: &[u8; 32]) -> Option<usize> {
        self.nodes.iter().position(|n| &n.me() == who)
    }

    /// Carries out node `i`'s outputs, checking that every ack leaves only once the journal
    /// persisted before it (in this list or an earlier one) holds a dealing of its dealer.
    fn handle(&mut self, i: usize, outputs: Vec<ReshareOutput>) {
        for output in outputs {
            match output {
                ReshareOutput::Persist { journal } => self.nodes[i].journal = journal,
                ReshareOutput::Send { to, bytes } => {
                    if bytes[1] == 2 {
                        assert!(
                            self.nodes[i].journal.windows(32).any(|w| w == to),
                            "an ack before its dealing was persisted"
                        );
                    }
                    let flight = (self.nodes[i].me(), to, bytes);
                    if self.dropping {
                        self.dropped.push(flight);
                    } else {
                        self.queue.push_back(flight);
                    }
                }
                ReshareOutput::PostLog { round, log } => {
                    self.nodes[i].posts += 1;
                    if self.muted.contains(&self.nodes[i].me()) {
                        continue;
                    }
                    let k = self.nodes[i].key.clone();
                    let tx = self.tx(
                        &k,
                        Msg::Validators(ValidatorsMsg::ReshareLog { round, log }),
                        100 * FEE,
                    );
                    self.pending.push(tx);
                }
                ReshareOutput::Share {
                    generation,
                    polynomial,
                    share,
                } => self.nodes[i].shares.push((generation, polynomial, share)),
            }
        }
    }

    /// Delivers every message in flight (and those they cause).
    fn deliver(&mut self) {
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            let Some(i) = self.index(&to) else { continue };
            let outputs = self.nodes[i].resharer.on_message(from, &bytes);
            self.handle(i, outputs);
        }
    }

    /// Executes the next block with the pending transactions, then commits it to every node
    /// and delivers what follows. Returns the event kinds of the block.
    fn step(&mut self) -> Vec<String> {
        self.height += 1;
        let ctx = BlockContext {
            height: self.height,
            timestamp_ms: self.height * 1000,
            proposer: Address([9; 32]),
            view: self.height,
            seeds: Vec::new(),
        };
        let txs = std::mem::take(&mut self.pending);
        let out = self
            .chain
            .execute_block(&self.state, &ctx, txs, Mode::Verify)
            .expect("the block executes");
        for r in &out.receipts {
            match &r.outcome {
                TxOutcome::Success => {}
                // A second log of a dealer is refused harmlessly; anything else is a bug.
                TxOutcome::Failed { code, .. } => assert_eq!(code, "duplicate_reshare_log"),
            }
        }
        self.state.apply(&out.writes);
        for i in 0..self.nodes.len() {
            let outputs = self.nodes[i].resharer.on_commit(&self.state, self.height);
            self.handle(i, outputs);
        }
        self.deliver();
        out.block_events
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    }

    fn run_to(&mut self, height: u64) {
        while self.height < height {
            self.step();
        }
    }

    fn tick(&mut self) {
        for i in 0..self.nodes.len() {
            let outputs = self.nodes[i].resharer.on_tick();
            self.handle(i, outputs);
        }
        self.deliver();
    }

    fn round(&self) -> reshare::ReshareRound {
        self.round_of(1)
    }

    fn round_of(&self, r: u64) -> reshare::ReshareRound {
        reshare::round(&self.state, r).unwrap().expect("the round")
    }

    /// After the close: generation 1 is recorded, every player (and nobody else) got a share
    /// of it that is a point of its polynomial, and a quorum of them signs under the genesis
    /// identity.
    fn check_generation_one(&self) {
        self.check_generation_one_of(1);
    }

    /// [`Sim::check_generation_one`] for a generation made by round `r`.
    fn check_generation_one_of(&self, r: u64) {
        assert_eq!(reshare::current_generation_number(&self.state).unwrap(), 1);
        let g1 = reshare::generation(&self.state, 1).unwrap().expect("gen 1");
        assert_eq!(g1.round, Some(r));
        let round = self.round_of(r);
        assert_eq!(round.status, RoundStatus::Succeeded { generation: 1 });
        let sharing = reshare::decode_sharing(&g1.polynomial, 4).unwrap();
        let mut shares = Vec::new();
        for node in &self.nodes {
            let player = round.players.contains(&Address(node.me()));
            if !player {
                assert!(node.shares.is_empty(), "a dealer only gets no share");
                continue;
            }
            assert_eq!(node.shares.len(), 1, "one share per player");
            let (generation, polynomial, share) = &node.shares[0];
            assert_eq!(*generation, 1);
            assert_eq!(polynomial, &g1.polynomial);
            let beacon = BeaconKey::from_bytes(polynomial, share).expect("a valid share");
            assert_eq!(beacon.identity(), self.identity, "the identity is kept");
            assert_eq!(node.resharer.generation(), Some(1));
            assert_eq!(node.journal, empty_journal(), "the journal is emptied");
            shares.push(Share::decode(share.to_vec()).unwrap());
        }
        assert_eq!(shares.len(), 4);
        let (ns, msg) = (
            b"poi-node-reshare-test".as_slice(),
            b"new holders".as_slice(),
        );
        let partials: Vec<_> = shares
            .iter()
            .skip(1)
            .map(|s| ops::threshold::sign_message::<MinSig>(s, ns, msg))
            .collect();
        let recovered = ops::threshold::recover::<MinSig, _>(
            &sharing,
            &partials,
            &commonware_parallel::Sequential,
        )
        .expect("a quorum recovers");
        let identity = <MinSig as Variant>::Public::decode(self.identity.to_vec()).unwrap();
        ops::verify_message::<MinSig>(&identity, ns, msg, &recovered)
            .expect("verifies under the genesis identity");
    }
}

#[test]
fn resharers_move_the_key_to_the_new_set_across_restarts() {
    let mut sim = Sim::new();
    let kinds = sim.step();
    assert!(kinds.iter().any(|k| k == "reshare_open"));
    let round = sim.round();
    assert_eq!(
        (round.round, round.generation, round.opened_at),
        (1, 0, OPEN)
    );
    // Every dealing was delivered and acked at once: each dealer posted its log.
    assert!(
        sim.nodes
            .iter()
            .filter(|n| n.genesis.is_some())
            .all(|n| n.posts == 1)
    );
    assert_eq!(
        sim.nodes
            .iter()
            .filter(|n| n.genesis.is_none())
            .map(|n| n.posts)
            .sum::<usize>(),
        0
    );
    let newcomer = sim.nodes.iter().position(|n| n.genesis.is_none()).unwrap();
    let both = sim
        .nodes
        .iter()
        .position(|n| n.genesis.is_some() && round.players.contains(&Address(n.me())))
        .unwrap();
    let journal = sim.nodes[newcomer].journal.clone();
    assert_eq!(journal, sim.nodes[newcomer].resharer.journal_bytes());
    assert!(journal.len() > 4 * 32, "four dealings journaled");

    // The logs land; then two players restart from their journals (one also a dealer).
    sim.step();
    assert_eq!(reshare::round_logs(&sim.state, 1).unwrap().len(), 4);
    sim.nodes[newcomer].restart();
    sim.nodes[both].restart();
    sim.run_to(CLOSE - 1);
    assert_eq!(reshare::current_generation_number(&sim.state).unwrap(), 0);
    // Restarted dealers saw their logs on chain: nobody posted again.
    assert!(sim.nodes.iter().all(|n| n.posts <= 1));
    let kinds = sim.step();
    assert!(kinds.iter().any(|k| k == "generation"), "{kinds:?}");
    sim.check_generation_one();

    // A player restarted after the close, before it computed its share, still gets it.
    let mut late = Sim::new();
    late.run_to(CLOSE - 1);
    let p = late.index(&late.round().players[0].0).unwrap();
    let journal = late.nodes[p].journal.clone();
    late.step();
    assert_eq!(late.nodes[p].shares.len(), 1);
    let expected = late.nodes[p].shares[0].clone();
    late.nodes[p].journal = journal;
    late.nodes[p].shares.clear();
    late.nodes[p].restart();
    late.step();
    assert_eq!(late.nodes[p].shares, vec![expected]);
    assert_eq!(late.nodes[p].journal, empty_journal());
}

#[test]
fn dropped_first_dealings_are_healed_by_ticks() {
    let mut sim = Sim::new();
    sim.dropping = true;
    sim.step();
    let first = std::mem::take(&mut sim.dropped);
    assert!(!first.is_empty());
    assert!(sim.nodes.iter().all(|n| n.posts == 0), "no acks yet");
    // A dealer restarted now deals the very same messages again (its rng is derived from
    // its seed and the round).
    let d = sim.nodes.iter().position(|n| n.genesis.is_some()).unwrap();
    sim.nodes[d].restart();
    let outputs = sim.nodes[d].resharer.on_commit(&sim.state, sim.height);
    sim.handle(d, outputs);
    sim.dropping = false;
    let again = std::mem::take(&mut sim.dropped);
    let before: Vec<Flight> = first
        .iter()
        .filter(|f| f.0 == sim.nodes[d].me())
        .cloned()
        .collect();
    assert!(!before.is_empty());
    assert_eq!(again, before, "identical dealings after a restart");
    // One tick re-sends every dealing: all players ack, every dealer posts.
    sim.tick();
    assert!(
        sim.nodes
            .iter()
            .filter(|n| n.genesis.is_some())
            .all(|n| n.posts == 1)
    );
    // Nothing is left to re-send.
    for node in &mut sim.nodes {
        assert!(node.resharer.on_tick().is_empty());
    }
    sim.run_to(CLOSE);
    sim.check_generation_one();
}

#[test]
fn lost_log_transactions_are_posted_again_in_the_last_quarter() {
    let mut sim = Sim::new();
    sim.muted = sim.nodes.iter().map(Node::me).collect();
    sim.step();
    sim.muted.clear();
    let dealers = |sim: &Sim| -> Vec<usize> {
        sim.nodes
            .iter()
            .filter(|n| n.genesis.is_some())
            .map(|n| n.posts)
            .collect()
    };
    assert_eq!(dealers(&sim), [1; 4]);
    // The last quarter of epoch 1 starts at CLOSE - EPOCH / 4: no re-post before it.
    let last_quarter = CLOSE - EPOCH / 4;
    sim.run_to(last_quarter - 1);
    assert_eq!(dealers(&sim), [1; 4]);
    assert!(reshare::round_logs(&sim.state, 1).unwrap().is_empty());
    sim.step();
    assert_eq!(dealers(&sim), [2; 4], "re-posted once");
    sim.step();
    assert_eq!(reshare::round_logs(&sim.state, 1).unwrap().len(), 4);
    sim.run_to(CLOSE);
    assert_eq!(dealers(&sim), [2; 4], "confirmed logs are not posted again");
    sim.check_generation_one();
}

#[test]
fn a_failed_round_is_dropped_and_the_next_round_succeeds() {
    let mut sim = Sim::new();
    // Two of the four logs never land: round 1 fails (it needs 3).
    sim.muted = sim
        .nodes
        .iter()
        .filter(|n| n.genesis.is_some())
        .map(Node::me)
        .take(2)
        .collect();
    sim.run_to(CLOSE - 1);
    assert_eq!(reshare::round_logs(&sim.state, 1).unwrap().len(), 2);
    let kinds = sim.step();
    assert!(kinds.iter().any(|k| k == "reshare_failed"), "{kinds:?}");
    assert!(matches!(
        sim.round_of(1).status,
        RoundStatus::Failed {
            required: 3,
            found: 2
        }
    ));
    assert!(sim.nodes.iter().all(|n| n.shares.is_empty()));
    // The same block opened round 2; every resharer moved to it (a new journal each).
    assert_eq!(
        reshare::open_round(&sim.state).unwrap().map(|r| r.round),
        Some(2)
    );
    let players = sim.round_of(2).players;
    for node in &sim.nodes {
        assert_eq!(node.resharer.round(), Some(2));
        if players.contains(&Address(node.me())) {
            assert_eq!(node.journal.get(1..9), Some(2u64.to_be_bytes().as_slice()));
        }
    }
    sim.muted.clear();
    sim.run_to(3 * EPOCH - 1);
    sim.check_generation_one_of(2);
}

#[test]
fn dealers_post_by_the_deadline_without_every_ack() {
    let mut sim = Sim::new();
    sim.dropping = true;
    sim.step();
    sim.dropping = false;
    let round = sim.round();
    // Every dealing to one genesis player is lost: the other dealers never get its ack.
    let lost = sim
        .nodes
        .iter()
        .find(|n| n.genesis.is_some() && round.players.contains(&Address(n.me())))
        .unwrap()
        .me();
    let through: Vec<Flight> = sim
        .dropped
        .iter()
        .filter(|f| f.1 != lost)
        .cloned()
        .collect();
    sim.queue.extend(through);
    sim.deliver();
    // Only the player that lost its dealings has every ack (its own in-process).
    let posted = |sim: &Sim| -> Vec<[u8; 32]> {
        sim.nodes
            .iter()
            .filter(|n| n.posts > 0)
            .map(Node::me)
            .collect()
    };
    assert_eq!(posted(&sim), vec![lost]);
    let deadline = round.opened_at + EPOCH / 2;
    sim.run_to(deadline - 1);
    assert_eq!(posted(&sim), vec![lost]);
    sim.step();
    assert!(
        sim.nodes
            .iter()
            .filter(|n| n.genesis.is_some())
            .all(|n| n.posts == 1)
    );
    sim.run_to(CLOSE);
    // The player without the dealings gets its share from the reveals in the logs.
    sim.check_generation_one();
}

#[test]
fn malformed_and_foreign_messages_change_nothing() {
    let mut sim = Sim::new();
    sim.dropping = true;
    sim.step();
    sim.dropping = false;
    let round = sim.round();
    let newcomer = sim.nodes.iter().position(|n| n.genesis.is_none()).unwrap();
    let me = sim.nodes[newcomer].me();
    let outsider = sim
        .nodes
        .iter()
        .find(|n| !round.players.contains(&Address(n.me())))
        .unwrap()
        .me();
    let (dealer, _, dealing) = sim
        .dropped
        .iter()
        .find(|f| f.1 == me)
        .cloned()
        .expect("a dealing to the newcomer");
    let journal = sim.nodes[newcomer].resharer.journal_bytes();
    let mut bad_share = dealing.clone();
    bad_share[10] ^= 1;
    let mut other_round = dealing.clone();
    other_round[2..10].copy_from_slice(&99u64.to_be_bytes());
    let mut version = dealing.clone();
    version[0] = 2;
    let cases: Vec<([u8; 32], Vec<u8>)> = vec![
        (dealer, Vec::new()),
        (dealer, vec![1, 1, 0]),
        (dealer, dealing[..dealing.len() - 1].to_vec()),
        (dealer, [dealing.as_slice(), &[0]].concat()),
        (dealer, bad_share),
        (dealer, other_round),
        (dealer, version),
        (dealer, vec![0xff; 200_000]),
        // A real dealing, but from a peer that is not a dealer of the round.
        (me, dealing.clone()),
        ([7; 32], dealing.clone()),
    ];
    for (from, bytes) in cases {
        let out = sim.nodes[newcomer].resharer.on_message(from, &bytes);
        assert!(out.is_empty(), "ignored: {out:?}");
        assert_eq!(sim.nodes[newcomer].resharer.journal_bytes(), journal);
    }
    // An ack from a non-player to a dealer is ignored too.
    let d = sim.index(&dealer).unwrap();
    let ack = [vec![1, 2], 1u64.to_be_bytes().to_vec(), vec![0; 64]].concat();
    assert!(sim.nodes[d].resharer.on_message(outsider, &ack).is_empty());
    assert!(
        sim.nodes[d].resharer.on_message(me, &ack).is_empty(),
        "a bad signature"
    );
    // The real dealing is still accepted afterwards: persisted, then acked.
    let out = sim.nodes[newcomer].resharer.on_message(dealer, &dealing);
    assert!(
        matches!(out.as_slice(), [ReshareOutput::Persist { .. }, ReshareOutput::Send { to, .. }] if *to == dealer)
    );
    // A re-sent dealing gets the same ack again, with nothing new to persist.
    let again = sim.nodes[newcomer].resharer.on_message(dealer, &dealing);
    assert_eq!(again.as_slice(), &out[1..]);
    // Another (here: truncated) dealing from the same dealer gets nothing.
    let truncated = &dealing[..dealing.len() - 1];
    assert!(
        sim.nodes[newcomer]
            .resharer
            .on_message(dealer, truncated)
            .is_empty()
    );
}

/// The node holds a resharer in its tasks.
#[test]
fn a_resharer_is_send() {
    fn send<T: Send>() {}
    send::<Resharer>();
}

#[test]
fn a_player_that_lost_its_journal_after_acking_gets_no_share() {
    let mut sim = Sim::new();
    sim.step();
    sim.step();
    assert_eq!(reshare::round_logs(&sim.state, 1).unwrap().len(), 4);
    let newcomer = sim.nodes.iter().position(|n| n.genesis.is_none()).unwrap();
    sim.nodes[newcomer].journal = Vec::new();
    sim.nodes[newcomer].restart();
    sim.run_to(CLOSE);
    // The chain moved on (the others hold a quorum), but the logs show acks whose dealings
    // this player no longer has: it emits no (wrong) share.
    assert_eq!(reshare::current_generation_number(&sim.state).unwrap(), 1);
    assert!(sim.nodes[newcomer].shares.is_empty());
    assert_eq!(sim.nodes[newcomer].resharer.generation(), None);
    let others = sim.nodes.iter().filter(|n| n.shares.len() == 1).count();
    assert_eq!(others, 3);
}
