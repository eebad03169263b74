//! Which server certificates a TLS session accepts: the bundled Mozilla roots or the
//! `--cacert` certificates (through rustls's webpki verifier), or anything at all (`-k`).
//!
//! One case differs from plain webpki, so that `--cacert` behaves like curl's: a server
//! certificate that is itself one of the `--cacert` certificates (byte for byte) is trusted
//! even when it says `CA:TRUE`, as every `openssl req -x509` certificate does (webpki refuses
//! a CA certificate as an end entity), or when its issuer is not in the file (curl verifies
//! partial chains). Its name, dates and key usage are still checked.
//! Rejections are also made more precise for the user (self-signed, the names a certificate
//! holds), carried to `tls_error` as a [`CertProblem`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::tls_error::TlsError;

/// What the verifier found wrong beyond what rustls's `CertificateError` says; it travels to
/// `tls_error::describe` inside `CertificateError::Other`, which turns it into a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// Nobody vouches for the certificate but itself, and it is not a `--cacert` certificate.
    #[error("self-signed certificate that is not trusted")]
    SelfSigned,
    /// The certificate does not name the host; these are the names it does hold.
    #[error("certificate is for other names")]
    WrongName {
        /// DNS names and IP addresses of its subjectAltName, in order.
        names: Vec<String>,
        /// Its subject's common name, shown when there is no subjectAltName (webpki, like
        /// browsers, does not match host names against it).
        common_name: Option<String>,
    },
}

/// The verifier for a run: webpki with the certificates of `cacert` as its roots (or the
/// bundled Mozilla roots when `None`), plus the self-signed `--cacert` case and precise
/// rejections.
pub fn verifier(
    cacert: Option<&Path>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    let mut pinned = Vec::new();
    match cacert {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let fail = |reason: String| TlsError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| fail(e.to_string()))?;
                roots.add(cert.clone()).map_err(|e| fail(e.to_string()))?;
                pinned.push(cert);
            }
            if pinned.is_empty() {
                return Err(fail("no PEM certificates in it".into()));
            }
        }
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::CaFile {
            path: cacert.map(|p| p.display().to_string()).unwrap_or_default(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(TrustVerifier { inner, pinned }))
}

/// webpki's verifier, and the `--cacert` certificates a server may present as they are.
#[derive(Debug)]
struct TrustVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Ok(verified) => Ok(verified),
            Err(error)
                if pinned_would_do(&error)
                    && self
                        .pinned
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                verify_pinned(end_entity, server_name, now)
            }
            Err(error) => Err(explain(error, end_entity, intermediates)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The two refusals a `--cacert` certificate presented as it is gets from webpki: a CA
/// (`CA:TRUE`) as end entity, or a leaf whose issuer is not in the file (it is its own
/// trust anchor, as with curl's partial chains).
fn pinned_would_do(error: &Error) -> bool {
    is_ca_used_as_end_entity(error)
        || *error == Error::InvalidCertificate(CertificateError::UnknownIssuer)
}

fn is_ca_used_as_end_entity(error: &Error) -> bool {
    let Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) = error else {
        return false;
    };
    inner.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
}

/// A `--cacert` certificate presented as the server's own: trusted as it is (we hold the
/// same bytes, so no signature on it matters), but it must still be within its dates, name the
/// host (webpki's subjectAltName rules) and not be restricted to other purposes than TLS
/// servers. webpki checks dates and purpose before refusing a CA or an unknown issuer, so
/// they are normally fine here; they are checked again so this does not rest on that order.
fn verify_pinned(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
        .map_err(|_| CertificateError::BadEncoding)?;
    let validity = cert.validity();
    let not_before = unix_time(validity.not_before.timestamp());
    let not_after = unix_time(validity.not_after.timestamp());
    if now.as_secs() < not_before.as_secs() {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        }
        .into());
    }
    if now.as_secs() > not_after.as_secs() {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        }
        .into());
    }
    match cert.extended_key_usage() {
        Ok(None) => {}
        Ok(Some(eku)) if eku.value.server_auth || eku.value.any => {}
        Ok(Some(_)) => return Err(CertificateError::InvalidPurpose.into()),
        Err(_) => return Err(CertificateError::BadEncoding.into()),
    }
    let parsed = ParsedCertificate::try_from(end_entity)?;
    verify_server_name(&parsed, server_name).map_err(|e| explain(e, end_entity, &[]))?;
    Ok(ServerCertVerified::assertion())
}

fn unix_time(timestamp: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(timestamp.max(0).unsigned_abs()))
}

/// Turns webpki's refusal of a self-signed certificate ("CA used as end entity", "unknown
/// issuer"), and "not valid for name", into a [`CertProblem`] that says more; everything
/// else passes unchanged.
fn explain(
    error: Error,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Error {
    let problem = match &error {
        // webpki refuses a self-signed CA:TRUE certificate as a CA before it looks for an
        // issuer; a CA:FALSE one has no known issuer.
        _ if is_ca_used_as_end_entity(&error)
            || (error == Error::InvalidCertificate(CertificateError::UnknownIssuer)
                && intermediates.is_empty()) =>
        {
            match x509_parser::parse_x509_certificate(end_entity.as_ref()) {
                Ok((_, cert)) if is_self_signed(&cert) => CertProblem::SelfSigned,
                _ => return error,
            }
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => match x509_parser::parse_x509_certificate(end_entity.as_ref()) {
            Ok((_, cert)) => names_of(&cert),
            Err(_) => return error,
        },
        _ => return error,
    };
    CertificateError::Other(OtherError(Arc::new(problem))).into()
}

/// Issued by itself: subject and issuer are the same name. (The signature is not checked:
/// this only picks the sentence for a certificate that is rejected anyway.)
fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

fn names_of(cert: &X509Certificate<'_>) -> CertProblem {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_string()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                        names.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                        names.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .map(str::to_string);
    CertProblem::WrongName { names, common_name }
}

/// `-k`: trust any certificate, but keep verifying that the peer holds its key.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
