//! TAP mode under the deterministic simulator: two stacks, each behind the production
//! [`EthernetDevice`] (Ethernet framing, ARP, next hop), joined by simulated links that carry
//! Ethernet frames, driven by the production [`Driver`] on virtual time. ARP frames can be
//! dropped or held back per direction, so lost requests, late replies and cache expiry are
//! tested with a full TCP transfer over them, in milliseconds of real time.

#[path = "sim/mod.rs"]
#[allow(unused_imports)] // its re-exports for tests/sim.rs's pair are not used here
mod sim;

use std::cell::RefCell;
use std::io;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sim::{Clock, Endpoint, Pattern, Role, Side, CLIENT_ADDR, SERVER_ADDR, SERVER_PORT};
use tunstack::arp::{ArpConfig, NeighborState};
use tunstack::device::ethernet::EthernetDevice;
use tunstack::device::{Device, Received};
use tunstack::driver::Driver;
use tunstack::ethernet::MacAddr;
use tunstack::link::{Link, LinkConfig};
use tunstack::stack::{Stack, StackConfig};
use tunstack::tcp::TcpConfig;

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// Both stacks on one /16, so each resolves the other directly.
const PREFIX: u8 = 16;
/// An Ethernet MTU: 1500 bytes of IPv4 and the 14-byte header.
const FRAME_MTU: usize = 1514;

/// An ARP request or reply about another station: announcements (sender and target address
/// the same) are left alone, so the counts below are of resolution traffic only.
fn is_arp(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&[0x08, 0x06]) && frame.get(28..32) != frame.get(38..42)
}

/// What happens to ARP frames in one direction.
#[derive(Debug, Clone, Copy, Default)]
struct ArpFate {
    /// The first this-many ARP frames are lost.
    drop_first: u32,
    /// Every ARP frame arrives this much later than the link's latency.
    extra_delay: Duration,
}

/// The two directions of the segment and what they do to ARP.
struct Segment {
    /// Client to server.
    up: sim::Link,
    /// Server to client.
    down: sim::Link,
    up_arp: ArpFate,
    down_arp: ArpFate,
    /// ARP frames held back, with when they reach the far side and whether it is the client.
    held: Vec<(Instant, bool, Vec<u8>)>,
}

/// One station's attachment to the segment.
struct Port {
    segment: Rc<RefCell<Segment>>,
    client: bool,
}

impl Device for Port {
    fn recv(&mut self, now: Instant, buf: &mut [u8]) -> io::Result<Received> {
        let mut segment = self.segment.borrow_mut();
        let due = segment
            .held
            .iter()
            .position(|(at, to_client, _)| *at <= now && *to_client == self.client);
        let frame = match due {
            Some(i) => segment.held.remove(i).2,
            None => {
                let link = if self.client {
                    &mut segment.down
                } else {
                    &mut segment.up
                };
                link.pop_due(now).ok_or(io::ErrorKind::WouldBlock)?
            }
        };
        buf[..frame.len()].copy_from_slice(&frame);
        Ok(Received::unverified(frame.len()))
    }

    fn send(&mut self, now: Instant, frame: &[u8]) -> io::Result<()> {
        let mut segment = self.segment.borrow_mut();
        if is_arp(frame) {
            let fate = if self.client {
                &mut segment.up_arp
            } else {
                &mut segment.down_arp
            };
            if fate.drop_first > 0 {
                fate.drop_first -= 1;
                return Ok(());
            }
            if !fate.extra_delay.is_zero() {
                let at = now + fate.extra_delay;
                segment.held.push((at, !self.client, frame.to_vec()));
                return Ok(());
            }
        }
        if self.client {
            segment.up.send(now, frame);
        } else {
            segment.down.send(now, frame);
        }
        Ok(())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let segment = self.segment.borrow();
        let link = if self.client {
            &segment.down
        } else {
            &segment.up
        };
        let held = segment
            .held
            .iter()
            .filter(|(_, to_client, _)| *to_client == self.client)
            .map(|(at, _, _)| *at);
        held.chain(link.next_arrival()).min()
    }
}

/// One station: its stack's driver and its Ethernet device.
struct Station {
    driver: Driver,
    device: EthernetDevice<Port>,
}

/// Two stations on one simulated Ethernet segment.
struct L2Pair {
    clock: Clock,
    client: Station,
    server: Station,
}

impl L2Pair {
    fn new(seed: u64, link: sim::LinkConfig, up_arp: ArpFate, down_arp: ArpFate) -> Self {
        let clock = Clock::new();
        let link = sim::LinkConfig {
            mtu: FRAME_MTU,
            ..link
        };
        let segment = Rc::new(RefCell::new(Segment {
            up: sim::Link::new(link.clone(), seed ^ 0xa1),
            down: sim::Link::new(link, seed ^ 0xb0),
            up_arp,
            down_arp,
            held: Vec::new(),
        }));
        let station = |addr: Ipv4Addr, mac: MacAddr, peer: Ipv4Addr, client: bool| {
            let mut config = StackConfig::new(addr, sim::MTU, [seed as u8; 16], seed ^ 7);
            // A short TIME-WAIT, so a run ends soon after the transfer (the default 60 s would
            // outlast the ARP entry whose lifetime some tests check).
            config.tcp = TcpConfig {
                mss: config.tcp.mss,
                time_wait: Duration::from_secs(1),
                ..TcpConfig::default()
            };
            let mut stack = Stack::new(clock.now(), config);
            if !client {
                stack.listen(SERVER_PORT).unwrap();
            }
            let link = Link::new(
                clock.now(),
                LinkConfig {
                    mac,
                    addr,
                    prefix_len: PREFIX,
                    gateway: peer,
                    // The server does not announce itself: an announcement arriving while
                    // the client resolves it would complete the resolution (RFC 826's merge),
                    // and these tests are about the client asking.
                    arp: ArpConfig {
                        announcements: if client { 2 } else { 0 },
                        ..ArpConfig::default()
                    },
                },
            );
            let port = Port {
                segment: segment.clone(),
                client,
            };
            Station {
                driver: Driver::new(stack, None),
                device: EthernetDevice::new(port, link, false),
            }
        };
        L2Pair {
            client: station(CLIENT_ADDR, CLIENT_MAC, SERVER_ADDR, true),
            server: station(SERVER_ADDR, SERVER_MAC, CLIENT_ADDR, false),
            clock,
        }
    }

    /// Runs both stations until both applications are done (`Ok`), one fails (`Err` with
    /// its message), or `limit` of virtual time passes.
    fn run(
        &mut self,
        client_app: &mut Endpoint,
        server_app: &mut Endpoint,
        limit: Duration,
    ) -> Result<(), String> {
        loop {
            let now = self.clock.now();
            if self.clock.elapsed() > limit {
                return Err(format!(
                    "virtual time limit {limit:?} exceeded (client moved {} bytes in {:?}, \
                     server {} in {:?}; client ARP {:?})",
                    client_app.progress(),
                    client_app.state,
                    server_app.progress(),
                    server_app.state,
                    self.client_link().arp_stats()
                ));
            }
            let clock = || now;
            for station in [&mut self.server, &mut self.client] {
                let device = &mut station.device;
                station
                    .driver
                    .poll(device, false, &clock)
                    .map_err(|e| e.to_string())?;
            }
            for _ in 0..1000 {
                let client_busy = client_app.poll(self.client.driver.stack_mut(), now)?;
                let server_busy = server_app.poll(self.server.driver.stack_mut(), now)?;
                for station in [&mut self.client, &mut self.server] {
                    let device = &mut station.device;
                    station
                        .driver
                        .flush(device, &clock)
                        .map_err(|e| e.to_string())?;
                }
                if !(client_busy || server_busy) {
                    break;
                }
            }
            if client_app.is_done() && server_app.is_done() {
                return Ok(());
            }
            self.advance(now)?;
        }
    }

    /// Jumps the clock to the next deadline of either station.
    fn advance(&mut self, now: Instant) -> Result<(), String> {
        let next = [&self.client, &self.server]
            .into_iter()
            .filter_map(|s| s.driver.poll_timeout(&s.device, now))
            .min()
            .ok_or("stalled: nothing in flight and no timer armed")?;
        self.clock.advance_to(next);
        Ok(())
    }

    /// Lets `duration` of virtual time pass with no application acting.
    fn idle(&mut self, duration: Duration) {
        let until = self.clock.now() + duration;
        while self.clock.now() < until {
            let now = self.clock.now();
            let clock = || now;
            for station in [&mut self.server, &mut self.client] {
                let device = &mut station.device;
                station.driver.poll(device, false, &clock).unwrap();
            }
            let next = [&self.client, &self.server]
                .into_iter()
                .filter_map(|s| s.driver.poll_timeout(&s.device, now))
                .min()
                .unwrap_or(until);
            self.clock
                .advance_to(next.min(until).max(now + Duration::from_millis(1)));
        }
    }

    fn client_link(&self) -> &Link {
        self.client.device.link()
    }
}

fn endpoints(bytes: u64, seed: u64) -> (Endpoint, Endpoint) {
    let pattern = Pattern::new(seed ^ bytes);
    (
        Endpoint::new(Side::Client, Role::Receiver, bytes, pattern),
        Endpoint::new(Side::Server, Role::Sender, bytes, pattern),
    )
}

fn clean_link() -> sim::LinkConfig {
    sim::LinkConfig::clean(100_000_000, Duration::from_millis(5), 256 << 10)
}

/// RFC 826 end to end: the client's SYN waits for the server's reply to a broadcast request,
/// the server learns the client from that request (so it needs no request of its own), and a
/// 4 MB download over Ethernet frames is byte-exact.
#[test]
fn rfc826_a_download_over_ethernet_starts_with_one_request_and_completes() {
    for seed in 1..=3 {
        let mut pair = L2Pair::new(seed, clean_link(), ArpFate::default(), ArpFate::default());
        let (mut client, mut server) = endpoints(4_000_000, seed);
        pair.run(&mut client, &mut server, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let arp = pair.client_link().arp_stats();
        assert_eq!(arp.requests_sent, 1, "seed {seed}: {arp:?}");
        assert_eq!(arp.resolved, 1);
        let server_arp = pair.server.device.link().arp_stats();
        assert_eq!(
            server_arp.learned, 1,
            "the server learned us from our request"
        );
        assert_eq!(server_arp.requests_sent, 0, "so it never had to ask");
        assert_eq!(server_arp.replies_sent, 1);
    }
}

/// RFC 1122 §2.3.2.1: lost requests are retried, at most one per second: with the first two
/// lost, the third (at 2 s) is answered and the transfer completes after it.
#[test]
fn rfc1122_2_3_2_1_lost_requests_are_retried_once_a_second_and_the_transfer_completes() {
    let lose_two = ArpFate {
        drop_first: 2,
        ..ArpFate::default()
    };
    let mut pair = L2Pair::new(11, clean_link(), lose_two, ArpFate::default());
    let (mut client, mut server) = endpoints(2_000_000, 11);
    let start = pair.clock.now();
    pair.run(&mut client, &mut server, Duration::from_secs(60))
        .unwrap();
    let arp = pair.client_link().arp_stats();
    assert_eq!(arp.requests_sent, 3);
    assert_eq!(arp.resolved, 1);
    let done = client.eof_at.unwrap() - start;
    assert!(done >= Duration::from_secs(2), "done at {done:?}");
    assert!(
        done < Duration::from_secs(4),
        "the SYN left with the reply: {done:?}"
    );
}

/// A reply that arrives late, but before the retries run out, resolves the neighbour and
/// releases the queued SYN: the transfer completes, a little later.
#[test]
fn a_late_reply_within_the_retries_still_resolves_and_the_transfer_completes() {
    let late = ArpFate {
        extra_delay: Duration::from_millis(1500),
        ..ArpFate::default()
    };
    let mut pair = L2Pair::new(12, clean_link(), ArpFate::default(), late);
    let (mut client, mut server) = endpoints(1_000_000, 12);
    let start = pair.clock.now();
    pair.run(&mut client, &mut server, Duration::from_secs(60))
        .unwrap();
    let done = client.eof_at.unwrap() - start;
    assert!(done >= Duration::from_millis(1500), "{done:?}");
    assert_eq!(pair.client_link().arp_stats().requests_sent, 2);
    assert_eq!(pair.client_link().arp_stats().failed, 0);
}

/// RFC 1122 §2.3.2.2: replies that come only after the third request's second has passed are
/// too late: the queued SYN is dropped and the connection fails at once with "no ARP reply".
/// The late reply then still revives the entry (the neighbour is there after all).
#[test]
fn rfc1122_2_3_2_2_a_reply_after_the_give_up_fails_the_connection_then_revives_the_entry() {
    let too_late = ArpFate {
        extra_delay: Duration::from_millis(3500),
        ..ArpFate::default()
    };
    let mut pair = L2Pair::new(13, clean_link(), ArpFate::default(), too_late);
    let (mut client, mut server) = endpoints(1_000_000, 13);
    let start = pair.clock.now();
    let error = pair
        .run(&mut client, &mut server, Duration::from_secs(60))
        .unwrap_err();
    let failed_after = pair.clock.now() - start;
    assert!(
        error.contains(&format!("failed: no ARP reply from {SERVER_ADDR}")),
        "{error}"
    );
    assert_eq!(
        failed_after,
        Duration::from_secs(3),
        "three requests, 1 s apart"
    );
    assert_eq!(pair.client_link().arp_stats().failed, 1);
    pair.idle(Duration::from_secs(1));
    let now = pair.clock.now();
    assert_eq!(
        pair.client_link().neighbor(now, SERVER_ADDR),
        Some(NeighborState::Reachable(SERVER_MAC))
    );
}

/// RFC 1122 §2.3.2.1: entries time out. One in use is revalidated by unicast requests before
/// its 30 s run out, so a 40 s transfer never falls back to broadcasting or stalls; once
/// nothing uses it (after at most one more revalidation for the traffic since the last), it
/// expires.
#[test]
fn rfc1122_2_3_2_1_an_entry_in_use_is_revalidated_and_an_idle_one_expires() {
    // 2 Mbit/s: 10 MB takes about 40 s of virtual time.
    let slow = sim::LinkConfig::clean(2_000_000, Duration::from_millis(10), 64 << 10);
    let mut pair = L2Pair::new(14, slow, ArpFate::default(), ArpFate::default());
    let (mut client, mut server) = endpoints(10_000_000, 14);
    let start = pair.clock.now();
    pair.run(&mut client, &mut server, Duration::from_secs(300))
        .unwrap();
    assert!(client.eof_at.unwrap() - start > Duration::from_secs(35));
    let arp = pair.client_link().arp_stats().clone();
    assert_eq!(arp.requests_sent, 1, "one broadcast round only: {arp:?}");
    assert!(arp.refreshes_sent >= 1, "revalidated while in use: {arp:?}");
    assert_eq!(arp.expired, 0, "{arp:?}");

    pair.idle(Duration::from_secs(61));
    let now = pair.clock.now();
    assert_eq!(pair.client_link().neighbor(now, SERVER_ADDR), None);
    assert!(pair.client_link().arp_stats().expired >= 1);
}
