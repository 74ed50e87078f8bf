//! Redirect URIs: what may be registered (RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1) and how a response is
//! added to one. Matching is exact, byte for byte: the caller compares strings.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RedirectUriError {
    #[error("the redirect URI is empty")]
    Empty,
    #[error("the redirect URI is longer than 2000 characters")]
    TooLong,
    #[error("the redirect URI contains spaces, control characters or characters that must be percent-encoded")]
    BadCharacters,
    #[error("the redirect URI must be absolute: https://host/path")]
    NotAbsolute,
    #[error("the redirect URI must use https (plain http only for 127.0.0.1, [::1] or localhost)")]
    InsecureScheme,
    #[error("the redirect URI must not contain a fragment (#)")]
    Fragment,
    #[error("the redirect URI must not contain user credentials")]
    UserInfo,
    #[error("the redirect URI has no host or a malformed host or port")]
    BadHost,
}

/// Checks that `uri` may be registered as a redirect URI.
pub fn validate_redirect_uri(uri: &str) -> Result<(), RedirectUriError> {
    if uri.is_empty() {
        return Err(RedirectUriError::Empty);
    }
    if uri.len() > 2000 {
        return Err(RedirectUriError::TooLong);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)) {
        return Err(RedirectUriError::BadCharacters);
    }
    let (scheme, rest) = uri.split_once("://").ok_or(RedirectUriError::NotAbsolute)?;
    let scheme = scheme.to_ascii_lowercase();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err(RedirectUriError::UserInfo);
    }
    let host = split_host(authority)?;
    match scheme.as_str() {
        "https" => Ok(()),
        "http" if is_loopback(host) => Ok(()),
        "http" => Err(RedirectUriError::InsecureScheme),
        _ if scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) => {
            Err(RedirectUriError::InsecureScheme)
        }
        _ => Err(RedirectUriError::NotAbsolute),
    }
}

/// Splits `host[:port]` (host may be a bracketed IPv6 literal) and checks both parts.
fn split_host(authority: &str) -> Result<&str, RedirectUriError> {
    let (host, port) = if let Some(after_bracket) = authority.strip_prefix('[') {
        let close = after_bracket.find(']').ok_or(RedirectUriError::BadHost)?;
        let host = &authority[..close + 2];
        let port = after_bracket[close + 1..].strip_prefix(':');
        if port.is_none() && close + 2 != authority.len() {
            return Err(RedirectUriError::BadHost);
        }
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') || host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    if host_ok && port_ok { Ok(host) } else { Err(RedirectUriError::BadHost) }
}

/// `localhost`, `[::1]` or an IPv4 literal in 127.0.0.0/8 (a name such as `127.evil.co.uk` is not one).
fn is_loopback(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost" || host == "[::1]" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Adds `params` to the query of a registered redirect URI, keeping the query it already has (RFC 6749 §3.1.2).
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(uri.len() + 128);
    out.push_str(uri);
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        serializer.append_pair(key, value);
    }
    let encoded = serializer.finish();
    if encoded.is_empty() {
        return out;
    }
    match uri.split_once('?') {
        None => out.push('?'),
        // An empty query, or one ending with `&`, takes the parameters as they are; a `?` at the end of a
        // non-empty query is part of its last parameter, so `&` still separates them.
        Some((_, query)) if query.is_empty() || query.ends_with('&') => {}
        Some(_) => out.push('&'),
    }
    out.push_str(&encoded);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for uri in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "https://app.example.com",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
            "HTTPS://Example.com/Path",
        ] {
            assert_eq!(validate_redirect_uri(uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn refused() {
        use RedirectUriError::*;
        let cases = [
            ("", Empty),
            ("http://example.com/cb", InsecureScheme),
            ("http://127.0.0.1.evil.com/cb", InsecureScheme),
            // names shaped like loopback addresses are not loopback (found by the property tests)
            ("http://127.evil.co.uk/cb", InsecureScheme),
            ("http://127.0.300.0/cb", InsecureScheme),
            ("http://127.0.0.01/cb", InsecureScheme),
            ("com.example.app:/cb", NotAbsolute),
            ("ftp://example.com/cb", InsecureScheme),
            ("/relative", NotAbsolute),
            ("https://example.com/cb#frag", Fragment),
            ("https://user:pw@example.com/cb", UserInfo),
            ("https:///cb", BadHost),
            ("https://example.com:99999/cb", BadHost),
            ("https://exa mple.com/cb", BadCharacters),
            ("https://[::1/cb", BadHost),
        ];
        for (uri, error) in cases {
            assert_eq!(validate_redirect_uri(uri), Err(error), "{uri}");
        }
    }

    #[test]
    fn appends_to_existing_query() {
        assert_eq!(
            append_query("https://a/cb", &[("code", "x y"), ("state", "s&")]),
            "https://a/cb?code=x+y&state=s%26"
        );
        assert_eq!(append_query("https://a/cb?v=1", &[("code", "c")]), "https://a/cb?v=1&code=c");
        assert_eq!(append_query("https://a/cb?", &[("code", "c")]), "https://a/cb?code=c");
        assert_eq!(append_query("https://a/cb?v=1&", &[("code", "c")]), "https://a/cb?v=1&code=c");
        // a query that ends with `?` still gets its `&` (found by the property tests)
        assert_eq!(append_query("https://a/cb??", &[("code", "c")]), "https://a/cb??&code=c");
        assert_eq!(append_query("https://a/cb?x?", &[("code", "c")]), "https://a/cb?x?&code=c");
    }
}
