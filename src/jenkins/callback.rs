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
    /// `BUILD_NUMBER`, when sent: a number, or the digits of `env.BUILD_NUMBER` (a string
    /// in a Jenkinsfile).
    #[serde(default, deserialize_with = "build_number")]
    pub build_number: Option<i64>,
}

/// A build number as Jenkins' steps send it: `12`, `12.0` (JSON Schema's integer) or `"12"`.
fn build_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let number = match &value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Some(serde_json::Value::String(text)) => {
            let digits = !text.is_empty() && text.len() <= 18;
            digits
                .then(|| text.parse::<i64>().ok())
                .flatten()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        }
        Some(_) => None,
    };
    number
        .map(Some)
        .ok_or_else(|| D::Error::custom("build_number: must be a whole number"))
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
    fn the_build_number_may_be_a_number_or_its_digits() {
        let parse = |number: &str| {
            let body =
                format!(r#"{{"build_id": "b", "result": "SUCCESS", "build_number": {number}}}"#);
            serde_json::from_str::<Callback>(&body).map(|c| c.build_number)
        };
        assert_eq!(parse("12").unwrap(), Some(12));
        assert_eq!(parse("12.0").unwrap(), Some(12));
        assert_eq!(parse("\"12\"").unwrap(), Some(12));
        assert_eq!(parse("null").unwrap(), None);
        for bad in ["12.5", "\"12a\"", "\"-1\"", "\"\"", "true", "[]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

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
