//! `-c`: continuing a download with a Range request (RFC 9110 §14), like `wget -c`.
//!
//! The bytes go to `NAME.part`, which an interrupted run keeps; the validator the server gave
//! (ETag, or Last-Modified) is stored with it in an extended attribute, so the next run can
//! send `If-Range` and the server answers 200 (start over) if the file changed meanwhile.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::ResponseHead;

/// Extended attribute holding the validator of a `.part` file.
const VALIDATOR_XATTR: &[u8] = b"user.tunstack.validator\0";

/// Where a resumed download continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePlan {
    /// The file being appended to: `NAME.part`, or `NAME` itself when only it exists.
    pub working: PathBuf,
    /// The final name.
    pub target: PathBuf,
    /// Bytes already there, which the Range request skips.
    pub offset: u64,
    /// ETag or Last-Modified of the partial content, for `If-Range`.
    pub validator: Option<String>,
}

impl ResumePlan {
    /// What `-c` means for `target`: continue `target.part` if it has bytes, else `target`
    /// itself (a file saved by another tool, as wget does), else start `target.part` afresh.
    pub fn for_target(target: &Path) -> ResumePlan {
        let part = part_path(target);
        let size = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map_or(0, |m| m.len())
        };
        let (working, offset) = match (size(&part), size(target)) {
            (n, _) if n > 0 => (part, n),
            (_, n) if n > 0 => (target.to_owned(), n),
            _ => (part, 0),
        };
        let validator = if working == target {
            None
        } else {
            read_validator(&working)
        };
        ResumePlan {
            working,
            target: target.to_owned(),
            offset,
            validator,
        }
    }

    /// The header fields of the resuming request (none when starting from zero).
    pub fn request_headers(&self) -> Vec<(String, String)> {
        if self.offset == 0 {
            return Vec::new();
        }
        let mut headers = vec![("Range".to_string(), format!("bytes={}-", self.offset))];
        if let Some(validator) = &self.validator {
            headers.push(("If-Range".to_string(), validator.clone()));
        }
        headers
    }

    /// Remembers the response's validator with the partial file, if the file system allows.
    pub fn store_validator(&self, head: &ResponseHead) {
        if self.working == self.target {
            return;
        }
        if let Some(validator) = validator_of(head) {
            write_validator(&self.working, &validator);
        }
    }
}

/// `NAME.part` next to `NAME`.
pub fn part_path(target: &Path) -> PathBuf {
    let mut name = target
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    target.with_file_name(name)
}

/// The validator to use in `If-Range`: a strong ETag, else Last-Modified (RFC 9110 §13.1.5
/// forbids weak ETags there).
pub fn validator_of(head: &ResponseHead) -> Option<String> {
    let etag = head
        .header_str("etag")
        .map(str::trim)
        .filter(|e| !e.starts_with("W/") && !e.is_empty());
    etag.or_else(|| head.header_str("last-modified").map(str::trim))
        .map(String::from)
}

/// A parsed `Content-Range` (RFC 9110 §14.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/total` (total `None` for `*`).
    Bytes {
        /// First byte sent; must be where the partial file ends.
        first: u64,
        /// Last byte sent (inclusive).
        last: u64,
        /// Length of the whole entity, if the server knows it.
        total: Option<u64>,
    },
    /// `bytes */total`, as sent with 416.
    Unsatisfied {
        /// Length of the whole entity; equal to the partial file's when it is complete.
        total: u64,
    },
}

/// Parses the `Content-Range` field of `head`.
pub fn content_range(head: &ResponseHead) -> Option<ContentRange> {
    let value = head.header_str("content-range")?.trim();
    let rest = value.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(ContentRange::Unsatisfied { total: total? });
    }
    let (first, last) = range.trim().split_once('-')?;
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    if last < first || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some(ContentRange::Bytes { first, last, total })
}

fn read_validator(path: &Path) -> Option<String> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 512];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let len = unsafe {
        libc::getxattr(
            path.as_ptr(),
            VALIDATOR_XATTR.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let len = usize::try_from(len).ok()?;
    String::from_utf8(buf[..len].to_vec()).ok()
}

fn write_validator(path: &Path, validator: &str) {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: both strings are NUL-terminated; the value pointer is valid for its length.
    // Failure (no xattr support) only costs the If-Range check next time.
    unsafe {
        libc::setxattr(
            path.as_ptr(),
            VALIDATOR_XATTR.as_ptr().cast(),
            validator.as_ptr().cast(),
            validator.len(),
            0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(fields: &[(&str, &str)]) -> ResponseHead {
        ResponseHead {
            status: 206,
            reason: String::new(),
            headers: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            minor_version: 1,
        }
    }

    #[test]
    fn content_range_forms() {
        let cr = |v: &str| content_range(&head(&[("Content-Range", v)]));
        assert_eq!(
            cr("bytes 100-199/200"),
            Some(ContentRange::Bytes {
                first: 100,
                last: 199,
                total: Some(200)
            })
        );
        assert_eq!(
            cr("bytes 0-9/*"),
            Some(ContentRange::Bytes {
                first: 0,
                last: 9,
                total: None
            })
        );
        assert_eq!(
            cr("bytes */1000"),
            Some(ContentRange::Unsatisfied { total: 1000 })
        );
        assert_eq!(cr("bytes 10-5/100"), None);
        assert_eq!(cr("bytes 0-100/100"), None);
        assert_eq!(cr("items 1-2/3"), None);
    }

    #[test]
    fn validators_prefer_strong_etags() {
        assert_eq!(
            validator_of(&head(&[("ETag", "\"abc\""), ("Last-Modified", "x")])),
            Some("\"abc\"".into())
        );
        assert_eq!(
            validator_of(&head(&[("ETag", "W/\"abc\""), ("Last-Modified", "Tue")])),
            Some("Tue".into())
        );
        assert_eq!(validator_of(&head(&[])), None);
    }

    #[test]
    fn plan_prefers_the_part_file() {
        let dir = std::env::temp_dir().join(format!("tunstack-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("f.bin");
        let _ = std::fs::remove_file(&target);
        let _ = std::fs::remove_file(part_path(&target));
        let fresh = ResumePlan::for_target(&target);
        assert_eq!(
            (fresh.working.clone(), fresh.offset),
            (part_path(&target), 0)
        );
        assert!(fresh.request_headers().is_empty());
        std::fs::write(&target, b"12345").unwrap();
        let whole = ResumePlan::for_target(&target);
        assert_eq!((whole.working.clone(), whole.offset), (target.clone(), 5));
        std::fs::write(part_path(&target), b"123").unwrap();
        let part = ResumePlan::for_target(&target);
        assert_eq!((part.working.clone(), part.offset), (part_path(&target), 3));
        assert_eq!(
            part.request_headers()[0],
            ("Range".to_string(), "bytes=3-".to_string())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
