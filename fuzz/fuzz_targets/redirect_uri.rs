//! `validate_redirect_uri` and `append_query` on arbitrary URIs and response parameters.
//!
//! Input: the first line is the URI; each further line a `key=value` parameter to append (a line without `=`
//! is a key with an empty value).

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use wsoauth_domain::{append_query, validate_redirect_uri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let uri = lines.next().unwrap_or_default();
    let params: Vec<(&str, &str)> = lines.map(|line| line.split_once('=').unwrap_or((line, ""))).collect();

    if validate_redirect_uri(uri).is_ok() {
        assert!(!uri.contains('#'));
        assert!(uri.bytes().all(|b| b.is_ascii_graphic()));
        let (scheme, rest) = uri.split_once("://").expect("absolute");
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        assert!(!authority.is_empty() && !authority.contains('@'), "{uri}");
        match scheme.to_ascii_lowercase().as_str() {
            "https" => {}
            "http" => {
                let host = match authority.rsplit_once(':') {
                    Some((host, _)) if !authority.ends_with(']') => host,
                    _ => authority,
                }
                .to_ascii_lowercase();
                let loopback_ip = host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
                assert!(host == "localhost" || host == "[::1]" || loopback_ip, "plain http accepted: {uri}");
            }
            other => panic!("scheme {other} accepted: {uri}"),
        }
    }

    let out = append_query(uri, &params);
    assert!(out.starts_with(uri));
    if params.is_empty() {
        assert_eq!(out, uri);
    } else if !uri.contains('#') {
        let query = &out[out.find('?').expect("a query was added") + 1..];
        let parsed: Vec<(String, String)> =
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        assert!(parsed.len() >= params.len());
        let tail = &parsed[parsed.len() - params.len()..];
        for ((key, value), (want_key, want_value)) in tail.iter().zip(&params) {
            assert_eq!((key.as_str(), value.as_str()), (*want_key, *want_value), "{out}");
        }
    }
});
