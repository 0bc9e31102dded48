//! A full audit of the market's records and indexes (run by [`crate::chain::Chain::audit`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::address::Address;
use crate::params::{PARAMS_KEY, Params};
use crate::staking;
use crate::state::{self, StateReader};
use crate::token::Amount;

use super::records::{
    ASK_PREFIX, DEADLINE_PREFIX, DeadlineKind, EXCLUDED_MAX, JOB_PREFIX, Job, JobStatus,
    MarketState, PROVIDER_PREFIX, Provider, QUEUE_PREFIX, STATUS_PREFIX, USER_PREFIX, UserRecord,
    ask_key, deadline_key, load_state, queue_key, status_key,
};

type Check = Result<(), String>;

fn scan<T: borsh::BorshDeserialize>(
    state: &dyn StateReader,
    prefix: &[u8],
) -> Result<Vec<(Vec<u8>, T)>, String> {
    let mut out = Vec::new();
    let mut failure = None;
    state
        .scan_prefix(prefix, &mut |key, value| {
            match state::decode::<T>(key, value) {
                Ok(v) => out.push((key.to_vec(), v)),
                Err(e) => failure = Some(e.to_string()),
            }
            failure.is_none()
        })
        .map_err(|e| e.to_string())?;
    failure.map_or(Ok(out), Err)
}

fn keys(state: &dyn StateReader, prefix: &[u8]) -> Result<BTreeSet<Vec<u8>>, String> {
    let mut out = BTreeSet::new();
    state
        .scan_prefix(prefix, &mut |key, _| {
            out.insert(key.to_vec());
            true
        })
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

/// Checks every market invariant; returns the first violation.
pub(crate) fn check(state: &dyn StateReader) -> Check {
    let params: Params = state::read_borsh(state, PARAMS_KEY)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let ms = load_state(state, &params.market).map_err(|e| e.to_string())?;
    let jobs: Vec<Job> = scan(state, JOB_PREFIX)?
        .into_iter()
        .map(|(_, j)| j)
        .collect();
    let providers: BTreeMap<Address, Provider> = scan::<Provider>(state, PROVIDER_PREFIX)?
        .into_iter()
        .map(|(_, p)| (p.address, p))
        .collect();
    let users: BTreeMap<Vec<u8>, UserRecord> = scan(state, USER_PREFIX)?.into_iter().collect();
    let mut deadlines = keys(state, DEADLINE_PREFIX)?;
    let mut queue = keys(state, QUEUE_PREFIX)?;
    let mut asks = keys(state, ASK_PREFIX)?;
    check_jobs(&ms, &jobs, &providers, &mut queue, &mut deadlines)?;
    ensure(queue.is_empty(), || {
        format!("{} stray queue entries", queue.len())
    })?;
    check_providers(&ms, &jobs, &providers, &mut asks, &mut deadlines)?;
    ensure(asks.is_empty(), || {
        format!("{} stray ask entries", asks.len())
    })?;
    ensure(deadlines.is_empty(), || {
        format!("{} stray deadline entries", deadlines.len())
    })?;
    let mut by_status = keys(state, STATUS_PREFIX)?;
    for job in &jobs {
        ensure(by_status.remove(&status_key(job.status, job.id)), || {
            format!(
                "job {} has no status-index entry for {}",
                job.id,
                job.status.as_str()
            )
        })?;
    }
    ensure(by_status.is_empty(), || {
        format!("{} stray status-index entries", by_status.len())
    })?;
    check_users(state, &jobs, &providers, &users)
}

fn check_jobs(
    ms: &MarketState,
    jobs: &[Job],
    providers: &BTreeMap<Address, Provider>,
    queue: &mut BTreeSet<Vec<u8>>,
    deadlines: &mut BTreeSet<Vec<u8>>,
) -> Check {
    let mut by_status = vec![0u64; JobStatus::COUNT];
    let mut queued_by_tier = vec![0u64; ms.queued_by_tier.len()];
    let mut since = vec![0u128; ms.queued_since_sum.len()];
    let mut escrow: Amount = 0;
    for job in jobs {
        let id = job.id;
        let bought = u128::from(job.units) * job.max_price;
        ensure(id < ms.next_job_id, || {
            format!("job {id} above the counter")
        })?;
        by_status[job.status.index()] += 1;
        escrow += job.escrow;
        let bond_held = if job.status == JobStatus::Disputed {
            job.dispute_bond_posted
        } else {
            0
        };
        ensure(job.dispute_bond == bond_held, || {
            format!("job {id}: dispute bond held out of a dispute")
        })?;
        ensure(job.excluded.len() <= EXCLUDED_MAX, || {
            format!("job {id}: more than {EXCLUDED_MAX} excluded providers")
        })?;
        ensure(
            job.excluded
                .iter()
                .enumerate()
                .all(|(i, a)| !job.excluded[..i].contains(a)),
            || format!("job {id}: a provider excluded twice"),
        )?;
        if job.status.is_final() {
            ensure(job.escrow == 0, || format!("final job {id} holds escrow"))?;
            ensure(job.paid + job.refunded == bought, || {
                format!("job {id}: paid + refunded != escrow")
            })?;
        } else {
            ensure(job.escrow == bought, || {
                format!("job {id}: escrow != units x max_price")
            })?;
            ensure(job.paid == 0 && job.refunded == 0, || {
                format!("open job {id} paid out")
            })?;
        }
        match DeadlineKind::for_status(job.status) {
            // Held for PoI: the marker is on the record, nothing is indexed.
            Some(_) if job.is_held() => {}
            Some(kind) => {
                let d = job.deadline.filter(|d| d.kind == kind);
                let d = d.ok_or_else(|| format!("job {id} lacks its {kind:?} deadline"))?;
                let key = deadline_key(d.height, kind, &id.to_be_bytes());
                ensure(deadlines.remove(&key), || {
                    format!("job {id}: deadline not indexed")
                })?;
            }
            None => ensure(job.deadline.is_none(), || {
                format!("job {id}: stale deadline")
            })?,
        }
        if job.status == JobStatus::Queued {
            ensure(job.provider.is_none(), || {
                format!("queued job {id} has a provider")
            })?;
            ensure(queue.remove(&queue_key(job)), || {
                format!("job {id} not in the queue")
            })?;
            queued_by_tier[job.tier as usize] += 1;
            since[job.tier as usize] += u128::from(job.submitted_height);
        } else if !job.status.is_final() {
            let p = job
                .provider
                .and_then(|a| providers.get(&a))
                .ok_or_else(|| format!("job {id}: provider missing"))?;
            ensure(p.jobs.contains(&id), || {
                format!("job {id} not in its provider's list")
            })?;
            ensure(!job.excluded.contains(&p.address), || {
                format!("job {id} assigned to a provider it excludes")
            })?;
            ensure(job.charged_price <= job.max_price, || {
                format!("job {id} overcharged")
            })?;
        }
    }
    ensure(by_status == ms.jobs_by_status, || {
        "job counts by status drifted".into()
    })?;
    ensure(queued_by_tier == ms.queued_by_tier, || {
        "queue counts drifted".into()
    })?;
    ensure(since == ms.queued_since_sum, || {
        "queue wait sums drifted".into()
    })?;
    ensure(escrow == ms.escrow_total, || {
        format!("escrow {escrow} != total")
    })
}

fn check_providers(
    ms: &MarketState,
    jobs: &[Job],
    providers: &BTreeMap<Address, Provider>,
    asks: &mut BTreeSet<Vec<u8>>,
    deadlines: &mut BTreeSet<Vec<u8>>,
) -> Check {
    let by_id: BTreeMap<u64, &Job> = jobs.iter().map(|j| (j.id, j)).collect();
    let (mut online, mut capacity, mut load) = (0u64, 0u128, 0u128);
    for (address, p) in providers {
        let mut units = 0u64;
        ensure(p.jobs.windows(2).all(|w| w[0] < w[1]), || {
            format!("provider {address}: job list unsorted")
        })?;
        for id in &p.jobs {
            let job = by_id
                .get(id)
                .ok_or_else(|| format!("{address}: job {id} missing"))?;
            ensure(
                job.provider == Some(*address) && !job.status.is_final(),
                || format!("provider {address} lists job {id}, not assigned to it"),
            )?;
            if job.status.is_loading() {
                units += job.units;
            }
        }
        ensure(units == p.load_units, || {
            format!("provider {address}: load drifted")
        })?;
        load += u128::from(units);
        if let Some((ask, rep)) = p.listed_at {
            ensure(asks.remove(&ask_key(ask, rep, address)), || {
                format!("provider {address} listed but not indexed")
            })?;
            ensure(p.online, || format!("offline provider {address} listed"))?;
        }
        if p.online {
            online += 1;
            capacity += u128::from(p.capacity_units_per_block);
            let key = deadline_key(p.heartbeat_deadline, DeadlineKind::Heartbeat, &address.0);
            ensure(deadlines.remove(&key), || {
                format!("{address}: heartbeat not indexed")
            })?;
        } else {
            ensure(p.heartbeat_deadline == 0, || {
                format!("offline {address} has a deadline")
            })?;
        }
    }
    ensure(providers.len() as u64 == ms.providers, || {
        "provider count drifted".into()
    })?;
    ensure(online == ms.providers_online, || {
        "online count drifted".into()
    })?;
    ensure(capacity == ms.capacity_online, || {
        "online capacity drifted".into()
    })?;
    ensure(load == ms.load_units, || "market load drifted".into())
}

fn check_users(
    state: &dyn StateReader,
    jobs: &[Job],
    providers: &BTreeMap<Address, Provider>,
    users: &BTreeMap<Vec<u8>, UserRecord>,
) -> Check {
    let mut active: BTreeMap<Address, u32> = BTreeMap::new();
    for job in jobs.iter().filter(|j| !j.status.is_final()) {
        *active.entry(job.owner).or_default() += 1;
    }
    ensure(active.len() == users.len(), || {
        "user records != users with jobs".into()
    })?;
    for (owner, count) in &active {
        let key = [USER_PREFIX, owner.as_bytes()].concat();
        let user = users
            .get(&key)
            .ok_or_else(|| format!("{owner}: no user record"))?;
        ensure(user.active_jobs == *count, || {
            format!("{owner}: active job count drifted")
        })?;
    }
    for (address, committed) in commitments(&active, providers, users)? {
        let locked = staking::stake(state, &address)
            .map_err(|e| e.to_string())?
            .locked;
        // Other modules lock stake too (PoI's verifier bonds), so the market checks only that
        // its commitments are covered; the exact sum is PoI's audit
        // (`poi::invariants`), which sees both modules.
        ensure(locked >= committed, || {
            format!(
                "{address}: staking locks {locked}, less than the market's commitments {committed}"
            )
        })?;
    }
    Ok(())
}

/// What the market locks in staking for each account: its provider collateral plus, while it
/// has active jobs, its tier lock. Accounts locking nothing are left out.
fn commitments(
    active: &BTreeMap<Address, u32>,
    providers: &BTreeMap<Address, Provider>,
    users: &BTreeMap<Vec<u8>, UserRecord>,
) -> Result<BTreeMap<Address, Amount>, String> {
    let mut lockers: BTreeSet<Address> = providers.keys().copied().collect();
    lockers.extend(active.keys().copied());
    let mut out = BTreeMap::new();
    for address in lockers {
        let collateral = providers.get(&address).map_or(0, |p| p.collateral);
        let user_lock = active.get(&address).map_or(0, |_| {
            let key = [USER_PREFIX, address.as_bytes()].concat();
            users.get(&key).map_or(0, |u| u.locked)
        });
        let committed = collateral
            .checked_add(user_lock)
            .ok_or_else(|| format!("{address}: collateral plus tier lock overflows"))?;
        if committed > 0 {
            out.insert(address, committed);
        }
    }
    Ok(out)
}

/// The stake the market locks for each account (see [`commitments`]), read from its records;
/// for the chain-wide staking lock audit.
pub(crate) fn stake_locks(state: &dyn StateReader) -> Result<BTreeMap<Address, Amount>, String> {
    let mut active: BTreeMap<Address, u32> = BTreeMap::new();
    for (_, job) in scan::<Job>(state, JOB_PREFIX)? {
        if !job.status.is_final() {
            *active.entry(job.owner).or_default() += 1;
        }
    }
    let providers: BTreeMap<Address, Provider> = scan::<Provider>(state, PROVIDER_PREFIX)?
        .into_iter()
        .map(|(_, p)| (p.address, p))
        .collect();
    let users: BTreeMap<Vec<u8>, UserRecord> = scan(state, USER_PREFIX)?.into_iter().collect();
    commitments(&active, &providers, &users)
}
