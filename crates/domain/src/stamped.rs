//! Secrets whose stored key begins with their issue time: refresh tokens and authorization codes.
//!
//! A secret is found by a keyed digest of it. A digest alone is uniformly random, so every new secret lands on a
//! random leaf of its index: with a million stored, every rotation or code exchange dirties a page of its own,
//! and the database writes each one back (SQLite's checkpoints; PostgreSQL's whole-page images in its log after
//! each of its checkpoints). A key that begins with the issue time puts the secrets of one second next to each
//! other, at one end of the index, whatever its size.
//!
//! The secret carries that time, so the key can be computed from the secret alone:
//! `base64url(VERSION ‖ issued_at as 4 bytes big-endian ‖ 28 secret bytes)`, 44 characters, and its key is
//! `issued_at ‖ the first 28 bytes of the keyed digest of the whole secret`, 32 bytes. Secrets of any other shape
//! (those of earlier versions: 43 characters, the base64url of 32 random or derived bytes) are keyed by the plain
//! digest, so they keep working until they expire, rotate or are spent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::{RandomSource, SecretHasher};

/// The first byte of a token in this format.
pub const VERSION: u8 = 1;
/// Secret bytes in a token (224 bits).
pub const SECRET_BYTES: usize = 28;
/// Characters in a secret: the base64url of 1 + 4 + 28 bytes.
pub const TOKEN_CHARS: usize = 44;
/// The digests' purposes (domain separation: a code is never taken for a token, nor either for anything else).
pub const REFRESH: &str = "refresh-token";
pub const CODE: &str = "authorization-code";

/// A new secret issued at `issued_at`, its secret bytes random.
pub fn random(random: &dyn RandomSource, issued_at: i64) -> String {
    let mut secret = [0u8; SECRET_BYTES];
    random.fill(&mut secret);
    encode(issued_at, &secret)
}

/// The refresh token that follows `presented` in a rotation at `rotated_at` that drew `nonce`. Derived, not
/// stored: during the grace window the same token can be answered again from the rotation's time and nonce
/// (kept with the grant); without the nonce nobody can compute it from a stolen old token.
pub fn derived(hasher: &SecretHasher, rotated_at: i64, presented: &str, nonce: &[u8]) -> String {
    let digest = hasher.digest("refresh-rotation", &format!("{}.{presented}", crate::secret::hex(nonce)));
    let mut secret = [0u8; SECRET_BYTES];
    secret.copy_from_slice(&digest[..SECRET_BYTES]);
    encode(rotated_at, &secret)
}

/// The key `token` is stored under, in the domain `purpose` (`REFRESH` or `CODE`).
pub fn key(hasher: &SecretHasher, purpose: &str, token: &str) -> Vec<u8> {
    let digest = hasher.digest(purpose, token);
    match issued_at_bytes(token) {
        Some(issued_at) => {
            let mut key = Vec::with_capacity(4 + SECRET_BYTES);
            key.extend_from_slice(&issued_at);
            key.extend_from_slice(&digest[..SECRET_BYTES]);
            key
        }
        None => digest,
    }
}

fn encode(issued_at: i64, secret: &[u8; SECRET_BYTES]) -> String {
    let mut raw = [0u8; 1 + 4 + SECRET_BYTES];
    raw[0] = VERSION;
    raw[1..5].copy_from_slice(&seconds(issued_at).to_be_bytes());
    raw[5..].copy_from_slice(secret);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Unix seconds as four bytes, clamped to what they hold (until 2106).
fn seconds(at: i64) -> u32 {
    u32::try_from(at.max(0)).unwrap_or(u32::MAX)
}

/// The issue time written in a secret of this format, as it starts the key; `None` for any other token.
fn issued_at_bytes(token: &str) -> Option<[u8; 4]> {
    if token.len() != TOKEN_CHARS {
        return None;
    }
    let mut raw = [0u8; 1 + 4 + SECRET_BYTES];
    match URL_SAFE_NO_PAD.decode_slice(token, &mut raw) {
        Ok(len) if len == raw.len() && raw[0] == VERSION => Some([raw[1], raw[2], raw[3], raw[4]]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::OsRandom;

    fn hasher() -> SecretHasher {
        SecretHasher::new([7; 32])
    }

    #[test]
    fn a_token_is_44_url_safe_characters_and_its_key_starts_with_its_time() {
        let token = random(&OsRandom, 0x6a0b_0c0d);
        assert_eq!(token.len(), TOKEN_CHARS);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let key = key(&hasher(), REFRESH, &token);
        assert_eq!(key.len(), 32);
        assert_eq!(key[..4], [0x6a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(key[4..], hasher().digest(REFRESH, &token)[..SECRET_BYTES]);
        assert_ne!(random(&OsRandom, 0x6a0b_0c0d), token, "the secret is random");
        let as_code = super::key(&hasher(), CODE, &token);
        assert_eq!((as_code[..4] == key[..4], as_code == key), (true, false), "codes and tokens are told apart");
    }

    #[test]
    fn keys_of_later_tokens_sort_after_those_of_earlier_ones() {
        let mut keys: Vec<(i64, Vec<u8>)> = [1_800_000_000, 1_700_000_000, 1_700_000_001, 255, 256]
            .map(|at| (at, key(&hasher(), CODE, &random(&OsRandom, at))))
            .into();
        keys.sort_by(|a, b| a.1.cmp(&b.1));
        let times: Vec<i64> = keys.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [255, 256, 1_700_000_000, 1_700_000_001, 1_800_000_000]);
    }

    #[test]
    fn other_tokens_are_keyed_by_their_plain_digest() {
        let h = hasher();
        // an earlier version's token: 32 random bytes, 43 characters
        let legacy = crate::secret::random_token(&OsRandom, 32);
        assert_eq!(key(&h, REFRESH, &legacy), h.digest(REFRESH, &legacy));
        // 44 characters, but another first byte; and 44 characters that are not base64url
        let other = URL_SAFE_NO_PAD.encode([2u8; 33]);
        assert_eq!(key(&h, CODE, &other), h.digest(CODE, &other));
        let garbage = "!".repeat(TOKEN_CHARS);
        assert_eq!(key(&h, REFRESH, &garbage), h.digest(REFRESH, &garbage));
        assert_eq!(key(&h, REFRESH, ""), h.digest(REFRESH, ""));
    }

    #[test]
    fn a_derived_token_depends_on_the_presented_token_the_nonce_and_the_time() {
        let h = hasher();
        let next = derived(&h, 1_700_000_000, "presented", b"nonce");
        assert_eq!(next, derived(&h, 1_700_000_000, "presented", b"nonce"));
        assert_eq!(next.len(), TOKEN_CHARS);
        assert_eq!(key(&h, REFRESH, &next)[..4], 1_700_000_000u32.to_be_bytes());
        assert_ne!(next, derived(&h, 1_700_000_000, "presented", b"other"));
        assert_ne!(next, derived(&h, 1_700_000_000, "other", b"nonce"));
        assert_ne!(next, derived(&h, 1_700_000_001, "presented", b"nonce"));
        assert_ne!(next, derived(&SecretHasher::new([8; 32]), 1_700_000_000, "presented", b"nonce"));
    }

    #[test]
    fn times_outside_four_bytes_are_clamped() {
        assert_eq!(key(&hasher(), REFRESH, &random(&OsRandom, -5))[..4], [0; 4]);
        assert_eq!(key(&hasher(), REFRESH, &random(&OsRandom, 1 << 40))[..4], [0xff; 4]);
    }
}
