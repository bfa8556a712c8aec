//! Real SonarQube webhooks and SAST reports through the real service.
//!
//! `CI_BRIDGE_FIXTURES` names the folder of captures; its `sonarqube/` and `sast/` folders
//! must hold exactly the captures listed here, each with its expected effect, and the HMAC
//! test vectors of `sonarqube/SOURCES.md` must be what SonarQube's signature gives. Unset,
//! the test says so and checks nothing.

use std::path::{Path, PathBuf};

use crate::{
    four_eyes::{quality_app, status_becomes},
    payloads::{self, PROJECT_ID, SHA_A, SHA_B},
    sast::{first_build_id, post_sast},
    support::{TestApp, CALLBACK_TOKEN, PROJECT},
};

/// The secret SOURCES.md computed its vectors with.
const VECTOR_SECRET: &str = "bridge-test-secret-0123456789";

/// SonarQube captures: (file, expected state, text the description contains).
const SONARQUBE: &[(&str, &str, &str)] = &[
    (
        "sonarqube-webhook-pull-request.json",
        "success",
        "quality gate passed",
    ),
    (
        "zulip-success-branch.json",
        "success",
        "no revision in the analysis",
    ),
    ("zulip-error-branch.json", "failed", "coverage 0.0 (< 80)"),
];

/// SAST captures: (file, expected state, description).
const SAST: &[(&str, &str, &str)] = &[
    (
        "gitlab-spec-fixture-semgrep-gosec-v14.0.4.json",
        "success",
        "passed — 1 Medium",
    ),
    (
        "gl-sast-report-semgrep-v15.1.4.json",
        "failed",
        "failed: findings at or above High — 2 High, 4 Medium",
    ),
];

fn fixtures() -> Option<PathBuf> {
    std::env::var_os("CI_BRIDGE_FIXTURES").map(PathBuf::from)
}

/// The captures in `dir` (every `.json`), which must be exactly `known`.
fn check_listing(dir: &Path, known: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    let mut expected: Vec<String> = known.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected, "captures in {}", dir.display());
}

/// `(secret, file, signature)` rows of the HMAC table in SOURCES.md.
fn vectors(dir: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md");
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            let hex = cells.get(3)?;
            (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (cells[1].to_owned(), cells[2].to_owned(), (*hex).to_owned()))
        })
        .collect()
}

async fn send_sonar(app: &TestApp, body: &[u8], signature: &str) -> reqwest::StatusCode {
    app.http
        .post(format!("{}/hooks/sonarqube", app.url))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("X-Sonar-Webhook-HMAC-SHA256", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("request reaches the app")
        .status()
}

#[tokio::test]
async fn every_real_sonarqube_capture_signed_like_sonarqube_sets_its_status() {
    let Some(root) = fixtures() else {
        eprintln!("CI_BRIDGE_FIXTURES is not set; the SonarQube captures are not checked");
        return;
    };
    let dir = root.join("sonarqube");
    let known: Vec<&str> = SONARQUBE.iter().map(|(f, _, _)| *f).collect();
    check_listing(&dir, &known);
    let vectors = vectors(&dir);
    assert!(vectors.len() >= 2, "SOURCES.md lists the HMAC vectors");
    for (secret, file, signature) in &vectors {
        let body = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(
            &ci_bridge::sonarqube::sign(secret, &body),
            signature,
            "{file}"
        );
    }

    for (file, state, text) in SONARQUBE {
        let body = std::fs::read(dir.join(file)).unwrap();
        let analysis: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let key = analysis["project"]["key"].as_str().unwrap().to_owned();
        let project = format!("sonarqube_project = [\"{key}\"]");
        let app = quality_app_with_secret(&project).await;
        // Where the status goes: the PR's merge request (only GitLab knows it), or the
        // latest build of the branch when the analysis carries no revision.
        let sha = match analysis["revision"].as_str() {
            Some(revision) => {
                let iid = 1337;
                app.gitlab.add_merge_request(
                    PROJECT_ID,
                    iid,
                    crate::four_eyes::ada(),
                    "feature/bot",
                    "main",
                    revision,
                );
                revision.to_owned()
            }
            None => {
                let branch = analysis["branch"]["name"].as_str().unwrap();
                let push = payloads::push(PROJECT, branch, SHA_B, SHA_A);
                app.post_gitlab("Push Hook", &push, &[]).await;
                status_becomes(&app, SHA_A, "jenkins", "success").await;
                SHA_A.to_owned()
            }
        };
        let signature = vectors
            .iter()
            .find(|(_, f, _)| f == file)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_else(|| ci_bridge::sonarqube::sign(VECTOR_SECRET, &body));
        assert_eq!(send_sonar(&app, &body, &signature).await, 202, "{file}");
        let status = status_becomes(&app, &sha, "sonarqube", state).await;
        let description = status.description.unwrap_or_default();
        assert!(description.contains(text), "{file}: {description}");
    }
}

async fn quality_app_with_secret(project_extra: &str) -> TestApp {
    // The same world as the other quality tests, with SOURCES.md's secret.
    let options = crate::support::Options {
        projects: Some(format!(
            "[[projects]]\ngitlab = \"{PROJECT}\"\njob = \"{}\"\n[projects.quality]\n{project_extra}\n",
            crate::support::JOB
        )),
        extra_config: format!("[sonarqube]\nwebhook_secret = \"{VECTOR_SECRET}\"\n"),
        ..crate::support::Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    app.gitlab.add_project(PROJECT_ID, PROJECT);
    app
}

#[tokio::test]
async fn every_real_sast_capture_is_summed_up_in_its_status() {
    let Some(root) = fixtures() else {
        eprintln!("CI_BRIDGE_FIXTURES is not set; the SAST captures are not checked");
        return;
    };
    let dir = root.join("sast");
    let known: Vec<&str> = SAST.iter().map(|(f, _, _)| *f).collect();
    check_listing(&dir, &known);
    for (file, state, description) in SAST {
        let app = quality_app("", "").await;
        let push = payloads::push(PROJECT, "main", SHA_B, SHA_A);
        app.post_gitlab("Push Hook", &push, &[]).await;
        let build_id = first_build_id(&app).await;
        let body = std::fs::read_to_string(dir.join(file)).unwrap();
        let response = post_sast(&app, &build_id, &body, CALLBACK_TOKEN).await;
        assert_eq!(response.status(), 202, "{file}");
        let status = status_becomes(&app, SHA_A, "sast", state).await;
        assert_eq!(status.description.as_deref(), Some(*description), "{file}");
    }
}
