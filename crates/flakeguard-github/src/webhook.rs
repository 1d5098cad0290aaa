//! GitHub's webhook signatures: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw
//! body keyed with the App's webhook secret.

use aws_lc_rs::hmac;

/// The header GitHub sends the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The `X-Hub-Signature-256` value GitHub sends for `body` (what tests and benchmarks send).
pub fn sign_webhook(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let hex: String = hmac::sign(&key, body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Checks an `X-Hub-Signature-256` value against `body`, in constant time. The error says
/// what is wrong with the header.
pub fn verify_webhook(secret: &[u8], body: &[u8], header: &str) -> Result<(), String> {
    let hex = header
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 must start with sha256=")?;
    let expected = decode_hex(hex).ok_or("X-Hub-Signature-256 is not 64 hexadecimal digits")?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &expected).map_err(|_| {
        "X-Hub-Signature-256 does not match the body and GITHUB_WEBHOOK_SECRET".to_owned()
    })
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented test vector (shared/fixtures/github-webhooks/signature-test-vector.json).
    #[test]
    fn githubs_documented_vector_signs_and_verifies() {
        let dir = std::env::var("FLAKEGUARD_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
            });
        let path = dir.join("github-webhooks/signature-test-vector.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (set FLAKEGUARD_FIXTURES)", path.display()));
        let vector: serde_json::Value = serde_json::from_str(&text).unwrap();
        let secret = vector["secret"].as_str().unwrap().as_bytes();
        let payload = vector["payload"].as_str().unwrap().as_bytes();
        let header = vector["header_value"].as_str().unwrap();
        assert_eq!(sign_webhook(secret, payload), header);
        assert_eq!(verify_webhook(secret, payload, header), Ok(()));
        assert!(verify_webhook(b"another secret", payload, header).is_err());
        assert!(verify_webhook(secret, b"Hello, World?", header).is_err());
        let upper = format!("sha256={}", header["sha256=".len()..].to_ascii_uppercase());
        assert_eq!(verify_webhook(secret, payload, &upper), Ok(()));
        for bad in [
            "",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1€",
        ] {
            assert!(verify_webhook(secret, payload, bad).is_err(), "{bad:?}");
        }
    }
}
