//! A throwaway certificate authority for the HTTPS tests, made with the `openssl` command at
//! test time: one CA and server certificates for `files.test` and 10.77.1.2 that are valid,
//! expired, or not valid yet. Nothing here is trusted by anything but the test that made it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The DNS name every server certificate is issued for (with the IP 10.77.1.2).
pub const CERT_HOST: &str = "files.test";

/// A certificate file and the file of its private key.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The CA certificate (for `--cacert`) and the server certificates it signed.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    /// Valid from 2020 to 2080.
    pub valid: KeyPair,
    /// Valid only during 2020.
    pub expired: KeyPair,
    /// Valid only from 2090.
    pub not_yet_valid: KeyPair,
}

/// Configuration for `openssl ca`. Its `server` section holds what webpki wants of a server
/// certificate: an end entity, for TLS servers, with the names in subjectAltName.
const CA_CONFIG: &str = "\
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
[ server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:files.test,IP:10.77.1.2
";

impl Pki {
    /// Makes the CA and its certificates under `dir` (created). P-256 keys keep it fast.
    pub fn create(dir: &Path) -> Pki {
        fs::create_dir_all(dir.join("issued")).unwrap();
        fs::write(dir.join("index.txt"), "").unwrap();
        fs::write(dir.join("serial"), "01\n").unwrap();
        fs::write(dir.join("ca.cnf"), CA_CONFIG).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/CN=tunstack test CA",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                &format!("/CN={CERT_HOST}"),
            ],
        );
        Pki {
            ca_cert: dir.join("ca.pem"),
            valid: issue(dir, "valid", "20200101000000Z", "20800101000000Z"),
            expired: issue(dir, "expired", "20200101000000Z", "20210101000000Z"),
            not_yet_valid: issue(dir, "future", "20900101000000Z", "20950101000000Z"),
        }
    }
}

/// Signs the server key's request with the CA for the given validity period (openssl 3.0 has
/// no `x509 -not_before`, but `ca -startdate/-enddate` takes any dates, past or future).
fn issue(dir: &Path, name: &str, start: &str, end: &str) -> KeyPair {
    let cert = format!("{name}.pem");
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "server.csr",
            "-out",
            &cert,
            "-startdate",
            start,
            "-enddate",
            end,
            "-extensions",
            "server",
        ],
    );
    KeyPair {
        cert: dir.join(cert),
        key: dir.join("server.key"),
    }
}

/// Runs the `openssl` command line in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt install openssl): {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
