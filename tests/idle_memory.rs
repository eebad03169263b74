//! What idle connections cost (issue 13): `tunstack serve` must hold 10,000 of them in well
//! under 200 MiB, so a connection's buffers are allocated as data needs them while the whole
//! window is offered from the start.
//!
//! The RSS measurement reads /proc/self/statm; it is the only test in this crate that
//! allocates more than a few KiB, so the threads of the other tests do not blur it.

mod common;

use std::net::Ipv4Addr;
use std::time::Instant;

use tunstack::stack::{Stack, StackConfig};
use tunstack::tcp::{Connection, TcpConfig};
use tunstack::wire::{Control, SeqNum, TcpRepr};

use common::conn::*;
use common::segment::tcp_datagram;

const STACK_PORT: u16 = 8080;
const CONNECTIONS: usize = 10_000;

/// An accepted connection that received nothing yet holds a few KiB of buffers, though it
/// offers a 1 MiB receive window and may queue 256 KiB to send.
#[test]
fn an_idle_connection_costs_a_few_kib() {
    let config = TcpConfig::default();
    assert_eq!(config.recv_buffer, 1 << 20);
    let t0 = Instant::now();
    let conn = Connection::accept(t0, config, TUPLE, &peer_syn(bare_peer()), INITIAL);
    assert!(
        conn.buffer_heap_bytes() <= 6 << 10,
        "{} bytes of buffers",
        conn.buffer_heap_bytes()
    );
}

/// Resident and virtual size of this process in bytes, from /proc/self/statm.
fn memory() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let mut fields = statm.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let size = fields.next().unwrap() * page;
    let resident = fields.next().unwrap() * page;
    (resident, size)
}

/// 10,000 passive opens completed on one stack (SYN in, SYN-ACK out, ACK in, accepted) grow
/// the process by far less than 150 MiB; with the buffers allocated up front it was 10 GiB of
/// address space (1.25 MiB each).
#[test]
fn ten_thousand_idle_connections_fit_in_a_few_tens_of_mib() {
    let t0 = Instant::now();
    let local = LOCAL_IP;
    let mut config = StackConfig::new(local, 1500, [7; 16], 1);
    config.max_connections = CONNECTIONS + 10;
    config.backlog = CONNECTIONS + 10;
    let (rss_before, size_before) = memory();
    let mut stack = Stack::new(t0, config);
    stack.listen(STACK_PORT).unwrap();
    let mut buf = vec![0u8; 2048];
    let mut accepted = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        // Distinct peers: 10.0.x.y, all from port 40000.
        let remote = Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8);
        let syn = TcpRepr {
            src_port: 40_000,
            dst_port: STACK_PORT,
            control: Control::Syn,
            seq: IRS,
            ack: None,
            options: bare_peer(),
            ..PEER
        };
        stack.handle_datagram(t0, &tcp_datagram(remote, local, &syn));
        let len = stack.poll_transmit(t0, &mut buf).expect("SYN-ACK");
        let syn_ack = TcpRepr::parse(local, remote, &buf[20..len]).expect("a segment");
        assert_eq!(syn_ack.control, Control::Syn, "connection {i}");
        let their_iss: SeqNum = syn_ack.seq;
        let ack = TcpRepr {
            src_port: 40_000,
            dst_port: STACK_PORT,
            ack: Some(their_iss + 1),
            ..PEER
        };
        stack.handle_datagram(t0, &tcp_datagram(remote, local, &ack));
        accepted.push(stack.accept(STACK_PORT).expect("established"));
        while stack.poll_event().is_some() {}
        assert!(stack.poll_transmit(t0, &mut buf).is_none());
    }
    let (rss_after, size_after) = memory();
    let rss = rss_after.saturating_sub(rss_before);
    let size = size_after.saturating_sub(size_before);
    eprintln!(
        "{CONNECTIONS} idle connections: RSS grew {:.1} MiB ({} bytes each), address space \
         {:.1} MiB",
        rss as f64 / (1 << 20) as f64,
        rss / CONNECTIONS as u64,
        size as f64 / (1 << 20) as f64,
    );
    assert_eq!(accepted.len(), CONNECTIONS);
    assert!(
        rss < 150 << 20,
        "{CONNECTIONS} idle connections made the process {rss} bytes larger"
    );
    assert!(
        size < 1 << 30,
        "{CONNECTIONS} idle connections reserved {size} bytes of address space"
    );
}
