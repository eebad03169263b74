//! Incremental reader for one HTTP/1.x response on a connection (RFC 9112), whether the
//! connection is then closed or kept alive for the next request.
//!
//! The reader is fed whatever chunks the connection delivers. It hands the final response head
//! to the caller before any body byte (so the caller can decide between saving, redirecting and
//! failing), then streams the body to a sink, framed by `Content-Length`, chunked coding or the
//! connection close, and says when the body is complete so that a kept-alive connection can carry
//! the next request. Every buffer is bounded; hostile input yields an [`HttpError`], never a
//! panic.
//!
//! [`head`] parses the status line and header fields, [`framing`] decides from them how the body
//! ends; this file is the state machine between them.

mod framing;
mod head;
#[cfg(test)]
mod tests;

use std::io;

use super::chunked::ChunkedDecoder;
use super::HttpError;
use framing::{content_length, is_chunked};
pub use head::ResponseHead;
use head::{check_status_line_prefix, find_blank_line, oversized_head_error, parse_head};

/// Largest response head (status line plus header fields) we buffer before giving up.
pub const HEAD_LIMIT_BYTES: usize = 64 * 1024;
/// Most header fields we accept in one response head.
pub const MAX_HEADERS: usize = 100;

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
