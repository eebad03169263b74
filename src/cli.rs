//! The command line: what the user asked for, parsed and checked without touching the network.
//!
//! Everything here is pure so that usage mistakes are caught (exit status 2) before a device is
//! opened or a packet is sent. clap stays in this module: [`FetchArgs::options`] turns the parsed
//! command line into the plain [`crate::fetch::Options`] the engine takes, and the defaults clap shows
//! are the engine's own constants.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::device::fault::ImpairSpec;
use crate::ethernet::MacAddr;
use crate::fetch::{
    DeviceOptions, Options, ResolveEntry, DEFAULT_IFACE, DEFAULT_LOCAL_IP, DEFAULT_MAX_REDIRECTS,
    DEFAULT_PARALLEL, DEFAULT_RETRY, DEFAULT_TIMEOUT,
};
use crate::host::{Mode, DEFAULT_TAP_IFACE};
use crate::http::{Credentials, HeaderEdit, OutputTarget};
use crate::link::InterfaceAddr;
use crate::tcp::Algorithm;

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

/// Options of `tunstack plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Where to write the picture: NAME.svg, or NAME.html (one page, zoom and hover). With
    /// several connections and no --conn, SVG gives one file per connection, NAME.conn-ID.svg.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// Draw only the connection with this id (the trace's "conn").
    #[arg(long, value_name = "ID")]
    pub conn: Option<u64>,

    /// The trace, as written by --trace.
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
}

impl PlotArgs {
    /// The request this command line stands for.
    pub fn request(&self) -> crate::plot::PlotRequest {
        crate::plot::PlotRequest {
            trace: self.trace.clone(),
            output: self.output.clone(),
            conn: self.conn,
        }
    }
}

/// Options of `tunstack serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TUN interface to attach to (create it first with `sudo setup/up`) [default: tun0, or
    /// tap0 in TAP mode (`sudo setup/up --tap`)]
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,

    /// IPv4 address the stack uses as its own on the TUN subnet, and listens on; in TAP mode
    /// ADDR/LEN gives the on-link prefix too (default /24).
    #[arg(long, value_name = "ADDR[/LEN]", default_value_t = InterfaceAddr::from(DEFAULT_LOCAL_IP))]
    pub local_ip: InterfaceAddr,

    /// TCP port to listen on.
    #[arg(short, long, value_name = "N", default_value_t = crate::serve::options::DEFAULT_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Close a connection after this long without a byte moving either way: an idle
    /// keep-alive connection, or a client that stopped reading (e.g. 30s, 2m). A request
    /// head must arrive within this long too (at most 30 s).
    #[arg(long, value_name = "DURATION", default_value_t = crate::serve::options::DEFAULT_TIMEOUT.into(), value_parser = parse_positive_duration)]
    pub timeout: humantime::Duration,

    /// No access log on standard output (errors still go to standard error).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print every datagram and the sender's state (RTT, RTO, cwnd) to standard error.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Network impairment and capture between the device and the stack.
    #[command(flatten)]
    pub device: DeviceArgs,

    /// The directory whose files are served (`DIR/` itself serves `DIR/index.html`).
    #[arg(value_name = "DIR")]
    pub root: PathBuf,
}

impl ServeArgs {
    /// The run this command line asks for.
    pub fn options(&self) -> crate::serve::ServeOptions {
        crate::serve::ServeOptions {
            device: self
                .device
                .options(self.iface.as_deref(), self.local_ip, self.verbose),
            port: self.port,
            root: self.root.clone(),
            timeout: self.timeout.into(),
            quiet: self.quiet,
            verbose: self.verbose,
        }
    }
}

/// Options of `tunstack fetch`; see each field for what it controls.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// TUN interface to attach to (create it first with `sudo setup/up`) [default: tun0, or
    /// tap0 in TAP mode (`sudo setup/up --tap`)]
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,

    /// IPv4 address the stack uses as its own on the TUN subnet; in TAP mode ADDR/LEN gives
    /// the on-link prefix too (default /24).
    #[arg(long, value_name = "ADDR[/LEN]", default_value_t = InterfaceAddr::from(DEFAULT_LOCAL_IP))]
    pub local_ip: InterfaceAddr,

    /// Where to save the body: a file path, or `-` for standard output. Without it the name
    /// is taken from the last segment of the URL path, in the current directory.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<OutputTarget>,

    /// Fail if nothing arrives from the server for this long, counted from the first SYN
    /// (e.g. 30s, 2m, 1h).
    #[arg(long, value_name = "DURATION", default_value_t = DEFAULT_TIMEOUT.into(), value_parser = parse_positive_duration)]
    pub timeout: humantime::Duration,

    /// Fail if the TCP handshake has not completed within this long (e.g. 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub connect_timeout: Option<humantime::Duration>,

    /// Follow at most this many redirects (0 means: do not follow any).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_REDIRECTS)]
    pub max_redirects: u32,

    /// Use ADDR for HOST:PORT instead of resolving HOST, like curl's --resolve (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<ResolveEntry>,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Print connection and protocol details to standard error.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Network impairment and capture between the device and the stack.
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Resume a partial download like `wget -c`: continue NAME.part (kept by an interrupted
    /// `-c` run) or an existing NAME with a Range request.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,

    /// Read more URLs from FILE, one a line (blank lines and lines starting with # skipped).
    #[arg(short = 'i', long = "input-file", value_name = "FILE")]
    pub input_file: Option<PathBuf>,

    /// Download at most N URLs at once, over one stack.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: u32,

    /// Trust the CA certificates in FILE (PEM) instead of the bundled Mozilla roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Accept any server certificate (like curl -k): encrypts, but does not authenticate.
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Add a request header, or replace the default one of that name (case-insensitively);
    /// 'Name:' with no value removes it (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<HeaderEdit>,

    /// Send this User-Agent instead of tunstack/VERSION (a -H User-Agent wins over it).
    #[arg(short = 'A', long, value_name = "NAME", value_parser = parse_user_agent)]
    pub user_agent: Option<String>,

    /// Send HEAD and print the response head (status line and headers) to standard output;
    /// save nothing.
    #[arg(short = 'I', long, conflicts_with_all = ["resume", "output"])]
    pub head: bool,

    /// HTTP Basic authentication; sent only to the scheme, host and port of the URL given,
    /// never to another one after a redirect.
    #[arg(short = 'u', long, value_name = "USER:PASSWORD")]
    pub user: Option<Credentials>,

    /// Try again up to N times after a transient failure (refused, reset or timed-out
    /// connection; HTTP 408, 429, 500, 502, 503, 504), waiting 1 s, 2 s, 4 s... (at most 10
    /// minutes) or what the server's Retry-After asks.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RETRY)]
    pub retry: u32,

    /// Wait this long between retries instead of backing off exponentially (Retry-After from
    /// the server still wins).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub retry_delay: Option<humantime::Duration>,

    /// Ask for a compressed body (gzip, deflate, br) and save it decoded.
    #[arg(long, conflicts_with = "resume")]
    pub compressed: bool,

    /// Receive at most RATE bytes per second per download (k = 1024, m = 1024k, g = 1024m), by
    /// advertising a TCP window only as large as what has been read, so the server slows down.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_rate: Option<u64>,

    /// At the end of each download, print its connection's final counters and estimates
    /// (RTT, RTO, cwnd, bytes, retransmissions by cause, time limited by cwnd or window) as
    /// one JSON object on standard error
    #[arg(long)]
    pub stats: bool,

    /// The http:// or https:// URLs to download.
    #[arg(value_name = "URL", required_unless_present = "input_file")]
    pub urls: Vec<String>,
}

impl FetchArgs {
    /// The run this command line asks for, as the plain options the engine takes (the URLs and
    /// `-o` become [`crate::fetch::Job`]s instead, once checked).
    pub fn options(&self) -> Options {
        Options {
            device: self
                .device
                .options(self.iface.as_deref(), self.local_ip, self.verbose),
            timeout: self.timeout.into(),
            connect_timeout: self.connect_timeout.map(Duration::from),
            max_redirects: self.max_redirects,
            resolve: self.resolve.clone(),
            quiet: self.quiet,
            verbose: self.verbose,
            resume: self.resume,
            parallel: self.parallel,
            cacert: self.cacert.clone(),
            insecure: self.insecure,
            headers: self.headers.clone(),
            user_agent: self.user_agent.clone(),
            head: self.head,
            user: self.user.clone(),
            retry: self.retry,
            retry_delay: self.retry_delay.map(Duration::from),
            compressed: self.compressed,
            limit_rate: self.limit_rate,
            stats: self.stats,
        }
    }
}

/// Options that wrap the TUN device: fault injection and packet capture.
#[derive(Debug, Clone, Default, Args)]
pub struct DeviceArgs {
    /// Impair both directions, per wire packet (offload super-segments are cut into the segments
    /// they stand for first), e.g. loss=5%,dup=1%,reorder=10%,corrupt=1%,delay=20ms,jitter=5ms,rate=50mbit
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<ImpairSpec>,

    /// Impair only datagrams from the device to the stack (overrides --impair for that direction).
    #[arg(long, value_name = "SPEC")]
    pub impair_in: Option<ImpairSpec>,

    /// Impair only datagrams from the stack to the device (overrides --impair for that direction).
    #[arg(long, value_name = "SPEC")]
    pub impair_out: Option<ImpairSpec>,

    /// Seed of the impairment's random choices, so a failing run replays (random if absent).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Do not ask the kernel for checksum and segmentation offloads on the TUN (and clear any
    /// an earlier program left), so every read is one MTU-sized datagram.
    #[arg(long)]
    pub no_offload: bool,

    /// Write every datagram crossing the device, both directions, to FILE (pcap, raw IPv4), as
    /// the device hands it over: with offloads, 64 KiB super-segments as tcpdump on the TUN shows
    /// them; before --impair acts
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Write the stack's decisions to FILE, one JSON object per line (docs/trace-format.md):
    /// segments with relative sequence numbers and retransmission causes, state changes, RTT,
    /// cwnd and window changes, and what --impair did; `-` writes to standard error
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Congestion control of every connection: cubic (as Linux) or newreno.
    #[arg(long = "cc", value_name = "ALGORITHM", default_value = "cubic", value_parser = parse_algorithm)]
    pub congestion: Algorithm,

    /// Probe a connection after this long without hearing from the peer (TCP keep-alive,
    /// e.g. 30s); off unless given.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub keepalive: Option<humantime::Duration>,

    /// The device: tun (IPv4 datagrams, routed by the kernel) or tap (Ethernet frames: the
    /// stack is a host on the segment, with its own MAC and ARP).
    #[arg(long, value_name = "MODE", default_value = "tun", value_parser = parse_mode)]
    pub mode: Mode,

    /// Same as --mode tap.
    #[arg(long, conflicts_with = "mode")]
    pub tap: bool,

    /// TAP mode: our MAC address (default: a locally administered one derived from the
    /// interface name and the local address, stable across runs).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<MacAddr>,

    /// TAP mode: the router for destinations outside the local prefix (default: the
    /// subnet's first address, e.g. 10.77.0.1 for 10.77.0.2/24).
    #[arg(long, value_name = "ADDR")]
    pub gateway: Option<Ipv4Addr>,
}

impl DeviceArgs {
    /// The device options these flags stand for, on interface `iface` as `local_ip` (those two
    /// are top-level flags, listed first in `--help`); `verbose` prints ARP in TAP mode.
    pub fn options(
        &self,
        iface: Option<&str>,
        local_ip: InterfaceAddr,
        verbose: bool,
    ) -> DeviceOptions {
        let mode = if self.tap { Mode::Tap } else { self.mode };
        let default_iface = match mode {
            Mode::Tun => DEFAULT_IFACE,
            Mode::Tap => DEFAULT_TAP_IFACE,
        };
        DeviceOptions {
            iface: iface.unwrap_or(default_iface).to_owned(),
            local_ip: local_ip.addr,
            prefix_len: local_ip.prefix_len,
            mode,
            mac: self.mac,
            gateway: self.gateway,
            verbose,
            offload: !self.no_offload,
            impair: self.impair.clone(),
            impair_in: self.impair_in.clone(),
            impair_out: self.impair_out.clone(),
            seed: self.seed,
            pcap: self.pcap.clone(),
            trace: self.trace.clone(),
            congestion: self.congestion,
            keepalive: self.keepalive.map(Duration::from),
        }
    }
}

fn parse_mode(text: &str) -> Result<Mode, String> {
    match text.to_ascii_lowercase().as_str() {
        "tun" => Ok(Mode::Tun),
        "tap" => Ok(Mode::Tap),
        _ => Err(format!("unknown mode '{text}' (use tun or tap)")),
    }
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    match text.to_ascii_lowercase().as_str() {
        "cubic" => Ok(Algorithm::Cubic),
        "newreno" | "reno" => Ok(Algorithm::NewReno),
        _ => Err(format!(
            "unknown congestion control '{text}' (use cubic or newreno)"
        )),
    }
}

fn parse_user_agent(text: &str) -> Result<String, String> {
    if !crate::http::headers::is_valid_header_value(text) {
        return Err("the user agent holds a control character (CR, LF, NUL...)".to_owned());
    }
    Ok(text.to_owned())
}

/// Parses a `--limit-rate` value like curl: bytes per second, with an optional `k`, `m` or `g`
/// suffix (either case) meaning 1024, 1024² or 1024³.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, multiplier) = match trimmed.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let multiplier = match unit.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("unknown unit '{unit}' (use k, m or g, e.g. 500k)")),
            };
            (&trimmed[..at], multiplier)
        }
        _ => (trimmed, 1),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a rate (bytes per second, e.g. 500k or 2m)"))?;
    match number.checked_mul(multiplier) {
        Some(0) => Err("the rate must be more than zero".to_owned()),
        Some(rate) => Ok(rate),
        None => Err(format!("'{text}' is too large")),
    }
}

fn parse_positive_duration(text: &str) -> Result<humantime::Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|error| format!("{error} (try e.g. 30s, 2m)"))?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(duration.into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let argv = ["tunstack", "serve"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Serve(serve) => *serve,
            _ => unreachable!("parsed as serve"),
        })
    }

    #[test]
    fn plot_takes_a_trace_an_output_and_maybe_a_connection() {
        let cli =
            Cli::try_parse_from(["tunstack", "plot", "t.jsonl", "-o", "f.svg", "--conn", "3"]);
        let Command::Plot(args) = cli.unwrap().command else {
            panic!("parsed as another command");
        };
        let request = args.request();
        assert_eq!(request.trace, PathBuf::from("t.jsonl"));
        assert_eq!(request.output, PathBuf::from("f.svg"));
        assert_eq!(request.conn, Some(3));
        for bad in [
            &["plot", "t.jsonl"][..],
            &["plot", "-o", "f.svg"],
            &["plot", "t", "-o", "f.svg", "--conn", "x"],
        ] {
            let argv = std::iter::once("tunstack").chain(bad.iter().copied());
            assert_eq!(
                Cli::try_parse_from(argv).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serve_defaults_and_usage_errors() {
        let options = serve(&["/srv/www"]).unwrap().options();
        assert_eq!(options.port, 80);
        assert_eq!(options.root, PathBuf::from("/srv/www"));
        assert_eq!(options.device.iface, "tun0");
        assert_eq!(options.timeout, crate::serve::options::DEFAULT_TIMEOUT);
        assert_eq!(options.header_timeout(), Duration::from_secs(30));
        let custom = serve(&[
            "-p",
            "8080",
            "--timeout",
            "5s",
            "--cc",
            "newreno",
            "-q",
            "d",
        ])
        .unwrap()
        .options();
        assert_eq!(custom.port, 8080);
        assert_eq!(custom.header_timeout(), Duration::from_secs(5));
        assert_eq!(custom.device.congestion, Algorithm::NewReno);
        assert!(custom.quiet);
        assert!(serve(&[]).is_err(), "DIR is required");
        assert!(serve(&["-p", "0", "d"]).is_err());
        assert!(serve(&["-q", "-v", "d"]).is_err());
    }

    fn fetch(args: &[&str]) -> Result<FetchArgs, clap::Error> {
        let argv = ["tunstack", "fetch"].iter().chain(args).copied();
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Fetch(fetch) => *fetch,
            _ => unreachable!("parsed as fetch"),
        })
    }

    #[test]
    fn defaults_fit_the_setup_scripts() {
        let args = fetch(&["http://10.77.1.2/"]).unwrap();
        assert_eq!(args.output, None);
        assert_eq!(args.urls, vec!["http://10.77.1.2/".to_string()]);
        assert!(args.input_file.is_none());
        let options = args.options();
        // clap's defaults are the engine's: one definition.
        assert_eq!(options, Options::default());
        assert_eq!(options.device.iface, "tun0");
        assert_eq!(options.device.local_ip, Ipv4Addr::new(10, 77, 0, 2));
        assert!(options.device.offload);
        assert_eq!(options.timeout, Duration::from_secs(180));
        assert_eq!(options.connect_timeout, None);
        assert_eq!(options.max_redirects, 10);
        assert!(options.resolve.is_empty());
        assert!(!options.quiet && !options.verbose);
        assert_eq!(options.parallel, 4);
        assert!(options.cacert.is_none() && !options.insecure);
    }

    #[test]
    fn every_option_is_parsed() {
        let args = fetch(&[
            "--iface",
            "tun7",
            "--local-ip",
            "10.77.0.9",
            "-o",
            "out.bin",
            "--timeout",
            "2s",
            "--connect-timeout",
            "1500ms",
            "--max-redirects",
            "3",
            "--resolve",
            "example.com:80:10.77.1.2",
            "--resolve",
            "other:8080:10.77.1.3",
            "--no-offload",
            "--seed",
            "7",
            "--pcap",
            "c.pcap",
            "--trace",
            "t.jsonl",
            "--stats",
            "-v",
            "http://example.com/x",
        ])
        .unwrap();
        assert_eq!(
            args.output,
            Some(OutputTarget::Path(PathBuf::from("out.bin")))
        );
        let options = args.options();
        assert_eq!(options.device.iface, "tun7");
        assert_eq!(options.device.local_ip, Ipv4Addr::new(10, 77, 0, 9));
        assert!(!options.device.offload);
        assert_eq!(options.device.seed, Some(7));
        assert_eq!(options.device.pcap, Some(PathBuf::from("c.pcap")));
        assert_eq!(options.device.trace, Some(PathBuf::from("t.jsonl")));
        assert!(options.stats);
        assert_eq!(options.timeout, Duration::from_secs(2));
        assert_eq!(options.connect_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(options.max_redirects, 3);
        assert_eq!(
            options.resolve,
            vec![
                "example.com:80:10.77.1.2".parse::<ResolveEntry>().unwrap(),
                "other:8080:10.77.1.3".parse().unwrap(),
            ]
        );
        assert!(options.verbose);
    }

    #[test]
    fn dash_means_standard_output() {
        assert_eq!(
            fetch(&["-o", "-", "http://h/"]).unwrap().output,
            Some(OutputTarget::Stdout)
        );
        assert_eq!(
            fetch(&["--output=-", "http://h/"]).unwrap().output,
            Some(OutputTarget::Stdout)
        );
        assert!(fetch(&["-o", "", "http://h/"]).is_err());
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        let error = fetch(&["-q", "-v", "http://h/"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(error.exit_code(), 2);
        assert!(fetch(&["-q", "http://h/"]).unwrap().quiet);
    }

    #[test]
    fn a_missing_url_is_a_usage_error() {
        let error = fetch(&[]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn a_missing_subcommand_is_a_usage_error() {
        let error = Cli::try_parse_from(["tunstack"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["--timeout", "soon", "http://h/"][..],
            &["--timeout", "0s", "http://h/"],
            &["--connect-timeout", "-1s", "http://h/"],
            &["--local-ip", "10.77.0", "http://h/"],
            &["--local-ip", "::1", "http://h/"],
            &["--max-redirects", "-1", "http://h/"],
            &["--resolve", "h:80", "http://h/"],
            &["--resolve", "h:80:::1", "http://h/"],
            &["--unknown", "http://h/"],
        ] {
            let error = fetch(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn help_and_version_are_available() {
        let help = fetch(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let text = help.to_string();
        for option in [
            "--iface",
            "--local-ip",
            "--output",
            "--timeout",
            "--connect-timeout",
            "--resolve",
        ] {
            assert!(text.contains(option), "help lacks {option}:\n{text}");
        }
        assert!(text.contains("first SYN"));
        for option in [
            "--header",
            "--user-agent",
            "--head",
            "--user",
            "--retry",
            "--retry-delay",
            "--compressed",
            "--limit-rate",
        ] {
            assert!(text.contains(option), "help lacks {option}:\n{text}");
        }
        let fetch_help = Cli::try_parse_from(["tunstack", "--help"])
            .unwrap_err()
            .to_string();
        assert!(fetch_help.contains("Download URLs"), "{fetch_help}");
        let version = Cli::try_parse_from(["tunstack", "--version"]).unwrap_err();
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
    }

    #[test]
    fn request_options_are_parsed() {
        let args = fetch(&[
            "-H",
            "X-A: 1",
            "--header",
            "Accept:",
            "-A",
            "probe/1",
            "-u",
            "alice:pa:ss",
            "--retry",
            "3",
            "--retry-delay",
            "250ms",
            "--compressed",
            "--limit-rate",
            "500k",
            "http://h/",
        ])
        .unwrap();
        assert_eq!(args.headers.len(), 2);
        assert_eq!(args.headers[0].value.as_deref(), Some("1"));
        assert_eq!(args.headers[1].value, None);
        assert_eq!(args.user_agent.as_deref(), Some("probe/1"));
        let user = args.user.clone().unwrap();
        assert_eq!(
            (user.user.as_str(), user.password.as_str()),
            ("alice", "pa:ss")
        );
        assert_eq!(args.retry, 3);
        assert_eq!(args.options().retry_delay, Some(Duration::from_millis(250)));
        assert!(args.compressed && !args.head);
        assert_eq!(args.limit_rate, Some(500 * 1024));
        assert!(fetch(&["-I", "http://h/"]).unwrap().head);
        let defaults = fetch(&["http://h/"]).unwrap();
        assert_eq!(defaults.retry, 0);
        assert!(defaults.limit_rate.is_none() && defaults.user.is_none());
    }

    #[test]
    fn bad_request_options_are_usage_errors() {
        for args in [
            &["-H", "Bad Name: x", "http://h/"][..],
            &["-H", "X: a\r\nY: b", "http://h/"],
            &["-H", "nocolon", "http://h/"],
            &["-A", "a\nb", "http://h/"],
            &["-u", "alice", "http://h/"],
            &["--limit-rate", "fast", "http://h/"],
            &["-I", "-c", "http://h/"],
            &["-I", "-o", "x", "http://h/"],
            &["--compressed", "-c", "http://h/"],
            &["--retry-delay", "0s", "http://h/"],
        ] {
            let error = fetch(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn rates_are_bytes_per_second_with_binary_units() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("500k"), Ok(512_000));
        assert_eq!(parse_rate("500K"), Ok(512_000));
        assert_eq!(parse_rate("2m"), Ok(2 << 20));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        for bad in [
            "",
            "k",
            "0",
            "0k",
            "-1k",
            "1.5m",
            "5x",
            "12 kb",
            "99999999999999999999g",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
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
