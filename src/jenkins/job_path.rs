//! Job full names to URLs: `a/b/c` is `/job/a/job/b/job/c/`, each segment percent-encoded
//! once more than the name Jenkins stores (a multibranch job for branch `feature/x` is
//! stored as `feature%2Fx` and lives at `/job/feature%252Fx/`).

use url::Url;

/// `base` + `/job/<seg>` for each segment of `full_name` + `extra` segments, keeping any
/// path prefix of `base` (`https://ci.example.com/jenkins`).
pub fn job_url(base: &Url, full_name: &str, extra: &[&str]) -> Url {
    let mut url = base.clone();
    {
        let mut segments = url
            .path_segments_mut()
            .expect("http URLs have path segments");
        segments.pop_if_empty();
        for segment in full_name.split('/').filter(|s| !s.is_empty()) {
            segments.push("job").push(segment);
        }
        segments.extend(extra);
    }
    url
}

/// `base` + the given segments (for `/queue/item/N/api/json`, `/crumbIssuer/api/json`).
pub fn root_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("http URLs have path segments")
        .pop_if_empty()
        .extend(segments);
    url
}

/// A branch name as a multibranch project names its job for it (branch-api's
/// `NameEncoder`): `feature/x` becomes `feature%2Fx`. The URL then encodes it once more.
pub fn encode_branch(branch: &str) -> String {
    match branch {
        "" => return "%00".into(),
        "." => return "%2E".into(),
        ".." => return "%2E.".into(),
        _ => {}
    }
    let mut out = String::with_capacity(branch.len());
    for c in branch.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            '[' => out.push_str("%5B"),
            ']' => out.push_str("%5D"),
            '\\' => out.push_str("%5C"),
            c => out.push(c),
        }
    }
    out
}

/// The job for one build: `{branch}` and `{mr}` in a configured name filled in.
pub fn expand_job(template: &str, branch: &str, mr_iid: Option<i64>) -> String {
    let mut job = template.replace("{branch}", &encode_branch(branch));
    if let Some(iid) = mr_iid {
        job = job.replace("{mr}", &format!("MR-{iid}"));
    }
    job
}

/// The queue item id in a `Location` Jenkins returned (`https://public-host/jenkins/queue/item/17/`).
/// Only the id is taken: the URL ci-bridge then calls is built on its own configured base,
/// never on the host Jenkins reported.
pub fn queue_id_from_location(location: &str) -> Option<i64> {
    let path = match Url::parse(location) {
        Ok(url) => url.path().to_owned(),
        Err(_) => location.split(['?', '#']).next().unwrap_or("").to_owned(),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments
        .windows(3)
        .rev()
        .find(|w| w[0] == "queue" && w[1] == "item")
        .and_then(|w| w[2].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_become_nested_job_segments_under_the_prefix() {
        let base = Url::parse("https://ci.example.com/jenkins").unwrap();
        let url = job_url(&base, "analytics/collector-ci", &["buildWithParameters"]);
        assert_eq!(
            url.as_str(),
            "https://ci.example.com/jenkins/job/analytics/job/collector-ci/buildWithParameters"
        );
    }

    #[test]
    fn stored_multibranch_names_are_encoded_once_more_in_the_url() {
        let base = Url::parse("http://127.0.0.1:8080/").unwrap();
        let url = job_url(&base, "group/app/feature%2Fx", &["api", "json"]);
        assert_eq!(url.path(), "/job/group/job/app/job/feature%252Fx/api/json");
        let spaced = job_url(&base, "My Folder/job #1", &[]);
        assert_eq!(spaced.path(), "/job/My%20Folder/job/job%20%231");
    }

    #[test]
    fn branch_jobs_are_named_as_multibranch_projects_name_them() {
        assert_eq!(encode_branch("feature/x"), "feature%2Fx");
        assert_eq!(encode_branch("100%"), "100%25");
        assert_eq!(encode_branch(".."), "%2E.");
        assert_eq!(
            expand_job("group/app/{branch}", "feature/x", None),
            "group/app/feature%2Fx"
        );
        assert_eq!(
            expand_job("group/app/{mr}", "feature/x", Some(7)),
            "group/app/MR-7"
        );
        let base = Url::parse("http://127.0.0.1/").unwrap();
        let url = job_url(
            &base,
            &expand_job("group/app/{branch}", "feature/x", None),
            &[],
        );
        assert_eq!(url.path(), "/job/group/job/app/job/feature%252Fx");
    }

    #[test]
    fn queue_ids_are_read_from_absolute_and_relative_locations() {
        assert_eq!(
            queue_id_from_location("http://other-host:8082/jenkins/queue/item/143/"),
            Some(143)
        );
        assert_eq!(queue_id_from_location("/queue/item/7"), Some(7));
        assert_eq!(queue_id_from_location("http://host/job/x/"), None);
    }
}
