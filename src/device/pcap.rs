//! `--pcap FILE`: every datagram that crosses the device, both directions, as a classic pcap
//! file with link type raw IP that tcpdump, tshark and Wireshark open; in TAP mode every
//! Ethernet frame, with link type Ethernet, so ARP shows too.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{complete_checksum, Device, Received};

/// What each record of a capture starts with, so readers decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_RAW (101): each record is a bare IPv4 (or IPv6) datagram (TUN mode).
    RawIp,
    /// LINKTYPE_ETHERNET (1): each record is an Ethernet II frame (TAP mode).
    Ethernet,
}

impl LinkType {
    /// The number in the pcap file header.
    fn number(self) -> u32 {
        match self {
            LinkType::RawIp => 101,
            LinkType::Ethernet => 1,
        }
    }
}
/// Records are cut at this length; our datagrams never exceed it.
const SNAPLEN: u32 = 65535;

/// A classic pcap file of raw IP records, each stamped with a time the caller chooses: the
/// wall clock for `--pcap`, virtual time for the simulator in the tests, so both write the
/// same format through one writer.
pub struct PcapWriter {
    out: BufWriter<File>,
}

impl PcapWriter {
    /// Creates (truncates) `path` and writes the pcap file header, raw IP records.
    pub fn create(path: &Path) -> io::Result<Self> {
        PcapWriter::create_with(path, LinkType::RawIp)
    }

    /// Creates (truncates) `path` and writes the pcap file header for `linktype` records.
    pub fn create_with(path: &Path, linktype: LinkType) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // Magic (microsecond timestamps), version 2.4, GMT offset, accuracy, snaplen, link type.
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&linktype.number().to_le_bytes())?;
        Ok(PcapWriter { out })
    }

    /// Appends one record stamped `since_epoch` (capture tools read it as time since 1970).
    pub fn record(&mut self, since_epoch: Duration, datagram: &[u8]) -> io::Result<()> {
        let len = datagram.len().min(SNAPLEN as usize) as u32;
        self.out
            .write_all(&(since_epoch.as_secs() as u32).to_le_bytes())?;
        self.out
            .write_all(&since_epoch.subsec_micros().to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&(datagram.len() as u32).to_le_bytes())?;
        self.out.write_all(&datagram[..len as usize])
    }

    /// Writes out what is buffered; dropping the writer does it too, ignoring errors.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// Records what `inner` reads and writes.
pub struct Pcap<D> {
    inner: D,
    out: PcapWriter,
}

impl<D: Device> Pcap<D> {
    /// Creates (truncates) `path` and writes the pcap file header, raw IP records.
    pub fn create(inner: D, path: &Path) -> io::Result<Self> {
        Pcap::create_with(inner, path, LinkType::RawIp)
    }

    /// Like [`Pcap::create`], for a device whose records are `linktype` (Ethernet on a TAP).
    pub fn create_with(inner: D, path: &Path, linktype: LinkType) -> io::Result<Self> {
        Ok(Pcap {
            inner,
            out: PcapWriter::create_with(path, linktype)?,
        })
    }

    fn record(&mut self, datagram: &[u8]) -> io::Result<()> {
        // Wall-clock time, as capture tools expect; only the device layer may read it.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.out.record(since_epoch, datagram)
    }
}

impl<D: Device> Device for Pcap<D> {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        let mut received = self.inner.recv(now, buf)?;
        // A capture shows checksums as they would be on a wire, not half-done by an offload.
        complete_checksum(&mut buf[..received.len], &mut received.checksum);
        self.record(&buf[..received.len])?;
        Ok(received)
    }

    fn send(&mut self, now: Instant, datagram: &[u8]) -> io::Result<()> {
        self.inner.send(now, datagram)?;
        self.record(datagram)
    }

    /// A super-segment is recorded whole, as it crossed the device (as on receive).
    fn send_segmented(
        &mut self,
        now: Instant,
        datagram: &[u8],
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        self.inner.send_segmented(now, datagram, segment_size)?;
        self.record(datagram)
    }

    fn poll(&mut self, now: Instant) -> io::Result<()> {
        self.inner.poll(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn poll_link_event(&mut self) -> Option<super::LinkEvent> {
        self.inner.poll_link_event()
    }

    fn trace_impairments(&mut self) {
        self.inner.trace_impairments()
    }

    fn drain_impairments(&mut self, take: &mut dyn FnMut(crate::trace::ImpairRecord)) {
        self.inner.drain_impairments(take)
    }

    fn drain_link_trace(&mut self, take: &mut dyn FnMut(crate::trace::TraceRecord)) {
        self.inner.drain_link_trace(take)
    }
}

/// The capture waits on the device it records.
impl<D: AsRawFd> AsRawFd for Pcap<D> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}
