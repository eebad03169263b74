//! The script dialect as data, and the parser from text to it.
//!
//! Kept separate from the runner so a syntax error is reported with its line before the stack
//! is even built, and so the README's grammar has one place to be checked against.

use std::time::Duration;

/// A whole script: configuration, an optional expected-failure note and the timed lines.
#[derive(Debug, Clone)]
pub struct Script {
    /// `key=value` pairs from `config` lines, with the line they came from.
    pub config: Vec<(usize, String, String)>,
    /// `xfail REASON`: the script documents a known defect and is expected to fail.
    pub xfail: Option<String>,
    pub lines: Vec<Line>,
}

/// One timed line of the script.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number in the file.
    pub number: usize,
    /// The line as written (comment stripped), for failure messages.
    pub text: String,
    /// Absolute virtual time since the start of the script.
    pub time: Duration,
    pub action: Action,
}

/// What a line does.
#[derive(Debug, Clone)]
pub enum Action {
    /// `<`: the peer sends this segment.
    Inject(SegmentSpec),
    /// `>`: the stack must send a segment matching this.
    Expect(SegmentSpec),
    /// `< icmp unreachable CODE [mtu N] [START:END(LEN)]`: a router reports that one of the
    /// stack's segments could not be delivered.
    InjectIcmp(IcmpSpec),
    Connect,
    Listen(u16),
    Accept,
    Write(usize),
    Read(usize),
    Close,
    Abort,
    /// `Stack::reset`: a reset the application did not ask for; it still holds the connection.
    Reset,
    ExpectState(String),
    ExpectReadable(usize),
    ExpectError(String),
    /// `expect cwnd N` / `expect ssthresh N`: the congestion state, in bytes.
    ExpectStat(String, usize),
    /// Nothing may be sent from now until this absolute time.
    ExpectNothingUntil(Duration),
    /// `batch`: the `<` lines up to `batch end` are one read batch, as the event loop reads
    /// datagrams already queued: only what the stack wants out at once is sent between them.
    BatchStart,
    /// `batch end`: the batch is read; everything still owed goes out.
    BatchEnd,
}

/// An ICMP destination unreachable message quoting one of the stack's segments.
#[derive(Debug, Clone, Copy)]
pub struct IcmpSpec {
    /// The destination unreachable code (RFC 792, RFC 1812 §5.2.7.1).
    pub code: u8,
    /// The next-hop MTU, for `frag_needed` (RFC 1191).
    pub mtu: u16,
    /// The quoted segment's sequence number, in the stack's relative numbering.
    pub seq: u32,
}

/// packetdrill's names for the destination unreachable codes, in code order.
pub const UNREACHABLE_CODES: [&str; 16] = [
    "net_unreachable",
    "host_unreachable",
    "protocol_unreachable",
    "port_unreachable",
    "frag_needed",
    "source_route_failed",
    "net_unknown",
    "host_unknown",
    "source_host_isolated",
    "net_prohibited",
    "host_prohibited",
    "net_tos_unreachable",
    "host_tos_unreachable",
    "packet_filtered",
    "precedence_violation",
    "precedence_cutoff",
];

/// A value in a segment line: a number, or `*` for "anything".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<T> {
    Any,
    Is(T),
}

impl<T: PartialEq + Copy> Field<T> {
    pub fn matches(&self, actual: T) -> bool {
        match self {
            Field::Any => true,
            Field::Is(v) => *v == actual,
        }
    }
}

/// TCP flag bits as they sit in the header's 13th byte.
pub mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// A segment line: `FLAGS START:END(LEN) [ack N] [win N] [<options>]`. Fields left out are
/// `None` and are not checked on `>` lines.
#[derive(Debug, Clone)]
pub struct SegmentSpec {
    pub flags: u8,
    /// Sequence number relative to the sender's ISN (or absolute when that is unknown).
    pub start: u32,
    pub len: u32,
    pub ack: Option<Field<u32>>,
    pub win: Option<Field<u16>>,
    /// `None`: options not checked; `Some(vec![])` (written `<>`): there must be none.
    pub options: Option<Vec<OptSpec>>,
}

/// One option in `<...>`, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptSpec {
    Nop,
    Eol,
    Mss(Field<u16>),
    Wscale(Field<u8>),
    SackOk,
    Ts {
        val: Field<u32>,
        ecr: Field<u32>,
    },
    /// SACK blocks `L:R`, relative to the ISN of the side whose data they describe.
    Sack(Vec<(u32, u32)>),
    /// `optKIND [len N] [HEX]`: any kind, raw bytes; `len` overrides the length byte so
    /// malformed options can be written.
    Raw {
        kind: u8,
        len: Option<u8>,
        data: Vec<u8>,
    },
}

/// A syntax error with the line it is on.
#[derive(Debug)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

type Res<T> = Result<T, String>;

/// Parses a whole script.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut script = Script {
        config: Vec::new(),
        xfail: None,
        lines: Vec::new(),
    };
    let mut last_time = Duration::ZERO;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let err = |message: String| ParseError {
            line: number,
            message,
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let (first, rest) = split_word(line);
        match first {
            "xfail" => {
                if rest.is_empty() {
                    return Err(err("`xfail` needs a reason".into()));
                }
                script.xfail = Some(rest.to_string());
            }
            "config" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair
                        .split_once('=')
                        .ok_or_else(|| err(format!("config `{pair}` is not key=value")))?;
                    script
                        .config
                        .push((number, key.to_string(), value.to_string()));
                }
            }
            _ => {
                let time = parse_time(first, last_time).map_err(err)?;
                if time < last_time {
                    return Err(err(format!(
                        "time {} goes back before the previous line's",
                        first
                    )));
                }
                last_time = time;
                let action = parse_action(rest, time).map_err(err)?;
                script.lines.push(Line {
                    number,
                    text: line.to_string(),
                    time,
                    action,
                });
            }
        }
    }
    Ok(script)
}

fn strip_comment(line: &str) -> &str {
    let line = line.split("//").next().unwrap_or("");
    if line.trim_start().starts_with('#') {
        ""
    } else {
        line
    }
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(at) => (&s[..at], s[at..].trim()),
        None => (s, ""),
    }
}

/// `0.100`, `.1`, `2` (absolute seconds) or `+0.040` (after the previous line).
fn parse_time(word: &str, previous: Duration) -> Res<Duration> {
    let (relative, number) = match word.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let secs: f64 = number
        .parse()
        .map_err(|_| format!("`{word}` is neither a time (0.100, +0.040) nor a keyword"))?;
    if !(0.0..1e6).contains(&secs) {
        return Err(format!("time `{word}` out of range"));
    }
    // Whole microseconds: times are written in ms with at most 3 more digits.
    let d = Duration::from_micros((secs * 1e6).round() as u64);
    Ok(if relative { previous + d } else { d })
}

fn parse_action(rest: &str, time: Duration) -> Res<Action> {
    let (verb, args) = split_word(rest);
    let number = |what: &str| -> Res<usize> {
        args.parse()
            .map_err(|_| format!("`{verb}` needs {what}, got `{args}`"))
    };
    Ok(match verb {
        "<" if args.starts_with("icmp ") => Action::InjectIcmp(parse_icmp(&args[5..])?),
        "<" => Action::Inject(parse_segment(args)?),
        ">" => Action::Expect(parse_segment(args)?),
        "connect" => Action::Connect,
        "listen" => Action::Listen(
            args.parse()
                .map_err(|_| format!("`listen` needs a port, got `{args}`"))?,
        ),
        "accept" => Action::Accept,
        "write" => Action::Write(number("a byte count")?),
        "read" => Action::Read(number("a byte count")?),
        "close" => Action::Close,
        "abort" => Action::Abort,
        "reset" => Action::Reset,
        "expect" => parse_expect(args, time)?,
        "batch" if args.is_empty() => Action::BatchStart,
        "batch" if args == "end" => Action::BatchEnd,
        "batch" => return Err(format!("`batch` or `batch end`, not `batch {args}`")),
        "" => return Err("a time with nothing after it".into()),
        _ => return Err(format!("unknown verb `{verb}`")),
    })
}

fn parse_expect(args: &str, time: Duration) -> Res<Action> {
    let words: Vec<&str> = args.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["state", name] => Action::ExpectState(name.to_string()),
        ["readable", n] => Action::ExpectReadable(
            n.parse()
                .map_err(|_| format!("`expect readable` needs a byte count, got `{n}`"))?,
        ),
        ["error", kind @ ("refused" | "reset" | "timeout" | "unreachable" | "none")] => {
            Action::ExpectError(kind.to_string())
        }
        [name @ ("cwnd" | "ssthresh"), n] => Action::ExpectStat(
            name.to_string(),
            n.parse()
                .map_err(|_| format!("`expect {name}` needs a byte count, got `{n}`"))?,
        ),
        ["nothing", "until", t] => Action::ExpectNothingUntil(parse_time(t, time)?),
        _ => {
            return Err(format!(
                "unknown expectation `{args}` (state S | readable N | error \
                 refused|reset|timeout|unreachable|none | cwnd N | ssthresh N | nothing until T)"
            ))
        }
    })
}

/// `unreachable CODE [mtu N] [START:END(LEN)]`; the quoted segment defaults to `1:1(0)`.
fn parse_icmp(text: &str) -> Res<IcmpSpec> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let usage = || {
        format!(
            "`< icmp {text}`: expected `< icmp unreachable CODE [mtu N] [START:END(LEN)]`, \
             CODE one of {}",
            UNREACHABLE_CODES.join(" ")
        )
    };
    let ["unreachable", code, rest @ ..] = words.as_slice() else {
        return Err(usage());
    };
    let code = UNREACHABLE_CODES
        .iter()
        .position(|name| name == code)
        .ok_or_else(usage)? as u8;
    let mut spec = IcmpSpec {
        code,
        mtu: 0,
        seq: 1,
    };
    let mut rest = rest;
    if let ["mtu", n, tail @ ..] = rest {
        spec.mtu = n.parse().map_err(|_| format!("bad mtu `{n}`"))?;
        rest = tail;
    }
    match rest {
        [] => {}
        [range] => spec.seq = parse_range(range.trim_matches(|c| c == '[' || c == ']'))?.0,
        _ => return Err(usage()),
    }
    Ok(spec)
}

fn parse_field<T: std::str::FromStr>(word: &str, what: &str) -> Res<Field<T>> {
    if word == "*" {
        return Ok(Field::Any);
    }
    word.parse()
        .map(Field::Is)
        .map_err(|_| format!("bad {what} `{word}`"))
}

/// `S. 0:0(0) ack 1 win 65535 <mss 1460,nop,wscale 7>`
fn parse_segment(text: &str) -> Res<SegmentSpec> {
    let (head, options) = match text.find('<') {
        Some(at) => {
            let close = text
                .rfind('>')
                .filter(|&c| c > at)
                .ok_or("options `<...` lack their closing `>`")?;
            if !text[close + 1..].trim().is_empty() {
                return Err("nothing may follow the options".into());
            }
            (&text[..at], Some(parse_options(&text[at + 1..close])?))
        }
        None => (text, None),
    };
    let mut words = head.split_whitespace();
    let flags_word = words.next().ok_or("segment lacks its flags")?;
    let mut flags = 0;
    for c in flags_word.chars() {
        flags |= match c {
            'S' => flag::SYN,
            'F' => flag::FIN,
            'R' => flag::RST,
            'P' => flag::PSH,
            'U' => flag::URG,
            '.' => flag::ACK,
            _ => {
                return Err(format!(
                    "unknown flag `{c}` in `{flags_word}` (S F R P U .)"
                ))
            }
        };
    }
    let range = words
        .next()
        .ok_or("segment lacks START:END(LEN), e.g. 1:1001(1000)")?;
    let (start, len) = parse_range(range)?;
    let mut spec = SegmentSpec {
        flags,
        start,
        len,
        ack: None,
        win: None,
        options,
    };
    while let Some(word) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("`{word}` needs a value"))?;
        match word {
            "ack" => spec.ack = Some(parse_field(value, "ack")?),
            "win" => spec.win = Some(parse_field(value, "window")?),
            _ => return Err(format!("unknown segment field `{word}` (ack, win)")),
        }
    }
    if spec.ack.is_some() && flags & flag::ACK == 0 {
        return Err("`ack N` on a segment without the ACK flag `.`".into());
    }
    Ok(spec)
}

/// `1:1001(1000)`: END - START must equal LEN, so a typo cannot go unnoticed.
fn parse_range(word: &str) -> Res<(u32, u32)> {
    let bad = || format!("`{word}` is not START:END(LEN)");
    let (start, rest) = word.split_once(':').ok_or_else(bad)?;
    let (end, len) = rest.split_once('(').ok_or_else(bad)?;
    let len = len.strip_suffix(')').ok_or_else(bad)?;
    let start: u32 = start.parse().map_err(|_| bad())?;
    let end: u32 = end.parse().map_err(|_| bad())?;
    let len: u32 = len.parse().map_err(|_| bad())?;
    if end.wrapping_sub(start) != len {
        return Err(format!("`{word}`: END - START is not LEN"));
    }
    Ok((start, len))
}

fn parse_options(text: &str) -> Res<Vec<OptSpec>> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        let opt = match words.as_slice() {
            [] if text.trim().is_empty() => continue,
            ["nop"] => OptSpec::Nop,
            ["eol"] => OptSpec::Eol,
            ["sackOK"] => OptSpec::SackOk,
            ["mss", v] => OptSpec::Mss(parse_field(v, "mss")?),
            ["wscale", v] => OptSpec::Wscale(parse_field(v, "wscale")?),
            ["TS", "val", v, "ecr", e] => OptSpec::Ts {
                val: parse_field(v, "TS val")?,
                ecr: parse_field(e, "TS ecr")?,
            },
            ["sack", blocks @ ..] if !blocks.is_empty() => {
                let mut list = Vec::new();
                for b in blocks {
                    let (l, r) = b
                        .split_once(':')
                        .ok_or_else(|| format!("SACK block `{b}` is not L:R"))?;
                    let l = l.parse().map_err(|_| format!("bad SACK edge `{l}`"))?;
                    let r = r.parse().map_err(|_| format!("bad SACK edge `{r}`"))?;
                    list.push((l, r));
                }
                OptSpec::Sack(list)
            }
            [name, rest @ ..] if name.starts_with("opt") => parse_raw(name, rest)?,
            _ => {
                return Err(format!(
                    "unknown option `{}` (mss N, wscale N, sackOK, TS val N ecr N, \
                     sack L:R.., nop, eol, optKIND [len N] [HEX])",
                    item.trim()
                ))
            }
        };
        out.push(opt);
    }
    Ok(out)
}

/// `opt253 2a2a`, `opt30 len 4 0000`, `opt99 len 1`.
fn parse_raw(name: &str, rest: &[&str]) -> Res<OptSpec> {
    let kind: u8 = name[3..]
        .parse()
        .map_err(|_| format!("`{name}`: option kind must be 0-255"))?;
    let (len, hex) = match rest {
        ["len", n, hex @ ..] => (
            Some(n.parse().map_err(|_| format!("bad option length `{n}`"))?),
            hex,
        ),
        hex => (None, hex),
    };
    let hex: String = hex.concat();
    if hex.len() % 2 != 0 {
        return Err(format!("`{hex}`: odd number of hex digits"));
    }
    let data = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("`{hex}` is not hex"))?;
    Ok(OptSpec::Raw { kind, len, data })
}
