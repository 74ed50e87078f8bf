//! Property tests of the pure rules: Basic decoding, redirect URIs, PKCE, dates, lifetimes and the
//! `search_tasks` filter parser. Each property states what must hold for every input, not for a few examples.

use std::net::Ipv4Addr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use wsoauth_domain::basic::{decode_basic, is_basic};
use wsoauth_domain::dates::{civil_from_days, date_start_unix, days_from_civil, format_date, parse_date};
use wsoauth_domain::duration::parse_seconds;
use wsoauth_domain::filter::{self, Condition, Expr, MAX_DEPTH, MAX_INT, MAX_LEN};
use wsoauth_domain::pkce::{challenge_of, verify, well_formed};
use wsoauth_domain::{RedirectUriError, append_query, validate_redirect_uri};

/// 256 cases a property (`PROPTEST_CASES` raises it); failures are reported with their shrunk input but not
/// written to files next to the sources (regressions become plain unit tests instead).
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// Form-urlencoding of one value, as the clients that encode their credentials write it.
fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn basic_header(text: &str) -> String {
    format!("Basic {}", STANDARD.encode(text))
}

/// Any text, weighted towards the characters that matter to the parsers under test.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,40}", "[a-z0-9:/?#@&=%+.\\[\\]_~ -]{0,60}",]
}

// ---- Basic ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn basic_round_trips_raw(id in "[^:\\x00]{0,40}", secret in "\\PC{0,60}") {
        let credentials = decode_basic(&basic_header(&format!("{id}:{secret}"))).expect("decodes");
        prop_assert_eq!(credentials.raw, (id, secret));
    }

    #[test]
    fn basic_round_trips_form_encoded(id in "\\PC{0,40}", secret in "\\PC{0,60}") {
        let header = basic_header(&format!("{}:{}", form_encode(&id), form_encode(&secret)));
        let credentials = decode_basic(&header).expect("decodes");
        prop_assert_eq!(credentials.decoded, (id, secret));
    }

    #[test]
    fn basic_scheme_in_any_case_and_spacing(
        id in "[A-Za-z0-9_-]{1,20}",
        secret in "[A-Za-z0-9_-]{1,20}",
        upper in proptest::collection::vec(any::<bool>(), 5),
        lead in " {0,3}",
        trail in " {0,3}",
    ) {
        let scheme: String = "basic"
            .chars()
            .zip(&upper)
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        let header = format!("{lead}{scheme} {}{trail}", STANDARD.encode(format!("{id}:{secret}")));
        prop_assert!(is_basic(&header));
        let credentials = decode_basic(&header).expect("decodes");
        prop_assert_eq!(credentials.raw, (id, secret));
    }

    #[test]
    fn basic_never_panics(header in tricky_text()) {
        if let Some(credentials) = decode_basic(&header) {
            prop_assert!(!credentials.raw.0.contains(':'));
            prop_assert!(is_basic(&header));
        }
    }

    #[test]
    fn basic_never_panics_on_any_payload(payload in proptest::collection::vec(any::<u8>(), 0..80)) {
        let header = format!("Basic {}", STANDARD.encode(&payload));
        let decoded = decode_basic(&header);
        let text = String::from_utf8(payload);
        prop_assert_eq!(decoded.is_some(), text.is_ok_and(|t| t.contains(':')));
    }
}

// ---- Redirect URIs ----

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}",
        Just("localhost".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("[2001:db8::1]".to_owned()),
        "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        // names that only look like loopback addresses
        "127\\.[a-z0-9]{1,5}\\.[a-z]{1,5}\\.[a-z]{2,3}",
        "localhost\\.[a-z]{1,5}",
    ]
}

/// URIs shaped like real redirect URIs, with the odd part (scheme, userinfo, port, fragment) mixed in.
fn uri_like() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("https"), Just("http"), Just("HTTPS"), Just("Http"), Just("ftp"), Just("com.example.app")],
        prop_oneof![Just("://"), Just(":/"), Just(":")],
        proptest::option::of("[a-z:]{0,8}@"),
        host(),
        proptest::option::of(":[0-9]{0,6}"),
        "(/[A-Za-z0-9._~%-]{0,10}){0,3}",
        proptest::option::of("\\?[A-Za-z0-9=&%+._-]{0,20}"),
        proptest::option::of("#[a-z]{0,5}"),
    )
        .prop_map(|(scheme, sep, userinfo, host, port, path, query, fragment)| {
            format!(
                "{scheme}{sep}{}{host}{}{path}{}{}",
                userinfo.unwrap_or_default(),
                port.unwrap_or_default(),
                query.unwrap_or_default(),
                fragment.unwrap_or_default()
            )
        })
}

fn any_uri() -> impl Strategy<Value = String> {
    prop_oneof![uri_like(), tricky_text()]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((tricky_text(), tricky_text()), 0..5)
}

/// The authority of an absolute URI (`host[:port]`, with any userinfo).
fn authority(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or("", |(_, rest)| rest);
    &rest[..rest.find(['/', '?']).unwrap_or(rest.len())]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accepted_redirect_uris_are_safe(uri in any_uri()) {
        if validate_redirect_uri(&uri).is_ok() {
            prop_assert!(!uri.contains('#'), "{uri}");
            prop_assert!(uri.len() <= 2000);
            prop_assert!(uri.bytes().all(|b| b.is_ascii_graphic()), "{uri}");
            let authority = authority(&uri);
            prop_assert!(!authority.contains('@'), "{uri}");
            prop_assert!(!authority.is_empty(), "{uri}");
            let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
            match scheme.as_deref() {
                Some("https") => {}
                Some("http") => {
                    let host = authority.rsplit_once(':').filter(|_| !authority.ends_with(']')).map_or(authority, |(h, _)| h);
                    let host = host.to_ascii_lowercase();
                    let loopback_ip = host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
                    prop_assert!(
                        host == "localhost" || host == "[::1]" || loopback_ip,
                        "plain http to a non-loopback host accepted: {uri}"
                    );
                }
                other => prop_assert!(false, "scheme {other:?} accepted: {uri}"),
            }
        }
    }

    #[test]
    fn fragments_userinfo_and_plain_http_are_refused(
        host in "[a-z]{1,10}\\.(com|org|test)",
        path in "(/[a-z]{0,8}){0,2}",
        fragment in "[a-z]{0,5}",
        user in "[a-z]{0,5}(:[a-z]{0,5})?",
    ) {
        prop_assert_eq!(validate_redirect_uri(&format!("https://{host}{path}")), Ok(()));
        prop_assert_eq!(
            validate_redirect_uri(&format!("https://{host}{path}#{fragment}")),
            Err(RedirectUriError::Fragment)
        );
        prop_assert_eq!(
            validate_redirect_uri(&format!("https://{user}@{host}{path}")),
            Err(RedirectUriError::UserInfo)
        );
        prop_assert_eq!(
            validate_redirect_uri(&format!("http://{host}{path}")),
            Err(RedirectUriError::InsecureScheme)
        );
    }

    #[test]
    fn append_query_can_be_read_back(uri in any_uri(), params in params()) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = append_query(&uri, &pairs);
        prop_assert!(out.starts_with(&uri));
        if pairs.is_empty() {
            prop_assert_eq!(&out, &uri);
        }
        // Read the parameters back from a URI that may carry a query (no fragment, as registered URIs have).
        if !uri.contains('#') && !pairs.is_empty() {
            let query = &out[out.find('?').expect("a query was added") + 1..];
            let parsed: Vec<(String, String)> =
                form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            prop_assert!(parsed.len() >= pairs.len());
            let tail = &parsed[parsed.len() - pairs.len()..];
            prop_assert_eq!(tail, params.as_slice(), "{}", out);
        }
    }
}

// ---- PKCE ----

fn verifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~-]{43,128}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn challenge_verifies_its_verifier(v in verifier()) {
        prop_assert!(well_formed(&v));
        let challenge = challenge_of(&v);
        prop_assert!(well_formed(&challenge));
        prop_assert!(verify(&challenge, &v));
    }

    #[test]
    fn other_verifiers_do_not(v in verifier(), other in verifier()) {
        prop_assume!(v != other);
        prop_assert!(!verify(&challenge_of(&v), &other));
    }

    #[test]
    fn malformed_verifiers_never_verify(v in tricky_text()) {
        prop_assert_eq!(verify(&challenge_of(&v), &v), well_formed(&v));
    }
}

// ---- Dates ----

/// A valid calendar date in the accepted years.
fn date() -> impl Strategy<Value = (i64, u32, u32)> {
    (days_from_civil(1900, 1, 1)..=days_from_civil(2999, 12, 31)).prop_map(civil_from_days)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn civil_days_are_inverse(days in -100_000_000i64..100_000_000) {
        let (y, m, d) = civil_from_days(days);
        prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d));
        prop_assert_eq!(days_from_civil(y, m, d), days);
        let (ny, nm, nd) = civil_from_days(days + 1);
        prop_assert!((ny, nm, nd) > (y, m, d));
    }

    #[test]
    fn both_input_forms_round_trip((y, m, d) in date(), pad_day in any::<bool>(), pad_month in any::<bool>()) {
        let iso = format!("{y:04}-{m:02}-{d:02}");
        prop_assert_eq!(parse_date(&iso), Some(iso.clone()));
        let day = if pad_day { format!("{d:02}") } else { d.to_string() };
        let month = if pad_month { format!("{m:02}") } else { m.to_string() };
        prop_assert_eq!(parse_date(&format!("{day}.{month}.{y}")), Some(iso.clone()));
        prop_assert_eq!(parse_date(&format!("{y}-{month}-{day}")), Some(iso.clone()));
        let start = date_start_unix(&iso).expect("valid");
        prop_assert_eq!(format_date(start), iso.clone());
        prop_assert_eq!(format_date(start + 86_399), iso);
    }

    #[test]
    fn impossible_dates_are_refused(y in 1900i64..3000, m in 0u32..100, d in 0u32..100) {
        let valid = (1..=12).contains(&m) && d >= 1 && civil_from_days(days_from_civil(y, m, d)) == (y, m, d);
        let iso = format!("{y:04}-{m:02}-{d:02}");
        prop_assert_eq!(parse_date(&iso).is_some(), valid, "{}", iso);
        prop_assert_eq!(parse_date(&format!("{d:02}.{m:02}.{y}")).is_some(), valid);
    }

    #[test]
    fn parse_date_never_panics_and_answers_iso(text in tricky_text()) {
        if let Some(date) = parse_date(&text) {
            prop_assert_eq!(parse_date(&date), Some(date.clone()));
            prop_assert_eq!(date.len(), 10);
        }
    }
}

// ---- Lifetimes ----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_multiply_their_unit(n in 1i64..=100_000, unit in prop_oneof![Just(""), Just("s"), Just("m"), Just("h"), Just("d")]) {
        let factor = match unit { "" | "s" => 1, "m" => 60, "h" => 3600, _ => 86_400 };
        let expected = n * factor;
        let parsed = parse_seconds(&format!(" {n}{unit} "));
        if expected <= 10 * 366 * 86_400 {
            prop_assert_eq!(parsed, Ok(expected));
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn durations_never_panic_and_stay_in_range(text in tricky_text()) {
        if let Ok(seconds) = parse_seconds(&text) {
            prop_assert!(seconds > 0 && seconds <= 10 * 366 * 86_400);
        }
    }
}

// ---- The search_tasks filter ----

fn filter_word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("id"),
        Just("project"),
        Just("parent"),
        Just("name"),
        Just("dateadd"),
        Just("date_end"),
        Just("and"),
        Just("or"),
        Just("in"),
        Just("has"),
        Just("AND"),
        Just("("),
        Just(")"),
        Just(","),
        Just("="),
        Just("!="),
        Just("! ="),
        Just("<>"),
        Just(">="),
        Just("<"),
        Just("'"),
        Just("\\"),
        Just("'01.05.2021'"),
        Just("'2021-13-01'"),
        Just("'It''s'"),
        Just("'\\''"),
        Just("12"),
        Just("9007199254740993"),
        Just("1.5"),
        Just("é"),
        Just("\u{1F600}"),
        Just(";"),
    ]
    .prop_map(str::to_owned)
}

/// Filters made of the grammar's own tokens, mostly malformed, some valid.
fn filter_text() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(filter_word(), 0..40).prop_map(|words| words.join(" ")),
        proptest::collection::vec(filter_word(), 0..40).prop_map(|words| words.concat()),
        tricky_text(),
    ]
}

/// A valid filter with a known parenthesis depth.
fn valid_filter() -> impl Strategy<Value = (String, usize)> {
    let leaf = prop_oneof![
        (1i64..MAX_INT).prop_map(|n| format!("id = {n}")),
        proptest::collection::vec(1i64..1000, 1..5)
            .prop_map(|ns| format!("project in ({})", ns.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))),
        "[a-zA-Z ]{0,10}".prop_map(|s| format!("name has '{s}'")),
        date().prop_map(|(y, m, d)| format!("dateend >= '{d:02}.{m:02}.{y}'")),
    ]
    .prop_map(|text| (text, 0usize));
    leaf.prop_recursive(6, 24, 3, |inner| {
        (proptest::collection::vec(inner, 2..4), prop_oneof![Just(" and "), Just(" or ")], any::<bool>()).prop_map(
            |(items, op, paren)| {
                let depth = items.iter().map(|(_, d)| *d).max().unwrap_or(0);
                let joined = items.into_iter().map(|(text, _)| text).collect::<Vec<_>>().join(op);
                if paren { (format!("({joined})"), depth + 1) } else { (joined, depth) }
            },
        )
    })
}

/// The depth of a parsed tree (a condition is 1).
fn tree_depth(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => 1 + items.iter().map(tree_depth).max().unwrap_or(0),
        Expr::Cond(_) => 1,
    }
}

fn check_tree(expr: &Expr) -> Result<(), TestCaseError> {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            prop_assert!(items.len() >= 2);
            for item in items {
                check_tree(item)?;
            }
        }
        Expr::Cond(Condition::Int { values, .. }) => {
            prop_assert!(!values.is_empty());
            prop_assert!(values.iter().all(|n| (0..=MAX_INT).contains(n)));
        }
        Expr::Cond(Condition::Date { date, .. }) => {
            prop_assert_eq!(parse_date(date), Some(date.clone()));
        }
        Expr::Cond(Condition::Name { .. }) => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn filter_never_panics(text in filter_text()) {
        match filter::parse(&text) {
            Ok(expr) => {
                check_tree(&expr)?;
                // Each level of the tree past the top needs a pair of parentheses, or an and/or inside one.
                prop_assert!(tree_depth(&expr) <= 2 * (MAX_DEPTH + 1) + 1);
            }
            Err(error) => {
                prop_assert!(error.at <= text.len().max(MAX_LEN), "{error} for {text:?}");
                prop_assert!(error.to_string().starts_with("filter: "));
            }
        }
    }

    #[test]
    fn valid_filters_parse((text, depth) in valid_filter()) {
        prop_assume!(text.len() <= MAX_LEN && depth <= MAX_DEPTH);
        let expr = filter::parse(&text);
        prop_assert!(expr.is_ok(), "{text}: {expr:?}");
        check_tree(&expr.unwrap())?;
    }

    #[test]
    fn depth_limit_holds(depth in 0usize..80, spaces in " {0,2}") {
        let text = format!("{}id = 1{}", format!("({spaces}").repeat(depth), ")".repeat(depth));
        let parsed = filter::parse(&text);
        if depth <= MAX_DEPTH {
            prop_assert!(parsed.is_ok(), "{depth}: {parsed:?}");
        } else {
            prop_assert!(parsed.unwrap_err().message.contains("deeper than"));
        }
    }

    #[test]
    fn size_limit_holds(extra in 1usize..2000, fill in "[ (a-z'=]") {
        let text = fill.repeat(MAX_LEN + extra);
        let error = filter::parse(&text).unwrap_err();
        prop_assert!(error.message.contains("longer than"));
    }
}
