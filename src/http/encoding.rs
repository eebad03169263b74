//! `--compressed`: the content codings we accept (RFC 9110 §8.4.1) and a writer that decodes
//! the body as it streams, so the saved file is the decoded representation.
//!
//! Generic over the writer it feeds (the output file in production, a `Vec` in tests). A body
//! that does not decode, or stops before its coding's end, is an error at [`Decoder::finish`]
//! at the latest, so a corrupt stream never becomes a file.

use std::io::{self, Write};

use flate2::write::GzDecoder;
use flate2::{Decompress, FlushDecompress, Status};

/// What `--compressed` offers in `Accept-Encoding`: every coding [`Decoder`] can undo.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// A content coding we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// No coding (absent, or `identity`).
    Identity,
    /// `gzip` (or the old `x-gzip`): RFC 1952, CRC and length checked at the end.
    Gzip,
    /// `deflate`: RFC 1950 zlib, or the raw RFC 1951 stream some servers send instead.
    Deflate,
    /// `br`: Brotli, RFC 7932.
    Brotli,
}

/// Why a response's `Content-Encoding` cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported Content-Encoding '{0}' (tunstack decodes gzip, deflate and br)")]
pub struct UnsupportedCoding(pub String);

impl Coding {
    /// The coding named by a `Content-Encoding` value. Only one coding is supported: a list
    /// of several (applied in order) is refused rather than saved half-decoded.
    pub fn from_header(value: Option<&str>) -> Result<Coding, UnsupportedCoding> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Coding::Identity);
        };
        match value.to_ascii_lowercase().as_str() {
            "identity" => Ok(Coding::Identity),
            "gzip" | "x-gzip" => Ok(Coding::Gzip),
            "deflate" => Ok(Coding::Deflate),
            "br" => Ok(Coding::Brotli),
            _ => Err(UnsupportedCoding(value.to_owned())),
        }
    }

    /// The coding's name in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Identity => "identity",
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }
}

/// Decodes whatever is written to it into `W`.
pub enum Decoder<W: Write> {
    /// Passes bytes through.
    Identity(W),
    /// gzip, by flate2.
    Gzip(Box<GzDecoder<W>>),
    /// zlib or raw deflate, by flate2's streaming inflater.
    Deflate(Box<Inflate<W>>),
    /// Brotli, by brotli-decompressor.
    Brotli(Box<brotli_decompressor::DecompressorWriter<W>>),
}

/// Size of the decoders' output buffers: big enough that a decoded body reaches the file in
/// large writes.
const BUFFER: usize = 64 * 1024;

impl<W: Write> Decoder<W> {
    /// A decoder for `coding` writing into `out`.
    pub fn new(coding: Coding, out: W) -> Self {
        match coding {
            Coding::Identity => Decoder::Identity(out),
            Coding::Gzip => Decoder::Gzip(Box::new(GzDecoder::new(out))),
            Coding::Deflate => Decoder::Deflate(Box::new(Inflate::new(out))),
            Coding::Brotli => Decoder::Brotli(Box::new(
                brotli_decompressor::DecompressorWriter::new(out, BUFFER),
            )),
        }
    }

    /// Checks that the coded stream ended properly and returns the writer with everything
    /// decoded written to it.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Decoder::Identity(out) => Ok(out),
            Decoder::Gzip(decoder) => decoder.finish(),
            Decoder::Deflate(inflate) => inflate.finish(),
            Decoder::Brotli(mut decoder) => {
                decoder.close()?;
                decoder
                    .into_inner()
                    .map_err(|_| corrupt("the brotli stream ends early"))
            }
        }
    }
}

impl<W: Write> Write for Decoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Decoder::Identity(out) => out.write(buf),
            Decoder::Gzip(decoder) => decoder.write(buf),
            Decoder::Deflate(inflate) => inflate.write(buf),
            Decoder::Brotli(decoder) => decoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Decoder::Identity(out) => out.flush(),
            Decoder::Gzip(decoder) => decoder.flush(),
            Decoder::Deflate(inflate) => inflate.out.flush(),
            Decoder::Brotli(decoder) => decoder.flush(),
        }
    }
}

/// `deflate`: inflates a zlib stream, or a raw deflate stream when the first two bytes are not
/// a zlib header (RFC 1950 §2.2: method 8 and a check value divisible by 31), and insists on
/// reaching the stream's end, which flate2's writers do not.
pub struct Inflate<W: Write> {
    out: W,
    inflater: Option<Decompress>,
    /// The first bytes, kept until there are two to tell zlib from raw deflate.
    start: Vec<u8>,
    buffer: Vec<u8>,
    ended: bool,
}

impl<W: Write> Inflate<W> {
    fn new(out: W) -> Self {
        Inflate {
            out,
            inflater: None,
            start: Vec::with_capacity(2),
            buffer: vec![0; BUFFER],
            ended: false,
        }
    }

    fn inflate(&mut self, mut input: &[u8], flush: FlushDecompress) -> io::Result<()> {
        let Some(inflater) = self.inflater.as_mut() else {
            return Err(corrupt("the deflate stream ends early"));
        };
        loop {
            if self.ended {
                if input.is_empty() {
                    return Ok(());
                }
                return Err(corrupt("data after the end of the deflate stream"));
            }
            let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, &mut self.buffer, flush)
                .map_err(|e| corrupt(&format!("deflate: {e}")))?;
            let consumed = (inflater.total_in() - before_in) as usize;
            let produced = (inflater.total_out() - before_out) as usize;
            self.out.write_all(&self.buffer[..produced])?;
            input = &input[consumed..];
            if status == Status::StreamEnd {
                self.ended = true;
            } else if consumed == 0 && produced == 0 {
                // Nothing left to do with this input (or, finishing, the stream is cut short).
                return Ok(());
            }
        }
    }

    fn finish(mut self) -> io::Result<W> {
        self.inflate(&[], FlushDecompress::Finish)?;
        if !self.ended {
            return Err(corrupt("the deflate stream ends early"));
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for Inflate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if self.inflater.is_none() {
            let take = (2 - self.start.len()).min(rest.len());
            self.start.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let &[first, second] = self.start.as_slice() else {
                return Ok(buf.len());
            };
            let zlib = first & 0x0f == 8 && (u16::from(first) << 8 | u16::from(second)) % 31 == 0;
            self.inflater = Some(Decompress::new(zlib));
            let start = std::mem::take(&mut self.start);
            self.inflate(&start, FlushDecompress::None)?;
        }
        self.inflate(rest, FlushDecompress::None)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Counts the bytes written through it: the decoded size, for the summary line.
#[derive(Debug)]
pub struct Counted<W> {
    /// The writer bytes go to.
    pub inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W> Counted<W> {
    /// Counts what is written to `inner`, from zero.
    pub fn new(inner: W) -> Self {
        Counted { inner, count: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn corrupt(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i * 7 % 251).to_le_bytes())
            .collect()
    }

    fn encoded(coding: Coding, data: &[u8]) -> Vec<u8> {
        match coding {
            Coding::Identity => data.to_vec(),
            Coding::Gzip => {
                let mut e = GzEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                let mut e = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                e.write_all(data).unwrap();
                drop(e);
                out
            }
        }
    }

    /// Decodes `input` fed in pieces of `piece` bytes.
    fn decode(coding: Coding, input: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut decoder = Decoder::new(coding, Vec::new());
        for part in input.chunks(piece) {
            decoder.write_all(part)?;
        }
        decoder.finish()
    }

    #[test]
    fn content_encoding_values_name_codings() {
        assert_eq!(Coding::from_header(None), Ok(Coding::Identity));
        assert_eq!(Coding::from_header(Some(" ")), Ok(Coding::Identity));
        assert_eq!(Coding::from_header(Some("GZIP")), Ok(Coding::Gzip));
        assert_eq!(Coding::from_header(Some("x-gzip")), Ok(Coding::Gzip));
        assert_eq!(Coding::from_header(Some("deflate")), Ok(Coding::Deflate));
        assert_eq!(Coding::from_header(Some(" br ")), Ok(Coding::Brotli));
        assert!(Coding::from_header(Some("zstd")).is_err());
        assert!(Coding::from_header(Some("gzip, br")).is_err());
    }

    #[test]
    fn every_coding_round_trips_whatever_the_split() {
        let data = sample();
        for coding in [
            Coding::Identity,
            Coding::Gzip,
            Coding::Deflate,
            Coding::Brotli,
        ] {
            let input = encoded(coding, &data);
            for piece in [1, 2, 3, 1000, 65536, input.len()] {
                let decoded = decode(coding, &input, piece)
                    .unwrap_or_else(|e| panic!("{coding:?} in {piece}-byte pieces: {e}"));
                assert!(decoded == data, "{coding:?} in {piece}-byte pieces");
            }
        }
    }

    #[test]
    fn raw_deflate_is_accepted_as_deflate() {
        let data = sample();
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(&data).unwrap();
        let raw = e.finish().unwrap();
        assert!(decode(Coding::Deflate, &raw, 4096).unwrap() == data);
    }

    #[test]
    fn truncated_or_corrupt_streams_are_errors() {
        let data = sample();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let input = encoded(coding, &data);
            let cut = &input[..input.len() - 5];
            assert!(decode(coding, cut, 4096).is_err(), "{coding:?} truncated");
            let mut garbled = input.clone();
            for byte in &mut garbled[20..60] {
                *byte ^= 0x5a;
            }
            assert!(
                decode(coding, &garbled, 4096).is_err(),
                "{coding:?} garbled"
            );
            let mut trailing = input.clone();
            trailing.extend_from_slice(b"junk");
            if coding != Coding::Gzip {
                // gzip allows members to follow; the junk then fails as a bad header.
                assert!(
                    decode(coding, &trailing, 4096).is_err(),
                    "{coding:?} trailing"
                );
            }
            assert!(
                decode(coding, b"not compressed at all", 7).is_err(),
                "{coding:?} plain"
            );
        }
    }
}
