//! `tunstack`: composition and exit statuses only.
//!
//! Exit status: 0 when the server answered 2xx and the whole body was saved; 1 for a network or
//! HTTP failure; 2 for a usage error, which never touches the network; 130 when interrupted.

use std::process::ExitCode;

use clap::Parser;
use tunstack::cli::{parse_url, Cli, Command};
use tunstack::fetch::{self, FetchError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with status 0, usage errors with 2.
            let _ = err.print();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    match cli.command {
        Command::Fetch(args) => {
            let url = match parse_url(&args.url) {
                Ok(url) => url,
                Err(err) => return usage_error(&err.to_string()),
            };
            if url.scheme() != "http" {
                return usage_error(&format!("{}:// is not supported yet ({url})", url.scheme()));
            }
            fetch::install_signal_handlers();
            match fetch::run(&args, url) {
                Ok(summary) => {
                    if !args.quiet {
                        eprintln!("tunstack: {summary}");
                    }
                    ExitCode::SUCCESS
                }
                Err(FetchError::Interrupted) => {
                    eprintln!("tunstack: interrupted; no file saved");
                    ExitCode::from(130)
                }
                Err(err) => {
                    eprintln!("tunstack: {err}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("tunstack: {message}");
    ExitCode::from(2)
}
