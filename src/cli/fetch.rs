//! `tunstack fetch`: the URLs, where to save them, and how to ask for them.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{parse_positive_duration, parse_rate, parse_user_agent};
use super::DeviceArgs;
use crate::fetch::{
    Options, ResolveEntry, DEFAULT_LOCAL_IP, DEFAULT_MAX_REDIRECTS, DEFAULT_PARALLEL,
    DEFAULT_RETRY, DEFAULT_TIMEOUT,
};
use crate::http::{Credentials, HeaderEdit, OutputTarget};
use crate::link::InterfaceAddr;

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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::cli::{try_parse, Cli, Command};
    use clap::error::ErrorKind;
    use clap::Parser;

    fn fetch(args: &[&str]) -> Result<FetchArgs, clap::Error> {
        let Command::Fetch(fetch) = try_parse("fetch", args)? else {
            unreachable!("parsed as fetch")
        };
        Ok(*fetch)
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
}
