//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It is a byte-level state machine so that a chunk-size line, the CRLF after chunk data or a
//! trailer line may be split across any number of input slices without buffering them.

use super::HttpError;

/// Longest chunk-size line (digits, extensions and CRLF) we accept; real ones are a few bytes.
pub(crate) const CHUNK_LINE_LIMIT: usize = 4096;
/// Largest trailer section we are willing to skip over.
pub(crate) const TRAILER_LIMIT: usize = 64 * 1024;

/// Where in the chunked framing the next input byte belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    SizeDigits,
    /// Optional whitespace after the digits, before `;` or CR.
    SizeSpace,
    /// Inside chunk extensions, skipped up to CR.
    Extension,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// Chunk data, with this many bytes still to come.
    Data(u64),
    /// Data done; CR must follow.
    DataCr,
    /// CR after data seen; LF must follow.
    DataLf,
    /// After the last chunk: skipping trailer lines up to the empty line.
    Trailer {
        /// Nothing but possibly CR seen on this line yet.
        line_empty: bool,
        /// The previous byte was the CR of a line ending.
        saw_cr: bool,
    },
    /// The final CRLF has been read; anything after is not ours.
    Finished,
}

/// Decodes a chunked body, handing chunk data to a sink as it arrives.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Value of the chunk size being parsed.
    size: u64,
    /// Hex digits seen in the chunk size being parsed.
    digits: usize,
    /// Bytes of the current size line seen so far.
    line_len: usize,
    /// Bytes of trailer section seen so far.
    trailer_len: usize,
    /// Sum of all chunk sizes announced so far.
    announced: u64,
}

impl ChunkedDecoder {
    /// A decoder positioned at the first chunk-size line.
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: State::SizeDigits,
            size: 0,
            digits: 0,
            line_len: 0,
            trailer_len: 0,
            announced: 0,
        }
    }

    /// True once the terminating empty line after the last chunk was read.
    pub(crate) fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// True once the zero-size last chunk was read, so the body content is complete even if the
    /// trailer section is still missing.
    pub(crate) fn saw_last_chunk(&self) -> bool {
        matches!(self.state, State::Trailer { .. } | State::Finished)
    }

    /// Consumes `input`, passing chunk data to `sink`. Returns `Ok(true)` when the body ended;
    /// bytes after the end are ignored.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<bool, HttpError> {
        let mut rest = input;
        while let Some((&byte, tail)) = rest.split_first() {
            match self.state {
                State::Finished => break,
                State::Data(remaining) => {
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (data, after) = rest.split_at(take);
                    sink(data)?;
                    rest = after;
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                _ => self.step(byte)?,
            }
            rest = tail;
        }
        Ok(self.is_finished())
    }

    /// Advances the framing state machine by one non-data byte.
    fn step(&mut self, byte: u8) -> Result<(), HttpError> {
        match self.state {
            State::SizeDigits | State::SizeSpace | State::Extension | State::SizeLf => {
                self.line_len += 1;
                if self.line_len > CHUNK_LINE_LIMIT {
                    return Err(HttpError::ChunkLineTooLong {
                        limit: CHUNK_LINE_LIMIT,
                    });
                }
                self.step_size_line(byte)
            }
            State::DataCr => {
                if byte != b'\r' {
                    return Err(HttpError::MissingChunkCrlf);
                }
                self.state = State::DataLf;
                Ok(())
            }
            State::DataLf => {
                if byte != b'\n' {
                    return Err(HttpError::MissingChunkCrlf);
                }
                self.start_size_line();
                Ok(())
            }
            State::Trailer { line_empty, saw_cr } => {
                self.trailer_len += 1;
                if self.trailer_len > TRAILER_LIMIT {
                    return Err(HttpError::TrailersTooLarge {
                        limit: TRAILER_LIMIT,
                    });
                }
                self.state = match (saw_cr, byte) {
                    (true, b'\n') if line_empty => State::Finished,
                    (true, b'\n') => State::Trailer {
                        line_empty: true,
                        saw_cr: false,
                    },
                    (true, _) | (false, b'\n') => return Err(HttpError::MalformedTrailers),
                    (false, b'\r') => State::Trailer {
                        line_empty,
                        saw_cr: true,
                    },
                    (false, _) => State::Trailer {
                        line_empty: false,
                        saw_cr: false,
                    },
                };
                Ok(())
            }
            State::Data(_) | State::Finished => Ok(()),
        }
    }

    /// One byte of `chunk-size [ chunk-ext ] CRLF`, allowing BWS before extensions.
    fn step_size_line(&mut self, byte: u8) -> Result<(), HttpError> {
        match (self.state, byte) {
            (State::SizeDigits, _) if byte.is_ascii_hexdigit() => {
                let digit = u64::from(hex_value(byte));
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(digit))
                    .ok_or(HttpError::ChunkSizeOverflow)?;
                self.digits += 1;
            }
            (_, _) if self.state == State::SizeDigits && self.digits == 0 => {
                return Err(HttpError::InvalidChunkSize);
            }
            (State::SizeDigits | State::SizeSpace, b' ' | b'\t') => self.state = State::SizeSpace,
            (State::SizeDigits | State::SizeSpace, b';') => self.state = State::Extension,
            (State::SizeDigits | State::SizeSpace | State::Extension, b'\r') => {
                self.state = State::SizeLf
            }
            (State::Extension, _) if byte == b'\t' || (byte >= 0x20 && byte != 0x7f) => {}
            (State::SizeLf, b'\n') => self.end_size_line()?,
            _ => return Err(HttpError::InvalidChunkSize),
        }
        Ok(())
    }

    fn end_size_line(&mut self) -> Result<(), HttpError> {
        self.announced = self
            .announced
            .checked_add(self.size)
            .ok_or(HttpError::ChunkSizeOverflow)?;
        self.state = if self.size == 0 {
            State::Trailer {
                line_empty: true,
                saw_cr: false,
            }
        } else {
            State::Data(self.size)
        };
        Ok(())
    }

    fn start_size_line(&mut self) {
        self.state = State::SizeDigits;
        self.size = 0;
        self.digits = 0;
        self.line_len = 0;
    }
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the body and whether it finished.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), HttpError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut finished = false;
        for piece in input.chunks(step.max(1)) {
            finished = decoder.feed(piece, &mut |data: &[u8]| {
                body.extend_from_slice(data);
                Ok(())
            })?;
        }
        Ok((body, finished))
    }

    #[test]
    fn decodes_simple_chunks_at_every_split() {
        let input = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        for step in 1..=input.len() {
            let (body, finished) = decode(input, step).unwrap();
            assert_eq!(body, b"hello, world", "step {step}");
            assert!(finished, "step {step}");
        }
    }

    #[test]
    fn extensions_whitespace_and_trailers_are_skipped() {
        let input = b"4;name=value;flag\r\nwiki\r\n5 ; x=\"q;\"\r\npedia\r\nE\t;e\r\n in\r\n\r\nchunks.\r\n0;last\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
        for step in 1..=input.len() {
            let (body, finished) = decode(input, step).unwrap();
            assert_eq!(body, b"wikipedia in\r\n\r\nchunks.", "step {step}");
            assert!(finished);
        }
    }

    #[test]
    fn uppercase_and_leading_zero_sizes_are_hex() {
        let mut input = b"000F\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 15]);
        input.extend_from_slice(b"\r\n0\r\n\r\n");
        let (body, finished) = decode(&input, 3).unwrap();
        assert_eq!(body.len(), 15);
        assert!(finished);
    }

    #[test]
    fn bytes_after_the_end_are_ignored() {
        let (body, finished) = decode(b"1\r\na\r\n0\r\n\r\nGARBAGE", 100).unwrap();
        assert_eq!(body, b"a");
        assert!(finished);
    }

    #[test]
    fn incomplete_body_is_not_finished() {
        let (body, finished) = decode(b"5\r\nhel", 100).unwrap();
        assert_eq!(body, b"hel");
        assert!(!finished);
        let mut decoder = ChunkedDecoder::new();
        decoder
            .feed(b"0\r\nTrailer: x\r\n", &mut |_| Ok(()))
            .unwrap();
        assert!(decoder.saw_last_chunk());
        assert!(!decoder.is_finished());
    }

    #[test]
    fn size_overflow_is_rejected() {
        let err = decode(b"10000000000000000\r\n", 100).unwrap_err();
        assert!(matches!(err, HttpError::ChunkSizeOverflow), "{err}");
        // Sixteen digits fit exactly.
        let mut decoder = ChunkedDecoder::new();
        decoder
            .feed(b"ffffffffffffffff\r\n", &mut |_| Ok(()))
            .unwrap();
        assert_eq!(decoder.state, State::Data(u64::MAX));
    }

    #[test]
    fn running_total_overflow_is_rejected() {
        let mut decoder = ChunkedDecoder::new();
        decoder.announced = u64::MAX - 1;
        let err = decoder.feed(b"2\r\n", &mut |_| Ok(())).unwrap_err();
        assert!(matches!(err, HttpError::ChunkSizeOverflow), "{err}");
    }

    #[test]
    fn garbage_size_lines_are_rejected() {
        for input in [
            &b"\r\n"[..],
            b"g\r\n",
            b" 5\r\n",
            b"-1\r\n",
            b"5 x\r\n",
            b"5\n",
            b"5\rx",
            b";ext\r\n",
            b"5;a\x00b\r\n",
            b"0x5\r\n",
        ] {
            let err = decode(input, 100).unwrap_err();
            assert!(
                matches!(err, HttpError::InvalidChunkSize),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn missing_crlf_after_data_is_rejected() {
        for input in [&b"3\r\nabcX\r\n"[..], b"3\r\nabc\rX", b"3\r\nabc\n"] {
            let err = decode(input, 1).unwrap_err();
            assert!(
                matches!(err, HttpError::MissingChunkCrlf),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn overlong_size_line_is_rejected() {
        let mut input = b"5;".to_vec();
        input.extend_from_slice(&vec![b'x'; CHUNK_LINE_LIMIT]);
        let err = decode(&input, 7).unwrap_err();
        assert!(matches!(err, HttpError::ChunkLineTooLong { .. }), "{err}");
    }

    #[test]
    fn trailers_are_bounded_and_need_crlf() {
        let mut input = b"0\r\n".to_vec();
        input.extend_from_slice(&vec![b'x'; TRAILER_LIMIT + 1]);
        let err = decode(&input, 1000).unwrap_err();
        assert!(matches!(err, HttpError::TrailersTooLarge { .. }), "{err}");

        let err = decode(b"0\r\nA: b\n\r\n", 100).unwrap_err();
        assert!(matches!(err, HttpError::MalformedTrailers), "{err}");
        let err = decode(b"0\r\n\rX", 100).unwrap_err();
        assert!(matches!(err, HttpError::MalformedTrailers), "{err}");
    }

    #[test]
    fn sink_errors_stop_decoding() {
        let mut decoder = ChunkedDecoder::new();
        let err = decoder
            .feed(b"3\r\nabc\r\n0\r\n\r\n", &mut |_| {
                Err(HttpError::Sink(std::io::Error::other("disk full")))
            })
            .unwrap_err();
        assert!(matches!(err, HttpError::Sink(_)), "{err}");
    }
}
