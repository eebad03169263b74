//! `tunstack`: composition and exit statuses only.
//!
//! Exit status of `fetch`: 0 when every server answered 2xx and every body was saved; 1 when any
//! download failed (network, TLS or HTTP); 2 for a usage error, which never touches the
//! network; 130 when interrupted. `serve`: 0 after a clean stop on SIGINT/SIGTERM, 1 when it
//! cannot start, 2 for a usage error. `plot`: 0 when every picture was written, 2 for a usage
//! error or a trace that cannot be read as one, 1 when a file cannot be read or written.

use std::collections::HashSet;
use std::process::ExitCode;

use clap::Parser;
use tunstack::cli::{parse_url, Cli, Command, FetchArgs, PlotArgs, ServeArgs};
use tunstack::fetch::{self, FetchError, Job};
use tunstack::http::OutputTarget;

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
        Command::Fetch(args) => fetch_command(&args),
        Command::Serve(args) => serve_command(&args),
        Command::Plot(args) => plot_command(&args),
    }
}

/// `tunstack plot`: the files written on stdout, one a line; warnings and errors on stderr.
fn plot_command(args: &PlotArgs) -> ExitCode {
    match tunstack::plot::run(&args.request()) {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("tunstack: {warning}");
            }
            for path in &report.written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tunstack: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// `tunstack serve`: 0 after a clean stop on SIGINT/SIGTERM, 1 when the device cannot be
/// used, 2 when the directory cannot be served.
fn serve_command(args: &ServeArgs) -> ExitCode {
    let options = args.options();
    if let Err(message) = options.device.check() {
        eprintln!("tunstack: {message}");
        return ExitCode::from(2);
    }
    // A directory that cannot be served is a usage error: found before the device is opened.
    if let Err(err) = tunstack::serve::Site::new(&options.root) {
        eprintln!("tunstack: cannot serve {}: {err}", options.root.display());
        return ExitCode::from(2);
    }
    fetch::install_signal_handlers();
    match tunstack::serve::run(&options) {
        Ok(summary) => {
            if !options.quiet {
                eprintln!("tunstack: {}", tunstack::serve::describe(&summary));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tunstack: {err}");
            ExitCode::from(1)
        }
    }
}

fn fetch_command(args: &FetchArgs) -> ExitCode {
    let jobs = match plan(args) {
        Ok(jobs) => jobs,
        Err(message) => {
            eprintln!("tunstack: {message}");
            return ExitCode::from(2);
        }
    };
    let options = args.options();
    if let Err(message) = options.device.check() {
        eprintln!("tunstack: {message}");
        return ExitCode::from(2);
    }
    let several = jobs.len() > 1;
    fetch::install_signal_handlers();
    let report = |job: &Job, result: &Result<fetch::Summary, FetchError>| match result {
        Ok(summary) if !options.quiet => Some(format!("tunstack: {summary}")),
        Ok(_) | Err(FetchError::Interrupted) => None,
        Err(err) if several => Some(format!("tunstack: {}: {err}", job.url)),
        Err(err) => Some(format!("tunstack: {err}")),
    };
    match fetch::run(&options, jobs, report) {
        Ok(results) if results.iter().all(Result::is_ok) => ExitCode::SUCCESS,
        Ok(results) => {
            if several {
                let failed = results.iter().filter(|r| r.is_err()).count();
                eprintln!("tunstack: {failed} of {} downloads failed", results.len());
            }
            ExitCode::from(1)
        }
        Err(FetchError::Interrupted) if options.resume => {
            eprintln!("tunstack: interrupted; partial downloads kept as NAME.part for the next -c");
            ExitCode::from(130)
        }
        Err(FetchError::Interrupted) => {
            eprintln!("tunstack: interrupted; no partial file left");
            ExitCode::from(130)
        }
        Err(err) => {
            eprintln!("tunstack: {err}");
            ExitCode::from(1)
        }
    }
}

/// The downloads the command line asks for, checked before anything touches the network.
fn plan(args: &FetchArgs) -> Result<Vec<Job>, String> {
    let mut texts = args.urls.clone();
    if let Some(path) = &args.input_file {
        let list = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let lines = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        texts.extend(lines.map(String::from));
    }
    if texts.is_empty() {
        return Err("no URL given".into());
    }
    if args.output.is_some() && texts.len() > 1 {
        return Err(
            "-o names one output, but several URLs were given (each is saved under its own name)"
                .into(),
        );
    }
    let mut jobs = Vec::with_capacity(texts.len());
    let mut targets = HashSet::new();
    for text in &texts {
        let url = parse_url(text).map_err(|e| e.to_string())?;
        let target = match &args.output {
            Some(target) => target.clone(),
            None => OutputTarget::from_url(&url),
        };
        // -I saves nothing, so names cannot collide.
        if let (OutputTarget::Path(path), false) = (&target, args.head) {
            if !targets.insert(path.clone()) {
                return Err(format!(
                    "two URLs would be saved as {}; download them separately with -o",
                    path.display()
                ));
            }
        }
        jobs.push(Job { url, target });
    }
    Ok(jobs)
}
