//! The App's private key and the RS256 JSON Web Token that authenticates the App itself
//! (`/app/...` endpoints, installation token requests).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::GitHubError;

/// GitHub refuses app JWTs that expire more than ten minutes after they were issued; issuing
/// a minute in the past absorbs clock drift, expiring nine minutes ahead stays inside the cap.
const BACKDATE_SECS: i64 = 60;
const LIFETIME_SECS: i64 = 9 * 60;

/// The claims of an app JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The App's id, as a string (GitHub accepts the app id or the client id here).
    pub iss: String,
}

impl JwtClaims {
    pub(crate) fn for_app(app_id: u64, now: OffsetDateTime) -> Self {
        let now = now.unix_timestamp();
        JwtClaims {
            iat: now - BACKDATE_SECS,
            exp: now + LIFETIME_SECS,
            iss: app_id.to_string(),
        }
    }
}

/// Reads a PEM private key, PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8.
pub(crate) fn parse_private_key(pem: &str) -> Result<RsaKeyPair, GitHubError> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|err| {
        GitHubError::Key(format!(
            "expected a PEM RSA private key (PKCS#1 or PKCS#8): {err}"
        ))
    })?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
        PrivateKeyDer::Sec1(_) => {
            return Err(GitHubError::Key(
                "the key is an EC (SEC1) key; GitHub Apps sign with RSA".to_owned(),
            ));
        }
        _ => {
            return Err(GitHubError::Key(
                "unsupported private key format".to_owned(),
            ));
        }
    };
    parsed.map_err(|err| GitHubError::Key(format!("not a usable RSA private key: {err}")))
}

/// Signs `claims` as a compact RS256 JWT.
pub(crate) fn sign(key: &RsaKeyPair, claims: &JwtClaims) -> Result<String, GitHubError> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = serde_json::to_vec(claims)
        .map_err(|err| GitHubError::Key(format!("cannot encode jwt claims: {err}")))?;
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| GitHubError::Key("rs256 signing failed".to_owned()))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_backdated_a_minute_and_expire_within_ten() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let claims = JwtClaims::for_app(42, now);
        assert_eq!(claims.iat, 1_700_000_000 - 60);
        assert_eq!(claims.exp, 1_700_000_000 + 540);
        assert_eq!(claims.iss, "42");
        assert!(claims.exp - claims.iat <= 600);
    }

    #[test]
    fn rejects_text_that_is_not_a_pem_key() {
        let err = parse_private_key("not a key").unwrap_err();
        assert!(matches!(err, GitHubError::Key(_)), "{err}");
        assert!(err.to_string().contains("PEM"), "{err}");
    }
}
