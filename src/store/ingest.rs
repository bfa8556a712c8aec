//! Group commit for received events: requests that arrive together are written in one
//! transaction, and each is answered once that transaction is on disk.
//!
//! A webhook handler sends its event to the single writer and awaits the outcome. The
//! writer takes whatever has queued up while the previous commit was running, up to
//! [`MAX_BATCH`], so under load one fsync covers many requests and with a single caller
//! there is no added wait. On SQLite the writer is an OS thread with a connection of its
//! own ([`sqlite_writer`]); on PostgreSQL it is a task writing through the pool.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::Bytes;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::{queue::NewJob, Backend, Store};

mod sqlite_writer;

/// Most events in one transaction. Bounds the statement size (7 parameters an event, far
/// below SQLite's and PostgreSQL's limits) and the latency a batch adds to its last member.
pub const MAX_BATCH: usize = 256;

/// Requests waiting for the writer before new ones wait for a place (backpressure).
const CHANNEL_CAPACITY: usize = 4 * MAX_BATCH;

/// An event to record, with the job that will process it.
pub struct NewEvent {
    pub id: String,
    pub source: &'static str,
    pub kind: String,
    pub dedup_key: String,
    pub project: Option<String>,
    pub received_at: i64,
    pub body: Bytes,
    pub job: Option<NewJob>,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Newly stored under this id.
    Stored(String),
    /// The same delivery was stored before, under this id.
    Duplicate(String),
}

type Reply = oneshot::Sender<Result<Ingested, String>>;

/// The handle webhook handlers record events through.
#[derive(Clone)]
pub struct Ingest {
    sender: mpsc::Sender<(NewEvent, Reply)>,
    pending: Arc<AtomicUsize>,
}

impl Ingest {
    /// Starts the writer on `store`: a thread of its own for an SQLite file, a task on the
    /// pool otherwise (PostgreSQL, or an in-memory SQLite database only the pool can see).
    pub fn start(store: Store) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let pending = store.ingest_counter();
        match sqlite_file(&store) {
            Some(path) => sqlite_writer::spawn(&path, store, receiver)?,
            None => {
                tokio::spawn(writer(store, receiver));
            }
        }
        Ok(Self { sender, pending })
    }

    /// Records one event; returns once it is committed (or was already there).
    pub async fn record(&self, event: NewEvent) -> Result<Ingested, String> {
        let stopped = || "event writer has stopped".to_owned();
        let mut waiting = Waiting::new(&self.pending);
        let (reply, outcome) = oneshot::channel();
        self.sender
            .send((event, reply))
            .await
            .map_err(|_| stopped())?;
        waiting.handed_to_writer = true;
        outcome.await.map_err(|_| stopped())?
    }
}

/// Counts an event in [`Store::ingest_pending`] (workers give way while it is not zero)
/// from the moment it is recorded. Once the event is queued the writer owns the count and
/// takes it back right after the commit, before it wakes the workers: were the handler to
/// do it once it got the answer, a worker woken by that commit could still see the event
/// pending and wait for nothing.
struct Waiting<'a> {
    pending: &'a AtomicUsize,
    handed_to_writer: bool,
}

impl<'a> Waiting<'a> {
    fn new(pending: &'a AtomicUsize) -> Self {
        pending.fetch_add(1, Ordering::Relaxed);
        Self {
            pending,
            handed_to_writer: false,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.handed_to_writer {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What the writer does with the count of a batch it has written (or failed to write).
pub(super) fn batch_done(pending: &AtomicUsize, events: usize) {
    pending.fetch_sub(events, Ordering::Relaxed);
}

/// The database file behind an SQLite store; `None` for PostgreSQL or an in-memory database.
fn sqlite_file(store: &Store) -> Option<std::path::PathBuf> {
    if store.backend() != Backend::Sqlite {
        return None;
    }
    let url = super::sqlite_url(store.url.expose());
    if url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().ok()?;
    Some(options.get_filename().to_path_buf())
}

async fn writer(store: Store, mut receiver: mpsc::Receiver<(NewEvent, Reply)>) {
    let pending = store.ingest_counter();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.drain(..).unzip();
        let written = write_batch(&store, &events).await;
        batch_done(&pending, events.len());
        answer(&store, replies, written);
    }
}

async fn write_batch(store: &Store, events: &[NewEvent]) -> sqlx::Result<Vec<Ingested>> {
    let mut tx = store.begin().await?;

    let mut sql = String::from(
        "INSERT INTO events (id, source, kind, dedup_key, project, received_at, body) VALUES ",
    );
    push_placeholders(&mut sql, events.len(), 7);
    sql.push_str(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id");
    let mut insert = sqlx::query(&sql);
    for event in events {
        insert = insert
            .bind(event.id.as_str())
            .bind(event.source)
            .bind(event.kind.as_str())
            .bind(event.dedup_key.as_str())
            .bind(event.project.as_deref())
            .bind(event.received_at)
            .bind(event.body.to_vec());
    }
    let mut stored = std::collections::HashSet::new();
    for row in insert.fetch_all(&mut *tx).await? {
        stored.insert(row.try_get::<String, _>("id")?);
    }

    let duplicates: Vec<&NewEvent> = events.iter().filter(|e| !stored.contains(&e.id)).collect();
    let mut first_ids = HashMap::new();
    if !duplicates.is_empty() {
        let mut sql = String::from("SELECT id, dedup_key FROM events WHERE dedup_key IN (");
        for index in 0..duplicates.len() {
            if index > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", index + 1));
        }
        sql.push(')');
        let mut lookup = sqlx::query(&sql);
        for event in &duplicates {
            lookup = lookup.bind(event.dedup_key.as_str());
        }
        for row in lookup.fetch_all(&mut *tx).await? {
            first_ids.insert(
                row.try_get::<String, _>("dedup_key")?,
                row.try_get::<String, _>("id")?,
            );
        }
    }

    let jobs: Vec<&NewJob> = events
        .iter()
        .filter(|e| stored.contains(&e.id))
        .filter_map(|e| e.job.as_ref())
        .collect();
    super::queue::insert_jobs(&mut tx, &jobs).await?;
    tx.commit().await?;

    Ok(events
        .iter()
        .map(|event| {
            if stored.contains(&event.id) {
                Ingested::Stored(event.id.clone())
            } else {
                let first = first_ids
                    .get(&event.dedup_key)
                    .cloned()
                    .unwrap_or_else(|| event.id.clone());
                Ingested::Duplicate(first)
            }
        })
        .collect())
}

/// Answers each request of a written batch (in order), and wakes the workers when the
/// batch stored anything new. A failed write fails every request of the batch.
pub(super) fn answer<E: std::fmt::Display>(
    store: &Store,
    replies: Vec<Reply>,
    written: Result<Vec<Ingested>, E>,
) {
    match written {
        Ok(outcomes) => {
            if outcomes.iter().any(|o| matches!(o, Ingested::Stored(_))) {
                store.wake_workers();
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            tracing::error!(%error, events = replies.len(), "could not record events");
            for reply in replies {
                let _ = reply.send(Err("database write failed".to_owned()));
            }
        }
    }
}

/// Appends `($1, $2, ...), (...)` for `rows` rows of `columns` parameters.
pub(super) fn push_placeholders(sql: &mut String, rows: usize, columns: usize) {
    use std::fmt::Write as _;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", row * columns + column + 1);
        }
        sql.push(')');
    }
}
