//! `Params::parse` (the request-parameter intake) on an arbitrary query, Content-Type and body.
//!
//! Input: the first line is the Content-Type (empty: none), the second the query (`?a=1&b=2`; a line without
//! the leading `?` means no query), the rest the body.

#![no_main]

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use wsoauth_server::params::Params;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let content_type = parts.next().unwrap_or_default();
    let query_line = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();

    let mut headers = HeaderMap::new();
    if !content_type.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(content_type)
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let query = query_line.strip_prefix(b"?").map(String::from_utf8_lossy);

    let Ok(params) = Params::parse(query.as_deref(), &headers, body) else {
        return;
    };
    // The query comes first, in order: each of its keys starts with its query values.
    if let Some(query) = query.as_deref() {
        for (key, _) in form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| !k.is_empty()).take(50) {
            let expected: Vec<String> = form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.into_owned())
                .collect();
            let got: Vec<&str> = params.get_all(&key).take(expected.len()).collect();
            assert_eq!(got, expected, "query values of {key:?}");
            assert_eq!(params.get(&key), Some(expected[0].as_str()));
            match params.single(&key) {
                Ok(value) => assert_eq!(value, Some(expected[0].as_str())),
                Err(_) => assert!(params.get_all(&key).any(|v| v != expected[0])),
            }
        }
    }
});
