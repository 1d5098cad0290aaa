//! The `flakeguard` command: parses the command line and hands over to a command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod database;
mod demo;
mod files;
mod history;
mod progress;
mod quarantine_list;
mod queue;
mod record;
mod report;
mod telemetry;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Validate(args) => commands::validate::run(&args),
        cli::Command::Analyze(args) => commands::analyze::run(&args),
        cli::Command::Migrate { command } => commands::migrate::run(&command),
        cli::Command::Seed(args) => commands::seed::run(&args),
        cli::Command::Rescore(args) => commands::rescore::run(&args),
        cli::Command::Serve(args) => commands::serve::run(args.role, args.migrations),
        cli::Command::Api(flags) => commands::serve::run(cli::Role::Api, flags),
        cli::Command::Worker(flags) => commands::serve::run(cli::Role::Worker, flags),
        cli::Command::Web(flags) => commands::serve::run(cli::Role::Web, flags),
        cli::Command::Jobs { command } => commands::jobs::run(&command),
        cli::Command::Token { command } => commands::token::run(&command),
        cli::Command::Upload(args) => commands::upload::run(&args),
        cli::Command::Run(args) => commands::run::run(&args),
        cli::Command::Policy { command } => commands::policy::run(&command),
        cli::Command::Quarantine { command } => commands::quarantine::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
