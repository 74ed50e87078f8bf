//! The 17 Worksection OAuth 2.0 scopes and scope sets.

use std::fmt;
use std::str::FromStr;

/// One Worksection OAuth 2.0 scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    ProjectsRead,
    ProjectsWrite,
    TasksRead,
    TasksWrite,
    CostsRead,
    CostsWrite,
    TagsRead,
    TagsWrite,
    CommentsRead,
    CommentsWrite,
    FilesRead,
    FilesWrite,
    UsersRead,
    UsersWrite,
    ContactsRead,
    ContactsWrite,
    Administrative,
}

impl Scope {
    /// Every scope, in the order Worksection's documentation lists them.
    pub const ALL: [Scope; 17] = [
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
        Scope::TasksRead,
        Scope::TasksWrite,
        Scope::CostsRead,
        Scope::CostsWrite,
        Scope::TagsRead,
        Scope::TagsWrite,
        Scope::CommentsRead,
        Scope::CommentsWrite,
        Scope::FilesRead,
        Scope::FilesWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::Administrative,
    ];

    /// The wire name, e.g. `tasks_read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProjectsRead => "projects_read",
            Scope::ProjectsWrite => "projects_write",
            Scope::TasksRead => "tasks_read",
            Scope::TasksWrite => "tasks_write",
            Scope::CostsRead => "costs_read",
            Scope::CostsWrite => "costs_write",
            Scope::TagsRead => "tags_read",
            Scope::TagsWrite => "tags_write",
            Scope::CommentsRead => "comments_read",
            Scope::CommentsWrite => "comments_write",
            Scope::FilesRead => "files_read",
            Scope::FilesWrite => "files_write",
            Scope::UsersRead => "users_read",
            Scope::UsersWrite => "users_write",
            Scope::ContactsRead => "contacts_read",
            Scope::ContactsWrite => "contacts_write",
            Scope::Administrative => "administrative",
        }
    }

    /// What the scope lets an app do, in plain words for the consent page.
    pub fn description(self) -> &'static str {
        match self {
            Scope::ProjectsRead => "See your projects and project folders",
            Scope::ProjectsWrite => "Create, change, close and reopen projects",
            Scope::TasksRead => "See tasks and subtasks",
            Scope::TasksWrite => "Create, change, complete and reopen tasks",
            Scope::CostsRead => "See time and money costs and timers",
            Scope::CostsWrite => "Record and change costs, run timers",
            Scope::TagsRead => "See statuses, labels and tag groups",
            Scope::TagsWrite => "Create and assign statuses and labels",
            Scope::CommentsRead => "Read comments",
            Scope::CommentsWrite => "Post comments",
            Scope::FilesRead => "See and download files",
            Scope::FilesWrite => "Upload files",
            Scope::UsersRead => "See your profile and the account's members and teams",
            Scope::UsersWrite => "Invite members and create teams",
            Scope::ContactsRead => "See contacts and contact folders",
            Scope::ContactsWrite => "Create contacts and contact folders",
            Scope::Administrative => "Manage webhooks and other account administration",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of the 17.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scope: {}", self.0)
    }
}

impl std::error::Error for UnknownScope {}

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// A set of scopes, kept as a bit set; iterates and prints in the documented order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u32);

impl ScopeSet {
    pub const fn empty() -> Self {
        ScopeSet(0)
    }

    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    /// Parses a scope list separated by spaces and/or commas (the forms `+`, `%20` and `%2C` arrive here already
    /// decoded). Empty items are skipped; an unknown name is an error.
    pub fn parse(list: &str) -> Result<Self, UnknownScope> {
        list.split([' ', ',', '\t']).filter(|item| !item.is_empty()).map(Scope::from_str).collect()
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |scope| self.contains(*scope))
    }

    /// Space-separated, as RFC 6749 writes scope lists.
    pub fn to_space_separated(self) -> String {
        self.join(" ")
    }

    /// Comma-separated, as the Worksection clients write scope lists.
    pub fn to_comma_separated(self) -> String {
        self.join(",")
    }

    fn join(self, separator: &str) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(separator)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = ScopeSet::empty();
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_space_separated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spaces_commas_and_mixed() {
        let set = ScopeSet::parse("tasks_read,projects_read users_read, ,").unwrap();
        assert_eq!(set.to_comma_separated(), "projects_read,tasks_read,users_read");
        assert!(ScopeSet::parse("").unwrap().is_empty());
        assert_eq!(ScopeSet::parse("tasks_read all"), Err(UnknownScope("all".into())));
    }

    #[test]
    fn all_seventeen_round_trip() {
        assert_eq!(ScopeSet::all().iter().count(), 17);
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
    }

    #[test]
    fn subset() {
        let small = ScopeSet::parse("tasks_read").unwrap();
        let big = ScopeSet::parse("tasks_read tasks_write").unwrap();
        assert!(small.is_subset_of(big));
        assert!(!big.is_subset_of(small));
    }
}
