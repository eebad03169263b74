//! What a `tunstack serve` run is asked to do, as plain data: the command line (`crate::cli`)
//! fills it in and [`super::run`] reads it; the defaults live here once, for clap and tests.

use std::path::PathBuf;
use std::time::Duration;

use crate::host::DeviceOptions;

/// The HTTP port, as for any web server.
pub const DEFAULT_PORT: u16 = 80;
/// How long a connection may sit without a byte moving either way (an idle keep-alive
/// connection, or a client that stopped reading) before it is closed; nginx's keep-alive
/// timeout is 75 s, its send timeout 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request head may take from its first byte to its blank line (nginx's
/// `client_header_timeout` is 60 s): a client that trickles a head ties up a connection only
/// this long. Never longer than `--timeout`.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// On SIGINT/SIGTERM, responses still being sent get this long to finish before their
/// connections are reset.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How to run the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    /// The device and the stack on it; the server listens on `device.local_ip`.
    pub device: DeviceOptions,
    /// TCP port to listen on.
    pub port: u16,
    /// The directory whose files are served.
    pub root: PathBuf,
    /// Close a connection after this long without progress.
    pub timeout: Duration,
    /// No access log on standard output.
    pub quiet: bool,
    /// Print every datagram and the sender's state to standard error.
    pub verbose: bool,
}

impl ServeOptions {
    /// Serves `root` with the defaults.
    pub fn new(root: PathBuf) -> Self {
        ServeOptions {
            device: DeviceOptions::default(),
            port: DEFAULT_PORT,
            root,
            timeout: DEFAULT_TIMEOUT,
            quiet: false,
            verbose: false,
        }
    }

    /// The limit on reading one request head.
    pub fn header_timeout(&self) -> Duration {
        self.timeout.min(HEADER_TIMEOUT)
    }
}
