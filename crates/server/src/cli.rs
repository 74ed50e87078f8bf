//! The admin commands of the `wsoauth` binary. Each reads the same configuration as `serve`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use wsoauth_domain::{Clock, SystemClock};
use wsoauth_storage::transfer::{Header, Reader, TransferError, Writer};
use wsoauth_storage::{Account, Role, Store};

use crate::admin::{self, AdminError};
use crate::audit::{self, Entry, Event};
use crate::config::{AccountCommand, AppCommand, DemoCommand, KeysCommand, Settings, UserCommand};
use crate::startup::{StartError, prepare};
use crate::state::Shared;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("cannot open {path}: {source}")]
    File { path: String, source: std::io::Error },
}

impl From<wsoauth_storage::StorageError> for CliError {
    fn from(error: wsoauth_storage::StorageError) -> Self {
        CliError::Admin(error.into())
    }
}

async fn state(settings: Settings) -> Result<Shared, CliError> {
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{}", settings.listen));
    Ok(prepare(settings, public_url, Arc::new(SystemClock)).await?)
}

/// The account named by id or slug, or the only account when none is named.
async fn pick_account(state: &Shared, account: Option<&str>) -> Result<Account, CliError> {
    match account {
        Some(reference) => {
            let by_id = match reference.parse::<i64>() {
                Ok(id) => state.store.account(id).await?,
                Err(_) => None,
            };
            let found = match by_id {
                Some(account) => Some(account),
                None => state.store.account_by_slug(reference).await?,
            };
            found.ok_or_else(|| CliError::Usage(format!("no account {reference:?}")))
        }
        None => {
            let mut accounts = state.store.accounts().await?;
            match accounts.len() {
                1 => Ok(accounts.remove(0)),
                0 => Err(CliError::Usage("there is no account yet: run `wsoauth account create --name NAME`".into())),
                _ => Err(CliError::Usage("there are several accounts: name one with --account ID_OR_SLUG".into())),
            }
        }
    }
}

pub async fn account(settings: Settings, command: AccountCommand) -> Result<(), CliError> {
    let state = state(settings).await?;
    match command {
        AccountCommand::Create { name, slug } => {
            let account = admin::create_account(&state, &name, slug.as_deref()).await?;
            println!(
                "{}",
                json!({"id": account.id, "name": account.name, "slug": account.slug, "url": state.account_url(&account)})
            );
        }
        AccountCommand::List { json } => {
            for account in state.store.accounts().await? {
                if json {
                    println!("{}", json!({"id": account.id, "name": account.name, "slug": account.slug}));
                } else {
                    println!("{}\t{}\t{}", account.id, account.slug, account.name);
                }
            }
        }
    }
    Ok(())
}

pub async fn user(settings: Settings, command: UserCommand) -> Result<(), CliError> {
    let UserCommand::Create { email, account, first_name, last_name, role } = command;
    let role: Role = role.parse().map_err(CliError::Usage)?;
    let state = state(settings).await?;
    let account = pick_account(&state, account.as_deref()).await?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(CliError::Stdin)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    let password = (!password.is_empty()).then_some(password);
    let user_id = admin::add_member(&state, account.id, &email, &first_name, &last_name, role, password).await?;
    println!(
        "{}",
        json!({"user_id": user_id, "account_id": account.id, "email": email.trim().to_lowercase(), "role": role.as_str()})
    );
    Ok(())
}

pub async fn app(settings: Settings, command: AppCommand) -> Result<(), CliError> {
    let state = state(settings).await?;
    match command {
        AppCommand::Create { name, redirect_uris, scopes, account, json, public, require_pkce } => {
            let account = pick_account(&state, account.as_deref()).await?;
            let all = wsoauth_types::ScopeSet::all().to_space_separated();
            let mut fields =
                admin::app_fields(&name, redirect_uris.iter().map(String::as_str), scopes.as_deref().unwrap_or(&all))?;
            fields.require_pkce = require_pkce;
            let (client_id, secret) = if public {
                (admin::create_public_app(&state, account.id, &fields).await?.client_id, None)
            } else {
                let (app, secret) = admin::create_app(&state, account.id, &fields).await?;
                (app.client_id, Some(secret))
            };
            let detail = format!("{}{} (admin command line)", fields.name, if public { " (public)" } else { "" });
            audit::record(
                &state,
                Event::AppCreated,
                Entry::new().account(account.id).client(&client_id).detail(detail),
            )
            .await;
            match (json, secret) {
                (true, Some(secret)) => println!("{}", json!({"client_id": client_id, "client_secret": secret})),
                (true, None) => println!("{}", json!({"client_id": client_id})),
                (false, Some(secret)) => {
                    println!("client_id:     {client_id}");
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only now)");
                }
                (false, None) => println!("client_id: {client_id}\n(a public client: no secret; PKCE required)"),
            }
        }
        AppCommand::List { account, json } => {
            let account_id = match account {
                Some(reference) => Some(pick_account(&state, Some(&reference)).await?.id),
                None => None,
            };
            for app in state.store.apps(account_id).await? {
                if json {
                    println!(
                        "{}",
                        json!({"client_id": app.client_id, "name": app.name, "account_id": app.account_id,
                               "redirect_uris": app.redirect_uris, "scopes": app.scopes,
                               "public": app.public, "require_pkce": app.require_pkce})
                    );
                } else {
                    println!("{}\t{}\t{}\t{}", app.client_id, app.account_id, app.name, app.redirect_uris.join(" "));
                }
            }
        }
        AppCommand::Delete { client_id } => {
            let app = state
                .store
                .app_by_client_id(&client_id)
                .await?
                .ok_or_else(|| CliError::Usage(format!("no app with client id {client_id:?}")))?;
            state.store.delete_app(app.id).await?;
            let detail = format!("{} (admin command line)", app.name);
            audit::record(
                &state,
                Event::AppDeleted,
                Entry::new().account(app.account_id).client(&client_id).detail(detail),
            )
            .await;
            println!("deleted {client_id}");
        }
    }
    Ok(())
}

pub async fn keys(settings: Settings, command: KeysCommand) -> Result<(), CliError> {
    let state = state(settings).await?;
    match command {
        KeysCommand::Rotate => {
            let (der, kid) = crate::jwt::SigningKey::generate().map_err(|e| CliError::Start(e.into()))?;
            state.store.rotate_signing_key(&kid, &der, state.now()).await?;
            let detail = format!("new signing key {kid} (admin command line)");
            audit::record_for_every_account(&state, Event::KeyRotated, Entry::new().detail(detail)).await;
            println!("{}", json!({"kid": kid, "created_at": state.now()}));
        }
        KeysCommand::List { json } => {
            for key in state.store.signing_keys().await? {
                let status = if key.retired_at.is_some() { "retired" } else { "active" };
                if json {
                    println!(
                        "{}",
                        json!({"kid": key.kid, "status": status, "created_at": key.created_at, "retired_at": key.retired_at})
                    );
                } else {
                    println!("{}\t{}\t{}", key.kid, status, key.created_at);
                }
            }
        }
    }
    Ok(())
}

pub async fn demo(settings: Settings, command: DemoCommand) -> Result<(), CliError> {
    let DemoCommand::Seed { account } = command;
    let state = state(settings).await?;
    let account = pick_account(&state, account.as_deref()).await?;
    let members = state.store.account_members(account.id).await?;
    let owner = members
        .iter()
        .find(|m| m.role == Role::Owner)
        .or_else(|| members.iter().find(|m| m.role.manages_account()))
        .ok_or_else(|| {
            CliError::Usage(format!("account {:?} has no owner or admin to author the sample", account.slug))
        })?;
    let seeded = crate::demo::seed(&state, account.id, owner.user_id).await?;
    println!(
        "Seeded {:?}: {} projects, {} tasks, {} comments, {} members.",
        account.name,
        seeded.projects,
        seeded.tasks,
        seeded.comments,
        seeded.members.len()
    );
    for (email, role) in &seeded.members {
        println!("  {email} ({})", role.display());
    }
    println!("Their password (shown only now): {}", seeded.password);
    Ok(())
}

pub async fn migrate(settings: Settings) -> Result<(), CliError> {
    // opening the store applies every missing migration
    let state = state(settings).await?;
    let versions = state.store.schema_versions().await?;
    println!("{}", json!({"schema_versions": versions}));
    Ok(())
}

/// `wsoauth export`: the whole database as JSON lines (see `wsoauth_storage::transfer`), to `output` or stdout.
pub async fn export(settings: Settings, output: Option<PathBuf>) -> Result<(), CliError> {
    // the store alone: `state` would give an empty database a digest key and a signing key
    let store = Store::open(&settings.database_url).await?;
    let header = Header { schema: store.schema_version().await?, exported_at: SystemClock.now() };
    let started = Instant::now();
    let counts = match &output {
        Some(path) => {
            let file = create_private(path)?;
            let written = write_export(&store, header, std::io::BufWriter::new(file)).await;
            if written.is_err() {
                let _ = std::fs::remove_file(path);
            }
            written?
        }
        None => write_export(&store, header, std::io::BufWriter::new(std::io::stdout().lock())).await?,
    };
    let to = output.map_or_else(|| "standard output".to_owned(), |path| path.display().to_string());
    summary(&format!("exported schema version {} to {to}", header.schema), &counts, started);
    if counts.iter().all(|(_, n)| *n == 0) {
        // a mistyped SQLite path opens (and creates) an empty database
        eprintln!("wsoauth: warning: the database is empty: is --database-url the one the server uses?");
    }
    Ok(())
}

async fn write_export(store: &Store, header: Header, out: impl Write) -> Result<Vec<(&'static str, u64)>, CliError> {
    let mut writer = Writer::start(out, header).map_err(TransferError::Write)?;
    let counts = store.export(|record| writer.write(record)).await?;
    writer.finish().map_err(TransferError::Write)?;
    Ok(counts)
}

/// A new or truncated file only its owner can read: the export holds every secret of the database.
fn create_private(path: &Path) -> Result<std::fs::File, CliError> {
    let failed = |source| CliError::File { path: path.display().to_string(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(failed)?;
        // an existing file keeps its mode through open: narrow it before writing
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path).map_err(failed)
}

/// `wsoauth import`: an export from `input` or stdin into the configured database, which must be empty.
pub async fn import(settings: Settings, input: Option<PathBuf>) -> Result<(), CliError> {
    match input {
        Some(path) => {
            let file = std::fs::File::open(&path)
                .map_err(|source| CliError::File { path: path.display().to_string(), source })?;
            read_import(settings, std::io::BufReader::new(file), &path.display().to_string()).await
        }
        None => read_import(settings, std::io::stdin().lock(), "standard input").await,
    }
}

async fn read_import(settings: Settings, input: impl BufRead, from: &str) -> Result<(), CliError> {
    // the header first: a file that is no export never touches (or creates) the database
    let (records, header) = Reader::open(input)?;
    // opening the store runs the migrations; `state` would write a digest key and a signing key
    let store = Store::open(&settings.database_url).await?;
    let started = Instant::now();
    let counts = store.import(header.schema, records).await?;
    summary(&format!("imported schema version {} from {from}", header.schema), &counts, started);
    Ok(())
}

/// What an export or import moved, on stderr (stdout may be the export itself).
fn summary(what: &str, counts: &[(&str, u64)], started: Instant) {
    let rows: u64 = counts.iter().map(|(_, n)| n).sum();
    let seconds = started.elapsed().as_secs_f64();
    let mut text = format!("wsoauth: {what}: {rows} rows in {} tables, {seconds:.2} s\n", counts.len());
    for (table, n) in counts {
        text.push_str(&format!("  {table:<20} {n}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}
