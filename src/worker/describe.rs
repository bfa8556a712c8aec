//! The words on a commit status: a few words that say what happened, and the link.

use url::Url;

use crate::{config::Config, jenkins::job_path::job_url, outbound::CallError};

/// The base people open in a browser.
pub fn public_base(config: &Config) -> &Url {
    config
        .jenkins
        .public_url
        .as_ref()
        .unwrap_or(&config.jenkins.url)
}

/// The job page (while queued, the build number is not known yet, and guessing it would
/// link the wrong build).
pub fn job_link(config: &Config, job: &str) -> String {
    let mut url = job_url(public_base(config), job, &[]);
    url.path_segments_mut().expect("http URL").push("");
    url.to_string()
}

pub fn build_link(config: &Config, job: &str, number: i64) -> String {
    job_url(public_base(config), job, &[&number.to_string(), ""]).to_string()
}

/// `1m 5s`, `42s`, `1h 2m`.
pub fn duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

/// The GitLab state and description for a Jenkins result.
pub fn result(
    result: &str,
    number: Option<i64>,
    duration_ms: Option<i64>,
) -> (&'static str, String) {
    let build = number.map_or_else(|| "build".to_owned(), |n| format!("build #{n}"));
    let took = duration_ms
        .filter(|ms| *ms > 0)
        .map(|ms| format!(" in {}", duration(ms)))
        .unwrap_or_default();
    match result {
        "SUCCESS" => ("success", format!("{build} passed{took}")),
        "UNSTABLE" => ("failed", format!("{build} unstable{took}")),
        "FAILURE" => ("failed", format!("{build} failed{took}")),
        "ABORTED" => ("canceled", format!("{build} aborted{took}")),
        "NOT_BUILT" => ("canceled", format!("{build} not built")),
        other => ("failed", format!("{build} ended with result {other}")),
    }
}

/// Why Jenkins refused a trigger, in words for the status.
pub fn refused(job: &str, error: &CallError) -> String {
    match error.status() {
        Some(404) => format!("Jenkins job {job} not found (404)"),
        Some(409) => format!("Jenkins job {job} is disabled (409)"),
        Some(400) => format!("Jenkins job {job} is not parameterized (400)"),
        Some(401) => "Jenkins rejected ci-bridge's credentials (401)".to_owned(),
        Some(403) => format!("Jenkins denied ci-bridge access to {job} (403)"),
        Some(code) => format!("Jenkins refused the build ({code})"),
        None => format!("Jenkins refused the build: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jenkins_result_maps_to_a_gitlab_state() {
        assert_eq!(
            result("SUCCESS", Some(12), Some(190_000)),
            ("success", "build #12 passed in 3m 10s".into())
        );
        assert_eq!(result("UNSTABLE", Some(1), None).0, "failed");
        assert_eq!(result("FAILURE", Some(1), None).0, "failed");
        assert_eq!(result("ABORTED", Some(1), None).0, "canceled");
        assert_eq!(
            result("NOT_BUILT", Some(3), None),
            ("canceled", "build #3 not built".into())
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(4_000), "4s");
        assert_eq!(duration(65_000), "1m 5s");
        assert_eq!(duration(3_720_000), "1h 2m");
    }
}
