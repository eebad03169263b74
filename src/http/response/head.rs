//! The response head: the status line and header fields, parsed with `httparse` once the blank
//! line ending them has arrived, and the questions callers ask of them.

use std::fmt;

use super::{HEAD_LIMIT_BYTES, MAX_HEADERS};
use crate::http::HttpError;

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

/// Rejects input that cannot become a status line as early as possible, so a non-HTTP peer is
/// reported at once rather than after filling the head buffer or timing out.
pub(super) fn check_status_line_prefix(buf: &[u8]) -> Result<(), HttpError> {
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
pub(super) fn find_blank_line(buf: &[u8], from: usize) -> Result<usize, usize> {
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
pub(super) fn parse_head(buf: &[u8]) -> Result<(ResponseHead, usize), HttpError> {
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
pub(super) fn oversized_head_error(buf: &[u8]) -> HttpError {
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
