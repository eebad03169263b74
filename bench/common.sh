# Sourced by bench/run.sh, bench/serve.sh and bench/soak.sh: what they share besides nginx.
# shellcheck shell=bash

# stop_pid PID [SIGNAL]: SIGNAL (default TERM), then KILL after 5 s, and reap; an empty PID is
# nothing to stop. Only ever a process the calling script started.
stop_pid() {
    local pid=$1 signal=${2:-TERM}
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# busy_ticks: the whole machine's busy and total CPU ticks since boot, from /proc/stat.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 " " $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# measure_background_load: how busy the machine already is (other work skews every figure), over
# two seconds of /proc/stat; sets background_load, in percent of all cores.
measure_background_load() {
    local busy0 total0 busy1 total1
    read -r busy0 total0 < <(busy_ticks)
    sleep 2
    read -r busy1 total1 < <(busy_ticks)
    # shellcheck disable=SC2034 # the caller reads it
    background_load=$(( (busy1 - busy0) * 100 / (total1 - total0 > 0 ? total1 - total0 : 1) ))
}
