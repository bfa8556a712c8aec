//! Webhook verification: the plain `X-Gitlab-Token`, and the Standard Webhooks signature
//! (`webhook-signature`) that GitLab sends for a hook with a signing token.
//!
//! Both run on the raw body, in constant time, before any of the payload is trusted.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Secret, Secrets};

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from our clock, either way, in seconds. Five minutes
/// is what the Standard Webhooks reference libraries use; older deliveries are replays.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 5 * 60;

/// A decoded `whsec_` key.
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Decodes `whsec_<base64>`. The error text never contains the key.
    pub fn parse(secret: &Secret) -> Result<Self, &'static str> {
        let encoded = secret
            .expose()
            .strip_prefix("whsec_")
            .ok_or("a signing token starts with whsec_")?;
        let key = BASE64
            .decode(encoded)
            .map_err(|_| "the part after whsec_ is not valid base64")?;
        if key.is_empty() {
            return Err("the signing key is empty");
        }
        Ok(Self(key))
    }

    /// The `v1,<base64>` signature of a message, as a sender computes it.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac(webhook_id, timestamp);
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self, webhook_id: &str, timestamp: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac
    }
}

/// Why a delivery was refused; the reason is a metric label and a log field, never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("X-Gitlab-Token header is missing")]
    TokenMissing,
    #[error("X-Gitlab-Token does not match")]
    TokenMismatch,
    #[error("webhook-signature, webhook-id or webhook-timestamp header is missing")]
    SignatureMissing,
    #[error("webhook-timestamp is not a unix time in seconds")]
    TimestampInvalid,
    #[error("webhook-timestamp is outside the replay window")]
    TimestampOutOfWindow,
    #[error("webhook-signature does not match")]
    SignatureMismatch,
}

impl VerifyError {
    /// A short label for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenMismatch => "token_mismatch",
            Self::SignatureMissing => "signature_missing",
            Self::TimestampInvalid => "timestamp_invalid",
            Self::TimestampOutOfWindow => "timestamp_out_of_window",
            Self::SignatureMismatch => "signature_mismatch",
        }
    }
}

/// The verification headers of one delivery, as received.
#[derive(Default)]
pub struct Presented<'a> {
    pub token: Option<&'a [u8]>,
    pub webhook_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// What one project accepts: any of its tokens, any of its signing keys; with both kinds
/// configured, a delivery must pass both.
pub struct Verifier {
    tokens: Secrets,
    keys: Vec<SigningKey>,
}

impl Verifier {
    pub fn new(tokens: &Secrets, signing: &Secrets) -> Self {
        let keys = signing
            .iter()
            .filter_map(|secret| SigningKey::parse(secret).ok())
            .collect();
        Self {
            tokens: tokens.clone(),
            keys,
        }
    }

    /// True when this verifier would accept nothing (a configuration error elsewhere).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.keys.is_empty()
    }

    pub fn verify(
        &self,
        presented: &Presented<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        if self.is_empty() {
            return Err(VerifyError::TokenMissing);
        }
        if !self.keys.is_empty() {
            self.verify_signature(presented, body, now_secs)?;
        }
        if !self.tokens.is_empty() {
            let token = presented.token.ok_or(VerifyError::TokenMissing)?;
            if !self.tokens.any_matches(token) {
                return Err(VerifyError::TokenMismatch);
            }
        }
        Ok(())
    }

    fn verify_signature(
        &self,
        presented: &Presented<'_>,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), VerifyError> {
        let (Some(id), Some(timestamp), Some(signatures)) = (
            presented.webhook_id,
            presented.timestamp,
            presented.signature,
        ) else {
            return Err(VerifyError::SignatureMissing);
        };
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::TimestampInvalid)?;
        if (now_secs - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
            return Err(VerifyError::TimestampOutOfWindow);
        }
        let presented: Vec<Vec<u8>> = signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .collect();
        let mut matched = false;
        for key in &self.keys {
            let mut mac = key.mac(id, timestamp);
            mac.update(body);
            for candidate in &presented {
                // `verify_slice` compares in constant time.
                matched |= mac.clone().verify_slice(candidate).is_ok();
            }
        }
        if matched {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> SigningKey {
        SigningKey::parse(&Secret::new(secret)).unwrap()
    }

    #[test]
    fn standard_webhooks_test_vectors_sign_as_published() {
        let signed = key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").sign(
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(signed, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
        let signed = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    fn signing_verifier() -> Verifier {
        Verifier::new(
            &Secrets::default(),
            &Secrets::from(vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
        )
    }

    #[test]
    fn one_valid_signature_among_several_is_enough() {
        let body = br#"{"test": 2432232314}"#;
        let good = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("id1", 1000, body);
        let header = format!("v1a,abc v1,AAAA {good}");
        let presented = Presented {
            webhook_id: Some("id1"),
            timestamp: Some("1000"),
            signature: Some(&header),
            ..Presented::default()
        };
        assert_eq!(signing_verifier().verify(&presented, body, 1000), Ok(()));
    }

    #[test]
    fn stale_or_future_timestamps_and_altered_bodies_are_refused() {
        let body = b"{}";
        let good = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("id1", 1000, body);
        let presented = Presented {
            webhook_id: Some("id1"),
            timestamp: Some("1000"),
            signature: Some(&good),
            ..Presented::default()
        };
        let verifier = signing_verifier();
        assert_eq!(
            verifier.verify(&presented, body, 1000 + 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            verifier.verify(&presented, body, 1000 - 301),
            Err(VerifyError::TimestampOutOfWindow)
        );
        assert_eq!(
            verifier.verify(&presented, b"{ }", 1000),
            Err(VerifyError::SignatureMismatch)
        );
        let no_headers = Presented::default();
        assert_eq!(
            verifier.verify(&no_headers, body, 1000),
            Err(VerifyError::SignatureMissing)
        );
    }

    #[test]
    fn with_token_and_signing_key_both_are_required() {
        let verifier = Verifier::new(
            &Secrets::from(vec![Secret::new("tok")]),
            &Secrets::from(vec![Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
        );
        let body = b"{}";
        let good = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign("id1", 1000, body);
        let mut presented = Presented {
            webhook_id: Some("id1"),
            timestamp: Some("1000"),
            signature: Some(&good),
            token: None,
        };
        assert_eq!(
            verifier.verify(&presented, body, 1000),
            Err(VerifyError::TokenMissing)
        );
        presented.token = Some(b"tok");
        assert_eq!(verifier.verify(&presented, body, 1000), Ok(()));
    }

    #[test]
    fn keys_that_are_not_whsec_base64_are_rejected_without_echoing_them() {
        let err = SigningKey::parse(&Secret::new("plain-secret"))
            .err()
            .unwrap();
        assert!(!err.contains("plain-secret"));
        assert!(SigningKey::parse(&Secret::new("whsec_!!!")).is_err());
    }
}
