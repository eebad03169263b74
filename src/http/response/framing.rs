//! How the body of a response ends (RFC 9112 §6.3): chunked coding, a `Content-Length`, or the
//! connection close. Ambiguous or unsupported framing is an error, never a guess.

use super::ResponseHead;
use crate::http::HttpError;

/// Whether the body uses chunked coding. Anything but exactly one `chunked` coding is refused:
/// we never asked for other codings and could not decode them, and writing encoded bytes into
/// the user's file would be silent corruption.
pub(super) fn is_chunked(head: &ResponseHead) -> Result<bool, HttpError> {
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
pub(super) fn content_length(head: &ResponseHead) -> Result<Option<u64>, HttpError> {
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
