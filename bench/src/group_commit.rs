//! The durability limit: received events go to SQLite (WAL, `synchronous = FULL`, so every
//! commit is fsynced) through one writer thread that commits whatever queued up during the
//! previous commit as one transaction, and answers each event once its batch is on disk.

use std::path::Path;

use bytes::Bytes;
use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

/// Most events in one transaction; the same bound ci-bridge uses, so both pay for the
/// same number of fsyncs at a given load.
pub const MAX_BATCH: usize = 256;

/// Events waiting for the writer before senders wait too (backpressure), as in ci-bridge.
const CHANNEL_CAPACITY: usize = 4 * MAX_BATCH;

/// One verified delivery to store.
pub struct Event {
    pub dedup_key: String,
    pub project: String,
    pub received_at: i64,
    pub body: Bytes,
}

type Reply = oneshot::Sender<Result<bool, String>>;

/// The handle request handlers store events through.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<(Event, Reply)>,
}

impl Writer {
    /// Opens (creating) the database at `path` and starts the writer thread.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                id          INTEGER PRIMARY KEY,
                dedup_key   TEXT NOT NULL UNIQUE,
                project     TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                body        BLOB NOT NULL
            )",
        )?;
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, receiver))?;
        Ok(Self { sender })
    }

    /// Stores one event; true when it is new, false for a duplicate. Returns after commit.
    pub async fn record(&self, event: Event) -> Result<bool, String> {
        let (reply, outcome) = oneshot::channel();
        let stopped = |_| "writer stopped".to_owned();
        self.sender.send((event, reply)).await.map_err(stopped)?;
        outcome.await.map_err(|_| "writer stopped".to_owned())?
    }
}

fn run(mut conn: Connection, mut receiver: mpsc::Receiver<(Event, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
        let (events, replies): (Vec<Event>, Vec<Reply>) = batch.drain(..).unzip();
        match write(&mut conn, &events) {
            Ok(outcomes) => {
                for (reply, stored) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(stored));
                }
            }
            Err(error) => {
                eprintln!("write failed: {error}");
                for reply in replies {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

fn write(conn: &mut Connection, events: &[Event]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(events.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (dedup_key, project, received_at, body) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (dedup_key) DO NOTHING",
        )?;
        for event in events {
            let changed = insert.execute(params![
                event.dedup_key,
                event.project,
                event.received_at,
                &event.body[..]
            ])?;
            outcomes.push(changed == 1);
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
