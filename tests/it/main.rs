//! ci-bridge's integration tests: the real application against strict fakes of GitLab and
//! Jenkins (one test binary, so the crate links once).

mod build_flow;
mod conformance;
mod jenkins_variants;
mod payloads;
mod support;
mod webhook_edge;
