//! A benchmark-only HTTP/1.0 downloader built on smoltcp, the userspace TCP/IP stack a user would
//! most likely pick instead of tunstack. It attaches to a TUN device, runs smoltcp's IPv4 and TCP
//! with a 1 MiB receive buffer, fetches one URL, discards the body while counting it, and exits
//! non-zero when the body is shorter than the server's Content-Length (or anything else fails).
//!
//! usage: smoltcp-bench-client [--iface tun0] [--local-ip 10.77.0.2] [--gateway 10.77.0.1]
//!                             [--idle-timeout-secs 30] http://A.B.C.D[:PORT]/PATH
//!
//! It prints one line on stderr: `smoltcp: BODY_BYTES body bytes in SECONDS s`.

use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

/// The receive buffer the comparison is specified with (also the largest advertised window).
const RX_BUFFER_BYTES: usize = 1024 * 1024;
/// Enough for the request.
const TX_BUFFER_BYTES: usize = 4096;
/// A response head larger than this is treated as an error rather than buffered without bound.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Longest single sleep, so the idle timeout is checked even when smoltcp has no timer pending.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// What the command line asked for.
struct Options {
    iface: String,
    local_ip: Ipv4Addr,
    gateway: Ipv4Addr,
    idle_timeout: StdDuration,
    server: Ipv4Addr,
    port: u16,
    path: String,
}

fn parse_options() -> Result<Options, String> {
    let mut iface = "tun0".to_string();
    let mut local_ip = Ipv4Addr::new(10, 77, 0, 2);
    let mut gateway = Ipv4Addr::new(10, 77, 0, 1);
    let mut idle_timeout = StdDuration::from_secs(30);
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--iface" => iface = value("--iface")?,
            "--local-ip" => local_ip = parse_ip(&value("--local-ip")?)?,
            "--gateway" => gateway = parse_ip(&value("--gateway")?)?,
            "--idle-timeout-secs" => {
                let secs = value("--idle-timeout-secs")?;
                let secs = secs.parse().map_err(|_| format!("bad seconds '{secs}'"))?;
                idle_timeout = StdDuration::from_secs(secs);
            }
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let url = url.ok_or("missing URL")?;
    let (server, port, path) = parse_url(&url)?;
    Ok(Options {
        iface,
        local_ip,
        gateway,
        idle_timeout,
        server,
        port,
        path,
    })
}

fn parse_ip(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("bad IPv4 address '{text}'"))
}

/// Accepts only `http://IPV4[:PORT][/PATH]`: the benchmark never needs names or TLS.
fn parse_url(url: &str) -> Result<(Ipv4Addr, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or(format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse().map_err(|_| format!("bad port in {url}"))?,
        ),
        None => (authority, 80),
    };
    Ok((parse_ip(host)?, port, path))
}

/// The parts of a response head the benchmark checks.
struct Head {
    status: u16,
    content_length: Option<u64>,
}

fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or(format!("bad status line '{status_line}'"))?;
    let mut content_length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad Content-Length '{value}'"))?,
                );
            }
        }
    }
    Ok(Head {
        status,
        content_length,
    })
}

/// Bytes received so far: the head until its blank line, then only a count of body bytes.
#[derive(Default)]
struct Response {
    head: Vec<u8>,
    parsed: Option<Head>,
    body_bytes: u64,
}

impl Response {
    fn absorb(&mut self, data: &[u8]) -> Result<(), String> {
        if self.parsed.is_some() {
            self.body_bytes += data.len() as u64;
            return Ok(());
        }
        self.head.extend_from_slice(data);
        if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
            self.parsed = Some(parse_head(&self.head[..end])?);
            self.body_bytes = (self.head.len() - end - 4) as u64;
            self.head = Vec::new();
        } else if self.head.len() > MAX_HEAD_BYTES {
            return Err("response head too long".to_string());
        }
        Ok(())
    }
}

/// A starting value that differs between runs, for the ISN seed and the ephemeral port.
fn run_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

fn run(options: &Options) -> Result<u64, String> {
    let mut device = TunTapInterface::new(&options.iface, Medium::Ip)
        .map_err(|e| format!("cannot attach to {}: {e}", options.iface))?;
    let fd = device.as_raw_fd();
    let seed = run_seed();

    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = seed;
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::Ipv4(options.local_ip), 24))
            .ok();
    });
    iface
        .routes_mut()
        .add_default_ipv4_route(options.gateway)
        .map_err(|_| "route table full".to_string())?;

    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; RX_BUFFER_BYTES]),
        tcp::SocketBuffer::new(vec![0; TX_BUFFER_BYTES]),
    );
    let mut sockets = SocketSet::new(vec![]);
    let handle = sockets.add(socket);

    let local_port = 49152 + (seed % 16384) as u16;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}:{}\r\nUser-Agent: smoltcp-bench-client\r\n\r\n",
        options.path, options.server, options.port
    );
    {
        let socket = sockets.get_mut::<tcp::Socket>(handle);
        socket
            .connect(
                iface.context(),
                (IpAddress::Ipv4(options.server), options.port),
                local_port,
            )
            .map_err(|e| format!("connect: {e}"))?;
    }

    let mut response = Response::default();
    let mut request_sent = false;
    let mut was_open = false;
    let mut last_progress = StdInstant::now();
    loop {
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        let socket = sockets.get_mut::<tcp::Socket>(handle);

        if socket.may_send() {
            was_open = true;
            if !request_sent {
                socket
                    .send_slice(request.as_bytes())
                    .map_err(|e| format!("send: {e}"))?;
                request_sent = true;
                last_progress = StdInstant::now();
            }
        }
        let mut absorbed = Ok(());
        while socket.can_recv() && absorbed.is_ok() {
            absorbed = socket
                .recv(|data| (data.len(), response.absorb(data)))
                .map_err(|e| format!("recv: {e}"))?;
            last_progress = StdInstant::now();
        }
        absorbed?;

        match socket.state() {
            tcp::State::Closed if !was_open => {
                return Err(format!(
                    "connection to {}:{} failed",
                    options.server, options.port
                ));
            }
            tcp::State::Closed | tcp::State::TimeWait => break,
            // The server sent FIN and everything before it was read: close our side too, and
            // keep polling until our FIN is acknowledged so the server is not left retransmitting.
            tcp::State::CloseWait => socket.close(),
            _ => {}
        }
        if last_progress.elapsed() > options.idle_timeout {
            return Err(format!("nothing received for {:?}", options.idle_timeout));
        }

        let delay = iface
            .poll_delay(Instant::now(), &sockets)
            .map_or(MAX_WAIT, |d| d.min(MAX_WAIT));
        phy_wait(fd, Some(delay)).map_err(|e| format!("wait: {e}"))?;
    }

    let head = response
        .parsed
        .ok_or("connection closed before the response head ended")?;
    if !(200..300).contains(&head.status) {
        return Err(format!("HTTP status {}", head.status));
    }
    match head.content_length {
        Some(expected) if expected != response.body_bytes => Err(format!(
            "body truncated: {} of {expected} bytes",
            response.body_bytes
        )),
        _ => Ok(response.body_bytes),
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("smoltcp-bench-client: {message}");
            return ExitCode::from(2);
        }
    };
    let started = StdInstant::now();
    match run(&options) {
        Ok(bytes) => {
            eprintln!(
                "smoltcp: {bytes} body bytes in {:.3} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("smoltcp-bench-client: {message}");
            ExitCode::FAILURE
        }
    }
}
