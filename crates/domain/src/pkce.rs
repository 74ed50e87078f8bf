//! PKCE (RFC 7636), S256 only: `code_challenge = BASE64URL(SHA256(code_verifier))`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secret::constant_time_eq;

/// Whether `value` has the form of a verifier (or of an S256 challenge): 43 to 128 characters of
/// `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The S256 challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge`.
pub fn verify(challenge: &str, verifier: &str) -> bool {
    well_formed(verifier) && constant_time_eq(challenge_of(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(challenge_of(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", verifier));
        assert!(!verify("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", &verifier.replace('d', "e")));
        assert!(!verify(&challenge_of("short"), "short"));
        assert!(!well_formed(&"a".repeat(129)));
        assert!(!well_formed(&format!("{}+", "a".repeat(43))));
    }
}
