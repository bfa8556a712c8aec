//! ci-bridge's benchmark: the baselines ci-bridge is measured against (`bench-bare`,
//! `bench-durable`), the trigger-latency tool, and the report that turns raw runs into the
//! table the README quotes. `run.sh` drives them all; see `bench/README.md`.

pub mod client;
pub mod group_commit;
pub mod payload;
pub mod server;
pub mod verify;
