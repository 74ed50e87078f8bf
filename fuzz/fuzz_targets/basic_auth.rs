//! `decode_basic` on arbitrary `Authorization` header values, and the round trip of arbitrary credentials.
//!
//! Input: a header value (`Basic dXNlcjpwYXNz`), which is also read as `id:secret` to encode and decode again.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use wsoauth_domain::basic::{decode_basic, is_basic};

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn header(text: &str) -> String {
    format!("Basic {}", STANDARD.encode(text))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(credentials) = decode_basic(text) {
        assert!(is_basic(text));
        assert!(!credentials.raw.0.contains(':'));
        let again = decode_basic(&header(&format!("{}:{}", credentials.raw.0, credentials.raw.1)));
        assert_eq!(again.as_ref(), Some(&credentials));
    }
    // The input as credentials: raw, then form-urlencoded, both come back.
    if let Some((id, secret)) = text.split_once(':') {
        let raw = decode_basic(&header(text)).expect("raw credentials decode");
        assert_eq!(raw.raw, (id.to_owned(), secret.to_owned()));
        let encoded = decode_basic(&header(&format!("{}:{}", form_encode(id), form_encode(secret))))
            .expect("encoded credentials decode");
        assert_eq!(encoded.decoded, (id.to_owned(), secret.to_owned()));
    }
});
