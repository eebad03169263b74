//! Request header fields the user adds, replaces or removes (`-H`, `-A`, `-u`), and how they
//! merge with the ones tunstack sends by default.
//!
//! Pure: parsing and merging only, so the rules (case-insensitive replacement, `Name:` removes)
//! are unit-tested without a network.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

/// One `-H 'Name: value'` (set or add `Name`) or `-H 'Name:'` (remove it) from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdit {
    /// Field name as the user spelled it (sent that way).
    pub name: String,
    /// The value to send, or `None` to remove a default field of that name.
    pub value: Option<String>,
}

/// Why a `-H` value cannot be sent; a usage error, refused before the network is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderEditError {
    /// No colon: `-H` needs `Name: value` (or `Name:` to remove the field).
    #[error("expected 'Name: value' (or 'Name:' to remove a header)")]
    NoColon,
    /// The name is not an RFC 9110 token (empty, spaces, separators, control bytes).
    #[error("'{0}' is not a valid header name")]
    BadName(String),
    /// The value holds CR, LF, NUL or another control byte that could split the request.
    #[error("the value of {0} holds a control character (CR, LF, NUL...)")]
    BadValue(String),
}

impl FromStr for HeaderEdit {
    type Err = HeaderEditError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, value) = text.split_once(':').ok_or(HeaderEditError::NoColon)?;
        if !is_valid_header_name(name) {
            return Err(HeaderEditError::BadName(name.to_owned()));
        }
        // Optional whitespace around the value is not part of it (RFC 9110 §5.5).
        let value = value.trim_matches([' ', '\t']);
        if !is_valid_header_value(value) {
            return Err(HeaderEditError::BadValue(name.to_owned()));
        }
        Ok(HeaderEdit {
            name: name.to_owned(),
            value: (!value.is_empty()).then(|| value.to_owned()),
        })
    }
}

/// Applies the user's edits to the fields tunstack would send, in order: an edit replaces the
/// first field of the same name (case-insensitively) in place and drops any others, `None`
/// removes them all, and a name not present yet is appended. Later edits see earlier ones, so
/// two `-H` of one name leave the last value, like curl.
pub fn merge_headers(
    mut fields: Vec<(String, String)>,
    edits: &[HeaderEdit],
) -> Vec<(String, String)> {
    for edit in edits {
        let first = fields
            .iter()
            .position(|(name, _)| name.eq_ignore_ascii_case(&edit.name));
        match (first, &edit.value) {
            (Some(at), Some(value)) => {
                fields[at] = (edit.name.clone(), value.clone());
                let mut index = 0;
                fields.retain(|(name, _)| {
                    index += 1;
                    index - 1 == at || !name.eq_ignore_ascii_case(&edit.name)
                });
            }
            (Some(_), None) => fields.retain(|(name, _)| !name.eq_ignore_ascii_case(&edit.name)),
            (None, Some(value)) => fields.push((edit.name.clone(), value.clone())),
            (None, None) => {}
        }
    }
    fields
}

/// The edits to apply on a request that a redirect sent to another origin: without the ones
/// that set credentials (`Authorization`, `Proxy-Authorization`, `Cookie`), which curl too keeps
/// for the host they were meant for.
pub fn for_another_origin(edits: &[HeaderEdit]) -> Vec<HeaderEdit> {
    const SECRET: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
    edits
        .iter()
        .filter(|edit| {
            edit.value.is_none() || !SECRET.iter().any(|s| edit.name.eq_ignore_ascii_case(s))
        })
        .cloned()
        .collect()
}

/// `-u USER:PASSWORD`: credentials for HTTP Basic authentication (RFC 7617).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (may not contain a colon, as RFC 7617 requires).
    pub user: String,
    /// The password (anything after the first colon).
    pub password: String,
}

/// Why a `-u` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// No colon: we never prompt for a password, so it must be given.
    #[error("expected USER:PASSWORD")]
    NoColon,
    /// A control character would be sent inside the header (after encoding it is harmless,
    /// but servers reject it and it is almost always a paste mistake).
    #[error("the user or password holds a control character")]
    Control,
}

impl FromStr for Credentials {
    type Err = CredentialsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (user, password) = text.split_once(':').ok_or(CredentialsError::NoColon)?;
        if text.chars().any(char::is_control) {
            return Err(CredentialsError::Control);
        }
        Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

impl Credentials {
    /// The `Authorization` field value: `Basic base64(user:password)` (UTF-8, RFC 7617 §2.1).
    pub fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// Never prints the password, so a `{:?}` in a log or panic cannot leak it.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// RFC 9110 §5.1: a field name is a non-empty token.
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL that could end the line.
pub fn is_valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn edits(list: &[&str]) -> Vec<HeaderEdit> {
        list.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn edits_parse_name_and_trimmed_value() {
        let edit: HeaderEdit = "X-Token:  abc def \t".parse().unwrap();
        assert_eq!(edit.name, "X-Token");
        assert_eq!(edit.value.as_deref(), Some("abc def"));
        let removal: HeaderEdit = "Accept:".parse().unwrap();
        assert_eq!(removal.value, None);
        let removal: HeaderEdit = "Accept:   ".parse().unwrap();
        assert_eq!(removal.value, None);
        // A colon inside the value belongs to the value.
        let edit: HeaderEdit = "Referer: http://a/b".parse().unwrap();
        assert_eq!(edit.value.as_deref(), Some("http://a/b"));
    }

    #[test]
    fn malformed_edits_are_refused() {
        assert_eq!(
            "NoColon".parse::<HeaderEdit>(),
            Err(HeaderEditError::NoColon)
        );
        for bad in [": v", "Bad Name: v", "Bad\r\nName: v", "Na(me: v", "Ünï: v"] {
            assert!(
                matches!(bad.parse::<HeaderEdit>(), Err(HeaderEditError::BadName(_))),
                "{bad:?}"
            );
        }
        for bad in ["X: a\r\nEvil: 1", "X: a\nb", "X: nul\0", "X: \x7f"] {
            assert!(
                matches!(bad.parse::<HeaderEdit>(), Err(HeaderEditError::BadValue(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_edit_replaces_a_default_case_insensitively_in_place() {
        let merged = merge_headers(
            fields(&[("Host", "h"), ("User-Agent", "tunstack"), ("Accept", "*/*")]),
            &edits(&["user-agent: mine/1"]),
        );
        assert_eq!(
            merged,
            fields(&[("Host", "h"), ("user-agent", "mine/1"), ("Accept", "*/*")])
        );
    }

    #[test]
    fn an_empty_edit_removes_and_a_new_name_is_appended() {
        let merged = merge_headers(
            fields(&[("Host", "h"), ("Accept", "*/*"), ("Connection", "close")]),
            &edits(&["ACCEPT:", "X-One: 1", "X-Gone:"]),
        );
        assert_eq!(
            merged,
            fields(&[("Host", "h"), ("Connection", "close"), ("X-One", "1")])
        );
    }

    #[test]
    fn repeated_names_collapse_to_the_last_value() {
        let merged = merge_headers(
            fields(&[("A", "1"), ("B", "2"), ("a", "3")]),
            &edits(&["a: x", "X: 1", "x: 2"]),
        );
        assert_eq!(merged, fields(&[("a", "x"), ("B", "2"), ("x", "2")]));
    }

    #[test]
    fn credentials_in_edits_stay_with_their_origin() {
        let all = edits(&[
            "Authorization: Bearer x",
            "cookie: a=1",
            "X-Keep: 1",
            "Accept:",
        ]);
        let elsewhere = for_another_origin(&all);
        assert_eq!(elsewhere, edits(&["X-Keep: 1", "Accept:"]));
    }

    #[test]
    fn basic_authorization_is_base64_of_user_colon_password() {
        // RFC 7617 §2's example.
        let creds: Credentials = "Aladdin:open sesame".parse().unwrap();
        assert_eq!(
            creds.basic_authorization(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        // Only the first colon separates: passwords may contain colons.
        let creds: Credentials = "u:p:w".parse().unwrap();
        assert_eq!((creds.user.as_str(), creds.password.as_str()), ("u", "p:w"));
        assert_eq!(
            "user".parse::<Credentials>(),
            Err(CredentialsError::NoColon)
        );
        assert_eq!(
            "u:a\nb".parse::<Credentials>(),
            Err(CredentialsError::Control)
        );
        assert!(!format!("{creds:?}").contains("p:w"));
    }
}
