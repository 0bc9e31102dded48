//! The marketplace's stored records, their keys and their read/write helpers.
//!
//! # Format
//! All integers in keys are big-endian, so byte order is numeric order.
//! - `mkt/s` → [`MarketState`]
//! - `mkt/p/<address 32>` → [`Provider`]
//! - `mkt/j/<id u64>` → [`Job`] (holds its `escrow`)
//! - `mkt/u/<address 32>` → [`UserRecord`]
//! - `mkt/q/<band u64>/<!max_price u128>/<submitted u64>/<id u64>` → empty: the queue
//! - `mkt/a/<ask u128>/<1e6 - reputation u32>/<address 32>` → empty: providers taking work
//! - `mkt/d/<height u64>/<kind u8>/<subject>` → empty: deadlines (see [`DeadlineKind`]; a
//!   held job's [`DeadlineKind::Held`] marker has no entry)
//! - `mkt/t/<status u8><id u64>` → empty: jobs by status

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;

use crate::address::Address;
use crate::error::{StateError, TxError};
use crate::event::{decimal, hex32};
use crate::state::{self, Overlay, StateReader};
use crate::token::Amount;

use super::params::{MarketParams, PPM_ONE};

/// Owned prefix.
pub const PREFIX: &[u8] = b"mkt/";
/// Key of the market-wide state.
pub const STATE_KEY: &[u8] = b"mkt/s";
/// Prefix of provider records.
pub const PROVIDER_PREFIX: &[u8] = b"mkt/p/";
/// Prefix of job records.
pub const JOB_PREFIX: &[u8] = b"mkt/j/";
/// Prefix of per-user records.
pub const USER_PREFIX: &[u8] = b"mkt/u/";
/// Prefix of the job queue index.
pub const QUEUE_PREFIX: &[u8] = b"mkt/q/";
/// Prefix of the index of providers taking work, cheapest first.
pub const ASK_PREFIX: &[u8] = b"mkt/a/";
/// Prefix of the deadline index, earliest first.
pub const DEADLINE_PREFIX: &[u8] = b"mkt/d/";
/// Prefix of the job index by status: `mkt/t/<status u8><id u64 BE>`, one entry per job, so
/// the jobs in one status are listed in id order without reading the others.
pub const STATUS_PREFIX: &[u8] = b"mkt/t/";
/// Most providers a job remembers as having failed it ([`Job::excluded`]); a further failure
/// drops the oldest, which may then be matched to the job again. Bounds the job record and the
/// matcher's check per candidate.
pub const EXCLUDED_MAX: usize = 4;

/// Where a job is in its lifecycle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting in the queue for a provider.
    Queued,
    /// Assigned to a provider, which must start it by the deadline.
    Matched,
    /// Started; the provider must commit a result by the deadline.
    Running,
    /// Result committed; the user may accept or dispute within the challenge window.
    Committed,
    /// Disputed; escrow and the owner's dispute bond held until [`super::resolve_dispute`]
    /// rules, or `dispute_blocks` pass (then it settles in the provider's favour).
    Disputed,
    /// Paid out and refunded; final.
    Settled,
    /// Cancelled by its owner and refunded; final.
    Cancelled,
    /// Not matched within `queue_ttl_blocks` (last matchable at queued height +
    /// `queue_ttl_blocks - 1`) and refunded; final.
    Expired,
    /// A dispute found the provider at fault: the provider was slashed, the owner got the
    /// whole escrow and its bond back, nothing was paid; final.
    Failed,
}

impl JobStatus {
    /// Number of statuses.
    pub const COUNT: usize = 9;
    /// Every status, in order.
    pub const ALL: [JobStatus; Self::COUNT] = [
        Self::Queued,
        Self::Matched,
        Self::Running,
        Self::Committed,
        Self::Disputed,
        Self::Settled,
        Self::Cancelled,
        Self::Expired,
        Self::Failed,
    ];

    /// The stable lowercase name (API, errors).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Matched => "matched",
            Self::Running => "running",
            Self::Committed => "committed",
            Self::Disputed => "disputed",
            Self::Settled => "settled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// Whether the job is over (no escrow, no deadline).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Settled | Self::Cancelled | Self::Expired | Self::Failed
        )
    }

    /// Whether the job occupies its provider's capacity (work assigned, not yet delivered).
    pub fn is_loading(self) -> bool {
        matches!(self, Self::Matched | Self::Running)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The status named `name` ([`JobStatus::as_str`]), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What a job asks for.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    /// Train `model` on `datasets` for `steps` steps.
    Training {
        /// Model name (one of `market.models`).
        model: String,
        /// Dataset ids (each one of `market.datasets`).
        datasets: Vec<String>,
        /// blake3 of the hyperparameters.
        #[serde(serialize_with = "hex32")]
        hyperparams_hash: [u8; 32],
        /// Training steps.
        steps: u64,
        /// Commitment to the evaluation the result will be judged by.
        #[serde(serialize_with = "hex32")]
        eval_commitment: [u8; 32],
    },
    /// Run `model` at `version` on an input.
    Inference {
        /// Model name (one of `market.models`).
        model: String,
        /// Model version.
        version: u32,
        /// blake3 of the input.
        #[serde(serialize_with = "hex32")]
        input_hash: [u8; 32],
    },
}

/// A job.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Job {
    /// Sequential id.
    pub id: u64,
    /// Where it is. Second in the encoding, right after the 8-byte id, so a status change can
    /// be seen from the stored bytes without decoding the record ([`write_job`]).
    pub status: JobStatus,
    /// Who submitted and pays.
    pub owner: Address,
    /// What to run.
    pub spec: JobSpec,
    /// Metered compute units asked for.
    pub units: u64,
    /// Highest price per unit the owner accepts, base units.
    #[serde(serialize_with = "decimal")]
    pub max_price: Amount,
    /// The owner's tier when it submitted (priority and class access).
    pub tier: u8,
    /// Priority band (see [`super::matching`]): lower is served first.
    pub band: u64,
    /// Height of submission.
    pub submitted_height: u64,
    /// Base units held for this job: `units x max_price` until it ends, then 0.
    #[serde(serialize_with = "decimal")]
    pub escrow: Amount,
    /// Assigned provider (matched to disputed, and after settlement).
    pub provider: Option<Address>,
    /// Price per unit fixed at match time, `max(base price, provider ask) <= max_price`.
    #[serde(serialize_with = "decimal")]
    pub charged_price: Amount,
    /// Providers that failed this job (missed its start, its commit or a heartbeat while it
    /// was matched or running), oldest first, at most [`EXCLUDED_MAX`]: none of them is
    /// matched to it again while listed. A failure beyond [`EXCLUDED_MAX`] drops the oldest.
    pub excluded: Vec<Address>,
    /// The pending deadline (expiry, start, commit or challenge window), if any.
    pub deadline: Option<Deadline>,
    /// Blocks the provider's backlog takes at its capacity when matched (sets the commit
    /// deadline).
    pub work_blocks: u64,
    /// Height of the last match.
    pub matched_height: u64,
    /// Height of the start.
    pub started_height: u64,
    /// Height of the commit.
    pub committed_height: u64,
    /// Merkle root of the result (training step digests, or the output).
    #[serde(serialize_with = "crate::event::hex32_opt")]
    pub result_root: Option<[u8; 32]>,
    /// Units the provider says it delivered (`<= units`).
    pub units_delivered: u64,
    /// Paid to the provider at settlement.
    #[serde(serialize_with = "decimal")]
    pub paid: Amount,
    /// Returned to the owner (cancel, expiry, settlement).
    #[serde(serialize_with = "decimal")]
    pub refunded: Amount,
    /// SLA credits paid to the owner out of slashes for this job.
    #[serde(serialize_with = "decimal")]
    pub compensated: Amount,
    /// Times the job went back to the queue after a provider failed it.
    pub requeues: u32,
    /// The owner's dispute bond this record holds while the job is disputed; 0 otherwise.
    #[serde(serialize_with = "decimal")]
    pub dispute_bond: Amount,
    /// The dispute bond the owner posted, if it disputed (kept after the verdict: it went
    /// back to the owner if the job `failed`, to the provider if it `settled`).
    #[serde(serialize_with = "decimal")]
    pub dispute_bond_posted: Amount,
}

impl Job {
    /// Whether the job is committed and held for Proof-of-Intelligence verification (see
    /// [`DeadlineKind::Held`]).
    pub fn is_held(&self) -> bool {
        self.status == JobStatus::Committed
            && self.deadline.is_some_and(|d| d.kind == DeadlineKind::Held)
    }
}

/// Serialises an optional 32-byte value as hex or `null`.
/// A compute provider.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Provider {
    /// Its account (signs its messages; its stake is its collateral).
    pub address: Address,
    /// Free text describing the hardware.
    pub hardware: String,
    /// Benchmarked capacity, metered compute units per block.
    pub capacity_units_per_block: u64,
    /// Class (0 standard, higher premium); `market.class_min_tier[class]` gates access.
    pub class: u8,
    /// Lowest price per unit it accepts, base units.
    #[serde(serialize_with = "decimal")]
    pub ask_price: Amount,
    /// URL serving its checkpoints.
    pub endpoint: String,
    /// Its stake locked as collateral, base units.
    #[serde(serialize_with = "decimal")]
    pub collateral: Amount,
    /// Height of registration.
    pub registered_height: u64,
    /// Height of the last heartbeat (registration counts as one).
    pub last_heartbeat: u64,
    /// Last height for the next heartbeat while online (its deadline-index entry); 0 offline.
    pub heartbeat_deadline: u64,
    /// False once a heartbeat was missed, until the next heartbeat.
    pub online: bool,
    /// `(ask, reputation)` under which it is in the ask index, if it is.
    pub listed_at: Option<(Amount, u32)>,
    /// Units of its matched and running jobs.
    pub load_units: u64,
    /// Its active jobs (matched, running, committed, disputed), ascending.
    pub jobs: Vec<u64>,
    /// Reputation, ppm (see [`super::provider::reputation_after`]).
    pub reputation_ppm: u32,
    /// Jobs settled in its favour.
    pub jobs_settled: u64,
    /// Times slashed.
    pub slashes: u64,
    /// Total slashed, base units.
    #[serde(serialize_with = "decimal")]
    pub slashed_total: Amount,
}

impl Provider {
    /// Units of work it can still take: `min(capacity x backlog_blocks, 2^64 - 1) - load`
    /// (registration keeps the product within `u64`; the cap covers a later rise of
    /// `backlog_blocks`, so the load never overflows).
    pub fn free_units(&self, params: &MarketParams) -> u128 {
        let room = (u128::from(self.capacity_units_per_block) * u128::from(params.backlog_blocks))
            .min(u128::from(u64::MAX));
        room.saturating_sub(u128::from(self.load_units))
    }

    /// Whether it belongs in the ask index: online with room for work.
    pub fn takes_work(&self, params: &MarketParams) -> bool {
        self.online
            && self.free_units(params) > 0
            && self.jobs.len() < params.provider_jobs_max as usize
    }
}

/// What the market keeps per user with active jobs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize,
)]
pub struct UserRecord {
    /// Jobs not yet final.
    pub active_jobs: u32,
    /// Stake locked by the market to back the tier of those jobs, base units.
    #[serde(serialize_with = "decimal")]
    pub locked: Amount,
}

/// Market-wide state: prices, the utilisation window and counters.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct MarketState {
    /// The id the next job gets.
    pub next_job_id: u64,
    /// Base price per compute unit, base units.
    #[serde(serialize_with = "decimal")]
    pub base_price: Amount,
    /// Demand multiplier of required collateral, ppm.
    pub multiplier_ppm: u32,
    /// Utilisation of the last blocks, bps, oldest first (at most the window).
    pub samples: Vec<u16>,
    /// Capacity of online providers, units per block.
    pub capacity_online: u128,
    /// Units of matched and running jobs.
    pub load_units: u128,
    /// Sum of all jobs' escrow (checked against the records).
    #[serde(serialize_with = "decimal")]
    pub escrow_total: Amount,
    /// Jobs per status, indexed by [`JobStatus`] order.
    pub jobs_by_status: Vec<u64>,
    /// Queued jobs per tier at submission.
    pub queued_by_tier: Vec<u64>,
    /// Sum of the submission heights of queued jobs, per tier (mean wait).
    pub queued_since_sum: Vec<u128>,
    /// Registered providers.
    pub providers: u64,
    /// Online providers.
    pub providers_online: u64,
}

impl MarketState {
    /// The state before anything happened.
    pub fn initial(params: &MarketParams) -> Self {
        let tiers = crate::staking::TIERS_MAX + 1;
        Self {
            next_job_id: 0,
            base_price: params.price_start,
            multiplier_ppm: PPM_ONE.clamp(params.multiplier_min_ppm, params.multiplier_max_ppm),
            samples: Vec::new(),
            capacity_online: 0,
            load_units: 0,
            escrow_total: 0,
            jobs_by_status: vec![0; JobStatus::COUNT],
            queued_by_tier: vec![0; tiers],
            queued_since_sum: vec![0; tiers],
            providers: 0,
            providers_online: 0,
        }
    }

    /// Mean of the utilisation window, bps, rounded down (0 before the first block).
    pub fn utilisation_bps(&self) -> u16 {
        if self.samples.is_empty() {
            return 0;
        }
        let sum: u64 = self.samples.iter().map(|s| u64::from(*s)).sum();
        u16::try_from(sum / self.samples.len() as u64).expect("mean of bps fits u16")
    }
}

/// A pending deadline: the last height at which the awaited action is accepted. At the end of
/// that block (or of the first block after it that has budget left) it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Deadline {
    /// Last height for the action.
    pub height: u64,
    /// What is awaited.
    pub kind: DeadlineKind,
}

/// Kinds of deadline in the deadline index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum DeadlineKind {
    /// A provider's heartbeat is due (subject: address).
    Heartbeat = 0,
    /// A queued job expires (subject: job id).
    Expiry = 1,
    /// A matched job must be started (subject: job id).
    Start = 2,
    /// A running job must be committed (subject: job id).
    Commit = 3,
    /// A committed job's challenge window ends; it settles (subject: job id).
    Verify = 4,
    /// A disputed job's verdict is due; without one it settles for the provider (subject:
    /// job id).
    Dispute = 5,
    /// Not an index entry: the marker a committed job carries while the Proof-of-Intelligence
    /// module verifies it ([`super::hold`]). Its height is the height of the hold. A held job
    /// has no challenge window, so it never settles by itself; PoI settles it
    /// ([`super::settle_verified`]) or disputes it ([`super::open_poi_dispute`]).
    Held = 6,
}

impl DeadlineKind {
    /// The kind encoded as `byte`, if any.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Heartbeat,
            1 => Self::Expiry,
            2 => Self::Start,
            3 => Self::Commit,
            4 => Self::Verify,
            5 => Self::Dispute,
            _ => return None,
        })
    }

    /// The deadline a job in `status` waits on (a held committed job carries
    /// [`DeadlineKind::Held`] instead, which is not indexed).
    pub fn for_status(status: JobStatus) -> Option<Self> {
        match status {
            JobStatus::Queued => Some(Self::Expiry),
            JobStatus::Matched => Some(Self::Start),
            JobStatus::Running => Some(Self::Commit),
            JobStatus::Committed => Some(Self::Verify),
            JobStatus::Disputed => Some(Self::Dispute),
            _ => None,
        }
    }
}

/// Key of `address`'s provider record.
pub fn provider_key(address: &Address) -> Vec<u8> {
    [PROVIDER_PREFIX, address.as_bytes()].concat()
}

/// Key of job `id`.
pub fn job_key(id: u64) -> Vec<u8> {
    [JOB_PREFIX, &id.to_be_bytes()].concat()
}

/// Key of `address`'s user record.
pub fn user_key(address: &Address) -> Vec<u8> {
    [USER_PREFIX, address.as_bytes()].concat()
}

/// Queue key of a queued job: ascending key order is matching order.
pub fn queue_key(job: &Job) -> Vec<u8> {
    let mut key = QUEUE_PREFIX.to_vec();
    key.extend_from_slice(&job.band.to_be_bytes());
    key.extend_from_slice(&(!job.max_price).to_be_bytes());
    key.extend_from_slice(&job.submitted_height.to_be_bytes());
    key.extend_from_slice(&job.id.to_be_bytes());
    key
}

/// The job id at the end of a queue key.
pub fn queue_key_id(key: &[u8]) -> Option<u64> {
    if key.len() != QUEUE_PREFIX.len() + 8 + 16 + 8 + 8 {
        return None;
    }
    Some(u64::from_be_bytes(key[key.len() - 8..].try_into().ok()?))
}

/// Ask-index key: cheapest ask first, then best reputation, then lowest address.
pub fn ask_key(ask: Amount, reputation_ppm: u32, address: &Address) -> Vec<u8> {
    let mut key = ASK_PREFIX.to_vec();
    key.extend_from_slice(&ask.to_be_bytes());
    key.extend_from_slice(&PPM_ONE.saturating_sub(reputation_ppm).to_be_bytes());
    key.extend_from_slice(address.as_bytes());
    key
}

/// The provider address at the end of an ask key.
pub fn ask_key_address(key: &[u8]) -> Option<Address> {
    if key.len() != ASK_PREFIX.len() + 16 + 4 + 32 {
        return None;
    }
    Some(Address(key[key.len() - 32..].try_into().ok()?))
}

/// Deadline-index key.
pub fn deadline_key(height: u64, kind: DeadlineKind, subject: &[u8]) -> Vec<u8> {
    let mut key = DEADLINE_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key.push(kind as u8);
    key.extend_from_slice(subject);
    key
}

/// Splits a deadline key into `(height, kind, subject)`.
pub fn parse_deadline_key(key: &[u8]) -> Option<(u64, DeadlineKind, &[u8])> {
    let rest = key.strip_prefix(DEADLINE_PREFIX)?;
    if rest.len() < 9 {
        return None;
    }
    let height = u64::from_be_bytes(rest[..8].try_into().ok()?);
    Some((height, DeadlineKind::from_byte(rest[8])?, &rest[9..]))
}

/// Reads the market state (initial if the market never ran).
pub fn load_state(
    state: &dyn StateReader,
    params: &MarketParams,
) -> Result<MarketState, StateError> {
    let mut ms: MarketState =
        state::read_borsh(state, STATE_KEY)?.unwrap_or_else(|| MarketState::initial(params));
    // A state written before a status was added counts none of it.
    if ms.jobs_by_status.len() < JobStatus::COUNT {
        ms.jobs_by_status.resize(JobStatus::COUNT, 0);
    }
    Ok(ms)
}

/// Reads a provider.
pub fn read_provider(
    state: &dyn StateReader,
    address: &Address,
) -> Result<Option<Provider>, StateError> {
    state::read_borsh(state, &provider_key(address))
}

/// Reads a job.
pub fn read_job(state: &dyn StateReader, id: u64) -> Result<Option<Job>, StateError> {
    state::read_borsh(state, &job_key(id))
}

/// Reads a user record (zero if none).
pub fn read_user(state: &dyn StateReader, address: &Address) -> Result<UserRecord, StateError> {
    Ok(state::read_borsh(state, &user_key(address))?.unwrap_or_default())
}

pub(crate) fn provider_or_err(state: &Overlay<'_>, address: Address) -> Result<Provider, TxError> {
    read_provider(state, &address)?.ok_or(TxError::UnknownProvider(address))
}

pub(crate) fn job_or_err(state: &Overlay<'_>, id: u64) -> Result<Job, TxError> {
    read_job(state, id)?.ok_or(TxError::UnknownJob(id))
}

pub(crate) fn write_user(state: &mut Overlay<'_>, address: &Address, user: &UserRecord) {
    if user.active_jobs == 0 && user.locked == 0 {
        state.delete(user_key(address));
    } else {
        state.put_borsh(user_key(address), user);
    }
}

/// Writes a provider and keeps its ask-index entry in step with the record.
pub(crate) fn write_provider(state: &mut Overlay<'_>, params: &MarketParams, p: &mut Provider) {
    let wanted = p
        .takes_work(params)
        .then_some((p.ask_price, p.reputation_ppm));
    if p.listed_at != wanted {
        if let Some((ask, rep)) = p.listed_at {
            state.delete(ask_key(ask, rep, &p.address));
        }
        if let Some((ask, rep)) = wanted {
            state.put(ask_key(ask, rep, &p.address), Vec::new());
        }
        p.listed_at = wanted;
    }
    state.put_borsh(provider_key(&p.address), p);
}

/// Key of job `id`'s entry in the status index under `status`.
pub fn status_key(status: JobStatus, id: u64) -> Vec<u8> {
    let mut key = STATUS_PREFIX.to_vec();
    key.push(status.index() as u8);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The status-index prefix of the jobs in `status`.
pub fn status_prefix(status: JobStatus) -> Vec<u8> {
    let mut key = STATUS_PREFIX.to_vec();
    key.push(status.index() as u8);
    key
}

/// The status of a stored job record: the byte after its 8-byte id (see [`Job::status`]).
fn stored_status(id: u64, bytes: &[u8]) -> Result<JobStatus, StateError> {
    bytes
        .get(8)
        .and_then(|b| JobStatus::ALL.get(usize::from(*b)))
        .copied()
        .ok_or_else(|| StateError(format!("job {id}: stored record has no status byte")))
}

/// Marks a committed job held (see [`DeadlineKind::Held`]): its challenge-window entry leaves
/// the deadline index and the job carries the hold marker at `height`.
pub(crate) fn write_job_held(
    state: &mut Overlay<'_>,
    job: &mut Job,
    height: u64,
) -> Result<(), StateError> {
    if let Some(old) = job.deadline.take()
        && old.kind != DeadlineKind::Held
    {
        state.delete(deadline_key(old.height, old.kind, &job.id.to_be_bytes()));
    }
    job.deadline = Some(Deadline {
        height,
        kind: DeadlineKind::Held,
    });
    write_job(state, job)
}

/// Writes a job whose deadline is unchanged, moving its status-index entry if its status
/// changed (the stored record says what it was).
pub(crate) fn write_job(state: &mut Overlay<'_>, job: &Job) -> Result<(), StateError> {
    let before = match state.get(&job_key(job.id))? {
        Some(bytes) => Some(stored_status(job.id, &bytes)?),
        None => None,
    };
    match before {
        Some(old) if old == job.status => {}
        Some(old) => {
            state.delete(status_key(old, job.id));
            state.put(status_key(job.status, job.id), Vec::new());
        }
        None => state.put(status_key(job.status, job.id), Vec::new()),
    }
    state.put_borsh(job_key(job.id), job);
    Ok(())
}

/// Replaces a job's pending deadline with `height` for the wait its status implies (none for
/// final jobs; `height` is then ignored) and writes the job.
pub(crate) fn write_job_deadline(
    state: &mut Overlay<'_>,
    job: &mut Job,
    height: u64,
) -> Result<(), StateError> {
    if let Some(old) = job.deadline.take() {
        // A hold marker has no index entry to remove.
        if old.kind != DeadlineKind::Held {
            state.delete(deadline_key(old.height, old.kind, &job.id.to_be_bytes()));
        }
    }
    if let Some(kind) = DeadlineKind::for_status(job.status) {
        state.put(
            deadline_key(height, kind, &job.id.to_be_bytes()),
            Vec::new(),
        );
        job.deadline = Some(Deadline { height, kind });
    }
    write_job(state, job)
}
