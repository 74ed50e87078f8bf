//! `wsoauth demo seed`: fills an account with a realistic sample (teams, several members who can sign in,
//! projects with members and tags, tasks with subtasks, checklists, dates, comments and statuses), so a new user
//! can try the API at once.

use wsoauth_storage::{NewMember, NewProject, NewTask, Role, SetExecutive, TagScope};

use crate::admin::AdminError;
use crate::state::AppState;

/// The demo members: email, first and last name, title, team, role.
const PEOPLE: [(&str, &str, &str, &str, &str, Role); 4] = [
    ("anna.berg@demo.test", "Anna", "Berg", "Project manager", "Development", Role::Admin),
    ("ben.ortiz@demo.test", "Ben", "Ortiz", "Backend developer", "Development", Role::User),
    ("chloe.kim@demo.test", "Chloe", "Kim", "Designer", "Design", Role::User),
    ("dan.weber@northwind.test", "Dan", "Weber", "Client contact", "Northwind Traders", Role::Guest),
];

/// What the seed made, for the operator.
#[derive(Debug)]
pub struct Seeded {
    pub members: Vec<(String, Role)>,
    pub password: String,
    pub projects: usize,
    pub tasks: usize,
    pub comments: usize,
}

/// A task of the sample: name, executive (index into PEOPLE, or None), priority, start/end offset in days, done,
/// description, subtasks.
struct Sample {
    name: &'static str,
    executive: Option<usize>,
    priority: i64,
    days: Option<(i64, i64)>,
    done: bool,
    text: &'static str,
    children: &'static [Sample],
}

const fn task(name: &'static str, executive: Option<usize>, priority: i64, done: bool) -> Sample {
    Sample { name, executive, priority, days: None, done, text: "", children: &[] }
}

const WEBSITE: &[Sample] = &[
    Sample {
        name: "Information architecture",
        executive: Some(0),
        priority: 7,
        days: Some((-20, -5)),
        done: true,
        text: "Site map and navigation for the new site.\r\n• current pages audit\r\n• new site map",
        children: &[task("Audit the current pages", Some(2), 5, true), task("Draft the site map", Some(0), 6, true)],
    },
    Sample {
        name: "Visual design",
        executive: Some(2),
        priority: 8,
        days: Some((-5, 10)),
        done: false,
        text: "Home, product and contact pages in light and dark themes.",
        children: &[
            Sample {
                name: "Home page",
                executive: Some(2),
                priority: 8,
                days: Some((-5, 3)),
                done: false,
                text: "",
                children: &[task("Hero illustration", Some(2), 4, false), task("Mobile layout", Some(2), 6, false)],
            },
            task("Product pages", Some(2), 6, false),
        ],
    },
    Sample {
        name: "Content migration",
        executive: Some(1),
        priority: 5,
        days: Some((5, 20)),
        done: false,
        text: "Move the blog and the documentation to the new CMS.",
        children: &[],
    },
    task("Launch checklist", None, 3, false),
];

const MOBILE: &[Sample] = &[
    Sample {
        name: "Sign in with OAuth",
        executive: Some(1),
        priority: 9,
        days: Some((-10, 2)),
        done: false,
        text: "Authorization code flow with PKCE against our wsoauth server.",
        children: &[task("Token storage in the keychain", Some(1), 7, true), task("Refresh on 401", Some(1), 7, false)],
    },
    task("Push notifications", Some(1), 4, false),
    task("App store screenshots", Some(2), 2, false),
];

const ONBOARDING: &[Sample] = &[
    Sample {
        name: "Kick-off meeting",
        executive: Some(0),
        priority: 6,
        days: Some((-3, -3)),
        done: true,
        text: "Agenda: goals, contacts, schedule.",
        children: &[],
    },
    task("Collect requirements", Some(3), 5, false),
    task("Send the proposal", Some(0), 8, false),
];

/// A sample project: its name, folder, manager and members (indexes into PEOPLE), tasks, and project label.
struct Plan {
    name: &'static str,
    folder: &'static str,
    manager: usize,
    team: &'static [usize],
    samples: &'static [Sample],
    kind: &'static str,
}

const PLANS: [Plan; 3] = [
    Plan {
        name: "Website relaunch",
        folder: "Development",
        manager: 0,
        team: &[0, 1, 2],
        samples: WEBSITE,
        kind: "internal",
    },
    Plan { name: "Mobile app", folder: "Development", manager: 1, team: &[0, 1, 2], samples: MOBILE, kind: "internal" },
    Plan {
        name: "Northwind onboarding",
        folder: "Northwind Traders",
        manager: 0,
        team: &[0, 3],
        samples: ONBOARDING,
        kind: "client",
    },
];

const COMMENTS: [(&str, usize, &str); 5] = [
    ("Visual design", 0, "Please keep the brand colours from the style guide."),
    ("Visual design", 2, "First drafts are in the Files section, feedback welcome."),
    ("Sign in with OAuth", 1, "PKCE works end to end; refresh handling next."),
    ("Collect requirements", 3, "We will send the list of integrations by Friday."),
    ("Information architecture", 0, "Approved by the client."),
];

fn days(now: i64, offset: i64) -> String {
    wsoauth_domain::dates::format_date(now + offset * 86_400)
}

/// Fills `account_id` with the sample. Run it once per account: a second run adds another copy of the projects.
pub async fn seed(state: &AppState, account_id: i64, owner_id: i64) -> Result<Seeded, AdminError> {
    let store = &state.store;
    let now = state.now();
    let password = wsoauth_domain::secret::random_token(state.random.as_ref(), 12);
    let hash = state.passwords.hash(password.clone(), state.random.clone()).await?;
    let mut user_ids = Vec::new();
    let mut members = Vec::new();
    for (email, first, last, title, team, role) in PEOPLE {
        let (team, _) = store.ensure_team(account_id, team, team == "Northwind Traders").await?;
        let member = NewMember {
            account_id,
            email: email.into(),
            first_name: first.into(),
            last_name: last.into(),
            title: title.into(),
            team_id: Some(team.id),
            department: String::new(),
            role: Some(role),
            now,
        };
        let (user_id, _) = store.invite_member(&member).await?;
        if let Some(person) = store.person_by_email(email).await? {
            store.set_password(person.id, &hash).await?;
        }
        user_ids.push(user_id);
        members.push((email.to_owned(), role));
    }
    store.ensure_builtin_tag_groups(account_id).await?;
    let labels = store.add_tag_groups(account_id, TagScope::Task, &["Type"], "label", "public").await?;
    let label_ids = match labels.first() {
        Some(group) => store.add_tags(group.id, &["bug", "feature", "improvement"]).await?,
        None => Vec::new(),
    };
    let project_labels = store.add_tag_groups(account_id, TagScope::Project, &["Kind"], "label", "public").await?;
    let project_label_ids = match project_labels.first() {
        Some(group) => store.add_tags(group.id, &["internal", "client"]).await?,
        None => Vec::new(),
    };
    let folders = store.project_folders(account_id).await?;
    let folder = |title: &str| folders.iter().find(|f| f.title == title).map(|f| f.id);
    let mut tasks = 0;
    let mut named: Vec<(&str, i64)> = Vec::new();
    for Plan { name, folder: folder_title, manager, team, samples, kind } in PLANS {
        let project = NewProject {
            account_id,
            name: name.into(),
            folder_id: folder(folder_title),
            author_id: owner_id,
            manager_id: Some(user_ids[manager]),
            text: format!("{name}: a sample project made by `wsoauth demo seed`."),
            date_start: Some(days(now, -30)),
            date_end: Some(days(now, 60)),
            max_time: Some(400.0),
            members: team.iter().map(|i| user_ids[*i]).chain([owner_id]).collect(),
            now,
            ..NewProject::default()
        };
        let project_id = store.create_project(&project).await?;
        if let Some((_, tag)) = project_label_ids.iter().find(|(title, _)| title == kind) {
            store.change_tags(TagScope::Project, project_id, &[*tag], &[]).await?;
        }
        for (i, sample) in samples.iter().enumerate() {
            let label = label_ids.get(i % label_ids.len().max(1)).map(|(_, id)| *id);
            let place = Place { account_id, project_id, owner_id, user_ids: &user_ids };
            tasks += add_tasks(state, &place, sample, None, label, &mut named).await?;
        }
    }
    let mut comments = 0;
    for (task_name, author, text) in COMMENTS {
        if let Some((_, task_id)) = named.iter().find(|(name, _)| *name == task_name) {
            store.insert_comment(*task_id, user_ids[author], text, None, now - 3600 * (5 - comments)).await?;
            comments += 1;
        }
    }
    Ok(Seeded { members, password, projects: PLANS.len(), tasks, comments: comments as usize })
}

/// Where sample tasks go: the account, the project, the author, and the demo members' user ids.
struct Place<'a> {
    account_id: i64,
    project_id: i64,
    owner_id: i64,
    user_ids: &'a [i64],
}

/// Adds a sample task and its subtasks (depth first); returns how many were added.
async fn add_tasks<'a>(
    state: &AppState,
    place: &Place<'_>,
    sample: &'a Sample,
    parent: Option<i64>,
    label: Option<i64>,
    named: &mut Vec<(&'a str, i64)>,
) -> Result<usize, AdminError> {
    let now = state.now();
    let mut new = NewTask::new(place.account_id, place.project_id, place.owner_id, sample.name, now);
    new.parent_id = parent;
    new.priority = sample.priority;
    new.text = sample.text.into();
    new.executive = sample.executive.map_or(SetExecutive::Nobody, |i| SetExecutive::User(place.user_ids[i]));
    if let Some((start, end)) = sample.days {
        new.date_start = Some(days(now, start));
        new.date_end = Some(days(now, end));
    }
    let id = match state.store.create_task(&new).await? {
        Ok(id) => id,
        Err(error) => return Err(AdminError::Invalid(format!("demo task {}: {error:?}", sample.name))),
    };
    named.push((sample.name, id));
    if let Some(label) = label.filter(|_| parent.is_none()) {
        state.store.change_tags(TagScope::Task, id, &[label], &[]).await?;
    }
    let mut added = 1;
    for child in sample.children {
        added += Box::pin(add_tasks(state, place, child, Some(id), None, named)).await?;
    }
    // children first: a task with open subtasks cannot be completed
    if sample.done {
        // the sample completes children before parents, so this cannot meet open subtasks
        if let Err(error) = state.store.complete_task(place.account_id, id, now).await? {
            return Err(AdminError::Invalid(format!("demo task {}: {error:?}", sample.name)));
        }
    }
    Ok(added)
}
