//! Loss made by the kernel (nftables `numgen random`) on the forwarded path between tun0 and the
//! veth, so our own fault injector is not the only judge of how the stack copes with loss.

use std::process::Command;

/// The table of the chaos tests' own; it disappears with the namespace.
const TABLE: &str = "chaos";

/// The table dropping a share of one port's traffic to and from the namespace's own sockets.
const LOCAL_TABLE: &str = "chaos_local";

/// An installed rule pair dropping a share of datagrams in each direction.
pub struct KernelLoss {
    netns: String,
    table: &'static str,
}

/// How many datagrams the kernel dropped, per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// From tun0 towards the server (the stack's ACKs and requests).
    pub to_server: u64,
    /// From the server towards tun0 (the data).
    pub to_stack: u64,
}

impl KernelLoss {
    /// Drops `percent`% of what the namespace `netns` forwards between `tun` and `veth`, in
    /// both directions, chosen independently per datagram by the kernel.
    pub fn install(netns: &str, tun: &str, veth: &str, percent: u32) -> KernelLoss {
        let rules = format!(
            "table inet {TABLE} {{\n\
             \x20   chain forward {{\n\
             \x20       type filter hook forward priority 0; policy accept;\n\
             \x20       iifname \"{tun}\" oifname \"{veth}\" numgen random mod 100 < {percent} counter drop comment \"to_server\"\n\
             \x20       iifname \"{veth}\" oifname \"{tun}\" numgen random mod 100 < {percent} counter drop comment \"to_stack\"\n\
             \x20   }}\n\
             }}\n"
        );
        super::lab::load_nft(netns, &rules);
        KernelLoss {
            netns: netns.to_owned(),
            table: TABLE,
        }
    }

    /// Drops `percent`% of the TCP datagrams of `netns`'s own connections to `port` beyond
    /// `veth`, each way, so the kernel's TCP at both ends meets the loss the forwarding rules
    /// give the stack and the two can be compared in one run. `to_stack` counts what was
    /// dropped on the way in (the data), `to_server` on the way out (the ACKs).
    #[allow(dead_code)] // used by tests/serve.rs
    pub fn install_local(netns: &str, veth: &str, port: u16, percent: u32) -> KernelLoss {
        let rules = format!(
            "table inet {LOCAL_TABLE} {{\n\
             \x20   chain input {{\n\
             \x20       type filter hook input priority 0; policy accept;\n\
             \x20       iifname \"{veth}\" tcp sport {port} numgen random mod 100 < {percent} counter drop comment \"to_stack\"\n\
             \x20   }}\n\
             \x20   chain output {{\n\
             \x20       type filter hook output priority 0; policy accept;\n\
             \x20       oifname \"{veth}\" tcp dport {port} numgen random mod 100 < {percent} counter drop comment \"to_server\"\n\
             \x20   }}\n\
             }}\n"
        );
        super::lab::load_nft(netns, &rules);
        KernelLoss {
            netns: netns.to_owned(),
            table: LOCAL_TABLE,
        }
    }

    /// The rules' counters so far.
    pub fn dropped(&self) -> Dropped {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.netns, "nft", "list", "table", "inet"])
            .arg(self.table)
            .output()
            .expect("run nft list");
        assert!(output.status.success(), "nft list table failed");
        let listing = String::from_utf8_lossy(&output.stdout);
        Dropped {
            to_server: counter_of(&listing, "to_server"),
            to_stack: counter_of(&listing, "to_stack"),
        }
    }
}

/// The packet count of the rule commented `comment`.
fn counter_of(listing: &str, comment: &str) -> u64 {
    let tag = format!("comment \"{comment}\"");
    let line = listing
        .lines()
        .find(|line| line.contains(&tag))
        .unwrap_or_else(|| panic!("no rule {tag} in\n{listing}"));
    let after = line
        .split_once("counter packets ")
        .unwrap_or_else(|| panic!("no counter in {line:?}"))
        .1;
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad counter in {line:?}"))
}
