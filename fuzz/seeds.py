#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ from real traffic.

The datagrams are a kernel SYN-ACK captured on tun0 (Linux 10.77.1.2 answering our SYN from
10.77.0.2) and messages built like it; the HTTP seeds are responses as python http.server, nginx
and chunked servers send them. Each seed is encoded in the record format documented at the top
of the matching harness in fuzz/src/*_target.rs. Run it again after changing a format:
    python3 fuzz/seeds.py
"""

import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# The captured SYN-ACK: IPv4 header, then TCP (port 8080 -> 60143, MSS 1460, SACK-permitted,
# timestamps, window scale 10).
KERNEL_SYNACK = bytes.fromhex(
    "4500003c000040003f06261f0a4d01020a4d0002"
    "1f90eaefb995282eaf012cb0a012fe88a6d90000020405b40402080af76b7fa75620f7c30103030a"
)
LOCAL = bytes([10, 77, 0, 2])
REMOTE = bytes([10, 77, 1, 2])


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0, flags_offset=0x4000, ttl=64, options=b""):
    ihl = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident, flags_offset, ttl,
        proto, 0, src, dst,
    ) + options
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


def icmp(icmp_type, code, rest, body):
    message = bytes([icmp_type, code, 0, 0]) + rest + body
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def chunk(data):
    return struct.pack("!H", len(data)) + data


def write(target, seeds):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    for name, data in seeds.items():
        digest = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(directory, f"{name}-{digest}"), "wb") as out:
            out.write(data)


# ------------------------------------------------------------------------------------ ipv4


def ipv4_config(limit=5, reassemblies=15, icmp_queue=8, timeout=29):
    return bytes([limit, (icmp_queue << 4) | reassemblies, timeout])


def op_raw(datagram):
    return b"\x00" + chunk(datagram)


def op_mutated(datagram, flags=3):
    return b"\x01" + bytes([flags]) + chunk(datagram)


def built_fields(protocol=0, ident=0, flags=0x08, offset=0, ttl=64, options=b"", addr=0):
    """Fields of `built_fields` in ipv4_target.rs; protocol 0 is TCP, 1 is ICMP."""
    return bytes([addr, protocol, ident, flags]) + struct.pack("!H", offset) + bytes(
        [ttl, len(options) // 4]) + options


def op_built(fields, payload):
    return b"\x02" + fields + chunk(payload)


def op_fragmented(fields, payload, unit=0, order=0, tweak=0):
    return b"\x03" + fields + chunk(payload) + bytes([unit, order, tweak])


def op_time(millis, scale16=False):
    return bytes([0x84 if scale16 else 0x04]) + struct.pack("!H", millis)


def ipv4_seeds():
    tcp_payload = KERNEL_SYNACK[20:]
    echo = icmp(8, 0, struct.pack("!HH", 0x1234, 1), bytes(range(56)))
    big_echo = icmp(8, 0, struct.pack("!HH", 0x1234, 2), bytes(i % 251 for i in range(1400)))
    # An ICMP "fragmentation needed" quoting a segment we sent, as a router would.
    our_segment = ipv4(LOCAL, REMOTE, 6, bytes.fromhex("eaef1f90af012caf"), flags_offset=0x4000)
    frag_needed = ipv4(bytes([10, 77, 1, 1]), LOCAL, 1,
                       icmp(3, 4, struct.pack("!HH", 0, 1280), our_segment[:28]))
    record_route = bytes([7, 11, 4]) + bytes(8) + b"\x00"
    with_options = ipv4(REMOTE, LOCAL, 6, tcp_payload, options=record_route)
    ipv6 = bytes.fromhex("6000000000140640") + bytes(16) + bytes(16) + tcp_payload[:20]
    # First fragments of many datagrams, to reach the memory and count limits.
    flood = b"".join(
        op_built(built_fields(ident=i, flags=0x02), bytes(512)) for i in range(8))
    return {
        "kernel-synack": ipv4_config() + op_raw(KERNEL_SYNACK),
        "kernel-synack-mutated": ipv4_config() + op_mutated(KERNEL_SYNACK),
        "kernel-synack-fragments": ipv4_config()
        + op_fragmented(built_fields(flags=0x08), tcp_payload, unit=0, order=3),
        "echo": ipv4_config() + op_built(built_fields(protocol=1, flags=0x08), echo),
        "echo-fragmented": ipv4_config()
        + op_fragmented(built_fields(protocol=1, flags=0x08, ident=5), big_echo, unit=63,
                        order=9),
        "frag-needed": ipv4_config() + op_raw(frag_needed),
        "ip-options": ipv4_config() + op_raw(with_options),
        "ipv6": ipv4_config() + op_raw(ipv6),
        "overlap": ipv4_config()
        + op_fragmented(built_fields(protocol=1, flags=0x08), big_echo, unit=31, tweak=0x12),
        "duplicate": ipv4_config()
        + op_fragmented(built_fields(protocol=1, flags=0x08), big_echo, unit=31, tweak=0x09),
        "timeout": ipv4_config(timeout=2)
        + op_fragmented(built_fields(flags=0x08), tcp_payload + bytes(200), unit=1, tweak=0x0b)
        + op_time(5000),
        "limit": ipv4_config(limit=2, reassemblies=3) + flood + op_time(40000, scale16=True),
    }


# ------------------------------------------------------------------------------------- tcp


def tcp_config(mode=0x1C, buffers=0, isn=0xB995282E, window=65160, mss=1460, shift=10,
               ts=0xF76B7FA7):
    return bytes([mode, buffers]) + struct.pack("!IHHBI", isn, window, mss, shift, ts)


def op_segment(flags=0x10, select=0x01, seq=0, ack=0, length=0, extra=b"", op=0):
    """An offset segment; `select` 0x01 means right after our last byte, acking all."""
    return bytes([op, flags, select]) + struct.pack("!hh", seq, ack) + extra + struct.pack(
        "!H", length)


def op_app_send(length):
    return b"\x05" + struct.pack("!H", length)


def op_app_recv(length):
    return b"\x06" + struct.pack("!H", length)


def op_wait(millis=0, to_deadline=False):
    return bytes([0x84 if to_deadline else 0x04]) + struct.pack("!H", millis)


def op_close(abort=False):
    return b"\x07" + bytes([1 if abort else 0])


def op_icmp(kind=0, mtu=1280, seq=0):
    return b"\x08" + bytes([kind]) + struct.pack("!Hh", mtu, seq)


def sack_options(blocks):
    """Options byte: timestamps and SACK blocks (left offset from our last ACK, length)."""
    body = bytes([0x11, 1, len(blocks) - 1])
    for left, length in blocks:
        body += struct.pack("!hH", left, length)
    return body


def tcp_seeds():
    request = op_app_send(78)
    ack_all = op_segment()
    data = op_segment(flags=0x18, length=1448)
    download = request + ack_all + data * 4 + op_app_recv(8192)
    out_of_order = (
        request + ack_all
        + op_segment(flags=0x18, select=0x00, seq=2896, length=1448)
        + op_segment(flags=0x18, select=0x00, seq=1448, length=1448)
        + op_segment(flags=0x18, select=0x00, length=1448) + op_app_recv(8192)
    )
    fin = op_segment(flags=0x11)
    graceful = download + fin + op_app_recv(100) + op_close() + ack_all + op_wait(to_deadline=True)
    upload = (
        op_app_send(20000) + ack_all
        + op_segment(select=0x2C, extra=sack_options([(1448, 1448), (4344, 2896)]))
        + op_segment(select=0x0D) * 3 + op_wait(400) + ack_all
    )
    blind = (
        download
        + op_segment(flags=0x04, select=0x00, seq=100)
        + op_segment(flags=0x02, select=0x00, seq=-7)
        + op_segment(flags=0x18, select=0x02, seq=0, length=100, extra=struct.pack("!I", 7))
        + op_app_recv(8192)
    )
    zero_window = (
        op_app_send(9000)
        + op_segment(select=0x81, extra=struct.pack("!H", 0))
        + op_wait(to_deadline=True) * 3
        + op_segment(select=0x81, extra=struct.pack("!H", 65535))
    )
    pmtu = op_app_send(6000) + op_icmp(kind=0, mtu=576) + ack_all + op_icmp(kind=3 << 3 | 4)
    fragmented = request + ack_all + bytes([9, 3, 1]) + op_segment(flags=0x18, length=1448)[1:]
    timeouts = request + op_wait(to_deadline=True) * 20
    server = tcp_config(mode=0x1D, buffers=2) + op_segment(flags=0x18, length=300) + op_app_recv(
        4096) + op_app_send(5000) + ack_all + fin + op_close() + ack_all
    small_buffer = tcp_config(buffers=4) + request + ack_all + op_segment(
        flags=0x18, length=200) * 3 + op_app_recv(50) + op_segment(flags=0x18, length=200)
    syn_sent = tcp_config(mode=0x1E) + op_segment(flags=0x12, select=0x00) + request
    return {
        "download": tcp_config() + download,
        "out-of-order": tcp_config() + out_of_order,
        "graceful-close": tcp_config() + graceful,
        "upload-sack": tcp_config() + upload,
        "blind-attacks": tcp_config() + blind,
        "zero-window": tcp_config() + zero_window,
        "path-mtu": tcp_config() + pmtu,
        "fragmented-segment": tcp_config() + fragmented,
        "retransmit-timeouts": tcp_config() + timeouts,
        "server": server,
        "small-buffer": small_buffer,
        "syn-sent": syn_sent,
        "no-options": tcp_config(mode=0xC0, mss=0) + download,
    }


# ------------------------------------------------------------------------------------ http


def http_seeds():
    body = b"<html><body>hello</body></html>\n"
    length = (b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.12.3\r\n"
              b"Date: Tue, 05 May 2026 10:00:00 GMT\r\nContent-type: text/html\r\n"
              b"Content-Length: %d\r\nLast-Modified: Tue, 05 May 2026 09:00:00 GMT\r\n\r\n"
              % len(body)) + body
    chunked = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               b"1a;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
               b"A\r\n0123456789\r\n0\r\nExpires: never\r\nX-Checksum: abc\r\n\r\n")
    interim = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the peer closes"
    redirect = (b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://10.77.1.2:8080/b\r\n"
                b"Content-Length: 0\r\n\r\n")
    no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
    conflicting = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    list_length = b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"
    bare_lf = b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"
    gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    big_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab"
    return {
        "content-length": b"\x00\x00" + length,
        "content-length-split": b"\x06\x03" + length,
        "chunked-trailers": b"\x00\x00" + chunked,
        "chunked-split": b"\x0a\x02" + chunked,
        "interim": b"\x04\x05" + interim,
        "until-close": b"\x00\x07" + close,
        "redirect": b"\x00\x00" + redirect,
        "no-content": b"\x00\x00" + no_content,
        "head": b"\x01\x00" + length,
        "conflicting-length": b"\x00\x00" + conflicting,
        "list-length": b"\x00\x01" + list_length,
        "bare-lf": b"\x00\x01" + bare_lf,
        "gzip": b"\x00\x00" + gzip,
        "huge-chunk": b"\x00\x00" + big_chunk,
    }


OUR_MAC = bytes([2, 0, 0, 0, 0, 2])
GW_MAC = bytes([2, 0, 0, 0, 0, 1])
BROADCAST_MAC = b"\xff" * 6


def arp_packet(op, sender_mac, sender_ip, target_mac, target_ip):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sender_mac + sender_ip + target_mac + target_ip


def ethernet_frame(dst, src, ethertype, payload):
    frame = dst + src + struct.pack("!H", ethertype) + payload
    return frame + b"\0" * max(0, 60 - len(frame))


def ethernet_seeds():
    """Records: op:u8 len:u16 frame (see fuzz/src/ethernet_target.rs); op 0 keeps the frame."""
    syn = ipv4(REMOTE, LOCAL, 6, KERNEL_SYNACK[20:])
    request = arp_packet(1, GW_MAC, bytes([10, 77, 0, 1]), b"\0" * 6, LOCAL)
    padded_ack = ipv4(REMOTE, LOCAL, 6, KERNEL_SYNACK[20:40])
    frames = {
        "ipv4": ethernet_frame(OUR_MAC, GW_MAC, 0x0800, syn),
        "ipv4-padded": ethernet_frame(OUR_MAC, GW_MAC, 0x0800, padded_ack),
        "arp-request": ethernet_frame(BROADCAST_MAC, GW_MAC, 0x0806, request),
        "arp-unpadded": (BROADCAST_MAC + GW_MAC + b"\x08\x06" + request),
        "ipv6": ethernet_frame(bytes([0x33, 0x33, 0, 0, 0, 1]), GW_MAC, 0x86DD, b"\x60" + b"\0" * 39),
        "vlan": ethernet_frame(OUR_MAC, GW_MAC, 0x8100, b"\0\x05\x08\x00" + syn),
        "stp": ethernet_frame(bytes([1, 0x80, 0xC2, 0, 0, 0]), GW_MAC, 0x0026, b"\x42\x42\x03" + b"\0" * 35),
    }
    seeds = {name: b"\x03" + b"\x00" + chunk(frame) for name, frame in frames.items()}
    seeds["mac-text"] = b"\x00" + b"\x10" + chunk(b"02:1A:2b:3c:4d:5e") + b"\x10" + chunk(b"02-1a-2b-3c-4d-5e")
    seeds["all"] = b"\x07" + b"".join(b"\x00" + chunk(frame) for frame in frames.values())
    return seeds


def arp_seeds():
    """Records as documented in fuzz/src/arp_target.rs."""
    config = bytes([4, 12, 4, 4, 3])
    gw_ip = bytes([10, 77, 0, 1])
    request_for_us = arp_packet(1, GW_MAC, gw_ip, b"\0" * 6, LOCAL)
    reply_to_us = arp_packet(2, GW_MAC, gw_ip, OUR_MAC, LOCAL)
    poison = arp_packet(2, bytes([2, 0, 0, 0, 0, 0x66]), bytes([10, 77, 0, 3]), OUR_MAC, LOCAL)
    raw = lambda packet: b"\x00" + chunk(packet)
    resolve = lambda host, length: bytes([2, host, length])
    wait = lambda millis: b"\x03" + struct.pack("!H", millis)
    drain, announce, events = b"\x04", b"\x05", b"\x06"
    return {
        "request-for-us": config + raw(request_for_us) + drain,
        "resolve-then-reply": config + resolve(0, 40) + resolve(0, 60) + drain + raw(reply_to_us) + drain,
        "resolve-fails": config + resolve(1, 40) + drain + wait(1000) + drain + wait(1000) + drain
        + wait(1000) + wait(1000) + events + resolve(1, 40),
        "poison": config + raw(poison) + resolve(1, 40) + drain,
        "revalidate": config + resolve(0, 40) + raw(reply_to_us) + drain + resolve(0, 40)
        + b"\x81" + struct.pack("!H", 1700) + drain + wait(1000) + drain,
        "announce": config + announce + drain + wait(2000) + drain,
        "built": config + bytes([1, 0, 0, 4]) + bytes([1, 1, 1, 4]) + bytes([1, 3, 2, 0]) + drain,
    }


if __name__ == "__main__":
    write("ipv4", ipv4_seeds())
    write("tcp", tcp_seeds())
    write("http", http_seeds())
    write("ethernet", ethernet_seeds())
    write("arp", arp_seeds())
