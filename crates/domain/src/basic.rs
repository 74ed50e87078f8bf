//! HTTP Basic client credentials (RFC 6749 §2.3.1), as real clients send them: some form-urlencode the id and
//! secret before joining them with `:`, others send them raw.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Client credentials from an `Authorization: Basic` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The id and secret exactly as sent.
    pub raw: (String, String),
    /// The id and secret after form-urlencoded decoding (`+` is a space, `%XX` a byte).
    pub decoded: (String, String),
}

/// Decodes the value of an `Authorization` header when it uses the Basic scheme (in any letter case).
/// `None` when the scheme is not Basic or the value is malformed.
pub fn decode_basic(header: &str) -> Option<BasicCredentials> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some(BasicCredentials { raw: (id.to_owned(), secret.to_owned()), decoded: (decode(id), decode(secret)) })
}

/// Whether a header value uses the Basic scheme at all (even if malformed).
pub fn is_basic(header: &str) -> bool {
    header.trim_start().get(..6).is_some_and(|prefix| prefix.eq_ignore_ascii_case("basic "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> String {
        format!("Basic {}", STANDARD.encode(text))
    }

    #[test]
    fn raw_and_encoded_forms() {
        let raw = decode_basic(&header("cli ent:s3cr+t/=:x%")).unwrap();
        assert_eq!(raw.raw, ("cli ent".into(), "s3cr+t/=:x%".into()));
        let encoded = decode_basic(&header("cli+ent:s3cr%2Bt%2F%3D%3Ax%25")).unwrap();
        assert_eq!(encoded.decoded, ("cli ent".into(), "s3cr+t/=:x%".into()));
    }

    #[test]
    fn scheme_case_and_garbage() {
        assert!(decode_basic(&header("a:b").replace("Basic", "bAsIc")).is_some());
        assert!(decode_basic("Bearer abc").is_none());
        assert!(decode_basic("Basic !!!").is_none());
        assert!(decode_basic(&header("no-colon")).is_none());
        assert!(is_basic("basic xyz"));
        assert!(!is_basic("Bearer xyz"));
    }
}
