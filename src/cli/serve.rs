//! `tunstack serve`: the directory, the port and the listening address.

use std::path::PathBuf;

use clap::Args;

use super::parse::parse_positive_duration;
use super::DeviceArgs;
use crate::fetch::DEFAULT_LOCAL_IP;
use crate::link::InterfaceAddr;

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::{try_parse, Command};
    use crate::tcp::Algorithm;

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let Command::Serve(serve) = try_parse("serve", args)? else {
            unreachable!("parsed as serve")
        };
        Ok(*serve)
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
}
