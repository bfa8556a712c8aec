//! Schema migrations, embedded in the binary and applied in order at start (and by
//! `ci-bridge migrate`). Several replicas starting at once on PostgreSQL take turns under
//! an advisory lock.

use sqlx::{Executor, Row};

use super::{now_ms, Backend, Store};

/// `(version, SQL)` per backend, oldest first. A released migration is never edited; a
/// change is a new entry.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite.sql")),
    (2, include_str!("migrations/sqlite_2_quality.sql")),
    (3, include_str!("migrations/sqlite_3_cursors.sql")),
    (4, include_str!("migrations/sqlite_4_check_marks.sql")),
    (6, include_str!("migrations/sqlite_6_quality_order.sql")),
    (7, include_str!("migrations/sqlite_7_audit_cursor.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres.sql")),
    (2, include_str!("migrations/postgres_2_quality.sql")),
    (3, include_str!("migrations/postgres_3_cursors.sql")),
    (4, include_str!("migrations/postgres_4_check_marks.sql")),
    (6, include_str!("migrations/postgres_6_quality_order.sql")),
    (7, include_str!("migrations/postgres_7_audit_cursor.sql")),
];

/// Arbitrary constant naming ci-bridge's migration lock among PostgreSQL advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x4349_4252_4944_4745;

pub async fn run(store: &Store) -> anyhow::Result<()> {
    let mut conn = store.pool().acquire().await?;
    if store.backend() == Backend::Postgres {
        conn.execute(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})").as_str())
            .await?;
    }
    let result = apply(store.backend(), &mut conn).await;
    if store.backend() == Backend::Postgres {
        conn.execute(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})").as_str())
            .await?;
    }
    result
}

async fn apply(backend: Backend, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
    // Every version not yet recorded, not only those past the highest: versions may land
    // out of order (a 6 released before a 5), and each must still run once.
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get("version"))
        .collect::<Result<_, _>>()?;
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    for (version, sql) in migrations.iter().filter(|(v, _)| !applied.contains(v)) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute(*sql).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
