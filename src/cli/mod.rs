//! The command line: what the user asked for, parsed and checked without touching the network.
//!
//! Everything here is pure so that usage mistakes are caught (exit status 2) before a device is
//! opened or a packet is sent. clap stays in this module: [`FetchArgs::options`] turns the parsed
//! command line into the plain [`crate::fetch::Options`] the engine takes, and the defaults clap shows
//! are the engine's own constants.

mod device;
mod fetch;
mod parse;
mod plot;
mod serve;

use clap::{Parser, Subcommand};
use url::Url;

pub use device::DeviceArgs;
pub use fetch::FetchArgs;
pub use parse::parse_rate;
pub use plot::PlotArgs;
pub use serve::ServeArgs;

/// The whole command line of `tunstack`.
#[derive(Debug, Parser)]
#[command(name = "tunstack", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands `tunstack` offers.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download URLs over HTTP/1.1 and HTTPS through the userspace TCP stack.
    Fetch(Box<FetchArgs>),
    /// Serve the files under a directory over HTTP/1.1 from the userspace TCP stack.
    Serve(Box<ServeArgs>),
    /// Draw a connection from a --trace file: time–sequence graph, cwnd, RTT, goodput, receive
    /// window, as SVG or as a self-contained HTML page that zooms.
    Plot(PlotArgs),
}

/// A URL the user gave that cannot be fetched; reported as a usage error (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The text has no `scheme://` in front.
    #[error("URL '{0}' has no scheme: write it as http://HOST/PATH")]
    MissingScheme(String),
    /// The text is not a URL at all.
    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The text as given.
        url: String,
        /// What the URL parser objected to.
        reason: url::ParseError,
    },
    /// The scheme is neither http nor https.
    #[error("unsupported scheme '{0}' (only http:// and https:// are supported)")]
    UnsupportedScheme(String),
    /// The URL names no host to connect to.
    #[error("URL '{0}' has no host")]
    MissingHost(String),
}

/// Parses `text` as an http:// or https:// URL with a host; whether https can actually be
/// fetched is for the caller to decide.
pub fn parse_url(text: &str) -> Result<Url, UsageError> {
    let url = Url::parse(text).map_err(|reason| match reason {
        url::ParseError::RelativeUrlWithoutBase => UsageError::MissingScheme(text.to_owned()),
        url::ParseError::EmptyHost => UsageError::MissingHost(text.to_owned()),
        reason => UsageError::InvalidUrl {
            url: text.to_owned(),
            reason,
        },
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(UsageError::UnsupportedScheme(url.scheme().to_owned()));
    }
    if url.host_str().unwrap_or_default().is_empty() {
        return Err(UsageError::MissingHost(text.to_owned()));
    }
    Ok(url)
}

/// `tunstack SUBCOMMAND ARGS...` parsed, for the tests of each subcommand's flags.
#[cfg(test)]
fn try_parse(subcommand: &str, args: &[&str]) -> Result<Command, clap::Error> {
    let argv = ["tunstack", subcommand]
        .into_iter()
        .chain(args.iter().copied());
    Cli::try_parse_from(argv).map(|cli| cli.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_subcommand_is_a_usage_error() {
        let error = Cli::try_parse_from(["tunstack"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn http_and_https_urls_are_accepted() {
        let url = parse_url("http://10.77.1.2:8080/files/one.bin?x=1").unwrap();
        assert_eq!(url.host_str(), Some("10.77.1.2"));
        assert_eq!(url.port_or_known_default(), Some(8080));
        assert_eq!(url.path(), "/files/one.bin");
        assert_eq!(parse_url("https://example.com").unwrap().scheme(), "https");
    }

    #[test]
    fn other_schemes_are_rejected_by_name() {
        let error = parse_url("ftp://x").unwrap_err();
        assert_eq!(error, UsageError::UnsupportedScheme("ftp".to_owned()));
        assert_eq!(
            error.to_string(),
            "unsupported scheme 'ftp' (only http:// and https:// are supported)"
        );
        assert!(matches!(
            parse_url("file:///etc/hosts"),
            Err(UsageError::UnsupportedScheme(_))
        ));
    }

    #[test]
    fn urls_without_host_or_scheme_are_rejected() {
        assert_eq!(
            parse_url("http://"),
            Err(UsageError::MissingHost("http://".to_owned()))
        );
        assert_eq!(
            parse_url("10.77.1.2/x"),
            Err(UsageError::MissingScheme("10.77.1.2/x".to_owned()))
        );
        assert!(matches!(
            parse_url("http://exa mple.com/"),
            Err(UsageError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("http://h:99999/"),
            Err(UsageError::InvalidUrl { .. })
        ));
    }
}
