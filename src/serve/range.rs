//! The `Range` request field for one byte range (RFC 9110 §14.1.2, §14.2).

/// What a `Range` field asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything with 200. RFC 9110 §14.2 lets a server ignore a
    /// Range it does not understand, and we ignore multiple ranges rather than build a
    /// multipart/byteranges body.
    Whole,
    /// Bytes `first..=last` with 206 and Content-Range.
    Part { first: u64, last: u64 },
    /// Nothing of it overlaps the representation: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Reads `field` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against a length of `len` bytes.
pub fn parse(field: &str, len: u64) -> RangeRequest {
    let Some((unit, spec)) = field.split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first, last) {
        ("", suffix) => match number(suffix) {
            // A suffix of zero bytes selects nothing (RFC 9110 §14.1.3).
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
            None => RangeRequest::Whole,
        },
        (first, "") => match number(first) {
            Some(first) if first < len => RangeRequest::Part {
                first,
                last: len - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (first, last) => match (number(first), number(last)) {
            (Some(first), Some(last)) if first > last => RangeRequest::Whole,
            (Some(first), Some(_)) if first >= len => RangeRequest::Unsatisfiable,
            (Some(first), Some(last)) => RangeRequest::Part {
                first,
                last: last.min(len - 1),
            },
            _ => RangeRequest::Whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(parse("bytes=0-99", 1000), Part { first: 0, last: 99 });
        assert_eq!(
            parse("bytes=900-", 1000),
            Part {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            parse("bytes=-100", 1000),
            Part {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            parse("bytes=-5000", 1000),
            Part {
                first: 0,
                last: 999
            }
        );
        assert_eq!(
            parse("bytes=990-2000", 1000),
            Part {
                first: 990,
                last: 999
            }
        );
        assert_eq!(parse("Bytes = 1-1", 10), Part { first: 1, last: 1 });
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=1000-1001", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-1", 0), Unsatisfiable);
        assert_eq!(parse("bytes=5-1", 1000), Whole);
        assert_eq!(parse("bytes=0-1,5-6", 1000), Whole);
        assert_eq!(parse("items=0-1", 1000), Whole);
        assert_eq!(parse("bytes=a-b", 1000), Whole);
        assert_eq!(parse("bytes=+1-2", 1000), Whole);
        assert_eq!(parse("bytes", 1000), Whole);
    }
}
