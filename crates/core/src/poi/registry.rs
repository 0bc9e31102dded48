//! The model registry: every accepted model version with its lineage, for royalties
//! (issue 6), governance (issue 7) and inference jobs, which must name a version.
//!
//! A training job that settles verified with a measured improvement of at least
//! `registry_min_improvement_ppm` registers a [`ModelVersion`]. Its name is the market model
//! and its first dataset (`mlp-iris`, `charlm-liber-primus`); versions count up per name.
//! Lineage is the chain of `base` ids back to a root version: one trained without
//! `base_model`, or one genesis lists (a public base model the network launches with).
//!
//! # Format
//! - `poi/m/<id u64>` -> [`ModelVersion`]; ids are dense from 0;
//! - `poi/mn/<name len u8><name><version u32>` -> the id (borsh `u64`);
//! - `poi/mc` -> the next id (borsh `u64`).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::{Event, hex32};
use crate::module::ExecContext;
use crate::state::{self, StateReader};

use super::NAME;

/// Prefix of model versions.
pub const MODEL_PREFIX: &[u8] = b"poi/m/";
/// Prefix of the name index.
pub const MODEL_NAME_PREFIX: &[u8] = b"poi/mn/";
/// Key of the next model id.
pub const MODEL_COUNT_KEY: &[u8] = b"poi/mc";
/// Prefix of promoted versions: `poi/md/<name>` -> the id its name serves by default.
pub const DEFAULT_PREFIX: &[u8] = b"poi/md/";
/// Prefix of retired versions: `poi/mr/<id>` -> `()`; a retired version serves no new job.
pub const RETIRED_PREFIX: &[u8] = b"poi/mr/";
/// The `version` of an inference submission that asks for a name's default version (the
/// `model` field then names the registry name, `mlp-iris`).
pub const DEFAULT_VERSION: u32 = u32::MAX;

/// Whether version `id` was retired by governance.
pub fn is_retired(state: &dyn StateReader, id: u64) -> Result<bool, StateError> {
    Ok(state
        .get(&[RETIRED_PREFIX, &id.to_be_bytes()].concat())?
        .is_some())
}

/// The version `name` serves by default: the one governance promoted, else its first version
/// (none if the name is unknown or that version is retired).
pub fn default_version(state: &dyn StateReader, name: &str) -> Result<Option<u64>, StateError> {
    let promoted: Option<u64> =
        state::read_borsh(state, &[DEFAULT_PREFIX, name.as_bytes()].concat())?;
    let id = match promoted {
        Some(id) => Some(id),
        None => state::read_borsh(state, &name_key(name, 1))?,
    };
    match id {
        Some(id) if !is_retired(state, id)? => Ok(Some(id)),
        _ => Ok(None),
    }
}

/// Makes version `id` its name's default (governance).
pub(crate) fn promote(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), String> {
    let m = read_model(ctx.state, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("model version {id} is not registered"))?;
    if is_retired(ctx.state, id).map_err(|e| e.to_string())? {
        return Err(format!("model version {id} is retired"));
    }
    ctx.state
        .put_borsh([DEFAULT_PREFIX, m.name.as_bytes()].concat(), &id);
    ctx.emit(
        Event::new(NAME, "model_promoted")
            .with("model", id)
            .with("name", m.name),
    );
    Ok(())
}

/// Retires version `id` (governance): no new inference job may name it, and a name that
/// defaulted to it falls back to its first version.
pub(crate) fn retire(ctx: &mut ExecContext<'_, '_>, id: u64) -> Result<(), String> {
    let m = read_model(ctx.state, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("model version {id} is not registered"))?;
    ctx.state
        .put_borsh([RETIRED_PREFIX, &id.to_be_bytes()].concat(), &());
    let key = [DEFAULT_PREFIX, m.name.as_bytes()].concat();
    if state::read_borsh::<u64>(ctx.state, &key).ok().flatten() == Some(id) {
        ctx.state.delete(key);
    }
    ctx.emit(Event::new(NAME, "model_retired").with("model", id));
    Ok(())
}

/// A developer's share of a version's royalties, bps of 10,000.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct DeveloperShare {
    /// The developer.
    pub address: Address,
    /// Share, bps.
    pub bps: u32,
}

/// One registered model version.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct ModelVersion {
    /// Registry id.
    pub id: u64,
    /// Name (`<model>-<dataset>`).
    pub name: String,
    /// Version within the name, from 1.
    pub version: u32,
    /// The market model kind (`mlp`, `charlm`): what inference runs.
    pub model: String,
    /// Digest of the final parameters: the weights, fetched by this digest.
    #[serde(serialize_with = "hex32")]
    pub params_digest: [u8; 32],
    /// The training job that produced it (none for a root version listed in genesis).
    pub job: Option<u64>,
    /// The version it fine-tunes.
    pub base: Option<u64>,
    /// Datasets it was trained on.
    pub datasets: Vec<String>,
    /// Royalty shares (sum 10,000).
    pub developers: Vec<DeveloperShare>,
    /// The provider that trained it and serves the weights (none for a genesis version).
    pub provider: Option<Address>,
    /// Measured eval loss, micro-nats.
    pub score: u64,
    /// Measured loss of its base, micro-nats.
    pub base_score: u64,
    /// Verified improvement, ppm.
    pub improvement_ppm: u64,
    /// Reward multiplier, ppm.
    pub multiplier_ppm: u64,
    /// Registration height.
    pub height: u64,
}

/// Key of version `id`.
pub fn model_key(id: u64) -> Vec<u8> {
    [MODEL_PREFIX, &id.to_be_bytes()].concat()
}

/// Key of `(name, version)` in the name index.
pub fn name_key(name: &str, version: u32) -> Vec<u8> {
    let len = u8::try_from(name.len()).unwrap_or(u8::MAX);
    [
        MODEL_NAME_PREFIX,
        &[len],
        name.as_bytes(),
        &version.to_be_bytes(),
    ]
    .concat()
}

/// Reads version `id`.
pub fn read_model(state: &dyn StateReader, id: u64) -> Result<Option<ModelVersion>, StateError> {
    state::read_borsh(state, &model_key(id))
}

/// How many versions are registered (ids `0..count`).
pub fn model_count(state: &dyn StateReader) -> Result<u64, StateError> {
    Ok(state::read_borsh(state, MODEL_COUNT_KEY)?.unwrap_or(0))
}

/// Up to `limit` versions with ids above `after` (all if `None`), optionally of one name.
pub fn models(
    state: &dyn StateReader,
    name: Option<&str>,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<ModelVersion>, StateError> {
    let mut out = Vec::new();
    let mut failure = None;
    state.scan_prefix(MODEL_PREFIX, &mut |key, value| {
        match state::decode::<ModelVersion>(key, value) {
            Ok(m) if after.is_none_or(|a| m.id > a) && name.is_none_or(|n| m.name == n) => {
                out.push(m)
            }
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
        failure.is_none() && out.len() < limit
    })?;
    failure.map_or(Ok(out), Err)
}

/// The lineage of `id`: the version itself, then its base, back to a root.
pub fn lineage(state: &dyn StateReader, id: u64) -> Result<Vec<ModelVersion>, StateError> {
    let mut out = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        let Some(m) = read_model(state, id)? else {
            break;
        };
        // Bases are registered before what they fine-tune, so ids strictly fall.
        next = m.base.filter(|b| *b < id);
        out.push(m);
    }
    Ok(out)
}

/// A root version genesis lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVersion {
    /// Registry name.
    pub name: String,
    /// Market model kind.
    pub model: String,
    /// Parameters digest.
    pub params_digest: [u8; 32],
    /// Royalty shares (empty or summing to 10,000).
    pub developers: Vec<DeveloperShare>,
    /// An earlier root it fine-tunes.
    pub base: Option<u64>,
}

impl RootVersion {
    /// A root without developers or base.
    pub fn new(name: &str, model: &str, params_digest: [u8; 32]) -> Self {
        Self {
            name: name.into(),
            model: model.into(),
            params_digest,
            developers: Vec::new(),
            base: None,
        }
    }
}

/// The records genesis writes for root versions, ids from 0.
pub fn genesis_writes(models: &[RootVersion]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut writes = Vec::new();
    for (id, root) in (0u64..).zip(models) {
        let name = &root.name;
        let version = ModelVersion {
            id,
            name: name.clone(),
            version: 1,
            model: root.model.clone(),
            params_digest: root.params_digest,
            job: None,
            base: root.base,
            datasets: Vec::new(),
            developers: root.developers.clone(),
            provider: None,
            score: 0,
            base_score: 0,
            improvement_ppm: 0,
            multiplier_ppm: 0,
            height: 0,
        };
        writes.push((model_key(id), borsh::to_vec(&version).expect("encodes")));
        writes.push((name_key(name, 1), borsh::to_vec(&id).expect("encodes")));
    }
    if !models.is_empty() {
        let count = models.len() as u64;
        writes.push((
            MODEL_COUNT_KEY.to_vec(),
            borsh::to_vec(&count).expect("encodes"),
        ));
    }
    writes
}

/// Registers a version (ids dense, versions per name from 1); returns its id.
pub(crate) fn register(
    ctx: &mut ExecContext<'_, '_>,
    mut version: ModelVersion,
) -> Result<u64, TxError> {
    let id = model_count(ctx.state)?;
    let mut n = 1u32;
    while ctx.state.get(&name_key(&version.name, n))?.is_some() {
        n = n.checked_add(1).ok_or(TxError::Overflow("model version"))?;
    }
    version.id = id;
    version.version = n;
    ctx.state.put_borsh(name_key(&version.name, n), &id);
    ctx.state.put_borsh(
        MODEL_COUNT_KEY.to_vec(),
        &id.checked_add(1).ok_or(TxError::Overflow("model id"))?,
    );
    ctx.emit(
        Event::new(NAME, "model_registered")
            .with("id", id)
            .with("name", version.name.as_str())
            .with("version", u64::from(n))
            .with("job", version.job.unwrap_or(u64::MAX))
            .with("improvement_ppm", version.improvement_ppm),
    );
    ctx.state.put_borsh(model_key(id), &version);
    Ok(id)
}
