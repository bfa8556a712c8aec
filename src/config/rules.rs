//! Per-project trigger rules (`[projects.triggers]`) and extra jobs (`[[projects.jobs]]`):
//! what builds, and which Jenkins jobs run for it.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// The default comment command: `/retest` or `/rebuild`, optionally naming one job.
pub const DEFAULT_COMMENT_COMMAND: &str = r"^/(?:retest|rebuild)(?:\s+(?P<job>\S+))?$";

/// What builds, per project. Every key has a default that matches what teams moving from
/// the Jenkins GitLab plugin expect.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerRules {
    /// Pushes to branches build.
    pub push: bool,
    /// Merge requests build when opened, reopened, or updated with new commits.
    pub merge_request: bool,
    /// Comment commands (`comment_command`) on a merge request rebuild it.
    pub comment: bool,
    /// Tag pushes build (ref = the tag).
    pub tag_push: bool,
    /// Globs (`*` within a path segment, `**` across `/`) of pushed branches that build;
    /// empty = all.
    pub branches: Vec<String>,
    /// Globs of pushed branches that never build.
    pub exclude_branches: Vec<String>,
    /// Globs of merge-request source branches that build; empty = all.
    pub source_branches: Vec<String>,
    pub exclude_source_branches: Vec<String>,
    /// Globs of merge-request target branches that build; empty = all.
    pub target_branches: Vec<String>,
    pub exclude_target_branches: Vec<String>,
    /// Draft merge requests build too. Off: a draft builds once it leaves draft.
    pub drafts: bool,
    /// `[ci skip]` / `[skip ci]` in the head commit message skips the build, as in GitLab.
    pub ci_skip: bool,
    /// Labels that force a build of the merge request head when added.
    pub force_build_labels: Vec<String>,
    /// A regex that must match the whole (trimmed) comment; a `job` group names one job.
    pub comment_command: String,
    /// GitLab usernames whose comment commands are obeyed; empty = anyone who can comment.
    pub trusted_users: Vec<String>,
    /// A new commit on a branch or merge request cancels the older commit's queued builds.
    pub cancel_superseded: bool,
    /// ... and stops its running builds too.
    pub stop_superseded: bool,
}

impl Default for TriggerRules {
    fn default() -> Self {
        Self {
            push: true,
            merge_request: true,
            comment: true,
            tag_push: false,
            branches: Vec::new(),
            exclude_branches: Vec::new(),
            source_branches: Vec::new(),
            exclude_source_branches: Vec::new(),
            target_branches: Vec::new(),
            exclude_target_branches: Vec::new(),
            drafts: false,
            ci_skip: true,
            force_build_labels: Vec::new(),
            comment_command: DEFAULT_COMMENT_COMMAND.into(),
            trusted_users: Vec::new(),
            cancel_superseded: true,
            stop_superseded: false,
        }
    }
}

/// One more Jenkins job of a project, with its own commit status.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Jenkins job full name; may contain `{branch}` (the branch, encoded as a multibranch
    /// project names its jobs) or `{mr}` (`MR-<iid>`).
    pub job: String,
    /// The commit status name on GitLab; must differ between the jobs of a project.
    pub status_name: String,
}

impl TriggerRules {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let lists = [
            ("branches", &self.branches),
            ("exclude_branches", &self.exclude_branches),
            ("source_branches", &self.source_branches),
            ("exclude_source_branches", &self.exclude_source_branches),
            ("target_branches", &self.target_branches),
            ("exclude_target_branches", &self.exclude_target_branches),
        ];
        for (name, globs) in lists {
            if globs.iter().any(|g| g.is_empty()) {
                return Err(invalid(format!("{key}.{name}"), "a glob must not be empty"));
            }
        }
        Regex::new(&self.comment_command).map_err(|e| {
            invalid(
                format!("{key}.comment_command"),
                format!("not a regex: {e}"),
            )
        })?;
        Ok(())
    }

    /// The compiled comment command (validated at load).
    pub fn comment_regex(&self) -> Regex {
        Regex::new(&self.comment_command).unwrap_or_else(|_| {
            Regex::new(DEFAULT_COMMENT_COMMAND).expect("the default command is a valid regex")
        })
    }
}

/// True when `branch` passes an include list (empty = everything) and no exclude glob.
pub fn branch_allowed(branch: &str, include: &[String], exclude: &[String]) -> bool {
    let included = include.is_empty() || include.iter().any(|g| glob_match(g, branch));
    included && !exclude.iter().any(|g| glob_match(g, branch))
}

/// Ant-style globs: `**` matches anything, `*` anything but `/`, `?` one character but `/`.
pub fn glob_match(glob: &str, text: &str) -> bool {
    fn matches(glob: &[char], text: &[char]) -> bool {
        match glob.first() {
            None => text.is_empty(),
            Some('*') if glob.get(1) == Some(&'*') => {
                (0..=text.len()).any(|skip| matches(&glob[2..], &text[skip..]))
            }
            Some('*') => {
                let limit = text.iter().position(|c| *c == '/').unwrap_or(text.len());
                (0..=limit).any(|skip| matches(&glob[1..], &text[skip..]))
            }
            Some('?') => text.first().is_some_and(|c| *c != '/') && matches(&glob[1..], &text[1..]),
            Some(c) => text.first() == Some(c) && matches(&glob[1..], &text[1..]),
        }
    }
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    matches(&glob, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_path_segments() {
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "release/1.2/hotfix"));
        assert!(glob_match("release/**", "release/1.2/hotfix"));
        assert!(glob_match("feature-?", "feature-x"));
        assert!(!glob_match("main", "mainline"));
        assert!(glob_match("*", "main"));
    }

    #[test]
    fn an_exclude_wins_over_an_include() {
        let include = vec!["release/*".to_owned()];
        let exclude = vec!["release/old".to_owned()];
        assert!(branch_allowed("release/new", &include, &exclude));
        assert!(!branch_allowed("release/old", &include, &exclude));
        assert!(!branch_allowed("main", &include, &exclude));
        assert!(branch_allowed("anything", &[], &[]));
    }

    #[test]
    fn the_default_comment_command_matches_the_whole_note_only() {
        let regex = TriggerRules::default().comment_regex();
        assert!(regex.is_match("/retest"));
        assert!(regex.is_match("/rebuild"));
        assert_eq!(&regex.captures("/retest sast").unwrap()["job"], "sast");
        assert!(!regex.is_match("please /retest"));
        assert!(!regex.is_match("/retest now please"));
    }
}
