#!/usr/bin/env bash
# Throughput benchmark: tunstack against smoltcp (the userspace stack users would pick instead)
# and the kernel's own TCP (curl over the veth), all downloading from one nginx; and tunstack in
# TAP mode (`--tap`) in a second sandbox, against the same files from a second nginx.
#
#   NAME-client namespace                                          NAME-server namespace
#   tunstack / smoltcp client 10.77.0.2 ── tun0 ─ forwarding ─┐
#   curl (kernel TCP)        10.77.1.1 ───────────────────────┴── veth ── nginx 10.77.1.2:8081
#
#   NAMEt-client namespace (setup/sandbox up-tap)                  NAMEt-server namespace
#   tunstack --tap 10.77.0.2/24 ── tap0 ─ br0 ── veth ── 10.77.0.1/24 (gateway), nginx 10.77.1.2:8081 (lo)
#
# usage: bench/run.sh [SIZE]          (needs root; `sudo just bench [SIZE]`)
#
# Everything is a parameter from the environment (the defaults are in brackets):
#   BENCH_SIZE            size of the served file, e.g. 256M for a quick run; SIZE wins [1G]
#   BENCH_ROUNDS          rounds; each round runs every contender once, rotating who goes first [5]
#   BENCH_VETH_MTU        MTU of the veth pair [1500]
#   BENCH_TUN_MTU         MTU of tun0, and of tap0 in the TAP sandbox [1500]
#   BENCH_OFFLOADS        on|off: TSO/GSO on the veth pairs for the throughput runs (on = the
#                         kernel's default for veths, which the kernel's numbers assume) [on]
#   BENCH_TAP             on|off: the TAP contender, tunstack-tap (`fetch --tap`, offloads as on
#                         tun0), in its own sandbox NAMEt (so NAME has at most 11 characters);
#                         throughput only, not in the loss or start-up runs [on]
#   BENCH_LOSS_SIZE       size of the file for the loss runs [64M]
#   BENCH_LOSS_RATES      drop percentages, each in both directions; empty skips the loss runs [1 5]
#   BENCH_LOSS_ROUNDS     rounds per loss rate [3]
#   BENCH_LOSS_CONTENDERS who runs under loss [tunstack curl] (tunstack-plain, smoltcp may be added)
#   BENCH_START_RUNS      fetches of a 4 KiB file, each right after attaching to tun0, to catch
#                         a start-up stall (a lost SYN-ACK costs a 1 s RTO); 0 skips them [20]
#   BENCH_TIMEOUT         seconds before one download is killed [300]
#   BENCH_NAME            sandbox name (namespaces NAME-client, NAME-server; the TAP sandbox's
#                         NAMEt-client, NAMEt-server) [tsbench]
#   BENCH_OUT             the markdown report [bench/results.md]
#
# The script builds both clients, makes its own sandboxes with setup/sandbox, and removes them, the
# nginx processes it started (by PID) and its temporary files on any exit. No traffic leaves their
# namespaces. Each figure is the median of the rounds with the minimum and maximum beside it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/common.sh
source "$here/common.sh"

size_arg=${1:-${BENCH_SIZE:-1G}}
rounds=${BENCH_ROUNDS:-5}
veth_mtu=${BENCH_VETH_MTU:-1500}
tun_mtu=${BENCH_TUN_MTU:-1500}
offloads=${BENCH_OFFLOADS:-on}
tap=${BENCH_TAP:-on}
loss_size_arg=${BENCH_LOSS_SIZE:-64M}
loss_rates=${BENCH_LOSS_RATES-1 5}
loss_rounds=${BENCH_LOSS_ROUNDS:-3}
loss_contenders=${BENCH_LOSS_CONTENDERS:-tunstack curl}
start_runs=${BENCH_START_RUNS:-20}
run_timeout=${BENCH_TIMEOUT:-300}
name=${BENCH_NAME:-tsbench}
out=${BENCH_OUT:-$here/results.md}

client_ns=$name-client
server_ns=$name-server
tap_name=${name}t
tap_client_ns=$tap_name-client
tap_server_ns=$tap_name-server
server_ip=10.77.1.2
port=8081
contenders=(tunstack tunstack-tap tunstack-plain smoltcp curl)

die() { echo "bench: $*" >&2; exit 1; }

# "256M", "1G", "65536" -> bytes (binary multiples, like head -c).
to_bytes() {
    local text=$1 number unit
    [[ $text =~ ^([0-9]+)([KMG]?)(i?B)?$ ]] || die "bad size '$text' (use e.g. 256M, 1G)"
    number=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
        K) echo $((number << 10)) ;;
        M) echo $((number << 20)) ;;
        G) echo $((number << 30)) ;;
        *) echo "$number" ;;
    esac
}

size=$(to_bytes "$size_arg")
loss_size=$(to_bytes "$loss_size_arg")
[[ $start_runs =~ ^[0-9]+$ ]] || die "BENCH_START_RUNS must be a number, not '$start_runs'"
start_runs=$((10#$start_runs))
for value in rounds veth_mtu tun_mtu loss_rounds run_timeout; do
    [[ ${!value} =~ ^[1-9][0-9]*$ ]] || die "$value must be a positive integer, not '${!value}'"
done
for rate in $loss_rates; do
    [[ $rate =~ ^[0-9]+$ && $rate -lt 100 ]] || die "loss rates are percentages 0-99, not '$rate'"
done
read -r -a loss_list <<< "$loss_contenders"
for contender in "${loss_list[@]}"; do
    [[ $contender =~ ^(tunstack|tunstack-plain|smoltcp|curl)$ ]] \
        || die "unknown loss contender '$contender' (tunstack-tap runs only for throughput)"
done
[[ $offloads == on || $offloads == off ]] || die "BENCH_OFFLOADS is on or off, not '$offloads'"
[[ $tap == on || $tap == off ]] || die "BENCH_TAP is on or off, not '$tap'"
if [[ $tap == on ]]; then
    [[ $name =~ ^[A-Za-z0-9_]{1,11}$ ]] \
        || die "BENCH_NAME '$name' must be 1-11 of [A-Za-z0-9_] with BENCH_TAP=on (the TAP sandbox is '${name}t')"
else
    contenders=(tunstack tunstack-plain smoltcp curl)
fi
[[ $size -gt 0 && $loss_size -gt 0 ]] || die "sizes must be positive"

# --- prerequisites ----------------------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "needs root to create network namespaces: sudo just bench"
command -v cargo >/dev/null 2>&1 || die "needs cargo (a Rust toolchain) to build the clients"
# GNU time (for the peak RSS) by its path: `time` alone is the shell's keyword.
"$repo/setup/packages" iproute2:ip nginx-light:nginx curl:curl nftables:nft ethtool:ethtool \
    coreutils:timeout time:/usr/bin/time python3:python3 \
    || die "could not install what the benchmark needs (see above)"
/usr/bin/time --version 2>&1 | grep -q GNU || die "/usr/bin/time is not GNU time (Debian package: time)"
# The real interpreter, not a version-manager shim, so that a background job's $! is its PID.
python=/usr/bin/python3
[[ -x $python ]] || python=$(python3 -c 'import sys; print(sys.executable)')

# --- build ------------------------------------------------------------------------------------

echo "bench: building tunstack and the smoltcp client (release)"
(cd "$repo" && cargo build --release --quiet)
cargo build --release --quiet --manifest-path "$here/smoltcp-client/Cargo.toml"
tunstack_bin=$repo/target/release/tunstack
smoltcp_bin=$here/smoltcp-client/target/release/smoltcp-bench-client

# --- sandbox, files, nginx --------------------------------------------------------------------

work=""
mounted=no
nginx_pid=""
nginx_pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Both nginx processes (TUN and TAP sandbox); nginx_pid may be one that failed to come up.
    local pid
    for pid in "${nginx_pids[@]}" "$nginx_pid"; do
        stop_pid "$pid"
    done
    "$repo/setup/sandbox" down "$name" || true
    if [[ $tap == on ]]; then "$repo/setup/sandbox" down "$tap_name" || true; fi
    if [[ -n $work ]]; then
        if [[ $mounted == yes ]]; then umount "$work" || true; fi
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The served files live in RAM so that disk speed is not measured.
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
    work=$(mktemp -d /dev/shm/tunstack-bench.XXXXXX)
else
    work=$(mktemp -d /tmp/tunstack-bench.XXXXXX)
    mount -t tmpfs -o "size=$(((size + loss_size) * 3 + (64 << 20)))" tunstack-bench "$work"
    mounted=yes
fi
chmod 755 "$work"
mkdir -m 755 "$work/www" "$work/nginx-temp" "$work/runs"

# How busy the machine already is (other work skews every figure).
measure_background_load
echo "bench: background load before starting: ${background_load}% of all cores busy"

echo "bench: writing $size_arg and $loss_size_arg random files to tmpfs"
head -c "$size" /dev/urandom > "$work/www/big.bin"
head -c "$loss_size" /dev/urandom > "$work/www/loss.bin"
head -c 4096 /dev/urandom > "$work/www/small.bin"
chmod 644 "$work/www/"*.bin

"$repo/setup/sandbox" up "$name"
ip -n "$client_ns" link set "$name-c" mtu "$veth_mtu"
ip -n "$server_ns" link set "$name-s" mtu "$veth_mtu"
ip -n "$client_ns" link set tun0 mtu "$tun_mtu"
if [[ $tap == on ]]; then
    # One Ethernet segment: tap0 and the veth are br0's ports (br0 takes the smaller MTU).
    "$repo/setup/sandbox" up-tap "$tap_name"
    ip -n "$tap_client_ns" link set "$tap_name-c" mtu "$veth_mtu"
    ip -n "$tap_server_ns" link set "$tap_name-s" mtu "$veth_mtu"
    ip -n "$tap_client_ns" link set tap0 mtu "$tun_mtu"
fi

# Segmentation offloads on the veth pairs (both sandboxes): `on` is a veth's default (GRO stays
# off, its default). tap0's own offloads are what tunstack asks for when it attaches, as on tun0.
set_offloads() {
    local state=$1 gro=off sandbox
    local sandboxes=("$name")
    if [[ $tap == on ]]; then sandboxes+=("$tap_name"); fi
    for sandbox in "${sandboxes[@]}"; do
        ip netns exec "$sandbox-client" ethtool -K "$sandbox-c" gro "$gro" gso "$state" tso "$state" >/dev/null
        ip netns exec "$sandbox-server" ethtool -K "$sandbox-s" gro "$gro" gso "$state" tso "$state" >/dev/null
    done
}

# shellcheck source=bench/nginx.sh
source "$here/nginx.sh"
start_nginx
nginx_pids+=("$nginx_pid")
if [[ $tap == on ]]; then
    # A second nginx on the same tmpfs files, at the same address, in the TAP sandbox's server.
    start_nginx "$tap_server_ns" -tap
    nginx_pids+=("$nginx_pid")
fi

# --- one download -----------------------------------------------------------------------------

# run_once PHASE CONTENDER FILE SINK: one measured download of FILE whose body goes to SINK
# (tunstack and curl; smoltcp only counts it), appended to $work/runs.txt.
run_once() {
    local phase=$1 contender=$2 file=$3 sink=$4 stdout=/dev/null bytes ns=$client_ns
    local url=http://$server_ip:$port/$file
    local result=$work/runs/last.txt err=$work/runs/last.err
    local cmd
    case $contender in
        # tunstack writes a file through a temporary name and a rename, so `-o /dev/null` would
        # try to replace /dev/null; its standard output is the way to discard the body.
        tunstack)
            cmd=("$tunstack_bin" fetch --iface tun0 --local-ip 10.77.0.2 -q -o - "$url")
            stdout=$sink
            ;;
        # The same without IFF_VNET_HDR offloads: one 1500-byte packet per read, like smoltcp.
        tunstack-plain)
            cmd=("$tunstack_bin" fetch --iface tun0 --local-ip 10.77.0.2 --no-offload -q -o - "$url")
            stdout=$sink
            ;;
        # TAP mode in the TAP sandbox: a host on br0's segment, 10.77.1.2 through the gateway
        # 10.77.0.1 (ARP-resolved afresh by each process); the same offloads as on tun0.
        tunstack-tap)
            cmd=("$tunstack_bin" fetch --tap --iface tap0 --local-ip 10.77.0.2/24 --gateway 10.77.0.1
                -q -o - "$url")
            stdout=$sink
            ns=$tap_client_ns
            ;;
        smoltcp) cmd=("$smoltcp_bin" --iface tun0 --local-ip 10.77.0.2 --gateway 10.77.0.1 "$url") ;;
        curl) cmd=(curl --silent --show-error --fail --noproxy '*' -o "$sink" "$url") ;;
        *) die "unknown contender $contender" ;;
    esac
    bytes=$(stat -c %s "$work/www/$file")
    rm -f "$result"
    ip netns exec "$ns" "$python" "$here/measure.py" "$result" "$stdout" "$err" \
        "$run_timeout" -- "${cmd[@]}" || true
    if [[ ! -s $result ]]; then
        echo "exit=error" > "$result"
    fi
    echo "phase=$phase contender=$contender bytes=$bytes $(cat "$result")" >> "$work/runs.txt"
    if ! grep -q 'exit=0 ' "$result"; then
        echo "bench: $contender failed ($(cut -d' ' -f1 "$result")): $(tail -c 300 "$err" | tr '\n' ' ')" >&2
        return 1
    fi
}

# rotate ROUND NAMES...: NAMES rotated by ROUND, so no contender always goes first.
rotate() {
    local round=$1
    shift
    local names=("$@") count=$# i
    for ((i = 0; i < count; i++)); do
        echo "${names[$(((round + i) % count))]}"
    done
}

# --- check that every contender receives the whole file (not timed) ---------------------------

set_offloads "$offloads"
check=$work/check.bin
echo "bench: checking each contender receives the whole $size_arg file (also a warm-up)"
for contender in "${contenders[@]}"; do
    run_once check "$contender" big.bin "$check" || die "$contender could not download the file"
    case $contender in
        smoltcp) got=$(grep -o '^smoltcp: [0-9]* body bytes' "$work/runs/last.err" | cut -d' ' -f2) ;;
        *) got=$(stat -c %s "$check") ;;
    esac
    [[ $got == "$size" ]] || die "$contender received $got of $size bytes"
    if [[ $contender != smoltcp ]]; then
        cmp -s "$check" "$work/www/big.bin" || die "$contender received different bytes"
        rm -f "$check"
    fi
    echo "  $contender: $got bytes, ok"
done

# --- throughput -------------------------------------------------------------------------------

failures=0
for ((round = 0; round < rounds; round++)); do
    line="bench: round $((round + 1))/$rounds:"
    for contender in $(rotate "$round" "${contenders[@]}"); do
        if run_once throughput "$contender" big.bin /dev/null; then
            gbits=$(tail -n1 "$work/runs.txt" | sed -E 's/.*wall=([0-9.]+).*/\1/' \
                | awk -v b="$size" '{ printf "%.2f", b * 8 / $1 / 1e9 }')
            line+=" $contender ${gbits} Gbit/s"
        else
            line+=" $contender FAILED"
            failures=$((failures + 1))
        fi
    done
    echo "$line"
done

# --- start-up ---------------------------------------------------------------------------------

# Each fetch attaches to tun0 afresh: right after attaching, the kernel may drop the first
# datagrams it routes to the device, and a lost SYN-ACK would add a whole 1 s initial RTO.
if [[ $start_runs -gt 0 ]]; then
    start_failures=0
    for ((run = 0; run < start_runs; run++)); do
        run_once start tunstack small.bin /dev/null || start_failures=$((start_failures + 1))
    done
    failures=$((failures + start_failures))
    slowest=$(grep '^phase=start .* exit=0 ' "$work/runs.txt" | sed -E 's/.*wall=([0-9.]+).*/\1/' \
        | sort -n | tail -n1)
    echo "bench: $start_runs start-up fetches of 4 KiB, slowest ${slowest:-?} s, $start_failures failed"
fi

# --- loss -------------------------------------------------------------------------------------

# Loss is injected where the segments arrive, never where they leave: a drop in the sender's own
# OUTPUT hook is reported back to its TCP as a local error and retried, which is not loss. Data
# (server to client) is dropped on arrival in the client namespace, before routing, so both the
# forwarded tun0 path and curl's local delivery see it; ACKs are dropped on arrival at the
# server. Offloads are off so that each segment is dropped on its own.
set_loss() {
    local rate=$1
    for ns_if in "$client_ns:$name-c" "$server_ns:$name-s"; do
        local ns=${ns_if%%:*} iface=${ns_if#*:}
        ip netns exec "$ns" nft delete table ip tunstack_bench 2>/dev/null || true
        ip netns exec "$ns" nft -f - <<EOF
table ip tunstack_bench {
    chain loss {
        type filter hook prerouting priority raw; policy accept;
        iifname "$iface" numgen random mod 100 < $rate counter drop
    }
}
EOF
    done
}

# dropped NAMESPACE: how many segments the loss rule in NAMESPACE has dropped so far.
dropped() { ip netns exec "$1" nft list table ip tunstack_bench | grep -o 'packets [0-9]*' | cut -d' ' -f2; }

if [[ -n ${loss_rates// /} ]]; then
    set_offloads off
    for rate in $loss_rates; do
        set_loss "$rate"
        for ((round = 0; round < loss_rounds; round++)); do
            line="bench: ${rate}% loss, round $((round + 1))/$loss_rounds:"
            for contender in $(rotate "$round" "${loss_list[@]}"); do
                if run_once "loss$rate" "$contender" loss.bin /dev/null; then
                    wall=$(tail -n1 "$work/runs.txt" | sed -E 's/.*wall=([0-9.]+).*/\1/')
                    line+=" $contender ${wall} s"
                else
                    line+=" $contender FAILED"
                    failures=$((failures + 1))
                fi
            done
            echo "$line"
        done
        echo "bench: ${rate}% loss: dropped $(dropped "$client_ns") segments towards the client," \
            "$(dropped "$server_ns") towards the server"
    done
    for ns in "$client_ns" "$server_ns"; do
        ip netns exec "$ns" nft delete table ip tunstack_bench
    done
fi

# --- report -----------------------------------------------------------------------------------

smoltcp_version=$(awk '/^name = "smoltcp"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$here/smoltcp-client/Cargo.lock")
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "background_load=$background_load"
    echo "size=$size"
    echo "rounds=$rounds"
    echo "veth_mtu=$veth_mtu"
    echo "tun_mtu=$tun_mtu"
    echo "offloads=$offloads"
    echo "tap=$tap"
    echo "loss_size=$loss_size"
    echo "loss_rates=$loss_rates"
    echo "loss_rounds=$loss_rounds"
    echo "start_runs=$start_runs"
    echo "tunstack=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "smoltcp=$smoltcp_version"
    echo "curl=$(curl --version | head -n1 | cut -d' ' -f1-2)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')"
} > "$work/params.txt"
"$python" "$here/report.py" "$work/params.txt" "$work/runs.txt" "$out"
echo
cat "$out"
echo
echo "bench: written to $out"
if [[ $failures -gt 0 ]]; then
    die "$failures download(s) failed; see the table"
fi
