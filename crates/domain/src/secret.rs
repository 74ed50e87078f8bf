//! Random secrets, their keyed digests and constant-time comparison.

use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::{Blake2bMac, digest::consts::U32};
use subtle::ConstantTimeEq;

/// Where random bytes come from.
pub trait RandomSource: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        // getrandom fails only when the OS has no entropy source at all; a server must not run then.
        if let Err(error) = getrandom::fill(buf) {
            panic!("operating system randomness unavailable: {error}");
        }
    }
}

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A random string of `bytes` bytes of entropy, written in `[A-Za-z0-9_-]` (base64url without padding), so it
/// is identical raw and form-urlencoded.
pub fn random_token(random: &dyn RandomSource, bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    random.fill(&mut raw);
    let mut out = String::with_capacity(bytes * 4 / 3 + 3);
    for chunk in raw.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(URL_SAFE[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A random lowercase hex string of `bytes` bytes of entropy.
pub fn random_hex(random: &dyn RandomSource, bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    random.fill(&mut raw);
    hex(&raw)
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Keyed BLAKE2b-256 of high-entropy secrets (codes, tokens, session ids, client secrets): fast enough for the
/// token path, and a leaked table of digests is useless without the key.
#[derive(Clone)]
pub struct SecretHasher {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher(..)")
    }
}

impl SecretHasher {
    pub fn new(key: [u8; 32]) -> Self {
        SecretHasher { key }
    }

    /// The digest of `secret` in the domain `purpose` (so a code can never be presented as a token).
    pub fn digest(&self, purpose: &str, secret: &str) -> Vec<u8> {
        let mut mac = match Blake2bMac::<U32>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            // a 32-byte key is always accepted by BLAKE2b (keys of up to 64 bytes are)
            Err(_) => unreachable!("BLAKE2b accepts 32-byte keys"),
        };
        mac.update(&(purpose.len() as u64).to_le_bytes());
        mac.update(purpose.as_bytes());
        mac.update(secret.as_bytes());
        mac.finalize_fixed().to_vec()
    }
}

/// Compares two byte strings in time independent of where they differ (their lengths are not secret). Eight
/// bytes at a time: `subtle`'s slice comparison goes a byte at a time, each behind an optimisation barrier, about
/// 2 ns a byte, which is most of a request's budget for a 1 KB access token.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (words_a, words_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = words_a.remainder().iter().zip(words_b.remainder()).fold(0u64, |diff, (x, y)| diff | u64::from(x ^ y));
    let diff = words_a.zip(words_b).fold(tail, |diff, (x, y)| diff | (word(x) ^ word(y)));
    diff.ct_eq(&0).into()
}

/// Eight bytes as one word (`bytes` is a chunk of exactly eight).
fn word(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting;
    impl RandomSource for Counting {
        fn fill(&self, buf: &mut [u8]) {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = i as u8;
            }
        }
    }

    #[test]
    fn token_alphabet_and_length() {
        let token = random_token(&OsRandom, 32);
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(random_token(&Counting, 3), "AAEC");
        assert_eq!(random_hex(&Counting, 2), "0001");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn digests_are_keyed_and_domain_separated() {
        let a = SecretHasher::new([1; 32]);
        let b = SecretHasher::new([2; 32]);
        assert_ne!(a.digest("code", "x"), b.digest("code", "x"));
        assert_ne!(a.digest("code", "x"), a.digest("refresh", "x"));
        assert_eq!(a.digest("code", "x"), a.digest("code", "x"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn a_difference_anywhere_is_seen() {
        for len in [0, 1, 7, 8, 9, 16, 63, 1001] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            assert!(constant_time_eq(&a, &a.clone()), "{len}");
            for at in 0..len {
                for bit in [0x01, 0x80] {
                    let mut b = a.clone();
                    b[at] ^= bit;
                    assert!(!constant_time_eq(&a, &b), "{len} {at} {bit}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!constant_time_eq(&a, &longer), "{len}");
        }
    }
}
