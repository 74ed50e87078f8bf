//! Property tests of scope lists: any mix of the 17 names and separators parses to the same set, printing and
//! parsing again round-trips, and anything else is refused.

use proptest::prelude::*;
use wsoauth_types::{Scope, ScopeSet, UnknownScope};

/// 256 cases a property (`PROPTEST_CASES` raises it); failures are not written to files next to the sources.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

fn scope() -> impl Strategy<Value = Scope> {
    proptest::sample::select(Scope::ALL.to_vec())
}

/// A run of separators: spaces, commas, tabs (at least one).
fn separator() -> impl Strategy<Value = String> {
    "[ ,\t]{1,4}"
}

/// A list of scope names (repeats allowed) joined by arbitrary separators, with separators around it too.
fn scope_list() -> impl Strategy<Value = (Vec<Scope>, String)> {
    proptest::collection::vec((scope(), separator()), 0..30).prop_flat_map(|items| {
        ("[ ,\t]{0,3}", Just(items)).prop_map(|(lead, items)| {
            let text: String = items.iter().map(|(scope, sep)| format!("{}{sep}", scope.as_str())).collect();
            (items.into_iter().map(|(scope, _)| scope).collect(), format!("{lead}{text}"))
        })
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_mix_of_separators_parses_to_the_set((scopes, text) in scope_list()) {
        let expected: ScopeSet = scopes.iter().copied().collect();
        prop_assert_eq!(ScopeSet::parse(&text), Ok(expected));
        for scope in Scope::ALL {
            prop_assert_eq!(expected.contains(scope), scopes.contains(&scope));
        }
    }

    #[test]
    fn order_does_not_matter((scopes, _) in scope_list(), seed in any::<u64>()) {
        let mut shuffled = scopes.clone();
        // a cheap deterministic shuffle
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let join = |list: &[Scope]| list.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        prop_assert_eq!(ScopeSet::parse(&join(&scopes)), ScopeSet::parse(&join(&shuffled)));
    }

    #[test]
    fn printing_then_parsing_round_trips(bits in 0u32..(1 << 17)) {
        let set: ScopeSet = Scope::ALL.into_iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, s)| s).collect();
        prop_assert_eq!(set.iter().count(), bits.count_ones() as usize);
        prop_assert_eq!(ScopeSet::parse(&set.to_space_separated()), Ok(set));
        prop_assert_eq!(ScopeSet::parse(&set.to_comma_separated()), Ok(set));
        prop_assert_eq!(ScopeSet::parse(&set.to_string()), Ok(set));
        prop_assert!(set.is_subset_of(ScopeSet::all()));
        prop_assert_eq!(set.is_empty(), bits == 0);
    }

    #[test]
    fn unknown_names_are_refused((_, text) in scope_list(), name in "[A-Za-z_.:+%0-9-]{1,20}", at_end in any::<bool>()) {
        prop_assume!(name.parse::<Scope>().is_err());
        let list = if at_end { format!("{text} {name}") } else { format!("{name},{text}") };
        prop_assert_eq!(ScopeSet::parse(&list), Err(UnknownScope(name)));
    }

    #[test]
    fn names_are_case_sensitive(scope in scope()) {
        let upper = scope.as_str().to_ascii_uppercase();
        prop_assert_eq!(ScopeSet::parse(&upper), Err(UnknownScope(upper.clone())));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        match ScopeSet::parse(&text) {
            Ok(set) => prop_assert_eq!(ScopeSet::parse(&set.to_space_separated()), Ok(set)),
            Err(UnknownScope(name)) => {
                prop_assert!(!name.is_empty());
                prop_assert!(!name.contains([' ', ',', '\t']));
                prop_assert!(name.parse::<Scope>().is_err());
                prop_assert!(text.contains(&name));
            }
        }
    }
}
