//! Group commit of record-engine batches on SQLite.
//!
//! SQLite has one writer at a time, and on this driver every statement is a round trip to the
//! connection's worker thread, so one transaction per [`WriteBatch`] pays `BEGIN` and `COMMIT`
//! for every caller. Instead, [`Store::write`](crate::Store::write) queues its (validated) batch
//! to ONE writer task per store, which loops:
//!
//! 1. wait for a batch, then take every batch already waiting — no timer, so a lone writer is
//!    served at once — up to [`MAX_GROUP_BATCHES`] batches and [`MAX_GROUP_ROWS`] rows;
//! 2. skip batches whose caller has gone (a cancelled request writes nothing) and answer
//!    [`StoreError::Busy`] to those that waited longer than the acquire timeout;
//! 3. open ONE `BEGIN IMMEDIATE` transaction (BUSY from another process is retried as for every
//!    write, then reported to every caller of the group as [`StoreError::Busy`]) and apply each
//!    batch inside a savepoint of its own: a batch that fails is rolled back to its savepoint and
//!    its error goes to its caller alone;
//! 4. commit once and answer every caller through its oneshot channel.
//!
//! Batches of a group are applied in queue order, each seeing those before it, as if each had
//! run in a transaction of its own one after the other (which is what the single writer
//! connection did before): a batch's outcome — ids, `alerts_raised`, error — is the one it
//! would have had alone. If the group's transaction itself breaks (a savepoint cannot be rolled
//! back, the commit fails), nothing of it is kept and each of its batches runs again alone, in
//! a transaction of its own.
//!
//! Audit events are chained after the head (`crate::audit`) that the writer reads inside the
//! group's transaction when a batch first needs it and carries from batch to batch; a batch
//! refused in its savepoint leaves the head where it was, a replayed batch moves it itself.
//!
//! A batch is first tried in one round trip ([`crate::batch_sql`]); if that statement fails
//! for any reason, the batch is rolled back to its savepoint and replayed statement by statement
//! ([`write_in`], the PostgreSQL path), whose result — usually the precise error, such as which
//! unique key is taken — is the one reported.
//!
//! The task holds a clone of the writer connection, never the [`Store`](crate::Store), so it
//! ends when the last store clone is dropped (its queue closes) or at
//! [`Store::close`](crate::Store::close).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use jiayuan_domain::RecordId;

use crate::audit::{self, Head};
use crate::batch_sql::{self, OneTrip};
use crate::error::{StoreError, db_err};
use crate::records::{WriteBatch, WriteResult, check_existing_refs, write_in};
use crate::store::{begin_write_on, finish};

/// The most batches one group commits together.
pub(crate) const MAX_GROUP_BATCHES: usize = 64;

/// The most rows (records, updates, keys, references, alerts) one group writes, so that a group of large
/// batches does not hold the write lock for long. A batch larger than this alone still runs
/// (as a group of one).
pub(crate) const MAX_GROUP_ROWS: usize = 4096;

const OP: &str = "write batch";

/// The last record id in use: the next one `AUTOINCREMENT` would give is one more. Read once per
/// group, under the write lock, so the one-round-trip form can name the ids it creates.
const LAST_RECORD_ID_SQL: &str = "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0), \
     COALESCE((SELECT MAX(id) FROM records), 0))";

type Reply = oneshot::Sender<Result<WriteResult, StoreError>>;

/// One caller's batch, waiting for the writer task.
struct Job {
    batch: WriteBatch,
    queued_at: Instant,
    reply: Reply,
}

enum Message {
    Write(Job),
    /// Finish what was queued before, then stop.
    Close,
}

/// The handle of a store's group-commit writer task (shared by all clones of the store).
pub(crate) struct GroupWriter {
    queue: mpsc::UnboundedSender<Message>,
    task: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
}

/// What the writer task has done, for logs and tests.
#[derive(Default)]
struct Stats {
    /// Transactions committed (groups, and batches run alone after a group broke).
    commits: AtomicU64,
    /// Batches written in one round trip.
    one_trip: AtomicU64,
    /// Batches replayed statement by statement (too large for one round trip, or refused in it).
    replayed: AtomicU64,
}

/// A snapshot of [`Stats`].
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GroupCounts {
    pub(crate) commits: u64,
    pub(crate) one_trip: u64,
    pub(crate) replayed: u64,
}

impl GroupWriter {
    /// Spawns the writer task on the current tokio runtime.
    pub(crate) fn start(writer: DatabaseConnection, acquire_timeout: Duration) -> GroupWriter {
        let (queue, inbox) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let task = WriterTask { writer, inbox, acquire_timeout, stats: stats.clone() };
        GroupWriter { queue, task: Mutex::new(Some(tokio::spawn(task.run()))), stats }
    }

    /// Queues a validated, non-empty batch and waits for its outcome.
    ///
    /// Dropping the returned future before the writer task has started the batch means it is
    /// never applied; once started, it is committed or not with its group, unobserved.
    pub(crate) async fn write(&self, batch: WriteBatch) -> Result<WriteResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Message::Write(Job { batch, queued_at: Instant::now(), reply })).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Lets the writer task finish the batches queued so far, then stops it and waits for it.
    pub(crate) async fn shut_down(&self) {
        // Fails only when the task has stopped already.
        let _ = self.queue.send(Message::Close);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the group-commit writer task failed");
        }
        tracing::debug!(
            commits = self.stats.commits.load(Ordering::Relaxed),
            one_trip = self.stats.one_trip.load(Ordering::Relaxed),
            replayed = self.stats.replayed.load(Ordering::Relaxed),
            "group-commit writer shut down"
        );
    }

    /// What the writer task has done so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> GroupCounts {
        GroupCounts {
            commits: self.stats.commits.load(Ordering::Relaxed),
            one_trip: self.stats.one_trip.load(Ordering::Relaxed),
            replayed: self.stats.replayed.load(Ordering::Relaxed),
        }
    }

    /// Takes the writer task's handle (tests observe that the task ends).
    #[cfg(test)]
    pub(crate) fn take_task(&self) -> Option<JoinHandle<()>> {
        self.task.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The error of a write on a store whose writer task has stopped.
fn closed() -> StoreError {
    StoreError::Database { operation: OP, detail: "the store is closed".into() }
}

/// The group's transaction cannot go on: none of it is kept.
struct Broken(StoreError);

struct WriterTask {
    writer: DatabaseConnection,
    inbox: mpsc::UnboundedReceiver<Message>,
    acquire_timeout: Duration,
    stats: Arc<Stats>,
}

impl WriterTask {
    async fn run(mut self) {
        // A batch taken from the queue that did not fit into the previous group.
        let mut held: Option<Job> = None;
        let mut closing = false;
        loop {
            let first = match held.take() {
                Some(job) => job,
                None if closing => break,
                None => match self.inbox.recv().await {
                    Some(Message::Write(job)) => job,
                    Some(Message::Close) | None => break,
                },
            };
            let mut rows = weight(&first.batch);
            let mut group = vec![first];
            while !closing && group.len() < MAX_GROUP_BATCHES {
                match self.inbox.try_recv() {
                    Ok(Message::Write(job)) => {
                        let w = weight(&job.batch);
                        if rows + w > MAX_GROUP_ROWS {
                            held = Some(job);
                            break;
                        }
                        rows += w;
                        group.push(job);
                    }
                    Ok(Message::Close) => closing = true,
                    Err(_) => break,
                }
            }
            self.run_group(group).await;
        }
        // Batches queued after a close are dropped with the inbox: their callers get `closed()`.
        tracing::debug!("group-commit writer stopped");
    }

    async fn run_group(&self, group: Vec<Job>) {
        let mut jobs = Vec::with_capacity(group.len());
        for job in group {
            if job.reply.is_closed() {
                continue;
            }
            if job.queued_at.elapsed() > self.acquire_timeout {
                let _ = job.reply.send(Err(StoreError::Busy));
                continue;
            }
            jobs.push(job);
        }
        if jobs.is_empty() {
            return;
        }
        let txn = match begin_write_on(&self.writer, OP).await {
            Ok(txn) => txn,
            Err(e) => {
                // Nothing was applied: every caller gets what a lone write would have got.
                for job in jobs {
                    let _ = job.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        match apply_group(&txn, &jobs, &self.stats).await {
            Ok(results) => match txn.commit().await {
                Ok(()) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(batches = jobs.len(), "group committed");
                    for (job, result) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(result);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, batches = jobs.len(), "group commit failed; running its batches alone");
                    self.run_alone(jobs).await;
                }
            },
            Err(Broken(e)) => {
                tracing::warn!(error = %e, batches = jobs.len(), "group transaction broke; running its batches alone");
                if let Err(e) = txn.rollback().await {
                    tracing::warn!(error = %e, "rollback of a broken group failed");
                }
                self.run_alone(jobs).await;
            }
        }
    }

    /// Each batch in a transaction of its own: the way every batch ran before group commit.
    async fn run_alone(&self, jobs: Vec<Job>) {
        for job in jobs {
            if job.reply.is_closed() {
                continue;
            }
            let result = async {
                let txn = begin_write_on(&self.writer, OP).await?;
                let result = write_in(&txn, &job.batch).await;
                finish(txn, result, OP).await
            }
            .await;
            if result.is_ok() {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
            }
            let _ = job.reply.send(result);
        }
    }
}

/// How much a batch writes, for the group budget.
fn weight(batch: &WriteBatch) -> usize {
    let keys: usize = batch.creates.iter().map(|c| c.keys.len() + c.refs.len()).sum::<usize>()
        + batch.updates.iter().map(|u| u.keys.len() + u.refs.len()).sum::<usize>();
    batch.creates.len() + batch.updates.len() + batch.alerts.len() + batch.audit.len() + keys
}

/// Applies every batch of the group in `txn`, each in its own savepoint, and returns each one's
/// outcome (not yet committed).
async fn apply_group(
    txn: &DatabaseTransaction,
    jobs: &[Job],
    stats: &Stats,
) -> Result<Vec<Result<WriteResult, StoreError>>, Broken> {
    let mut next_id = next_record_id(txn).await;
    // The audit chain head, read inside this transaction when a batch first needs it and carried
    // from batch to batch (under the write lock no other process can move it meanwhile).
    let mut head: Option<Head> = None;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(apply_batch(txn, &job.batch, &mut next_id, &mut head, stats).await?);
    }
    Ok(results)
}

/// The id the next created record gets, or `None` if it cannot be read (then every batch of the
/// group is written statement by statement, and meets the same error a lone write would).
async fn next_record_id(txn: &DatabaseTransaction) -> Option<i64> {
    let row = match txn.query_one_raw(Statement::from_string(DbBackend::Sqlite, LAST_RECORD_ID_SQL)).await {
        Ok(row) => row?,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the last record id");
            return None;
        }
    };
    row.try_get_by_index::<i64>(0).ok()?.checked_add(1)
}

/// Applies one batch inside its own savepoint. `Ok(Err(_))`: the batch was refused and rolled
/// back, the transaction goes on; `Err(Broken)`: the transaction cannot go on.
async fn apply_batch(
    txn: &DatabaseTransaction,
    batch: &WriteBatch,
    next_id: &mut Option<i64>,
    head: &mut Option<Head>,
    stats: &Stats,
) -> Result<Result<WriteResult, StoreError>, Broken> {
    // A read only: nothing to roll back when it refuses the batch.
    if let Err(e) = check_existing_refs(txn, batch).await {
        return Ok(Err(e));
    }
    if !batch.audit.is_empty() && head.is_none() {
        // Unreadable: the batch is replayed, and meets the same error a lone write would.
        *head = audit::read_head(txn, true).await.ok();
    }
    if let Some(first) = *next_id
        && let Some(OneTrip { statement, created, next_id: after, head: head_after }) =
            batch_sql::build(batch, first, head.as_ref())
    {
        match txn.query_all_raw(statement).await {
            Ok(rows) => {
                stats.one_trip.fetch_add(1, Ordering::Relaxed);
                *next_id = Some(after);
                *head = head_after;
                return Ok(Ok(WriteResult {
                    created: created.into_iter().map(RecordId).collect(),
                    alerts_raised: rows.len(),
                }));
            }
            Err(e) => {
                tracing::debug!(error = %e, "batch refused in one round trip; replaying it statement by statement");
                execute(txn, batch_sql::ROLLBACK).await?;
            }
        }
    }
    stats.replayed.fetch_add(1, Ordering::Relaxed);
    execute(txn, batch_sql::SAVEPOINT).await?;
    match write_in(txn, batch).await {
        Ok(result) => {
            execute(txn, batch_sql::RELEASE).await?;
            if let (Some(next), Some(last)) = (next_id.as_mut(), result.created.last()) {
                *next = (*next).max(last.0.saturating_add(1));
            }
            if !batch.audit.is_empty() {
                // Moved by the replay: read again when next needed.
                *head = None;
            }
            Ok(Ok(result))
        }
        Err(e) => {
            execute(txn, batch_sql::ROLLBACK).await?;
            Ok(Err(e))
        }
    }
}

async fn execute(txn: &DatabaseTransaction, sql: &str) -> Result<(), Broken> {
    txn.execute_unprepared(sql).await.map(drop).map_err(|e| Broken(db_err(OP, e)))
}

#[cfg(test)]
mod tests;
