//! ci-bridge's integration tests: the real application against strict fakes of GitLab and
//! Jenkins (one test binary, so the crate links once).

mod build_flow;
mod comment_commands;
mod conformance;
mod conformance_quality;
mod evidence;
mod four_eyes;
mod jenkins_variants;
mod payloads;
mod robustness;
mod sast;
mod sonarqube;
mod support;
mod trigger_rules;
mod webhook_edge;
