//! End-to-end tests of which HTTPS servers `tunstack fetch` trusts, and of the one sentence it
//! prints when it does not: against `openssl s_server` in the lab's server namespace (bound to
//! 10.77.1.2 only), with certificates made at test time by the `openssl` command line.
//!
//! `--cacert` behaves like curl's with OpenSSL: a self-signed server certificate given there
//! is trusted as it is, `CA:TRUE` (as `openssl req -x509` makes them) or not, while its name,
//! dates and key usage are still checked. Each test builds its own sandbox (tests/e2e/lab.rs),
//! every wait is bounded, and nothing is saved by a failed download. Needs root and openssl.

// Shared with the other e2e test files: each test crate uses only part of it.
#[allow(dead_code)]
mod e2e {
    pub mod files;
    pub mod lab;
    pub mod process;
    pub mod tls;
}

use std::fs;
use std::path::{Path, PathBuf};

use e2e::files::{assert_dir_holds, assert_saved};
use e2e::lab::{can_run, resolve_to_server, Lab, SERVER_IP};
use e2e::process::{assert_fails_with_sole_line, Outcome};
use e2e::tls::openssl;

/// A key and certificate pair made in the test's scratch directory.
struct Cert {
    pem: PathBuf,
    key: PathBuf,
}

impl Cert {
    /// The pair `NAME.pem` and `NAME.key` in `dir`.
    fn named(dir: &Path, name: &str) -> Cert {
        Cert {
            pem: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }

    fn pem(&self) -> &str {
        self.pem.to_str().unwrap()
    }
}

/// A fresh directory for a test's certificates, in the lab's scratch directory.
fn pki_dir(lab: &Lab) -> PathBuf {
    let dir = lab.scratch_dir().join("pki");
    fs::create_dir_all(&dir).unwrap();
    dir
}

const P256: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// `openssl req -new`: a new P-256 key `NAME.key` and a request `NAME.csr` for `/CN=cn`; returns
/// their file names.
fn key_and_request(dir: &Path, name: &str, cn: &str) -> (String, String) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let subject = format!("/CN={cn}");
    let mut request = vec!["req", "-new", "-nodes", "-subj", &subject];
    request.extend(P256);
    request.extend(["-keyout", &key, "-out", &csr]);
    openssl(dir, &request);
    (key, csr)
}

/// `openssl req -x509`: self-signed, valid for 30 days from now, `CA:TRUE` unless `extra`
/// says otherwise (`-addext` lines).
fn self_signed(dir: &Path, name: &str, cn: &str, extra: &[&str]) -> Cert {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN={cn}");
    let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj", &subject];
    args.extend(P256);
    args.extend(["-keyout", &key, "-out", &pem]);
    args.extend(extra);
    openssl(dir, &args);
    Cert::named(dir, name)
}

/// A self-signed `CA:TRUE` certificate for `dns` valid from `start` to `end` (openssl 3.0's
/// `req` has no `-not_before`, but `ca -selfsign -startdate/-enddate` takes any dates).
fn self_signed_dated(dir: &Path, name: &str, dns: &str, start: &str, end: &str) -> Cert {
    let db = dir.join(format!("{name}-db"));
    fs::create_dir_all(&db).unwrap();
    fs::write(db.join("index.txt"), "").unwrap();
    fs::write(db.join("serial"), "01\n").unwrap();
    let config = format!(
        "[ ca ]\ndefault_ca = this\n\
         [ this ]\ndatabase = {db}/index.txt\nnew_certs_dir = {db}\nserial = {db}/serial\n\
         default_md = sha256\npolicy = any\nunique_subject = no\n\
         [ any ]\ncommonName = supplied\n\
         [ ext ]\nbasicConstraints = critical,CA:TRUE\nsubjectAltName = DNS:{dns}\n",
        db = db.display()
    );
    let config_file = format!("{name}.cnf");
    fs::write(dir.join(&config_file), config).unwrap();
    let pem = format!("{name}.pem");
    let (key, csr) = key_and_request(dir, name, dns);
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-selfsign",
            "-config",
            &config_file,
            "-keyfile",
            &key,
            "-in",
            &csr,
            "-out",
            &pem,
            "-startdate",
            start,
            "-enddate",
            end,
            "-extensions",
            "ext",
        ],
    );
    Cert::named(dir, name)
}

/// A certificate for `cn` signed by `issuer` with the extensions in `extensions` (one
/// `key = value` a line), valid 30 days.
fn issued(dir: &Path, name: &str, cn: &str, issuer: &Cert, serial: &str, extensions: &str) -> Cert {
    let (pem, ext) = (format!("{name}.pem"), format!("{name}.ext"));
    fs::write(dir.join(&ext), format!("[ ext ]\n{extensions}")).unwrap();
    let (_, csr) = key_and_request(dir, name, cn);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            issuer.pem(),
            "-CAkey",
            issuer.key.to_str().unwrap(),
            "-set_serial",
            serial,
            "-days",
            "30",
            "-extfile",
            &ext,
            "-extensions",
            "ext",
            "-out",
            &pem,
        ],
    );
    Cert::named(dir, name)
}

/// `openssl s_server -WWW` on 10.77.1.2:`port` serving the lab's `served/` directory (an
/// HTTP/1.0 answer without Content-Length, ended by closing), with `extra` options.
fn start_s_server(lab: &mut Lab, label: &'static str, port: u16, cert: &Cert, extra: &str) {
    let script = format!(
        "cd '{}' && exec openssl s_server -accept {SERVER_IP}:{port} -cert '{}' -key '{}' -WWW {extra}",
        lab.served_dir().display(),
        cert.pem.display(),
        cert.key.display()
    );
    lab.start_server(label, &["sh", "-c", &script], port);
}

/// Fetches `https://HOST:PORT/NAME` (HOST resolved to the server) with `args` before it.
fn fetch(lab: &Lab, args: &[&str], host: &str, port: u16, name: &str) -> Outcome {
    let resolve = resolve_to_server(host, port);
    let url = format!("https://{host}:{port}/{name}");
    let mut all = args.to_vec();
    all.extend(["--resolve", &resolve, &url]);
    lab.fetch(&all)
}

/// Exit status 0 (the server logs shown if not), and `name` saved with the SHA-256 `digest`.
fn assert_downloaded(lab: &Lab, outcome: &Outcome, name: &str, digest: &str) {
    assert_eq!(
        outcome.code(),
        Some(0),
        "{}\n{}",
        outcome.describe(),
        lab.server_logs()
    );
    assert_saved(&lab.out_dir(), name, digest);
}

#[test]
fn cacert_trusts_a_self_signed_server_as_curl_does_but_checks_it() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tlstrust1");
    let dir = pki_dir(&lab);
    let san = ["-addext", "subjectAltName=DNS:acc.test,DNS:www.acc.test"];
    let ca_true = self_signed(&dir, "catrue", "acc.test", &san);
    let ca_false = self_signed(
        &dir,
        "cafalse",
        "leaf.test",
        &[
            "-addext",
            "subjectAltName=DNS:leaf.test",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ],
    );
    let no_san = self_signed(&dir, "nosan", "nosan.test", &[]);
    let client_only = self_signed(
        &dir,
        "client",
        "acc.test",
        &[
            "-addext",
            "subjectAltName=DNS:acc.test",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ],
    );
    let other = self_signed(&dir, "other", "acc.test", &san);
    let expired = self_signed_dated(
        &dir,
        "old",
        "old.test",
        "20200101000000Z",
        "20210101000000Z",
    );
    let future = self_signed_dated(
        &dir,
        "new",
        "new.test",
        "20900101000000Z",
        "20950101000000Z",
    );
    let digest = lab.serve_file("f.bin", 300 * 1024, 7);

    start_s_server(&mut lab, "catrue", 9401, &ca_true, "");
    start_s_server(&mut lab, "cafalse", 9402, &ca_false, "");
    start_s_server(&mut lab, "nosan", 9403, &no_san, "");
    start_s_server(&mut lab, "client", 9404, &client_only, "");
    start_s_server(&mut lab, "expired", 9405, &expired, "");
    start_s_server(&mut lab, "future", 9406, &future, "");

    // CA:TRUE, as `openssl req -x509` makes it: accepted by its own bytes, by either name.
    let accepted = fetch(
        &lab,
        &["--cacert", ca_true.pem()],
        "acc.test",
        9401,
        "f.bin",
    );
    assert_downloaded(&lab, &accepted, "f.bin", &digest);
    let www = fetch(
        &lab,
        &["--cacert", ca_true.pem(), "-o", "www.bin"],
        "www.acc.test",
        9401,
        "f.bin",
    );
    assert_downloaded(&lab, &www, "www.bin", &digest);

    // Among other certificates in the file too.
    let bundle = dir.join("bundle.pem");
    let bundled = [&other.pem, &ca_true.pem]
        .map(|p| fs::read_to_string(p).unwrap())
        .concat();
    fs::write(&bundle, bundled).unwrap();
    let from_bundle = fetch(
        &lab,
        &["--cacert", bundle.to_str().unwrap(), "-o", "bundle.bin"],
        "acc.test",
        9401,
        "f.bin",
    );
    assert_downloaded(&lab, &from_bundle, "bundle.bin", &digest);

    // CA:FALSE.
    let leaf = fetch(
        &lab,
        &["--cacert", ca_false.pem(), "-o", "leaf.bin"],
        "leaf.test",
        9402,
        "f.bin",
    );
    assert_downloaded(&lab, &leaf, "leaf.bin", &digest);

    // Still checked: the name, ...
    let wrong_name = fetch(&lab, &["--cacert", ca_true.pem()], "b.test", 9401, "x.bin");
    assert_fails_with_sole_line(
        &wrong_name,
        1,
        "certificate is for acc.test, www.acc.test, not b.test",
    );
    let no_alt_names = fetch(
        &lab,
        &["--cacert", no_san.pem()],
        "nosan.test",
        9403,
        "x.bin",
    );
    assert_fails_with_sole_line(
        &no_alt_names,
        1,
        "certificate names no host in subjectAltName (its common name nosan.test is not used \
         for host names), so it is not valid for nosan.test",
    );
    // ... the purpose, ...
    let wrong_purpose = fetch(
        &lab,
        &["--cacert", client_only.pem()],
        "acc.test",
        9404,
        "x.bin",
    );
    assert_fails_with_sole_line(
        &wrong_purpose,
        1,
        "certificate for acc.test is not for TLS servers (its extended key usage)",
    );
    // ... and the dates.
    let too_old = fetch(
        &lab,
        &["--cacert", expired.pem()],
        "old.test",
        9405,
        "x.bin",
    );
    assert_fails_with_sole_line(
        &too_old,
        1,
        "certificate for old.test expired on 2021-01-01",
    );
    let too_new = fetch(&lab, &["--cacert", future.pem()], "new.test", 9406, "x.bin");
    assert_fails_with_sole_line(
        &too_new,
        1,
        "certificate for new.test is not valid before 2090-01-01",
    );

    // Not given, or another self-signed certificate with the same name given instead.
    let self_signed_sentence = "certificate for acc.test is self-signed and not trusted; use \
                                --cacert FILE with that certificate, or -k";
    let bundled_roots = fetch(&lab, &[], "acc.test", 9401, "x.bin");
    assert_fails_with_sole_line(&bundled_roots, 1, self_signed_sentence);
    let impostor = fetch(&lab, &["--cacert", other.pem()], "acc.test", 9401, "x.bin");
    assert_fails_with_sole_line(&impostor, 1, self_signed_sentence);

    assert_dir_holds(
        &lab.out_dir(),
        &["bundle.bin", "f.bin", "leaf.bin", "www.bin"],
    );
    lab.assert_no_client_rst();
}

#[test]
fn a_chain_needs_its_intermediate() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tlstrust2");
    let dir = pki_dir(&lab);
    let root = self_signed(&dir, "root", "tunstack test root", &[]);
    let intermediate = issued(
        &dir,
        "inter",
        "tunstack test intermediate",
        &root,
        "2",
        "basicConstraints = critical,CA:TRUE,pathlen:0\n\
         keyUsage = critical,keyCertSign,cRLSign\n",
    );
    let leaf = issued(
        &dir,
        "leaf",
        "chain.test",
        &intermediate,
        "3",
        "basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:chain.test\n",
    );
    let digest = lab.serve_file("f.bin", 200 * 1024, 8);
    let chain = format!("-cert_chain '{}'", intermediate.pem.display());
    start_s_server(&mut lab, "with-chain", 9411, &leaf, &chain);
    start_s_server(&mut lab, "leaf-only", 9412, &leaf, "");

    let with_chain = fetch(&lab, &["--cacert", root.pem()], "chain.test", 9411, "f.bin");
    assert_downloaded(&lab, &with_chain, "f.bin", &digest);

    let unknown = "certificate for chain.test is not trusted (unknown issuer); use --cacert FILE \
                   to trust its CA, or -k";
    let leaf_only = fetch(&lab, &["--cacert", root.pem()], "chain.test", 9412, "x.bin");
    assert_fails_with_sole_line(&leaf_only, 1, unknown);
    let bundled_roots = fetch(&lab, &[], "chain.test", 9411, "x.bin");
    assert_fails_with_sole_line(&bundled_roots, 1, unknown);
    // The leaf itself given as --cacert is trusted as it is, without its issuers, as curl
    // does (it verifies partial chains).
    let pinned_leaf = fetch(
        &lab,
        &["--cacert", leaf.pem(), "-o", "pinned.bin"],
        "chain.test",
        9412,
        "f.bin",
    );
    assert_downloaded(&lab, &pinned_leaf, "pinned.bin", &digest);

    assert_dir_holds(&lab.out_dir(), &["f.bin", "pinned.bin"]);
    lab.assert_no_client_rst();
}

#[test]
fn handshake_refusals_are_named() {
    if !can_run() {
        return;
    }
    let mut lab = Lab::new("tlstrust3");
    let dir = pki_dir(&lab);
    let cert = self_signed(
        &dir,
        "server",
        "hs.test",
        &["-addext", "subjectAltName=DNS:hs.test"],
    );
    lab.serve_file("f.bin", 1024, 9);
    // Only a suite rustls does not implement (RSA key exchange), TLS 1.2 only.
    start_s_server(
        &mut lab,
        "cipher",
        9421,
        &cert,
        "-tls1_2 -cipher AES128-SHA",
    );
    // Only TLS 1.1 (which openssl 3 allows at security level 0 only).
    start_s_server(
        &mut lab,
        "tls11",
        9422,
        &cert,
        "-tls1_1 -cipher DEFAULT@SECLEVEL=0",
    );
    // A client certificate is required; tunstack has none.
    start_s_server(&mut lab, "clientcert", 9423, &cert, "-Verify 1");
    // Not TLS at all: python3 http.server on 8080 answers the ClientHello with an HTTP 400.
    lab.start_python();
    let cacert = ["--cacert", cert.pem()];

    let no_cipher = fetch(&lab, &cacert, "hs.test", 9421, "f.bin");
    assert_fails_with_sole_line(
        &no_cipher,
        1,
        "the server refused the handshake: handshake_failure (most often: no cipher suite in \
         common with tunstack)",
    );
    let old_version = fetch(&lab, &cacert, "hs.test", 9422, "f.bin");
    assert_fails_with_sole_line(
        &old_version,
        1,
        "hs.test speaks no TLS version tunstack does (TLS 1.2 or 1.3)",
    );
    let wants_client_cert = fetch(&lab, &cacert, "hs.test", 9423, "f.bin");
    assert_fails_with_sole_line(
        &wants_client_cert,
        1,
        "the server refused the handshake: certificate_required",
    );
    let plain_http = fetch(&lab, &cacert, "hs.test", 8080, "f.bin");
    assert_fails_with_sole_line(
        &plain_http,
        1,
        "TLS handshake with hs.test failed: the server sent a malformed or unexpected TLS \
         message",
    );

    assert_dir_holds(&lab.out_dir(), &[]);
    lab.assert_no_client_rst();
}
