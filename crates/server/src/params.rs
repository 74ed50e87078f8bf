//! One intake for request parameters, merged from the query string, a form body and a JSON body, as the
//! Worksection clients send them (GET or POST, any of the three, `Content-Length: 0` JSON meaning none).

use axum::http::{HeaderMap, header};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParamError {
    #[error("the request body is not valid JSON")]
    BadJson,
    #[error("a JSON body must be an object")]
    JsonNotObject,
    #[error("the request body is not valid UTF-8 form data")]
    BadForm,
    #[error("parameter {0} is sent more than once with different values")]
    Repeated(String),
    #[error("too many parameters")]
    TooMany,
}

const MAX_PARAMS: usize = 1000;

/// Request parameters in arrival order: the query string first, then the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses the query string and the body (by its `Content-Type`; a body without one is read as a form).
    pub fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, ParamError> {
        let mut params = Params::default();
        if let Some(query) = query {
            params.extend_form(query.as_bytes())?;
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if blank {
            return Ok(params);
        }
        if content_type == "application/json" || content_type.ends_with("+json") {
            params.extend_json(body)?;
        } else if content_type.is_empty() || content_type == "application/x-www-form-urlencoded" {
            params.extend_form(body)?;
        } else if content_type == "text/plain" && body.first() == Some(&b'{') {
            params.extend_json(body)?;
        }
        Ok(params)
    }

    fn push(&mut self, key: String, value: String) -> Result<(), ParamError> {
        if self.0.len() >= MAX_PARAMS {
            return Err(ParamError::TooMany);
        }
        self.0.push((key, value));
        Ok(())
    }

    fn extend_form(&mut self, bytes: &[u8]) -> Result<(), ParamError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(ParamError::BadForm);
        }
        for (key, value) in form_urlencoded::parse(bytes) {
            if !key.is_empty() {
                self.push(key.into_owned(), value.into_owned())?;
            }
        }
        Ok(())
    }

    fn extend_json(&mut self, bytes: &[u8]) -> Result<(), ParamError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| ParamError::BadJson)?;
        let Value::Object(map) = value else {
            return Err(ParamError::JsonNotObject);
        };
        for (key, value) in map {
            self.push_json(key, value)?;
        }
        Ok(())
    }

    /// Scalars become text; arrays become comma lists (their items also kept as `key[]`); objects become
    /// dotted keys (`options.allow_close`); `null` is absent.
    fn push_json(&mut self, key: String, value: Value) -> Result<(), ParamError> {
        match value {
            Value::Null => Ok(()),
            Value::String(s) => self.push(key, s),
            Value::Bool(b) => self.push(key, if b { "1".into() } else { "0".into() }),
            Value::Number(n) => self.push(key, n.to_string()),
            Value::Array(items) => {
                let texts: Vec<String> = items.into_iter().filter_map(scalar_text).collect();
                for text in &texts {
                    self.push(format!("{key}[]"), text.clone())?;
                }
                self.push(key, texts.join(","))
            }
            Value::Object(map) => {
                for (sub, value) in map {
                    self.push_json(format!("{key}.{sub}"), value)?;
                }
                Ok(())
            }
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a, 'k>(&'a self, key: &'k str) -> impl Iterator<Item = &'a str> + use<'a, 'k> {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, refusing differing repeats (RFC 6749 §3.1: parameters must not be included more than
    /// once; the same value twice, as query and body, is tolerated).
    pub fn single(&self, key: &str) -> Result<Option<&str>, ParamError> {
        let mut values = self.get_all(key);
        let first = values.next();
        if let Some(first) = first
            && values.any(|other| other != first)
        {
            return Err(ParamError::Repeated(key.to_owned()));
        }
        Ok(first)
    }

    /// Like `single`, with an empty value counted as absent.
    pub fn non_empty(&self, key: &str) -> Result<Option<&str>, ParamError> {
        Ok(self.single(key)?.filter(|v| !v.is_empty()))
    }
}

fn scalar_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if b { "1".into() } else { "0".into() }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn merges_query_form_and_json() {
        let p = Params::parse(
            Some("action=me&x=1"),
            &headers("application/x-www-form-urlencoded; charset=UTF-8"),
            b"y=2+3",
        )
        .unwrap();
        assert_eq!((p.get("action"), p.get("y")), (Some("me"), Some("2 3")));
        let p = Params::parse(
            None,
            &headers("application/json"),
            br#"{"action":"get_tasks","ids":[1," 2"],"o":{"a":true},"n":null}"#,
        )
        .unwrap();
        assert_eq!(p.get("action"), Some("get_tasks"));
        assert_eq!(p.get("ids"), Some("1,2"));
        assert_eq!(p.get_all("ids[]").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(p.get("o.a"), Some("1"));
        assert_eq!(p.get("n"), None);
    }

    #[test]
    fn empty_json_body_is_no_params() {
        let p = Params::parse(Some("action=me"), &headers("application/json"), b"").unwrap();
        assert_eq!(p.get("action"), Some("me"));
    }

    #[test]
    fn refusals() {
        assert_eq!(Params::parse(None, &headers("application/json"), b"{nope"), Err(ParamError::BadJson));
        assert_eq!(Params::parse(None, &headers("application/json"), b"[1]"), Err(ParamError::JsonNotObject));
        let p = Params::parse(Some("a=1&a=2&b=1&b=1"), &HeaderMap::new(), b"").unwrap();
        assert_eq!(p.single("a"), Err(ParamError::Repeated("a".into())));
        assert_eq!(p.single("b"), Ok(Some("1")));
    }
}
