//! The one parameter-intake layer of the API: typed, trimmed, validated access to request parameters, answering
//! bad input with the documented Worksection errors. No action reads raw parameters itself.

use std::collections::BTreeSet;

use wsoauth_domain::dates::parse_date;
use wsoauth_domain::filter;
use wsoauth_storage::{PROJECT_OPTIONS, project_option_bit};
use wsoauth_types::{ApiError, ApiErrorCode};

use super::Failure;
use crate::params::Params;

/// The largest id, number or list an action accepts.
const MAX_ID: i64 = 1 << 53;
const MAX_LIST: usize = 1000;
pub const MAX_TEXT: usize = 100_000;
pub const MAX_NAME: usize = 500;

/// Typed parameters of one API call.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    params: &'a Params,
}

fn invalid(field: &str) -> Failure {
    ApiError::detailed(ApiErrorCode::FieldInvalid, field).into()
}

/// `/project/P/`, `/project/P/T/` or `/project/P/T/S/` into (P, the last task id).
pub fn parse_page(page: &str) -> Option<(i64, Option<i64>)> {
    let path = page.trim().trim_start_matches("https://").trim_start_matches("http://");
    let path = path.find("/project/").map(|at| &path[at + "/project/".len()..])?;
    let ids: Vec<&str> = path.trim_end_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let parse = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0 && *n < MAX_ID);
    match ids.as_slice() {
        [project] => Some((parse(project)?, None)),
        [project, task] | [project, _, task] => Some((parse(project)?, Some(parse(task)?))),
        _ => None,
    }
}

impl<'a> Input<'a> {
    pub fn new(params: &'a Params) -> Self {
        Input { params }
    }

    /// A trimmed value; empty counts as absent.
    pub fn optional(&self, name: &str) -> Option<&'a str> {
        self.params.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A trimmed value that must be present (`10 Field is required`, details = the name).
    pub fn required(&self, name: &str) -> Result<&'a str, Failure> {
        self.optional(name).ok_or_else(|| ApiError::detailed(ApiErrorCode::FieldRequired, name).into())
    }

    /// Text of at most `max` characters (`11 Field is invalid` beyond).
    pub fn text(&self, name: &str, max: usize) -> Result<Option<&'a str>, Failure> {
        match self.params.get(name) {
            Some(value) if value.chars().count() > max => Err(invalid(name)),
            Some(value) if !value.trim().is_empty() => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// A positive integer id (`None` when absent); `invalid` when present but not an id.
    pub fn id(&self, name: &str, invalid: ApiErrorCode) -> Result<Option<i64>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => match value.parse::<i64>() {
                Ok(id) if id > 0 && id < MAX_ID => Ok(Some(id)),
                _ => Err(ApiError::from(invalid).into()),
            },
        }
    }

    /// The project of the call: `id_project`, or the project of `page`. Required.
    pub fn project_id(&self) -> Result<i64, Failure> {
        if let Some(id) = self.id("id_project", ApiErrorCode::ProjectInvalid)? {
            return Ok(id);
        }
        match self.optional("page") {
            Some(page) => parse_page(page).map(|(project, _)| project).ok_or_else(|| ApiErrorCode::PageInvalid.into()),
            None => Err(ApiError::detailed(ApiErrorCode::FieldRequired, "id_project").into()),
        }
    }

    /// The task of the call: `id_task`, or the last task of `page`. Required.
    pub fn task_id(&self) -> Result<i64, Failure> {
        self.optional_task_id()?.ok_or_else(|| ApiError::detailed(ApiErrorCode::FieldRequired, "id_task").into())
    }

    pub fn optional_task_id(&self) -> Result<Option<i64>, Failure> {
        if let Some(id) = self.id("id_task", ApiErrorCode::TaskInvalid)? {
            return Ok(Some(id));
        }
        match self.optional("page") {
            Some(page) => match parse_page(page) {
                Some((_, Some(task))) => Ok(Some(task)),
                Some((_, None)) => Ok(None),
                None => Err(ApiErrorCode::PageInvalid.into()),
            },
            None => Ok(None),
        }
    }

    /// A comma list (or JSON array, or repeated `name[]`), items trimmed, empties dropped.
    pub fn list(&self, name: &str) -> Result<Vec<&'a str>, Failure> {
        let bracketed = format!("{name}[]");
        let mut items: Vec<&'a str> = self.params.get_all(name).flat_map(|v| v.split(',')).collect();
        if items.is_empty() {
            items = self.params.get_all(&bracketed).collect();
        }
        let items: Vec<&'a str> = items.into_iter().map(str::trim).filter(|v| !v.is_empty()).collect();
        if items.len() > MAX_LIST {
            return Err(invalid(name));
        }
        Ok(items)
    }

    /// Repeated `name[]` items (checklists), also `name` given as a JSON array; each trimmed.
    pub fn repeated(&self, name: &str) -> Result<Vec<&'a str>, Failure> {
        let bracketed = format!("{name}[]");
        let items: Vec<&'a str> = self.params.get_all(&bracketed).map(str::trim).filter(|v| !v.is_empty()).collect();
        if items.len() > MAX_LIST || items.iter().any(|item| item.chars().count() > MAX_NAME) {
            return Err(invalid(name));
        }
        Ok(items)
    }

    /// A list of email addresses, lowercased; a malformed one is `11 Invalid email` with it as details.
    pub fn emails(&self, name: &str) -> Result<Vec<String>, Failure> {
        self.list(name)?.into_iter().map(|email| valid_email(email).ok_or_else(|| bad_email(email))).collect()
    }

    /// One email address (a comma list is `11 Invalid email`).
    pub fn email(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(email) => valid_email(email).map(Some).ok_or_else(|| bad_email(email)),
        }
    }

    /// A date given as `DD.MM.YYYY` or `YYYY-MM-DD`, as `YYYY-MM-DD`.
    pub fn date(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => parse_date(value).map(Some).ok_or_else(|| invalid(name)),
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => match value.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(name)),
            },
        }
    }

    /// A non-negative number (estimates: `max_time`, `max_money`), decimal point or comma.
    pub fn amount(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => match value.replace(',', ".").parse::<f64>() {
                Ok(n) if n.is_finite() && (0.0..1e12).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(name)),
            },
        }
    }

    /// A `1`/`0` flag.
    pub fn flag(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some("1") | Some("true") => Ok(Some(true)),
            Some("0") | Some("false") => Ok(Some(false)),
            Some(_) => Err(invalid(name)),
        }
    }

    /// One of `allowed` (compared case-insensitively), returned as written in `allowed`.
    pub fn choice(&self, name: &str, allowed: &[&'static str]) -> Result<Option<&'static str>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => {
                allowed.iter().find(|a| a.eq_ignore_ascii_case(value)).copied().map(Some).ok_or_else(|| invalid(name))
            }
        }
    }

    /// A person by email, or `ANY` / `NOONE` (`email_user_to`, `email_manager`); a malformed email is
    /// `11 Invalid email`.
    pub fn assignee(&self, name: &str) -> Result<Option<Assignee>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) if value.eq_ignore_ascii_case("ANY") => Ok(Some(Assignee::Any)),
            Some(value) if value.eq_ignore_ascii_case("NOONE") => Ok(Some(Assignee::Noone)),
            Some(_) => Ok(self.email(name)?.map(Assignee::Email)),
        }
    }

    /// The project `options.*` flags given (also as `options[name]`), as bit masks (see `PROJECT_OPTIONS`).
    pub fn project_options(&self) -> Result<ProjectOptions, Failure> {
        let mut options = ProjectOptions::default();
        for option in PROJECT_OPTIONS {
            let dotted = format!("options.{option}");
            let value = match self.flag(&dotted)? {
                Some(value) => Some(value),
                None => self.flag(&format!("options[{option}]")).map_err(|_| invalid(&dotted))?,
            };
            if let (Some(value), Some(bit)) = (value, project_option_bit(option)) {
                options.given |= bit;
                if value {
                    options.set |= bit;
                }
            }
        }
        Ok(options)
    }

    /// A `search_tasks` filter (see `wsoauth_domain::filter`); a malformed one is `11 Field is invalid` with
    /// what is wrong as details (`filter: unknown field priority (at 0)`).
    pub fn task_filter(&self, name: &str) -> Result<Option<filter::Expr>, Failure> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => filter::parse(value)
                .map(Some)
                .map_err(|error| ApiError::detailed(ApiErrorCode::FieldInvalid, error.to_string()).into()),
        }
    }

    /// The words of `extra` (`extra=text, options,users`), lowercased.
    pub fn extra(&self) -> Extra {
        Extra(self.list("extra").unwrap_or_default().into_iter().map(str::to_ascii_lowercase).collect())
    }
}

/// A person given by email, or one of the sentinels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    /// `ANY`: "Anyone".
    Any,
    /// `NOONE`: nobody.
    Noone,
    /// A lowercased email address.
    Email(String),
}

/// Project `options.*` flags of a call, as bit masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectOptions {
    /// The flags given as 1.
    pub set: i64,
    /// Every flag given, as 1 or 0.
    pub given: i64,
}

impl ProjectOptions {
    /// `current` with the given flags applied.
    pub fn apply(self, current: i64) -> i64 {
        (current & !self.given) | self.set
    }
}

/// The requested extras of a call.
#[derive(Clone, Debug, Default)]
pub struct Extra(BTreeSet<String>);

impl Extra {
    pub fn has(&self, word: &str) -> bool {
        self.0.contains(word)
    }

    /// `text` or `html` asks for the description.
    pub fn text(&self) -> bool {
        self.has("text") || self.has("html")
    }
}

fn bad_email(email: &str) -> Failure {
    ApiError::detailed(ApiErrorCode::InvalidEmail, email).into()
}

/// A plausible address (one `@`, something on each side, a dot in the domain or `localhost`), lowercased.
pub fn valid_email(email: &str) -> Option<String> {
    let email = email.trim();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && email.len() <= 320
        && !domain.contains('@')
        && !email.contains(|c: char| c.is_whitespace() || c == ',' || c.is_control())
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    ok.then(|| email.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        assert_eq!(parse_page("/project/193/"), Some((193, None)));
        assert_eq!(parse_page("/project/6622/330090/"), Some((6622, Some(330_090))));
        assert_eq!(parse_page("/project/6622/332150/333118/"), Some((6622, Some(333_118))));
        assert_eq!(parse_page("https://acc.example.com/project/5/6/"), Some((5, Some(6))));
        assert_eq!(parse_page("/task/5/"), None);
        assert_eq!(parse_page("/project/x/"), None);
        assert_eq!(parse_page("/project/1/2/3/4/"), None);
    }

    #[test]
    fn emails() {
        assert_eq!(valid_email(" Ann@Example.COM ").as_deref(), Some("ann@example.com"));
        for bad in ["", "a", "@b.c", "a@", "a@b@c", "a b@c.d", "a@b.c,d@e.f"] {
            assert_eq!(valid_email(bad), None, "{bad}");
        }
    }
}
