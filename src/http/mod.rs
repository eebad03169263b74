//! HTTP/1.1 client over a byte stream, for `tunstack fetch`: plain `http://` and, over the TLS
//! transport in `crate::fetch`, `https://` alike (this module never sees ciphertext).
//!
//! The fetch engine connects and sends the bytes from [`build_request`] (with `Range`/`If-Range`
//! from [`ResumePlan`] for `-c`, `Accept-Encoding` for `--compressed`, the user's `-H`/`-A`/`-u`
//! merged by [`headers`]), feeds every received chunk to a [`ResponseReader`], which frames the
//! body by `Content-Length`, chunked coding or the close and says when it is complete so a
//! kept-alive connection ([`ResponseHead::keeps_connection_open`]) can carry the next request,
//! reports EOF with [`ResponseReader::finish_eof`], and decides what to do with the
//! [`ResponseHead`]: save the body (decoded by [`encoding`] if compressed), follow a redirect via
//! [`redirect_target`] and [`RedirectChain`], or fail.
//!
//! Parsing and framing are sans-IO. Two parts touch the file system: [`output`] owns the file
//! on disk so that a failed download never leaves a partial or clobbered file behind, and
//! [`resume`] looks at the partial file and keeps its validator in an extended attribute.

mod chunked;
pub mod encoding;
pub mod headers;
pub mod output;
pub mod redirect;
pub mod request;
pub mod response;
pub mod resume;

pub use headers::{Credentials, HeaderEdit};
pub use output::{file_name_from_url, Output, OutputError, OutputTarget, OutputTargetError};
pub use redirect::{redirect_target, RedirectChain, DEFAULT_MAX_REDIRECTS};
pub use request::{build_request, Method, RequestOptions};
pub use response::{Progress, ResponseHead, ResponseReader, HEAD_LIMIT_BYTES, MAX_HEADERS};
pub use resume::{content_range, ContentRange, ResumePlan};

use url::Url;

/// Why an HTTP exchange failed; each message is one line fit for the user.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL names no host to connect to (e.g. `http:/path` or `file:///x`).
    #[error("URL has no host: {0}")]
    MissingHost(Url),
    /// A scheme other than `http` or `https` (usually from a redirect); said up front instead of
    /// failing obscurely later.
    #[error("{scheme}:// is not supported ({url})")]
    UnsupportedScheme {
        /// The scheme that was asked for, e.g. `ftp`.
        scheme: String,
        /// The full URL, so the user sees where it came from (often a redirect).
        url: Url,
    },
    /// A caller-supplied request header would corrupt the request (bad name, CR/LF in value).
    #[error("invalid request header {name:?}")]
    InvalidRequestHeader {
        /// The offending header name.
        name: String,
    },
    /// The peer closed the connection before a complete response head arrived.
    #[error("connection closed before the response head")]
    ClosedBeforeHead,
    /// The response head exceeds our buffer; refusing rather than buffering without bound.
    #[error("response head larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// More header fields than we are willing to parse.
    #[error("response head has more than {limit} header fields")]
    TooManyHeaders {
        /// The limit on header fields.
        limit: usize,
    },
    /// The bytes received are not a well-formed HTTP/1.x response head.
    #[error("malformed response head: {0}")]
    MalformedHead(String),
    /// `101 Switching Protocols`: we never ask to upgrade, so the peer is misbehaving.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
    /// A `Content-Length` value that is not a plain decimal number fitting in 64 bits.
    #[error("invalid Content-Length {0:?}")]
    InvalidContentLength(String),
    /// Several `Content-Length` values that disagree: the body length is unknowable.
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength {
        /// The first value seen.
        first: u64,
        /// A later value that differs from it.
        second: u64,
    },
    /// A transfer coding other than a single `chunked`; we cannot decode it.
    #[error("unsupported Transfer-Encoding {0:?}")]
    UnsupportedTransferCoding(String),
    /// A chunk-size line that is not hexadecimal digits followed by optional extensions.
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    /// A chunk size (or the running body total) that does not fit in 64 bits.
    #[error("chunk size overflows 64 bits")]
    ChunkSizeOverflow,
    /// A chunk-size line longer than we are willing to buffer (mostly huge extensions).
    #[error("chunk size line longer than {limit} bytes")]
    ChunkLineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// Chunk data not followed by CRLF: the stream is out of step with its framing.
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    /// The trailer section after the last chunk exceeds our limit.
    #[error("chunked trailer section larger than {limit} bytes")]
    TrailersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A trailer line terminated by something other than CRLF.
    #[error("malformed chunked trailer section")]
    MalformedTrailers,
    /// The connection closed before the announced end of the body.
    #[error("{}", truncation_message(*received, *expected))]
    Truncated {
        /// Body bytes delivered before the close.
        received: u64,
        /// The announced `Content-Length`, or `None` for a chunked body.
        expected: Option<u64>,
    },
    /// The body sink (usually the output file) failed; the download cannot continue.
    #[error("cannot write the body: {0}")]
    Sink(#[source] std::io::Error),
    /// The reader was used again after it reported an error; its state is meaningless.
    #[error("response reader used after an earlier error")]
    ReaderFailed,
    /// A non-2xx final status the caller decided not to accept.
    #[error("HTTP {status}{}{reason}", if reason.is_empty() { "" } else { " " })]
    Status {
        /// The status code.
        status: u16,
        /// The reason phrase (may be empty).
        reason: String,
    },
    /// A redirect status without the `Location` it requires.
    #[error("HTTP {status} redirect without a Location header")]
    MissingLocation {
        /// The redirect status code.
        status: u16,
    },
    /// A `Location` value that does not resolve to a URL.
    #[error("invalid redirect Location {location:?}: {reason}")]
    InvalidLocation {
        /// The header value, lossily decoded.
        location: String,
        /// Why it did not parse.
        reason: String,
    },
    /// The redirect limit was reached.
    #[error("too many redirects ({0})")]
    TooManyRedirects(usize),
    /// A redirect back to a URL already fetched in this chain.
    #[error("redirect loop at {0}")]
    RedirectLoop(Url),
}

fn truncation_message(received: u64, expected: Option<u64>) -> String {
    match expected {
        Some(total) => format!("body truncated: {received} of {total} bytes"),
        None => format!("body truncated: {received} bytes, before the last chunk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_messages_name_the_counts() {
        let with_length = HttpError::Truncated {
            received: 512,
            expected: Some(1_048_576),
        };
        assert_eq!(
            with_length.to_string(),
            "body truncated: 512 of 1048576 bytes"
        );
        let chunked = HttpError::Truncated {
            received: 512,
            expected: None,
        };
        assert_eq!(
            chunked.to_string(),
            "body truncated: 512 bytes, before the last chunk"
        );
    }

    #[test]
    fn status_error_reads_like_a_status_line() {
        let err = HttpError::Status {
            status: 404,
            reason: "Not Found".into(),
        };
        assert_eq!(err.to_string(), "HTTP 404 Not Found");
        let bare = HttpError::Status {
            status: 599,
            reason: String::new(),
        };
        assert_eq!(bare.to_string(), "HTTP 599");
    }

    #[test]
    fn unsupported_scheme_names_scheme_and_url() {
        let url = Url::parse("gopher://example.org/").unwrap();
        let err = HttpError::UnsupportedScheme {
            scheme: url.scheme().to_owned(),
            url,
        };
        assert_eq!(
            err.to_string(),
            "gopher:// is not supported (gopher://example.org/)"
        );
    }
}
