#!/usr/bin/env python3
"""Turn the benchmark's raw runs into one markdown table.

usage: report.py PARAMS_FILE RUNS_FILE OUTPUT_MD

PARAMS_FILE has key=value lines (date, kernel, cpu, ...); RUNS_FILE has one line per download:
`phase=P contender=C bytes=N exit=E wall=S user=S sys=S maxrss_kb=K busy=S` as bench/run.sh and
bench/measure.py write them. Phase `check` (the untimed first downloads) is ignored; `throughput`
gives the rate and CPU rows; `lossN` gives the completion time under N% loss; `start` gives the
small fetches right after attaching. The targets at the end are judged from the medians, and a
target whose runs failed is not met. The TAP column (contender `tunstack-tap`) appears when
PARAMS_FILE says `tap=on`.
"""

import statistics
import sys

CONTENDERS = [
    ("tunstack", "tunstack"),
    ("tunstack-tap", "tunstack (TAP)"),
    ("tunstack-plain", "tunstack --no-offload"),
    ("smoltcp", "smoltcp {smoltcp} (1 MiB rx buffer)"),
    ("curl", "kernel TCP (curl)"),
]
GIB = 1 << 30


def read_params(path):
    params = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("=")
            params[key] = value
    return params


def read_runs(path):
    runs = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                runs.append(dict(field.split("=", 1) for field in line.split() if "=" in field))
    except FileNotFoundError:
        pass
    return runs


def spread(values, digits):
    """`median (min–max)`, or a dash when there is nothing to summarise."""
    if not values:
        return "—"
    fmt = f"{{:.{digits}f}}"
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def ratio(value, reference):
    if value is None or not reference:
        return "—"
    return f"{value / reference:.2f}×"


def human_size(size):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def targets(gbits, client_cpu, rss, loss_times, size, start, failures, tap_failures):
    """The issue's targets, each judged from this run's medians; failed runs fail a target."""

    def med(values):
        return statistics.median(values) if values else None

    def verdict(ok, *phases, failed=None):
        if failed is None:
            failed = sum(failures.get(phase, 0) for phase in phases)
        if failed:
            return f"**not met** ({failed} failed runs)"
        return "**met**" if ok else "**not met**"

    out = ["", "Targets (from this run's medians):", ""]
    plain, smol = med(gbits["tunstack-plain"]), med(gbits["smoltcp"])
    plain_cpu, smol_cpu = med(client_cpu["tunstack-plain"]), med(client_cpu["smoltcp"])
    if None not in (plain, smol, plain_cpu, smol_cpu):
        out.append(
            f"1. plain TUN (--no-offload) ≥ 1.6× smoltcp with less client CPU per GiB: "
            f"{plain / smol:.2f}×, {plain_cpu:.3f} vs {smol_cpu:.3f} s/GiB: "
            f"{verdict(plain >= 1.6 * smol and plain_cpu < smol_cpu, 'throughput')}"
        )
    fast, curl = med(gbits["tunstack"]), med(gbits["curl"])
    if None not in (fast, curl):
        out.append(
            f"2. with offloads ≥ 1.0× curl: {fast / curl:.2f}×: "
            f"{verdict(fast >= curl, 'throughput')}"
        )
    peak = max(rss["tunstack"] + rss["tunstack-plain"], default=None)
    if peak is not None:
        note = "" if size >= 1 << 30 else f" (a {human_size(size)} run; the target is for 1 GiB)"
        out.append(f"3. peak RSS ≤ 8 MiB: {peak:.1f} MiB{note}: {verdict(peak <= 8)}")
    one = loss_times.get("1", {})
    ours, theirs = med(one.get("tunstack", [])), med(one.get("curl", []))
    if None not in (ours, theirs):
        out.append(
            f"4. 1% loss ≤ 1.25× curl's time: {ours / theirs:.2f}×: "
            f"{verdict(ours <= 1.25 * theirs, 'loss1')}"
        )
    if start or failures.get("start"):
        slowest = f"{max(start):.1f} ms" if start else "none finished"
        out.append(
            f"5. no 1-second stall at start: slowest of {len(start)} fetches right after "
            f"attaching {slowest}: {verdict(bool(start) and max(start) < 1000, 'start')}"
        )
    if "tunstack-tap" in gbits:
        tap, tun = med(gbits["tunstack-tap"]), med(gbits["tunstack"])
        ratio_text = f"{tap / tun:.2f}×" if None not in (tap, tun) else "no figures"
        ok = None not in (tap, tun) and tap >= 0.9 * tun
        out.append(
            f"6. TAP throughput within 10% of TUN: {ratio_text}: {verdict(ok, failed=tap_failures)}"
        )
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    params = read_params(sys.argv[1])
    runs = read_runs(sys.argv[2])
    output = sys.argv[3]

    def ok_runs(phase, contender):
        return [
            r
            for r in runs
            if r.get("phase") == phase and r.get("contender") == contender and r.get("exit") == "0"
        ]

    def failed(phase, contender):
        return sum(
            1
            for r in runs
            if r.get("phase") == phase and r.get("contender") == contender and r.get("exit") != "0"
        )

    def median_or_none(values):
        return statistics.median(values) if values else None

    # The TAP column only when the run had its contender (BENCH_TAP=on).
    contenders = [
        (key, label)
        for key, label in CONTENDERS
        if key != "tunstack-tap" or params.get("tap") == "on"
    ]
    names = [label.format(**params) for _, label in contenders]
    keys = [key for key, _ in contenders]

    # Per contender: lists of per-run figures.
    gbits, client_cpu, machine_cpu, rss = {}, {}, {}, {}
    for key in keys:
        good = ok_runs("throughput", key)
        gbits[key] = [int(r["bytes"]) * 8 / float(r["wall"]) / 1e9 for r in good]
        client_cpu[key] = [
            (float(r["user"]) + float(r["sys"])) / (int(r["bytes"]) / GIB) for r in good
        ]
        machine_cpu[key] = [float(r["busy"]) / (int(r["bytes"]) / GIB) for r in good]
        rss[key] = [int(r["maxrss_kb"]) / 1024 for r in good if r.get("maxrss_kb", "?").isdigit()]

    def row(label, cells):
        return "| " + " | ".join([label] + cells) + " |"

    def ratio_row(label, figures, reference_key):
        reference = median_or_none(figures[reference_key])
        return row(label, [ratio(median_or_none(figures[k]), reference) for k in keys])

    size = int(params["size"])
    rounds = params["rounds"]
    lines = [
        row("", names),
        row("---", ["---:"] * len(keys)),
        row(f"throughput, Gbit/s ({human_size(size)})",
            [spread(gbits[k], 2) for k in keys]),
        ratio_row("throughput ÷ curl", gbits, "curl"),
        ratio_row("throughput ÷ smoltcp", gbits, "smoltcp"),
        row("client CPU (user+sys), s/GiB", [spread(client_cpu[k], 3) for k in keys]),
        ratio_row("client CPU ÷ curl", client_cpu, "curl"),
        ratio_row("client CPU ÷ smoltcp", client_cpu, "smoltcp"),
        row("whole machine busy CPU, s/GiB", [spread(machine_cpu[k], 2) for k in keys]),
        row("client peak RSS, MiB", [spread(rss[k], 1) for k in keys]),
    ]
    if any(failed("throughput", k) for k in keys):
        lines.append(row("failed throughput runs", [str(failed("throughput", k)) for k in keys]))

    loss_size = int(params["loss_size"])
    loss_times = {}
    for rate in params.get("loss_rates", "").split():
        phase = f"loss{rate}"
        times = {k: [float(r["wall"]) for r in ok_runs(phase, k)] for k in keys}
        loss_times[rate] = times
        ran = {k: times[k] or failed(phase, k) for k in keys}
        lines.append(
            row(f"{human_size(loss_size)} at {rate}% loss each way, seconds",
                [spread(times[k], 2) if ran[k] else "not run" for k in keys])
        )
        lines.append(
            row(f"{rate}% loss time ÷ curl",
                [ratio(median_or_none(times[k]), median_or_none(times["curl"])) if ran[k]
                 else "—" for k in keys])
        )
        if any(failed(phase, k) for k in keys):
            lines.append(row(f"failed {rate}% loss runs", [str(failed(phase, k)) for k in keys]))

    start = [float(r["wall"]) * 1000 for r in ok_runs("start", "tunstack")]
    if start or failed("start", "tunstack"):
        lines.append(
            row("4 KiB fetch right after attaching, ms",
                [spread(start, 1) if k == "tunstack" else "not run" for k in keys])
        )
        if failed("start", "tunstack"):
            lines.append(row("failed start-up runs",
                             [str(failed("start", "tunstack")) if k == "tunstack" else "—"
                              for k in keys]))

    # Targets 1-5 do not involve the TAP contender, so its failures count only against target 6.
    failures = {
        phase: sum(failed(phase, k) for k in keys if k != "tunstack-tap")
        for phase in {r.get("phase") for r in runs}
    }
    # Target 6 compares TAP with TUN only: failed runs of those two fail it, not anyone else's.
    tap_failures = failed("throughput", "tunstack") + failed("throughput", "tunstack-tap")
    lines += targets(gbits, client_cpu, rss, loss_times, size, start, failures, tap_failures)

    if params.get("loss_rates", "").split():
        loss_line = (
            f"- loss runs: {human_size(loss_size)} file, {params['loss_rates']} % of segments "
            f"dropped on arrival in each direction (nftables numgen), veth GRO/GSO/TSO off, "
            f"rounds: {params['loss_rounds']}"
        )
    else:
        loss_line = "- loss runs: none"
    if params.get("tap") == "on":
        tap_line = (
            f"- TAP: `tunstack fetch --tap` on tap0 (MTU {params['tun_mtu']}, offloads as on tun0) "
            f"bridged to a veth (MTU {params['veth_mtu']}, TSO/GSO as above) in a sandbox of its own, "
            "from a second nginx serving the same files; throughput only"
        )
    else:
        tap_line = "- TAP: not run (BENCH_TAP=off)"
    header = [
        "# tunstack benchmark",
        "",
        f"- date: {params['date']}",
        f"- machine: {params['cpu']}, {params['cores']} cores, kernel {params['kernel']}",
        f"- load before the run: {params['background_load']}% of all cores busy "
        "(anything above a few percent makes these figures noisy)",
        f"- parameters: {human_size(size)} file, rounds: {rounds} (contenders alternate); veth "
        f"MTU {params['veth_mtu']}, tun0 MTU {params['tun_mtu']}; veth TSO/GSO "
        f"{params['offloads']} for throughput",
        tap_line,
        loss_line,
        f"- versions: tunstack {params['tunstack']}, smoltcp {params['smoltcp']}, "
        f"{params['curl']}, {params['nginx']} (sendfile on)",
        "",
        "Median of the rounds, (min–max) beside it. Throughput is body bytes × 8 ÷ the client "
        "process's wall time (start-up and connection set-up included). Client CPU is the client "
        "process's user+sys; whole-machine CPU adds everything else busy meanwhile (forwarding, "
        "nginx, the kernel's TCP on both sides, and other load). Ratios divide medians.",
        "",
    ]
    text = "\n".join(header + lines) + "\n"
    with open(output, "w", encoding="utf-8") as out:
        out.write(text)


if __name__ == "__main__":
    main()
