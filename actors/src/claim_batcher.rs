//! `ClaimBatcher`: researchers' requests for a VM, served in batches (group commit). A worker
//! thread takes every claim waiting in its queue and serves them all in one transaction, so a
//! rush of researchers pays one commit per batch instead of one per claim. A lone claim on an
//! idle allocator is taken at once and costs one transaction, as before.
//!
//! Each claim runs in a savepoint of the batch's transaction, in arrival order: a claim sees
//! the ones before it in its batch (the same email gets the same VM), and a claim that fails
//! is rolled back alone. The invariants are those of a single claim: one statement takes a
//! free row (`FOR UPDATE SKIP LOCKED` on PostgreSQL), the unique index on `user_email` refuses
//! a second VM for one researcher, and "none free" is answered only when the committed table
//! has no free VM.

use lablink_schema::connection::write_transaction;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::Connection;
use lablink_schema::vms::Vm;
use lablink_schema::{Backend, DbConnection, DbPool};
use tokio::sync::oneshot;

use crate::batch_queue::{BatchCounts, BatchQueue, Linger};
use crate::change_feed::{ChangeFeed, VmEvent};
use crate::db_writer::{writer_threads, WriteError};

/// Most claims served in one transaction; more wait for the next batch.
const MAX_BATCH: usize = 256;
/// How long claims keep trying before answering "contended". A claim finds nothing only when
/// every free row is locked by claims of other transactions (another worker's batch, another
/// allocator), some of which may roll back; once those commit, the next round either finds a
/// row or sees that none is free. A busy worker's batch takes up to a few hundred
/// milliseconds, so this is generous.
const CLAIM_PATIENCE: Duration = Duration::from_secs(5);
/// Pause before another round, times the round's number, up to [`MAX_ROUND_DELAY`].
const ROUND_DELAY: Duration = Duration::from_millis(2);
const MAX_ROUND_DELAY: Duration = Duration::from_millis(20);

/// Give a free VM to a researcher (`POST /api/request_vm`). A researcher who already holds a
/// VM gets that one back.
#[derive(Debug, Clone)]
pub struct AssignVm {
    /// Normalised (trimmed, lower-case) email.
    pub email: String,
    pub crd_command: String,
    pub pin: String,
    /// The SHA-256 of the asking browser's key, kept with the assignment so that browser
    /// may see it again.
    pub claimed_by: Option<String>,
    /// The workshop whose VMs may be given (`None`: the VMs made for no workshop).
    pub workshop_id: Option<i64>,
}

/// The VM a researcher holds after [`AssignVm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub vm: Vm,
    /// False when the researcher already held this VM.
    pub newly_assigned: bool,
}

struct PendingClaim {
    request: AssignVm,
    reply: oneshot::Sender<Result<Assignment, WriteError>>,
}

/// Hands claims to the worker threads; cheap to clone.
#[derive(Clone)]
pub struct ClaimBatcher {
    queue: BatchQueue<PendingClaim>,
    counts: Arc<BatchCounts>,
}

impl std::fmt::Debug for ClaimBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimBatcher").finish_non_exhaustive()
    }
}

impl ClaimBatcher {
    /// Starts the workers: `postgres_workers` on PostgreSQL (batches then commit side by side),
    /// one on SQLite (one writer at a time). They stop when every `ClaimBatcher` is dropped.
    pub fn start(
        pool: DbPool,
        backend: Backend,
        feed: Arc<dyn ChangeFeed>,
        postgres_workers: usize,
    ) -> ClaimBatcher {
        let counts = Arc::new(BatchCounts::default());
        let worker = Worker {
            pool,
            feed: crate::change_feed::for_writer(backend, feed),
            counts: counts.clone(),
        };
        // No linger: a lone researcher must not wait for company.
        let queue = BatchQueue::start(
            "claim-batcher",
            writer_threads(backend, postgres_workers),
            MAX_BATCH,
            Linger::NONE,
            counts.clone(),
            move |batch| worker.serve(batch),
        );
        ClaimBatcher { queue, counts }
    }

    /// Claims taken and transactions used so far (retry rounds included).
    pub fn counts(&self) -> (u64, u64) {
        self.counts.snapshot()
    }

    /// Claims a VM for the researcher; answers when the claim's batch has committed.
    pub async fn assign(&self, request: AssignVm) -> Result<Assignment, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .push(PendingClaim { request, reply })
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

/// What the worker threads share to serve a batch.
struct Worker {
    pool: DbPool,
    feed: Arc<dyn ChangeFeed>,
    counts: Arc<BatchCounts>,
}

/// Where a claim stands after a round. Short-lived, one per claim: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Outcome {
    Done(Result<Assignment, WriteError>),
    /// Nothing claimable in this round, or a concurrent request of the same researcher won:
    /// look again in the next round.
    Again,
}

impl Worker {
    fn serve(&self, mut waiting: Vec<PendingClaim>) {
        let deadline = Instant::now() + CLAIM_PATIENCE;
        for round in 1.. {
            let outcomes = self.round(&waiting);
            let mut again = Vec::new();
            for (claim, outcome) in waiting.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Done(result) => {
                        if let Err(err) = &result {
                            if !err.is_expected() {
                                tracing::error!(error = %err, "assignment failed");
                            }
                        }
                        // The researcher may have given up; the claim stands either way.
                        let _ = claim.reply.send(result);
                    }
                    Outcome::Again => again.push(claim),
                }
            }
            if again.is_empty() {
                return;
            }
            waiting = again;
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep((ROUND_DELAY * round).min(MAX_ROUND_DELAY));
        }
        for claim in waiting {
            let _ = claim.reply.send(Err(WriteError::Contended));
        }
    }

    /// One transaction over `claims`, then, for the claims that found nothing, a look at the
    /// committed table: none free means "no VM", otherwise they try again.
    fn round(&self, claims: &[PendingClaim]) -> Vec<Outcome> {
        let mut pooled = match self.pool.get() {
            Ok(pooled) => pooled,
            Err(err) => return all_failed(claims, &err.to_string()),
        };
        let conn: &mut DbConnection = &mut pooled;
        let now = Utc::now().naive_utc();
        self.counts.add_transaction();
        let started = Instant::now();
        let committed = write_transaction(conn, |conn| {
            // All at once where that works; one at a time, each in its own savepoint, where
            // it does not (a researcher given a VM by another allocator meanwhile).
            if claims.len() > 1 {
                if let Ok(results) = conn.transaction(|conn| claim_together(conn, claims, now)) {
                    return Ok(results);
                }
            }
            Ok::<_, diesel::result::Error>(
                claims
                    .iter()
                    .map(|claim| claim_one(conn, &claim.request, now))
                    .collect::<Vec<_>>(),
            )
        });
        let results = match committed {
            Ok(results) => results,
            // The commit itself failed: nothing of this batch happened.
            Err(err) => return all_failed(claims, &err.to_string()),
        };
        let mut none_free: HashMap<Option<i64>, bool> = HashMap::new();
        results
            .into_iter()
            .zip(claims)
            .map(|(result, claim)| match result {
                Ok(Some(assignment)) => {
                    if assignment.newly_assigned {
                        self.announce(&assignment.vm, started);
                    }
                    Outcome::Done(Ok(assignment))
                }
                Ok(None) => {
                    let workshop = claim.request.workshop_id;
                    let nothing_free = *none_free.entry(workshop).or_insert_with(|| {
                        Vm::count_free_in(conn, workshop)
                            .map(|free| free == 0)
                            .unwrap_or(false)
                    });
                    // The same researcher's other request (a double press, in another batch)
                    // may have taken the VM this one found locked: then that is their VM.
                    // Looked up after the count, so a claim that committed before the count
                    // saw nothing free is found here.
                    if let Ok(Some(vm)) = Vm::find_by_email(conn, &claim.request.email) {
                        return Outcome::Done(Ok(Assignment {
                            vm,
                            newly_assigned: false,
                        }));
                    }
                    if nothing_free {
                        Outcome::Done(Err(WriteError::NoFreeVm))
                    } else {
                        Outcome::Again
                    }
                }
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => Outcome::Again,
                Err(err) => Outcome::Done(Err(err.into())),
            })
            .collect()
    }

    /// Hands a new assignment to this process's waiting agents at once (the committed row),
    /// and announces the change (where the database does not already: see
    /// [`crate::change_feed::for_writer`]).
    fn announce(&self, vm: &Vm, claim_started: Instant) {
        self.feed.publish(VmEvent::Claimed {
            row: Box::new(vm.clone()),
            claim_started,
        });
        self.feed.publish(VmEvent::Changed {
            hostname: vm.hostname.clone(),
        });
    }
}

/// The same failure for every claim of a batch.
fn all_failed(claims: &[PendingClaim], reason: &str) -> Vec<Outcome> {
    claims
        .iter()
        .map(|_| Outcome::Done(Err(WriteError::Batch(reason.to_owned()))))
        .collect()
}

/// A claim to make: `(email, crd_command, pin, claimed_by)`, as [`Vm::claim_free_many`]
/// takes it.
type WantedClaim = (String, String, String, Option<String>);

/// What each claim of a batch gets, from one look at who already holds a VM and one
/// statement claiming VMs for the rest (the first claim of a researcher claims; later ones in
/// the batch get the same VM, as not new).
fn claim_together(
    conn: &mut DbConnection,
    claims: &[PendingClaim],
    now: chrono::NaiveDateTime,
) -> Result<Vec<Result<Option<Assignment>, diesel::result::Error>>, diesel::result::Error> {
    let emails: Vec<String> = claims.iter().map(|c| c.request.email.clone()).collect();
    let mut held: HashMap<String, Vm> = HashMap::new();
    for vm in Vm::find_by_emails(conn, &emails)? {
        // A researcher whose VM broke is given another one: see `release_broken`.
        if vm.state().blocks_assignment() && Vm::release_broken(conn, &vm, now)?.is_some() {
            continue;
        }
        if let Some(email) = vm.user_email.clone() {
            held.insert(email, vm);
        }
    }
    let mut asking = HashSet::new();
    // One statement per workshop asked for: each takes only its own workshop's VMs.
    let mut wanted: HashMap<Option<i64>, Vec<WantedClaim>> = HashMap::new();
    for r in claims.iter().map(|c| &c.request) {
        if !held.contains_key(&r.email) && asking.insert(r.email.clone()) {
            wanted.entry(r.workshop_id).or_default().push((
                r.email.clone(),
                r.crd_command.clone(),
                r.pin.clone(),
                r.claimed_by.clone(),
            ));
        }
    }
    let mut claimed: HashMap<String, Vm> = HashMap::new();
    for (workshop_id, group) in &wanted {
        for vm in Vm::claim_free_many(conn, group, *workshop_id, now)? {
            if let Some(email) = vm.user_email.clone() {
                claimed.insert(email, vm);
            }
        }
    }
    let mut announced = HashSet::new();
    Ok(claims
        .iter()
        .map(|claim| {
            let email = &claim.request.email;
            Ok(if let Some(vm) = held.get(email) {
                Some(Assignment {
                    vm: vm.clone(),
                    newly_assigned: false,
                })
            } else {
                claimed.get(email).map(|vm| Assignment {
                    vm: vm.clone(),
                    newly_assigned: announced.insert(email.clone()),
                })
            })
        })
        .collect())
}

/// One claim in its own savepoint: the VM the researcher holds, or a newly claimed one, or
/// `None` when nothing could be claimed.
fn claim_one(
    conn: &mut DbConnection,
    request: &AssignVm,
    now: chrono::NaiveDateTime,
) -> Result<Option<Assignment>, diesel::result::Error> {
    conn.transaction(|conn| {
        if let Some(vm) = Vm::find_by_email(conn, &request.email)? {
            let broken =
                vm.state().blocks_assignment() && Vm::release_broken(conn, &vm, now)?.is_some();
            if !broken {
                return Ok(Some(Assignment {
                    vm,
                    newly_assigned: false,
                }));
            }
        }
        Ok(Vm::claim_free(
            conn,
            &request.email,
            &request.crd_command,
            &request.pin,
            request.claimed_by.as_deref(),
            request.workshop_id,
            now,
        )?
        .map(|vm| Assignment {
            vm,
            newly_assigned: true,
        }))
    })
}
