//! From a request target to a file under the served directory, never outside it.
//!
//! Two steps: [`segments`] is pure (percent-decoding, refusing `..`, NUL and encoded
//! slashes), so every escape attempt is refused before the filesystem is asked anything;
//! [`Site::resolve`] then joins the segments under the root and canonicalizes, so a symlink
//! that leads out of the root is refused too.

use std::fs::{self, File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Why a target names no file we serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an origin-form path we can read (RFC 9112 §3.2.1): 400.
    #[error("bad request target")]
    Bad,
    /// Nothing there, or something we will not show (outside the root, not a regular file,
    /// unreadable): 404, so a probe learns nothing about what exists outside.
    #[error("not found")]
    NotFound,
    /// A directory named without its trailing slash: 301 to the same path with one.
    #[error("moved permanently")]
    AddSlash(String),
}

/// The decoded path segments of `target`, without query or fragment, and whether it ends
/// with a slash. `.` segments and empty ones (`//`) are dropped; `..` is refused outright
/// rather than resolved, so no target can climb, however encoded.
pub fn segments(target: &str) -> Result<(Vec<String>, bool), TargetError> {
    let path = origin_form(target)
        .split(['?', '#'])
        .next()
        .filter(|p| p.starts_with('/'))
        .ok_or(TargetError::Bad)?;
    let mut out = Vec::new();
    for raw in path.split('/') {
        let bytes: Vec<u8> = percent_decode_str(raw).collect();
        let segment = String::from_utf8(bytes).map_err(|_| TargetError::Bad)?;
        // An encoded '/' or '\' would hide a separator from the split above.
        if segment.contains(['/', '\\', '\0']) {
            return Err(TargetError::Bad);
        }
        match segment.as_str() {
            "" | "." => {}
            ".." => return Err(TargetError::Bad),
            _ => out.push(segment),
        }
    }
    Ok((out, path.ends_with('/')))
}

/// The path of an absolute-form target (`http://host/path`), which a server must accept
/// (RFC 9112 §3.2.2) though only proxies are sent it; other targets as they are.
fn origin_form(target: &str) -> &str {
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    let scheme = if lower(7).as_deref() == Some("http://") {
        7
    } else if lower(8).as_deref() == Some("https://") {
        8
    } else {
        return target;
    };
    let rest = &target[scheme..];
    match rest.find(['/', '?', '#']) {
        Some(at) if rest[at..].starts_with('/') => &rest[at..],
        // `http://host` or `http://host?q`: the root.
        _ => "/",
    }
}

/// A file chosen to answer a request, opened.
#[derive(Debug)]
pub struct Found {
    pub file: File,
    pub metadata: Metadata,
    /// The path served, for the content type.
    pub path: PathBuf,
}

/// The directory being served.
#[derive(Debug, Clone)]
pub struct Site {
    root: PathBuf,
}

impl Site {
    /// Serves `root`, which must be a directory; it is canonicalized once so later checks
    /// compare real paths.
    pub fn new(root: &Path) -> io::Result<Site> {
        let root = fs::canonicalize(root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Site { root })
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the file `target` names: `dir/` means `dir/index.html`; a directory without the
    /// slash is redirected; anything resolving outside the root is not found.
    pub fn resolve(&self, target: &str) -> Result<Found, TargetError> {
        let (segments, slash) = segments(target)?;
        let mut path = self.root.clone();
        path.extend(&segments);
        let real = fs::canonicalize(&path).map_err(|_| TargetError::NotFound)?;
        if !real.starts_with(&self.root) {
            return Err(TargetError::NotFound);
        }
        let metadata = fs::metadata(&real).map_err(|_| TargetError::NotFound)?;
        let real = if metadata.is_dir() {
            if !slash {
                let path_only = target.split(['?', '#']).next().unwrap_or("/");
                return Err(TargetError::AddSlash(format!("{path_only}/")));
            }
            let index =
                fs::canonicalize(real.join("index.html")).map_err(|_| TargetError::NotFound)?;
            if !index.starts_with(&self.root) {
                return Err(TargetError::NotFound);
            }
            index
        } else {
            real
        };
        let file = File::open(&real).map_err(|_| TargetError::NotFound)?;
        let metadata = file.metadata().map_err(|_| TargetError::NotFound)?;
        if !metadata.is_file() {
            return Err(TargetError::NotFound);
        }
        Ok(Found {
            file,
            metadata,
            path: real,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_targets_are_served_by_their_path() {
        assert_eq!(
            segments("http://h/a/b.txt?x").unwrap(),
            (vec!["a".into(), "b.txt".into()], false)
        );
        assert_eq!(
            segments("HTTPS://h:8080/d/").unwrap(),
            (vec!["d".into()], true)
        );
        assert_eq!(segments("http://h").unwrap(), (vec![], true));
        assert_eq!(segments("http://h?q=1").unwrap(), (vec![], true));
        assert_eq!(segments("http://h/../etc/passwd"), Err(TargetError::Bad));
        assert_eq!(segments("ftp://h/a"), Err(TargetError::Bad));
    }

    #[test]
    fn segments_decode_and_refuse_climbing() {
        assert_eq!(
            segments("/a/b%20c/?q=1"),
            Ok((vec!["a".into(), "b c".into()], true))
        );
        assert_eq!(
            segments("/./a//b"),
            Ok((vec!["a".into(), "b".into()], false))
        );
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2E%2Fx",
            "/a%2fb",
            "/a%5c..%5cb",
            "/a%00b",
            "relative",
            "/%ff",
        ] {
            assert_eq!(segments(bad), Err(TargetError::Bad), "{bad}");
        }
    }

    #[test]
    fn resolve_serves_files_indexes_and_nothing_outside() {
        let base = std::env::temp_dir().join(format!("tunstack-site-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("a.txt"), b"a").unwrap();
        fs::write(root.join("dir/index.html"), b"i").unwrap();
        fs::write(base.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("link-in")).unwrap();
        let site = Site::new(&root).unwrap();

        assert_eq!(site.resolve("/a.txt").unwrap().metadata.len(), 1);
        assert!(site.resolve("/link-in").is_ok());
        assert!(site
            .resolve("/dir/")
            .unwrap()
            .path
            .ends_with("dir/index.html"));
        assert_eq!(
            site.resolve("/dir?x").unwrap_err(),
            TargetError::AddSlash("/dir/".into())
        );
        assert_eq!(
            site.resolve("/link-out").unwrap_err(),
            TargetError::NotFound
        );
        assert_eq!(site.resolve("/empty/").unwrap_err(), TargetError::NotFound);
        assert_eq!(site.resolve("/missing").unwrap_err(), TargetError::NotFound);
        assert_eq!(site.resolve("/../secret").unwrap_err(), TargetError::Bad);
        fs::remove_dir_all(&base).unwrap();
    }
}
