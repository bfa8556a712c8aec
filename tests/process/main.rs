//! Process-level tests: the real release binary, killed with SIGKILL and restarted, against
//! the strict fakes of GitLab and Jenkins running in this test process.
//!
//! - `crash_sqlite`: crash safety and outages on SQLite (issue 4).
//! - `replicas_pg`: three replicas on one PostgreSQL database, one killed mid-run (issue 6);
//!   runs when `CI_BRIDGE_TEST_POSTGRES` names a server, and says it is skipped otherwise.
//!
//! The binary is `$CI_BRIDGE_BIN`, or `target/release/ci-bridge` built on first use. Each
//! replica's log (its stderr) is kept in `target/tmp/process/run-<pid>/<scenario>/`, and
//! every scenario appends its summary line to `summary.txt` in the run's folder.

mod binary;
mod crash_sqlite;
mod load;
mod outage;
mod proxy;
mod replica;
mod replicas_pg;
mod single;
mod verify;
mod world;
