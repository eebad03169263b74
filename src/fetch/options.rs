//! What a `tunstack fetch` run is asked to do, as plain data: the command line (`crate::cli`)
//! fills it in, the engine ([`super::run`]) reads it, and neither side knows the other's types.
//!
//! The defaults live here, once: clap shows and applies them through these constants, and
//! [`Options::default`] / [`DeviceOptions::default`] give the same values to callers that do not
//! parse a command line (tests, a future `tunstack serve`).

use std::path::PathBuf;
use std::time::Duration;

use super::resolve::ResolveEntry;
pub use crate::host::{DeviceOptions, DEFAULT_IFACE, DEFAULT_LOCAL_IP};
use crate::http::{Credentials, HeaderEdit};

/// How long a download may go without hearing from the server before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3 * 60);
/// Redirects followed before giving up (curl's and wget's order of magnitude).
pub const DEFAULT_MAX_REDIRECTS: u32 = crate::http::DEFAULT_MAX_REDIRECTS as u32;
/// Downloads run at once over the one stack.
pub const DEFAULT_PARALLEL: u32 = 4;
/// Retries after a transient failure: none, so a failure is reported as it happens.
pub const DEFAULT_RETRY: u32 = 0;

/// How to run a set of downloads (the URLs and output targets are the [`super::Job`]s).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The device and the stack on it.
    pub device: DeviceOptions,
    /// Fail if nothing arrives from the server for this long.
    pub timeout: Duration,
    /// Fail if the TCP handshake takes longer than this.
    pub connect_timeout: Option<Duration>,
    /// Follow at most this many redirects.
    pub max_redirects: u32,
    /// Addresses to use instead of resolving names (`--resolve`).
    pub resolve: Vec<ResolveEntry>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Print connection and protocol details to standard error.
    pub verbose: bool,
    /// Continue partial downloads with Range requests (`-c`).
    pub resume: bool,
    /// Downloads run at once.
    pub parallel: u32,
    /// Trust the CA certificates in this PEM file instead of the bundled roots.
    pub cacert: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure: bool,
    /// The user's request header edits (`-H`).
    pub headers: Vec<HeaderEdit>,
    /// The User-Agent to send instead of ours.
    pub user_agent: Option<String>,
    /// Send HEAD and print the response head; save nothing (`-I`).
    pub head: bool,
    /// Basic credentials for the origin of the URL given (`-u`).
    pub user: Option<Credentials>,
    /// Retries after a transient failure.
    pub retry: u32,
    /// Fixed wait between retries instead of exponential backoff.
    pub retry_delay: Option<Duration>,
    /// Ask for a compressed body and save it decoded.
    pub compressed: bool,
    /// Receive at most this many bytes per second per download.
    pub limit_rate: Option<u64>,
    /// Print each download's connection summary (`Connection::summary`) as JSON on stderr.
    pub stats: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: DeviceOptions::default(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            resolve: Vec::new(),
            quiet: false,
            verbose: false,
            resume: false,
            parallel: DEFAULT_PARALLEL,
            cacert: None,
            insecure: false,
            headers: Vec::new(),
            user_agent: None,
            head: false,
            user: None,
            retry: DEFAULT_RETRY,
            retry_delay: None,
            compressed: false,
            limit_rate: None,
            stats: false,
        }
    }
}
