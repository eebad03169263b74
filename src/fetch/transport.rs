//! The byte stream an HTTP exchange runs over: our TCP connection as it is, or TLS (rustls,
//! used sans-IO: ciphertext goes between rustls and the connection, plaintext to HTTP).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::stack::{ConnId, Stack, StackError};
use crate::tcp::IoError;

use super::tls_error::describe;
pub use super::tls_error::TlsError;
use super::trust::{self, AcceptAnyCertificate};

/// How TLS sessions verify servers: the bundled Mozilla roots, a user CA file, or nothing.
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<ClientConfig>,
}

impl TlsSettings {
    /// Builds the client configuration once per run. `cacert` replaces the bundled roots (as
    /// curl's `--cacert` does); `insecure` accepts any certificate but still checks the
    /// handshake signatures.
    pub fn new(cacert: Option<&Path>, insecure: bool) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Handshake {
                host: String::new(),
                reason: e.to_string(),
            })?;
        let verifier: Arc<dyn ServerCertVerifier> = if insecure {
            Arc::new(AcceptAnyCertificate(provider))
        } else {
            trust::verifier(cacert, provider)?
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(TlsSettings {
            config: Arc::new(config),
        })
    }
}

/// Why moving bytes over the transport stopped.
#[derive(Debug)]
pub enum TransportError {
    /// The stack refused to send or receive (the connection is gone).
    Tcp(StackError),
    /// The TLS session failed (bad record, alert, certificate).
    Tls(TlsError),
}

/// What a receive call found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Some plaintext went to the consumer (or was consumed by TLS itself).
    Progress,
    /// Nothing now; wait for the network.
    WouldBlock,
    /// The stream ended cleanly.
    Eof,
    /// The consumer said it wants no more.
    Done,
}

/// Plain TCP or TLS over it.
pub enum Transport {
    /// `http://`: the TCP byte stream is the HTTP byte stream.
    Plain,
    /// `https://`: a rustls session between them (boxed: it is large, and idle connections
    /// are kept in a pool).
    Tls(Box<TlsSession>),
}

/// One rustls client session and the ciphertext it has produced but TCP has not taken yet.
pub struct TlsSession {
    conn: ClientConnection,
    host: String,
    outgoing: Vec<u8>,
    outgoing_sent: usize,
    peer_closed: bool,
    /// Plaintext read from rustls that the consumer has not taken yet (it stopped at the end
    /// of a response head, say); offered again first.
    plaintext: Vec<u8>,
    plaintext_taken: usize,
    plaintext_filled: usize,
}

impl Transport {
    /// A TLS session to `host` (SNI and certificate name); nothing is sent until `flush`.
    pub fn tls(settings: &TlsSettings, host: &str) -> Result<Transport, TlsError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::ServerName(host.into()))?;
        let conn = ClientConnection::new(settings.config.clone(), name).map_err(|e| {
            TlsError::Handshake {
                host: host.into(),
                reason: e.to_string(),
            }
        })?;
        Ok(Transport::Tls(Box::new(TlsSession {
            conn,
            host: host.to_string(),
            outgoing: Vec::new(),
            outgoing_sent: 0,
            peer_closed: false,
            plaintext: vec![0; 16 * 1024],
            plaintext_taken: 0,
            plaintext_filled: 0,
        })))
    }

    /// Queues application bytes; returns how many were taken.
    pub fn send(
        &mut self,
        stack: &mut Stack,
        id: ConnId,
        data: &[u8],
    ) -> Result<usize, TransportError> {
        match self {
            Transport::Plain => match stack.send(id, data) {
                Ok(n) => Ok(n),
                Err(StackError::Io(IoError::WouldBlock)) => Ok(0),
                Err(e) => Err(TransportError::Tcp(e)),
            },
            Transport::Tls(tls) => {
                // rustls buffers plaintext until the handshake is done.
                let n = tls.conn.writer().write(data).unwrap_or(0);
                tls.flush(stack, id)?;
                Ok(n)
            }
        }
    }

    /// Pushes pending TLS records (handshake, alerts, data) into the connection.
    pub fn flush(&mut self, stack: &mut Stack, id: ConnId) -> Result<(), TransportError> {
        match self {
            Transport::Plain => Ok(()),
            Transport::Tls(tls) => tls.flush(stack, id),
        }
    }

    /// Moves received plaintext to `consume`, which returns how many bytes it took and whether
    /// it wants no more (the response is complete: anything after it is not read).
    pub fn receive(
        &mut self,
        stack: &mut Stack,
        id: ConnId,
        consume: &mut dyn FnMut(&[u8]) -> (usize, bool),
    ) -> Result<Received, TransportError> {
        match self {
            Transport::Plain => {
                let mut done = false;
                let read = stack.recv_with(id, |a, b| {
                    let (first, finished) = consume(a);
                    done = finished;
                    if finished || first < a.len() || b.is_empty() {
                        return first;
                    }
                    let (second, finished) = consume(b);
                    done = finished;
                    first + second
                });
                match read {
                    Ok(_) if done => Ok(Received::Done),
                    Ok(0) => Ok(Received::Eof),
                    Ok(_) => Ok(Received::Progress),
                    Err(StackError::Io(IoError::WouldBlock)) => Ok(Received::WouldBlock),
                    Err(e) => Err(TransportError::Tcp(e)),
                }
            }
            Transport::Tls(tls) => tls.receive(stack, id, consume),
        }
    }

    /// True while a TLS handshake is still under way (the connect timeout covers it).
    pub fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.conn.is_handshaking(),
        }
    }
}

impl TlsSession {
    fn flush(&mut self, stack: &mut Stack, id: ConnId) -> Result<(), TransportError> {
        loop {
            if self.outgoing_sent == self.outgoing.len() {
                self.outgoing.clear();
                self.outgoing_sent = 0;
                if !self.conn.wants_write() {
                    return Ok(());
                }
                self.conn
                    .write_tls(&mut self.outgoing)
                    .map_err(|e| self.handshake_error(e))?;
                continue;
            }
            match stack.send(id, &self.outgoing[self.outgoing_sent..]) {
                Ok(0) | Err(StackError::Io(IoError::WouldBlock)) => return Ok(()),
                Ok(n) => self.outgoing_sent += n,
                Err(e) => return Err(TransportError::Tcp(e)),
            }
        }
    }

    fn handshake_error(&self, e: io::Error) -> TransportError {
        TransportError::Tls(TlsError::Handshake {
            host: self.host.clone(),
            reason: e.to_string(),
        })
    }

    fn receive(
        &mut self,
        stack: &mut Stack,
        id: ConnId,
        consume: &mut dyn FnMut(&[u8]) -> (usize, bool),
    ) -> Result<Received, TransportError> {
        let mut progressed = false;
        loop {
            if self.plaintext_filled > self.plaintext_taken {
                let pending = &self.plaintext[self.plaintext_taken..self.plaintext_filled];
                let (taken, done) = consume(pending);
                self.plaintext_taken += taken;
                if done || self.plaintext_taken < self.plaintext_filled {
                    return Ok(Received::Done);
                }
                self.plaintext_taken = 0;
                self.plaintext_filled = 0;
                progressed = true;
            }
            let fed = self.feed(stack, id)?;
            if let Err(error) = self.conn.process_new_packets() {
                // Let the alert rustls queued reach the server before we give up.
                let _ = self.flush(stack, id);
                return Err(TransportError::Tls(describe(&self.host, error)));
            }
            self.flush(stack, id)?;
            let mut drained = false;
            loop {
                match self.conn.reader().read(&mut self.plaintext) {
                    Ok(0) => return Ok(Received::Eof),
                    Ok(n) => {
                        drained = true;
                        let (taken, done) = consume(&self.plaintext[..n]);
                        if done || taken < n {
                            self.plaintext_taken = taken;
                            self.plaintext_filled = n;
                            return Ok(Received::Done);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        let host = self.host.clone();
                        return Err(TransportError::Tls(if self.conn.is_handshaking() {
                            TlsError::HandshakeClosed { host }
                        } else {
                            TlsError::Truncated { host }
                        }));
                    }
                    Err(e) => return Err(self.handshake_error(e)),
                }
            }
            progressed |= fed || drained;
            if !fed && !drained {
                break;
            }
        }
        Ok(if progressed {
            Received::Progress
        } else {
            Received::WouldBlock
        })
    }

    /// Moves ciphertext from the connection into rustls; true when any moved. At the end of
    /// the TCP stream tells rustls, so a missing close_notify is noticed.
    fn feed(&mut self, stack: &mut Stack, id: ConnId) -> Result<bool, TransportError> {
        if self.peer_closed || !self.conn.wants_read() {
            return Ok(false);
        }
        let conn = &mut self.conn;
        let read = stack.recv_with(id, |a, b| {
            let mut taken = 0;
            for part in [a, b] {
                let mut rest = part;
                while !rest.is_empty() && conn.wants_read() {
                    match conn.read_tls(&mut rest) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => taken += n,
                    }
                }
                if !rest.is_empty() {
                    break;
                }
            }
            taken
        });
        match read {
            Ok(0) => {
                self.peer_closed = true;
                let _ = self.conn.read_tls(&mut io::empty());
                Ok(true)
            }
            Ok(_) => Ok(true),
            Err(StackError::Io(IoError::WouldBlock)) => Ok(false),
            Err(e) => Err(TransportError::Tcp(e)),
        }
    }
}
