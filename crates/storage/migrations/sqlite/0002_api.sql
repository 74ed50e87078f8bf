-- The collaboration core of the Worksection API: teams, project folders, projects, tasks, comments, tags.
-- Dates shown as "YYYY-MM-DD HH:MM" are Unix seconds here; calendar dates ("YYYY-MM-DD") are TEXT.

-- Teams ("user groups"); each has a project folder of type company.
CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    client     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account_id, title)
);

-- Member profile fields, as get_users answers them.
ALTER TABLE users ADD COLUMN team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN rate REAL NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone2 TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone3 TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone4 TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address2 TEXT NOT NULL DEFAULT '';


-- Project folders: `folder` (made by people) or `company` (a team's folder, team_id set).
CREATE TABLE project_folders (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    team_id    INTEGER REFERENCES teams(id) ON DELETE CASCADE,
    UNIQUE (account_id, title)
);

CREATE TABLE projects (
    id                INTEGER PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'active',
    folder_id         INTEGER REFERENCES project_folders(id) ON DELETE SET NULL,
    author_id         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    manager_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- default executive of new tasks: NULL (none), 'ANY', 'NOONE' or a user id
    default_executive TEXT,
    text              TEXT NOT NULL DEFAULT '',
    date_added        INTEGER NOT NULL,
    date_start        TEXT,
    date_end          TEXT,
    date_closed       INTEGER,
    max_time          REAL,
    max_money         REAL,
    -- the 14 options.* flags as a bit set, in the documented order
    options           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX projects_account ON projects(account_id, status);

CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members(user_id);

-- Tasks, subtasks and sub-subtasks. `top_id` is the top-level task (the page path uses it); `depth` 0, 1 or 2.
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    parent_id     INTEGER REFERENCES tasks(id) ON DELETE CASCADE,
    top_id        INTEGER,
    depth         INTEGER NOT NULL DEFAULT 0,
    name          TEXT NOT NULL,
    text          TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'active',
    priority      INTEGER NOT NULL DEFAULT 1,
    author_id     INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- executive: a user, or nobody (NULL, "NOONE"); executive_any = 1 means "Anyone"
    executive_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    executive_any INTEGER NOT NULL DEFAULT 0,
    date_added    INTEGER NOT NULL,
    date_start    TEXT,
    date_end      TEXT,
    date_closed   INTEGER,
    time_start    TEXT,
    time_end      TEXT,
    max_time      REAL,
    max_money     REAL,
    -- 1 when only task_visibility's users (and the author) may see the task
    hidden        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_project ON tasks(project_id, parent_id);
CREATE INDEX tasks_parent ON tasks(parent_id);
CREATE INDEX tasks_account ON tasks(account_id);

CREATE TABLE task_visibility (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, user_id)
);

CREATE TABLE task_subscribers (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, user_id)
);

-- Dependencies: `kind` is finish-to-start or start-to-start.
CREATE TABLE task_relations (
    from_task INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    to_task   INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    PRIMARY KEY (from_task, to_task)
);
CREATE INDEX task_relations_to ON task_relations(to_task);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    author_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    text       TEXT NOT NULL,
    date_added INTEGER NOT NULL,
    hidden     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX comments_task ON comments(task_id, id);

CREATE TABLE comment_visibility (
    comment_id INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (comment_id, user_id)
);

-- Tag groups and tags; `scope` separates task tags from project tags.
CREATE TABLE tag_groups (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    title      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    access     TEXT NOT NULL DEFAULT 'public',
    UNIQUE (account_id, scope, title)
);

CREATE TABLE tags (
    id       INTEGER PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES tag_groups(id) ON DELETE CASCADE,
    title    TEXT NOT NULL,
    UNIQUE (group_id, title)
);

CREATE TABLE task_tags (
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    tag_id  INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tags_tag ON task_tags(tag_id);

CREATE TABLE project_tags (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    tag_id     INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, tag_id)
);
