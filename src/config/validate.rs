//! Checks a parsed configuration before anything uses it: every error names the key it
//! is about, so `ci-bridge check-config` can point at the line to fix.

use std::time::Duration;

use url::Url;

use super::{invalid, quality, Config, ConfigError, Secret, Secrets};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("gitlab.url", &self.gitlab.url)?;
        check_http_url("jenkins.url", &self.jenkins.url)?;
        if let Some(url) = &self.jenkins.public_url {
            check_http_url("jenkins.public_url", url)?;
        }
        if self.gitlab.token.is_empty() {
            return Err(invalid("gitlab.token", "must not be empty"));
        }
        if self.jenkins.api_token.is_empty() {
            return Err(invalid("jenkins.api_token", "must not be empty"));
        }
        check_tokens("jenkins.callback_token", &self.jenkins.callback_token, true)?;
        check_tokens("gitlab.webhook_token", &self.gitlab.webhook_token, false)?;
        check_signing_keys("gitlab.signing_token", &self.gitlab.signing_token)?;
        if let Some(tokens) = &self.server.admin_token {
            check_tokens("server.admin_token", tokens, true)?;
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.jenkins.poll_interval < Duration::from_millis(10) {
            return Err(invalid("jenkins.poll_interval", "must be at least 10ms"));
        }
        if self.worker.concurrency == 0 {
            return Err(invalid("worker.concurrency", "must be at least 1"));
        }
        if self.worker.lease < Duration::from_secs(5) {
            return Err(invalid("worker.lease", "must be at least 5s"));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, project) in self.projects.iter().enumerate() {
            let key = format!("projects[{index}]");
            if project.gitlab.trim().is_empty() || !project.gitlab.contains('/') {
                return Err(invalid(
                    format!("{key}.gitlab"),
                    "must be a path like group/project",
                ));
            }
            if !seen.insert(project.gitlab.as_str()) {
                return Err(invalid(format!("{key}.gitlab"), "listed twice"));
            }
            project.triggers.validate(&format!("{key}.triggers"))?;
            let mut names = std::collections::HashSet::new();
            for (index, job) in project.all_jobs().iter().enumerate() {
                let job_key = match index {
                    0 => key.clone(),
                    n => format!("{key}.jobs[{}]", n - 1),
                };
                check_job_name(&format!("{job_key}.job"), &job.job)?;
                if job.status_name.is_empty() || job.status_name.len() > 255 {
                    return Err(invalid(
                        format!("{job_key}.status_name"),
                        "must be 1 to 255 characters",
                    ));
                }
                if !names.insert(job.status_name.clone()) {
                    return Err(invalid(
                        format!("{job_key}.status_name"),
                        "used by two jobs of the project",
                    ));
                }
            }
            if let Some(tokens) = &project.webhook_token {
                check_tokens(&format!("{key}.webhook_token"), tokens, false)?;
            }
            if let Some(keys) = &project.signing_token {
                check_signing_keys(&format!("{key}.signing_token"), keys)?;
            }
            if project.webhook_tokens(&self.gitlab).is_empty()
                && project.signing_tokens(&self.gitlab).is_empty()
            {
                return Err(invalid(
                    &key,
                    "has neither a webhook token nor a signing token (here or under [gitlab]); \
                     unauthenticated webhooks are never accepted",
                ));
            }
        }
        quality::validate(self)?;
        Ok(())
    }
}

/// A job full name or template: folders separated by `/`, placeholders `{branch}`, `{mr}`.
fn check_job_name(key: &str, job: &str) -> Result<(), ConfigError> {
    if job.trim_matches('/').is_empty() || job.split('/').any(str::is_empty) {
        return Err(invalid(
            key,
            "must be a Jenkins job full name like folder/job",
        ));
    }
    let stripped = job.replace("{branch}", "").replace("{mr}", "");
    if stripped.contains('{') || stripped.contains('}') {
        return Err(invalid(key, "the only placeholders are {branch} and {mr}"));
    }
    Ok(())
}

fn check_http_url(key: &str, url: &Url) -> Result<(), ConfigError> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            key,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(key, "must not have a query or fragment"));
    }
    Ok(())
}

fn check_tokens(key: &str, tokens: &Secrets, required: bool) -> Result<(), ConfigError> {
    if required && tokens.is_empty() {
        return Err(invalid(key, "must be set"));
    }
    if tokens.iter().any(Secret::is_empty) {
        return Err(invalid(key, "must not be empty"));
    }
    Ok(())
}

fn check_signing_keys(key: &str, keys: &Secrets) -> Result<(), ConfigError> {
    for secret in keys.iter() {
        crate::gitlab::verify::SigningKey::parse(secret).map_err(|reason| invalid(key, reason))?;
    }
    Ok(())
}
