//! The `search_tasks` filter parser on arbitrary text: never panics, and its limits hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsoauth_domain::dates::parse_date;
use wsoauth_domain::filter::{self, Condition, Expr, MAX_DEPTH, MAX_INT, MAX_LEN};

/// The depth of the tree; checks each node on the way.
fn depth(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            assert!(items.len() >= 2);
            1 + items.iter().map(depth).max().unwrap_or(0)
        }
        Expr::Cond(Condition::Int { values, .. }) => {
            assert!(!values.is_empty() && values.iter().all(|n| (0..=MAX_INT).contains(n)));
            1
        }
        Expr::Cond(Condition::Date { date, .. }) => {
            assert_eq!(parse_date(date).as_deref(), Some(date.as_str()));
            1
        }
        Expr::Cond(Condition::Name { .. }) => 1,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match filter::parse(text) {
        Ok(expr) => {
            assert!(text.len() <= MAX_LEN);
            // or, and, then a parenthesis for each further level
            assert!(depth(&expr) <= 2 * (MAX_DEPTH + 1) + 1);
        }
        Err(error) => {
            assert!(error.at <= text.len().max(MAX_LEN), "{error}");
            assert!(error.to_string().starts_with("filter: "));
            if text.len() > MAX_LEN {
                assert!(error.message.contains("longer than"));
            }
        }
    }
});
