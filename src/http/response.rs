//! Incremental reader for the one response on a `Connection: close` exchange (RFC 9112).
//!
//! The reader is fed whatever chunks the connection delivers. It hands the final response head
//! to the caller before any body byte (so the caller can decide between saving, redirecting and
//! failing), then streams the body to a sink, framed by `Content-Length`, chunked coding or the
//! connection close. Every buffer is bounded; hostile input yields an [`HttpError`], never a
//! panic.

use std::fmt;
use std::io;

use super::chunked::ChunkedDecoder;
use super::HttpError;

/// Largest response head (status line plus header fields) we buffer before giving up.
pub const HEAD_LIMIT_BYTES: usize = 64 * 1024;
/// Most header fields we accept in one response head.
pub const MAX_HEADERS: usize = 100;

/// The status line and header fields of the final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code, 100..=599.
    pub status: u16,
    /// Reason phrase as sent (empty if absent or not plain ASCII).
    pub reason: String,
    /// Header fields in arrival order; names as sent, values as raw bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The minor version of `HTTP/1.x` in the status line.
    pub minor_version: u8,
}

impl ResponseHead {
    /// Whether the server keeps the connection open after this response (RFC 9112 §9.3):
    /// HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keeps_connection_open(&self) -> bool {
        let has = |token: &str| {
            self.headers_named("connection").any(|value| {
                String::from_utf8_lossy(value)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        if self.minor_version >= 1 {
            !has("close")
        } else {
            has("keep-alive")
        }
    }

    /// The first value of header `name` (case-insensitive), since most fields we read occur once.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// Like [`ResponseHead::header`] but only when the value is UTF-8, for fields we print or
    /// parse as text (`Location`, `Content-Type`).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Every value of header `name` (case-insensitive), for fields that may repeat.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// True for 2xx, the only statuses whose body is the resource we were asked to fetch.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error to report when the caller does not accept this status.
    pub fn status_error(&self) -> HttpError {
        HttpError::Status {
            status: self.status,
            reason: self.reason.clone(),
        }
    }
}

impl fmt::Display for ResponseHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "HTTP {}", self.status)
        } else {
            write!(f, "HTTP {} {}", self.status, self.reason)
        }
    }
}

/// What one [`ResponseReader::feed`] call achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// All input was consumed (body bytes went to the sink); the response is not complete yet.
    NeedMore,
    /// The final response head is complete. Only the first `consumed` bytes of the input were
    /// used: feed the remainder again (even if empty) to receive the body.
    Head {
        /// The parsed head.
        head: ResponseHead,
        /// How many bytes of this call's input belonged to the head(s).
        consumed: usize,
    },
    /// The body is complete; this input's remaining bytes and any later input are ignored.
    Complete,
}

/// How the end of the body is found (RFC 9112 §6.3).
#[derive(Debug)]
enum Body {
    /// Exactly this many bytes are still to come.
    Length { remaining: u64 },
    /// Chunked transfer coding.
    Chunked(ChunkedDecoder),
    /// Everything until the peer closes.
    UntilClose,
}

#[derive(Debug)]
enum State {
    /// Accumulating head bytes (interim 1xx heads are parsed and dropped here too).
    Head,
    /// Streaming the body of the final response.
    Body(Body),
    /// The response is complete.
    Done,
    /// An error was reported; the connection's framing can no longer be trusted.
    Failed,
}

/// Sans-IO reader for one HTTP/1.x response; see the module docs.
///
/// ```
/// use tunstack::http::{Progress, ResponseReader};
///
/// let mut reader = ResponseReader::new(false);
/// let mut body = Vec::new();
/// let mut input: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
/// loop {
///     let mut sink = |bytes: &[u8]| {
///         body.extend_from_slice(bytes);
///         Ok(())
///     };
///     match reader.feed(input, &mut sink)? {
///         Progress::Head { head, consumed } => {
///             assert_eq!(head.status, 200); // decide here: save, redirect or fail
///             input = &input[consumed..];
///         }
///         Progress::NeedMore | Progress::Complete => break,
///     }
/// }
/// reader.finish_eof()?; // when the peer closes
/// assert_eq!(body, b"hello");
/// # Ok::<(), tunstack::http::HttpError>(())
/// ```
#[derive(Debug)]
pub struct ResponseReader {
    method_is_head: bool,
    state: State,
    /// Bytes of the head being parsed; never longer than [`HEAD_LIMIT_BYTES`].
    head_buf: Vec<u8>,
    /// Where in `head_buf` the search for the blank line resumes.
    scan_from: usize,
    /// Body bytes delivered to the sink.
    received: u64,
    /// Body length announced by the head, if any.
    expected: Option<u64>,
}

impl ResponseReader {
    /// A reader for the response to a request; `method_is_head` because a response to HEAD has
    /// no body whatever its headers say.
    pub fn new(method_is_head: bool) -> Self {
        ResponseReader {
            method_is_head,
            state: State::Head,
            head_buf: Vec::new(),
            scan_from: 0,
            received: 0,
            expected: None,
        }
    }

    /// Consumes received bytes. Before the final head, returns [`Progress::Head`] once it is
    /// complete (body bytes in the same input are left unconsumed for the next call); after it,
    /// passes body bytes to `sink` in order. After an error the reader is unusable.
    pub fn feed(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Progress, HttpError> {
        let result = match self.state {
            State::Head => self.feed_head(input),
            State::Body(_) => self.feed_body(input, sink),
            State::Done => Ok(Progress::Complete),
            State::Failed => return Err(HttpError::ReaderFailed),
        };
        if result.is_err() {
            self.fail();
        }
        result
    }

    /// Tells the reader the peer closed the connection. Succeeds if the response is complete
    /// (a body delimited by close ends here); otherwise reports what was cut short.
    pub fn finish_eof(&mut self) -> Result<(), HttpError> {
        let result = match &self.state {
            State::Head => Err(HttpError::ClosedBeforeHead),
            State::Body(Body::UntilClose) => Ok(()),
            // The content is whole once the last chunk arrived; only trailers may be missing.
            State::Body(Body::Chunked(decoder)) if decoder.saw_last_chunk() => Ok(()),
            State::Body(Body::Chunked(_) | Body::Length { .. }) => Err(HttpError::Truncated {
                received: self.received,
                expected: self.expected,
            }),
            State::Done => Ok(()),
            State::Failed => Err(HttpError::ReaderFailed),
        };
        match result {
            Ok(()) => self.state = State::Done,
            Err(_) => self.fail(),
        }
        result
    }

    /// True once the whole response (head and body) has been read.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Body bytes delivered to the sink so far, for progress and summary lines.
    pub fn body_received(&self) -> u64 {
        self.received
    }

    /// The body length the head announced (`Some(0)` for responses without a body), or `None`
    /// when it is chunked, delimited by close, or the head has not arrived yet.
    pub fn expected_body_len(&self) -> Option<u64> {
        self.expected
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.head_buf = Vec::new();
    }

    fn feed_head(&mut self, input: &[u8]) -> Result<Progress, HttpError> {
        let room = HEAD_LIMIT_BYTES.saturating_sub(self.head_buf.len());
        let (taken, _) = input.split_at(room.min(input.len()));
        self.head_buf.extend_from_slice(taken);
        loop {
            check_status_line_prefix(&self.head_buf)?;
            let head_end = match find_blank_line(&self.head_buf, self.scan_from) {
                Ok(end) => end,
                Err(resume_at) => {
                    self.scan_from = resume_at;
                    if self.head_buf.len() >= HEAD_LIMIT_BYTES {
                        return Err(oversized_head_error(&self.head_buf));
                    }
                    return Ok(Progress::NeedMore);
                }
            };
            let (head, head_len) = parse_head(self.head_buf.get(..head_end).unwrap_or(&[]))?;
            match head.status {
                101 => return Err(HttpError::UnexpectedUpgrade),
                100..=199 => {
                    self.head_buf.drain(..head_len.min(self.head_buf.len()));
                    self.scan_from = 0;
                }
                _ => {
                    // The blank line ending this head arrived in this input, so every byte after
                    // the head came from `taken` and is handed back unconsumed.
                    let unused = self.head_buf.len().saturating_sub(head_len);
                    let consumed = taken.len().saturating_sub(unused);
                    self.start_body(&head)?;
                    self.head_buf = Vec::new();
                    return Ok(Progress::Head { head, consumed });
                }
            }
        }
    }

    fn start_body(&mut self, head: &ResponseHead) -> Result<(), HttpError> {
        let no_body = self.method_is_head || matches!(head.status, 100..=199 | 204 | 304);
        if no_body {
            self.expected = Some(0);
            self.state = State::Done;
        } else if is_chunked(head)? {
            self.state = State::Body(Body::Chunked(ChunkedDecoder::new()));
        } else if let Some(length) = content_length(head)? {
            self.expected = Some(length);
            self.state = if length == 0 {
                State::Done
            } else {
                State::Body(Body::Length { remaining: length })
            };
        } else {
            self.state = State::Body(Body::UntilClose);
        }
        Ok(())
    }

    fn feed_body(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<Progress, HttpError> {
        let received = &mut self.received;
        let mut deliver = |bytes: &[u8]| -> Result<(), HttpError> {
            if bytes.is_empty() {
                return Ok(());
            }
            sink(bytes).map_err(HttpError::Sink)?;
            *received = received.saturating_add(bytes.len() as u64);
            Ok(())
        };
        let finished = match &mut self.state {
            State::Body(Body::Length { remaining }) => {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                let (body, _) = input.split_at(take);
                deliver(body)?;
                *remaining -= take as u64;
                *remaining == 0
            }
            State::Body(Body::Chunked(decoder)) => decoder.feed(input, &mut deliver)?,
            State::Body(Body::UntilClose) => {
                deliver(input)?;
                false
            }
            State::Done => true,
            State::Head | State::Failed => return Err(HttpError::ReaderFailed),
        };
        if finished {
            self.state = State::Done;
            Ok(Progress::Complete)
        } else {
            Ok(Progress::NeedMore)
        }
    }
}

/// Rejects input that cannot become a status line as early as possible, so a non-HTTP peer is
/// reported at once rather than after filling the head buffer or timing out.
fn check_status_line_prefix(buf: &[u8]) -> Result<(), HttpError> {
    const PREFIX: &[u8] = b"HTTP/";
    let len = buf.len().min(PREFIX.len());
    if buf.get(..len) == PREFIX.get(..len) {
        Ok(())
    } else {
        Err(HttpError::MalformedHead(
            "not an HTTP/1.x response (no \"HTTP/\" status line)".into(),
        ))
    }
}

/// Finds the blank line ending a head (`\n\n` or `\n\r\n`; httparse accepts bare LF) at or after
/// `from`. `Ok(end)` is the index just past it; `Err(resume)` is where to search again once more
/// bytes arrived, so the total search work stays linear in the head size.
fn find_blank_line(buf: &[u8], from: usize) -> Result<usize, usize> {
    let mut index = from;
    while let Some(rest) = buf.get(index..) {
        let Some(offset) = rest.iter().position(|&b| b == b'\n') else {
            return Err(buf.len());
        };
        let newline = index + offset;
        match (buf.get(newline + 1), buf.get(newline + 2)) {
            (Some(b'\n'), _) => return Ok(newline + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(newline + 3),
            (None, _) | (Some(b'\r'), None) => return Err(newline),
            _ => index = newline + 1,
        }
    }
    Err(buf.len())
}

/// Parses a head known to end with a blank line; returns it and its length in bytes.
fn parse_head(buf: &[u8]) -> Result<(ResponseHead, usize), HttpError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::MalformedHead(
                "blank line inside the status line or a header field".into(),
            ))
        }
        Err(error) => return Err(httparse_error(error)),
    };
    let status = match response.code {
        Some(code @ 100..=599) => code,
        Some(code) => {
            return Err(HttpError::MalformedHead(format!(
                "status code {code} out of range"
            )))
        }
        None => return Err(HttpError::MalformedHead("missing status code".into())),
    };
    let head = ResponseHead {
        status,
        reason: response.reason.unwrap_or_default().to_owned(),
        headers: response
            .headers
            .iter()
            .map(|field| (field.name.to_owned(), field.value.to_vec()))
            .collect(),
        minor_version: response.version.unwrap_or(1),
    };
    Ok((head, head_len))
}

/// The best explanation for a head that filled the buffer without ending.
fn oversized_head_error(buf: &[u8]) -> HttpError {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Response::new(&mut fields).parse(buf) {
        Err(error) => httparse_error(error),
        Ok(_) => HttpError::HeadTooLarge {
            limit: HEAD_LIMIT_BYTES,
        },
    }
}

fn httparse_error(error: httparse::Error) -> HttpError {
    match error {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders { limit: MAX_HEADERS },
        other => HttpError::MalformedHead(other.to_string()),
    }
}

/// Whether the body uses chunked coding. Anything but exactly one `chunked` coding is refused:
/// we never asked for other codings and could not decode them, and writing encoded bytes into
/// the user's file would be silent corruption.
fn is_chunked(head: &ResponseHead) -> Result<bool, HttpError> {
    let mut codings = head
        .headers_named("transfer-encoding")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(trim_whitespace)
        .filter(|coding| !coding.is_empty());
    let Some(first) = codings.next() else {
        return Ok(false);
    };
    if first.eq_ignore_ascii_case(b"chunked") && codings.next().is_none() {
        return Ok(true);
    }
    let all: Vec<String> = head
        .headers_named("transfer-encoding")
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect();
    Err(HttpError::UnsupportedTransferCoding(all.join(", ")))
}

/// The `Content-Length`, accepting repeats (or a list) only when all values agree (RFC 9110 §8.6).
fn content_length(head: &ResponseHead) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for value in head.headers_named("content-length") {
        for element in value.split(|&b| b == b',') {
            let parsed = parse_decimal(trim_whitespace(element)).ok_or_else(|| {
                HttpError::InvalidContentLength(String::from_utf8_lossy(value).into_owned())
            })?;
            match length {
                Some(first) if first != parsed => {
                    return Err(HttpError::ConflictingContentLength {
                        first,
                        second: parsed,
                    })
                }
                _ => length = Some(parsed),
            }
        }
    }
    Ok(length)
}

/// `1*DIGIT` as a u64; `None` when empty, not digits, or too large.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Strips optional whitespace (SP / HTAB) around a list element.
fn trim_whitespace(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_follows_the_version_and_connection_header() {
        let head = |minor_version: u8, connection: Option<&str>| ResponseHead {
            status: 200,
            reason: "OK".into(),
            headers: connection
                .map(|c| vec![("Connection".to_owned(), c.as_bytes().to_vec())])
                .unwrap_or_default(),
            minor_version,
        };
        assert!(head(1, None).keeps_connection_open());
        assert!(!head(1, Some("Close")).keeps_connection_open());
        assert!(!head(1, Some("upgrade, close")).keeps_connection_open());
        assert!(!head(0, None).keeps_connection_open());
        assert!(head(0, Some("Keep-Alive")).keeps_connection_open());
    }
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// What the caller observed over a whole exchange.
    #[derive(Debug)]
    struct Outcome {
        head: ResponseHead,
        body: Vec<u8>,
        /// Body bytes that reached the sink before the head was returned (must stay empty).
        body_before_head: usize,
        complete_before_eof: bool,
    }

    /// Drives a reader the way the event loop does: each piece is fed (re-feeding what the head
    /// left unconsumed), then EOF is signalled.
    fn exchange(pieces: &[&[u8]], method_is_head: bool) -> Result<Outcome, HttpError> {
        let mut reader = ResponseReader::new(method_is_head);
        let mut head = None;
        let mut body = Vec::new();
        let mut body_before_head = 0;
        for piece in pieces {
            let mut input: &[u8] = piece;
            loop {
                let head_seen = head.is_some();
                let mut sink = |bytes: &[u8]| {
                    if !head_seen {
                        body_before_head += bytes.len();
                    }
                    body.extend_from_slice(bytes);
                    Ok(())
                };
                match reader.feed(input, &mut sink)? {
                    Progress::Head {
                        head: parsed,
                        consumed,
                    } => {
                        assert!(head.is_none(), "head reported twice");
                        assert!(consumed <= input.len());
                        head = Some(parsed);
                        input = &input[consumed..];
                    }
                    Progress::NeedMore | Progress::Complete => break,
                }
            }
        }
        let complete_before_eof = reader.is_complete();
        reader.finish_eof()?;
        assert_eq!(reader.body_received(), body.len() as u64);
        Ok(Outcome {
            head: head.expect("finish_eof succeeded without a head"),
            body,
            body_before_head,
            complete_before_eof,
        })
    }

    fn whole(input: &[u8]) -> Result<Outcome, HttpError> {
        exchange(&[input], false)
    }

    fn byte_at_a_time(input: &[u8]) -> Result<Outcome, HttpError> {
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        exchange(&pieces, false)
    }

    fn random_splits(input: &[u8], rng: &mut SmallRng) -> Result<Outcome, HttpError> {
        let mut pieces = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let take = rng.gen_range(0..=rest.len().min(40));
            let (piece, tail) = rest.split_at(take);
            pieces.push(piece);
            rest = tail;
        }
        exchange(&pieces, false)
    }

    /// Checks `input` yields `body` however it is split.
    fn assert_body_for_all_splits(input: &[u8], body: &[u8]) {
        let outcome = whole(input).unwrap();
        assert_eq!(outcome.body, body);
        assert_eq!(outcome.body_before_head, 0);
        assert_eq!(byte_at_a_time(input).unwrap().body, body);
        let mut rng = SmallRng::seed_from_u64(0x7475_6e73);
        for _ in 0..200 {
            assert_eq!(random_splits(input, &mut rng).unwrap().body, body);
        }
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(exchange(&[a, b], false).unwrap().body, body, "cut {cut}");
        }
    }

    #[test]
    fn content_length_body_survives_every_split() {
        let input =
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world";
        assert_body_for_all_splits(input, b"hello world");
        let outcome = whole(input).unwrap();
        assert_eq!(outcome.head.status, 200);
        assert_eq!(outcome.head.reason, "OK");
        assert_eq!(outcome.head.header_str("content-type"), Some("text/plain"));
        assert!(outcome.complete_before_eof);
    }

    #[test]
    fn head_comes_before_any_body_byte_in_the_same_chunk() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mut reader = ResponseReader::new(false);
        let mut delivered = Vec::new();
        let progress = reader
            .feed(input, &mut |bytes: &[u8]| {
                delivered.extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
        let Progress::Head { head, consumed } = progress else {
            panic!("expected the head, got {progress:?}");
        };
        assert_eq!(head.status, 200);
        assert_eq!(&input[consumed..], b"abc");
        assert!(delivered.is_empty());
        assert_eq!(reader.expected_body_len(), Some(3));
        assert_eq!(reader.body_received(), 0);
        let progress = reader
            .feed(&input[consumed..], &mut |bytes: &[u8]| {
                delivered.extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
        assert_eq!(progress, Progress::Complete);
        assert_eq!(delivered, b"abc");
        assert_eq!(reader.body_received(), 3);
    }

    #[test]
    fn bytes_after_a_content_length_body_are_ignored() {
        let outcome = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA").unwrap();
        assert_eq!(outcome.body, b"hi");
        assert!(outcome.complete_before_eof);
        let outcome = exchange(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"more"],
            false,
        )
        .unwrap();
        assert_eq!(outcome.body, b"hi");
    }

    #[test]
    fn zero_content_length_completes_with_the_head() {
        let outcome = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(outcome.body.is_empty());
        assert!(outcome.complete_before_eof);
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nChecksum: abc\r\n\r\n";
        assert_body_for_all_splits(input, b"Wikipedia");
        let outcome = whole(input).unwrap();
        assert!(outcome.complete_before_eof);
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_body_for_all_splits(input, b"hello");
        let mut reader = ResponseReader::new(false);
        reader.feed(input, &mut |_| Ok(())).unwrap();
        assert_eq!(reader.expected_body_len(), None);
    }

    #[test]
    fn other_transfer_codings_are_refused() {
        for coding in ["gzip, chunked", "chunked, chunked", "gzip", "chunked;x=1"] {
            let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {coding}\r\n\r\n");
            let err = whole(input.as_bytes()).unwrap_err();
            assert!(
                matches!(err, HttpError::UnsupportedTransferCoding(_)),
                "{coding}: {err}"
            );
        }
        let err = whole(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported Transfer-Encoding \"gzip, chunked\""
        );
    }

    #[test]
    fn body_until_close_when_unframed() {
        let input = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of this until the end";
        assert_body_for_all_splits(input, b"all of this until the end");
        let outcome = whole(input).unwrap();
        assert!(!outcome.complete_before_eof);
        let mut reader = ResponseReader::new(false);
        reader.feed(input, &mut |_| Ok(())).unwrap();
        assert_eq!(reader.expected_body_len(), None);
    }

    #[test]
    fn repeated_equal_content_lengths_are_accepted() {
        let outcome =
            whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nokNOT")
                .unwrap();
        assert_eq!(outcome.body, b"ok");
    }

    #[test]
    fn conflicting_content_lengths_are_rejected() {
        let err = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap_err();
        assert!(
            matches!(
                err,
                HttpError::ConflictingContentLength {
                    first: 2,
                    second: 3
                }
            ),
            "{err}"
        );
        let err = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nabc").unwrap_err();
        assert!(
            matches!(err, HttpError::ConflictingContentLength { .. }),
            "{err}"
        );
    }

    #[test]
    fn invalid_content_lengths_are_rejected() {
        for value in [
            "abc",
            "-1",
            "+5",
            "",
            "1 2",
            "0x10",
            "5,",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            let err = whole(input.as_bytes()).unwrap_err();
            assert!(
                matches!(err, HttpError::InvalidContentLength(_)),
                "{value:?}: {err}"
            );
        }
        let max = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", u64::MAX);
        let mut reader = ResponseReader::new(false);
        reader.feed(max.as_bytes(), &mut |_| Ok(())).unwrap();
        assert_eq!(reader.expected_body_len(), Some(u64::MAX));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert_body_for_all_splits(input, b"hi");
        let outcome = whole(input).unwrap();
        assert_eq!(outcome.head.status, 200);
        assert_eq!(outcome.head.header("link"), None);
    }

    #[test]
    fn switching_protocols_is_an_error() {
        let err =
            byte_at_a_time(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n").unwrap_err();
        assert!(matches!(err, HttpError::UnexpectedUpgrade), "{err}");
    }

    #[test]
    fn no_body_statuses_and_head_ignore_framing_headers() {
        for status in ["204 No Content", "304 Not Modified"] {
            let input = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\nIGNORED");
            let outcome = whole(input.as_bytes()).unwrap();
            assert!(outcome.body.is_empty(), "{status}");
            assert!(outcome.complete_before_eof, "{status}");
        }
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n";
        let outcome = exchange(&[input], true).unwrap();
        assert!(outcome.body.is_empty());
        assert!(outcome.complete_before_eof);
        let mut reader = ResponseReader::new(true);
        reader.feed(input, &mut |_| Ok(())).unwrap();
        assert_eq!(reader.expected_body_len(), Some(0));
    }

    #[test]
    fn truncated_content_length_body_reports_counts() {
        let err = whole(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\nabcd").unwrap_err();
        assert_eq!(err.to_string(), "body truncated: 4 of 1048576 bytes");
    }

    #[test]
    fn truncated_chunked_body_reports_counts() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
        ] {
            let err = whole(input).unwrap_err();
            let received = if input.ends_with(b"ab") { 7 } else { 5 };
            assert_eq!(
                err.to_string(),
                format!("body truncated: {received} bytes, before the last chunk")
            );
        }
    }

    #[test]
    fn missing_trailers_after_last_chunk_are_tolerated() {
        let outcome =
            whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n")
                .unwrap();
        assert_eq!(outcome.body, b"ok");
        assert!(!outcome.complete_before_eof);
    }

    #[test]
    fn eof_before_the_head_is_reported() {
        for input in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            let err = whole(input).unwrap_err();
            assert_eq!(
                err.to_string(),
                "connection closed before the response head"
            );
        }
    }

    #[test]
    fn oversized_head_is_rejected_without_unbounded_buffering() {
        let mut input = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        input.extend_from_slice(&vec![b'a'; HEAD_LIMIT_BYTES]);
        let mut reader = ResponseReader::new(false);
        let err = reader.feed(&input, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, HttpError::HeadTooLarge { .. }), "{err}");
        // Fed slowly, the buffer still stops at the limit.
        let mut reader = ResponseReader::new(false);
        let mut result = Ok(Progress::NeedMore);
        for piece in input.chunks(1000) {
            result = reader.feed(piece, &mut |_| Ok(()));
            assert!(reader.head_buf.len() <= HEAD_LIMIT_BYTES);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(HttpError::HeadTooLarge { .. })));
    }

    #[test]
    fn too_many_header_fields_are_rejected() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            input.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        let err = whole(&input).unwrap_err();
        assert!(
            matches!(err, HttpError::TooManyHeaders { limit: MAX_HEADERS }),
            "{err}"
        );
    }

    #[test]
    fn non_http_peers_are_reported_at_once() {
        let mut reader = ResponseReader::new(false);
        let err = reader
            .feed(b"SSH-2.0-OpenSSH_9.6\r\n", &mut |_| Ok(()))
            .unwrap_err();
        assert!(matches!(err, HttpError::MalformedHead(_)), "{err}");
        let mut reader = ResponseReader::new(false);
        assert_eq!(
            reader.feed(b"HTT", &mut |_| Ok(())).unwrap(),
            Progress::NeedMore
        );
        assert!(reader.feed(b"X", &mut |_| Ok(())).is_err());
        assert!(whole(b"\r\nHTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn malformed_heads_are_rejected() {
        for input in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 600 High\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
        ] {
            let err = whole(input).unwrap_err();
            assert!(
                matches!(err, HttpError::MalformedHead(_)),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bare_lf_line_endings_are_accepted_in_the_head() {
        let outcome = whole(b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx").unwrap();
        assert_eq!(outcome.body, b"x");
    }

    #[test]
    fn head_accessors_are_case_insensitive() {
        let outcome = whole(
            b"HTTP/1.1 404 Not Found\r\nSet-Cookie: a\r\nset-cookie: b\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let head = outcome.head;
        assert_eq!(head.header("SET-COOKIE"), Some(&b"a"[..]));
        let all: Vec<&[u8]> = head.headers_named("Set-Cookie").collect();
        assert_eq!(all, [&b"a"[..], &b"b"[..]]);
        assert_eq!(head.header("missing"), None);
        assert!(!head.is_success());
        assert_eq!(head.to_string(), "HTTP 404 Not Found");
        assert_eq!(head.status_error().to_string(), "HTTP 404 Not Found");
    }

    #[test]
    fn sink_failure_is_reported_and_poisons_the_reader() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        let mut reader = ResponseReader::new(false);
        let Progress::Head { consumed, .. } = reader.feed(input, &mut |_| Ok(())).unwrap() else {
            panic!("no head");
        };
        let err = reader
            .feed(&input[consumed..], &mut |_| {
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot write the body: disk full");
        assert!(matches!(
            reader.feed(b"", &mut |_| Ok(())),
            Err(HttpError::ReaderFailed)
        ));
        assert!(matches!(reader.finish_eof(), Err(HttpError::ReaderFailed)));
    }

    #[test]
    fn huge_chunk_size_is_rejected() {
        let err =
            whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n")
                .unwrap_err();
        assert!(matches!(err, HttpError::ChunkSizeOverflow), "{err}");
    }

    #[test]
    fn blank_line_search_resumes_where_it_stopped() {
        assert_eq!(find_blank_line(b"a\r\n", 0), Err(2));
        assert_eq!(find_blank_line(b"a\r\n\r", 0), Err(2));
        assert_eq!(find_blank_line(b"a\r\n\r\n", 2), Ok(5));
        assert_eq!(find_blank_line(b"a\n\nb", 0), Ok(3));
        assert_eq!(find_blank_line(b"a\nb\nc", 0), Err(5));
        assert_eq!(find_blank_line(b"", 0), Err(0));
        assert_eq!(find_blank_line(b"ab", 7), Err(2));
    }

    fn framed_response(framing: u8, body: &[u8], chunk_sizes: &[usize]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nServer: t\r\n".to_vec();
        match framing % 3 {
            0 => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
            }
            1 => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = body;
                let mut sizes = chunk_sizes.iter().cycle();
                while !rest.is_empty() {
                    let size = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
                    let (chunk, tail) = rest.split_at(size);
                    out.extend_from_slice(format!("{size:x};i=1\r\n").as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = tail;
                }
                out.extend_from_slice(b"0\r\nT: v\r\n\r\n");
            }
            _ => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn any_split_yields_the_same_body(
            interim in any::<bool>(),
            framing in 0u8..3,
            body in proptest::collection::vec(any::<u8>(), 0..600),
            chunk_sizes in proptest::collection::vec(1usize..50, 1..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut input = if interim {
                b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()
            } else {
                Vec::new()
            };
            input.extend_from_slice(&framed_response(framing, &body, &chunk_sizes));
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            positions.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for pos in positions {
                pieces.push(&input[start..pos]);
                start = pos;
            }
            pieces.push(&input[start..]);
            let outcome = exchange(&pieces, false).unwrap();
            prop_assert_eq!(outcome.body, body);
            prop_assert_eq!(outcome.body_before_head, 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            prefix in 0usize..4,
            noise in proptest::collection::vec(any::<u8>(), 0..400),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let prefixes: [&[u8]; 4] = [
                b"",
                b"HTTP/1.1 200 OK\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            ];
            let mut input = prefixes[prefix].to_vec();
            input.extend_from_slice(&noise);
            let mut positions: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            positions.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for pos in positions {
                pieces.push(&input[start..pos]);
                start = pos;
            }
            pieces.push(&input[start..]);
            // Only the absence of panics and the internal bookkeeping are checked here.
            let _ = exchange(&pieces, false);
        }
    }
}
