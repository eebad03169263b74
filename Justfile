# tunstack tasks. `just` lists them; recipes that touch interfaces need root (see README).

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := true

# sudo's secure_path drops ~/.cargo/bin; put the current user's cargo back in front (under sudo that
# is root's; setup/toolchain runs cargo as, or with the toolchain of, the user who ran sudo).
export PATH := env("CARGO_HOME", env("HOME", "/root") / ".cargo") / "bin" + ":" + env("PATH", "/usr/bin:/bin")

# List the recipes
default:
    @just --list

# Build the release binary (target/release/tunstack); under sudo, as the user who ran sudo
build:
    setup/toolchain cargo build --release

# Download URL through tun0, creating tun0 with setup/up first if it is missing
fetch URL *ARGS: build
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ ! -e /sys/class/net/tun0 ]]; then
        echo "tun0 is missing: running setup/up (needs root)" >&2
        if [[ $EUID -eq 0 ]]; then setup/up; else sudo setup/up; fi
    fi
    exec target/release/tunstack fetch "$@"

# Serve the files under DIR at http://10.77.0.2/ through tun0 (setup/up first if tun0 is missing)
serve DIR *ARGS: build
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ ! -e /sys/class/net/tun0 ]]; then
        echo "tun0 is missing: running setup/up (needs root)" >&2
        if [[ $EUID -eq 0 ]]; then setup/up; else sudo setup/up; fi
    fi
    exec target/release/tunstack serve "$@"

# Create tun0 (owned by the user who ran sudo), forwarding and masquerading for real use
setup:
    setup/up

# Undo `setup`: tun0 and the nftables table go; ip_forward goes back off if setup turned it on
teardown:
    setup/down

# Download a 32 MiB random file inside a throwaway sandbox and compare checksums (needs root)
demo: build
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ $EUID -ne 0 ]]; then echo "demo: needs root to create namespaces: sudo just demo" >&2; exit 1; fi
    name=tsdemo
    work=$(mktemp -d)
    server_pid=""
    cleanup() {
        if [[ -n $server_pid ]]; then
            kill "$server_pid" 2>/dev/null || true
            wait "$server_pid" 2>/dev/null || true
        fi
        setup/sandbox down "$name"
        rm -rf "$work"
    }
    trap cleanup EXIT
    setup/sandbox up "$name"
    mkdir "$work/served"
    head -c 32M /dev/urandom > "$work/served/demo.bin"
    # The interpreter itself, not a version-manager shim, so that $! is the server's PID.
    python=$(python3 -c 'import sys; print(sys.executable)')
    ip netns exec "$name-server" "$python" -m http.server 8080 --bind 10.77.1.2 \
        --directory "$work/served" >"$work/server.log" 2>&1 &
    server_pid=$!
    ready=no
    for _ in $(seq 50); do
        if ip netns exec "$name-server" bash -c 'exec 3<>/dev/tcp/10.77.1.2/8080' 2>/dev/null; then
            ready=yes
            break
        fi
        sleep 0.1
    done
    if [[ $ready != yes ]]; then
        echo "demo: the HTTP server did not start within 5 s:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    echo "demo: fetching http://10.77.1.2:8080/demo.bin (32 MiB) through the userspace stack"
    status=0
    time timeout 120 ip netns exec "$name-client" target/release/tunstack fetch \
        --iface tun0 --local-ip 10.77.0.2 -o "$work/fetched.bin" \
        http://10.77.1.2:8080/demo.bin || status=$?
    want=$(sha256sum < "$work/served/demo.bin" | cut -d' ' -f1)
    got=""
    if [[ -f $work/fetched.bin ]]; then got=$(sha256sum < "$work/fetched.bin" | cut -d' ' -f1); fi
    echo "served  sha256 $want"
    echo "fetched sha256 ${got:-<no file>}"
    if [[ $status -eq 0 && $got == "$want" ]]; then
        echo PASS
    else
        echo "FAIL (tunstack exit status $status)"
        exit 1
    fi

# Unit, property and end-to-end tests (the end-to-end ones need root: sudo just test)
test:
    #!/usr/bin/env bash
    set -euo pipefail
    # Under sudo the build is the invoking user's (setup/toolchain); only running the tests is root's.
    setup/toolchain cargo test --release --no-run
    # Every target under tests/ runs here, the root ones too: tests/trace.rs (sandboxes trc*)
    # checks a lossy download's --trace against tshark's analysis of its --pcap capture, and
    # tests/plot.rs opens `tunstack plot`'s pictures in headless chromium (setup/bootstrap
    # installs it; with CI set, a missing chromium fails the test).
    setup/toolchain --as-root cargo test --release -- --test-threads 2
    # A short fuzz smoke of every target (`just fuzz` runs longer).
    if setup/toolchain cargo fuzz --version >/dev/null 2>&1 || setup/toolchain cargo +nightly fuzz --version >/dev/null 2>&1; then
        setup/toolchain fuzz/run.sh 30
    else
        echo "test: fuzz smoke skipped: cargo-fuzz is not installed (cargo install cargo-fuzz)"
    fi

# Fuzz every parser target for SECONDS each (default 300), building on earlier runs' corpora
fuzz SECONDS="300":
    fuzz/run.sh {{SECONDS}}

# Formatting, clippy, and no clock or sleep outside the I/O shell
lint:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    # Test modules (from `#[cfg(test)]` to the end of a file, and tests.rs files) may use a real
    # Instant as the base of their virtual time; everything else in the core may not.
    offenders=$(find src -name '*.rs' ! -name tests.rs -print0 \
        | xargs -0 awk '/^#\[cfg\(test\)\]/ { nextfile } /Instant::now|SystemTime::now|thread::sleep/ { print FILENAME ":" FNR ":" $0 }' \
        | grep -vE '^src/(event_loop\.rs|main\.rs|device/)' \
        | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
    if [[ -n $offenders ]]; then
        echo "lint: the sans-IO core must not read the clock or sleep; found:" >&2
        echo "$offenders" >&2
        exit 1
    fi
    echo "lint: ok"

# `sudo just bench [SIZE]` compares tunstack (on tun0, and on tap0 in TAP mode: BENCH_TAP) with
# smoltcp and the kernel's TCP (curl) and writes bench/results.md (bench/run.sh; `256M` for a
# quick run); `sudo just bench serve [SIZE]` compares
# `tunstack serve` with nginx and writes bench/serve-results.md (bench/serve.sh)
# Benchmarks in a throwaway sandbox (needs root): sudo just bench [SIZE] | sudo just bench serve [SIZE]
bench *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ ${1:-} == serve ]]; then
        shift
        exec bench/serve.sh "$@"
    fi
    exec bench/run.sh "$@"

# tunstack and the kernel's TCP (curl) alternating 30+30 times at 20% and at 10% loss each way:
# median, p90, max into bench/soak-results.md (needs root; SOAK_* knobs in bench/soak.sh)
# Heavy-loss soak against curl, to bench/soak-results.md (needs root: sudo just soak)
soak:
    bench/soak.sh
