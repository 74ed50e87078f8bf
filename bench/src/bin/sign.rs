//! The token endpoints' ceiling: RS256 signatures per second on one core, with the server's own kept key path
//! (`aws_lc_rs::rsa::KeyPair::from_pkcs8` once, then `KeyPair::sign(&RSA_PKCS1_SHA256, ..)` per token, as
//! `crates/server/src/jwt.rs` does), over the signing input of a real access token.
//!
//! Usage: `sign KEY.der TOKEN SECONDS` — KEY.der is the server's PKCS#8 signing key (from `signing_keys`), TOKEN
//! an access token it issued. Checks first that signing the token's `header.payload` reproduces its signature
//! byte for byte (RSASSA-PKCS1-v1_5 is deterministic), so the loop signs exactly what the server signs. Then
//! signs on this one thread for SECONDS and prints one JSON line:
//! `{"sign_per_s":..,"verify_per_s":..,"sign_us":..,"signatures":..,"sign_us_all_cores":..}`. Verification
//! (`ParsedPublicKey`, as the bearer check does) is measured for a quarter of the time, for reference; so is
//! signing on every core at once with the one key (`sign_us_all_cores`: the CPU time of a signature then), the way
//! a loaded server signs: on these shared virtual machines a core signs more slowly while the other signs too.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, key_path, token, seconds] = args.as_slice() else {
        eprintln!("usage: sign KEY.der TOKEN SECONDS");
        std::process::exit(2);
    };
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    let der = std::fs::read(key_path).expect("read the key");
    let pair = KeyPair::from_pkcs8(&der).expect("a PKCS#8 RSA key");
    let public = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()).expect("public key");
    let rng = SystemRandom::new();
    let (signed, signature_b64) = token.rsplit_once('.').expect("a JWT");
    let expected = B64.decode(signature_b64).expect("base64url signature");
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature).expect("sign");
    assert_eq!(signature, expected, "the key and the token do not belong together");

    // warm-up, then the timed loop: one signature per iteration, as the server makes one per token
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature).expect("sign");
    }
    let (count, elapsed) = repeat_for(Duration::from_secs_f64(seconds), || {
        pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature).expect("sign");
    });

    let limit = Duration::from_secs_f64(seconds / 4.0);
    let (verified, verify_elapsed) =
        repeat_for(limit, || public.verify_sig(signed.as_bytes(), &expected).expect("verify"));

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all_cores_us = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut signature = vec![0; pair.public_modulus_len()];
                    let (count, elapsed) = repeat_for(limit, || {
                        pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature).expect("sign");
                    });
                    elapsed * 1e6 / count as f64
                })
            })
            .collect();
        let each: Vec<f64> = threads.into_iter().map(|thread| thread.join().expect("a signing thread")).collect();
        each.iter().sum::<f64>() / each.len() as f64
    });
    println!(
        "{{\"sign_per_s\":{:.0},\"sign_us\":{:.1},\"signatures\":{count},\"verify_per_s\":{:.0},\
         \"sign_us_all_cores\":{all_cores_us:.1},\"cores\":{cores}}}",
        count as f64 / elapsed,
        elapsed * 1e6 / count as f64,
        verified as f64 / verify_elapsed
    );
}

/// Runs `op` over and over for `limit` (checking the clock every 16 runs): how many runs, in how many seconds.
fn repeat_for(limit: Duration, mut op: impl FnMut()) -> (u64, f64) {
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < limit {
        for _ in 0..16 {
            op();
        }
        count += 16;
    }
    (count, started.elapsed().as_secs_f64())
}
