//! `ScopeSet::parse` on arbitrary scope lists.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wsoauth_types::{Scope, ScopeSet, UnknownScope};

fuzz_target!(|data: &[u8]| {
    let Ok(list) = std::str::from_utf8(data) else {
        return;
    };
    match ScopeSet::parse(list) {
        Ok(set) => {
            assert_eq!(ScopeSet::parse(&set.to_space_separated()), Ok(set));
            assert_eq!(ScopeSet::parse(&set.to_comma_separated()), Ok(set));
            let named: ScopeSet = list
                .split([' ', ',', '\t'])
                .filter(|item| !item.is_empty())
                .map(|item| item.parse::<Scope>().expect("every item of an accepted list is a scope"))
                .collect();
            assert_eq!(named, set);
        }
        Err(UnknownScope(name)) => {
            assert!(!name.is_empty());
            assert!(name.parse::<Scope>().is_err());
            assert!(list.contains(&name));
        }
    }
});
