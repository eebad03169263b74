//! Fuzz harness for `ResponseReader`: response heads, content-length and chunked bodies, fed in
//! arbitrary splits.
//!
//! Input format: `flags:u8 split:u8` then the response bytes. Flags bit 0 marks a response to
//! HEAD; the other bits and `split` seed the piece sizes (1 to 2*split bytes; split 0 feeds one
//! piece). The same bytes are also fed whole and byte by byte, and all three runs must agree:
//! a streaming parser's result may not depend on how the network cut the stream.
//!
//! Invariants: no panic; the head is reported once, before any body byte; body bytes handed to
//! the sink add up to `body_received()` and never exceed a declared `Content-Length`; a complete
//! length-delimited body has exactly that length; after an error every call fails.

use tunstack::http::{HttpError, Progress, ResponseHead, ResponseReader};

use crate::input::Input;

/// What a reader made of a byte stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    head: Option<ResponseHead>,
    body: Vec<u8>,
    /// The error `feed` reported, as its message.
    error: Option<String>,
    complete: bool,
    /// What `finish_eof` said afterwards, when no error came first.
    eof: Option<Result<(), String>>,
}

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let split = input.u8();
    let bytes = input.rest();
    let method_is_head = flags & 1 != 0;
    let whole = drive(method_is_head, &[bytes]);
    let pieces = split_pieces(bytes, flags >> 1, split);
    let in_pieces = drive(method_is_head, &pieces);
    assert_eq!(
        whole, in_pieces,
        "outcome depends on how the input was split"
    );
    if bytes.len() <= 4096 {
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let byte_by_byte = drive(method_is_head, &singles);
        assert_eq!(whole, byte_by_byte, "outcome differs when fed byte by byte");
    }
}

fn split_pieces(bytes: &[u8], seed: u8, split: u8) -> Vec<&[u8]> {
    if split == 0 {
        return vec![bytes];
    }
    let mut state = u32::from(seed) << 8 | u32::from(split) | 0x1_0000;
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = 1 + state as usize % (2 * usize::from(split));
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn drive(method_is_head: bool, pieces: &[&[u8]]) -> Outcome {
    let mut reader = ResponseReader::new(method_is_head);
    let mut outcome = Outcome {
        head: None,
        body: Vec::new(),
        error: None,
        complete: false,
        eof: None,
    };
    for piece in pieces {
        let mut input: &[u8] = piece;
        loop {
            let body = &mut outcome.body;
            let head_seen = outcome.head.is_some();
            let mut sink = |bytes: &[u8]| {
                assert!(head_seen, "body bytes before the head");
                assert!(!bytes.is_empty(), "empty sink call");
                body.extend_from_slice(bytes);
                Ok(())
            };
            match reader.feed(input, &mut sink) {
                Ok(Progress::Head { head, consumed }) => {
                    assert!(outcome.head.is_none(), "two final heads");
                    assert!(consumed <= input.len());
                    assert!(
                        !(100..200).contains(&head.status),
                        "an interim head as final"
                    );
                    outcome.head = Some(head);
                    input = &input[consumed..];
                }
                Ok(Progress::NeedMore) => break,
                Ok(Progress::Complete) => {
                    outcome.complete = true;
                    break;
                }
                Err(error) => {
                    outcome.error = Some(error.to_string());
                    let again = reader.feed(b"x", &mut |_: &[u8]| Ok(()));
                    assert!(
                        matches!(again, Err(HttpError::ReaderFailed)),
                        "a failed reader accepted more input: {again:?}"
                    );
                    return outcome;
                }
            }
        }
        check_counts(&reader, &outcome);
    }
    if outcome.complete {
        assert!(reader.is_complete());
        if let (Some(expected), true) = (reader.expected_body_len(), outcome.head.is_some()) {
            assert_eq!(
                outcome.body.len() as u64,
                expected,
                "complete body, wrong length"
            );
        }
    }
    outcome.eof = Some(reader.finish_eof().map_err(|e| e.to_string()));
    outcome
}

fn check_counts(reader: &ResponseReader, outcome: &Outcome) {
    assert_eq!(reader.body_received(), outcome.body.len() as u64);
    if let Some(expected) = reader.expected_body_len() {
        assert!(
            outcome.body.len() as u64 <= expected,
            "{} body bytes for a Content-Length of {expected}",
            outcome.body.len()
        );
    }
}
