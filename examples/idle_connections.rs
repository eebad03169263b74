//! What idle connections cost a download: a stack accepts IDLE connections that then stay
//! idle, and serves DOWNLOAD_MB on one more to a peer that acknowledges every flight. Prints the
//! wall-clock time of the download (the stack itself runs on a virtual clock).
//!
//! ```text
//! cargo run --release --example idle_connections -- [IDLE] [DOWNLOAD_MB]
//! ```
//!
//! With the schedule in src/stack/ the time does not depend on IDLE; a stack that scans every
//! connection per segment slows down in proportion to it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tunstack::ipv4::PROTOCOL_TCP;
use tunstack::stack::{Stack, StackConfig};
use tunstack::testing::{ipv4_datagram, Ipv4Fields};
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr};

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PORT: u16 = 80;
const PEER_ISN: SeqNum = SeqNum(50_000);

/// A datagram from peer `ip`:`port` to the listener.
fn from_peer(ip: Ipv4Addr, port: u16, control: Control, ack: Option<SeqNum>) -> Vec<u8> {
    let syn = control == Control::Syn;
    let repr = TcpRepr {
        src_port: port,
        dst_port: PORT,
        control,
        seq: if syn { PEER_ISN } else { PEER_ISN + 1 },
        ack,
        window: 65535,
        options: TcpOptions {
            mss: syn.then_some(1460),
            ..TcpOptions::default()
        },
        payload: &[],
    };
    let mut segment = vec![0u8; repr.header_len()];
    let len = repr.emit(ip, LOCAL, &mut segment);
    segment.truncate(len);
    ipv4_datagram(&Ipv4Fields::plain(ip, LOCAL, PROTOCOL_TCP), &segment)
}

/// The TCP segment in one of our datagrams.
fn segment(datagram: &[u8]) -> TcpRepr<'_> {
    let dst = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    TcpRepr::parse(LOCAL, dst, &datagram[20..]).expect("our segment parses")
}

/// Everything the stack sends now.
fn flush(stack: &mut Stack, now: Instant, buf: &mut [u8]) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| stack.poll_transmit(now, buf).map(|len| buf[..len].to_vec())).collect()
}

/// SYN, SYN-ACK, ACK from `ip`:`port`; returns our first data byte's sequence number.
fn handshake(stack: &mut Stack, now: Instant, ip: Ipv4Addr, port: u16, buf: &mut [u8]) -> SeqNum {
    stack.handle_datagram(now, &from_peer(ip, port, Control::Syn, None));
    let out = flush(stack, now, buf);
    let snd = segment(out.last().expect("SYN-ACK")).seq + 1;
    stack.handle_datagram(now, &from_peer(ip, port, Control::None, Some(snd)));
    snd
}

fn main() {
    let mut args = std::env::args().skip(1);
    let idle: u32 = args.next().map_or(10_000, |a| a.parse().expect("IDLE"));
    let megabytes: usize = args.next().map_or(20, |a| a.parse().expect("DOWNLOAD_MB"));
    let t0 = Instant::now();
    let mut config = StackConfig::new(LOCAL, 1500, [7; 16], 1);
    config.max_connections = idle as usize + 1;
    config.backlog = idle as usize + 1;
    let mut stack = Stack::new(t0, config);
    stack.listen(PORT).expect("listen");
    let mut buf = vec![0u8; 2048];

    let opened = Instant::now();
    for i in 0..idle {
        let ip = Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8);
        handshake(&mut stack, t0, ip, 1024, &mut buf);
        let _ = stack.accept(PORT);
        while stack.poll_event().is_some() {}
    }
    let opened = opened.elapsed();

    let peer = Ipv4Addr::new(10, 2, 0, 1);
    let snd = handshake(&mut stack, t0, peer, 40_000, &mut buf);
    let id = stack.accept(PORT).expect("the download's connection");
    let data = vec![0x5a; 64 << 10];
    let total = megabytes << 20;
    let (mut queued, mut acked, mut segments) = (0usize, snd, 0usize);
    let mut now = t0;
    let started = Instant::now();
    while acked != snd + total {
        let room = (total - queued).min(data.len());
        if let Ok(n) = stack.send(id, &data[..room]) {
            queued += n;
        }
        let out = flush(&mut stack, now, &mut buf);
        segments += out.len();
        for d in &out {
            let seg = segment(d);
            let end = seg.seq + seg.payload.len();
            if end.after(acked) {
                acked = end;
            }
        }
        now += Duration::from_millis(1);
        stack.handle_datagram(now, &from_peer(peer, 40_000, Control::None, Some(acked)));
        while stack.poll_event().is_some() {}
    }
    let took = started.elapsed();
    println!(
        "{idle} idle connections (opened in {opened:.2?}): {megabytes} MB in {segments} segments \
         took {took:.2?}, {:.0} ns per segment",
        took.as_nanos() as f64 / segments as f64
    );
}
