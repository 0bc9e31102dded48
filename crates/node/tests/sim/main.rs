//! Deterministic simulations of four poi validators under crashes, partitions, bad links and
//! an equivocating validator.
//!
//! Owns: the harness ([`Sim`]: commonware's deterministic runtime, its simulated network with
//! one link per ordered pair, a trusted-dealer beacon, the real consensus driver started with
//! `start_with_channels`) and the scenarios. Every scenario runs over [`SEEDS`] seeds (or only
//! `SIM_SEED`), prints a one-line repro for a failing seed, and asserts
//! - safety: no two honest validators finalize different blocks at one height (checked at
//!   every finalization by the shared [`Ledger`]), and each one's chain is contiguous;
//! - liveness: after the fault heals, every honest validator finalizes [`PROGRESS`] more blocks
//!   within a bounded simulated time.
//!
//! commonware's deterministic runtime and simulated network are ALPHA, and the workspace builds
//! with `--cfg commonware_stability_BETA`, so this target only exists with the `sim` feature and
//! without that cfg: run `.ci/sim` (it compiles to nothing under the cfg).
#![cfg(not(commonware_stability_BETA))]

mod byzantine;
mod chain;

use chain::{Chain, Ledger};
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_consensus::simplex::{
    max_payload_size,
    types::{Attributable as _, ConflictingFinalize, ConflictingNotarize, NullifyFinalize},
};
use commonware_cryptography::{
    bls12381::primitives::{sharing::ModeVersion, sharing::Sharing, variant::MinSig},
    ed25519::PublicKey,
    sha256::Digest,
};
use commonware_p2p::simulated::{self, Link, Oracle};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock as _, Handle, Quota, Runner as _, Spawner as _, Supervisor as _, deterministic,
};
use commonware_utils::{
    ordered::{Quorum as _, Set},
    probability,
};
use poi_node::consensus::{
    BeaconKey, CHANNEL_BLOCK_REQUESTS, CHANNEL_BLOCKS, CHANNEL_CERTIFICATES, CHANNEL_RESOLVER,
    CHANNEL_VOTES, Channels, ConsensusConfig, Fault, FaultKind, Links, Validator, VoteStats,
    beacon::{self, BeaconScheme},
    consensus_namespace, start_with_channels, validator_public_key, verify_fault,
};
use std::{
    num::{NonZeroU32, NonZeroUsize},
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    time::Duration,
};

/// Validators in every scenario (tolerates one fault: quorum 3).
const N: usize = 4;
/// Seeds per scenario when `SIM_SEED` is not set.
const SEEDS: u64 = 5;
/// Blocks every honest validator must finalize after a fault heals.
const PROGRESS: u64 = 10;
/// Chain id of the simulated chain.
const NAMESPACE: &[u8] = b"poi-sim";
/// Simulated time after which the runtime panics (a scenario that hangs fails).
const RUN_LIMIT: Duration = Duration::from_secs(1_800);
/// Longest encoded block on the simulated network (the test chain's are 49 bytes).
const MAX_BLOCK_BYTES: u32 = 1_024;

/// The links of a healthy network.
fn fast_link() -> Link {
    Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        success_rate: probability!(1.0),
    }
}

/// The seeds to run: `SIM_SEED` alone if set, else `0..SEEDS`.
fn seeds() -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(seed) => vec![seed.trim().parse().expect("SIM_SEED is a u64")],
        Err(_) => (0..SEEDS).collect(),
    }
}

/// Runs `scenario` for every seed; a failing seed prints its repro line, then fails the test.
fn for_seeds<T>(name: &str, scenario: impl Fn(u64) -> T) -> Vec<T> {
    seeds()
        .into_iter()
        .map(|seed| {
            let started = std::time::Instant::now();
            match catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
                Ok(outcome) => {
                    eprintln!("sim {name} seed {seed}: ok in {:?}", started.elapsed());
                    outcome
                }
                Err(panic) => {
                    eprintln!(
                        "sim {name} FAILED for seed {seed}; repro: SIM_SEED={seed} .ci/sim {name}"
                    );
                    resume_unwind(panic)
                }
            }
        })
        .collect()
}

/// Runs `f` in a deterministic runtime seeded with `seed`.
fn simulate<T, F>(seed: u64, f: impl FnOnce(deterministic::Context) -> F) -> T
where
    F: Future<Output = T>,
{
    let cfg = deterministic::Config::new()
        .with_seed(seed)
        .with_timeout(Some(RUN_LIMIT));
    deterministic::Runner::new(cfg).start(f)
}

/// Four validators on a simulated network, driven by the real consensus driver.
struct Sim {
    context: deterministic::Context,
    oracle: Oracle<PublicKey, deterministic::Context>,
    /// ed25519 keys by validator index.
    keys: Vec<PublicKey>,
    /// The same keys, as bytes.
    publics: Vec<[u8; 32]>,
    beacon: Vec<BeaconKey>,
    cfgs: Vec<ConsensusConfig>,
    chains: Vec<Chain>,
    handles: Vec<Option<Handle<()>>>,
    /// Runs started per validator (names each run's runtime context).
    runs: Vec<u32>,
    /// Each validator's vote counters (kept across its restarts, like `NodeContext::votes`).
    votes: Vec<VoteStats>,
    ledger: Ledger,
}

impl Sim {
    /// Deals the beacon, links every ordered pair with `link`, starts no validator yet.
    async fn new(mut context: deterministic::Context, link: Link) -> Self {
        let signing: Vec<[u8; 32]> = (0..N as u8).map(|i| [i + 1; 32]).collect();
        let publics: Vec<[u8; 32]> = signing.iter().map(validator_public_key).collect();
        let keys: Vec<PublicKey> = publics
            .iter()
            .map(|key| PublicKey::decode(key.to_vec()).expect("ed25519 key"))
            .collect();
        let beacon = beacon::deal_with(&mut context, &publics).expect("deal");
        let max_size = commonware_p2p::max_message_size(&[
            max_payload_size::<BeaconScheme, Digest>(N as u32),
            MAX_BLOCK_BYTES as usize,
        ]);
        let (network, oracle) = simulated::Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size,
                max_peers_per_set: NonZeroUsize::new(N).expect("non-zero"),
                disconnect_on_block: false,
                tracked_peer_sets: NonZeroUsize::new(1).expect("non-zero"),
            },
            keys.clone(),
        )
        .await;
        network.start();
        let validators: Vec<Validator> = publics
            .iter()
            .enumerate()
            .map(|(i, key)| Validator {
                public_key: *key,
                address: ([127, 0, 0, 1], 7400 + i as u16).into(),
            })
            .collect();
        let cfgs = (0..N)
            .map(|i| {
                let mut cfg = ConsensusConfig::new(
                    "unused-by-the-deterministic-runtime",
                    signing[i],
                    beacon[i].clone(),
                    validators[i].address,
                    validators.clone(),
                    NAMESPACE.to_vec(),
                );
                // One storage for all four: each needs its own journal partition.
                cfg.journal_prefix = format!("validator-{i}");
                cfg.block_interval = Duration::from_millis(20);
                cfg.max_block_bytes = MAX_BLOCK_BYTES;
                cfg
            })
            .collect();
        let ledger = Ledger::default();
        let chains = (0..N as u8)
            .map(|i| Chain::new(i, ledger.clone()))
            .collect();
        let mut sim = Self {
            context,
            oracle,
            keys,
            publics,
            beacon,
            cfgs,
            chains,
            handles: (0..N).map(|_| None).collect(),
            runs: vec![0; N],
            votes: (0..N).map(|_| VoteStats::new()).collect(),
            ledger,
        };
        sim.link_all(link).await;
        sim
    }

    /// Replaces every link between validators in `from` and validators in `to` by `link`
    /// (or removes it when `None`).
    async fn set_links(&mut self, from: &[usize], to: &[usize], link: Option<Link>) {
        for &a in from {
            for &b in to {
                if a == b {
                    continue;
                }
                let (ka, kb) = (self.keys[a].clone(), self.keys[b].clone());
                // Absent links are fine to remove.
                let _ = self.oracle.remove_link(ka.clone(), kb.clone()).await;
                if let Some(link) = &link {
                    self.oracle
                        .add_link(ka, kb, link.clone())
                        .await
                        .expect("add link");
                }
            }
        }
    }

    async fn link_all(&mut self, link: Link) {
        let all: Vec<usize> = (0..N).collect();
        self.set_links(&all, &all, Some(link)).await;
    }

    /// Registers validator `i`'s five channels (again, after a crash).
    async fn channels(
        &self,
        i: usize,
    ) -> Channels<
        simulated::Sender<PublicKey, deterministic::Context>,
        simulated::Receiver<PublicKey>,
    > {
        let control = self.oracle.control(self.keys[i].clone());
        let quota = Quota::per_second(NonZeroU32::new(10_000).expect("non-zero"));
        let mut pairs = Vec::new();
        for channel in [
            CHANNEL_VOTES,
            CHANNEL_CERTIFICATES,
            CHANNEL_RESOLVER,
            CHANNEL_BLOCKS,
            CHANNEL_BLOCK_REQUESTS,
        ] {
            pairs.push(control.register(channel, quota).await.expect("register"));
        }
        let mut pairs = pairs.into_iter();
        let mut next = || pairs.next().expect("five channels");
        Channels {
            votes: next(),
            certificates: next(),
            resolver: next(),
            blocks: next(),
            block_requests: next(),
        }
    }

    /// Starts (or restarts, from its journal and block store) honest validator `i`.
    async fn start(&mut self, i: usize) {
        assert!(self.handles[i].is_none(), "validator {i} is running");
        let channels = self.channels(i).await;
        let (requester, mut links) = Links::new();
        links.votes = self.votes[i].clone();
        self.runs[i] += 1;
        let context = self
            .context
            .child("validator")
            .with_attribute("index", i)
            .with_attribute("run", self.runs[i]);
        let app = self.chains[i].in_run(context.child("app"), requester);
        let blocker = self.oracle.control(self.keys[i].clone());
        let handle = start_with_channels(context, &self.cfgs[i], app, links, blocker, channels)
            .expect("valid config");
        self.handles[i] = Some(handle);
    }

    /// Kills validator `i` (every task of its driver and engine), like a SIGKILL.
    async fn crash(&mut self, i: usize) {
        let handle = self.handles[i].take().expect("validator running");
        handle.abort();
        let _ = handle.await;
    }

    /// Starts validator `i` as the equivocator of `byzantine.rs` instead of an honest node.
    async fn start_equivocator(&mut self, i: usize) {
        let mut sorted = self.keys.clone();
        sorted.sort();
        let scheme = byzantine::signer(NAMESPACE, &sorted, &self.beacon[i]);
        let votes = self.channels(i).await.votes;
        let handle = self
            .context
            .child("equivocator")
            .spawn(move |_| byzantine::equivocate(scheme, votes));
        self.handles[i] = Some(handle);
    }

    /// Simulated time since the runtime started.
    fn elapsed(&self) -> Duration {
        self.context
            .current()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn height(&self, i: usize) -> u64 {
        self.chains[i].finalized_height()
    }

    fn heights(&self) -> Vec<u64> {
        (0..N).map(|i| self.height(i)).collect()
    }

    /// Waits until every validator in `which` has finalized `target` blocks; panics after
    /// `limit` of simulated time.
    async fn await_heights(&self, which: &[usize], target: u64, limit: Duration) {
        let deadline = self.context.current() + limit;
        while which.iter().any(|&i| self.height(i) < target) {
            assert!(
                self.context.current() < deadline,
                "validators {which:?} did not reach height {target} within {limit:?}: {:?}",
                self.heights()
            );
            self.context.sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts safety so far: no cross-validator disagreement, no broken own chain.
    fn assert_safe(&self) {
        assert_eq!(self.ledger.violations(), Vec::<String>::new());
        for chain in &self.chains {
            assert_eq!(chain.errors(), Vec::<String>::new());
        }
    }

    /// Stops every validator, so no runtime context outlives the run.
    async fn stop(mut self) {
        for handle in self.handles.iter_mut().filter_map(Option::take) {
            handle.abort();
            let _ = handle.await;
        }
    }
}

/// Crash: one validator is killed mid-run, the other three keep finalizing, and the restarted
/// validator recovers from its journal, fetches the blocks finalized without it, and agrees.
fn crash_restart(seed: u64) {
    simulate(seed, |context| async move {
        let mut sim = Sim::new(context, fast_link()).await;
        let all: Vec<usize> = (0..N).collect();
        for i in 0..N {
            sim.start(i).await;
        }
        sim.await_heights(&all, 5, Duration::from_secs(30)).await;
        let victim = (seed % N as u64) as usize;
        let others: Vec<usize> = all.iter().copied().filter(|&i| i != victim).collect();
        sim.crash(victim).await;
        let at_crash = sim.height(victim);
        // Three of four are a quorum: finality continues without the victim.
        let target = *sim.heights().iter().max().expect("four") + PROGRESS;
        sim.await_heights(&others, target, Duration::from_secs(60))
            .await;
        assert!(
            sim.height(victim) <= at_crash + 1,
            "a crashed validator finalized"
        );
        sim.start(victim).await;
        let target = *sim.heights().iter().max().expect("four") + PROGRESS;
        sim.await_heights(&all, target, Duration::from_secs(60))
            .await;
        // It finalized blocks it never saw proposed: it must have asked peers for them.
        assert!(sim.chains[victim].requests() > 0, "no blocks fetched");
        sim.assert_safe();
        eprintln!(
            "  crash seed {seed}: victim {victim} down at height {at_crash}, heights {:?}, \
             {} block requests, {:?} simulated",
            sim.heights(),
            sim.chains[victim].requests(),
            sim.elapsed()
        );
        sim.stop().await;
    });
}

/// Partition: a 2|2 split leaves no quorum, so nothing (conflicting or not) finalizes;
/// healing resumes finality on both sides.
fn partition_heals(seed: u64) {
    simulate(seed, |context| async move {
        let mut sim = Sim::new(context, fast_link()).await;
        let all: Vec<usize> = (0..N).collect();
        for i in 0..N {
            sim.start(i).await;
        }
        sim.await_heights(&all, 5, Duration::from_secs(30)).await;
        let (left, right) = ([0, 1], [2, 3]);
        sim.set_links(&left, &right, None).await;
        sim.set_links(&right, &left, None).await;
        // Certificates already in flight may still land: let them, then freeze the heights.
        sim.context.sleep(Duration::from_secs(2)).await;
        let frozen = sim.heights();
        sim.context.sleep(Duration::from_secs(30)).await;
        assert_eq!(sim.heights(), frozen, "finalized without a quorum");
        sim.assert_safe();
        sim.set_links(&left, &right, Some(fast_link())).await;
        sim.set_links(&right, &left, Some(fast_link())).await;
        let target = *frozen.iter().max().expect("four") + PROGRESS;
        sim.await_heights(&all, target, Duration::from_secs(90))
            .await;
        sim.assert_safe();
        eprintln!(
            "  partition seed {seed}: frozen at {frozen:?} for 30 s, healed to {:?}, {:?} simulated",
            sim.heights(),
            sim.elapsed()
        );
        sim.stop().await;
    });
}

/// Slow links: 150 ms latency with 75 ms jitter and 10% loss on every link; finality still
/// progresses (lost blocks are fetched, lost votes time views out) and everyone agrees.
fn slow_lossy_links(seed: u64) {
    simulate(seed, |context| async move {
        let link = Link {
            latency: Duration::from_millis(150),
            jitter: Duration::from_millis(75),
            success_rate: probability!(0.9),
        };
        let mut sim = Sim::new(context, link).await;
        let all: Vec<usize> = (0..N).collect();
        for i in 0..N {
            sim.start(i).await;
        }
        sim.await_heights(&all, PROGRESS, Duration::from_secs(180))
            .await;
        sim.assert_safe();
        // Every validator saw every validator vote, and blocks arrive from every peer.
        for (i, votes) in sim.votes.iter().enumerate() {
            let snapshot = votes.snapshot();
            let keys: Vec<[u8; 32]> = snapshot.iter().map(|p| p.public_key).collect();
            let mut expected = sim.publics.clone();
            expected.sort();
            assert_eq!(keys, expected);
            for entry in &snapshot {
                assert!(entry.notarizes > 0 && entry.finalizes > 0, "{i}: {entry:?}");
                assert!(entry.last_vote_view.is_some_and(|view| view >= PROGRESS));
                let own = entry.public_key == sim.publics[i];
                assert_eq!(entry.last_block_message.is_none(), own, "{i}: {entry:?}");
            }
        }
        eprintln!(
            "  slow_links seed {seed}: heights {:?} after {:?} simulated",
            sim.heights(),
            sim.elapsed()
        );
        sim.stop().await;
    });
}

/// What scenario 4 returns: one verified piece of evidence and what verifies it.
#[derive(Clone, Debug)]
pub(crate) struct Evidence {
    /// The fault an honest validator reported.
    pub(crate) fault: Fault,
    /// The dealt public polynomial (`BeaconKey::polynomial_bytes`).
    pub(crate) polynomial: Vec<u8>,
    /// The validator set's ed25519 keys, by validator index.
    pub(crate) validators: Vec<[u8; 32]>,
    /// The equivocator's index.
    pub(crate) offender: usize,
}

/// Equivocation: validator 3 signs two notarizes (and two finalizes) per view. The honest
/// three keep finalizing, and each reports a [`Fault`] naming it, whose evidence verifies
/// against the participant set and polynomial alone. Returns a reported `ConflictingFinalize`
/// (the kind that is sound evidence against any validator, see `Fault`).
pub(crate) fn equivocation_evidence(seed: u64) -> Evidence {
    simulate(seed, |context| async move {
        let byzantine = N - 1;
        let mut sim = Sim::new(context, fast_link()).await;
        let honest: Vec<usize> = (0..byzantine).collect();
        for &i in &honest {
            sim.start(i).await;
        }
        sim.start_equivocator(byzantine).await;
        sim.await_heights(&honest, PROGRESS, Duration::from_secs(120))
            .await;
        sim.assert_safe();
        let offender = sim.publics[byzantine];
        let polynomial = sim.beacon[0].polynomial_bytes();
        let mut first = None;
        let mut kinds = std::collections::BTreeSet::new();
        for &i in &honest {
            let faults = sim.chains[i].faults();
            assert!(!faults.is_empty(), "validator {i} reported no fault");
            for fault in &faults {
                assert_eq!(fault.offender, offender, "an honest validator was accused");
                assert!(verify_fault(NAMESPACE, &sim.publics, &polynomial, fault));
                assert_independently_valid(&sim.publics, &polynomial, fault);
                kinds.insert(fault.kind);
            }
            // Prefer the kind that is sound slashing evidence against anyone (see `Fault`).
            let sound = faults
                .iter()
                .find(|fault| fault.kind == FaultKind::ConflictingFinalize);
            if first.is_none() {
                first = sound.cloned();
            }
        }
        // It answers both vote kinds it receives, and honest validators keep delivering its
        // messages after blocking it (`disconnect_on_block: false`): both kinds are reported.
        assert!(kinds.contains(&FaultKind::ConflictingNotarize), "{kinds:?}");
        assert!(kinds.contains(&FaultKind::ConflictingFinalize), "{kinds:?}");
        let reported: Vec<usize> = honest
            .iter()
            .map(|&i| sim.chains[i].faults().len())
            .collect();
        eprintln!(
            "  equivocator seed {seed}: heights {:?}, faults per honest validator {reported:?}, \
             kinds {kinds:?}, {:?} simulated",
            sim.heights(),
            sim.elapsed()
        );
        let evidence = Evidence {
            fault: first.expect("a conflicting finalize was reported"),
            polynomial,
            validators: sim.publics.clone(),
            offender: byzantine,
        };
        sim.stop().await;
        evidence
    })
}

/// Checks `fault` with commonware alone: a verifier scheme built from the participant set and
/// the public polynomial (no share), decoding exactly `fault.encoded`. Also checks that
/// tampered evidence and relabelled faults are refused.
fn assert_independently_valid(publics: &[[u8; 32]], polynomial: &[u8], fault: &Fault) {
    let mut keys: Vec<PublicKey> = publics
        .iter()
        .map(|key| PublicKey::decode(key.to_vec()).expect("key"))
        .collect();
    keys.sort();
    let participants = Set::try_from(keys).expect("sorted unique keys");
    let bound = (NonZeroU32::new(64).expect("non-zero"), ModeVersion::v0());
    let sharing = Sharing::<MinSig>::decode_cfg(polynomial.to_vec(), &bound).expect("polynomial");
    let verifier = BeaconScheme::verifier(&consensus_namespace(NAMESPACE), participants, sharing);
    let mut rng = commonware_utils::sys_rng();
    let bytes = fault.encoded.as_slice();
    let (valid, signer) = match fault.kind {
        FaultKind::ConflictingNotarize => {
            let evidence = ConflictingNotarize::<BeaconScheme, Digest>::decode(bytes.to_vec())
                .expect("evidence decodes");
            (
                evidence.verify(&mut rng, &verifier, &Sequential),
                evidence.signer(),
            )
        }
        FaultKind::ConflictingFinalize => {
            let evidence = ConflictingFinalize::<BeaconScheme, Digest>::decode(bytes.to_vec())
                .expect("evidence decodes");
            (
                evidence.verify(&mut rng, &verifier, &Sequential),
                evidence.signer(),
            )
        }
        FaultKind::NullifyFinalize => {
            let evidence = NullifyFinalize::<BeaconScheme, Digest>::decode(bytes.to_vec())
                .expect("evidence decodes");
            (
                evidence.verify(&mut rng, &verifier, &Sequential),
                evidence.signer(),
            )
        }
    };
    assert!(valid, "evidence does not verify");
    let named = verifier.participants().key(signer).expect("signer in set");
    assert_eq!(named.encode().to_vec(), fault.offender.to_vec());

    // Flipping any signature byte (the last byte is in the second vote's seed partial)
    // breaks it, and so does naming someone else.
    let mut tampered = fault.clone();
    *tampered.encoded.last_mut().expect("non-empty") ^= 1;
    assert!(!verify_fault(NAMESPACE, publics, polynomial, &tampered));
    let mut relabelled = fault.clone();
    relabelled.offender = *publics
        .iter()
        .find(|key| **key != fault.offender)
        .expect("others");
    assert!(!verify_fault(NAMESPACE, publics, polynomial, &relabelled));
}

#[test]
fn crash() {
    for_seeds("crash", crash_restart);
}

#[test]
fn partition() {
    for_seeds("partition", partition_heals);
}

#[test]
fn slow_links() {
    for_seeds("slow_links", slow_lossy_links);
}

#[test]
fn equivocator() {
    let evidence = for_seeds("equivocator", equivocation_evidence);
    // Same seed, same run: the evidence is reproducible byte for byte.
    let again = equivocation_evidence(seeds()[0]);
    assert_eq!(again.fault, evidence[0].fault);
    // The chain convicts on it: poi-core's evidence transaction check, from the genesis
    // participants and polynomial alone, names the same offender and view.
    for e in &evidence {
        let mut participants: Vec<poi_core::Address> =
            e.validators.iter().map(|k| poi_core::Address(*k)).collect();
        participants.sort();
        let genesis = poi_core::validators::GenesisConsensus {
            participants,
            polynomial: e.polynomial.clone(),
            namespace: poi_node::consensus::consensus_namespace(NAMESPACE),
        };
        let bytes = poi_core::validators::encode_evidence(
            poi_core::validators::EvidenceKind::ConflictingFinalize,
            &e.fault.encoded,
        );
        let (kind, offender, view) = poi_core::validators::evidence::verify(&genesis, &bytes)
            .expect("the chain accepts the evidence");
        assert_eq!(
            kind,
            poi_core::validators::EvidenceKind::ConflictingFinalize
        );
        assert_eq!((offender.0, view), (e.fault.offender, e.fault.view));
    }
    if let Ok(path) = std::env::var("SIM_EVIDENCE_OUT") {
        // For poi-core's evidence transaction tests: kind, offender, view, epoch, hex bytes.
        let e = &evidence[0];
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let validators: Vec<String> = e.validators.iter().map(|k| hex(k)).collect();
        let text = format!(
            "kind={:?}\noffender_index={}\noffender={}\nview={}\nepoch={}\nencoded={}\npolynomial={}\nvalidators={}\nnamespace={}\n",
            e.fault.kind,
            e.offender,
            hex(&e.fault.offender),
            e.fault.view,
            e.fault.epoch,
            hex(&e.fault.encoded),
            hex(&e.polynomial),
            validators.join(","),
            hex(NAMESPACE),
        );
        std::fs::write(path, text).expect("write evidence");
    }
}
