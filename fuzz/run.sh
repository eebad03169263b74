#!/usr/bin/env bash
# Fuzz every target for a bounded time each:  fuzz/run.sh [SECONDS_PER_TARGET]  (default 60)
#
# Engine: cargo-fuzz (libFuzzer) on the installed nightly toolchain, `cargo +nightly fuzz`.
# libFuzzer needs rustc's nightly-only sanitizer-coverage flags; nightly is installed here, so
# RUSTC_BOOTSTRAP=1 on stable is not needed. Install the tool once: `cargo install cargo-fuzz`.
# Targets are built with debug assertions and overflow checks (cargo-fuzz's default profile) and
# without AddressSanitizer (`-s none`): the code under test is safe Rust, so ASan would add
# little beyond Rust's own checks while halving the executions on a 2-core machine.
#
# Seeds are fuzz/corpus/<target>/ (committed; regenerate with fuzz/seeds.py). New inputs the
# fuzzer finds go to fuzz/work/<target>/ (not committed), so successive runs build on each other.
# Crashes go to fuzz/artifacts/<target>/. The script prints the executions per target and exits
# non-zero if any target crashed; reproduce one with
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
targets=(ipv4 tcp http serve ethernet arp)
toolchain=+nightly
if ! cargo +nightly --version >/dev/null 2>&1; then
    # No nightly toolchain: the stable compiler accepts libFuzzer's flags when told to.
    toolchain=+stable
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo "$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

cargo "$toolchain" fuzz build -s none

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/work/$target"
    extra=()
    if [[ -f fuzz/dict/$target.dict ]]; then
        extra+=("-dict=fuzz/dict/$target.dict")
    fi
    log=$(mktemp)
    status=0
    cargo "$toolchain" fuzz run -s none "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -max_len=8192 -print_final_stats=1 \
        "${extra[@]}" >"$log" 2>&1 || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "fuzz: $target FAILED (exit status $status):" >&2
        grep -A3 -m1 -E "panicked at|ERROR: libFuzzer" "$log" >&2 || tail -40 "$log" >&2
        grep -A2 -m1 "Failing input" "$log" | tail -1 >&2 || true
        summary+=("$target: CRASH after ${runs:-?} executions")
    else
        summary+=("$target: ${runs:-?} executions in ${seconds}s, no crash")
    fi
    rm -f "$log"
done

printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
