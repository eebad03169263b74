//! Tests of the `Stack` as a whole (not one `Connection`): the resets it sends for closed ports and
//! a listener's passive open, datagram in, datagram out.
//!
//! Fixtures and conventions: `tests/common/conn.rs`.

mod common;

use std::time::Instant;

use tunstack::stack::{Stack, StackConfig};
use tunstack::wire::{Control, SeqNum, TcpOptions, TcpRepr};

use common::conn::*;
use common::segment::tcp_datagram;

// ==================================================================== the stack's resets

const STACK_PORT: u16 = 8080;

/// An IPv4 datagram from REMOTE to LOCAL carrying `seg`.
fn datagram(seg: &TcpRepr) -> Vec<u8> {
    tcp_datagram(REMOTE_IP, LOCAL_IP, seg)
}

/// Hands `seg` to a fresh stack with no listener and returns what it sends back.
fn stack_reply(seg: TcpRepr) -> Vec<Vec<u8>> {
    let t0 = Instant::now();
    let mut stack = Stack::new(t0, StackConfig::new(LOCAL_IP, 1500, [7; 16], 1));
    stack.handle_datagram(t0, &datagram(&seg));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(len) = stack.poll_transmit(t0, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 10);
    }
    out
}

fn stack_segment(datagram: &[u8]) -> TcpRepr<'_> {
    assert_eq!(datagram[9], 6, "TCP");
    assert_eq!(&datagram[12..16], &LOCAL_IP.octets());
    assert_eq!(&datagram[16..20], &REMOTE_IP.octets());
    TcpRepr::parse(LOCAL_IP, REMOTE_IP, &datagram[20..]).expect("valid segment")
}

#[test]
fn stack_answers_a_syn_to_a_closed_port_with_rst_ack() {
    let syn = TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: SeqNum(1234),
        ack: None,
        options: TcpOptions {
            mss: Some(1460),
            ..NO_OPTIONS
        },
        payload: b"early",
        ..PEER
    };
    let out = stack_reply(syn);
    assert_eq!(out.len(), 1);
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(
        stack_segment(&out[0]),
        TcpRepr {
            src_port: STACK_PORT,
            dst_port: REMOTE_PORT,
            control: Control::Rst,
            seq: SeqNum(0),
            ack: Some(SeqNum(1234 + 1 + 5)),
            window: 0,
            options: NO_OPTIONS,
            payload: &[],
        }
    );
}

#[test]
fn stack_answers_an_ack_to_a_closed_port_with_rst_at_its_ack() {
    let seg = TcpRepr {
        dst_port: STACK_PORT,
        seq: SeqNum(1234),
        ack: Some(SeqNum(98_765)),
        payload: b"data",
        ..PEER
    };
    let out = stack_reply(seg);
    assert_eq!(out.len(), 1);
    // <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(
        stack_segment(&out[0]),
        TcpRepr {
            src_port: STACK_PORT,
            dst_port: REMOTE_PORT,
            control: Control::Rst,
            seq: SeqNum(98_765),
            ack: None,
            window: 0,
            options: NO_OPTIONS,
            payload: &[],
        }
    );
}

#[test]
fn stack_ignores_an_rst_to_a_closed_port() {
    for ack in [None, Some(SeqNum(5))] {
        let rst = TcpRepr {
            dst_port: STACK_PORT,
            control: Control::Rst,
            ack,
            window: 0,
            ..PEER
        };
        assert!(stack_reply(rst).is_empty());
    }
}

#[test]
fn stack_listener_completes_a_passive_open() {
    let t0 = Instant::now();
    let mut stack = Stack::new(t0, StackConfig::new(LOCAL_IP, 1500, [7; 16], 1));
    stack.listen(STACK_PORT).unwrap();
    let syn = TcpRepr {
        dst_port: STACK_PORT,
        control: Control::Syn,
        seq: IRS,
        ack: None,
        options: bare_peer(),
        ..PEER
    };
    stack.handle_datagram(t0, &datagram(&syn));
    let mut buf = vec![0u8; 2048];
    let len = stack.poll_transmit(t0, &mut buf).expect("SYN-ACK");
    let syn_ack = stack_segment(&buf[..len]);
    assert_eq!(syn_ack.control, Control::Syn);
    assert_eq!(syn_ack.ack, Some(RCV));
    let their_iss = syn_ack.seq;
    assert!(stack.poll_transmit(t0, &mut buf).is_none());
    assert_eq!(stack.accept(STACK_PORT), None, "not established yet");
    let ack = TcpRepr {
        dst_port: STACK_PORT,
        ack: Some(their_iss + 1),
        payload: b"hi",
        ..PEER
    };
    stack.handle_datagram(t0 + ms(1), &datagram(&ack));
    let id = stack.accept(STACK_PORT).expect("established connection");
    let events: Vec<_> = std::iter::from_fn(|| stack.poll_event()).collect();
    assert_eq!(
        events,
        [
            tunstack::stack::Event::Incoming { port: STACK_PORT },
            tunstack::stack::Event::Readable(id),
        ]
    );
    let mut out = [0u8; 10];
    assert_eq!(stack.recv(id, &mut out), Ok(2));
    assert_eq!(&out[..2], b"hi");
}
