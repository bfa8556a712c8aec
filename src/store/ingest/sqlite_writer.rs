//! The SQLite event writer: one OS thread that owns one connection and does nothing else.
//!
//! Handlers queue `(event, reply)` pairs; the thread sleeps until something is queued,
//! takes everything that is (up to [`MAX_BATCH`]), writes it in one `BEGIN IMMEDIATE`
//! transaction with cached prepared statements, commits (WAL, `synchronous = FULL`: the
//! commit is fsynced), and only then answers each handler. One wake-up per batch and no
//! hop through an async pool's connection thread per statement: under load, one fsync and
//! a handful of context switches cover a whole batch.
//!
//! The statements are the ones the sqlx path in the parent module runs, with the same
//! semantics: `ON CONFLICT (dedup_key) DO NOTHING`, a duplicate answered with the id its
//! key was first stored under, and a coalescing job (`unique_key`) bumped rather than
//! inserted twice.

use std::{collections::HashSet, path::Path};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::mpsc;

use super::{answer, batch_done, Ingested, NewEvent, Reply, MAX_BATCH};
use crate::store::{now_ms, NewJob, Store, SQLITE_BUSY_TIMEOUT_MS};

const INSERT_EVENT: &str =
    "INSERT INTO events (id, source, kind, dedup_key, project, received_at, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (dedup_key) DO NOTHING";

const FIRST_ID_OF_KEY: &str = "SELECT id FROM events WHERE dedup_key = ?1";

const INSERT_JOB: &str =
    "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?1, ?2, ?3, ?4)";

/// The same upsert as `queue::insert_jobs`: a job whose key is queued already is bumped.
const UPSERT_UNIQUE_JOB: &str = "INSERT INTO jobs (kind, unique_key, payload, run_at, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (unique_key) DO UPDATE SET version = jobs.version + 1, \
       run_at = CASE WHEN excluded.run_at < jobs.run_at THEN excluded.run_at ELSE jobs.run_at END, \
       dead = 0, attempts = CASE WHEN jobs.dead = 1 THEN 0 ELSE jobs.attempts END";

/// Opens the database file at `path` (migrated already by [`Store::connect`]) and starts
/// the writer thread on it. The thread ends once every sender is dropped.
pub(super) fn spawn(
    path: &Path,
    store: Store,
    receiver: mpsc::Receiver<(NewEvent, Reply)>,
) -> anyhow::Result<()> {
    let conn = open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {} for the event writer: {e}", path.display()))?;
    std::thread::Builder::new()
        .name("event-writer".into())
        .spawn(move || run(conn, store, receiver))?;
    Ok(())
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // As on the pool's connections: every commit is fsynced (power-loss safe); group
    // commit is what keeps that fast.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_handler(Some(wait_for_write_lock))?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}

/// Pause between two attempts at SQLite's write lock while a worker's transaction holds it,
/// in µs. SQLite's own busy handler sleeps 1, 2, 5, 10 ms and more between attempts, which
/// would hold every webhook of the batch well past the moment the lock is free; worker
/// transactions last about a millisecond, so looking every 100 µs costs little.
const LOCK_RETRY_PAUSE_US: u64 = 100;

/// SQLite's busy handler for the writer: `true` to try again. Gives up after the store's
/// busy timeout, as the pool's connections do.
fn wait_for_write_lock(attempts: i32) -> bool {
    let waited_us = u64::try_from(attempts).unwrap_or(0) * LOCK_RETRY_PAUSE_US;
    if waited_us >= u64::from(SQLITE_BUSY_TIMEOUT_MS) * 1_000 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(LOCK_RETRY_PAUSE_US));
    true
}

fn run(mut conn: Connection, store: Store, mut receiver: mpsc::Receiver<(NewEvent, Reply)>) {
    let pending = store.ingest_counter();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        let written = write_batch(&mut conn, &events);
        batch_done(&pending, events.len());
        answer(&store, replies, written);
    }
}

/// Writes one batch in one transaction; nothing of it is kept unless all of it commits.
fn write_batch(conn: &mut Connection, events: &[NewEvent]) -> rusqlite::Result<Vec<Ingested>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(INSERT_EVENT)?;
        let mut first_id = tx.prepare_cached(FIRST_ID_OF_KEY)?;
        for event in events {
            let inserted = insert.execute(params![
                event.id,
                event.source,
                event.kind,
                event.dedup_key,
                event.project,
                event.received_at,
                &event.body[..],
            ])?;
            outcomes.push(if inserted == 1 {
                Ingested::Stored(event.id.clone())
            } else {
                // Stored before, possibly earlier in this very batch.
                let first: Option<String> = first_id
                    .query_row([&event.dedup_key], |row| row.get(0))
                    .optional()?;
                Ingested::Duplicate(first.unwrap_or_else(|| event.id.clone()))
            });
        }
    }
    let jobs = events
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Ingested::Stored(_)))
        .filter_map(|(event, _)| event.job.as_ref());
    insert_jobs(&tx, jobs)?;
    tx.commit()?;
    Ok(outcomes)
}

/// The jobs of the stored events, as `queue::insert_jobs` writes them: plain jobs first,
/// then the coalescing ones, of which the first with a given `unique_key` counts.
fn insert_jobs<'a>(
    tx: &rusqlite::Transaction<'_>,
    jobs: impl Iterator<Item = &'a NewJob>,
) -> rusqlite::Result<()> {
    let now = now_ms();
    let (plain, unique): (Vec<&NewJob>, Vec<&NewJob>) =
        jobs.partition(|job| job.unique_key.is_none());
    if !plain.is_empty() {
        let mut insert = tx.prepare_cached(INSERT_JOB)?;
        for job in plain {
            insert.execute(params![job.kind.as_str(), job.payload, job.run_at, now])?;
        }
    }
    let mut seen = HashSet::new();
    for job in unique {
        let key = job.unique_key.as_deref();
        if !seen.insert(key) {
            continue;
        }
        tx.prepare_cached(UPSERT_UNIQUE_JOB)?.execute(params![
            job.kind.as_str(),
            key,
            job.payload,
            job.run_at,
            now
        ])?;
    }
    Ok(())
}
