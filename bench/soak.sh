#!/usr/bin/env bash
# Heavy-loss soak: tunstack against the kernel's own TCP (curl), over the same random loss.
#
#   NAME-client namespace                                              NAME-server namespace
#   tunstack 10.77.0.2 ── tun0 ─ forwarding ─┐   loss on data  loss on ACKs
#   curl     10.77.1.1 ──────────────────────┴── NAME-c ingress ─ NAME-s ingress ── nginx 10.77.1.2:8081
#
# usage: bench/soak.sh          (needs root; `sudo just soak`)
#
# Parameters from the environment (defaults in brackets):
#   SOAK_CASES   SIZE@PERCENT pairs: a download of SIZE with PERCENT% random loss in each
#                direction [8M@20 64M@10]
#   SOAK_RUNS    runs per contender per case; tunstack and curl alternate, who goes first
#                alternating too [30]
#   SOAK_LIMIT   seconds one download may take; it is then killed (by its process group) and
#                counted as a failure at this time [120]
#   SOAK_BUDGET  seconds for all the runs together: once spent, no new pair of runs is started
#                and the report says how many ran [3600]
#   SOAK_PCAP    on|off: capture TCP headers (tcpdump -s 128) on NAME-c during every run [on]
#   SOAK_KEEP_SLOWEST  besides every failed run, keep the captures, stderr and command lines of
#                this many slowest successful runs per contender and case, for the tails [3]
#   SOAK_TUNSTACK_ARGS  extra arguments for tunstack fetch, e.g. "-v" or "--pcap FILE" []
#   SOAK_NAME    sandbox name (namespaces NAME-client, NAME-server) [tssoak]
#   SOAK_OUT     the markdown report [bench/soak-results.md]
#   SOAK_KEEP    where the kept runs' captures, logs and command lines go (and runs.txt)
#                [target/soak/YYYYmmdd-HHMMSS]
#
# Where the loss is: one netdev `ingress` chain on each veth end, so each segment is judged
# exactly once, on arrival, by the same rule for both contenders: data (from nginx) on arrival
# in the client namespace, before routing decides between tun0 (tunstack, forwarded) and local
# delivery (curl); ACKs and requests on arrival in the server namespace. Not on egress: a drop in
# the sending host's own egress path is reported back to its TCP (NET_XMIT_DROP) and the segment
# is sent again at once, which is not loss for curl but would be for tunstack's forwarded
# datagrams. Offloads (GRO/GSO/TSO) are off on both veth ends so every rule sees one wire-sized
# segment. Per-contender counters (seen and dropped, each direction) are read around every run.
#
# Everything stays inside the two namespaces (10.77.x). The sandbox, nginx and tcpdump (all
# ended by their PIDs) and the temporary files go away on any exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/common.sh
source "$here/common.sh"

cases_arg=${SOAK_CASES:-8M@20 64M@10}
runs=${SOAK_RUNS:-30}
limit=${SOAK_LIMIT:-120}
budget=${SOAK_BUDGET:-3600}
pcap=${SOAK_PCAP:-on}
keep_slowest=${SOAK_KEEP_SLOWEST:-3}
tunstack_extra=${SOAK_TUNSTACK_ARGS:-}
name=${SOAK_NAME:-tssoak}
out=${SOAK_OUT:-$here/soak-results.md}
stamp=$(date -u +%Y%m%d-%H%M%S)
keep=${SOAK_KEEP:-$repo/target/soak/$stamp}

client_ns=$name-client
server_ns=$name-server
client_if=$name-c
server_if=$name-s
server_ip=10.77.1.2
port=8081
tunstack_ip=10.77.0.2
curl_ip=10.77.1.1
table=tunstack_soak

die() { echo "soak: $*" >&2; exit 1; }

to_bytes() {
    local text=$1 number unit
    [[ $text =~ ^([0-9]+)([KMG]?)(i?B)?$ ]] || die "bad size '$text' (use e.g. 8M, 64M)"
    number=${BASH_REMATCH[1]}
    unit=${BASH_REMATCH[2]}
    case $unit in
        K) echo $((number << 10)) ;;
        M) echo $((number << 20)) ;;
        G) echo $((number << 30)) ;;
        *) echo "$number" ;;
    esac
}

for value in runs limit budget; do
    [[ ${!value} =~ ^[1-9][0-9]*$ ]] || die "$value must be a positive integer, not '${!value}'"
done
[[ $keep_slowest =~ ^[0-9]+$ ]] || die "SOAK_KEEP_SLOWEST must be a number, not '$keep_slowest'"
[[ $pcap == on || $pcap == off ]] || die "SOAK_PCAP is on or off, not '$pcap'"
read -r -a cases <<< "$cases_arg"
[[ ${#cases[@]} -gt 0 ]] || die "SOAK_CASES is empty"
for case in "${cases[@]}"; do
    [[ $case =~ ^([0-9]+[KMG]?)@([0-9]+)$ ]] || die "a case is SIZE@PERCENT (e.g. 8M@20), not '$case'"
    [[ ${BASH_REMATCH[2]} -lt 100 ]] || die "loss is a percentage 0-99, not '${BASH_REMATCH[2]}'"
    to_bytes "${BASH_REMATCH[1]}" >/dev/null
done
read -r -a tunstack_extra_args <<< "$tunstack_extra"

# --- prerequisites ----------------------------------------------------------------------------

[[ $EUID -eq 0 ]] || die "needs root to create network namespaces: sudo just soak"
command -v cargo >/dev/null 2>&1 || die "needs cargo (a Rust toolchain) to build tunstack"
"$repo/setup/packages" iproute2:ip nginx-light:nginx curl:curl nftables:nft ethtool:ethtool \
    tcpdump:tcpdump coreutils:timeout time:/usr/bin/time python3:python3 \
    || die "could not install what the soak needs (see above)"
/usr/bin/time --version 2>&1 | grep -q GNU || die "/usr/bin/time is not GNU time (Debian package: time)"
python=/usr/bin/python3
[[ -x $python ]] || python=$(python3 -c 'import sys; print(sys.executable)')

echo "soak: building tunstack (release)"
(cd "$repo" && cargo build --release --quiet)
tunstack_bin=$repo/target/release/tunstack

# --- sandbox, files, nginx; cleanup -----------------------------------------------------------

work=""
nginx_pid=""
tcpdump_pid=""
measure_pid=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_pid "$measure_pid"
    stop_pid "$tcpdump_pid" INT
    stop_pid "$nginx_pid"
    "$repo/setup/sandbox" down "$name" || true
    [[ -n $work ]] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
    work=$(mktemp -d /dev/shm/tunstack-soak.XXXXXX)
else
    work=$(mktemp -d /tmp/tunstack-soak.XXXXXX)
fi
chmod 755 "$work"
mkdir -m 755 "$work/www" "$work/nginx-temp" "$work/run" "$work/done"
mkdir -p "$keep"

# How busy the machine already is (other work skews every figure).
measure_background_load
uptime_before=$(uptime)
echo "soak: before starting: ${background_load}% of all cores busy; uptime: $uptime_before"

for case in "${cases[@]}"; do
    size_text=${case%@*}
    file=$work/www/$size_text.bin
    [[ -e $file ]] || head -c "$(to_bytes "$size_text")" /dev/urandom > "$file"
done
chmod 644 "$work/www/"*.bin

"$repo/setup/sandbox" up "$name"
# Per-packet loss: no segmentation or receive offloads on either veth end (setup/sandbox turns
# them off already when ethtool is there; this makes it a requirement and checks it).
for ns_if in "$client_ns:$client_if" "$server_ns:$server_if"; do
    ns=${ns_if%%:*} iface=${ns_if#*:}
    ip netns exec "$ns" ethtool -K "$iface" gro off gso off tso off >/dev/null
    offload_state=$(ip netns exec "$ns" ethtool -k "$iface" \
        | grep -E '^(generic-receive-offload|generic-segmentation-offload|tcp-segmentation-offload):')
    if grep -q ': on' <<< "$offload_state"; then
        die "offloads still on on $iface: $offload_state"
    fi
done
offload_note="gro, gso, tso off on $client_if and $server_if"

# shellcheck source=bench/nginx.sh
source "$here/nginx.sh"
start_nginx

# --- loss -------------------------------------------------------------------------------------

# set_loss PERCENT: (re)install both ingress chains; per contender, one counting rule and one
# dropping rule per direction, commented DIRECTION_WHAT_CONTENDER for the counters.
set_loss() {
    local rate=$1 ns iface dir match_data match_ack
    for ns in "$client_ns" "$server_ns"; do
        ip netns exec "$ns" nft delete table netdev "$table" 2>/dev/null || true
    done
    ip netns exec "$client_ns" nft -f - <<EOF
table netdev $table {
    chain data {
        type filter hook ingress device "$client_if" priority -500; policy accept;
        ip saddr $server_ip ip daddr $tunstack_ip tcp sport $port counter comment "data_seen_tunstack"
        ip saddr $server_ip ip daddr $tunstack_ip tcp sport $port numgen random mod 100 < $rate counter drop comment "data_drop_tunstack"
        ip saddr $server_ip ip daddr $curl_ip tcp sport $port counter comment "data_seen_curl"
        ip saddr $server_ip ip daddr $curl_ip tcp sport $port numgen random mod 100 < $rate counter drop comment "data_drop_curl"
    }
}
EOF
    ip netns exec "$server_ns" nft -f - <<EOF
table netdev $table {
    chain ack {
        type filter hook ingress device "$server_if" priority -500; policy accept;
        ip saddr $tunstack_ip ip daddr $server_ip tcp dport $port counter comment "ack_seen_tunstack"
        ip saddr $tunstack_ip ip daddr $server_ip tcp dport $port numgen random mod 100 < $rate counter drop comment "ack_drop_tunstack"
        ip saddr $curl_ip ip daddr $server_ip tcp dport $port counter comment "ack_seen_curl"
        ip saddr $curl_ip ip daddr $server_ip tcp dport $port numgen random mod 100 < $rate counter drop comment "ack_drop_curl"
    }
}
EOF
}

# counters CONTENDER: "data_seen data_drop ack_seen ack_drop" so far for CONTENDER.
counters() {
    local contender=$1 listing
    listing=$(ip netns exec "$client_ns" nft list table netdev "$table"; ip netns exec "$server_ns" nft list table netdev "$table")
    local tag values=()
    for tag in data_seen data_drop ack_seen ack_drop; do
        values+=("$(grep "comment \"${tag}_$contender\"" <<< "$listing" | sed -nE 's/.*counter packets ([0-9]+) .*/\1/p')")
    done
    echo "${values[*]}"
}

# --- capture ----------------------------------------------------------------------------------

# start_capture FILE: tcpdump on the client's veth end, headers only, both directions; it sees
# each segment before the loss rules judge it (taps come before the ingress hook on the way in,
# and ACKs are judged only on the server's side). Waits until tcpdump says it is listening.
start_capture() {
    local file=$1 log=$work/run/tcpdump.log
    [[ $pcap == on ]] || return 0
    ip netns exec "$client_ns" tcpdump -i "$client_if" -n -s 128 -B 16384 -w "$file" \
        "tcp port $port" >/dev/null 2>"$log" &
    tcpdump_pid=$!
    for _ in $(seq 100); do
        grep -q 'listening on' "$log" 2>/dev/null && return 0
        kill -0 "$tcpdump_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$log" >&2
    die "tcpdump did not start listening within 5 s"
}

stop_capture() {
    [[ $pcap == on ]] || return 0
    stop_pid "$tcpdump_pid" INT
    tcpdump_pid=""
}

# --- one download -----------------------------------------------------------------------------

runs_file=$work/runs.txt
slow_file=$work/slow.txt
: > "$runs_file"
: > "$slow_file"
failed_total=0

# run_once CASE_INDEX RUN CONTENDER SIZE_TEXT RATE: one download, appended to $runs_file.
run_once() {
    local case_index=$1 run=$2 contender=$3 size_text=$4 rate=$5
    local url=http://$server_ip:$port/$size_text.bin
    local sink=$work/run/body result=$work/run/result.txt err=$work/run/stderr.txt
    local capture=$work/run/capture.pcap stdout=/dev/null
    local cmd
    case $contender in
        tunstack)
            cmd=("$tunstack_bin" fetch --iface tun0 --local-ip "$tunstack_ip" -q
                "${tunstack_extra_args[@]}" -o - "$url")
            stdout=$sink
            ;;
        curl) cmd=(curl --silent --show-error --fail --noproxy '*' -o "$sink" "$url") ;;
    esac
    rm -f "$sink" "$result" "$capture"
    local before after
    before=$(counters "$contender")
    start_capture "$capture"
    # In the background and awaited with `wait`, so that a TERM to this script runs the cleanup
    # at once (which ends measure.py, and measure.py the client) instead of after the run.
    ip netns exec "$client_ns" "$python" "$here/measure.py" "$result" "$stdout" "$err" \
        "$limit" -- "${cmd[@]}" &
    measure_pid=$!
    wait "$measure_pid" || true
    measure_pid=""
    stop_capture
    after=$(counters "$contender")
    local -a b a
    read -r -a b <<< "$before"
    read -r -a a <<< "$after"
    local deltas="data_seen=$((a[0] - b[0])) data_drop=$((a[1] - b[1])) ack_seen=$((a[2] - b[2])) ack_drop=$((a[3] - b[3]))"
    [[ -s $result ]] || echo "exit=error wall=$limit" > "$result"
    local outcome exit_code bytes
    exit_code=$(sed -nE 's/.*exit=([^ ]+).*/\1/p' "$result")
    bytes=$(stat -c %s "$sink" 2>/dev/null || echo 0)
    if [[ $exit_code == 0 ]]; then
        if cmp -s "$sink" "$work/www/$size_text.bin"; then
            outcome=ok
        else
            outcome=corrupt
        fi
    elif [[ $exit_code == timeout ]]; then
        outcome=limit
    else
        outcome=failed
    fi
    # Every run's artefacts wait in $work/done/ID until the case is over; a failed run's are
    # kept at once (so an interrupted soak still has them), the slowest ones after the case.
    local id=case$case_index-$size_text@$rate-run$run-$contender kept=-
    local saved=$work/done/$id
    mkdir -p "$saved"
    if [[ -f $err ]]; then mv "$err" "$saved/stderr.txt"; else : > "$saved/stderr.txt"; fi
    [[ -f $capture ]] && mv "$capture" "$saved/capture.pcap"
    {
        echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'): $contender, $size_text at $rate% loss each way, run $run: $outcome ($(cat "$result"))"
        echo "# received $bytes bytes; loss counters of this run: $deltas"
        echo "# The loss is nftables 'numgen random' (no seed: a replay repeats the conditions, not the"
        echo "# drops). The same conditions, alone:"
        echo "#   SOAK_CASES=$size_text@$rate SOAK_RUNS=1 bench/soak.sh"
        echo "# The command, run inside $client_ns with nginx serving $size_text.bin on $server_ip:$port:"
        printf '%q ' ip netns exec "$client_ns" "${cmd[@]/#$sink/BODY}"
        [[ $contender == tunstack ]] && printf '> BODY'
        echo
    } > "$saved/command.txt"
    if [[ $outcome != ok ]]; then
        failed_total=$((failed_total + 1))
        kept=$keep/$id
        cp -r "$saved" "$kept"
        echo "soak: $contender $size_text@$rate% run $run: $outcome; kept in $kept" >&2
    fi
    rm -f "$sink"
    echo "case=$size_text@$rate contender=$contender run=$run outcome=$outcome bytes=$bytes $deltas kept=$kept $(cat "$result")" >> "$runs_file"
    last_wall=$(sed -nE 's/.*wall=([0-9.]+).*/\1/p' "$result")
    last_outcome=$outcome
}

# --- the soak ---------------------------------------------------------------------------------

soak_start=$(date +%s)
stopped=""
case_index=0
for case in "${cases[@]}"; do
    case_index=$((case_index + 1))
    size_text=${case%@*}
    rate=${case#*@}
    set_loss "$rate"
    echo "soak: $size_text at $rate% loss each way, $runs runs each, limit ${limit}s per run"
    for ((run = 1; run <= runs; run++)); do
        if (( $(date +%s) - soak_start >= budget )); then
            stopped+="$case after $((run - 1)) of $runs pairs; "
            echo "soak: budget of ${budget}s spent: $case stops after $((run - 1)) of $runs pairs" >&2
            break
        fi
        if (( run % 2 )); then order=(tunstack curl); else order=(curl tunstack); fi
        line="soak: $case run $run/$runs:"
        for contender in "${order[@]}"; do
            run_once "$case_index" "$run" "$contender" "$size_text" "$rate"
            line+=" $contender ${last_wall}s"
            [[ $last_outcome == ok ]] || line+=" ($last_outcome)"
        done
        echo "$line"
    done
    # The slowest successful runs of each contender, for their tails.
    if [[ $keep_slowest -gt 0 ]]; then
        for contender in tunstack curl; do
            awk -v c="$case" -v who="$contender" '
                { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
                f["case"] == c && f["contender"] == who && f["outcome"] == "ok" { print f["wall"], f["run"] }' \
                "$runs_file" | sort -rn | head -n "$keep_slowest" | while read -r wall slow_run; do
                    id=case$case_index-$case-run$slow_run-$contender
                    cp -r "$work/done/$id" "$keep/$id"
                    echo "case=$case contender=$contender run=$slow_run wall=$wall kept=$keep/$id" >> "$slow_file"
                done
        done
    fi
    rm -rf "$work/done"
    mkdir "$work/done"
    for contender in tunstack curl; do
        awk -v c="$case" -v who="$contender" '
            { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
            f["case"] == c && f["contender"] == who {
                ds += f["data_seen"]; dd += f["data_drop"]; as += f["ack_seen"]; ad += f["ack_drop"] }
            END {
                printf "soak: %s %s: dropped %d of %d data segments (%.2f%%), %d of %d towards the server (%.2f%%)\n",
                    c, who, dd, ds, ds ? 100 * dd / ds : 0, ad, as, as ? 100 * ad / as : 0 }' "$runs_file"
    done
done
soak_seconds=$(( $(date +%s) - soak_start ))

# --- report -----------------------------------------------------------------------------------

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "kernel=$(uname -r)"
    echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "background_load=$background_load"
    echo "uptime_before=$uptime_before"
    echo "uptime_after=$(uptime)"
    echo "cases=$cases_arg"
    echo "runs=$runs"
    echo "limit=$limit"
    echo "budget=$budget"
    echo "stopped=$stopped"
    echo "soak_seconds=$soak_seconds"
    echo "offloads=$offload_note"
    echo "pcap=$pcap"
    echo "keep_slowest=$keep_slowest"
    echo "tunstack_args=$tunstack_extra"
    echo "keep=$keep"
    echo "tunstack=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "curl=$(curl --version | head -n1 | cut -d' ' -f1-2)"
    echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')"
    echo "nft=$(nft --version)"
} > "$work/params.txt"
cp "$runs_file" "$keep/runs.txt"
cp "$slow_file" "$keep/slowest.txt"
cp "$work/params.txt" "$keep/params.txt"
"$python" "$here/soak_report.py" "$work/params.txt" "$runs_file" "$out" "$slow_file"
echo
cat "$out"
echo
echo "soak: written to $out; raw runs in $keep/runs.txt"
if [[ $failed_total -gt 0 ]]; then
    echo "soak: $failed_total run(s) failed or hit the limit; kept in $keep" >&2
fi
