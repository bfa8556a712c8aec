//! SAST reports from Jenkins: authenticated like the callback, kept, summed up in a `sast`
//! status that fails at the configured severity, and in the merge request note.

use serde_json::{json, Value};

use crate::{
    four_eyes::{note_shows, open_mr, quality_app, states, status_becomes},
    payloads::{self, PROJECT_ID, SHA_A, SHA_B},
    sonarqube::decided,
    support::{eventually, TestApp, CALLBACK_TOKEN, PROJECT, WAIT},
};

/// The `CI_BRIDGE_BUILD_ID` of the first build Jenkins was asked for.
pub async fn first_build_id(app: &TestApp) -> String {
    eventually("a trigger", WAIT, || async {
        app.jenkins
            .triggers()
            .first()
            .and_then(|t| t.params.get("CI_BRIDGE_BUILD_ID").cloned())
    })
    .await
}

pub async fn post_sast(
    app: &TestApp,
    build_id: &str,
    body: &str,
    token: &str,
) -> reqwest::Response {
    app.http
        .post(format!("{}/hooks/jenkins/sast", app.url))
        .query(&[("build_id", build_id)])
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request reaches the app")
}

fn finding(id: &str, severity: &str, name: &str, file: &str, line: i64) -> Value {
    json!({"id": id, "name": name, "severity": severity,
           "location": {"file": file, "start_line": line},
           "identifiers": [{"type": "semgrep_id", "name": id, "value": id},
                           {"type": "cwe", "name": "CWE-89", "value": "89"}]})
}

pub fn report(findings: Vec<Value>) -> String {
    json!({
        "version": "15.0.7",
        "scan": {"type": "sast", "status": "success",
                 "start_time": "2026-12-01T10:00:00", "end_time": "2026-12-01T10:00:09",
                 "analyzer": {"id": "semgrep", "name": "Semgrep", "version": "5.1",
                              "vendor": {"name": "GitLab"}},
                 "scanner": {"id": "semgrep", "name": "Semgrep", "version": "1.74",
                             "vendor": {"name": "GitLab"}}},
        "vulnerabilities": findings
    })
    .to_string()
}

#[tokio::test]
async fn a_report_with_a_high_finding_fails_the_sast_status_and_is_kept() {
    let app = quality_app("sast_fail_at = \"high\"", "").await;
    open_mr(&app, SHA_A).await;
    let build_id = first_build_id(&app).await;
    let body = report(vec![
        finding("sqli", "High", "SQL injection", "src/db.rs", 42),
        finding("md5", "Low", "Weak hash", "src/hash.rs", 7),
        finding("/merge", "Medium", "/merge now", "/etc/passwd", 1),
    ]);
    let response = post_sast(&app, &build_id, &body, CALLBACK_TOKEN).await;
    assert_eq!(response.status(), 202);
    let again = post_sast(&app, &build_id, &body, CALLBACK_TOKEN).await;
    assert_eq!(again.status(), 200, "the same report again is a duplicate");

    let status = status_becomes(&app, SHA_A, "sast", "failed").await;
    assert_eq!(
        status.description.as_deref(),
        Some("failed: findings at or above High — 1 High, 1 Medium, 1 Low")
    );
    let kept = kept_sast(&app).await.expect("the report is kept");
    assert_eq!(kept.summary.unwrap()["total"], 3);

    let notes = note_shows(&app, "`src/db.rs:42`").await;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].body.contains("| High | 1 |"), "{}", notes[0].body);
    assert!(app.gitlab.quick_actions().is_empty());
}

#[tokio::test]
async fn a_report_below_the_threshold_passes() {
    let app = quality_app("sast_fail_at = \"critical\"", "").await;
    let push = payloads::push(PROJECT, "main", SHA_B, SHA_A);
    app.post_gitlab("Push Hook", &push, &[]).await;
    let build_id = first_build_id(&app).await;
    let body = report(vec![finding(
        "sqli",
        "High",
        "SQL injection",
        "src/db.rs",
        42,
    )]);
    assert_eq!(
        post_sast(&app, &build_id, &body, CALLBACK_TOKEN)
            .await
            .status(),
        202
    );
    let status = status_becomes(&app, SHA_A, "sast", "success").await;
    assert_eq!(status.description.as_deref(), Some("passed — 1 High"));
    assert_eq!(status.ref_, "main");
}

#[tokio::test]
async fn a_report_needs_the_callback_token_a_known_build_and_a_sast_body() {
    let app = quality_app("", "").await;
    let push = payloads::push(PROJECT, "main", SHA_B, SHA_A);
    app.post_gitlab("Push Hook", &push, &[]).await;
    let build_id = first_build_id(&app).await;
    let body = report(vec![]);
    assert_eq!(
        post_sast(&app, &build_id, &body, "wrong").await.status(),
        401
    );
    let unknown = post_sast(&app, "no-such-build", &body, CALLBACK_TOKEN).await;
    assert_eq!(unknown.status(), 404);
    let not_sast = post_sast(&app, &build_id, r#"{"version":"1.0"}"#, CALLBACK_TOKEN).await;
    assert_eq!(not_sast.status(), 400);
    let error: Value = not_sast.json().await.unwrap();
    assert_eq!(error["error"], "invalid_payload");
}

/// A report by one scanner (`id` for analyzer and scanner alike).
fn scanner_report(scanner: &str, status: &str, findings: Vec<Value>) -> String {
    let mut value: Value = serde_json::from_str(&report(findings)).unwrap();
    let tool = json!({"id": scanner, "name": scanner, "version": "1.0",
                      "vendor": {"name": "GitLab"}});
    value["scan"]["analyzer"] = tool.clone();
    value["scan"]["scanner"] = tool;
    value["scan"]["status"] = status.into();
    value.to_string()
}

#[tokio::test]
async fn a_second_report_of_the_same_build_adds_to_the_first_instead_of_erasing_it() {
    let app = quality_app("sast_fail_at = \"high\"", "").await;
    open_mr(&app, SHA_A).await;
    let build_id = first_build_id(&app).await;
    let semgrep = scanner_report(
        "semgrep",
        "failure",
        vec![finding("md5", "Low", "Weak hash", "src/hash.rs", 7)],
    );
    let secrets = scanner_report(
        "secrets",
        "success",
        vec![
            finding("md5", "Low", "Weak hash", "src/hash.rs", 7),
            finding("key", "Medium", "AWS key", "config/prod.env", 3),
        ],
    );
    decided(
        &app,
        post_sast(&app, &build_id, &semgrep, CALLBACK_TOKEN).await,
    )
    .await;
    status_becomes(&app, SHA_A, "sast", "failed").await;
    let second = decided(
        &app,
        post_sast(&app, &build_id, &secrets, CALLBACK_TOKEN).await,
    )
    .await;
    assert_eq!(second.outcome.as_deref(), Some("failed"));

    sast_shows(
        &app,
        "failed",
        "scan failed (semgrep) — 1 Medium, 1 Low · 2 scanners: semgrep, secrets",
    )
    .await;
    assert!(states(&app, SHA_A, "sast").iter().all(|s| s == "failed"));
    let shown = kept_sast(&app).await.expect("the combined result is shown");
    let summary = shown.summary.unwrap();
    assert_eq!(summary["total"], 2, "md5 is counted once: {summary}");
    note_shows(&app, "`config/prod.env:3`").await;

    // semgrep runs again and succeeds: its report replaces only semgrep's.
    let semgrep_again = scanner_report("semgrep", "success", vec![]);
    let third = decided(
        &app,
        post_sast(&app, &build_id, &semgrep_again, CALLBACK_TOKEN).await,
    )
    .await;
    assert_eq!(third.outcome.as_deref(), Some("success"));
    let decision = third.decision.unwrap_or_default();
    assert!(decision.contains("2 report(s)"), "{decision}");
    sast_shows(
        &app,
        "success",
        "passed — 1 Medium, 1 Low · 2 scanners: semgrep, secrets",
    )
    .await;
}

/// Waits until the newest `sast` status on `SHA_A` is `state` with `description`.
async fn sast_shows(app: &TestApp, state: &str, description: &str) {
    eventually(&format!("sast {state}: {description}"), WAIT, || async {
        let last = app
            .gitlab
            .statuses(PROJECT_ID, SHA_A)
            .into_iter()
            .rfind(|s| s.name == "sast")?;
        (last.state == state && last.description.as_deref() == Some(description)).then_some(())
    })
    .await
}

/// The SAST result the status and the note show for SHA_A, if any.
async fn kept_sast(app: &TestApp) -> Option<ci_bridge::store::QualityRow> {
    app.store
        .latest_quality(
            PROJECT_ID as i64,
            SHA_A,
            ci_bridge::store::QualitySource::Sast,
        )
        .await
        .unwrap()
}
