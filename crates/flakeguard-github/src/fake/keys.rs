//! The fake's App key, generated at start, and the app JWT check GitHub performs.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use time::OffsetDateTime;

/// A freshly generated RSA-2048 key: PKCS#8 and PKCS#1 PEM, and the public key.
pub(super) struct GeneratedKey {
    pub(super) pkcs8_pem: String,
    pub(super) pkcs1_pem: String,
    pub(super) public_key: Vec<u8>,
}

pub(super) fn generate() -> GeneratedKey {
    // Key generation only fails when the system has no randomness; the fake cannot run then.
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate an RSA-2048 key");
    let pkcs8 = pair
        .as_der()
        .expect("serialize the generated key as PKCS#8");
    let pkcs8 = pkcs8.as_ref();
    let pkcs1 = pkcs1_from_pkcs8(pkcs8).expect("a PKCS#8 RSA key wraps a PKCS#1 key");
    GeneratedKey {
        pkcs8_pem: pem("PRIVATE KEY", pkcs8),
        pkcs1_pem: pem("RSA PRIVATE KEY", &pkcs1),
        public_key: pair.public_key().as_ref().to_vec(),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element: (tag, contents, rest).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, after) = rest.split_at(count);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    let (0x30, info, _) = der_element(der)? else {
        return None;
    };
    let (0x02, _, rest) = der_element(info)? else {
        return None;
    };
    let (0x30, _, rest) = der_element(rest)? else {
        return None;
    };
    let (0x04, key, _) = der_element(rest)? else {
        return None;
    };
    Some(key.to_vec())
}

/// Checks an app JWT the way GitHub does; the error is GitHub's message.
pub(super) fn verify_app_jwt(jwt: &str, public_key: &[u8], app_id: u64) -> Result<(), String> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(UNDECODABLE.to_owned());
    };
    let decode_json = |part: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let header = decode_json(header).ok_or(UNDECODABLE)?;
    if header["alg"] != "RS256" {
        return Err(format!(
            "JWT algorithm {} is not supported; use RS256",
            header["alg"]
        ));
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| UNDECODABLE)?;
    let signing_input = &jwt[..jwt.rfind('.').unwrap_or(0)];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| {
            "A JSON web token could not be decoded (signature does not match the App's public key)"
                .to_owned()
        })?;
    let claims = decode_json(payload).ok_or(UNDECODABLE)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Some(iat) = claims["iat"].as_i64() else {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".to_owned());
    };
    let Some(exp) = claims["exp"].as_i64().filter(|exp| *exp > now) else {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".to_owned());
    };
    if iat > now + 60 {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".to_owned());
    }
    if exp > now + 600 || exp - iat > 660 {
        return Err("'Expiration time' claim ('exp') is too far in the future".to_owned());
    }
    let issuer = match &claims["iss"] {
        serde_json::Value::String(iss) => iss.clone(),
        serde_json::Value::Number(iss) => iss.to_string(),
        _ => String::new(),
    };
    if issuer != app_id.to_string() {
        return Err(format!(
            "'Issuer' claim ('iss') must be the App's id, got {issuer:?}"
        ));
    }
    Ok(())
}
