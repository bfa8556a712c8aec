//! Stateful, strict fakes of GitLab and Jenkins for ci-bridge's integration tests, its
//! benchmark and the `ci-bridge demo` command.
//!
//! Each fake runs a real HTTP server on `127.0.0.1:0` and answers the way the real system
//! does, including its error codes and texts, so a client that would fail in production
//! fails against the fake too. Tests drive the fakes over HTTP and read their state back
//! through accessors such as [`jenkins::FakeJenkins::triggers`] and
//! [`gitlab::FakeGitLab::statuses`].

#![warn(missing_docs)]

mod clock;
mod server;

pub mod gitlab;
pub mod jenkins;

pub use gitlab::{FakeGitLab, GitLabOptions};
pub use jenkins::{FakeJenkins, JenkinsOptions};
