//! Secrets as types: a value that can be compared and used, but never printed.

use std::fmt;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A secret string from the configuration. `Debug` and `Display` print a mask, so a secret
/// cannot reach a log line, an error or a response by accident; [`Secret::expose`] is the one
/// way to read it, and every call site of it is a place where the secret leaves the process
/// on purpose (an `Authorization` header, an HMAC key).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Only for sending it to the system it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented value (the time taken does not depend on
    /// where the two first differ; it may depend on their lengths).
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// One secret or several: every one of them is accepted, so a token can be rotated without
/// downtime (add the new one, switch the sender, remove the old one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets(Vec<Secret>);

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.0.iter()
    }

    /// True when the presented value equals any of the secrets. Every secret is compared, so
    /// the time taken does not tell which one matched.
    pub fn any_matches(&self, presented: &[u8]) -> bool {
        self.0
            .iter()
            .fold(false, |found, secret| secret.matches(presented) | found)
    }
}

impl From<Vec<Secret>> for Secrets {
    fn from(values: Vec<Secret>) -> Self {
        Self(values)
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(Secret),
            Many(Vec<Secret>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(secret) => Secrets(vec![secret]),
            OneOrMany::Many(secrets) => Secrets(secrets),
        })
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("********")
    }
}

impl serde::Serialize for Secrets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    }

    #[test]
    fn any_of_several_rotated_tokens_is_accepted() {
        let secrets = Secrets::from(vec![Secret::new("old"), Secret::new("new")]);
        assert!(secrets.any_matches(b"old"));
        assert!(secrets.any_matches(b"new"));
        assert!(!secrets.any_matches(b"other"));
        assert!(!secrets.any_matches(b""));
    }
}
