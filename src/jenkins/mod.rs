//! Jenkins: the remote-access client (trigger, queue items, builds, crumbs), job URLs, the
//! build parameters, and the callback Jenkins sends back.

pub mod callback;
pub mod client;
pub mod job_path;
pub mod params;
mod search;

pub use client::{JenkinsClient, QueueState, RunInfo, Triggered};
