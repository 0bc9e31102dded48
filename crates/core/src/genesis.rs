//! Genesis: the chain's first state, read from a TOML file.
//!
//! # Format
//! ```toml
//! chain_id = "poi-devnet"
//! genesis_time_ms = 1767225600000
//! validators = ["poi1..."]          # ed25519 keys of the validators, as addresses
//!
//! [params]                          # optional; defaults as in `Params::default`
//! fee_burn_bps = 5000
//!
//! [[accounts]]
//! address = "poi1..."
//! balance = "1000poi"              # base units ("1500") or POI ("1.5poi")
//!
//! [beacon]                          # optional: the consensus threshold-VRF group
//! identity = "a1b2..."              # 96-byte BLS12-381 G2 group key, hex
//! seed_namespace = "706f69..."      # bytes seeds are signed under, hex
//! polynomial = "0400..."            # optional: the dealing's public polynomial, hex (lets
//!                                   # the chain verify equivocation evidence)
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::bank::{self, Account};
use crate::beacon::{self, IDENTITY_BYTES};
use crate::limits::CHAIN_ID_BYTES_MAX;
use crate::params::{PARAMS_KEY, Params, ParamsError, amount_string};
use crate::state::WriteSet;
use crate::supply;
use crate::token::Amount;

/// One funded account at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Account address.
    pub address: Address,
    /// Starting balance.
    #[serde(with = "amount_string")]
    pub balance: Amount,
}

/// The genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id; every transaction signs over it.
    pub chain_id: String,
    /// Timestamp of the genesis block, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Validator keys (ed25519 public keys written as addresses), in consensus order.
    pub validators: Vec<Address>,
    /// Parameters.
    #[serde(default)]
    pub params: Params,
    /// Funded accounts.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// The randomness beacon PoI draws from; without one, commitments are never drawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon: Option<GenesisBeacon>,
    /// Root model versions the registry starts with (public base models), ids from 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<GenesisModel>,
    /// Who contributed the shards of shipped datasets: data providers, paid by measured
    /// contribution ([`crate::rewards::data`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<GenesisData>,
}

/// The owners of a shipped dataset: its records in order, cut into one contiguous shard per
/// owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisData {
    /// A tabular shipped dataset (`iris`, `winequality-red`, `diabetes`).
    pub dataset: String,
    /// Its shards' owners.
    pub owners: Vec<Address>,
}

/// A root model version listed at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisModel {
    /// Registry name (1-64 characters of a-z, 0-9, '-'), unique.
    pub name: String,
    /// The market model kind it runs as (one of `market.models`).
    pub model: String,
    /// Digest of its parameters, 32 bytes hex.
    pub params_digest: String,
    /// Who is paid royalties when it is served, shares summing to 10,000 bps (none: no
    /// royalties).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub developers: Vec<GenesisDeveloper>,
    /// The earlier-listed root version it fine-tunes (its lineage, for royalties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// A developer's royalty share of a root version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDeveloper {
    /// The developer's address.
    pub address: Address,
    /// Share, bps.
    pub bps: u32,
}

/// The consensus threshold-VRF group whose seeds PoI draws from (see [`crate::beacon`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisBeacon {
    /// The group public key, 96 bytes (compressed G2), hex.
    pub identity: String,
    /// The namespace seeds are signed under (commonware's
    /// `simplex::scheme::Namespace::new(ns).seed`), hex, 1..=256 bytes.
    pub seed_namespace: String,
    /// The public polynomial of the dealing (commonware codec of `Sharing<MinSig>`, what the
    /// node's `BeaconKey::polynomial_bytes` writes), hex; empty in files written before it
    /// existed, and then equivocation evidence cannot be verified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub polynomial: String,
}

impl GenesisBeacon {
    /// The decoded identity and namespace.
    pub fn decode(&self) -> Result<([u8; IDENTITY_BYTES], Vec<u8>), GenesisError> {
        let bad = |what: &str| GenesisError::Beacon(what.to_owned());
        let identity: [u8; IDENTITY_BYTES] = hex::decode(&self.identity)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("identity must be 96 bytes of hex"))?;
        beacon::check_identity(&identity).map_err(|e| bad(&e.to_string()))?;
        let namespace =
            hex::decode(&self.seed_namespace).map_err(|_| bad("seed_namespace must be hex"))?;
        if namespace.is_empty() || namespace.len() > SEED_NAMESPACE_BYTES_MAX {
            return Err(bad("seed_namespace must be 1..=256 bytes"));
        }
        Ok((identity, namespace))
    }
}

/// Longest seed namespace.
const SEED_NAMESPACE_BYTES_MAX: usize = 256;

/// Why a genesis file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Not valid TOML for the genesis schema.
    #[error("invalid genesis file: {0}")]
    Parse(String),
    /// Bad chain id.
    #[error("invalid chain id {0:?}: use 1-64 characters of a-z, 0-9, '-' and '_'")]
    ChainId(String),
    /// No validators.
    #[error("genesis lists no validators")]
    NoValidators,
    /// A validator appears twice or is not a valid ed25519 key.
    #[error("invalid validator {0}: duplicate or not an ed25519 public key")]
    Validator(Address),
    /// An account appears twice.
    #[error("account {0} appears twice in genesis")]
    DuplicateAccount(Address),
    /// The sum of balances overflows.
    #[error("genesis balances overflow u128")]
    Overflow,
    /// A bad `[[models]]` entry.
    #[error("invalid genesis model {0}")]
    Model(String),
    /// A bad `[[data]]` entry.
    #[error("invalid genesis data entry {0}")]
    Data(String),
    /// A bad `[beacon]` section.
    #[error("invalid genesis beacon: {0}")]
    Beacon(String),
    /// Invalid parameters.
    #[error(transparent)]
    Params(#[from] ParamsError),
}

impl Genesis {
    /// Parses and validates a genesis TOML document.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis =
            toml::from_str(text).map_err(|e| GenesisError::Parse(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// The TOML form.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("genesis always serialises")
    }

    /// Checks everything that can be checked without state.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= CHAIN_ID_BYTES_MAX as usize
            && self
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(GenesisError::ChainId(self.chain_id.clone()));
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let mut seen = BTreeSet::new();
        for validator in &self.validators {
            let valid_key = ed25519_dalek::VerifyingKey::from_bytes(validator.as_bytes()).is_ok();
            if !seen.insert(*validator) || !valid_key {
                return Err(GenesisError::Validator(*validator));
            }
        }
        self.params.validate()?;
        let mut seen = BTreeSet::new();
        for account in &self.accounts {
            if !seen.insert(account.address) {
                return Err(GenesisError::DuplicateAccount(account.address));
            }
        }
        self.total_supply()?;
        if let Some(beacon) = &self.beacon {
            beacon.decode()?;
        }
        self.polynomial()?;
        let size_max = self.params.validators.set_size_max as usize;
        if self.validators.len() > size_max {
            return Err(GenesisError::Params(ParamsError::Validators(format!(
                "genesis lists {} validators, validators.set_size_max is {size_max}",
                self.validators.len()
            ))));
        }
        self.model_records()?;
        Ok(())
    }

    /// The root model versions, decoded and checked.
    fn model_records(&self) -> Result<Vec<crate::poi::registry::RootVersion>, GenesisError> {
        let mut names = BTreeSet::new();
        let mut out = Vec::new();
        for m in &self.models {
            let bad = |why: &str| GenesisError::Model(format!("{}: {why}", m.name));
            let name_ok = !m.name.is_empty()
                && m.name.len() <= 64
                && m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(bad("names are 1-64 characters of a-z, 0-9 and '-'"));
            }
            if !names.insert(m.name.as_str()) {
                return Err(bad("listed twice"));
            }
            if !self.params.market.models.contains(&m.model) {
                return Err(bad("its model is not one of params.market.models"));
            }
            let digest: [u8; 32] = hex::decode(&m.params_digest)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("params_digest must be 32 bytes of hex"))?;
            let developers: Vec<crate::poi::registry::DeveloperShare> = m
                .developers
                .iter()
                .map(|d| crate::poi::registry::DeveloperShare {
                    address: d.address,
                    bps: d.bps,
                })
                .collect();
            if !developers.is_empty()
                && developers.iter().map(|d| u64::from(d.bps)).sum::<u64>() != 10_000
            {
                return Err(bad("developer shares must sum to 10000 bps"));
            }
            let base = match &m.base {
                None => None,
                Some(b) => Some(
                    self.models
                        .iter()
                        .take(out.len())
                        .position(|e| &e.name == b)
                        .ok_or_else(|| bad("its base must be a root version listed before it"))?
                        as u64,
                ),
            };
            out.push(crate::poi::registry::RootVersion {
                name: m.name.clone(),
                model: m.model.clone(),
                params_digest: digest,
                developers,
                base,
            });
        }
        Ok(out)
    }

    /// The beacon polynomial's bytes (empty when genesis has none), checked to be a sharing
    /// of the beacon identity among exactly the genesis validators.
    fn polynomial(&self) -> Result<Vec<u8>, GenesisError> {
        let Some(beacon) = self.beacon.as_ref().filter(|b| !b.polynomial.is_empty()) else {
            return Ok(Vec::new());
        };
        let bad = |why: &str| GenesisError::Beacon(format!("polynomial: {why}"));
        let bytes = hex::decode(&beacon.polynomial).map_err(|_| bad("not hex"))?;
        let mut consensus = crate::validators::GenesisConsensus {
            participants: self.validators.clone(),
            polynomial: bytes.clone(),
            namespace: Vec::new(),
        };
        consensus.participants.sort();
        let identity = crate::validators::evidence::polynomial_identity(&consensus)
            .map_err(|_| bad("not a sharing among the genesis validators"))?;
        if identity != beacon.decode()?.0 {
            return Err(bad("its public key is not the beacon identity"));
        }
        Ok(bytes)
    }

    /// Sum of genesis balances.
    pub fn total_supply(&self) -> Result<Amount, GenesisError> {
        self.accounts
            .iter()
            .try_fold(0u128, |acc, a| acc.checked_add(a.balance))
            .ok_or(GenesisError::Overflow)
    }

    /// The state at height 0.
    pub fn state(&self) -> Result<WriteSet, GenesisError> {
        self.validate()?;
        let mut writes = WriteSet::new();
        writes.insert(
            PARAMS_KEY.to_vec(),
            Some(borsh::to_vec(&self.params).expect("encodes")),
        );
        let total = self.total_supply()?;
        writes.insert(
            supply::GENESIS_KEY.to_vec(),
            Some(borsh::to_vec(&total).expect("encodes")),
        );
        if let Some(beacon) = &self.beacon {
            let (identity, namespace) = beacon.decode()?;
            writes.insert(
                crate::poi::beacon::BEACON_KEY.to_vec(),
                Some(
                    borsh::to_vec(&crate::poi::beacon::genesis_record(identity, namespace))
                        .expect("encodes"),
                ),
            );
        }
        writes.extend(crate::validators::genesis_writes(
            &self.chain_id,
            &self.validators,
            self.polynomial()?,
            self.params.validators.set_size_max,
        ));
        for (key, value) in crate::poi::registry::genesis_writes(&self.model_records()?) {
            writes.insert(key, Some(value));
        }
        let mut valued = BTreeSet::new();
        for d in &self.data {
            if !valued.insert(d.dataset.as_str()) {
                return Err(GenesisError::Data(format!("{}: listed twice", d.dataset)));
            }
            let (key, value) =
                crate::rewards::data::value(&d.dataset, &d.owners).map_err(GenesisError::Data)?;
            writes.insert(key, Some(value));
        }
        for account in &self.accounts {
            let record = Account {
                nonce: 0,
                balance: account.balance,
            };
            writes.insert(
                bank::account_key(&account.address),
                Some(borsh::to_vec(&record).expect("encodes")),
            );
        }
        Ok(writes)
    }
}
