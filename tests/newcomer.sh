#!/usr/bin/env bash
# Runs README's set-up lines (the block between `<!-- newcomer:begin` and `<!-- newcomer:end -->`)
# as written, in order, the way a newcomer on a fresh machine would:
#   * in a clean environment: `env -i` with sudo's secure_path as PATH plus the Rust toolchain
#     (what rustup's env file adds), a fresh empty HOME, nothing else inherited;
#   * after the set-up lines (those before the first `sudo just` line): `sudo just --version` as
#     root and as a throwaway non-root user with passwordless sudo (a sudoers.d file), who also runs
#     the set-up lines again (everything is installed now: they must be quiet no-ops);
#   * then the remaining lines (`sudo just demo`, `sudo just test`) as root.
# The throwaway user and its sudoers file are removed on exit, whatever happens.
#
# On a machine that ran it before, /usr/local/bin/just is there and setup/bootstrap only checks
# (a second or two); on a new machine it builds just first (cargo install, one to three minutes).
# --fresh takes the new machine's path anyway: the whole run happens in a private mount namespace
# whose /usr/local/bin is an overlay without just, so bootstrap builds and installs it there; the
# machine's own /usr/local/bin, which others may be using, is never touched.
#
# usage: tests/newcomer.sh [--fresh] [--no-test]
#        (as root; --no-test skips lines that run `just test`)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

run_tests=yes
fresh=no
for arg in "$@"; do
    case ${arg} in
        --no-test) run_tests=no ;;
        --fresh) fresh=yes ;;
        *) echo "usage: tests/newcomer.sh [--fresh] [--no-test]" >&2; exit 2 ;;
    esac
done
if [[ $EUID -ne 0 ]]; then
    echo "newcomer: must run as root (it adds and removes a throwaway user)" >&2
    exit 1
fi
if [[ ${fresh} == yes && -z ${NEWCOMER_PRIVATE_MOUNTS:-} ]]; then
    exec unshare --mount --propagation private env NEWCOMER_PRIVATE_MOUNTS=1 "$0" "$@"
fi

# The lines, without comments: the first fenced block between the markers.
mapfile -t lines < <(awk '
    /<!-- newcomer:begin/ { inside = 1; next }
    /<!-- newcomer:end/ { inside = 0 }
    inside && /^```/ { fence++; next }
    inside && fence == 1 { sub(/[[:space:]]+#.*$/, ""); if ($0 != "") print }
' README.md)
if [[ ${#lines[@]} -eq 0 ]]; then
    echo "newcomer: no lines between the newcomer markers in README.md" >&2
    exit 1
fi

readonly secure_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The toolchain as rustup installed it for root (rustup's env file puts CARGO_HOME/bin on PATH).
cargo_home=${CARGO_HOME:-${HOME:-/root}/.cargo}
rustup_home=${RUSTUP_HOME:-${HOME:-/root}/.rustup}
if [[ ! -x ${cargo_home}/bin/cargo ]]; then
    echo "newcomer: no cargo in ${cargo_home}/bin (set CARGO_HOME to the toolchain's home)" >&2
    exit 1
fi

fresh_home=$(mktemp -d /tmp/newcomer-home.XXXXXX)
user=""
sudoers=""
overlay=""
cleanup() {
    if [[ -n ${sudoers} ]]; then rm -f "${sudoers}"; fi
    if [[ -n ${user} ]] && id "${user}" >/dev/null 2>&1; then userdel --remove "${user}" 2>/dev/null || true; fi
    rm -rf "${fresh_home}"
    if [[ -n ${overlay} ]]; then
        umount /usr/local/bin "${overlay}" || true
        rmdir "${overlay}" || true
    fi
}
trap cleanup EXIT

if [[ ${fresh} == yes ]]; then
    overlay=$(mktemp -d /tmp/newcomer-overlay.XXXXXX)
    mount -t tmpfs tmpfs "${overlay}"
    mkdir "${overlay}/upper" "${overlay}/work"
    mount -t overlay overlay \
        -o "lowerdir=/usr/local/bin,upperdir=${overlay}/upper,workdir=${overlay}/work" /usr/local/bin
    rm -f /usr/local/bin/just
    echo "newcomer: --fresh: no just in /usr/local/bin (in this run's own mount namespace)"
fi

as_newcomer() {
    echo "newcomer\$ $1"
    env -i PATH="${secure_path}:${cargo_home}/bin" HOME="${fresh_home}" TERM="${TERM:-dumb}" \
        CARGO_HOME="${cargo_home}" RUSTUP_HOME="${rustup_home}" LANG=C.UTF-8 \
        bash -euo pipefail -c "cd '${repo}' && $1"
}

# Everything before the first line that runs a just recipe sets the machine up.
setup_lines=()
rest=()
for line in "${lines[@]}"; do
    if [[ ${#rest[@]} -eq 0 && ${line} != *"just "* ]]; then
        setup_lines+=("${line}")
    else
        rest+=("${line}")
    fi
done

started=${SECONDS}
for line in "${setup_lines[@]}"; do
    as_newcomer "${line}"
done
as_newcomer "sudo just --version"

# The same as a user with sudo rights and no toolchain of their own.
user=tsnc$$
useradd --create-home --shell /bin/bash "${user}"
sudoers=/etc/sudoers.d/${user}
echo "${user} ALL=(ALL:ALL) NOPASSWD: ALL" > "${sudoers}.tmp"
chmod 0440 "${sudoers}.tmp"
visudo -cqf "${sudoers}.tmp"
mv "${sudoers}.tmp" "${sudoers}"
user_home=$(getent passwd "${user}" | cut -d: -f6)
for line in "${setup_lines[@]}" "sudo just --version"; do
    echo "${user}\$ ${line}"
    runuser -u "${user}" -- env -i PATH="${secure_path}" HOME="${user_home}" LANG=C.UTF-8 \
        bash -euo pipefail -c "cd '${repo}' && ${line}"
done
rm -f "${sudoers}"
sudoers=""
userdel --remove "${user}" 2>/dev/null
user=""
echo "newcomer: set-up lines done in $((SECONDS - started)) s"

for line in "${rest[@]}"; do
    if [[ ${run_tests} == no && ${line} == *"just test"* ]]; then
        echo "newcomer: skipped (--no-test): ${line}"
        continue
    fi
    as_newcomer "${line}"
done
# Nothing left behind: the demo's sandbox and the throwaway user are gone.
leftovers=$(ip netns list | grep -E '^tsdemo-' || true)
if [[ -n ${leftovers} || -e /etc/sudoers.d/tsnc$$ ]] || id "tsnc$$" >/dev/null 2>&1; then
    echo "newcomer: left behind: ${leftovers:-} $(ls /etc/sudoers.d | grep tsnc || true)" >&2
    exit 1
fi
echo "newcomer: README's lines all passed in $((SECONDS - started)) s"
