//! Consensus configuration, its defaults and its validation.
//!
//! Owns: [`ConsensusConfig`], [`Validator`], [`Timeouts`], [`NetworkProfile`] and the limits
//! that size the engine. Invariant: [`ConsensusConfig::prepare`] is the only way to obtain the
//! decoded keys, participant set, peer map and threshold signer the engine is built from, so
//! nothing reaches commonware without passing [`ConsensusConfig::validate`] (commonware's
//! `vrf::Scheme::signer` asserts what `prepare` checks first).

use super::{
    beacon::{BeaconKey, BeaconPublic, BeaconScheme},
    error::ConfigError,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_consensus::simplex::max_payload_size;
use commonware_cryptography::{
    ChaCha20Poly1305, Signer as _, ed25519, sha256::Digest as Sha256Digest,
};
use commonware_p2p::{Address, authenticated::max_size, utils::mux::prefixed};
use commonware_stream::SakeCups;
use commonware_utils::{
    N3f1,
    ordered::{Map, Quorum as _, Set},
};
use std::{
    fmt,
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    path::PathBuf,
    time::Duration,
};

/// Largest validator set the driver accepts. Threshold certificates are constant-size, but
/// the public polynomial (one G2 point per `2f + 1`) and the per-vote checks against it grow
/// with the set; this bounds both, and the work of decoding a polynomial file.
pub const VALIDATORS_MAX: u32 = 1_024;

/// Ready-queue capacity of each internal mailbox (simplex's actors, the driver's, the p2p
/// network's) before its overflow policy applies. Consensus issues a handful of requests per
/// view, so this is far above steady-state use.
pub(crate) const MAILBOX_SIZE: NonZeroUsize = NonZeroUsize::new(1_024).expect("non-zero");

/// Bytes buffered while replaying the consensus journal at startup (1 MiB).
pub(crate) const REPLAY_BUFFER_BYTES: NonZeroUsize = NonZeroUsize::new(1 << 20).expect("non-zero");

/// Bytes of write buffer per journal blob (1 MiB).
pub(crate) const WRITE_BUFFER_BYTES: NonZeroUsize = NonZeroUsize::new(1 << 20).expect("non-zero");

/// Pages held by the journal's page cache. With aligned 4 KiB physical pages this allocates
/// about 4 MiB up front.
pub(crate) const PAGE_CACHE_PAGES: NonZeroUsize = NonZeroUsize::new(1_024).expect("non-zero");

/// Default [`ConsensusConfig::journal_prefix`] (the partition name every release used).
pub const JOURNAL_PREFIX_DEFAULT: &str = "poi-simplex";

/// Default longest encoded block accepted on the block channel (4 MiB).
pub const MAX_BLOCK_BYTES_DEFAULT: u32 = 4 << 20;

/// Default minimum time between a proposal request and the release of its digest.
pub const BLOCK_INTERVAL_DEFAULT: Duration = Duration::from_millis(250);

/// The p2p handshake and transport used between validators.
pub(crate) type Transport = SakeCups<ed25519::PrivateKey, ChaCha20Poly1305>;

/// One member of the validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    /// ed25519 public key (32 bytes): the p2p identity, and the participant identity consensus
    /// orders the validator set by (votes are signed with the validator's beacon share).
    pub public_key: [u8; 32],
    /// Address other validators dial to reach this one.
    pub address: SocketAddr,
}

/// What this node does in consensus.
#[derive(Clone, Debug)]
pub enum Role {
    /// Votes (and proposes when it leads) with its share of the group key.
    Validator(BeaconKey),
    /// Follows the chain without voting: it verifies every vote and certificate against the
    /// public polynomial, executes every finalized block, and serves the API. Validators must
    /// list it in [`ConsensusConfig::full_nodes`] for the p2p layer to admit it.
    FullNode(BeaconPublic),
}

/// Consensus timeouts. The defaults suit validators on one continent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a view waits for its leader's proposal before voting to skip it.
    /// Must exceed [`ConsensusConfig::block_interval`] plus one network hop.
    pub leader: Duration,
    /// How long a view waits for certification progress; must exceed `leader`.
    pub certification: Duration,
    /// How often a nullify vote is re-broadcast while a view is stuck.
    pub nullify_retry: Duration,
    /// After this long without activity from a leader (while a quorum is active) its views are
    /// skipped at once. `None` disables the fast skip. Must exceed `certification` and
    /// `nullify_retry`.
    pub skip: Option<Duration>,
    /// How long to wait for a peer to answer a certificate request.
    pub fetch: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_secs(1),
            certification: Duration::from_secs(2),
            nullify_retry: Duration::from_secs(2),
            skip: Some(Duration::from_secs(10)),
            fetch: Duration::from_secs(1),
        }
    }
}

/// Which p2p connection policy to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkProfile {
    /// Private and loopback addresses allowed, fast redial (1 s cooldown). For devnets and tests.
    #[default]
    Local,
    /// commonware's recommended production settings: public addresses only, 60 s redial
    /// cooldown per peer.
    Production,
}

/// Everything needed to run one validator.
///
/// Start from [`ConsensusConfig::new`] (or [`ConsensusConfig::single`] for a one-validator
/// chain) and override fields as needed; [`run`](super::run) validates it before starting.
#[derive(Clone)]
pub struct ConsensusConfig {
    /// Directory of the commonware storage (the consensus journal). Keep it across restarts:
    /// it records this validator's votes, and losing it risks signing conflicting votes.
    pub storage_dir: PathBuf,
    /// Secret 32-byte ed25519 seed of this validator (its p2p identity).
    pub signing_key_seed: [u8; 32],
    /// A validator's share of the group key consensus votes are signed with (and the public
    /// polynomial of the dealing, see [`super::beacon`]), or a full node's polynomial alone.
    pub role: Role,
    /// The validator set, identical (up to order) on every validator.
    pub validators: Vec<Validator>,
    /// Full nodes: peers that follow without voting. They receive votes, certificates and
    /// blocks, answer block requests and gossip transactions. The p2p layer admits only
    /// validators and the full nodes listed here, so every node should list the same ones.
    pub full_nodes: Vec<Validator>,
    /// Address the p2p network listens on.
    pub listen: SocketAddr,
    /// Chain id. Separates signatures and p2p handshakes of different chains.
    pub namespace: Vec<u8>,
    /// Consensus epoch. A new validator set needs a new epoch (and a new engine).
    pub epoch: u64,
    /// Name prefix of the journal partition (`<prefix>-e<epoch>`) under `storage_dir`.
    /// Validators sharing one storage (a simulation) need distinct prefixes; changing it on a
    /// running validator loses its journal, which risks signing conflicting votes.
    pub journal_prefix: String,
    /// Consensus timeouts.
    pub timeouts: Timeouts,
    /// Minimum time from a proposal request (entering a view we lead) to releasing the block's
    /// digest. Zero proposes as fast as blocks are built.
    pub block_interval: Duration,
    /// Views kept (in memory and in the journal) below the last finalized view.
    pub view_retention: u64,
    /// Longest encoded block sent or accepted on the block channel, in bytes.
    pub max_block_bytes: u32,
    /// Messages per second accepted from (and sent to) each peer on each p2p channel. A view
    /// costs about two votes per validator, so the default (1000) allows ~500 views/s.
    pub messages_per_second: NonZeroU32,
    /// p2p connection policy.
    pub network: NetworkProfile,
    /// Worker threads of the tokio runtime built by [`run`](super::run).
    pub worker_threads: usize,
    /// Whether [`run`](super::run) stops on Ctrl-C (SIGINT).
    pub stop_on_ctrl_c: bool,
}

impl fmt::Debug for ConsensusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsensusConfig")
            .field("storage_dir", &self.storage_dir)
            .field("signing_key_seed", &"<redacted>")
            .field("role", &self.role)
            .field("validators", &self.validators)
            .field("full_nodes", &self.full_nodes)
            .field("listen", &self.listen)
            .field("namespace", &hex::encode(&self.namespace))
            .field("epoch", &self.epoch)
            .field("journal_prefix", &self.journal_prefix)
            .field("timeouts", &self.timeouts)
            .field("block_interval", &self.block_interval)
            .field("view_retention", &self.view_retention)
            .field("max_block_bytes", &self.max_block_bytes)
            .field("messages_per_second", &self.messages_per_second)
            .field("network", &self.network)
            .field("worker_threads", &self.worker_threads)
            .field("stop_on_ctrl_c", &self.stop_on_ctrl_c)
            .finish()
    }
}

/// Returns the ed25519 public key of a signing key seed.
pub fn validator_public_key(signing_key_seed: &[u8; 32]) -> [u8; 32] {
    let public = signing_key(signing_key_seed).public_key().encode();
    let mut key = [0u8; 32];
    key.copy_from_slice(&public);
    key
}

fn signing_key(seed: &[u8; 32]) -> ed25519::PrivateKey {
    // Any 32 bytes are a valid ed25519 seed, so decoding a fixed-size array cannot fail.
    ed25519::PrivateKey::decode(seed.to_vec()).expect("32 bytes decode as an ed25519 seed")
}

impl ConsensusConfig {
    /// A config with default timeouts and limits for the given validator set; `beacon` is this
    /// validator's key from a dealing over exactly that set.
    pub fn new(
        storage_dir: impl Into<PathBuf>,
        signing_key_seed: [u8; 32],
        beacon: BeaconKey,
        listen: SocketAddr,
        validators: Vec<Validator>,
        namespace: impl Into<Vec<u8>>,
    ) -> Self {
        Self::with_role(
            storage_dir,
            signing_key_seed,
            Role::Validator(beacon),
            listen,
            validators,
            namespace,
        )
    }

    fn with_role(
        storage_dir: impl Into<PathBuf>,
        signing_key_seed: [u8; 32],
        role: Role,
        listen: SocketAddr,
        validators: Vec<Validator>,
        namespace: impl Into<Vec<u8>>,
    ) -> Self {
        let worker_threads = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self {
            storage_dir: storage_dir.into(),
            signing_key_seed,
            role,
            validators,
            full_nodes: Vec::new(),
            listen,
            namespace: namespace.into(),
            epoch: 0,
            journal_prefix: JOURNAL_PREFIX_DEFAULT.to_owned(),
            timeouts: Timeouts::default(),
            block_interval: BLOCK_INTERVAL_DEFAULT,
            view_retention: 10,
            max_block_bytes: MAX_BLOCK_BYTES_DEFAULT,
            messages_per_second: NonZeroU32::new(1_000).expect("non-zero"),
            network: NetworkProfile::Local,
            worker_threads,
            stop_on_ctrl_c: true,
        }
    }

    /// A one-validator chain: this node is the whole validator set, listening on `listen`.
    /// Every block notarizes and finalizes locally (quorum 1). `beacon` comes from a dealing
    /// to this one validator.
    pub fn single(
        storage_dir: impl Into<PathBuf>,
        signing_key_seed: [u8; 32],
        beacon: BeaconKey,
        listen: SocketAddr,
        namespace: impl Into<Vec<u8>>,
    ) -> Self {
        let me = Validator {
            public_key: validator_public_key(&signing_key_seed),
            address: listen,
        };
        Self::new(
            storage_dir,
            signing_key_seed,
            beacon,
            listen,
            vec![me],
            namespace,
        )
    }

    /// A full node of the chain whose validator set is `validators` and whose dealing has the
    /// public polynomial `beacon`; `listen` must be in `full_nodes` of the validators'
    /// configs (and is added to this config's).
    pub fn full_node(
        storage_dir: impl Into<PathBuf>,
        signing_key_seed: [u8; 32],
        beacon: BeaconPublic,
        listen: SocketAddr,
        validators: Vec<Validator>,
        namespace: impl Into<Vec<u8>>,
    ) -> Self {
        let me = Validator {
            public_key: validator_public_key(&signing_key_seed),
            address: listen,
        };
        let mut cfg = Self::with_role(
            storage_dir,
            signing_key_seed,
            Role::FullNode(beacon),
            listen,
            validators,
            namespace,
        );
        cfg.full_nodes.push(me);
        cfg
    }

    /// The beacon key of a validator (`None` for a full node).
    pub fn beacon_key(&self) -> Option<&BeaconKey> {
        match &self.role {
            Role::Validator(key) => Some(key),
            Role::FullNode(_) => None,
        }
    }

    /// Whether this node votes.
    pub fn is_validator(&self) -> bool {
        matches!(self.role, Role::Validator(_))
    }

    /// The public key of this validator.
    pub fn public_key(&self) -> [u8; 32] {
        validator_public_key(&self.signing_key_seed)
    }

    /// Checks everything commonware would otherwise assert (or silently mishandle).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.prepare().map(|_| ())
    }

    /// Validates and decodes the config into what the engine is built from.
    pub(crate) fn prepare(&self) -> Result<Prepared, ConfigError> {
        if self.namespace.is_empty() {
            return Err(ConfigError::EmptyNamespace);
        }
        let prefix = &self.journal_prefix;
        if prefix.is_empty()
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::JournalPrefix(prefix.clone()));
        }
        let (participants, peers) = self.validator_set()?;
        let full_nodes = self.full_node_set(&participants)?;
        let signer = signing_key(&self.signing_key_seed);
        let scheme = match &self.role {
            Role::Validator(beacon) => self.threshold_signer(&participants, &signer, beacon)?,
            Role::FullNode(beacon) => self.threshold_verifier(&participants, &signer, beacon)?,
        };
        self.validate_timeouts()?;
        if self.view_retention == 0 {
            return Err(ConfigError::ViewRetentionZero);
        }
        let transport_max = max_size::<Transport>();
        if self.max_block_bytes == 0 || self.max_block_bytes > transport_max {
            return Err(ConfigError::MaxBlockBytes {
                bytes: self.max_block_bytes,
                max: transport_max,
            });
        }
        if self.worker_threads == 0 {
            return Err(ConfigError::WorkerThreadsZero);
        }
        // Checked against VALIDATORS_MAX in `validator_set`, so the count fits in u32.
        let count = u32::try_from(participants.len()).expect("count bounded by VALIDATORS_MAX");
        let consensus_bytes = max_payload_size::<BeaconScheme, Sha256Digest>(count);
        // Consensus and block messages carry a subchannel prefix (see `engine.rs`).
        let max_message_size = commonware_p2p::max_message_size(&[
            prefixed(consensus_bytes),
            prefixed(self.max_block_bytes as usize),
        ]);
        if max_message_size > transport_max {
            return Err(ConfigError::TooManyValidators {
                count: participants.len(),
                max: VALIDATORS_MAX,
            });
        }
        assert!(max_message_size >= self.max_block_bytes);
        Ok(Prepared {
            signer,
            scheme,
            participants,
            peers,
            full_nodes,
            max_message_size,
            cfg: self.clone(),
        })
    }

    /// The threshold signer of this validator, after every check `vrf::Scheme::signer`
    /// would otherwise assert.
    fn threshold_signer(
        &self,
        participants: &Set<ed25519::PublicKey>,
        signer: &ed25519::PrivateKey,
        beacon: &BeaconKey,
    ) -> Result<BeaconScheme, ConfigError> {
        let me = signer.public_key();
        let position = participants
            .index(&me)
            .ok_or_else(|| ConfigError::NotAValidator {
                key: hex::encode(me.encode()),
            })?;
        check_dealing(participants, beacon.validators(), beacon.threshold())?;
        if beacon.share_index() != position.get() {
            return Err(ConfigError::BeaconShareNotOurs {
                share_index: beacon.share_index(),
                position: position.get(),
            });
        }
        // `BeaconKey::new` checked the share against the polynomial, so the signer exists.
        let scheme = BeaconScheme::signer(
            &self.consensus_namespace(),
            participants.clone(),
            beacon.polynomial().clone(),
            beacon.share().clone(),
        )
        .expect("share checked against the polynomial");
        Ok(scheme)
    }

    /// The verifying scheme of a full node, after the checks `vrf::Scheme::verifier` asserts.
    fn threshold_verifier(
        &self,
        participants: &Set<ed25519::PublicKey>,
        signer: &ed25519::PrivateKey,
        beacon: &BeaconPublic,
    ) -> Result<BeaconScheme, ConfigError> {
        let me = signer.public_key();
        if participants.index(&me).is_some() {
            return Err(ConfigError::FullNodeIsValidator {
                key: hex::encode(me.encode()),
            });
        }
        check_dealing(participants, beacon.validators(), beacon.threshold())?;
        Ok(BeaconScheme::verifier(
            &self.consensus_namespace(),
            participants.clone(),
            beacon.polynomial().clone(),
        ))
    }

    /// The full nodes, sorted, with their addresses; none may be a validator.
    fn full_node_set(
        &self,
        participants: &Set<ed25519::PublicKey>,
    ) -> Result<Map<ed25519::PublicKey, Address>, ConfigError> {
        let mut entries = Vec::with_capacity(self.full_nodes.len());
        for (index, node) in self.full_nodes.iter().enumerate() {
            let key = ed25519::PublicKey::decode(node.public_key.to_vec()).map_err(|_| {
                ConfigError::InvalidFullNodeKey {
                    index,
                    key: hex::encode(node.public_key),
                }
            })?;
            if participants.index(&key).is_some() {
                return Err(ConfigError::DuplicateFullNode {
                    key: hex::encode(node.public_key),
                });
            }
            entries.push((key, Address::Symmetric(node.address)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(ConfigError::DuplicateFullNode {
                key: hex::encode(pair[0].0.encode()),
            });
        }
        if participants.len() + entries.len() > VALIDATORS_MAX as usize {
            return Err(ConfigError::TooManyValidators {
                count: participants.len() + entries.len(),
                max: VALIDATORS_MAX,
            });
        }
        Ok(Map::try_from(entries).expect("sorted unique keys"))
    }

    fn validator_set(
        &self,
    ) -> Result<(Set<ed25519::PublicKey>, Map<ed25519::PublicKey, Address>), ConfigError> {
        if self.validators.is_empty() {
            return Err(ConfigError::NoValidators);
        }
        if self.validators.len() > VALIDATORS_MAX as usize {
            return Err(ConfigError::TooManyValidators {
                count: self.validators.len(),
                max: VALIDATORS_MAX,
            });
        }
        let mut entries = Vec::with_capacity(self.validators.len());
        for (index, validator) in self.validators.iter().enumerate() {
            let key = ed25519::PublicKey::decode(validator.public_key.to_vec()).map_err(|_| {
                ConfigError::InvalidValidatorKey {
                    index,
                    key: hex::encode(validator.public_key),
                }
            })?;
            entries.push((key, Address::Symmetric(validator.address)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(ConfigError::DuplicateValidator {
                key: hex::encode(pair[0].0.encode()),
            });
        }
        let keys: Vec<_> = entries.iter().map(|(key, _)| key.clone()).collect();
        // Sorted and free of duplicates, so neither conversion can fail.
        let participants = Set::try_from(keys).expect("sorted unique keys");
        let peers = Map::try_from(entries).expect("sorted unique keys");
        assert_eq!(participants.len(), self.validators.len());
        Ok((participants, peers))
    }

    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        let t = &self.timeouts;
        if t.leader.is_zero() {
            return Err(ConfigError::LeaderTimeoutZero);
        }
        if t.certification <= t.leader {
            return Err(ConfigError::CertificationNotAfterLeader {
                leader: t.leader,
                certification: t.certification,
            });
        }
        if t.nullify_retry.is_zero() {
            return Err(ConfigError::NullifyRetryZero);
        }
        if let Some(skip) = t.skip
            && (skip <= t.certification || skip <= t.nullify_retry)
        {
            return Err(ConfigError::SkipTooShort {
                skip,
                certification: t.certification,
                nullify_retry: t.nullify_retry,
            });
        }
        if t.fetch.is_zero() {
            return Err(ConfigError::FetchTimeoutZero);
        }
        if self.block_interval >= t.leader {
            return Err(ConfigError::BlockIntervalTooLong {
                interval: self.block_interval,
                leader: t.leader,
            });
        }
        Ok(())
    }

    /// Name of the journal partition: unique per epoch, as commonware requires.
    pub(crate) fn partition(&self) -> String {
        format!("{}-e{}", self.journal_prefix, self.epoch)
    }

    /// Namespace consensus votes and certificates are signed under (what a verifier of
    /// [`Fault`](super::Fault) evidence or of certificates needs besides the keys).
    pub fn consensus_namespace(&self) -> Vec<u8> {
        consensus_namespace(&self.namespace)
    }

    /// The namespace seeds are signed under (recorded in genesis for core to check seeds).
    pub fn seed_namespace(&self) -> Vec<u8> {
        super::beacon::seed_namespace_of(&self.consensus_namespace())
    }

    /// Namespace for p2p handshakes.
    pub(crate) fn p2p_namespace(&self) -> Vec<u8> {
        commonware_utils::union(&self.namespace, b"_P2P")
    }
}

/// Namespace for consensus signatures of chain id `namespace` (`<namespace>_CONSENSUS`).
pub fn consensus_namespace(namespace: &[u8]) -> Vec<u8> {
    commonware_utils::union(namespace, b"_CONSENSUS")
}

/// Checks that a dealing's polynomial fits the validator set (what commonware asserts).
fn check_dealing(
    participants: &Set<ed25519::PublicKey>,
    dealt: u32,
    threshold: u32,
) -> Result<(), ConfigError> {
    if dealt as usize != participants.len() {
        return Err(ConfigError::BeaconSetSize {
            dealt,
            validators: participants.len(),
        });
    }
    let quorum = participants.quorum::<N3f1>();
    if threshold != quorum {
        return Err(ConfigError::BeaconThreshold { threshold, quorum });
    }
    Ok(())
}

/// A validated config, decoded into commonware types.
pub(crate) struct Prepared {
    /// This validator's signing key.
    pub(crate) signer: ed25519::PrivateKey,
    /// This validator's consensus signing scheme over `participants`.
    pub(crate) scheme: BeaconScheme,
    /// The validator set, sorted.
    pub(crate) participants: Set<ed25519::PublicKey>,
    /// Where each validator listens.
    pub(crate) peers: Map<ed25519::PublicKey, Address>,
    /// Where each full node listens (none of them a validator).
    pub(crate) full_nodes: Map<ed25519::PublicKey, Address>,
    /// p2p payload limit: the larger of consensus messages and blocks.
    pub(crate) max_message_size: u32,
    /// The config it came from.
    pub(crate) cfg: ConsensusConfig,
}

impl Prepared {
    /// Validators other than this one.
    pub(crate) fn peers(&self) -> Vec<ed25519::PublicKey> {
        let me = self.signer.public_key();
        let peers: Vec<_> = self
            .participants
            .iter()
            .filter(|key| **key != me)
            .cloned()
            .collect();
        let this_votes = usize::from(self.cfg.is_validator());
        assert_eq!(peers.len() + this_votes, self.participants.len());
        peers
    }
}
