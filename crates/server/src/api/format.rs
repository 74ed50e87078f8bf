//! How the API writes things (spec §2): ids as strings, user references, the sentinel users, page paths,
//! dates, numbers.

use serde_json::{Value, json};
use wsoauth_domain::dates::format_datetime;

/// `{"id":"3993","email":"...","name":"..."}`.
pub fn user_ref(id: i64, email: &str, name: &str) -> Value {
    json!({"id": id.to_string(), "email": email, "name": name})
}

/// An id as the API writes it: a string (`serialize_with` for typed answers).
pub fn id_string<S: serde::Serializer>(id: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// A person's display name: "First Last", or the email when both are empty.
pub fn display_name(first: &str, last: &str, email: &str) -> String {
    let name = format!("{} {}", first.trim(), last.trim()).trim().to_owned();
    if name.is_empty() { email.to_owned() } else { name }
}

/// The task executive "Anyone".
pub fn anyone() -> Value {
    json!({"id": "2", "email": "ANY", "name": "Anyone"})
}

/// The task executive when nobody is assigned.
pub fn no_executive() -> Value {
    json!({"id": "1", "email": "NOONE", "name": "Executive isn't assigned"})
}

/// The project manager when nobody is assigned.
pub fn no_manager() -> Value {
    json!({"id": "0", "email": "NOONE", "name": "Manager isn't assigned"})
}

pub fn project_page(project_id: i64) -> String {
    format!("/project/{project_id}/")
}

/// A task's page: `/project/P/T/` for a top-level task, `/project/P/TOP/ID/` below it (sub-subtasks too).
pub fn task_page(project_id: i64, top_id: i64, id: i64) -> String {
    if top_id == id { format!("/project/{project_id}/{id}/") } else { format!("/project/{project_id}/{top_id}/{id}/") }
}

/// `"YYYY-MM-DD HH:MM"`.
pub fn datetime(unix: i64) -> Value {
    Value::String(format_datetime(unix))
}

/// An estimate as a JSON number: an integer when whole (`352`), else a decimal (`0.5`).
pub fn amount(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 { json!(value as i64) } else { json!(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_numbers() {
        assert_eq!(task_page(8562, 331_894, 331_894), "/project/8562/331894/");
        assert_eq!(task_page(8562, 331_894, 331_914), "/project/8562/331894/331914/");
        assert_eq!(amount(352.0), json!(352));
        assert_eq!(amount(0.25), json!(0.25));
        assert_eq!(display_name(" ", "", "a@b.c"), "a@b.c");
    }
}
