//! The four-eyes rule: a change is approved by someone who is neither the merge
//! request's author nor the author or committer of any of its commits.
//!
//! GitLab's own "prevent approvals by users who add commits" looks only at committers, so
//! after a rebase an original author could approve their own code; this check looks at
//! both. Approvers are GitLab users and commits carry only a name and an email, so a user
//! counts as a commit's author when the name matches (case-insensitively), or the email's
//! local part matches the username.

use serde::{Deserialize, Serialize};

use crate::store::UserRef;

/// Whom a commit names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPerson {
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Why an approver does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflict {
    /// The merge request's author.
    Author,
    /// Wrote or committed one of its commits.
    Committer,
}

/// The four-eyes state of a merge request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourEyes {
    pub satisfied: bool,
    /// Approvers who count.
    pub eligible: Vec<UserRef>,
    /// Approvers who do not, and why.
    pub conflicted: Vec<(UserRef, Conflict)>,
}

impl FourEyes {
    /// Every user who approved, counted or not.
    pub fn approvers(&self) -> Vec<UserRef> {
        let mut all = self.eligible.clone();
        all.extend(self.conflicted.iter().map(|(u, _)| u.clone()));
        all
    }

    /// The status description.
    pub fn description(&self) -> String {
        if self.satisfied {
            format!("approved by {}", names(&self.eligible))
        } else if self.conflicted.is_empty() {
            "waiting for an approval by someone who is not an author".into()
        } else {
            format!(
                "approved only by an author or committer ({}); another reviewer must approve",
                names(
                    &self
                        .conflicted
                        .iter()
                        .map(|(u, _)| u.clone())
                        .collect::<Vec<_>>()
                )
            )
        }
    }
}

/// `@ada, @bob`.
pub fn names(users: &[UserRef]) -> String {
    users
        .iter()
        .map(|u| match &u.username {
            Some(name) => format!("@{name}"),
            None => format!("user {}", u.id),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn same(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => !a.trim().is_empty() && a.trim().eq_ignore_ascii_case(b.trim()),
        _ => false,
    }
}

/// True when `user` is the person a commit names.
pub fn wrote(user: &UserRef, person: &CommitPerson) -> bool {
    let local_part = person
        .email
        .as_deref()
        .and_then(|email| email.split('@').next());
    same(user.name.as_deref(), person.name.as_deref()) || same(user.username.as_deref(), local_part)
}

/// Evaluates the rule for the users who approve now.
pub fn evaluate(
    author: &UserRef,
    commit_people: &[CommitPerson],
    approvers: &[UserRef],
) -> FourEyes {
    let mut eligible = Vec::new();
    let mut conflicted = Vec::new();
    for user in approvers {
        let is_author =
            user.id == author.id || same(user.username.as_deref(), author.username.as_deref());
        if is_author {
            conflicted.push((user.clone(), Conflict::Author));
        } else if commit_people.iter().any(|p| wrote(user, p)) {
            conflicted.push((user.clone(), Conflict::Committer));
        } else {
            eligible.push(user.clone());
        }
    }
    FourEyes {
        satisfied: !eligible.is_empty(),
        eligible,
        conflicted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, username: &str, name: &str) -> UserRef {
        UserRef {
            id,
            username: Some(username.into()),
            name: Some(name.into()),
        }
    }

    fn person(name: &str, email: &str) -> CommitPerson {
        CommitPerson {
            name: Some(name.into()),
            email: Some(email.into()),
        }
    }

    #[test]
    fn the_author_approving_alone_leaves_four_eyes_unsatisfied() {
        let ada = user(7, "ada", "Ada Lovelace");
        let state = evaluate(&ada, &[], std::slice::from_ref(&ada));
        assert!(!state.satisfied);
        assert_eq!(state.conflicted, [(ada, Conflict::Author)]);
    }

    #[test]
    fn a_committer_does_not_count_but_a_reviewer_does() {
        let ada = user(7, "ada", "Ada Lovelace");
        let carl = user(9, "carl", "Carl Gauss");
        let bob = user(8, "bob", "Bob Noyce");
        let commits = [
            person("carl gauss", "cg@example.com"),
            person("X", "ada@example.com"),
        ];
        let state = evaluate(&ada, &commits, std::slice::from_ref(&carl));
        assert!(!state.satisfied);
        assert_eq!(state.conflicted, [(carl.clone(), Conflict::Committer)]);
        let state = evaluate(&ada, &commits, &[carl, bob.clone()]);
        assert!(state.satisfied);
        assert_eq!(state.eligible, [bob]);
    }
}
