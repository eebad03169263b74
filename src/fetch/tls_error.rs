//! What a TLS session failed on, as one plain sentence for the user: rustls's `Error`,
//! `CertificateError` and `AlertDescription` (and the verifier's own `CertProblem`) mapped to
//! a typed enum, never shown as Rust `Debug` text.

use std::time::{Duration, UNIX_EPOCH};

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError, Error, OtherError, PeerIncompatible};

use super::trust::CertProblem;

/// Why a TLS session failed; each Display is the line the user sees after `tunstack: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("certificate for {host} expired on {on}")]
    Expired { host: String, on: String },
    #[error("certificate for {host} is not valid before {from}")]
    NotValidYet { host: String, from: String },
    #[error("certificate for {host} has no valid dates (it ends before it begins)")]
    BadValidity { host: String },
    #[error("certificate is for {}, not {host}", .names.join(", "))]
    WrongName { host: String, names: Vec<String> },
    #[error("certificate is not valid for {host}")]
    NotForHost { host: String },
    #[error(
        "certificate names no host in subjectAltName (its common name {common_name} is not \
         used for host names), so it is not valid for {host}"
    )]
    NoAltNames { host: String, common_name: String },
    #[error(
        "certificate for {host} is not trusted (unknown issuer); use --cacert FILE to trust \
         its CA, or -k"
    )]
    UnknownIssuer { host: String },
    #[error(
        "certificate for {host} is self-signed and not trusted; use --cacert FILE with that \
         certificate, or -k"
    )]
    SelfSigned { host: String },
    #[error("certificate for {host} is not for TLS servers (its extended key usage)")]
    WrongPurpose { host: String },
    #[error("certificate for {host} was rejected: {reason}")]
    Certificate { host: String, reason: &'static str },
    #[error("the server refused the handshake: {alert}{}", alert_hint(.alert))]
    Alert { alert: String },
    #[error("{host} speaks no TLS version tunstack does (TLS 1.2 or 1.3)")]
    NoSharedVersion { host: String },
    #[error("TLS handshake with {host} failed: {reason}")]
    Handshake { host: String, reason: String },
    #[error("{host} closed the connection during the TLS handshake")]
    HandshakeClosed { host: String },
    #[error("TLS connection to {host} closed without close_notify")]
    Truncated { host: String },
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("invalid TLS server name {0:?}")]
    ServerName(String),
}

/// One sentence for a rustls error on the session with `host`.
pub fn describe(host: &str, error: Error) -> TlsError {
    let host = host.to_string();
    let handshake = |reason: &str| TlsError::Handshake {
        host: host.clone(),
        reason: reason.into(),
    };
    match error {
        Error::InvalidCertificate(cert) => certificate(host, cert),
        Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            TlsError::NoSharedVersion { host }
        }
        Error::AlertReceived(alert) => TlsError::Alert {
            alert: alert_name(alert),
        },
        Error::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired,
        ) => TlsError::NoSharedVersion { host },
        Error::PeerIncompatible(_) => {
            handshake("the server wants TLS parameters tunstack does not offer")
        }
        Error::NoCertificatesPresented => handshake("the server sent no certificate"),
        Error::DecryptError => handshake("a record from the server did not decrypt"),
        Error::InvalidMessage(_)
        | Error::InappropriateMessage { .. }
        | Error::InappropriateHandshakeMessage { .. }
        | Error::PeerMisbehaved(_)
        | Error::PeerSentOversizedRecord => {
            handshake("the server sent a malformed or unexpected TLS message")
        }
        Error::General(reason) => handshake(&reason),
        _ => handshake("rustls reported an unexpected error"),
    }
}

fn certificate(host: String, error: CertificateError) -> TlsError {
    let rejected = |reason| TlsError::Certificate {
        host: host.clone(),
        reason,
    };
    match error {
        CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
            host,
            on: day(not_after),
        },
        CertificateError::NotValidYetContext { not_before, .. } => TlsError::NotValidYet {
            host,
            from: day(not_before),
        },
        // webpki says plain `Expired` when notAfter precedes notBefore.
        CertificateError::Expired | CertificateError::NotValidYet => TlsError::BadValidity { host },
        CertificateError::UnknownIssuer => TlsError::UnknownIssuer { host },
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            TlsError::WrongPurpose { host }
        }
        // Our verifier lists the names (`CertProblem::WrongName`); rustls's own list is
        // Debug text, so it is not shown.
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsError::NotForHost { host }
        }
        CertificateError::Other(OtherError(inner)) => {
            if let Some(problem) = inner.downcast_ref::<CertProblem>() {
                return problem_sentence(host, problem);
            }
            match inner.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => {
                    rejected("it is a CA certificate, not a server certificate")
                }
                _ => rejected("the verifier refused it"),
            }
        }
        CertificateError::BadEncoding => rejected("it is malformed"),
        CertificateError::BadSignature => rejected("its signature is invalid"),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            rejected("it is signed with an algorithm tunstack does not support")
        }
        CertificateError::Revoked => rejected("it has been revoked"),
        _ => rejected("the verifier refused it"),
    }
}

fn problem_sentence(host: String, problem: &CertProblem) -> TlsError {
    match problem {
        CertProblem::SelfSigned => TlsError::SelfSigned { host },
        CertProblem::WrongName { names, common_name } if names.is_empty() => TlsError::NoAltNames {
            host,
            common_name: common_name.clone().unwrap_or_else(|| "(none)".into()),
        },
        CertProblem::WrongName { names, .. } => TlsError::WrongName {
            host,
            names: names.clone(),
        },
    }
}

/// The UTC day of `time`, as `2024-01-05`.
fn day(time: UnixTime) -> String {
    let moment = UNIX_EPOCH + Duration::from_secs(time.as_secs());
    let mut text = humantime::format_rfc3339_seconds(moment).to_string();
    text.truncate(10);
    text
}

/// The alert's name as the TLS RFCs spell it (`handshake_failure`).
fn alert_name(alert: AlertDescription) -> String {
    use AlertDescription as A;
    let name = match alert {
        A::CloseNotify => "close_notify",
        A::UnexpectedMessage => "unexpected_message",
        A::BadRecordMac => "bad_record_mac",
        A::DecryptionFailed => "decryption_failed",
        A::RecordOverflow => "record_overflow",
        A::DecompressionFailure => "decompression_failure",
        A::HandshakeFailure => "handshake_failure",
        A::NoCertificate => "no_certificate",
        A::BadCertificate => "bad_certificate",
        A::UnsupportedCertificate => "unsupported_certificate",
        A::CertificateRevoked => "certificate_revoked",
        A::CertificateExpired => "certificate_expired",
        A::CertificateUnknown => "certificate_unknown",
        A::IllegalParameter => "illegal_parameter",
        A::UnknownCA => "unknown_ca",
        A::AccessDenied => "access_denied",
        A::DecodeError => "decode_error",
        A::DecryptError => "decrypt_error",
        A::ExportRestriction => "export_restriction",
        A::ProtocolVersion => "protocol_version",
        A::InsufficientSecurity => "insufficient_security",
        A::InternalError => "internal_error",
        A::InappropriateFallback => "inappropriate_fallback",
        A::UserCanceled => "user_canceled",
        A::NoRenegotiation => "no_renegotiation",
        A::MissingExtension => "missing_extension",
        A::UnsupportedExtension => "unsupported_extension",
        A::CertificateUnobtainable => "certificate_unobtainable",
        A::UnrecognisedName => "unrecognized_name",
        A::BadCertificateStatusResponse => "bad_certificate_status_response",
        A::BadCertificateHashValue => "bad_certificate_hash_value",
        A::UnknownPSKIdentity => "unknown_psk_identity",
        A::CertificateRequired => "certificate_required",
        A::NoApplicationProtocol => "no_application_protocol",
        A::EncryptedClientHelloRequired => "encrypted_client_hello_required",
        other => return format!("alert {}", u8::from(other)),
    };
    name.into()
}

/// What an alert most often means, for the ones a user can act on.
fn alert_hint(alert: &str) -> &'static str {
    match alert {
        "handshake_failure" => " (most often: no cipher suite in common with tunstack)",
        "insufficient_security" => " (it wants stronger cipher suites than tunstack offered)",
        "unrecognized_name" => " (it does not serve that host name)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{DnsName, ServerName};

    use super::*;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn sentence(error: Error) -> String {
        describe("a.test", error).to_string()
    }

    /// `CamelCase` words, braces, quotes or paths are Rust `Debug` output, not a sentence.
    fn looks_like_debug(text: &str) -> bool {
        let camel = text.split_whitespace().any(|word| {
            word.chars().any(char::is_lowercase) && word.chars().skip(1).any(char::is_uppercase)
        });
        camel || text.contains(['{', '}', '"']) || text.contains("::")
    }

    #[test]
    fn expiry_and_start_name_the_day() {
        // 2024-01-05T12:00:00Z and 2090-01-01T00:00:00Z.
        let expired = CertificateError::ExpiredContext {
            time: at(1_800_000_000),
            not_after: at(1_704_456_000),
        };
        assert_eq!(
            sentence(expired.into()),
            "certificate for a.test expired on 2024-01-05"
        );
        let future = CertificateError::NotValidYetContext {
            time: at(1_800_000_000),
            not_before: at(3_786_912_000),
        };
        assert_eq!(
            sentence(future.into()),
            "certificate for a.test is not valid before 2090-01-01"
        );
        assert_eq!(
            sentence(CertificateError::Expired.into()),
            "certificate for a.test has no valid dates (it ends before it begins)"
        );
    }

    #[test]
    fn trust_failures_say_what_to_do() {
        assert_eq!(
            sentence(CertificateError::UnknownIssuer.into()),
            "certificate for a.test is not trusted (unknown issuer); use --cacert FILE to \
             trust its CA, or -k"
        );
        let self_signed = CertificateError::Other(OtherError(Arc::new(CertProblem::SelfSigned)));
        assert_eq!(
            sentence(self_signed.into()),
            "certificate for a.test is self-signed and not trusted; use --cacert FILE with \
             that certificate, or -k"
        );
        let ca = CertificateError::Other(OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        assert_eq!(
            sentence(ca.into()),
            "certificate for a.test was rejected: it is a CA certificate, not a server \
             certificate"
        );
        assert_eq!(
            sentence(CertificateError::InvalidPurpose.into()),
            "certificate for a.test is not for TLS servers (its extended key usage)"
        );
    }

    #[test]
    fn a_wrong_name_lists_the_names_held() {
        let wrong = CertProblem::WrongName {
            names: vec!["b.test".into(), "www.b.test".into(), "10.0.0.1".into()],
            common_name: Some("b.test".into()),
        };
        let error = CertificateError::Other(OtherError(Arc::new(wrong)));
        assert_eq!(
            sentence(error.into()),
            "certificate is for b.test, www.b.test, 10.0.0.1, not a.test"
        );
        let no_san = CertProblem::WrongName {
            names: vec![],
            common_name: Some("a.test".into()),
        };
        let error = CertificateError::Other(OtherError(Arc::new(no_san)));
        assert_eq!(
            sentence(error.into()),
            "certificate names no host in subjectAltName (its common name a.test is not used \
             for host names), so it is not valid for a.test"
        );
        // rustls's own error (not through our verifier) still reads as a sentence.
        let plain = CertificateError::NotValidForNameContext {
            expected: ServerName::DnsName(DnsName::try_from("a.test").unwrap().to_owned()),
            presented: vec!["DnsName(\"b.test\")".into()],
        };
        assert_eq!(
            sentence(plain.into()),
            "certificate is not valid for a.test"
        );
    }

    #[test]
    fn alerts_are_named_as_in_the_rfc() {
        assert_eq!(
            sentence(Error::AlertReceived(AlertDescription::HandshakeFailure)),
            "the server refused the handshake: handshake_failure (most often: no cipher \
             suite in common with tunstack)"
        );
        assert_eq!(
            sentence(Error::AlertReceived(AlertDescription::DecodeError)),
            "the server refused the handshake: decode_error"
        );
        assert_eq!(
            sentence(Error::AlertReceived(AlertDescription::Unknown(200))),
            "the server refused the handshake: alert 200"
        );
    }

    #[test]
    fn no_common_version_either_way() {
        let want = "a.test speaks no TLS version tunstack does (TLS 1.2 or 1.3)";
        assert_eq!(
            sentence(Error::AlertReceived(AlertDescription::ProtocolVersion)),
            want
        );
        assert_eq!(
            sentence(PeerIncompatible::ServerDoesNotSupportTls12Or13.into()),
            want
        );
    }

    #[test]
    fn nothing_reads_like_debug_output() {
        let errors: Vec<Error> = vec![
            CertificateError::BadEncoding.into(),
            CertificateError::BadSignature.into(),
            CertificateError::Revoked.into(),
            CertificateError::Other(OtherError(Arc::new(webpki::Error::CertRevoked))).into(),
            PeerIncompatible::NoKxGroupsInCommon.into(),
            Error::DecryptError,
            Error::NoCertificatesPresented,
            Error::PeerSentOversizedRecord,
            Error::HandshakeNotComplete,
        ];
        for error in errors {
            let text = sentence(error);
            assert!(!looks_like_debug(&text), "{text}");
        }
        assert!(looks_like_debug(
            "rejected: Other(OtherError(CaUsedAsEndEntity))"
        ));
    }
}
