//! Runs a parsed script against a real `Stack` under virtual time.
//!
//! The runner is the event loop's stand-in and does what it does, no more: whole IPv4
//! datagrams in through `handle_datagram`, out through `poll_transmit` until `None`, timers
//! through `poll_timeout`/`handle_timeout`. Each `<` line is a batch of one datagram (the loop
//! read it and found nothing more), so every ACK the stack owes at the end of a batch shows.
//! Between `batch` and `batch end` the `<` lines are one batch read at one instant, as
//! `tunstack::driver` reads datagrams already queued: after each one only what the stack wants
//! out at once (`Stack::take_transmit_due`) is sent, the rest at `batch end`.
//! The clock only jumps: to each line's time, stopping at every deadline on the way, so a
//! timer that fires between two lines sends at its own instant and must be expected there.
//! Like packetdrill, anything the stack sends that no `>` line matches is a failure.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use tunstack::stack::{ConnId, Event, Stack};
use tunstack::tcp::{ConnError, Connection, State};

use super::config::stack_config;
use super::format::{self, Dir, Numbering};
use super::parse::{
    flag, Action, Field, IcmpSpec, Line, OptSpec, Script, SegmentSpec, UNREACHABLE_CODES,
};
use super::wire::{self, RawOpt, Wire};

/// The stack's address (packetdrill's default local address).
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// The scripted peer (packetdrill's default remote address).
pub const PEER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The port `connect` dials, and the stack's port for inbound segments before any `listen`.
pub const SERVER_PORT: u16 = 8080;
/// The peer's port when it is the one opening.
pub const PEER_PORT: u16 = 50000;
/// The peer's ISN: arbitrary, high enough that absolute and relative numbers never look alike.
pub const PEER_ISN: u32 = 1_000_000_000;

/// Why a script did not pass.
#[derive(Debug)]
pub enum Failure {
    /// The script itself is wrong (bad config, impossible line): never an expected failure.
    Setup(String),
    /// The stack did something the script does not allow.
    Mismatch(String),
}

/// Runs `script` (read from `path`, for messages).
pub fn run(path: &str, script: &Script) -> Result<(), Failure> {
    let mut runner = Runner::new(path, script)?;
    for line in &script.lines {
        runner.step(line)?;
    }
    if runner.batch.is_some() {
        return Err(Failure::Setup(format!(
            "{path}: `batch` without `batch end`"
        )));
    }
    runner.expect_nothing_pending(None)
}

struct Runner<'a> {
    path: &'a str,
    stack: Stack,
    /// Virtual time zero. The only real clock reading; everything after is `base + offset`.
    base: Instant,
    now: Duration,
    tolerance: Duration,
    /// Segments the stack sent that no `>` line has matched yet, with when they were sent.
    pending: VecDeque<(Duration, Wire)>,
    num: Numbering,
    local_port: u16,
    peer_port: u16,
    listening: Option<u16>,
    conn: Option<ConnId>,
    /// The error from the stack's `Failed` event, for connections it has already forgotten.
    failed: Option<ConnError>,
    ident: u16,
    write_offset: u64,
    read_offset: u64,
    /// Everything that crossed the wire so far, in the dialect, for failure messages.
    transcript: Vec<String>,
    /// Inside `batch` ... `batch end`: the batch's instant.
    batch: Option<Duration>,
}

impl<'a> Runner<'a> {
    fn new(path: &'a str, script: &Script) -> Result<Self, Failure> {
        let (config, tolerance, peer_isn) = stack_config(path, script)?;
        let base = Instant::now();
        Ok(Runner {
            path,
            stack: Stack::new(base, config),
            base,
            now: Duration::ZERO,
            tolerance,
            pending: VecDeque::new(),
            num: Numbering {
                ours: None,
                peer: peer_isn,
                our_ts: None,
            },
            local_port: SERVER_PORT,
            peer_port: PEER_PORT,
            listening: None,
            conn: None,
            failed: None,
            ident: 1,
            write_offset: 0,
            read_offset: 0,
            transcript: Vec::new(),
            batch: None,
        })
    }

    fn at(&self, t: Duration) -> Instant {
        self.base + t
    }

    fn step(&mut self, line: &Line) -> Result<(), Failure> {
        if let Action::Expect(spec) = &line.action {
            return self.expect_segment(line, spec);
        }
        if let Some(at) = self.batch {
            // The driver reads a batch at one clock reading and fires no timer inside it.
            if !matches!(line.action, Action::Inject(_) | Action::BatchEnd) {
                return Err(self.setup(line, "a batch holds only `<` and `>` lines".into()));
            }
            if line.time != at {
                return Err(self.setup(line, "a batch is read at one instant: use `+0`".into()));
            }
            self.expect_nothing_pending(Some(line))?;
            return self.execute(line);
        }
        self.advance(line.time, false);
        self.expect_nothing_pending(Some(line))?;
        self.execute(line)
    }

    /// Moves the clock to `target`, firing every deadline on the way at its own instant and
    /// sending what it produces; with `stop_on_send`, stops at the first segment sent.
    fn advance(&mut self, target: Duration, stop_on_send: bool) {
        for _ in 0..100_000 {
            if stop_on_send && !self.pending.is_empty() {
                return;
            }
            match self.stack.poll_timeout() {
                Some(at) if at <= self.at(target) => {
                    self.now = at.saturating_duration_since(self.base).max(self.now);
                    self.stack.handle_timeout(self.at(self.now));
                    self.flush();
                }
                _ => break,
            }
        }
        // Stopped at a send: the clock stays at that send's instant.
        if !stop_on_send || self.pending.is_empty() {
            self.now = self.now.max(target);
        }
    }

    /// Sends everything the stack has now, as the event loop's flush does.
    fn flush(&mut self) {
        let mut buf = vec![0u8; 70_000];
        while let Some(len) = self.stack.poll_transmit(self.at(self.now), &mut buf) {
            let wire = match Wire::from_datagram(&buf[..len]) {
                Ok((src, dst, w)) if src == LOCAL_IP && dst == PEER_IP => w,
                Ok((src, dst, _)) => {
                    self.transcript.push(format!(
                        "{} > datagram {src} -> {dst}",
                        format::time(self.now)
                    ));
                    continue;
                }
                Err(e) => {
                    self.transcript.push(format!(
                        "{} > unreadable datagram: {e}",
                        format::time(self.now)
                    ));
                    // Keep it as a segment nobody can expect, so the run fails right here.
                    Wire {
                        src_port: 0,
                        dst_port: 0,
                        seq: 0,
                        ack: 0,
                        flags: 0xff,
                        window: 0,
                        options: vec![],
                        payload: vec![],
                    }
                }
            };
            self.learn(&wire);
            self.transcript.push(format!(
                "{} {}",
                format::time(self.now),
                format::segment(Dir::Out, &wire, &self.num)
            ));
            self.pending.push_back((self.now, wire));
        }
        while let Some(event) = self.stack.poll_event() {
            if let Event::Failed(_, err) = event {
                self.failed = Some(err);
            }
        }
    }

    /// The stack's ISN, first TSval and (after `connect`) port, from its first segments.
    fn learn(&mut self, w: &Wire) {
        if self.num.ours.is_none() && w.flags & flag::SYN != 0 {
            self.num.ours = Some(w.seq);
            if self.conn.is_some() && self.listening.is_none() {
                self.local_port = w.src_port;
            }
        }
        if self.num.our_ts.is_none() {
            if let Some(ts) = w.options.iter().find(|o| o.kind == wire::OPT_TS) {
                if ts.data.len() == 8 {
                    self.num.our_ts = Some(u32::from_be_bytes([
                        ts.data[0], ts.data[1], ts.data[2], ts.data[3],
                    ]));
                }
            }
        }
    }

    /// A failure message a person can act on: file:line, the time, what went wrong, the
    /// script line, what the stack did instead (in the dialect) and the recent traffic.
    fn fail(&self, line: Option<&Line>, what: String) -> Failure {
        self.fail_with(line, what, None)
    }

    fn fail_with(&self, line: Option<&Line>, what: String, sent: Option<String>) -> Failure {
        let mut msg = match line {
            Some(l) => format!(
                "{}:{}: at {}: {what}
  script: {}
",
                self.path,
                l.number,
                format::time(l.time),
                l.text
            ),
            None => format!(
                "{}: {what}
",
                self.path
            ),
        };
        if let Some(sent) = sent {
            msg.push_str(&format!(
                "  sent:   {sent}
"
            ));
        }
        let tail = self.transcript.len().saturating_sub(12);
        if !self.transcript.is_empty() {
            msg.push_str("  on the wire so far (last 12):\n");
            for t in &self.transcript[tail..] {
                msg.push_str(&format!("    {t}\n"));
            }
        }
        Failure::Mismatch(msg)
    }

    fn setup(&self, line: &Line, what: String) -> Failure {
        Failure::Setup(format!("{}:{}: {what}", self.path, line.number))
    }

    /// packetdrill's rule: before any line other than `>`, the stack must have sent nothing
    /// that was not expected.
    fn expect_nothing_pending(&self, next: Option<&Line>) -> Result<(), Failure> {
        let Some((at, w)) = self.pending.front() else {
            return Ok(());
        };
        let seg = format!(
            "{} {}",
            format::time(*at),
            format::segment(Dir::Out, w, &self.num)
        );
        let what = match next {
            Some(_) => "the stack sent a segment the script does not expect before this line",
            None => "after the last line, the stack sent a segment the script does not expect",
        };
        Err(self.fail_with(next, what.into(), Some(seg)))
    }

    fn expect_segment(&mut self, line: &Line, spec: &SegmentSpec) -> Result<(), Failure> {
        if self.pending.is_empty() && self.batch.is_none() {
            self.advance(line.time + self.tolerance, true);
        }
        let Some((at, wire)) = self.pending.pop_front() else {
            let next = match self.stack.poll_timeout() {
                Some(t) => format!(
                    "; the stack's next timer is at {}",
                    format::time(t.saturating_duration_since(self.base))
                ),
                None => "; the stack has no timer running".into(),
            };
            return Err(self.fail(
                Some(line),
                format!(
                    "expected a segment at {}, the stack sent nothing by {}{next}",
                    format::time(line.time),
                    format::time(line.time + self.tolerance)
                ),
            ));
        };
        let sent = format!(
            "{} {}",
            format::time(at),
            format::segment(Dir::Out, &wire, &self.num)
        );
        let mut diffs = self.differences(spec, &wire);
        if at.abs_diff(line.time) > self.tolerance {
            diffs.insert(0, "time".into());
        }
        if !diffs.is_empty() {
            return Err(self.fail_with(
                Some(line),
                format!("the stack's segment does not match ({})", diffs.join(", ")),
                Some(sent),
            ));
        }
        self.now = self.now.max(line.time);
        Ok(())
    }

    /// Names of the fields of `w` that `spec` does not allow.
    fn differences(&self, spec: &SegmentSpec, w: &Wire) -> Vec<String> {
        let mut d = Vec::new();
        if w.src_port != self.local_port || w.dst_port != self.peer_port {
            d.push(format!(
                "ports {}->{} instead of {}->{}",
                w.src_port, w.dst_port, self.local_port, self.peer_port
            ));
        }
        if w.flags != spec.flags {
            d.push("flags".into());
        }
        let start = self.num.ours_rel(w.seq);
        if start != spec.start {
            d.push("seq".into());
        }
        if w.payload.len() as u32 != spec.len {
            d.push("length".into());
        } else {
            let syn = u64::from(w.flags & flag::SYN != 0);
            let offset = u64::from(start) + syn;
            if offset > 0 && w.payload != wire::pattern(offset - 1, w.payload.len()) {
                d.push("payload bytes (not the written stream at that offset)".into());
            }
        }
        if let Some(ack) = spec.ack {
            if !ack.matches(self.num.peer_rel(w.ack)) {
                d.push("ack".into());
            }
        }
        if let Some(win) = spec.win {
            if !win.matches(w.window) {
                d.push("win".into());
            }
        }
        if let Some(opts) = &spec.options {
            let same = opts.len() == w.options.len()
                && opts
                    .iter()
                    .zip(&w.options)
                    .all(|(o, r)| self.option_matches(o, r));
            if !same {
                d.push("options".into());
            }
        }
        d
    }

    fn option_matches(&self, spec: &OptSpec, raw: &RawOpt) -> bool {
        let d = &raw.data;
        let be32 = |at: usize| u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        match (spec, raw.kind, raw.len) {
            (OptSpec::Nop, wire::OPT_NOP, None) => true,
            (OptSpec::Eol, wire::OPT_EOL, None) => d.is_empty(),
            (OptSpec::Mss(f), wire::OPT_MSS, Some(4)) => {
                f.matches(u16::from_be_bytes([d[0], d[1]]))
            }
            (OptSpec::Wscale(f), wire::OPT_WSCALE, Some(3)) => f.matches(d[0]),
            (OptSpec::SackOk, wire::OPT_SACK_OK, Some(2)) => true,
            (OptSpec::Ts { val, ecr }, wire::OPT_TS, Some(10)) => {
                val.matches(self.num.our_ts_rel(be32(0))) && ecr.matches(be32(4))
            }
            (OptSpec::Sack(blocks), wire::OPT_SACK, Some(len)) => {
                usize::from(len) == 2 + 8 * blocks.len()
                    && blocks.iter().enumerate().all(|(i, &(l, r))| {
                        self.num.peer_rel(be32(i * 8)) == l
                            && self.num.peer_rel(be32(i * 8 + 4)) == r
                    })
            }
            (OptSpec::Raw { kind, len, data }, k, l) => {
                *kind == k && l == Some(len.unwrap_or(data.len() as u8 + 2)) && data == d
            }
            _ => false,
        }
    }

    /// The datagram a `<` line stands for, in absolute numbers.
    fn build(&self, line: &Line, spec: &SegmentSpec) -> Result<Wire, Failure> {
        let ours = self.num.ours.unwrap_or(0);
        let any =
            |what: &str| self.setup(line, format!("`{what} *` only makes sense on `>` lines"));
        let ack = match spec.ack {
            Some(Field::Is(a)) => ours.wrapping_add(a),
            Some(Field::Any) => return Err(any("ack")),
            None if spec.flags & flag::ACK != 0 => {
                return Err(self.setup(line, "a `<` segment with `.` needs `ack N`".into()))
            }
            None => 0,
        };
        let window = match spec.win {
            Some(Field::Is(w)) => w,
            Some(Field::Any) => return Err(any("win")),
            None => 65535,
        };
        let mut options = Vec::new();
        let field = |f: &Field<u32>, what: &str| match f {
            Field::Is(v) => Ok(*v),
            Field::Any => Err(any(what)),
        };
        for o in spec.options.iter().flatten() {
            let (kind, data): (u8, Vec<u8>) = match o {
                OptSpec::Nop | OptSpec::Eol => {
                    let kind = if *o == OptSpec::Nop {
                        wire::OPT_NOP
                    } else {
                        wire::OPT_EOL
                    };
                    options.push(RawOpt {
                        kind,
                        len: None,
                        data: vec![],
                    });
                    continue;
                }
                OptSpec::Mss(f) => (
                    wire::OPT_MSS,
                    field(&map16(f), "mss")?.to_be_bytes()[2..].to_vec(),
                ),
                OptSpec::Wscale(f) => (wire::OPT_WSCALE, vec![field(&map8(f), "wscale")? as u8]),
                OptSpec::SackOk => (wire::OPT_SACK_OK, vec![]),
                OptSpec::Ts { val, ecr } => {
                    let ecr = self
                        .num
                        .our_ts
                        .unwrap_or(0)
                        .wrapping_add(field(ecr, "ecr")?);
                    let mut d = field(val, "val")?.to_be_bytes().to_vec();
                    d.extend_from_slice(&ecr.to_be_bytes());
                    (wire::OPT_TS, d)
                }
                OptSpec::Sack(blocks) => {
                    let mut d = Vec::new();
                    for &(l, r) in blocks {
                        d.extend_from_slice(&ours.wrapping_add(l).to_be_bytes());
                        d.extend_from_slice(&ours.wrapping_add(r).to_be_bytes());
                    }
                    (wire::OPT_SACK, d)
                }
                OptSpec::Raw { kind, len, data } => {
                    let len = len.unwrap_or(data.len() as u8 + 2);
                    options.push(RawOpt {
                        kind: *kind,
                        len: Some(len),
                        data: data.clone(),
                    });
                    continue;
                }
            };
            options.push(RawOpt {
                kind,
                len: Some(data.len() as u8 + 2),
                data,
            });
        }
        // An IPv4 datagram holds at most 65535 bytes: 40 of headers, options and the payload.
        if spec.len as usize + 40 + 40 > usize::from(u16::MAX) {
            return Err(self.setup(
                line,
                format!("{} bytes do not fit in one datagram", spec.len),
            ));
        }
        let syn = u64::from(spec.flags & flag::SYN != 0);
        let offset = (u64::from(spec.start) + syn).saturating_sub(1);
        Ok(Wire {
            src_port: self.peer_port,
            dst_port: self.local_port,
            seq: self.num.peer.wrapping_add(spec.start),
            ack,
            flags: spec.flags,
            window,
            options,
            payload: wire::pattern(offset, spec.len as usize),
        })
    }

    fn inject(&mut self, line: &Line, spec: &SegmentSpec) -> Result<(), Failure> {
        let w = self.build(line, spec)?;
        let d = w.to_datagram(PEER_IP, LOCAL_IP, self.ident);
        self.ident = self.ident.wrapping_add(1);
        self.transcript.push(format!(
            "{} {}",
            format::time(self.now),
            format::segment(Dir::In, &w, &self.num)
        ));
        self.stack.handle_datagram(self.at(self.now), &d);
        // Inside a batch, as the driver does: only what is due before the next datagram.
        // Otherwise a batch of one: what is due now and what waits for the batch's end both go
        // out.
        if self.stack.take_transmit_due() || self.batch.is_none() {
            self.flush();
        }
        Ok(())
    }

    /// A router on the path (here, the peer's address) reports one of our segments undelivered.
    fn inject_icmp(&mut self, spec: &IcmpSpec) {
        let ours = self.num.ours.unwrap_or(0);
        let d = wire::icmp_unreachable(
            PEER_IP,
            LOCAL_IP,
            spec.code,
            spec.mtu,
            (LOCAL_IP, self.local_port),
            (PEER_IP, self.peer_port),
            ours.wrapping_add(spec.seq),
        );
        self.transcript.push(format!(
            "{} < icmp unreachable {} [seq {}]",
            format::time(self.now),
            UNREACHABLE_CODES[usize::from(spec.code)],
            spec.seq
        ));
        self.stack.handle_datagram(self.at(self.now), &d);
        let _ = self.stack.take_transmit_due();
        self.flush();
    }

    fn connection(&self) -> Option<&Connection> {
        match self.conn {
            Some(id) => self.stack.connection(id),
            None => self
                .stack
                .connection_by_ports(self.local_port, SocketAddrV4::new(PEER_IP, self.peer_port)),
        }
    }

    fn need_conn(&self, line: &Line) -> Result<ConnId, Failure> {
        self.conn.ok_or_else(|| {
            self.setup(
                line,
                "no connection yet: `connect` or `accept` first".into(),
            )
        })
    }

    fn execute(&mut self, line: &Line) -> Result<(), Failure> {
        match &line.action {
            Action::Expect(_) => unreachable!("handled by step"),
            Action::Inject(spec) => self.inject(line, spec)?,
            Action::InjectIcmp(spec) => self.inject_icmp(spec),
            Action::Connect => {
                if self.conn.is_some() {
                    return Err(self.setup(line, "one connection per script".into()));
                }
                self.peer_port = SERVER_PORT;
                let remote = SocketAddrV4::new(PEER_IP, SERVER_PORT);
                let id = self
                    .stack
                    .connect(self.at(self.now), remote)
                    .map_err(|e| self.fail(Some(line), format!("connect failed: {e}")))?;
                self.conn = Some(id);
                self.flush();
            }
            Action::Listen(port) => {
                self.stack
                    .listen(*port)
                    .map_err(|e| self.setup(line, e.to_string()))?;
                self.local_port = *port;
                self.listening = Some(*port);
            }
            Action::Accept => {
                let port = self
                    .listening
                    .ok_or_else(|| self.setup(line, "`accept` without `listen`".into()))?;
                let id = self.stack.accept(port).ok_or_else(|| {
                    self.fail(
                        Some(line),
                        format!("no established connection waits on port {port}"),
                    )
                })?;
                self.conn = Some(id);
            }
            Action::Write(n) => {
                let id = self.need_conn(line)?;
                let data = wire::pattern(self.write_offset, *n);
                let took = self
                    .stack
                    .send(id, &data)
                    .map_err(|e| self.fail(Some(line), format!("write failed: {e}")))?;
                if took != *n {
                    return Err(self.fail(
                        Some(line),
                        format!("the send buffer took {took} of {n} bytes"),
                    ));
                }
                self.write_offset += *n as u64;
                self.flush();
            }
            Action::Read(n) => {
                let id = self.need_conn(line)?;
                let mut buf = vec![0u8; *n];
                let mut got = 0;
                while got < *n {
                    match self.stack.recv(id, &mut buf[got..]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => got += k,
                    }
                }
                if got < *n {
                    return Err(
                        self.fail(Some(line), format!("only {got} of {n} bytes were readable"))
                    );
                }
                let want = wire::pattern(self.read_offset, *n);
                if let Some(i) = (0..*n).find(|&i| buf[i] != want[i]) {
                    return Err(self.fail(
                        Some(line),
                        format!(
                            "byte {} of the stream is {}, the peer sent {}",
                            self.read_offset + i as u64,
                            buf[i],
                            want[i]
                        ),
                    ));
                }
                self.read_offset += *n as u64;
                self.flush();
            }
            Action::Close => {
                let id = self.need_conn(line)?;
                let _ = self.stack.close(id);
                self.flush();
            }
            Action::Abort => {
                let id = self.need_conn(line)?;
                let _ = self.stack.abort(id);
                self.flush();
            }
            Action::Reset => {
                let id = self.need_conn(line)?;
                let _ = self.stack.reset(id);
                self.flush();
            }
            Action::ExpectState(name) => {
                let want = name.to_ascii_uppercase().replace('-', "_");
                let have = self.connection().map_or(State::Closed, |c| c.state());
                let have = state_name(have);
                if want != have {
                    return Err(self.fail(Some(line), format!("state is {have}")));
                }
            }
            Action::ExpectReadable(n) => {
                let have = self.connection().map_or(0, |c| c.recv_queue());
                if have != *n {
                    return Err(self.fail(Some(line), format!("{have} bytes are readable")));
                }
            }
            Action::ExpectError(kind) => {
                let err = self
                    .connection()
                    .and_then(|c| c.error().cloned())
                    .or_else(|| self.failed.clone());
                let have = match &err {
                    None => "none".to_string(),
                    Some(ConnError::Refused) => "refused".into(),
                    Some(ConnError::Reset) => "reset".into(),
                    Some(ConnError::TimedOut) => "timeout".into(),
                    Some(ConnError::Unreachable(_)) => "unreachable".into(),
                    Some(other) => other.to_string(),
                };
                if &have != kind {
                    return Err(self.fail(Some(line), format!("the connection's error is {have}")));
                }
            }
            Action::ExpectStat(name, want) => {
                let stats = self
                    .connection()
                    .ok_or_else(|| self.fail(Some(line), "no connection".into()))?
                    .stats();
                let have = if name == "cwnd" {
                    stats.cwnd
                } else {
                    stats.ssthresh
                };
                if have != *want {
                    return Err(self.fail(Some(line), format!("{name} is {have}")));
                }
            }
            Action::BatchStart => {
                if self.batch.is_some() {
                    return Err(self.setup(line, "`batch` inside a batch".into()));
                }
                self.batch = Some(line.time);
            }
            Action::BatchEnd => {
                if self.batch.take().is_none() {
                    return Err(self.setup(line, "`batch end` without `batch`".into()));
                }
                let _ = self.stack.take_transmit_due();
                self.flush();
            }
            Action::ExpectNothingUntil(until) => {
                self.advance(*until, true);
                if !self.pending.is_empty() {
                    return self.expect_nothing_pending(Some(line));
                }
            }
        }
        Ok(())
    }
}

fn map16(f: &Field<u16>) -> Field<u32> {
    match f {
        Field::Any => Field::Any,
        Field::Is(v) => Field::Is(u32::from(*v)),
    }
}

fn map8(f: &Field<u8>) -> Field<u32> {
    match f {
        Field::Any => Field::Any,
        Field::Is(v) => Field::Is(u32::from(*v)),
    }
}

/// RFC 9293's names, with `_` for `-` (as in `expect state FIN_WAIT_1`).
fn state_name(s: State) -> &'static str {
    match s {
        State::SynSent => "SYN_SENT",
        State::SynReceived => "SYN_RECEIVED",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN_WAIT_1",
        State::FinWait2 => "FIN_WAIT_2",
        State::CloseWait => "CLOSE_WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST_ACK",
        State::TimeWait => "TIME_WAIT",
        State::Closed => "CLOSED",
    }
}
