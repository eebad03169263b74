//! Following redirects: where a 3xx points, and when to stop following.

use url::Url;

use super::{HttpError, ResponseHead};

/// How many redirects `fetch` follows by default, like common HTTP clients.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// The URL a redirect response points to, resolved against the URL that was requested.
///
/// `Ok(None)` for statuses that are not followed automatically (everything but 301, 302, 303,
/// 307 and 308). A redirect without a usable `Location` is an error, since there is nothing
/// sensible to save instead. Per RFC 9110 §10.2.2 a target without a fragment inherits the
/// fragment of `base`.
pub fn redirect_target(base: &Url, head: &ResponseHead) -> Result<Option<Url>, HttpError> {
    if !matches!(head.status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let raw = head.header("location").ok_or(HttpError::MissingLocation {
        status: head.status,
    })?;
    let invalid = |reason: String| HttpError::InvalidLocation {
        location: String::from_utf8_lossy(raw).into_owned(),
        reason,
    };
    let location = std::str::from_utf8(raw).map_err(|_| invalid("not UTF-8".into()))?;
    if location.trim().is_empty() {
        return Err(invalid("empty".into()));
    }
    let mut target = base
        .join(location)
        .map_err(|error| invalid(error.to_string()))?;
    if target.fragment().is_none() {
        target.set_fragment(base.fragment());
    }
    Ok(Some(target))
}

/// Tracks the URLs fetched while following redirects, so that a chain ends with an error
/// instead of looping or running forever.
#[derive(Debug, Clone)]
pub struct RedirectChain {
    max_redirects: usize,
    /// The URL to fetch now.
    current: Url,
    /// URLs fetched before `current`, oldest first.
    earlier: Vec<Url>,
}

impl RedirectChain {
    /// A chain starting at `start` that allows at most `max_redirects` hops.
    pub fn new(start: Url, max_redirects: usize) -> Self {
        RedirectChain {
            max_redirects,
            current: start,
            earlier: Vec::new(),
        }
    }

    /// The URL to fetch now.
    pub fn current(&self) -> &Url {
        &self.current
    }

    /// How many redirects have been followed.
    pub fn redirects(&self) -> usize {
        self.earlier.len()
    }

    /// Accepts `target` as the next URL to fetch, or explains why the chain must stop: a scheme
    /// we cannot fetch, a URL already visited (fragments aside, since they are never sent), or
    /// the redirect limit.
    pub fn follow(&mut self, target: Url) -> Result<&Url, HttpError> {
        if target.scheme() != "http" && target.scheme() != "https" {
            return Err(HttpError::UnsupportedScheme {
                scheme: target.scheme().to_owned(),
                url: target,
            });
        }
        let mut visited = self.earlier.iter().chain(std::iter::once(&self.current));
        if visited.any(|seen| same_resource(seen, &target)) {
            return Err(HttpError::RedirectLoop(target));
        }
        if self.redirects() >= self.max_redirects {
            return Err(HttpError::TooManyRedirects(self.max_redirects));
        }
        let previous = std::mem::replace(&mut self.current, target);
        self.earlier.push(previous);
        Ok(&self.current)
    }
}

/// Equal as far as the server can tell: everything but the fragment.
fn same_resource(a: &Url, b: &Url) -> bool {
    a[..url::Position::AfterQuery] == b[..url::Position::AfterQuery]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, location: Option<&[u8]>) -> ResponseHead {
        ResponseHead {
            status,
            reason: String::new(),
            headers: location
                .map(|value| vec![("Location".to_owned(), value.to_vec())])
                .unwrap_or_default(),
            minor_version: 1,
        }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn redirect_statuses_resolve_relative_locations() {
        let base = url("http://example.org/dir/page?x=1");
        for status in [301, 302, 303, 307, 308] {
            let target = redirect_target(&base, &head(status, Some(b"other")))
                .unwrap()
                .unwrap();
            assert_eq!(target.as_str(), "http://example.org/dir/other", "{status}");
        }
        let cases: [(&[u8], &str); 4] = [
            (b"/abs", "http://example.org/abs"),
            (b"../up", "http://example.org/up"),
            (b"//cdn.example.net/f", "http://cdn.example.net/f"),
            (b"http://other.test:8080/p?q", "http://other.test:8080/p?q"),
        ];
        for (location, expected) in cases {
            let target = redirect_target(&base, &head(302, Some(location)))
                .unwrap()
                .unwrap();
            assert_eq!(target.as_str(), expected);
        }
    }

    #[test]
    fn other_statuses_are_not_redirects() {
        let base = url("http://example.org/");
        for status in [200, 204, 300, 304, 305, 306, 404] {
            assert_eq!(
                redirect_target(&base, &head(status, Some(b"/x"))).unwrap(),
                None,
                "{status}"
            );
        }
    }

    #[test]
    fn fragment_is_inherited_only_when_location_has_none() {
        let base = url("http://example.org/a#sec");
        let target = redirect_target(&base, &head(301, Some(b"/b")))
            .unwrap()
            .unwrap();
        assert_eq!(target.as_str(), "http://example.org/b#sec");
        let target = redirect_target(&base, &head(301, Some(b"/b#own")))
            .unwrap()
            .unwrap();
        assert_eq!(target.as_str(), "http://example.org/b#own");
    }

    #[test]
    fn missing_or_unusable_location_is_an_error() {
        let base = url("http://example.org/");
        let err = redirect_target(&base, &head(302, None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTP 302 redirect without a Location header"
        );
        for bad in [&b""[..], b"   ", b"\xff\xfe", b"http://[::1"] {
            let err = redirect_target(&base, &head(307, Some(bad))).unwrap_err();
            assert!(matches!(err, HttpError::InvalidLocation { .. }), "{err}");
        }
    }

    #[test]
    fn chain_follows_up_to_the_limit() {
        let mut chain = RedirectChain::new(url("http://example.org/0"), 3);
        for hop in 1..=3 {
            let next = chain
                .follow(url(&format!("http://example.org/{hop}")))
                .unwrap();
            assert_eq!(next.path(), format!("/{hop}"));
        }
        assert_eq!(chain.redirects(), 3);
        let err = chain.follow(url("http://example.org/4")).unwrap_err();
        assert_eq!(err.to_string(), "too many redirects (3)");
        assert_eq!(chain.current().path(), "/3");
    }

    #[test]
    fn default_limit_is_ten() {
        let mut chain = RedirectChain::new(url("http://example.org/0"), DEFAULT_MAX_REDIRECTS);
        for hop in 1..=10 {
            chain
                .follow(url(&format!("http://example.org/{hop}")))
                .unwrap();
        }
        let err = chain.follow(url("http://example.org/11")).unwrap_err();
        assert_eq!(err.to_string(), "too many redirects (10)");
    }

    #[test]
    fn revisiting_a_url_is_a_loop() {
        let mut chain = RedirectChain::new(url("http://example.org/a"), 10);
        chain.follow(url("http://example.org/b")).unwrap();
        let err = chain.follow(url("http://example.org/a#frag")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "redirect loop at http://example.org/a#frag"
        );
        let mut chain = RedirectChain::new(url("http://example.org/a"), 10);
        let err = chain.follow(url("http://EXAMPLE.org:80/a")).unwrap_err();
        assert!(matches!(err, HttpError::RedirectLoop(_)), "{err}");
    }

    #[test]
    fn http_and_https_targets_are_followed_both_ways() {
        let mut chain = RedirectChain::new(url("http://example.org/"), 10);
        chain.follow(url("https://example.org/")).unwrap();
        chain.follow(url("http://example.org/plain")).unwrap();
        assert_eq!(chain.redirects(), 2);
    }

    #[test]
    fn other_schemes_are_refused() {
        let mut chain = RedirectChain::new(url("http://example.org/"), 10);
        let err = chain.follow(url("ftp://example.org/f")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ftp:// is not supported (ftp://example.org/f)"
        );
        assert!(matches!(err, HttpError::UnsupportedScheme { .. }), "{err}");
        assert_eq!(chain.redirects(), 0);
    }
}
