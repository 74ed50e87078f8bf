use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use wsoauth_domain::SystemClock;
use wsoauth_server::cli;
use wsoauth_server::config::{Cli, Command};

/// mimalloc (without transparent huge pages, which made a mostly idle heap resident in 2 MiB pieces: idle RSS
/// 41 MB): the request path's many small allocations cost it about a third of what glibc's allocator takes
/// (bench: a bearer-protected API call 22-23 -> 18-20 µs of server CPU).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    // the server buffers its log lines (one access line per request); the admin commands write theirs at once
    let serving = matches!(args.command, None | Some(Command::Serve));
    let logs = wsoauth_server::logging::init_logging(args.config.log_format.unwrap_or_default(), serving);
    let settings = match args.config.resolve() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("wsoauth: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            wsoauth_server::startup::serve(settings, Arc::new(SystemClock)).await.map_err(cli::CliError::from)
        }
        Command::Account(command) => cli::account(settings, command).await,
        Command::User(command) => cli::user(settings, command).await,
        Command::App(command) => cli::app(settings, command).await,
        Command::Keys(command) => cli::keys(settings, command).await,
        Command::Demo(command) => cli::demo(settings, command).await,
        Command::Migrate => cli::migrate(settings).await,
        Command::Export { output } => cli::export(settings, output).await,
        Command::Import { input } => cli::import(settings, input).await,
    };
    drop(logs); // every log line out before the final message
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wsoauth: {error}");
            ExitCode::FAILURE
        }
    }
}
