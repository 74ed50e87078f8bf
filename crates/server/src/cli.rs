//! The admin commands of the `wsoauth` binary. Each reads the same configuration as `serve`.

use std::io::BufRead;
use std::sync::Arc;

use serde_json::json;
use wsoauth_domain::SystemClock;
use wsoauth_storage::{Account, Role};

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
