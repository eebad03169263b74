//! ICMP (RFC 792, RFC 1122 §3.2.2): echo, and the errors that concern our TCP traffic.

use std::fmt;
use std::net::Ipv4Addr;

use super::header::{HEADER_LEN, PROTOCOL_TCP};
use super::DropReason;
use crate::wire::checksum;

/// Length of the ICMP header: type, code, checksum and four type-specific bytes.
pub(crate) const ICMP_HEADER_LEN: usize = 8;
/// Bytes of the offending datagram's payload an ICMP error quotes at least (RFC 792).
const QUOTED_PAYLOAD_LEN: usize = 8;

const TYPE_ECHO_REPLY: u8 = 0;
const TYPE_DESTINATION_UNREACHABLE: u8 = 3;
const TYPE_ECHO_REQUEST: u8 = 8;
const TYPE_TIME_EXCEEDED: u8 = 11;
const TYPE_PARAMETER_PROBLEM: u8 = 12;
const CODE_FRAGMENT_REASSEMBLY_TIME_EXCEEDED: u8 = 1;

/// An ICMP error about a TCP segment we sent, for the TCP layer to act on (RFC 1122 §4.2.3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// What went wrong.
    pub kind: IcmpErrorKind,
    /// Who said so: the router or host that sent the ICMP message.
    pub reporter: Ipv4Addr,
    /// Our port in the quoted segment, to find the connection.
    pub local_port: u16,
    /// The peer address in the quoted segment.
    pub remote_addr: Ipv4Addr,
    /// The peer port in the quoted segment.
    pub remote_port: u16,
    /// The quoted sequence number, so TCP can ignore errors about data not in flight, which
    /// blind attackers would have to guess (RFC 5927 §4.1).
    pub seq: u32,
}

/// The ICMP errors TCP distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    /// Destination unreachable, codes 0 and 11.
    NetUnreachable,
    /// Destination unreachable, codes 1 and 12.
    HostUnreachable,
    /// Destination unreachable, code 2.
    ProtocolUnreachable,
    /// Destination unreachable, code 3.
    PortUnreachable,
    /// Destination unreachable, code 4: a router needs smaller datagrams (RFC 1191). An MTU of
    /// 0 comes from routers predating RFC 1191.
    FragmentationNeeded {
        /// The MTU of the next hop, as the router reported it.
        next_hop_mtu: u16,
    },
    /// Destination unreachable, codes 9, 10 and 13: a filter refused the datagram (RFC 1812).
    AdminProhibited,
    /// Time exceeded, in transit or in reassembly.
    TimeExceeded,
    /// Parameter problem: a router disliked our header.
    ParameterProblem,
    /// A destination unreachable code not listed above.
    Other {
        /// The ICMP type.
        icmp_type: u8,
        /// The ICMP code.
        code: u8,
    },
}

impl IcmpErrorKind {
    /// Whether the error is hard, meaning a connection attempt should give up, rather than soft,
    /// meaning it is only remembered in case the connection later times out (RFC 1122 §4.2.3.9;
    /// administrative prohibition is hard as in RFC 1812 §5.2.7.1 and Linux).
    pub fn is_hard(&self) -> bool {
        matches!(
            self,
            IcmpErrorKind::ProtocolUnreachable
                | IcmpErrorKind::PortUnreachable
                | IcmpErrorKind::AdminProhibited
        )
    }

    fn from_type_and_code(icmp_type: u8, code: u8, rest: [u8; 4]) -> Self {
        match (icmp_type, code) {
            (TYPE_TIME_EXCEEDED, _) => IcmpErrorKind::TimeExceeded,
            (TYPE_PARAMETER_PROBLEM, _) => IcmpErrorKind::ParameterProblem,
            (TYPE_DESTINATION_UNREACHABLE, 0 | 11) => IcmpErrorKind::NetUnreachable,
            (TYPE_DESTINATION_UNREACHABLE, 1 | 12) => IcmpErrorKind::HostUnreachable,
            (TYPE_DESTINATION_UNREACHABLE, 2) => IcmpErrorKind::ProtocolUnreachable,
            (TYPE_DESTINATION_UNREACHABLE, 3) => IcmpErrorKind::PortUnreachable,
            (TYPE_DESTINATION_UNREACHABLE, 4) => IcmpErrorKind::FragmentationNeeded {
                next_hop_mtu: u16::from_be_bytes([rest[2], rest[3]]),
            },
            (TYPE_DESTINATION_UNREACHABLE, 9 | 10 | 13) => IcmpErrorKind::AdminProhibited,
            (icmp_type, code) => IcmpErrorKind::Other { icmp_type, code },
        }
    }
}

impl fmt::Display for IcmpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IcmpErrorKind::NetUnreachable => f.write_str("network unreachable"),
            IcmpErrorKind::HostUnreachable => f.write_str("host unreachable"),
            IcmpErrorKind::ProtocolUnreachable => f.write_str("protocol unreachable"),
            IcmpErrorKind::PortUnreachable => f.write_str("port unreachable"),
            IcmpErrorKind::FragmentationNeeded { next_hop_mtu } => {
                write!(f, "fragmentation needed (next-hop MTU {next_hop_mtu})")
            }
            IcmpErrorKind::AdminProhibited => f.write_str("administratively prohibited"),
            IcmpErrorKind::TimeExceeded => f.write_str("time exceeded"),
            IcmpErrorKind::ParameterProblem => f.write_str("parameter problem"),
            IcmpErrorKind::Other { icmp_type, code } => {
                write!(f, "ICMP type {icmp_type} code {code}")
            }
        }
    }
}

/// An ICMP message this host acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IcmpMessage<'a> {
    /// An echo request; the whole ICMP message, to be mirrored in the reply.
    EchoRequest(&'a [u8]),
    /// An error about a TCP segment we sent.
    Error(IcmpError),
}

/// Verifies an ICMP message received from `reporter` and says what it asks of us.
pub(crate) fn parse(
    message: &[u8],
    reporter: Ipv4Addr,
    local: Ipv4Addr,
) -> Result<IcmpMessage<'_>, DropReason> {
    let header: &[u8; ICMP_HEADER_LEN] = message.first_chunk().ok_or(DropReason::IcmpMalformed)?;
    if checksum::checksum(message) != 0 {
        return Err(DropReason::IcmpBadChecksum);
    }
    let [icmp_type, code, _, _, r0, r1, r2, r3] = *header;
    match icmp_type {
        TYPE_ECHO_REQUEST => Ok(IcmpMessage::EchoRequest(message)),
        TYPE_DESTINATION_UNREACHABLE | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM => {
            let kind = IcmpErrorKind::from_type_and_code(icmp_type, code, [r0, r1, r2, r3]);
            let quoted = message.get(ICMP_HEADER_LEN..).unwrap_or_default();
            parse_quote(quoted, local).map(|quote| {
                IcmpMessage::Error(IcmpError {
                    kind,
                    reporter,
                    local_port: quote.local_port,
                    remote_addr: quote.remote_addr,
                    remote_port: quote.remote_port,
                    seq: quote.seq,
                })
            })
        }
        _ => Err(DropReason::IcmpUnhandled),
    }
}

/// What an ICMP error quotes of a TCP segment we sent.
struct QuotedSegment {
    local_port: u16,
    remote_addr: Ipv4Addr,
    remote_port: u16,
    seq: u32,
}

/// Reads the quoted IPv4 header and TCP header start; only a segment from us counts.
fn parse_quote(quoted: &[u8], local: Ipv4Addr) -> Result<QuotedSegment, DropReason> {
    let ip: &[u8; HEADER_LEN] = quoted.first_chunk().ok_or(DropReason::IcmpMalformed)?;
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || header_len < HEADER_LEN {
        return Err(DropReason::IcmpMalformed);
    }
    let tcp: &[u8; QUOTED_PAYLOAD_LEN] = quoted
        .get(header_len..)
        .and_then(|rest| rest.first_chunk())
        .ok_or(DropReason::IcmpMalformed)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
    // Only the first fragment of a datagram starts with the TCP header.
    if src != local || ip[9] != PROTOCOL_TCP || fragment_offset != 0 {
        return Err(DropReason::IcmpNotOurs);
    }
    let [sp0, sp1, dp0, dp1, s0, s1, s2, s3] = *tcp;
    Ok(QuotedSegment {
        local_port: u16::from_be_bytes([sp0, sp1]),
        remote_addr: dst,
        remote_port: u16::from_be_bytes([dp0, dp1]),
        seq: u32::from_be_bytes([s0, s1, s2, s3]),
    })
}

/// Writes the echo reply to `request` (a whole ICMP echo request message) into `out`; returns
/// its length, or `None` if it does not fit.
pub(crate) fn write_echo_reply(out: &mut [u8], request: &[u8]) -> Option<usize> {
    let reply = out.get_mut(..request.len())?;
    reply.copy_from_slice(request);
    let header: &mut [u8; ICMP_HEADER_LEN] = reply.first_chunk_mut()?;
    header[0] = TYPE_ECHO_REPLY;
    header[1] = 0;
    header[2] = 0;
    header[3] = 0;
    let [sum_hi, sum_lo] = checksum::checksum(reply).to_be_bytes();
    let header: &mut [u8; ICMP_HEADER_LEN] = reply.first_chunk_mut()?;
    header[2] = sum_hi;
    header[3] = sum_lo;
    Some(request.len())
}

/// Whether a reassembly timeout of a datagram may be reported with an ICMP error: never about an
/// ICMP error (RFC 1122 §3.2.2), so only about echo traffic if the datagram was ICMP.
pub(crate) fn may_report_about(protocol: u8, first_payload_bytes: &[u8]) -> bool {
    protocol != super::header::PROTOCOL_ICMP
        || matches!(
            first_payload_bytes.first(),
            Some(&(TYPE_ECHO_REQUEST | TYPE_ECHO_REPLY))
        )
}

/// Writes a "fragment reassembly time exceeded" message quoting fragment zero's header and first
/// payload bytes into `out`; returns its length, or `None` if it does not fit.
pub(crate) fn write_reassembly_time_exceeded(
    out: &mut [u8],
    quoted_header: &[u8],
    quoted_payload: &[u8],
) -> Option<usize> {
    let quoted_payload = quoted_payload.get(..QUOTED_PAYLOAD_LEN.min(quoted_payload.len()))?;
    let len = ICMP_HEADER_LEN + quoted_header.len() + quoted_payload.len();
    let message = out.get_mut(..len)?;
    let (header, quote) = message.split_at_mut(ICMP_HEADER_LEN);
    header.copy_from_slice(&[
        TYPE_TIME_EXCEEDED,
        CODE_FRAGMENT_REASSEMBLY_TIME_EXCEEDED,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    let (quote_header, quote_payload) = quote.split_at_mut(quoted_header.len());
    quote_header.copy_from_slice(quoted_header);
    quote_payload.copy_from_slice(quoted_payload);
    let [sum_hi, sum_lo] = checksum::checksum(message).to_be_bytes();
    let header: &mut [u8; ICMP_HEADER_LEN] = message.first_chunk_mut()?;
    header[2] = sum_hi;
    header[3] = sum_lo;
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);

    /// An ICMP error of `icmp_type`/`code` quoting a TCP segment from `src` with protocol
    /// `protocol`, with a correct checksum.
    fn error_message(icmp_type: u8, code: u8, src: Ipv4Addr, protocol: u8) -> Vec<u8> {
        let mut message = vec![icmp_type, code, 0, 0, 0, 0, 0x05, 0x78];
        message.extend_from_slice(&[0x45, 0, 0x05, 0xdc, 0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
        message.extend_from_slice(&src.octets());
        message.extend_from_slice(&[93, 184, 215, 14]);
        message.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0xde, 0xad, 0xbe, 0xef]);
        let [hi, lo] = checksum::checksum(&message).to_be_bytes();
        message[2] = hi;
        message[3] = lo;
        message
    }

    #[test]
    fn every_destination_unreachable_code_maps() {
        let expected = [
            (0, IcmpErrorKind::NetUnreachable),
            (1, IcmpErrorKind::HostUnreachable),
            (2, IcmpErrorKind::ProtocolUnreachable),
            (3, IcmpErrorKind::PortUnreachable),
            (4, IcmpErrorKind::FragmentationNeeded { next_hop_mtu: 1400 }),
            (
                5,
                IcmpErrorKind::Other {
                    icmp_type: 3,
                    code: 5,
                },
            ),
            (11, IcmpErrorKind::NetUnreachable),
            (12, IcmpErrorKind::HostUnreachable),
            (13, IcmpErrorKind::AdminProhibited),
        ];
        for (code, kind) in expected {
            let message = error_message(3, code, LOCAL, PROTOCOL_TCP);
            let Ok(IcmpMessage::Error(error)) = parse(&message, ROUTER, LOCAL) else {
                panic!("code {code} not parsed as an error");
            };
            assert_eq!(error.kind, kind);
            assert_eq!(error.reporter, ROUTER);
            assert_eq!(error.local_port, 40000);
            assert_eq!(error.remote_addr, Ipv4Addr::new(93, 184, 215, 14));
            assert_eq!(error.remote_port, 80);
            assert_eq!(error.seq, 0xdead_beef);
        }
    }

    #[test]
    fn time_exceeded_and_parameter_problem_are_soft() {
        for (icmp_type, kind) in [
            (11, IcmpErrorKind::TimeExceeded),
            (12, IcmpErrorKind::ParameterProblem),
        ] {
            let message = error_message(icmp_type, 0, LOCAL, PROTOCOL_TCP);
            let Ok(IcmpMessage::Error(error)) = parse(&message, ROUTER, LOCAL) else {
                panic!("type {icmp_type} not parsed as an error");
            };
            assert_eq!(error.kind, kind);
            assert!(!kind.is_hard());
        }
    }

    #[test]
    fn hard_and_soft_errors() {
        assert!(IcmpErrorKind::PortUnreachable.is_hard());
        assert!(IcmpErrorKind::ProtocolUnreachable.is_hard());
        assert!(IcmpErrorKind::AdminProhibited.is_hard());
        assert!(!IcmpErrorKind::NetUnreachable.is_hard());
        assert!(!IcmpErrorKind::HostUnreachable.is_hard());
        assert!(!IcmpErrorKind::FragmentationNeeded { next_hop_mtu: 1280 }.is_hard());
        assert_eq!(
            IcmpErrorKind::HostUnreachable.to_string(),
            "host unreachable"
        );
        assert_eq!(
            IcmpErrorKind::FragmentationNeeded { next_hop_mtu: 1280 }.to_string(),
            "fragmentation needed (next-hop MTU 1280)"
        );
    }

    #[test]
    fn errors_not_about_our_tcp_are_refused() {
        let someone_else = error_message(3, 1, Ipv4Addr::new(10, 77, 0, 9), PROTOCOL_TCP);
        assert_eq!(
            parse(&someone_else, ROUTER, LOCAL),
            Err(DropReason::IcmpNotOurs)
        );
        let udp = error_message(3, 3, LOCAL, 17);
        assert_eq!(parse(&udp, ROUTER, LOCAL), Err(DropReason::IcmpNotOurs));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let full = error_message(3, 1, LOCAL, PROTOCOL_TCP);
        // Cut inside the quoted TCP header; fix the checksum so only the length is wrong.
        let mut short = full[..full.len() - 1].to_vec();
        short[2] = 0;
        short[3] = 0;
        let [hi, lo] = checksum::checksum(&short).to_be_bytes();
        short[2] = hi;
        short[3] = lo;
        assert_eq!(parse(&short, ROUTER, LOCAL), Err(DropReason::IcmpMalformed));
        assert_eq!(
            parse(&full[..7], ROUTER, LOCAL),
            Err(DropReason::IcmpMalformed)
        );

        let mut corrupt = full.clone();
        corrupt[30] ^= 1;
        assert_eq!(
            parse(&corrupt, ROUTER, LOCAL),
            Err(DropReason::IcmpBadChecksum)
        );

        let mut reply = [0u8, 0, 0, 0, 0, 1, 0, 1];
        let [hi, lo] = checksum::checksum(&reply).to_be_bytes();
        reply[2] = hi;
        reply[3] = lo;
        assert_eq!(parse(&reply, ROUTER, LOCAL), Err(DropReason::IcmpUnhandled));
    }

    #[test]
    fn echo_reply_mirrors_the_request() {
        let mut request = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x07, b'h', b'i', b'!'];
        let [hi, lo] = checksum::checksum(&request).to_be_bytes();
        request[2] = hi;
        request[3] = lo;
        let mut out = [0u8; 64];
        let len = write_echo_reply(&mut out, &request).expect("fits");
        assert_eq!(len, request.len());
        assert_eq!(checksum::checksum(&out[..len]), 0);
        assert_eq!(out[0], 0);
        assert_eq!(out[4..len], request[4..]);
        assert_eq!(write_echo_reply(&mut out[..5], &request), None);
    }

    #[test]
    fn time_exceeded_quotes_header_and_eight_bytes() {
        let header = [0x45u8; 20];
        let payload = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let mut out = [0u8; 128];
        let len = write_reassembly_time_exceeded(&mut out, &header, &payload).expect("fits");
        assert_eq!(len, 8 + 20 + 8);
        assert_eq!(out[..2], [11, 1]);
        assert_eq!(checksum::checksum(&out[..len]), 0);
        assert_eq!(out[8..28], header);
        assert_eq!(out[28..36], payload[..8]);
    }

    #[test]
    fn time_exceeded_is_never_about_an_icmp_error() {
        assert!(may_report_about(PROTOCOL_TCP, &[0x9c, 0x40]));
        assert!(may_report_about(1, &[8, 0]));
        assert!(!may_report_about(1, &[3, 4]));
        assert!(!may_report_about(1, &[]));
    }
}
