//! GitLab: webhook payloads and their verification, and the REST client that posts commit
//! statuses back.

pub mod client;
pub mod events;
pub mod merge_requests;
pub mod notes;
pub mod verify;

pub use client::{GitLabClient, StatusPost};
