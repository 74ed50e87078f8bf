//! Tags (statuses and labels) and tag groups, of tasks and of projects (two separate namespaces):
//! `get_task_tags`, `add_task_tags`, `update_task_tags`, `get_task_tag_groups`, `add_task_tag_groups`, and
//! `get_project_tags`, `add_project_tags`, `update_project_tags`, `get_project_tag_groups`,
//! `add_project_tag_groups`. Also what tasks and projects need: resolving a `tags` parameter, attaching the tags,
//! and the `tags` object of their JSON.

use serde_json::{Map, Value, json};
use wsoauth_storage::{TagGroupRow, TagRow, TagScope};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use super::intake::MAX_NAME;
use super::{Access, ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] = &[
    ("get_task_tags", Scope::TagsRead, Access::Read),
    ("add_task_tags", Scope::TagsWrite, Access::Write),
    ("update_task_tags", Scope::TagsWrite, Access::Write),
    ("get_task_tag_groups", Scope::TagsRead, Access::Read),
    ("add_task_tag_groups", Scope::TagsWrite, Access::Admin),
    ("get_project_tags", Scope::TagsRead, Access::Read),
    ("add_project_tags", Scope::TagsWrite, Access::Write),
    ("update_project_tags", Scope::TagsWrite, Access::Write),
    ("get_project_tag_groups", Scope::TagsRead, Access::Read),
    ("add_project_tag_groups", Scope::TagsWrite, Access::Admin),
];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    ctx.state.store.ensure_builtin_tag_groups(ctx.viewer().account_id).await?;
    match action {
        "get_task_tags" => get_tags(ctx, TagScope::Task).await,
        "add_task_tags" => add_tags(ctx, TagScope::Task).await,
        "update_task_tags" => update_tags(ctx, TagScope::Task).await,
        "get_task_tag_groups" => get_groups(ctx, TagScope::Task).await,
        "add_task_tag_groups" => add_groups(ctx, TagScope::Task).await,
        "get_project_tags" => get_tags(ctx, TagScope::Project).await,
        "add_project_tags" => add_tags(ctx, TagScope::Project).await,
        "update_project_tags" => update_tags(ctx, TagScope::Project).await,
        "get_project_tag_groups" => get_groups(ctx, TagScope::Project).await,
        "add_project_tag_groups" => add_groups(ctx, TagScope::Project).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

const TYPES: &[&str] = &["status", "label"];
const ACCESSES: &[&str] = &["public", "private"];
const GROUP_REQUIRED: &str = "group (id or title)";

/// `{"title":"Basic workflow","id":100,"type":"status","access":"public"}` (ids are numbers here).
pub fn group_json(group: &TagGroupRow) -> Value {
    json!({"title": group.title, "id": group.id, "type": group.kind, "access": group.access})
}

/// `{"title":"To-do","id":72565,"group":{"title","id","id_group","type","access"}}`.
pub fn tag_json(tag: &TagRow) -> Value {
    let mut group = group_json(&tag.group);
    if let Value::Object(map) = &mut group {
        map.insert("id_group".into(), json!(tag.group.id_group()));
    }
    json!({"title": tag.title, "id": tag.id, "group": group})
}

/// The `tags` object of a task or project, `{"<id>": "<title>", ...}`; `None` when it has none (the key is then
/// left out).
pub fn tags_object(tags: Option<&Vec<(i64, String)>>) -> Option<Value> {
    let tags = tags.filter(|tags| !tags.is_empty())?;
    let map: Map<String, Value> = tags.iter().map(|(id, title)| (id.to_string(), json!(title))).collect();
    Some(Value::Object(map))
}

/// `get_*_tags`: the tags the caller may see, filtered by `group` (title or id), `type` and `access`. An unknown
/// group matches nothing.
async fn get_tags(ctx: &Context<'_>, scope: TagScope) -> Result<Reply, Failure> {
    let kind = ctx.input.choice("type", TYPES)?;
    let access = ctx.input.choice("access", ACCESSES)?;
    let viewer = ctx.viewer();
    let store = &ctx.state.store;
    let group_id = match ctx.input.optional("group") {
        None => None,
        Some(reference) => {
            let groups = store.tag_groups(&viewer, scope, None, None).await?;
            match find_group(&groups, reference) {
                Some(group) => Some(group.id),
                None => return Ok(Reply::Data(json!([]))),
            }
        }
    };
    let tags = store.tags(&viewer, scope, group_id, kind, access).await?;
    Ok(Reply::Data(Value::Array(tags.iter().map(tag_json).collect())))
}

/// `get_*_tag_groups`: the groups the caller may see, filtered by `type` and `access`.
async fn get_groups(ctx: &Context<'_>, scope: TagScope) -> Result<Reply, Failure> {
    let kind = ctx.input.choice("type", TYPES)?;
    let access = ctx.input.choice("access", ACCESSES)?;
    let groups = ctx.state.store.tag_groups(&ctx.viewer(), scope, kind, access).await?;
    Ok(Reply::Data(Value::Array(groups.iter().map(group_json).collect())))
}

/// `add_*_tags`: creates the titles the group does not have yet; answers `[{"title","id"}]` for every title
/// given (an existing tag with its id), in the order given.
async fn add_tags(ctx: &Context<'_>, scope: TagScope) -> Result<Reply, Failure> {
    let reference = ctx.input.optional("group").ok_or_else(group_required)?;
    let titles = names(ctx, "title")?;
    let groups = ctx.state.store.tag_groups(&ctx.viewer(), scope, None, None).await?;
    let group = find_group(&groups, reference).ok_or_else(group_required)?;
    let tags = ctx.state.store.add_tags(group.id, &titles).await?;
    Ok(Reply::Data(Value::Array(tags.iter().map(|(title, id)| json!({"title": title, "id": id})).collect())))
}

/// `add_*_tag_groups`: creates the titled groups that do not exist yet (an existing one is answered as it is).
/// Task groups need `type`; project groups may go without (then `""`, as recorded). Status groups are always
/// public; other groups need `access`.
async fn add_groups(ctx: &Context<'_>, scope: TagScope) -> Result<Reply, Failure> {
    let kind = ctx.input.choice("type", TYPES)?;
    let kind = match (scope, kind) {
        (TagScope::Task, None) => return Err(ApiError::detailed(ApiErrorCode::FieldRequired, "type").into()),
        (_, kind) => kind.unwrap_or(""),
    };
    let access = match (kind, ctx.input.choice("access", ACCESSES)?) {
        ("status", _) => "public",
        (_, Some(access)) => access,
        (_, None) => return Err(ApiError::detailed(ApiErrorCode::FieldRequired, "access").into()),
    };
    let titles = names(ctx, "title")?;
    let groups = ctx.state.store.add_tag_groups(ctx.viewer().account_id, scope, &titles, kind, access).await?;
    Ok(Reply::Data(Value::Array(groups.iter().map(group_json).collect())))
}

/// `update_*_tags`: adds `plus` and removes `minus` (titles, matched in full, or ids) on a task or project the
/// caller may see. Adding a status removes the other statuses of its group.
async fn update_tags(ctx: &Context<'_>, scope: TagScope) -> Result<Reply, Failure> {
    let viewer = ctx.viewer();
    let store = &ctx.state.store;
    let object_id = match scope {
        TagScope::Task => {
            let id = ctx.input.task_id()?;
            store.comment_task(&viewer, id).await?.ok_or(ApiErrorCode::TaskInvalid)?.id
        }
        TagScope::Project => {
            let id = ctx.input.project_id()?;
            store.project(&viewer, id).await?.ok_or(ApiErrorCode::ProjectInvalid)?.id
        }
    };
    let plus = ctx.input.list("plus")?;
    let minus = ctx.input.list("minus")?;
    if plus.is_empty() && minus.is_empty() {
        return Ok(Reply::Done);
    }
    let known = store.tags(&viewer, scope, None, None, None).await?;
    let plus = resolve(&known, &plus)?;
    let minus = resolve(&known, &minus)?;
    store.change_tags(scope, object_id, &exclusive(&plus), &ids(&minus)).await?;
    Ok(Reply::Done)
}

/// The tags named by the parameter `name` (a comma list of titles or ids, as `update_*_tags` takes them), for a
/// task or project about to be created or changed; an unknown or ambiguous one is `16 Tag is invalid`.
pub async fn resolve_param(ctx: &Context<'_>, scope: TagScope, name: &str) -> Result<Vec<TagRow>, Failure> {
    let items = ctx.input.list(name)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let store = &ctx.state.store;
    store.ensure_builtin_tag_groups(ctx.viewer().account_id).await?;
    let known = store.tags(&ctx.viewer(), scope, None, None, None).await?;
    resolve(&known, &items)
}

/// Puts resolved tags (from `resolve_param`) on a task or project, statuses replacing the group's others.
pub async fn attach(ctx: &Context<'_>, scope: TagScope, object_id: i64, tags: &[TagRow]) -> Result<(), Failure> {
    if !tags.is_empty() {
        ctx.state.store.change_tags(scope, object_id, &exclusive(tags), &[]).await?;
    }
    Ok(())
}

fn group_required() -> Failure {
    ApiError::detailed(ApiErrorCode::FieldRequired, GROUP_REQUIRED).into()
}

/// A required comma list of names, each at most `MAX_NAME` characters.
fn names<'a>(ctx: &Context<'a>, name: &str) -> Result<Vec<&'a str>, Failure> {
    let items = ctx.input.list(name)?;
    if items.is_empty() {
        return Err(ApiError::detailed(ApiErrorCode::FieldRequired, name).into());
    }
    if items.iter().any(|item| item.chars().count() > MAX_NAME) {
        return Err(ApiError::detailed(ApiErrorCode::FieldInvalid, name).into());
    }
    Ok(items)
}

/// A group by id, else by title (exactly, else without regard to case when that is unambiguous).
fn find_group<'g>(groups: &'g [TagGroupRow], reference: &str) -> Option<&'g TagGroupRow> {
    if let Ok(id) = reference.parse::<i64>()
        && let Some(group) = groups.iter().find(|g| g.id == id)
    {
        return Some(group);
    }
    unique(groups.iter().filter(|g| g.title == reference))
        .or_else(|| unique(groups.iter().filter(|g| g.title.to_lowercase() == reference.to_lowercase())))
}

/// The only item, if there is exactly one.
fn unique<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// Tag references (ids, or titles matched in full — exactly, else without regard to case — and unique across
/// the namespace) to tags; the first that matches nothing or more than one tag is `16 Tag is invalid`.
fn resolve(known: &[TagRow], items: &[&str]) -> Result<Vec<TagRow>, Failure> {
    let mut tags: Vec<TagRow> = Vec::with_capacity(items.len());
    for item in items {
        let by_id = item.parse::<i64>().ok().and_then(|id| known.iter().find(|t| t.id == id));
        let tag = by_id
            .or_else(|| {
                let exact: Vec<&TagRow> = known.iter().filter(|t| t.title == *item).collect();
                if exact.is_empty() {
                    let lower = item.to_lowercase();
                    unique(known.iter().filter(|t| t.title.to_lowercase() == lower))
                } else {
                    unique(exact.into_iter())
                }
            })
            .ok_or_else(|| ApiError::detailed(ApiErrorCode::TagInvalid, *item))?;
        if !tags.iter().any(|t| t.id == tag.id) {
            tags.push(tag.clone());
        }
    }
    Ok(tags)
}

fn ids(tags: &[TagRow]) -> Vec<i64> {
    tags.iter().map(|t| t.id).collect()
}

/// The ids to add: every label, and of several statuses of one group only the last named.
fn exclusive(tags: &[TagRow]) -> Vec<i64> {
    tags.iter()
        .enumerate()
        .filter(|(i, tag)| !tag.group.is_status() || !tags[i + 1..].iter().any(|later| later.group.id == tag.group.id))
        .map(|(_, tag)| tag.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: i64, title: &str, group: i64, kind: &str) -> TagRow {
        TagRow {
            id,
            title: title.into(),
            group: TagGroupRow {
                id: group,
                scope: TagScope::Task,
                title: format!("g{group}"),
                kind: kind.into(),
                access: "public".into(),
            },
        }
    }

    #[test]
    fn resolves_ids_and_titles() {
        let known = [
            tag(1, "To-do", 10, "status"),
            tag(2, "Done", 10, "status"),
            tag(3, "bug", 11, "label"),
            tag(4, "Bug", 12, "label"),
            tag(5, "x", 11, "label"),
            tag(6, "x", 12, "label"),
        ];
        let found = resolve(&known, &["to-do", "2", "bug", "Bug", "3"]).ok().unwrap();
        assert_eq!(ids(&found), [1, 2, 3, 4]);
        assert!(resolve(&known, &["x"]).is_err(), "ambiguous");
        assert!(resolve(&known, &["nope"]).is_err());
        assert!(resolve(&known, &["BUG"]).is_err(), "two tags without regard to case");
        assert_eq!(exclusive(&found), [2, 3, 4]);
    }
}
