//! A node's home directory: configuration, genesis, validator key and data.
//!
//! # Layout
//! ```text
//! HOME/config.toml     node settings (API and p2p addresses, block interval)
//! HOME/genesis.toml    the chain's genesis (see poi_core::genesis)
//! HOME/node_key.json   this validator's ed25519 seed (0600; keep it secret and backed up)
//! HOME/node_share.json this validator's share of the beacon group key (0600; secret, backed up)
//! HOME/beacon_polynomial.json  the public polynomial of the beacon dealing (same on every node)
//! HOME/shares/generation-<g>.json  this validator's share of signer generation g >= 1 (0600;
//!                      written when the key is reshared to a new validator set)
//! HOME/keys/           the CLI keystore (user keys)
//! HOME/data/state.redb committed chain state, blocks and receipts
//! HOME/data/proposals/ blocks proposed or received, not yet final
//! HOME/data/consensus/ the consensus journal (votes: never delete while the chain runs)
//! ```
//!
//! # Formats
//! - `node_key.json`: `{"seed": "<64 hex>"}`.
//! - `node_share.json`: `{"share": "<hex>"}`, the share in commonware's codec (varint index,
//!   32-byte scalar). Consensus votes are signed with it; losing it means the validator can
//!   no longer vote, and the group key is re-dealt for a new chain.
//! - `beacon_polynomial.json`: `{"validators": n, "identity": "<192 hex>", "polynomial":
//!   "<hex>"}`, the public polynomial in commonware's codec; `identity` (its constant term,
//!   the 96-byte group key) must equal genesis' `beacon.identity`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use poi_core::genesis::Genesis;
use serde::{Deserialize, Serialize};

use crate::consensus::BeaconKey;

use crate::error::{NodeError, Result};

/// Default HTTP API address.
pub const API_ADDR_DEFAULT: &str = "127.0.0.1:7070";
/// Default p2p (consensus) address.
pub const P2P_ADDR_DEFAULT: &str = "127.0.0.1:7071";
/// Default time between blocks, in milliseconds.
pub const BLOCK_INTERVAL_MS_DEFAULT: u64 = 250;
/// Shortest allowed block interval: below it the proposer spins on empty blocks.
pub const BLOCK_INTERVAL_MS_MIN: u64 = 10;

/// `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// Where consensus p2p listens.
    pub p2p_addr: SocketAddr,
    /// Minimum time between proposals, in milliseconds.
    pub block_interval_ms: u64,
    /// Where the other nodes listen: one `[[peers]]` entry per genesis validator except this
    /// one (empty on a one-validator chain), plus one per full node this node admits (an entry
    /// whose key is not a genesis validator is a full node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerConfig>,
}

/// One `[[peers]]` entry of `config.toml`: another node's key and p2p address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The validator's ed25519 public key, 64 hex characters (its genesis address as hex).
    pub public_key: String,
    /// Its p2p address.
    pub p2p_addr: SocketAddr,
}

impl PeerConfig {
    /// The decoded public key.
    pub fn key(&self) -> Result<[u8; 32]> {
        hex::decode(self.public_key.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| {
                NodeError::Config(format!(
                    "peer public_key {:?} is not 64 hex characters",
                    self.public_key
                ))
            })
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            api_addr: API_ADDR_DEFAULT.parse().expect("valid default"),
            p2p_addr: P2P_ADDR_DEFAULT.parse().expect("valid default"),
            block_interval_ms: BLOCK_INTERVAL_MS_DEFAULT,
            peers: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// The block interval.
    pub fn block_interval(&self) -> Duration {
        Duration::from_millis(self.block_interval_ms)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if self.block_interval_ms < BLOCK_INTERVAL_MS_MIN {
            return Err(NodeError::Config(format!(
                "block_interval_ms = {} is below the minimum {BLOCK_INTERVAL_MS_MIN}",
                self.block_interval_ms
            )));
        }
        let mut keys = std::collections::BTreeSet::new();
        for peer in &self.peers {
            if !keys.insert(peer.key()?) {
                return Err(NodeError::Config(format!(
                    "peer {} is listed twice in [[peers]]",
                    peer.public_key
                )));
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeKeyFile {
    /// Hex ed25519 seed.
    seed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeShareFile {
    /// Hex share (commonware codec).
    share: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BeaconPolynomialFile {
    /// Validators the polynomial was dealt for.
    validators: u32,
    /// Hex group identity (96 bytes), for people and for a consistency check.
    identity: String,
    /// Hex public polynomial (commonware codec).
    polynomial: String,
}

/// Paths inside a home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A home rooted at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `genesis.toml`.
    pub fn genesis_path(&self) -> PathBuf {
        self.root.join("genesis.toml")
    }

    /// `node_key.json`.
    pub fn node_key_path(&self) -> PathBuf {
        self.root.join("node_key.json")
    }

    /// `node_share.json`.
    pub fn node_share_path(&self) -> PathBuf {
        self.root.join("node_share.json")
    }

    /// `beacon_polynomial.json`.
    pub fn beacon_polynomial_path(&self) -> PathBuf {
        self.root.join("beacon_polynomial.json")
    }

    /// `keys/`.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// `data/`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `data/consensus/`.
    pub fn consensus_dir(&self) -> PathBuf {
        self.data_dir().join("consensus")
    }

    /// Whether the home has been initialised.
    pub fn is_initialized(&self) -> bool {
        self.config_path().exists() && self.genesis_path().exists()
    }

    /// Writes config, genesis, node key and beacon key (share and polynomial). Refuses to
    /// overwrite an initialised home.
    pub fn init(
        &self,
        config: &NodeConfig,
        genesis: &Genesis,
        node_seed: [u8; 32],
        beacon: &BeaconKey,
    ) -> Result<()> {
        self.init_with(config, genesis, node_seed, |home| {
            let share = serde_json::to_string_pretty(&NodeShareFile {
                share: hex::encode(beacon.share_bytes()),
            })
            .expect("serialises");
            write_private(&home.node_share_path(), share.as_bytes())?;
            let polynomial = serde_json::to_string_pretty(&BeaconPolynomialFile {
                validators: beacon.validators(),
                identity: hex::encode(beacon.identity()),
                polynomial: hex::encode(beacon.polynomial_bytes()),
            })
            .expect("serialises");
            write_file(&home.beacon_polynomial_path(), polynomial.as_bytes())
        })
    }

    /// Writes config, genesis and node key of a full node (no beacon share: it does not
    /// vote). Refuses to overwrite an initialised home.
    pub fn init_full_node(
        &self,
        config: &NodeConfig,
        genesis: &Genesis,
        node_seed: [u8; 32],
    ) -> Result<()> {
        self.init_with(config, genesis, node_seed, |_| Ok(()))
    }

    /// The steps of every init: checks, the node key, `keys` (the role's files), then config
    /// and genesis last, so that a home interrupted mid-way does not count as initialised.
    fn init_with(
        &self,
        config: &NodeConfig,
        genesis: &Genesis,
        node_seed: [u8; 32],
        keys: impl FnOnce(&Self) -> Result<()>,
    ) -> Result<()> {
        if self.is_initialized() {
            return Err(NodeError::Config(format!(
                "{} is already initialised; use another --home or delete it",
                self.root.display()
            )));
        }
        config.validate()?;
        genesis
            .validate()
            .map_err(|e| NodeError::Genesis(e.to_string()))?;
        std::fs::create_dir_all(&self.root).map_err(|e| NodeError::io("create", &self.root, e))?;
        let key = serde_json::to_string_pretty(&NodeKeyFile {
            seed: hex::encode(node_seed),
        })
        .expect("serialises");
        write_private(&self.node_key_path(), key.as_bytes())?;
        keys(self)?;
        let config_text = toml::to_string_pretty(config).expect("serialises");
        write_file(&self.config_path(), config_text.as_bytes())?;
        write_file(&self.genesis_path(), genesis.to_toml().as_bytes())
    }

    /// Reads `config.toml`.
    pub fn config(&self) -> Result<NodeConfig> {
        let path = self.config_path();
        let text = read_text(&path, &self.root)?;
        let config: NodeConfig = toml::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `genesis.toml`.
    pub fn genesis(&self) -> Result<Genesis> {
        let path = self.genesis_path();
        let text = read_text(&path, &self.root)?;
        Genesis::from_toml(&text)
            .map_err(|e| NodeError::Genesis(format!("{}: {e}", path.display())))
    }

    /// Reads the validator seed.
    pub fn node_seed(&self) -> Result<[u8; 32]> {
        let path = self.node_key_path();
        let text = read_text(&path, &self.root)?;
        let file: NodeKeyFile = serde_json::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let bytes = hex::decode(file.seed.trim())
            .map_err(|_| NodeError::Config(format!("{}: seed is not hex", path.display())))?;
        bytes
            .try_into()
            .map_err(|_| NodeError::Config(format!("{}: seed is not 32 bytes", path.display())))
    }

    /// `shares/generation-<g>.json`: this validator's share of signer generation `g >= 1`
    /// (written by the key reshare; same format as `node_share.json`).
    pub fn generation_share_path(&self, generation: u64) -> PathBuf {
        self.root
            .join("shares")
            .join(format!("generation-{generation}.json"))
    }

    /// Writes this validator's share of generation `generation` (0600), atomically: a crash
    /// leaves the old file or the new one.
    pub fn write_generation_share(&self, generation: u64, share: &[u8]) -> Result<()> {
        let path = self.generation_share_path(generation);
        let dir = path.parent().expect("a file in shares/");
        std::fs::create_dir_all(dir).map_err(|e| NodeError::io("create", dir, e))?;
        let text = serde_json::to_string_pretty(&NodeShareFile {
            share: hex::encode(share),
        })
        .expect("serialises");
        let partial = path.with_extension("json.partial");
        // A crash may have left a partial file behind; it never replaced the real one.
        let _ = std::fs::remove_file(&partial);
        write_private(&partial, text.as_bytes())?;
        std::fs::rename(&partial, &path).map_err(|e| NodeError::io("rename", &partial, e))
    }

    /// `shares/reshare-journal.bin`: the dealings this node accepted in the open key-reshare
    /// round (secret; see `reshare`).
    pub fn reshare_journal_path(&self) -> PathBuf {
        self.root.join("shares").join("reshare-journal.bin")
    }

    /// The reshare journal, empty when there is none.
    pub fn reshare_journal(&self) -> Result<Vec<u8>> {
        let path = self.reshare_journal_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(NodeError::io("read", &path, e)),
        }
    }

    /// Replaces the reshare journal atomically (0600, synced before the rename).
    pub fn write_reshare_journal(&self, journal: &[u8]) -> Result<()> {
        let path = self.reshare_journal_path();
        let dir = path.parent().expect("a file in shares/");
        std::fs::create_dir_all(dir).map_err(|e| NodeError::io("create", dir, e))?;
        let partial = path.with_extension("bin.partial");
        // A crash may have left a partial file behind; it never replaced the real one.
        let _ = std::fs::remove_file(&partial);
        write_private(&partial, journal)?;
        std::fs::rename(&partial, &path).map_err(|e| NodeError::io("rename", &partial, e))
    }

    /// Reads this validator's share of generation `generation`, checked against that
    /// generation's public polynomial (from the chain).
    pub fn generation_share(&self, generation: u64, polynomial: &[u8]) -> Result<BeaconKey> {
        let path = self.generation_share_path(generation);
        if !path.exists() {
            return Err(NodeError::Config(format!(
                "this node is a validator of signer generation {generation} but has no share \
                 of it ({} is missing: the node was not running while the key was reshared)",
                path.display()
            )));
        }
        let text = read_text(&path, &self.root)?;
        let file: NodeShareFile = serde_json::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let share = hex::decode(file.share.trim())
            .map_err(|_| NodeError::Config(format!("{}: share is not hex", path.display())))?;
        BeaconKey::from_bytes(polynomial, &share).map_err(|e| {
            NodeError::Config(format!(
                "{} does not fit generation {generation}'s polynomial: {e}",
                path.display()
            ))
        })
    }

    /// Reads this validator's beacon key: `node_share.json` and `beacon_polynomial.json`.
    pub fn beacon_key(&self) -> Result<BeaconKey> {
        let share_path = self.node_share_path();
        let polynomial_path = self.beacon_polynomial_path();
        for path in [&share_path, &polynomial_path] {
            if !path.exists() && self.is_initialized() {
                return Err(NodeError::Config(format!(
                    "{} is missing: this home predates the threshold-VRF beacon; re-initialise \
                     it with `poi node init --home NEW` (or `poi devnet --home NEW`)",
                    path.display()
                )));
            }
        }
        let share_text = read_text(&share_path, &self.root)?;
        let share: NodeShareFile = serde_json::from_str(&share_text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", share_path.display())))?;
        let share = hex::decode(share.share.trim()).map_err(|_| {
            NodeError::Config(format!("{}: share is not hex", share_path.display()))
        })?;
        let polynomial_text = read_text(&polynomial_path, &self.root)?;
        let file: BeaconPolynomialFile = serde_json::from_str(&polynomial_text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", polynomial_path.display())))?;
        let polynomial = hex::decode(file.polynomial.trim()).map_err(|_| {
            NodeError::Config(format!(
                "{}: polynomial is not hex",
                polynomial_path.display()
            ))
        })?;
        let key = BeaconKey::from_bytes(&polynomial, &share).map_err(|e| {
            NodeError::Config(format!(
                "{} and {} do not form a beacon key: {e}",
                share_path.display(),
                polynomial_path.display()
            ))
        })?;
        if file.identity.trim() != hex::encode(key.identity())
            || file.validators != key.validators()
        {
            return Err(NodeError::Config(format!(
                "{}: identity or validator count does not match the polynomial",
                polynomial_path.display()
            )));
        }
        Ok(key)
    }
}

fn read_text(path: &Path, root: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NodeError::Config(format!(
                "{} not found; is {} a poi home? Consider `poi node init --home {}`",
                path.display(),
                root.display(),
                root.display()
            ))
        } else {
            NodeError::io("read", path, e)
        }
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| NodeError::io("write", path, e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| NodeError::io("create", path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| NodeError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{beacon, validator_public_key};
    use poi_core::params::Params;

    fn genesis() -> Genesis {
        Genesis {
            chain_id: "poi-test".into(),
            genesis_time_ms: 0,
            validators: vec![poi_core::Address(validator_public_key(&[5; 32]))],
            params: Params::default(),
            accounts: vec![],
            beacon: None,
            models: Vec::new(),
            data: Vec::new(),
        }
    }

    fn initialised() -> (tempfile::TempDir, Home, BeaconKey) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("home"));
        let key = beacon::deal(&[validator_public_key(&[5; 32])])
            .unwrap()
            .remove(0);
        home.init(&NodeConfig::default(), &genesis(), [5; 32], &key)
            .unwrap();
        (dir, home, key)
    }

    #[test]
    fn bad_or_repeated_peers_are_config_errors() {
        let peer = PeerConfig {
            public_key: hex::encode([9u8; 32]),
            p2p_addr: "127.0.0.1:7501".parse().unwrap(),
        };
        let mut config = NodeConfig {
            peers: vec![peer.clone()],
            ..NodeConfig::default()
        };
        config.validate().unwrap();
        config.peers.push(peer.clone());
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("listed twice"), "{error}");
        config.peers = vec![PeerConfig {
            public_key: "abc".into(),
            ..peer
        }];
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("not 64 hex characters"), "{error}");
    }

    #[test]
    fn the_beacon_key_round_trips_and_the_share_is_private() {
        let (_dir, home, key) = initialised();
        let read = home.beacon_key().unwrap();
        assert_eq!(read.identity(), key.identity());
        assert_eq!(read.share_bytes(), key.share_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.node_share_path())
                .unwrap()
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_or_corrupt_share_is_a_one_line_error() {
        let (_dir, home, _) = initialised();
        let share = std::fs::read_to_string(home.node_share_path()).unwrap();
        std::fs::write(home.node_share_path(), "{\"share\": \"00ff\"}").unwrap();
        let error = home.beacon_key().unwrap_err().to_string();
        assert!(error.contains("do not form a beacon key"), "{error}");
        std::fs::write(home.node_share_path(), "not json").unwrap();
        assert!(matches!(home.beacon_key(), Err(NodeError::Config(_))));
        // A share of another dealing.
        let other = beacon::deal(&[validator_public_key(&[5; 32])])
            .unwrap()
            .remove(0);
        let other_share = format!("{{\"share\": \"{}\"}}", hex::encode(other.share_bytes()));
        std::fs::write(home.node_share_path(), other_share).unwrap();
        let error = home.beacon_key().unwrap_err().to_string();
        assert!(error.contains("does not belong"), "{error}");
        std::fs::write(home.node_share_path(), share).unwrap();
        home.beacon_key().unwrap();
        // A home from before the beacon.
        std::fs::remove_file(home.node_share_path()).unwrap();
        let error = home.beacon_key().unwrap_err().to_string();
        assert!(
            error.contains("predates the threshold-VRF beacon") && error.contains("poi node init"),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }
}
