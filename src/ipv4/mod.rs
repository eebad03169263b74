//! IPv4: validation, demux, fragments and ICMP.
