//! The body a Jenkins job's post-build step sends to `POST /hooks/jenkins`.

use serde::Deserialize;

/// Results Jenkins itself reports (`currentBuild.currentResult`).
pub const RESULTS: [&str; 5] = ["SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// The `CI_BRIDGE_BUILD_ID` parameter the build was started with.
    pub build_id: String,
    pub result: String,
    /// `BUILD_URL`; only its build number is read (nothing is ever fetched from it).
    #[serde(default)]
    pub build_url: Option<String>,
    /// `BUILD_NUMBER`, when sent.
    #[serde(default)]
    pub build_number: Option<i64>,
}

impl Callback {
    /// The build number, from `build_number` or the last numeric segment of `build_url`.
    pub fn number(&self) -> Option<i64> {
        self.build_number.or_else(|| {
            let url = self.build_url.as_deref()?;
            let path = url::Url::parse(url)
                .map(|u| u.path().to_owned())
                .unwrap_or_else(|_| url.to_owned());
            path.split('/').rev().find(|s| !s.is_empty())?.parse().ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_number_comes_from_the_build_url() {
        let callback = Callback {
            build_id: "x".into(),
            result: "SUCCESS".into(),
            build_url: Some("https://ci.example.com/jenkins/job/a/job/b/12/".into()),
            build_number: None,
        };
        assert_eq!(callback.number(), Some(12));
    }
}
