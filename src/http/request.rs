//! Serialising the requests `tunstack fetch` sends: one per exchange, several on a kept-alive
//! connection.

use url::{Position, Url};

use super::headers::{is_valid_header_name, is_valid_header_value, merge_headers, HeaderEdit};
use super::HttpError;

/// The request methods we send: a download is a `GET`; `-I` sends `HEAD`.
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

/// Knobs for [`build_request`]; separate from the URL so that features (resuming with
/// `Range`/`If-Range`, keep-alive, user headers) add fields without changing its signature.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// The request method.
    pub method: Method,
    /// Extra header fields appended after the standard ones, in order.
    pub extra_headers: Vec<(String, String)>,
    /// Ask to keep the connection open for another request to the same server (HTTP/1.1's
    /// default); otherwise `Connection: close`.
    pub keep_alive: bool,
    /// `-A`: the `User-Agent` value instead of `tunstack/VERSION`.
    pub user_agent: Option<String>,
    /// `--compressed`: the `Accept-Encoding` value to offer.
    pub accept_encoding: Option<String>,
    /// `-u`: the `Authorization` value, only for the origin the credentials were given for.
    pub authorization: Option<String>,
    /// `-H`: the user's edits, applied last over every field above.
    pub edits: Vec<HeaderEdit>,
}

/// Builds the complete request bytes for `url`: request line, then `Host`, `User-Agent`,
/// `Accept`, `Accept-Encoding` and `Authorization` when asked for, `Connection: close` unless
/// `keep_alive` (a later download reuses the connection), the caller's extra headers, the
/// user's `-H` edits merged over all of them ([`merge_headers`]) and the terminating blank line.
///
/// The fragment is never sent, nor is any userinfo. Fails when the URL has no host or a header
/// could break the framing of the request.
pub fn build_request(url: &Url, options: &RequestOptions) -> Result<Vec<u8>, HttpError> {
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(HttpError::MissingHost(url.clone())),
    };
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let user_agent = options
        .user_agent
        .clone()
        .unwrap_or_else(|| concat!("tunstack/", env!("CARGO_PKG_VERSION")).to_owned());
    let mut fields = vec![
        ("Host".to_owned(), host),
        ("User-Agent".to_owned(), user_agent),
        ("Accept".to_owned(), "*/*".to_owned()),
    ];
    let optional = [
        ("Accept-Encoding", &options.accept_encoding),
        ("Authorization", &options.authorization),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            fields.push((name.to_owned(), value.clone()));
        }
    }
    if !options.keep_alive {
        fields.push(("Connection".to_owned(), "close".to_owned()));
    }
    fields.extend(options.extra_headers.iter().cloned());
    let fields = merge_headers(fields, &options.edits);
    for (name, value) in &fields {
        if !is_valid_header_name(name) || !is_valid_header_value(value) {
            return Err(HttpError::InvalidRequestHeader { name: name.clone() });
        }
    }

    let mut request = String::with_capacity(128 + target.len());
    request.push_str(options.method.as_str());
    request.push(' ');
    request.push_str(target);
    request.push_str(" HTTP/1.1\r\n");
    for (name, value) in &fields {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    Ok(request.into_bytes())
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
            ..RequestOptions::default()
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
                ..RequestOptions::default()
            };
            let err = build_request(&url, &options).unwrap_err();
            assert!(
                matches!(err, HttpError::InvalidRequestHeader { .. }),
                "{name:?}: {err}"
            );
        }
    }

    #[test]
    fn user_agent_encoding_and_authorization_take_their_places() {
        let options = RequestOptions {
            user_agent: Some("curl/8".into()),
            accept_encoding: Some("gzip, deflate, br".into()),
            authorization: Some("Basic dTpw".into()),
            ..RequestOptions::default()
        };
        let text = request_text("http://example.org/f", &options);
        assert_eq!(
            text,
            "GET /f HTTP/1.1\r\nHost: example.org\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\
             Accept-Encoding: gzip, deflate, br\r\nAuthorization: Basic dTpw\r\n\
             Connection: close\r\n\r\n"
        );
    }

    #[test]
    fn user_edits_replace_remove_and_add() {
        let options = RequestOptions {
            edits: vec![
                "accept: text/plain".parse().unwrap(),
                "User-Agent:".parse().unwrap(),
                "X-Extra: yes".parse().unwrap(),
            ],
            ..RequestOptions::default()
        };
        let text = request_text("http://example.org/f", &options);
        assert_eq!(
            text,
            "GET /f HTTP/1.1\r\nHost: example.org\r\naccept: text/plain\r\n\
             Connection: close\r\nX-Extra: yes\r\n\r\n"
        );
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
