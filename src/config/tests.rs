use super::*;

const MINIMAL: &str = r#"
[gitlab]
url = "https://gitlab.example.com"
token = "glpat-secret-value"
webhook_token = "hook-secret-value"

[jenkins]
url = "https://jenkins.example.com/jenkins"
user = "ci-bridge"
api_token = "jenkins-secret-value"
callback_token = "callback-secret-value"

[[projects]]
gitlab = "analytics/collector"
job = "analytics/collector-ci"
"#;

#[test]
fn defaults_apply_to_a_minimal_file() {
    let config = Config::parse(MINIMAL).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.database.url.expose(), "sqlite://ci-bridge.db");
    assert_eq!(config.jenkins.poll_interval, Duration::from_secs(2));
    assert_eq!(config.projects[0].status_name, "jenkins");
}

#[test]
fn the_masked_rendering_contains_no_secret() {
    let rendered = Config::parse(MINIMAL).unwrap().to_masked_toml();
    for secret in [
        "glpat-secret-value",
        "hook-secret-value",
        "jenkins-secret-value",
        "callback-secret-value",
    ] {
        assert!(!rendered.contains(secret), "{secret} leaked:\n{rendered}");
    }
    assert!(rendered.contains("analytics/collector-ci"));
}

#[test]
fn a_project_without_any_token_is_refused_naming_it() {
    let text = MINIMAL.replace("webhook_token = \"hook-secret-value\"\n", "");
    let err = Config::parse(&text).unwrap_err().to_string();
    assert!(err.contains("projects[0]"), "{err}");
}

#[test]
fn a_signing_token_that_is_not_whsec_is_refused_without_echoing_it() {
    let text = MINIMAL.replace(
        "webhook_token = \"hook-secret-value\"",
        "signing_token = \"not-a-whsec-key\"",
    );
    let err = Config::parse(&text).unwrap_err().to_string();
    assert!(err.contains("gitlab.signing_token"), "{err}");
    assert!(!err.contains("not-a-whsec-key"), "{err}");
}

#[test]
fn unknown_keys_are_errors() {
    let text = format!("{MINIMAL}\n[server]\nlisten_addr = \"1.2.3.4:1\"\n");
    let err = Config::parse(&text).unwrap_err().to_string();
    assert!(err.contains("listen_addr"), "{err}");
}

#[test]
fn check_config_shows_the_database_but_not_its_password() {
    let text = format!("{MINIMAL}\n[database]\nurl = \"postgres://ci:hunter2@db.internal/ci\"\n");
    let rendered = Config::parse(&text).unwrap().to_masked_toml();
    assert!(
        rendered.contains("postgres://ci:********@db.internal/ci"),
        "{rendered}"
    );
    assert!(!rendered.contains("hunter2"));
}

#[test]
fn database_passwords_are_masked() {
    assert_eq!(
        mask_database_url("postgres://ci:hunter2@db.internal/ci"),
        "postgres://ci:********@db.internal/ci"
    );
}
