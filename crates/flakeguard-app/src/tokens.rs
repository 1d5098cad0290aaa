//! API token secrets: generated from the OS's random source, shown once, stored only as a
//! SHA-256 hash (looked up by hash, so no secret ever sits in the database).

use flakeguard_store::TokenHash;
use sha2::{Digest, Sha256};

/// Every FlakeGuard token starts with this, so secret scanners and people recognise it.
pub const PREFIX: &str = "fgt_";

/// A new secret: `fgt_` and 40 characters of base62 (about 238 bits).
pub fn generate() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut secret = String::from(PREFIX);
    while secret.len() < PREFIX.len() + 40 {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)?;
        // Rejection sampling keeps every character equally likely.
        for b in bytes {
            if b < 248 && secret.len() < PREFIX.len() + 40 {
                secret.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(secret)
}

pub fn hash(secret: &str) -> TokenHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// What listings show of a token: enough to recognise it, far too little to use it.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(PREFIX.len() + 6).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_distinct_and_prefixed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 44);
        assert!(a.starts_with(PREFIX) && a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(display_prefix(&a).len(), 10);
    }

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc"), from FIPS 180-2.
        assert_eq!(hash("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(constant_time_eq(b"secret-key", b"secret-key"));
        assert!(!constant_time_eq(b"secret-key", b"secret-kez"));
        assert!(!constant_time_eq(b"secret", b"secret-key"));
    }
}
