//! ci-bridge connects GitLab and Jenkins: it verifies and records GitLab webhooks, triggers
//! Jenkins builds from a durable queue, and posts commit statuses back to GitLab.
//!
//! - [`http`]: the HTTP edge (webhooks, callbacks, health, admin API).
//! - [`gitlab`], [`jenkins`]: payloads, verification and clients of the two systems.
//! - [`store`]: events, the work queue, builds and statuses, on SQLite or PostgreSQL.
//! - [`worker`]: the jobs that turn events into builds and statuses.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod demo;
pub mod gitlab;
pub mod http;
pub mod jenkins;
pub mod metrics;
pub mod outbound;
pub mod sast;
pub mod sonarqube;
pub mod store;
pub mod worker;

pub use app::Application;
