//! Reading requests off a connection's byte stream (RFC 9112 §2-§3, §9.3 for persistence).
//!
//! Sans-IO and incremental: the caller keeps the bytes received so far and asks [`parse`]
//! whether a whole request is there. Pipelined requests are taken one at a time, so a client
//! may send several before reading any response (RFC 9112 §9.3.2).

use std::fmt;

/// Most bytes a request head may take; a longer one is refused rather than buffered (a client
/// that never ends its head must not grow our memory).
pub const HEAD_LIMIT: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_FIELDS: usize = 64;
/// Most bytes of request body skipped over; GET and HEAD have no use for one.
pub const BODY_LIMIT: u64 = 64 * 1024;

/// The methods served; anything else is answered 405 (RFC 9110 §15.5.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other token, kept for the access log and the 405.
    Other(String),
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Get => f.write_str("GET"),
            Method::Head => f.write_str("HEAD"),
            Method::Other(token) => f.write_str(token),
        }
    }
}

/// One parsed request head: what the server needs to answer it and to log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target as sent (origin form, `/path?query`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Whether the connection stays open after the response (RFC 9112 §9.3): HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// The `Range` field, if any (RFC 9110 §14.2).
    pub range: Option<String>,
    /// Body bytes that follow the head (`Content-Length`), to be skipped.
    pub body_len: u64,
}

impl Request {
    /// The request line as the common log format quotes it.
    pub fn line(&self) -> String {
        format!(
            "{} {} HTTP/1.{}",
            self.method, self.target, self.minor_version
        )
    }
}

/// Why a request cannot be served; answered with the status, then the connection closes,
/// because the stream can no longer be trusted to be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// Not HTTP/1.x syntax (RFC 9112 §2.2: 400).
    #[error("malformed request")]
    Malformed,
    /// The head exceeds [`HEAD_LIMIT`] or [`MAX_FIELDS`] (RFC 6585 §5: 431).
    #[error("request head too large")]
    HeadTooLarge,
    /// A body too large to skip, or framing we do not accept (Transfer-Encoding on a request,
    /// conflicting Content-Length: RFC 9112 §6.3 says to reject, 400; RFC 9110 §15.5.14: 413).
    #[error("request body not accepted")]
    BodyNotAccepted { status: u16 },
    /// HTTP/2 preface or another major version (RFC 9110 §15.6.6: 505).
    #[error("HTTP version not supported")]
    Version,
}

impl BadRequest {
    /// The status code that answers it.
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::Malformed => 400,
            BadRequest::HeadTooLarge => 431,
            BadRequest::BodyNotAccepted { status } => *status,
            BadRequest::Version => 505,
        }
    }
}

/// Parses the request at the start of `buf`: `Ok(None)` while its head is incomplete, else the
/// request and the number of head bytes it took (its body, `body_len` bytes, follows).
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, BadRequest> {
    // RFC 9112 §2.2: ignore at least one empty line before a request.
    let skipped = leading_blank_lines(buf);
    let buf = &buf[skipped..];
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > HEAD_LIMIT {
                Err(BadRequest::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(BadRequest::HeadTooLarge),
        Err(httparse::Error::Version) if buf.starts_with(b"PRI * HTTP/2") => {
            return Err(BadRequest::Version)
        }
        Err(_) => return Err(BadRequest::Malformed),
    };
    if head_len > HEAD_LIMIT {
        return Err(BadRequest::HeadTooLarge);
    }
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(BadRequest::Malformed);
    };
    if !target.starts_with('/') && target != "*" {
        // Absolute form is allowed by RFC 9112 §3.2.2, but only proxies see it in practice.
        if !(target.starts_with("http://") || target.starts_with("https://")) {
            return Err(BadRequest::Malformed);
        }
    }
    let mut keep_alive = minor_version >= 1;
    let mut range = None;
    let mut body_len: Option<u64> = None;
    let mut host_fields = 0;
    for field in req.headers.iter() {
        let value = std::str::from_utf8(field.value).map_err(|_| BadRequest::Malformed)?;
        let value = value.trim();
        let name = field.name;
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") && minor_version == 0 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("range") {
            range = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("host") {
            host_fields += 1;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(BadRequest::BodyNotAccepted { status: 400 });
        } else if name.eq_ignore_ascii_case("content-length") {
            let len: u64 = value.parse().map_err(|_| BadRequest::Malformed)?;
            if body_len.is_some_and(|seen| seen != len) {
                return Err(BadRequest::Malformed);
            }
            body_len = Some(len);
        }
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host field gets a 400.
    if minor_version == 1 && host_fields != 1 {
        return Err(BadRequest::Malformed);
    }
    let body_len = body_len.unwrap_or(0);
    if body_len > BODY_LIMIT {
        return Err(BadRequest::BodyNotAccepted { status: 413 });
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let request = Request {
        method,
        target: target.to_string(),
        minor_version,
        keep_alive,
        range,
        body_len,
    };
    Ok(Some((request, skipped + head_len)))
}

fn leading_blank_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    loop {
        if buf[at..].starts_with(b"\r\n") {
            at += 2;
        } else if buf[at..].starts_with(b"\n") {
            at += 1;
        } else {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Request {
        let (req, len) = parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(len, text.len());
        req
    }

    #[test]
    fn get_keeps_the_connection_in_http_1_1() {
        let req = one("GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.target, "/a/b?x=1");
        assert!(req.keep_alive);
        assert_eq!(req.line(), "GET /a/b?x=1 HTTP/1.1");
    }

    #[test]
    fn connection_close_and_http_1_0() {
        assert!(!one("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!one("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(one("HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn partial_heads_wait_and_pipelined_requests_come_one_at_a_time() {
        let two = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
        for cut in 0..27 {
            assert_eq!(parse(&two[..cut]), Ok(None), "{cut}");
        }
        let (first, used) = parse(two).unwrap().unwrap();
        assert_eq!(first.target, "/1");
        let (second, _) = parse(&two[used..]).unwrap().unwrap();
        assert_eq!(second.target, "/2");
    }

    #[test]
    fn range_and_body_length() {
        let req = one("GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(req.range.as_deref(), Some("bytes=0-9"));
        assert_eq!(req.body_len, 3);
    }

    #[test]
    fn bad_requests_get_their_status() {
        let status = |text: &str| parse(text.as_bytes()).unwrap_err().status();
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET\r\n\r\n"), 400);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999\r\n\r\n"),
            413
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(HEAD_LIMIT));
        assert_eq!(status(&long), 431);
        assert_eq!(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
    }

    #[test]
    fn other_methods_parse_for_a_405() {
        assert_eq!(
            one("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n").method,
            Method::Other("DELETE".into())
        );
    }
}
