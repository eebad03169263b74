//! Response heads (RFC 9112 §4-§6, RFC 9110 §15), and what answers each request.

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use super::range::{self, RangeRequest};
use super::request::{BadRequest, Method, Request};
use super::target::{Site, TargetError};

/// The body of a reply: nothing, a short text, or a byte range of an open file, sent from
/// the file a window at a time rather than read into memory.
#[derive(Debug)]
pub enum Body {
    Empty,
    Text(&'static str),
    File { file: File, offset: u64, len: u64 },
}

/// One response, ready to be written: its head, its body, and what the access log says.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Body,
    /// Body bytes this response carries (the log's size field; 0 for HEAD).
    pub body_len: u64,
    /// Close the connection once it is sent.
    pub close: bool,
}

/// The reason phrase for the statuses we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A media type from the file name's extension; unknown ones are octet streams, which a
/// browser saves rather than renders.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt" | "text" | "log" | "md") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("js" | "mjs") => "text/javascript",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("pdf") => "application/pdf",
        Some("wasm") => "application/wasm",
        Some("gz") => "application/gzip",
        Some("zip") => "application/zip",
        Some("tar") => "application/x-tar",
        _ => "application/octet-stream",
    }
}

/// Builds a head: status line, then `fields`, then the fields every response carries.
fn head(
    now: SystemTime,
    status: u16,
    fields: &[(&str, String)],
    content_length: u64,
    close: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    out.push_str(&format!(
        "Server: tunstack\r\nDate: {}\r\n",
        httpdate::fmt_http_date(now)
    ));
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {content_length}\r\n"));
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A short plain-text answer: errors and redirects.
fn text(
    now: SystemTime,
    status: u16,
    body: &'static str,
    extra: &[(&str, String)],
    head_only: bool,
    close: bool,
) -> Reply {
    let mut fields = vec![("Content-Type", "text/plain; charset=utf-8".to_string())];
    fields.extend(extra.iter().cloned());
    let len = body.len() as u64;
    Reply {
        status,
        head: head(now, status, &fields, len, close),
        body: if head_only {
            Body::Empty
        } else {
            Body::Text(body)
        },
        body_len: if head_only { 0 } else { len },
        close,
    }
}

/// The answer to a request that could not be read; the connection closes after it. `now` is
/// the wall-clock time for the Date field (the caller's clock, not read here).
pub fn refuse(bad: &BadRequest, now: SystemTime) -> Reply {
    let status = bad.status();
    let body = match status {
        413 => "413 Content Too Large\n",
        431 => "431 Request Header Fields Too Large\n",
        505 => "505 HTTP Version Not Supported\n",
        _ => "400 Bad Request\n",
    };
    text(now, status, body, &[], false, true)
}

/// The answer to `req` from `site`, dated `now`.
pub fn answer(site: &Site, req: &Request, now: SystemTime) -> Reply {
    let mut reply = decide(site, req, now);
    // An HTTP/1.0 client that asked to keep the connection assumes we close unless told
    // otherwise (RFC 9112 §9.3, RFC 2068 §19.7.1): without this, `ab -k` waits for a close.
    if req.minor_version == 0 && !reply.close {
        let end = reply.head.len() - 2;
        reply.head.splice(end..end, *b"Connection: keep-alive\r\n");
    }
    reply
}

fn decide(site: &Site, req: &Request, now: SystemTime) -> Reply {
    let close = !req.keep_alive;
    let head_only = req.method == Method::Head;
    if let Method::Other(_) = req.method {
        let allow = [("Allow", "GET, HEAD".to_string())];
        return text(now, 405, "405 Method Not Allowed\n", &allow, false, close);
    }
    let found = match site.resolve(&req.target) {
        Ok(found) => found,
        Err(TargetError::Bad) => return text(now, 400, "400 Bad Request\n", &[], head_only, true),
        Err(TargetError::NotFound) => {
            return text(now, 404, "404 Not Found\n", &[], head_only, close)
        }
        Err(TargetError::AddSlash(location)) => {
            let fields = [("Location", location)];
            return text(
                now,
                301,
                "301 Moved Permanently\n",
                &fields,
                head_only,
                close,
            );
        }
    };
    let len = found.metadata.len();
    let mut fields = vec![
        ("Content-Type", content_type(&found.path).to_string()),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    if let Ok(modified) = found.metadata.modified() {
        fields.push(("Last-Modified", httpdate::fmt_http_date(modified)));
    }
    let wanted = req
        .range
        .as_deref()
        .map_or(RangeRequest::Whole, |field| range::parse(field, len));
    let (status, offset, count) = match wanted {
        RangeRequest::Whole => (200, 0, len),
        RangeRequest::Part { first, last } => {
            fields.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
            (206, first, last - first + 1)
        }
        RangeRequest::Unsatisfiable => {
            let range = [("Content-Range", format!("bytes */{len}"))];
            return text(
                now,
                416,
                "416 Range Not Satisfiable\n",
                &range,
                head_only,
                close,
            );
        }
    };
    Reply {
        status,
        head: head(now, status, &fields, count, close),
        body: if head_only || count == 0 {
            Body::Empty
        } else {
            Body::File {
                file: found.file,
                offset,
                len: count,
            }
        },
        body_len: if head_only { 0 } else { count },
        close,
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::parse;
    use super::*;
    use std::fs;

    fn request(text: &str) -> Request {
        parse(text.as_bytes()).unwrap().unwrap().0
    }

    /// 2000-10-10 13:55:36 UTC: the Date field comes from the caller's clock.
    fn answer_now(site: &Site, req: &Request) -> Reply {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(971_186_136);
        answer(site, req, at)
    }

    fn head_text(reply: &Reply) -> String {
        String::from_utf8(reply.head.clone()).unwrap()
    }

    #[test]
    fn files_ranges_and_errors() {
        let root = std::env::temp_dir().join(format!("tunstack-answer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("f.txt"), b"0123456789").unwrap();
        let site = Site::new(&root).unwrap();

        let whole = answer_now(&site, &request("GET /f.txt HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_eq!(whole.status, 200);
        let h = head_text(&whole);
        assert!(h.contains("Content-Length: 10\r\n"), "{h}");
        assert!(h.contains("Date: Tue, 10 Oct 2000 13:55:36 GMT\r\n"), "{h}");
        assert!(h.contains("Content-Type: text/plain"), "{h}");
        assert!(!h.contains("Connection: close"), "{h}");
        assert!(matches!(
            whole.body,
            Body::File {
                offset: 0,
                len: 10,
                ..
            }
        ));

        let part = answer_now(
            &site,
            &request("GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n"),
        );
        assert_eq!(part.status, 206);
        assert!(head_text(&part).contains("Content-Range: bytes 7-9/10\r\n"));
        assert!(matches!(
            part.body,
            Body::File {
                offset: 7,
                len: 3,
                ..
            }
        ));

        let kept = answer_now(
            &site,
            &request("GET /f.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        );
        assert!(head_text(&kept).ends_with("Content-Length: 10\r\nConnection: keep-alive\r\n\r\n"));
        let head = answer_now(&site, &request("HEAD /f.txt HTTP/1.0\r\n\r\n"));
        assert!(head_text(&head).contains("Content-Length: 10\r\n"));
        assert!(head_text(&head).contains("Connection: close\r\n"));
        assert!(matches!(head.body, Body::Empty));
        assert_eq!(head.body_len, 0);

        let beyond = answer_now(
            &site,
            &request("GET /f.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=10-\r\n\r\n"),
        );
        assert_eq!(beyond.status, 416);
        assert!(head_text(&beyond).contains("Content-Range: bytes */10\r\n"));

        let missing = answer_now(&site, &request("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_eq!(missing.status, 404);
        let post = answer_now(&site, &request("POST /f.txt HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert_eq!(post.status, 405);
        assert!(head_text(&post).contains("Allow: GET, HEAD\r\n"));
        let refused = refuse(&BadRequest::Malformed, SystemTime::now());
        assert_eq!(refused.status, 400);
        assert!(refused.close);
        fs::remove_dir_all(&root).unwrap();
    }
}
