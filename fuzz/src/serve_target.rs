//! Fuzz harness for the server's parsers: request heads (`serve::request::parse`), the `Range`
//! field (`serve::range::parse`) and request targets (`serve::target::segments`).
//!
//! Input: the bytes are a request stream. Invariants: no panic; a parsed request used at most
//! the bytes given, and parsing exactly those bytes gives the same request (the parser looks no
//! further than the head); a proper prefix of them never yields a request; a byte range lies
//! inside the representation; no accepted target has a segment that could climb out of the
//! served directory or hide a separator.

use tunstack::serve::range::{self, RangeRequest};
use tunstack::serve::request;
use tunstack::serve::target;

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut rest = data;
    // Pipelined requests, one after another, as a connection would take them.
    for _ in 0..8 {
        let Ok(Some((req, used))) = request::parse(rest) else {
            break;
        };
        assert!(used <= rest.len() && used > 0);
        assert_eq!(request::parse(&rest[..used]), Ok(Some((req.clone(), used))));
        for cut in [used / 2, used.saturating_sub(1)] {
            if cut < used {
                if let Ok(Some((_, shorter))) = request::parse(&rest[..cut]) {
                    panic!("a prefix of {cut} bytes parsed as a request of {shorter}");
                }
            }
        }
        if let Some(field) = &req.range {
            for len in [0, 1, 1000, u64::MAX] {
                if let RangeRequest::Part { first, last } = range::parse(field, len) {
                    assert!(
                        first <= last && last < len,
                        "{field:?} on {len}: {first}-{last}"
                    );
                }
            }
        }
        if let Ok((segments, _)) = target::segments(&req.target) {
            for segment in segments {
                assert!(!segment.is_empty() && segment != "." && segment != "..");
                assert!(!segment.contains(['/', '\\', '\0']), "{segment:?}");
            }
        }
        let skip = used.saturating_add(req.body_len.min(rest.len() as u64) as usize);
        rest = &rest[skip.min(rest.len())..];
    }
    // The same checks straight on the raw bytes as a Range field and a target.
    if let Ok(text) = std::str::from_utf8(data) {
        if let RangeRequest::Part { first, last } = range::parse(text, 4096) {
            assert!(first <= last && last < 4096);
        }
        if let Ok((segments, _)) = target::segments(text) {
            assert!(segments
                .iter()
                .all(|s| s != ".." && !s.contains(['/', '\0'])));
        }
    }
}
