//! Serialising the single request `tunstack fetch` sends per connection.

use url::{Position, Url};

use super::HttpError;

/// The request methods we send: a download is a `GET`; `HEAD` exists so the response reader's
/// no-body rule for HEAD can be exercised end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Fetch the representation.
    #[default]
    Get,
    /// Fetch only the head.
    Head,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
        }
    }
}

/// Knobs for [`build_request`]; separate from the URL so later features (resuming with
/// `Range`/`If-Range`) add headers without changing the function's signature.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// The request method.
    pub method: Method,
    /// Extra header fields appended after the standard ones, in order.
    pub extra_headers: Vec<(String, String)>,
    /// Ask to keep the connection open for another request to the same server (HTTP/1.1's
    /// default); otherwise `Connection: close`.
    pub keep_alive: bool,
}

/// Builds the complete request bytes for `url`: request line, `Host`, `User-Agent`, `Accept`,
/// `Connection: close` unless `keep_alive` (a later download reuses the connection),
/// the caller's extra headers and the terminating blank line.
///
/// The fragment is never sent, nor is any userinfo. Fails when the URL has no host or an extra
/// header could break the framing of the request.
pub fn build_request(url: &Url, options: &RequestOptions) -> Result<Vec<u8>, HttpError> {
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(HttpError::MissingHost(url.clone())),
    };
    for (name, value) in &options.extra_headers {
        if !is_valid_header_name(name) || !is_valid_header_value(value) {
            return Err(HttpError::InvalidRequestHeader { name: name.clone() });
        }
    }
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };

    let mut request = String::with_capacity(128 + target.len());
    request.push_str(options.method.as_str());
    request.push(' ');
    request.push_str(target);
    request.push_str(" HTTP/1.1\r\nHost: ");
    request.push_str(host);
    if let Some(port) = url.port() {
        request.push(':');
        request.push_str(&port.to_string());
    }
    request.push_str("\r\nUser-Agent: tunstack/");
    request.push_str(env!("CARGO_PKG_VERSION"));
    request.push_str("\r\nAccept: */*\r\n");
    if !options.keep_alive {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in &options.extra_headers {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    Ok(request.into_bytes())
}

/// RFC 9110 §5.1: a field name is a non-empty token.
fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL that could end the line.
fn is_valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_text(url: &str, options: &RequestOptions) -> String {
        let url = Url::parse(url).unwrap();
        String::from_utf8(build_request(&url, options).unwrap()).unwrap()
    }

    fn user_agent() -> String {
        format!("User-Agent: tunstack/{}\r\n", env!("CARGO_PKG_VERSION"))
    }

    #[test]
    fn plain_get_has_the_standard_headers_in_order() {
        let text = request_text("http://example.org/a/b.txt", &RequestOptions::default());
        let expected = format!(
            "GET /a/b.txt HTTP/1.1\r\nHost: example.org\r\n{}Accept: */*\r\nConnection: close\r\n\r\n",
            user_agent()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_path_becomes_slash_and_query_is_kept() {
        let text = request_text("http://example.org", &RequestOptions::default());
        assert!(text.starts_with("GET / HTTP/1.1\r\n"), "{text}");
        let text = request_text("http://example.org/x?y=1&z", &RequestOptions::default());
        assert!(text.starts_with("GET /x?y=1&z HTTP/1.1\r\n"), "{text}");
        let text = request_text("http://example.org?q", &RequestOptions::default());
        assert!(text.starts_with("GET /?q HTTP/1.1\r\n"), "{text}");
    }

    #[test]
    fn fragment_and_userinfo_are_never_sent() {
        let text = request_text(
            "http://user:secret@example.org/p?q=1#frag",
            &RequestOptions::default(),
        );
        assert!(text.starts_with("GET /p?q=1 HTTP/1.1\r\n"), "{text}");
        assert!(!text.contains("frag"));
        assert!(!text.contains("secret"));
        assert!(!text.contains("user"));
    }

    #[test]
    fn host_carries_port_only_when_not_default() {
        let text = request_text("http://example.org:80/", &RequestOptions::default());
        assert!(text.contains("\r\nHost: example.org\r\n"), "{text}");
        let text = request_text("http://example.org:8080/", &RequestOptions::default());
        assert!(text.contains("\r\nHost: example.org:8080\r\n"), "{text}");
        let text = request_text("http://10.0.0.1:81/", &RequestOptions::default());
        assert!(text.contains("\r\nHost: 10.0.0.1:81\r\n"), "{text}");
    }

    #[test]
    fn ipv6_host_is_bracketed() {
        let text = request_text("http://[::1]:8000/", &RequestOptions::default());
        assert!(text.contains("\r\nHost: [::1]:8000\r\n"), "{text}");
    }

    #[test]
    fn path_is_sent_percent_encoded() {
        let text = request_text("http://example.org/a b/ü", &RequestOptions::default());
        assert!(text.starts_with("GET /a%20b/%C3%BC HTTP/1.1\r\n"), "{text}");
    }

    #[test]
    fn extra_headers_follow_the_standard_ones() {
        let options = RequestOptions {
            method: Method::Get,
            extra_headers: vec![
                ("Range".into(), "bytes=100-".into()),
                ("If-Range".into(), "\"etag\"".into()),
            ],
            keep_alive: false,
        };
        let text = request_text("http://example.org/f", &options);
        assert!(
            text.ends_with("Connection: close\r\nRange: bytes=100-\r\nIf-Range: \"etag\"\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn keep_alive_drops_connection_close() {
        let options = RequestOptions {
            keep_alive: true,
            ..RequestOptions::default()
        };
        let text = request_text("http://example.org/f", &options);
        assert!(!text.contains("Connection:"), "{text}");
    }

    #[test]
    fn head_method_is_used_when_asked() {
        let options = RequestOptions {
            method: Method::Head,
            ..RequestOptions::default()
        };
        let text = request_text("http://example.org/f", &options);
        assert!(text.starts_with("HEAD /f HTTP/1.1\r\n"), "{text}");
    }

    #[test]
    fn header_injection_is_refused() {
        let url = Url::parse("http://example.org/").unwrap();
        for (name, value) in [
            ("X-A", "ok\r\nEvil: 1"),
            ("X-A", "nul\0"),
            ("Bad Name", "v"),
            ("Bad:Name", "v"),
            ("", "v"),
        ] {
            let options = RequestOptions {
                method: Method::Get,
                extra_headers: vec![(name.into(), value.into())],
                keep_alive: false,
            };
            let err = build_request(&url, &options).unwrap_err();
            assert!(
                matches!(err, HttpError::InvalidRequestHeader { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn url_without_host_is_rejected() {
        for url in ["file:///etc/passwd", "data:text/plain,hi", "unix:/run/x"] {
            let url = Url::parse(url).unwrap();
            let err = build_request(&url, &RequestOptions::default()).unwrap_err();
            assert!(matches!(err, HttpError::MissingHost(_)), "{url}: {err}");
        }
    }
}
