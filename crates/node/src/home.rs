//! A node's home directory: configuration, genesis, validator key and data.
//!
//! # Layout
//! ```text
//! HOME/config.toml     node settings (API and p2p addresses, block interval)
//! HOME/genesis.toml    the chain's genesis (see poi_core::genesis)
//! HOME/node_key.json   this validator's ed25519 seed (0600; keep it secret and backed up)
//! HOME/keys/           the CLI keystore (user keys)
//! HOME/data/state.redb committed chain state, blocks and receipts
//! HOME/data/proposals/ blocks proposed or received, not yet final
//! HOME/data/consensus/ the consensus journal (votes: never delete while the chain runs)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use poi_core::genesis::Genesis;
use serde::{Deserialize, Serialize};

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
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            api_addr: API_ADDR_DEFAULT.parse().expect("valid default"),
            p2p_addr: P2P_ADDR_DEFAULT.parse().expect("valid default"),
            block_interval_ms: BLOCK_INTERVAL_MS_DEFAULT,
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
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeKeyFile {
    /// Hex ed25519 seed.
    seed: String,
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

    /// Writes config, genesis and node key. Refuses to overwrite an initialised home.
    pub fn init(&self, config: &NodeConfig, genesis: &Genesis, node_seed: [u8; 32]) -> Result<()> {
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
