//! Tests of the response reader: heads, framing, limits, and proptests feeding the same bytes
//! in arbitrary pieces.

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
    let err =
        whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
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
    let err =
        whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc").unwrap_err();
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
    let err = whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n")
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
