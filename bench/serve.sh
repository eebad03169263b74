#!/usr/bin/env bash
# Server benchmark: `tunstack serve` against nginx (the kernel's TCP), each serving the same files
# to curl and ab (kernel TCP) on the other side of one veth pair.
#
#   NAME-client namespace                                  NAME-server namespace
#   tunstack serve 10.77.0.2:80 ── tun0 ─ forwarding ─┐
#                                                      ├── veth ── curl, ab → http://10.77.0.2/
#   curl, ab (kernel TCP) 10.77.1.1 → nginx ──────────┘            nginx 10.77.1.2:8081
#
# tunstack's clients cross the veth and the TUN hop (forwarding in NAME-client); nginx's cross
# the veth only, kernel TCP at both ends.
#
# usage: bench/serve.sh [SIZE]        (needs root; `sudo just bench serve [SIZE]`)
#
# Everything is a parameter from the environment (the defaults are in brackets):
#   BENCH_SIZE            size of the file for the throughput runs, e.g. 256M; SIZE wins [1G]
#   BENCH_ROUNDS          rounds of the throughput and requests/s runs; each round runs both
#                         servers once, alternating which goes first [5]
#   BENCH_VETH_MTU        MTU of the veth pair [1500]
#   BENCH_TUN_MTU         MTU of tun0 [1500]
#   BENCH_OFFLOADS        on|off: TSO/GSO on the veth pair for the throughput and requests/s
#                         runs (on = a veth's default) [on]
#   BENCH_CC              tunstack serve's congestion control, cubic|newreno [cubic]
#   BENCH_KERNEL_CC       nginx's (the server namespace kernel's) congestion control; the same
#                         algorithm as tunstack by default, so the loss runs compare like with
#                         like (a host default of bbr does not back off on random loss) [BENCH_CC,
#                         with newreno meaning the kernel's reno]
#   BENCH_AB_REQUESTS     requests per ab run (ab -n) of the 4 KiB file [10000]
#   BENCH_AB_CONCURRENCY  ab's concurrent connections (ab -c) [50]
#   BENCH_LOSS_SIZE       size of the file for the loss runs [64M]
#   BENCH_LOSS_RATES      drop percentages, each in both directions; empty skips the loss runs [1 5]
#   BENCH_LOSS_ROUNDS     rounds per loss rate [3]
#   BENCH_TIMEOUT         seconds before one throughput download or one ab run is given up [300]
#   BENCH_LOSS_TIMEOUT    seconds before one loss download is given up (curl --max-time); such
#                         a run is reported as timed out, not dropped [120]
#   BENCH_NAME            sandbox name (namespaces NAME-client, NAME-server) [tsserve]
#   BENCH_OUT             the markdown report [bench/serve-results.md]
#
# The script builds tunstack, makes its own sandbox with setup/sandbox, and removes it, the
# servers it started (by PID) and its temporary files on any exit. No traffic leaves the two
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
cc=${BENCH_CC:-cubic}
kernel_cc=${BENCH_KERNEL_CC:-$([[ ${BENCH_CC:-cubic} == newreno ]] && echo reno || echo cubic)}
ab_requests=${BENCH_AB_REQUESTS:-10000}
ab_concurrency=${BENCH_AB_CONCURRENCY:-50}
loss_size_arg=${BENCH_LOSS_SIZE:-64M}
loss_rates=${BENCH_LOSS_RATES-1 5}
loss_rounds=${BENCH_LOSS_ROUNDS:-3}
run_timeout=${BENCH_TIMEOUT:-300}
loss_timeout=${BENCH_LOSS_TIMEOUT:-120}
name=${BENCH_NAME:-tsserve}
out=${BENCH_OUT:-$here/serve-results.md}

client_ns=$name-client
server_ns=$name-server
stack_ip=10.77.0.2
server_ip=10.77.1.2
port=8081
contenders=(tunstack nginx)

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
for value in rounds veth_mtu tun_mtu ab_requests ab_concurrency loss_rounds run_timeout loss_timeout; do
    [[ ${!value} =~ ^[1-9][0-9]*$ ]] || die "$value must be a positive integer, not '${!value}'"
done
[[ $ab_concurrency -le $ab_requests ]] || die "BENCH_AB_CONCURRENCY must not exceed BENCH_AB_REQUESTS"
for rate in $loss_rates; do
    [[ $rate =~ ^[0-9]+$ && $rate -lt 100 ]] || die "loss rates are percentages 0-99, not '$rate'"
done
[[ $offloads == on || $offloads == off ]] || die "BENCH_OFFLOADS is on or off, not '$offloads'"
[[ $cc == cubic || $cc == newreno ]] || die "BENCH_CC is cubic or newreno, not '$cc'"
[[ $size -gt 0 && $loss_size -gt 0 ]] || die "sizes must be positive"

# --- prerequisites ----------------------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "needs root to create network namespaces: sudo just bench serve"
command -v cargo >/dev/null 2>&1 || die "needs cargo (a Rust toolchain) to build tunstack"
"$repo/setup/packages" iproute2:ip nginx-light:nginx curl:curl nftables:nft ethtool:ethtool \
    apache2-utils:ab coreutils:timeout python3:python3 \
    || die "could not install what the benchmark needs (see above)"
python=/usr/bin/python3
[[ -x $python ]] || python=$(python3 -c 'import sys; print(sys.executable)')

# --- build ------------------------------------------------------------------------------------

echo "bench: building tunstack (release)"
(cd "$repo" && cargo build --release --quiet)
tunstack_bin=$repo/target/release/tunstack

# --- sandbox, files, servers ------------------------------------------------------------------

work=""
mounted=no
nginx_pid=""
serve_pid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $serve_pid ]]; then stop_pid "$serve_pid"; fi
    if [[ -n $nginx_pid ]]; then stop_pid "$nginx_pid"; fi
    "$repo/setup/sandbox" down "$name" || true
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
    mount -t tmpfs -o "size=$((size + loss_size + (64 << 20)))" tunstack-bench "$work"
    mounted=yes
fi
chmod 755 "$work"
mkdir -m 755 "$work/www" "$work/nginx-temp" "$work/runs"

# How busy the machine already is (other work skews every figure).
measure_background_load
echo "bench: background load before starting: ${background_load}% of all cores busy" \
    "(load average $(cut -d' ' -f1-3 /proc/loadavg))"

echo "bench: writing $size_arg, $loss_size_arg and 4 KiB random files to tmpfs"
head -c "$size" /dev/urandom > "$work/www/big.bin"
head -c "$loss_size" /dev/urandom > "$work/www/loss.bin"
head -c 4096 /dev/urandom > "$work/www/small.bin"
chmod 644 "$work/www/"*.bin
big_sum=$(sha256sum < "$work/www/big.bin" | cut -d' ' -f1)

"$repo/setup/sandbox" up "$name"
ip -n "$client_ns" link set "$name-c" mtu "$veth_mtu"
ip -n "$server_ns" link set "$name-s" mtu "$veth_mtu"
ip -n "$client_ns" link set tun0 mtu "$tun_mtu"
# A namespace may only make one of the host's tcp_allowed_congestion_control its default; when
# the wanted one is not among them, a route may still name it (`congctl`, as root in the
# namespace): nginx's clients are on the veth's own subnet, so its connected route carries it.
if ! ip netns exec "$server_ns" sysctl -qw "net.ipv4.tcp_congestion_control=$kernel_cc" 2>/dev/null; then
    if ! ip -n "$server_ns" route replace 10.77.1.0/24 dev "$name-s" proto kernel scope link \
        src 10.77.1.2 congctl "$kernel_cc" 2>/dev/null; then
        actual=$(ip netns exec "$server_ns" sysctl -n net.ipv4.tcp_congestion_control)
        echo "bench: cannot give nginx '$kernel_cc' (neither as the namespace's default nor on its route); nginx keeps '$actual', so its loss rows are not like for like" >&2
        kernel_cc="$actual (wanted $kernel_cc: not available)"
    fi
fi

# Segmentation offloads on the veth pair: `on` is a veth's default (GRO stays off, its default).
set_offloads() {
    local state=$1 gro=off
    ip netns exec "$client_ns" ethtool -K "$name-c" gro "$gro" gso "$state" tso "$state" >/dev/null
    ip netns exec "$server_ns" ethtool -K "$name-s" gro "$gro" gso "$state" tso "$state" >/dev/null
}

# shellcheck source=bench/nginx.sh
source "$here/nginx.sh"
start_nginx

# tunstack serve on tun0 in NAME-client; `ip netns exec` execs it in place, so $! is its PID.
# Ready once a connection from NAME-server (across the veth and the TUN hop) is accepted.
ip netns exec "$client_ns" "$tunstack_bin" serve -q --cc "$cc" --iface tun0 --local-ip "$stack_ip" \
    "$work/www" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
ready=no
for _ in $(seq 50); do
    if ip netns exec "$server_ns" timeout 1 bash -c "exec 3<>/dev/tcp/$stack_ip/80" 2>/dev/null; then
        ready=yes
        break
    fi
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ $ready != yes ]]; then
    cat "$work/serve.err" >&2 || true
    die "tunstack serve did not accept within 5 s"
fi

# --- helpers ----------------------------------------------------------------------------------

# Where each server's clients run, and the URL of FILE on it.
client_of() { case $1 in tunstack) echo "$server_ns" ;; nginx) echo "$client_ns" ;; esac; }
url_of() {
    case $1 in
        tunstack) echo "http://$stack_ip/$2" ;;
        nginx) echo "http://$server_ip:$port/$2" ;;
    esac
}

# server_ticks CONTENDER: CPU time (user+sys, in clock ticks as /proc/PID/stat has them) used so
# far by the server's processes: tunstack serve, or nginx's master and its worker(s).
server_ticks() {
    local pids=() children=() pid total=0 ticks
    case $1 in
        tunstack) pids=("$serve_pid") ;;
        nginx)
            pids=("$nginx_pid")
            read -r -a children < "/proc/$nginx_pid/task/$nginx_pid/children" || true
            pids+=("${children[@]}")
            ;;
    esac
    for pid in "${pids[@]}"; do
        # Fields 14 and 15 (utime, stime), counted after the ")" that ends the command name.
        ticks=$(sed -E 's/.*\) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || ticks=0
        total=$((total + ${ticks:-0}))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)

# download PHASE CONTENDER FILE MAX_TIME: one curl download of FILE, body discarded, appended
# to $work/runs.txt with curl's exit status (28: --max-time hit), size and time, the server's
# CPU seconds and the whole machine's busy CPU seconds over it.
download() {
    local phase=$1 contender=$2 file=$3 max_time=$4 status=0 result cpu0 cpu1 b0 b1 t0 t1
    local err=$work/runs/curl.err
    cpu0=$(server_ticks "$contender")
    read -r b0 t0 < <(busy_ticks)
    result=$(ip netns exec "$(client_of "$contender")" curl --silent --show-error --noproxy '*' \
        --max-time "$max_time" -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
        "$(url_of "$contender" "$file")" 2>"$err") || status=$?
    read -r b1 t1 < <(busy_ticks)
    cpu1=$(server_ticks "$contender")
    read -r code bytes seconds <<< "${result:-000 0 0}"
    if [[ $status -eq 0 && $code != 200 ]]; then status=http$code; fi
    if [[ $status == 0 && $bytes != "$(stat -c %s "$work/www/$file")" ]]; then status=short; fi
    echo "phase=$phase contender=$contender exit=$status bytes=$bytes time=$seconds" \
        "server_cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" \
        "busy=$(awk -v t=$((b1 - b0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" >> "$work/runs.txt"
    if [[ $status != 0 ]]; then
        echo "bench: $contender $phase download failed (curl exit $status, $bytes bytes in $seconds s):" \
            "$(tail -c 300 "$err" | tr '\n' ' ')" >&2
        return 1
    fi
}

# bench_ab CONTENDER KEEPALIVE(yes|no): one ab run of the 4 KiB file, appended to runs.txt.
bench_ab() {
    local contender=$1 keepalive=$2 status=0 log=$work/runs/ab.txt flags=()
    if [[ $keepalive == yes ]]; then flags=(-k); fi
    ip netns exec "$(client_of "$contender")" timeout -k 5 "$run_timeout" ab -q "${flags[@]}" \
        -n "$ab_requests" -c "$ab_concurrency" "$(url_of "$contender" small.bin)" \
        >"$log" 2>&1 || status=$?
    local rps complete failed non2xx longest
    rps=$(awk '/^Requests per second:/ { print $4 }' "$log")
    complete=$(awk '/^Complete requests:/ { print $3 }' "$log")
    failed=$(awk '/^Failed requests:/ { print $3 }' "$log")
    non2xx=$(awk '/^Non-2xx responses:/ { print $3 }' "$log")
    longest=$(awk '$1 == "100%" { print $2 }' "$log")
    echo "phase=ab contender=$contender keepalive=$keepalive exit=$status rps=${rps:-0}" \
        "complete=${complete:-0} failed=${failed:-?} non2xx=${non2xx:-0} longest_ms=${longest:-?}" \
        >> "$work/runs.txt"
    if [[ $status -ne 0 || ${failed:-?} != 0 || ${non2xx:-0} != 0 ]]; then
        echo "bench: $contender ab ${flags[*]} exit $status," \
            "failed ${failed:-?}, non-2xx ${non2xx:-0}: $(grep -v '^$' "$log" | grep -iE 'fail|error|reset|timeout|apr_' | head -n 8 | tr '\n' ' ')" >&2
        grep -A4 '^Failed requests:' "$log" >&2 || true
        return 1
    fi
}

# order ROUND: both contenders, the first one alternating with the round.
order() {
    if (( $1 % 2 == 0 )); then echo "${contenders[@]}"; else echo "${contenders[1]} ${contenders[0]}"; fi
}

field() { tail -n1 "$work/runs.txt" | grep -oE "(^| )$1=[^ ]*" | cut -d= -f2; }

# --- check that both servers send the whole file (not timed) ----------------------------------

set_offloads "$offloads"
echo "bench: checking each server sends the whole $size_arg file intact (also a warm-up)"
for contender in "${contenders[@]}"; do
    got=$(ip netns exec "$(client_of "$contender")" curl --silent --show-error --fail --noproxy '*' \
        --max-time "$run_timeout" "$(url_of "$contender" big.bin)" | sha256sum | cut -d' ' -f1)
    [[ $got == "$big_sum" ]] || die "$contender sent different bytes (sha256 $got, want $big_sum)"
    echo "  $contender: sha256 matches"
done

# --- throughput -------------------------------------------------------------------------------

failures=0
for ((round = 0; round < rounds; round++)); do
    line="bench: $size_arg round $((round + 1))/$rounds:"
    for contender in $(order "$round"); do
        if download throughput "$contender" big.bin "$run_timeout"; then
            line+=" $contender $(awk -v b="$(field bytes)" -v s="$(field time)" \
                'BEGIN { printf "%.2f", b * 8 / s / 1e9 }') Gbit/s"
        else
            line+=" $contender FAILED"
            failures=$((failures + 1))
        fi
    done
    echo "$line"
done

# --- loss -------------------------------------------------------------------------------------

# Per-datagram loss, both directions, chosen by the kernel (nftables numgen), each where the
# traffic is wire-sized: tunstack's segments are dropped on arrival in NAME-server (input) and
# its client's ACKs as they leave NAME-server (output), tcp port 80; with offloads tunstack
# writes 64 KiB super-segments that the kernel forwards whole and cuts only at the veth, so a
# rule on NAME-client's forward path would drop 45 segments at a time. nginx's segments are
# dropped on arrival in NAME-client (input) and its client's ACKs as they leave (output), tcp
# port 8081. A pure ACK that fails to leave is not retried, so it is lost as on a wire. The
# veth's offloads are off here, so every rule sees one wire segment at a time.
set_loss() {
    local rate=$1
    ip netns exec "$client_ns" nft delete table inet tunstack_serve_bench 2>/dev/null || true
    ip netns exec "$server_ns" nft delete table inet tunstack_serve_bench 2>/dev/null || true
    ip netns exec "$server_ns" nft -f - <<EOF
table inet tunstack_serve_bench {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "$name-s" tcp sport 80 numgen random mod 100 < $rate counter drop comment "tunstack_data"
    }
    chain output {
        type filter hook output priority 0; policy accept;
        oifname "$name-s" tcp dport 80 numgen random mod 100 < $rate counter drop comment "tunstack_acks"
    }
}
EOF
    ip netns exec "$client_ns" nft -f - <<EOF
table inet tunstack_serve_bench {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "$name-c" tcp sport $port numgen random mod 100 < $rate counter drop comment "nginx_data"
    }
    chain output {
        type filter hook output priority 0; policy accept;
        oifname "$name-c" tcp dport $port numgen random mod 100 < $rate counter drop comment "nginx_acks"
    }
}
EOF
}

# dropped COMMENT: how many datagrams the rule with that comment has dropped so far.
dropped() {
    local ns=$client_ns
    [[ $1 == tunstack_* ]] && ns=$server_ns
    ip netns exec "$ns" nft list table inet tunstack_serve_bench \
        | grep "comment \"$1\"" | grep -o 'packets [0-9]*' | cut -d' ' -f2
}

if [[ -n ${loss_rates// /} ]]; then
    set_offloads off
    for rate in $loss_rates; do
        set_loss "$rate"
        for ((round = 0; round < loss_rounds; round++)); do
            line="bench: $loss_size_arg at ${rate}% loss, round $((round + 1))/$loss_rounds:"
            for contender in $(order "$round"); do
                if download "loss$rate" "$contender" loss.bin "$loss_timeout"; then
                    line+=" $contender $(field time) s"
                elif [[ $(field exit) == 28 ]]; then
                    line+=" $contender TIMED OUT after ${loss_timeout} s ($(field bytes) bytes)"
                    failures=$((failures + 1))
                else
                    line+=" $contender FAILED"
                    failures=$((failures + 1))
                fi
            done
            echo "$line"
        done
        counts="rate=$rate"
        for rule in tunstack_data tunstack_acks nginx_data nginx_acks; do
            counts+=" $rule=$(dropped "$rule")"
        done
        echo "$counts" >> "$work/drops.txt"
        echo "bench: ${rate}% loss dropped: $counts"
    done
    ip netns exec "$client_ns" nft delete table inet tunstack_serve_bench
    ip netns exec "$server_ns" nft delete table inet tunstack_serve_bench
fi

# --- requests per second ----------------------------------------------------------------------

# After the loss runs, so that the TIME-WAIT connections the runs without keep-alive leave at the
# server (60 s at tunstack) do not weigh on those; keep-alive first for the same reason.
set_offloads "$offloads"
for keepalive in yes no; do
    kflag=""
    if [[ $keepalive == yes ]]; then kflag=" -k"; fi
    for ((round = 0; round < rounds; round++)); do
        line="bench: ab -c $ab_concurrency -n $ab_requests$kflag"
        line+=" 4 KiB, round $((round + 1))/$rounds:"
        for contender in $(order "$round"); do
            if bench_ab "$contender" "$keepalive"; then
                line+=" $contender $(field rps) req/s (slowest $(field longest_ms) ms)"
            else
                line+=" $contender FAILED ($(field failed) failed, exit $(field exit))"
                failures=$((failures + 1))
            fi
        done
        echo "$line"
    done
done

# --- stop tunstack serve and see it exit cleanly ----------------------------------------------

# peak_rss_kib PID: the process's peak resident set (VmHWM), in KiB.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
serve_rss=$(peak_rss_kib "$serve_pid")
nginx_rss=$(peak_rss_kib "$nginx_pid")
read -r -a nginx_children < "/proc/$nginx_pid/task/$nginx_pid/children" || true
for pid in "${nginx_children[@]}"; do nginx_rss="$nginx_rss+$(peak_rss_kib "$pid")"; done
echo "bench: peak RSS: tunstack serve ${serve_rss} KiB, nginx (master+workers) ${nginx_rss} KiB"

kill -TERM "$serve_pid" 2>/dev/null || true
serve_exit=timeout
for _ in $(seq 100); do
    if ! kill -0 "$serve_pid" 2>/dev/null; then
        serve_exit=0
        wait "$serve_pid" || serve_exit=$?
        break
    fi
    sleep 0.1
done
if [[ $serve_exit == timeout ]]; then stop_pid "$serve_pid"; fi
serve_pid=""
echo "bench: tunstack serve after SIGTERM: exit $serve_exit"
if [[ -s $work/serve.err ]]; then
    echo "bench: tunstack serve's standard error (last lines):" >&2
    tail -n 5 "$work/serve.err" >&2
fi

# --- report -----------------------------------------------------------------------------------

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "background_load=$background_load"
    echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "size=$size"
    echo "rounds=$rounds"
    echo "veth_mtu=$veth_mtu"
    echo "tun_mtu=$tun_mtu"
    echo "offloads=$offloads"
    echo "cc=$cc"
    echo "kernel_cc=$kernel_cc"
    echo "ab_requests=$ab_requests"
    echo "ab_concurrency=$ab_concurrency"
    echo "loss_size=$loss_size"
    echo "loss_rates=$loss_rates"
    echo "loss_rounds=$loss_rounds"
    echo "loss_timeout=$loss_timeout"
    echo "serve_exit=$serve_exit"
    echo "serve_rss_kib=$serve_rss"
    echo "nginx_rss_kib=$nginx_rss"
    echo "tunstack=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "curl=$(curl --version | head -n1 | cut -d' ' -f1-2)"
    echo "ab=$(ab -V 2>&1 | head -n1 | sed -E 's/.*Version ([^ ]+).*/ab \1/')"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')"
} > "$work/params.txt"
touch "$work/drops.txt" "$work/runs.txt"
"$python" "$here/serve_report.py" "$work/params.txt" "$work/runs.txt" "$work/drops.txt" "$out"
echo
cat "$out"
echo
echo "bench: written to $out"
if [[ $failures -gt 0 ]]; then
    die "$failures run(s) failed or timed out; see the report"
fi
if [[ $serve_exit != 0 ]]; then
    die "tunstack serve did not exit 0 on SIGTERM (exit $serve_exit)"
fi
