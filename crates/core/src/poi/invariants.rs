//! A full audit of PoI's records against the market's jobs (run by
//! [`crate::chain::Chain::audit`]); the invariants are listed in the module docs.

use std::collections::{BTreeMap, BTreeSet};

use crate::address::Address;
use crate::market::{self, JobSpec, JobStatus};
use crate::staking;
use crate::state::{self, StateReader};
use crate::token::Amount;

use super::beacon::{
    BEACON_KEY, Beacon, JOB_SLOT, SEED_PREFIX, TARGET_PREFIX, Target, parse_target_key,
};
use super::checks::{
    ASSIGNED_PREFIX, CHECK_DEADLINE_PREFIX, CHECK_PREFIX, Check as CheckRecord, CheckRole,
    CheckStatus, SLASH_COUNT_KEY, SLASH_PREFIX, parse_assigned_key, parse_check_key,
    parse_deadline_key,
};
use super::dispute::{
    DISPUTE_DEADLINE_PREFIX, DISPUTE_PREFIX, DISPUTE_SLOT_BASE, Dispute, DisputeStatus,
    dispute_key, parse_dispute_deadline,
};
use super::merkle;
use super::quality::QUALITY_SLOT;
use super::records::{
    JOB_PREFIX, PREFIX, PoiJob, PoiKind, PoiStatus, SPEC_PREFIX, VERIFIER_COUNT_KEY,
    VERIFIER_INDEX_PREFIX, VERIFIER_PREFIX, Verifier, key_id,
};
use super::registry::{self, MODEL_COUNT_KEY, MODEL_NAME_PREFIX, MODEL_PREFIX, ModelVersion};

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

/// Checks every PoI invariant; returns the first violation.
pub(crate) fn check(state: &dyn StateReader) -> Check {
    let mut jobs: Vec<PoiJob> = Vec::new();
    let mut specs: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut verifiers: BTreeMap<Address, Verifier> = BTreeMap::new();
    let mut index: Vec<(u32, Address)> = Vec::new();
    let mut count: Option<u32> = None;
    let mut beacon: Option<Beacon> = None;
    let mut targets: Vec<Target> = Vec::new();
    let mut checks: Vec<CheckRecord> = Vec::new();
    let mut deadlines: BTreeSet<(u64, u64, u32)> = BTreeSet::new();
    let mut assigned: Vec<(Address, u64, u32)> = Vec::new();
    let mut models: Vec<ModelVersion> = Vec::new();
    let mut disputes: Vec<Dispute> = Vec::new();
    let mut dispute_deadlines: BTreeSet<(u64, u64, u32)> = BTreeSet::new();
    let mut names: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut promoted: Vec<u64> = Vec::new();
    let mut model_count: Option<u64> = None;
    let mut seeds: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut failure: Option<String> = None;
    state
        .scan_prefix(PREFIX, &mut |key, value| {
            if key == BEACON_KEY {
                match state::decode::<Beacon>(key, value) {
                    Ok(b) => beacon = Some(b),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if key.starts_with(TARGET_PREFIX) {
                match parse_target_key(key) {
                    Some(target) if value.is_empty() => targets.push(target),
                    _ => failure = Some(format!("bad poi target key {}", hex::encode(key))),
                }
            } else if key.starts_with(SEED_PREFIX) {
                seeds.push((key.to_vec(), value.len()));
            } else if key.starts_with(CHECK_PREFIX) {
                match (
                    parse_check_key(key),
                    state::decode::<CheckRecord>(key, value),
                ) {
                    (Some((job, index)), Ok(c)) if (c.job, c.index) == (job, index) => {
                        checks.push(c);
                    }
                    _ => failure = Some(format!("bad poi check {}", hex::encode(key))),
                }
            } else if key.starts_with(CHECK_DEADLINE_PREFIX) {
                match parse_deadline_key(key) {
                    Some(d) if value.is_empty() => {
                        deadlines.insert(d);
                    }
                    _ => failure = Some(format!("bad poi deadline {}", hex::encode(key))),
                }
            } else if key.starts_with(DISPUTE_PREFIX) {
                match state::decode::<Dispute>(key, value) {
                    Ok(d) if key == dispute_key(d.job, d.number) => disputes.push(d),
                    _ => failure = Some(format!("bad poi dispute {}", hex::encode(key))),
                }
            } else if key.starts_with(DISPUTE_DEADLINE_PREFIX) {
                match parse_dispute_deadline(key) {
                    Some(d) if value.is_empty() => {
                        dispute_deadlines.insert(d);
                    }
                    _ => failure = Some(format!("bad dispute deadline {}", hex::encode(key))),
                }
            } else if key.starts_with(MODEL_PREFIX) {
                match state::decode::<ModelVersion>(key, value) {
                    Ok(m) => models.push(m),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if key.starts_with(MODEL_NAME_PREFIX) {
                match state::decode::<u64>(key, value) {
                    Ok(id) => names.push((key.to_vec(), id)),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if key.starts_with(registry::DEFAULT_PREFIX) {
                match state::decode::<u64>(key, value) {
                    Ok(id) => promoted.push(id),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if key.starts_with(registry::RETIRED_PREFIX) {
                if key.len() != registry::RETIRED_PREFIX.len() + 8 || !value.is_empty() {
                    failure = Some(format!("bad retired model key {}", hex::encode(key)));
                }
            } else if key == MODEL_COUNT_KEY {
                match state::decode::<u64>(key, value) {
                    Ok(n) => model_count = Some(n),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if key.starts_with(ASSIGNED_PREFIX) {
                match parse_assigned_key(key) {
                    Some(a) if value.is_empty() => assigned.push(a),
                    _ => failure = Some(format!("bad poi assignment {}", hex::encode(key))),
                }
            } else if key.starts_with(SLASH_PREFIX) || key == SLASH_COUNT_KEY {
                // Slash records are an append-only log; their contents are evidence.
            } else if let Some(address) = key_address(key, VERIFIER_PREFIX) {
                match state::decode::<Verifier>(key, value) {
                    Ok(v) if v.address == address => {
                        verifiers.insert(address, v);
                    }
                    Ok(v) => {
                        failure = Some(format!("verifier {} stored under {address}", v.address));
                    }
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if let Some(ordinal) = key_ordinal(key) {
                match <[u8; 32]>::try_from(value) {
                    Ok(bytes) => index.push((ordinal, Address(bytes))),
                    Err(_) => failure = Some(format!("poi verifier index {ordinal}: bad value")),
                }
            } else if key == VERIFIER_COUNT_KEY {
                match state::decode::<u32>(key, value) {
                    Ok(n) => count = Some(n),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if let Some(id) = key_id(key, JOB_PREFIX) {
                match state::decode::<PoiJob>(key, value) {
                    Ok(job) if job.id == id => jobs.push(job),
                    Ok(job) => failure = Some(format!("poi job {} stored under id {id}", job.id)),
                    Err(e) => failure = Some(e.to_string()),
                }
            } else if let Some(id) = key_id(key, SPEC_PREFIX) {
                specs.push((id, value.to_vec()));
            } else {
                failure = Some(format!("stray poi key {}", hex::encode(key)));
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    for job in &jobs {
        check_job(state, job)?;
    }
    // Specs: exactly one per training record (both lists are in id order).
    let training: Vec<&PoiJob> = jobs
        .iter()
        .filter(|j| j.kind == PoiKind::Training)
        .collect();
    ensure(training.len() == specs.len(), || {
        format!(
            "{} training jobs but {} stored specs",
            training.len(),
            specs.len()
        )
    })?;
    for (job, (id, spec)) in training.iter().zip(&specs) {
        ensure(job.id == *id, || {
            format!("stored spec {id} has no training job")
        })?;
        ensure(*blake3::hash(spec).as_bytes() == job.spec_hash, || {
            format!("poi job {id}: the stored spec does not hash to spec_hash")
        })?;
    }
    check_held(state, &jobs)?;
    check_beacon(beacon.as_ref(), &jobs, &checks, &targets, &seeds)?;
    check_checks(&jobs, &checks, &deadlines, &verifiers)?;
    check_registry(&jobs, &models, &names, model_count)?;
    if let Some(id) = promoted
        .iter()
        .find(|id| !models.iter().any(|m| m.id == **id))
    {
        return Err(format!("promoted model version {id} is not registered"));
    }
    check_disputes(&jobs, &checks, &disputes, &dispute_deadlines, &targets)?;
    let open: Vec<(Address, u64, u32)> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Open)
        .filter_map(|c| c.validator.map(|v| (v, c.job, c.index)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ensure(open == assigned, || {
        "the assignment index is not exactly the open assigned checks".into()
    })?;
    check_verifiers(&verifiers, &index, count)?;
    check_stake_locks(state, &verifiers)
}

/// Without a beacon there are no targets, seeds or draws. With one, every target names a
/// verifying, undrawn job whose `draw_target` it is, every such job has exactly one target,
/// and every recorded seed is 48 bytes of the beacon's epoch.
fn check_beacon(
    beacon: Option<&Beacon>,
    jobs: &[PoiJob],
    checks: &[CheckRecord],
    targets: &[Target],
    seeds: &[(Vec<u8>, usize)],
) -> Check {
    let Some(beacon) = beacon else {
        ensure(targets.is_empty() && seeds.is_empty(), || {
            "beacon targets or seeds without a beacon".into()
        })?;
        return ensure(
            jobs.iter()
                .all(|j| j.draw_target.is_none() && j.randomness.is_none()),
            || "a job drew without a beacon".into(),
        );
    };
    for (key, len) in seeds {
        let epoch = key
            .get(SEED_PREFIX.len()..SEED_PREFIX.len() + 8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
        ensure(
            key.len() == SEED_PREFIX.len() + 16 && *len == 48 && epoch == Some(beacon.epoch),
            || format!("bad recorded seed {}", hex::encode(key)),
        )?;
    }
    let by_id: BTreeMap<u64, &PoiJob> = jobs.iter().map(|j| (j.id, j)).collect();
    let by_check: BTreeMap<(u64, u32), &CheckRecord> =
        checks.iter().map(|c| ((c.job, c.index), c)).collect();
    let mut targeted = BTreeSet::new();
    let mut checks_targeted = BTreeSet::new();
    for t in targets
        .iter()
        .filter(|t| t.slot == JOB_SLOT || t.slot < DISPUTE_SLOT_BASE)
    {
        let (epoch, view, id) = (t.epoch, t.view, t.job);
        if t.slot != JOB_SLOT {
            let check = by_check.get(&(id, t.slot)).ok_or_else(|| {
                format!(
                    "referee target {epoch}/{view} names no check {id}/{}",
                    t.slot
                )
            })?;
            ensure(
                check.status == CheckStatus::AwaitingReferees
                    && check.referee_target == Some((epoch, view)),
                || {
                    format!(
                        "check {id}/{} is not waiting for seed {epoch}/{view}",
                        t.slot
                    )
                },
            )?;
            ensure(checks_targeted.insert((id, t.slot)), || {
                format!("check {id}/{} has two referee targets", t.slot)
            })?;
            continue;
        }
        let job = by_id
            .get(&id)
            .ok_or_else(|| format!("draw target {epoch}/{view} names no poi job {id}"))?;
        ensure(
            job.status == PoiStatus::Verifying
                && job.randomness.is_none()
                && job.draw_target == Some((epoch, view)),
            || format!("poi job {id} is not waiting for seed {epoch}/{view}"),
        )?;
        ensure(targeted.insert(id), || {
            format!("poi job {id} has two draw targets")
        })?;
    }
    for check in checks {
        let awaiting = check.status == CheckStatus::AwaitingReferees;
        ensure(
            awaiting == checks_targeted.contains(&(check.job, check.index))
                && awaiting == check.referee_target.is_some(),
            || {
                format!(
                    "check {}/{}: referee target out of step",
                    check.job, check.index
                )
            },
        )?;
    }
    for job in jobs {
        let waiting = job.draw_target.is_some() && job.randomness.is_none();
        ensure(waiting == targeted.contains(&job.id), || {
            format!("poi job {}: its draw target is not stored", job.id)
        })?;
        ensure(
            job.draw_target.is_some() || job.randomness.is_none(),
            || format!("poi job {} drew without a target", job.id),
        )?;
    }
    Ok(())
}

/// Checks against their jobs, deadlines and verifiers: each job's checks are numbered
/// `0..checks`, its pending count is the number of spot checks that block settlement, a
/// drawn verifying job has checks, a verified job has none pending and none upheld, a failed
/// one has an upheld accusation and nothing open; every open check has exactly its one
/// deadline and nothing else has one; a referee re-check follows the spot check it
/// re-checks; each verifier's `open_checks` is the number of open checks assigned to it.
fn check_checks(
    jobs: &[PoiJob],
    checks: &[CheckRecord],
    deadlines: &BTreeSet<(u64, u64, u32)>,
    verifiers: &BTreeMap<Address, Verifier>,
) -> Check {
    let mut by_job: BTreeMap<u64, Vec<&CheckRecord>> = BTreeMap::new();
    for c in checks {
        by_job.entry(c.job).or_default().push(c);
    }
    for job in jobs {
        let list = by_job.remove(&job.id).unwrap_or_default();
        let id = job.id;
        ensure(
            list.iter().zip(0u32..).all(|(c, i)| c.index == i) && list.len() == job.checks as usize,
            || {
                format!(
                    "poi job {id}: {} checks stored, {} recorded",
                    list.len(),
                    job.checks
                )
            },
        )?;
        let pending = list
            .iter()
            .filter(|c| c.role == CheckRole::Spot && c.status.blocks_settlement())
            .count();
        let upheld = list.iter().any(|c| c.status == CheckStatus::Upheld);
        let open = list.iter().any(|c| c.status.blocks_settlement());
        ensure(pending == job.checks_pending as usize, || {
            format!(
                "poi job {id}: {pending} spot checks pending, recorded {}",
                job.checks_pending
            )
        })?;
        let consistent = match job.status {
            PoiStatus::Submitted => list.is_empty(),
            PoiStatus::Verifying => job.randomness.is_none() == list.is_empty() && !upheld,
            PoiStatus::Verified => pending == 0 && !upheld && !open,
            // Why it failed (an upheld check or a lost dispute) is checked with the disputes.
            PoiStatus::Failed => !open,
        };
        ensure(consistent, || {
            format!(
                "poi job {id} is {} with checks out of step",
                job.status.as_str()
            )
        })?;
        for c in &list {
            if let CheckRole::Referee { of } = c.role {
                let accused = list.get(of as usize).filter(|_| of < c.index);
                ensure(accused.is_some_and(|a| a.role == CheckRole::Spot), || {
                    format!("check {id}/{} re-checks no earlier spot check", c.index)
                })?;
            }
        }
    }
    ensure(by_job.is_empty(), || {
        "checks of a job without a poi record".into()
    })?;
    let mut open_by: BTreeMap<Address, u32> = BTreeMap::new();
    let mut expected = BTreeSet::new();
    for job in jobs {
        if let Some(due) = job.quality.as_ref().and_then(|q| q.due()) {
            expected.insert((due, job.id, QUALITY_SLOT));
        }
    }
    for c in checks.iter().filter(|c| c.status == CheckStatus::Open) {
        expected.insert((c.deadline, c.job, c.index));
        if let Some(v) = c.validator {
            *open_by.entry(v).or_default() += 1;
        }
    }
    ensure(&expected == deadlines, || {
        "check deadlines are not exactly the open checks' and quality stages'".into()
    })?;
    for (address, v) in verifiers {
        let n = open_by.remove(address).unwrap_or(0);
        ensure(v.open_checks == n, || {
            format!(
                "verifier {address} records {} open checks, holds {n}",
                v.open_checks
            )
        })?;
    }
    ensure(open_by.is_empty(), || {
        "an open check names no verifier".into()
    })
}

/// The registry: ids dense `0..count`, the name index names exactly each `(name, version)`,
/// versions per name are `1..`, a base is an earlier version, and a trained version's job is
/// a verified PoI job whose `model_id` is the version.
fn check_registry(
    jobs: &[PoiJob],
    models: &[ModelVersion],
    names: &[(Vec<u8>, u64)],
    count: Option<u64>,
) -> Check {
    let n = count.unwrap_or(0);
    ensure(count != Some(0) && models.len() as u64 == n, || {
        format!("{} model versions, count {n}", models.len())
    })?;
    let mut expected_names = Vec::new();
    for (m, id) in models.iter().zip(0u64..) {
        ensure(m.id == id, || format!("model {} stored at id {id}", m.id))?;
        ensure(m.base.is_none_or(|b| b < id), || {
            format!("model {id}: its base is not an earlier version")
        })?;
        if let Some(job) = m.job {
            let verified = jobs.binary_search_by_key(&job, |j| j.id).is_ok_and(|i| {
                jobs[i].status == PoiStatus::Verified && jobs[i].model_id == Some(id)
            });
            ensure(verified, || {
                format!("model {id}: job {job} is not a verified job that registered it")
            })?;
        }
        expected_names.push((registry::name_key(&m.name, m.version), id));
    }
    expected_names.sort();
    let mut stored = names.to_vec();
    stored.sort();
    ensure(expected_names == stored, || {
        "the model name index does not match the versions".into()
    })?;
    let mut per_name: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for m in models {
        per_name.entry(m.name.as_str()).or_default().push(m.version);
    }
    for (name, mut versions) in per_name {
        versions.sort_unstable();
        ensure(versions.iter().zip(1u32..).all(|(v, i)| *v == i), || {
            format!("model {name}: versions are not 1..")
        })?;
    }
    Ok(())
}

/// Disputes: numbered `0..job.disputes`, `disputes_open` of them open; an open dispute
/// holds a positive bond and a closed one none; a playing dispute has exactly its move
/// deadline, and one awaiting referees exactly its draw target; arbiter checks name a
/// dispute of their job; a verified job has no open dispute.
fn check_disputes(
    jobs: &[PoiJob],
    checks: &[CheckRecord],
    disputes: &[Dispute],
    deadlines: &BTreeSet<(u64, u64, u32)>,
    targets: &[Target],
) -> Check {
    let mut expected_deadlines = BTreeSet::new();
    let mut expected_targets = BTreeSet::new();
    for job in jobs {
        let mine: Vec<&Dispute> = disputes.iter().filter(|d| d.job == job.id).collect();
        let open = mine.iter().filter(|d| d.status.is_open()).count();
        ensure(
            mine.iter().zip(0u32..).all(|(d, n)| d.number == n)
                && mine.len() == job.disputes as usize
                && open == job.disputes_open as usize,
            || format!("poi job {}: disputes out of step with its counters", job.id),
        )?;
        ensure(job.status != PoiStatus::Verified || open == 0, || {
            format!("poi job {} is verified with an open dispute", job.id)
        })?;
        let proven = mine.iter().any(|d| d.status == DisputeStatus::ProviderLost)
            || checks
                .iter()
                .any(|c| c.job == job.id && c.status == CheckStatus::Upheld);
        ensure((job.status == PoiStatus::Failed) == proven, || {
            format!(
                "poi job {} is {} but {} proven fault",
                job.id,
                job.status.as_str(),
                if proven { "has a" } else { "has no" }
            )
        })?;
        for d in mine {
            ensure(d.status.is_open() == (d.bond > 0), || {
                format!(
                    "dispute {}/{}: bond {} while {:?}",
                    d.job, d.number, d.bond, d.status
                )
            })?;
            if let (DisputeStatus::Playing, Some(h)) = (d.status, d.game.deadline()) {
                expected_deadlines.insert((h, d.job, d.number));
            }
            ensure(
                (d.status == DisputeStatus::AwaitingReferees) == d.referee_target.is_some(),
                || format!("dispute {}/{}: referee target out of step", d.job, d.number),
            )?;
            if let Some((epoch, view)) = d.referee_target {
                expected_targets.insert((epoch, view, d.job, DISPUTE_SLOT_BASE + d.number));
            }
        }
    }
    ensure(
        disputes.iter().all(|d| jobs.iter().any(|j| j.id == d.job)),
        || "a dispute of a job without a poi record".into(),
    )?;
    ensure(&expected_deadlines == deadlines, || {
        "dispute deadlines are not exactly the playing disputes'".into()
    })?;
    let stored: BTreeSet<(u64, u64, u64, u32)> = targets
        .iter()
        .filter(|t| t.slot != JOB_SLOT && t.slot >= DISPUTE_SLOT_BASE)
        .map(|t| (t.epoch, t.view, t.job, t.slot))
        .collect();
    ensure(stored == expected_targets, || {
        "dispute referee targets are not exactly the disputes awaiting referees".into()
    })?;
    for c in checks {
        if let CheckRole::Arbiter { dispute } = c.role {
            ensure(
                disputes
                    .iter()
                    .any(|d| d.job == c.job && d.number == dispute),
                || format!("check {}/{} referees no dispute", c.job, c.index),
            )?;
        }
    }
    Ok(())
}

fn key_address(key: &[u8], prefix: &[u8]) -> Option<Address> {
    Some(Address(key.strip_prefix(prefix)?.try_into().ok()?))
}

fn key_ordinal(key: &[u8]) -> Option<u32> {
    let rest = key.strip_prefix(VERIFIER_INDEX_PREFIX)?;
    Some(u32::from_be_bytes(rest.try_into().ok()?))
}

/// The verifier index is dense (`0..count`, in key order) and agrees with the records both
/// ways; bonds are positive; nothing is open before spot checks exist.
fn check_verifiers(
    verifiers: &BTreeMap<Address, Verifier>,
    index: &[(u32, Address)],
    count: Option<u32>,
) -> Check {
    ensure(count != Some(0), || {
        "the verifier count is stored as 0".into()
    })?;
    let n = count.unwrap_or(0);
    ensure(verifiers.len() == n as usize, || {
        format!("{} verifier records, count {n}", verifiers.len())
    })?;
    ensure(index.len() == n as usize, || {
        format!("{} verifier index entries, count {n}", index.len())
    })?;
    for (expected, (ordinal, address)) in (0u32..).zip(index) {
        ensure(*ordinal == expected, || {
            format!("verifier index has a hole at ordinal {expected}")
        })?;
        let v = verifiers
            .get(address)
            .ok_or_else(|| format!("verifier index {ordinal}: {address} is not a verifier"))?;
        ensure(v.ordinal == *ordinal, || {
            format!(
                "verifier {address} has ordinal {} but is indexed at {ordinal}",
                v.ordinal
            )
        })?;
    }
    // n records, n distinct ordinals each naming its record: the index is a bijection.
    for (address, v) in verifiers {
        ensure(v.bond > 0, || format!("verifier {address} has no bond"))?;
    }
    Ok(())
}

/// The generalised staking lock audit: for every account, staking's `locked` is exactly what
/// the market locks (collateral and tier lock) plus what PoI locks (the verifier bond) plus
/// the validator collateral ([`crate::validators`]). More
/// would be a lock nobody releases, less a commitment without stake behind it.
fn check_stake_locks(state: &dyn StateReader, verifiers: &BTreeMap<Address, Verifier>) -> Check {
    let market_locks = market::stake_locks(state)?;
    let mut accounts: BTreeSet<Address> = market_locks.keys().copied().collect();
    accounts.extend(verifiers.keys().copied());
    let mut failure = None;
    state
        .scan_prefix(staking::STAKE_PREFIX, &mut |key, _| {
            match key_address(key, staking::STAKE_PREFIX) {
                Some(address) => {
                    accounts.insert(address);
                }
                None => failure = Some(format!("bad stake key {}", hex::encode(key))),
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    for address in accounts {
        let locked = staking::stake(state, &address)
            .map_err(|e| e.to_string())?
            .locked;
        let by_market: Amount = market_locks.get(&address).copied().unwrap_or(0);
        let by_poi: Amount = verifiers.get(&address).map_or(0, |v| v.bond);
        let by_validators: Amount = crate::validators::candidate(state, &address)
            .map_err(|e| e.to_string())?
            .map_or(0, |c| c.collateral);
        let committed = by_market
            .checked_add(by_poi)
            .and_then(|sum| sum.checked_add(by_validators))
            .ok_or_else(|| format!("{address}: market, poi and validator locks overflow"))?;
        ensure(locked == committed, || {
            format!(
                "{address}: staking locks {locked}, the market commits {by_market}, poi \
                 bonds {by_poi} and validator collateral is {by_validators}"
            )
        })?;
    }
    Ok(())
}

fn check_job(state: &dyn StateReader, job: &PoiJob) -> Check {
    let id = job.id;
    let mj = market::job(state, id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("poi job {id} has no market job"))?;
    match (&mj.spec, job.kind) {
        (
            JobSpec::Training {
                hyperparams_hash,
                steps,
                ..
            },
            PoiKind::Training,
        ) => {
            ensure(
                *hyperparams_hash == job.spec_hash && *steps == job.steps,
                || format!("poi job {id}: spec hash or steps differ from the market job"),
            )?;
            ensure(
                job.segment_steps >= 1 && job.segments == job.steps.div_ceil(job.segment_steps),
                || format!("poi job {id}: segments != ceil(steps / segment_steps)"),
            )?;
        }
        (JobSpec::Inference { input_hash, .. }, PoiKind::Inference) => {
            ensure(*input_hash == job.spec_hash, || {
                format!("poi job {id}: input root differs from the market job")
            })?;
            ensure(job.segment_steps == 1 && job.segments == job.steps, || {
                format!("poi job {id}: an inference job has one segment per request")
            })?;
        }
        _ => return Err(format!("poi job {id}: kind differs from the market job")),
    }
    match job.status {
        PoiStatus::Submitted => {
            ensure(job.commitment.is_none(), || {
                format!("submitted poi job {id} has a commitment")
            })?;
            ensure(
                matches!(
                    mj.status,
                    JobStatus::Queued
                        | JobStatus::Matched
                        | JobStatus::Running
                        | JobStatus::Cancelled
                        | JobStatus::Expired
                ),
                || {
                    format!(
                        "submitted poi job {id}: the market job is {}",
                        mj.status.as_str()
                    )
                },
            )?;
        }
        PoiStatus::Verifying | PoiStatus::Verified | PoiStatus::Failed => {
            let c = job
                .commitment
                .as_ref()
                .ok_or_else(|| format!("verifying poi job {id} has no commitment"))?;
            ensure(mj.result_root == Some(c.root), || {
                format!("poi job {id}: committed root differs from the market job's")
            })?;
            if job.kind == PoiKind::Training {
                let digest =
                    merkle::step_digest(&job.spec_hash, job.steps, &c.params_digest, &c.opt_digest);
                ensure(digest == c.final_digest, || {
                    format!("poi job {id}: final digest is not the step digest of its inputs")
                })?;
            }
            ensure(
                mj.is_held()
                    || matches!(
                        mj.status,
                        JobStatus::Disputed | JobStatus::Settled | JobStatus::Failed
                    ),
                || {
                    format!(
                        "verifying poi job {id}: the market job is {} and not held",
                        mj.status.as_str()
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// Every held market job is a verifying PoI job (only PoI holds jobs).
fn check_held(state: &dyn StateReader, jobs: &[PoiJob]) -> Check {
    let mut held = Vec::new();
    let mut failure = None;
    state
        .scan_prefix(market::records::JOB_PREFIX, &mut |key, value| {
            match state::decode::<market::Job>(key, value) {
                Ok(job) if job.is_held() => held.push(job.id),
                Ok(_) => {}
                Err(e) => failure = Some(e.to_string()),
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    for id in held {
        let verifying = jobs
            .binary_search_by_key(&id, |j| j.id)
            .is_ok_and(|i| jobs[i].status == PoiStatus::Verifying);
        ensure(verifying, || {
            format!("market job {id} is held but not a verifying poi job")
        })?;
    }
    Ok(())
}
