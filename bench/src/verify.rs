//! The minimal verification a GitLab receiver needs: a constant-time `X-Gitlab-Token`
//! compare, or a Standard Webhooks signature (HMAC-SHA256 over `id.timestamp.body`).

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from the clock, in seconds: the ±5 minutes of the
/// Standard Webhooks reference libraries, as ci-bridge uses.
pub const TOLERANCE_SECS: i64 = 300;

/// What a delivery must carry.
#[derive(Clone)]
pub enum Check {
    /// `X-Gitlab-Token` equal to this.
    Token(Vec<u8>),
    /// A `v1` signature made with this key (the bytes after `whsec_`, decoded).
    Signature(Vec<u8>),
}

impl Check {
    /// `token:SECRET` or `whsec_...`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text.strip_prefix("whsec_") {
            Some(encoded) => Ok(Self::Signature(BASE64.decode(encoded)?)),
            None => Ok(Self::Token(text.as_bytes().to_vec())),
        }
    }

    /// True when the token matches; for a signature, always true (it needs the body).
    pub fn token_ok(&self, headers: &HeaderMap) -> bool {
        match self {
            Self::Token(expected) => headers
                .get("x-gitlab-token")
                .is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected))),
            Self::Signature(_) => true,
        }
    }

    /// True when the signature over `body` matches; for a token, always true.
    pub fn signature_ok(&self, headers: &HeaderMap, body: &[u8], now_secs: i64) -> bool {
        let Self::Signature(key) = self else {
            return true;
        };
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(id), Some(timestamp), Some(signatures)) = (
            text("webhook-id"),
            text("webhook-timestamp"),
            text("webhook-signature"),
        ) else {
            return false;
        };
        match timestamp.parse::<i64>() {
            Ok(ts) if (now_secs - ts).abs() <= TOLERANCE_SECS => {}
            _ => return false,
        }
        let mac = mac(key, id, timestamp, body);
        signatures
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .any(|candidate| mac.clone().verify_slice(&candidate).is_ok())
    }
}

/// The `v1,<base64>` header value a sender puts in `webhook-signature`.
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", BASE64.encode(tag))
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let Check::Signature(key) = Check::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        else {
            panic!("a whsec_ key is a signing key");
        };
        let signed = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
