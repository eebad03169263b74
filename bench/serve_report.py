#!/usr/bin/env python3
"""Turn bench/serve.sh's raw runs into a markdown report with a verdict per target.

usage: serve_report.py PARAMS_FILE RUNS_FILE DROPS_FILE OUTPUT_MD

PARAMS_FILE has key=value lines (date, kernel, cpu, ...). RUNS_FILE has one line per run as
bench/serve.sh writes them:

  phase=throughput|lossN contender=C exit=E bytes=N time=S server_cpu=S busy=S   (curl)
  phase=ab contender=C keepalive=yes|no exit=E rps=R complete=N failed=F non2xx=K longest_ms=M

exit is curl's status (0 ok, 28 timed out, httpNNN, short) or ab's. DROPS_FILE has one line per
loss rate with the nftables counters. The targets are judged from the medians; a target whose
runs failed or timed out is not met.
"""

import statistics
import sys

CONTENDERS = [("tunstack", "tunstack serve"), ("nginx", "nginx (kernel TCP)")]
GIB = 1 << 30


def read_kv_lines(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                rows.append(dict(f.split("=", 1) for f in line.split() if "=" in f))
    except FileNotFoundError:
        pass
    return rows


def read_params(path):
    params = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("=")
            params[key] = value
    return params


def spread(values, digits):
    """`median (min–max)`, or a dash when there is nothing to summarise."""
    if not values:
        return "—"
    fmt = f"{{:.{digits}f}}"
    median = fmt.format(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def med(values):
    return statistics.median(values) if values else None


def human_size(size):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def kib_to_mib(text):
    """`KiB[+KiB...]` (peak RSS of one or more processes) as MiB, summed."""
    try:
        return f"{sum(int(part) for part in text.split('+')) / 1024:.1f} MiB"
    except ValueError:
        return "?"


def row(cells):
    return "| " + " | ".join(cells) + " |"


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    params = read_params(sys.argv[1])
    runs = read_kv_lines(sys.argv[2])
    drops = read_kv_lines(sys.argv[3])
    output = sys.argv[4]
    keys = [k for k, _ in CONTENDERS]
    names = [n for _, n in CONTENDERS]
    size = int(params["size"])
    loss_size = int(params["loss_size"])
    loss_timeout = float(params["loss_timeout"])

    def of(phase, contender, **extra):
        return [
            r for r in runs
            if r.get("phase") == phase and r.get("contender") == contender
            and all(r.get(k) == v for k, v in extra.items())
        ]

    def ok(rows):
        return [r for r in rows if r.get("exit") == "0"]

    out = []
    verdicts = []

    def verdict(label, value, reference, factor, higher_is_better, problems):
        """One PASS/FAIL line; a ratio of medians against factor × the reference."""
        if value is None or not reference:
            verdicts.append(f"- **FAIL** {label}: no figure ({problems or 'no successful runs'})")
            return
        ratio = value / reference
        met = ratio >= factor if higher_is_better else ratio <= factor
        why = f"; {problems}" if problems else ""
        verdicts.append(
            f"- **{'PASS' if met and not problems else 'FAIL'}** {label}: {ratio:.2f}×{why}"
        )

    # --- throughput
    gbits, cpu, busy, failed = {}, {}, {}, {}
    for k in keys:
        rows = of("throughput", k)
        good = ok(rows)
        failed[k] = len(rows) - len(good)
        gbits[k] = [int(r["bytes"]) * 8 / float(r["time"]) / 1e9 for r in good]
        cpu[k] = [float(r["server_cpu"]) / (int(r["bytes"]) / GIB) for r in good]
        busy[k] = [float(r["busy"]) / (int(r["bytes"]) / GIB) for r in good]
    out += [
        f"## One {human_size(size)} download by curl",
        "",
        row([""] + names),
        row(["---"] + ["---:"] * len(keys)),
        row(["Gbit/s"] + [spread(gbits[k], 2) for k in keys]),
        row(["server process CPU (user+sys), s/GiB"] + [spread(cpu[k], 2) for k in keys]),
        row(["whole machine busy CPU, s/GiB"] + [spread(busy[k], 2) for k in keys]),
    ]
    if any(failed.values()):
        out.append(row(["failed runs"] + [str(failed[k]) for k in keys]))
    out.append("")
    problems = ", ".join(f"{failed[k]} {k} runs failed" for k in keys if failed[k])
    verdict(
        f"throughput through the TUN hop with offloads ≥ 0.8× nginx "
        f"({med(gbits['tunstack']) or 0:.2f} vs {med(gbits['nginx']) or 0:.2f} Gbit/s)",
        med(gbits["tunstack"]), med(gbits["nginx"]), 0.8, True, problems,
    )

    # --- requests per second
    out += [
        f"## Requests/s for a 4 KiB file, `ab -n {params['ab_requests']} "
        f"-c {params['ab_concurrency']}`",
        "",
        row([""] + names),
        row(["---"] + ["---:"] * len(keys)),
    ]
    rps_med = {}
    for keepalive, label in (("no", "requests/s, a connection each"),
                             ("yes", "requests/s, keep-alive (`-k`)")):
        rps, fails, bad = {}, {}, {}
        for k in keys:
            rows = of("ab", k, keepalive=keepalive)
            rps[k] = [float(r["rps"]) for r in rows if r.get("exit") == "0"
                      and r.get("failed") == "0" and r.get("non2xx", "0") == "0"]
            bad[k] = len(rows) - len(rps[k])
            fails[k] = sum(int(r["failed"]) for r in rows if r.get("failed", "?").isdigit())
            fails[k] += sum(int(r.get("non2xx", "0")) for r in rows)
        rps_med[keepalive] = ({k: med(rps[k]) for k in keys}, bad, fails)
        out.append(row([label] + [spread(rps[k], 0) for k in keys]))
        slowest = {
            k: [int(r["longest_ms"]) for r in of("ab", k, keepalive=keepalive)
                if r.get("longest_ms", "?").isdigit()]
            for k in keys
        }
        out.append(row([f"{label}: slowest request of each run, ms"]
                       + [spread(slowest[k], 0) for k in keys]))
        if any(bad.values()) or any(fails.values()):
            out.append(row([f"{label}: runs with errors / failed or non-2xx requests"]
                           + [f"{bad[k]} / {fails[k]}" for k in keys]))
    out.append("")
    for keepalive, label in (("no", "requests/s"), ("yes", "requests/s with keep-alive")):
        medians, bad, fails = rps_med[keepalive]
        problems = ", ".join(
            f"{k}: {bad[k]} runs with errors, {fails[k]} failed requests"
            for k in keys if bad[k] or fails[k]
        )
        mine = medians["tunstack"] or 0
        theirs = medians["nginx"] or 0
        verdict(
            f"{label} ≥ 0.5× nginx ({mine:.0f} vs {theirs:.0f})"
            + ("" if keepalive == "no" else " (not one of the issue's targets; for reference)"),
            medians["tunstack"], medians["nginx"], 0.5, True, problems,
        )

    # --- loss
    rates = params.get("loss_rates", "").split()
    if rates:
        out += [
            f"## {human_size(loss_size)} under random loss, each way (completion time, s)",
            "",
            row([""] + names),
            row(["---"] + ["---:"] * len(keys)),
        ]
        for rate in rates:
            times, timeouts, errors = {}, {}, {}
            for k in keys:
                rows = of(f"loss{rate}", k)
                times[k] = [float(r["time"]) for r in ok(rows)]
                timeouts[k] = sum(1 for r in rows if r.get("exit") == "28")
                errors[k] = len(rows) - len(times[k]) - timeouts[k]
            out.append(row([f"{rate}% loss"] + [spread(times[k], 2) for k in keys]))
            if any(timeouts.values()) or any(errors.values()):
                out.append(row(
                    [f"{rate}% loss: timed out (> {loss_timeout:.0f} s) / failed runs"]
                    + [f"{timeouts[k]} / {errors[k]}" for k in keys]
                ))
            # A timed-out run counts as the timeout (a lower bound) in the verdict's median.
            censored = {k: times[k] + [loss_timeout] * timeouts[k] for k in keys}
            problems = ", ".join(
                f"{k}: {timeouts[k]} timed out, {errors[k]} failed"
                for k in keys if timeouts[k] or errors[k]
            )
            mine, theirs = med(censored["tunstack"]), med(censored["nginx"])
            at_least = "≥ " if timeouts["tunstack"] else ""
            verdict(
                f"{human_size(loss_size)} at {rate}% loss ≤ 1.25× nginx's time "
                f"({at_least}{mine or 0:.2f} vs {theirs or 0:.2f} s)",
                mine, theirs, 1.25, False, problems,
            )
        out.append("")
        for d in drops:
            out.append(
                f"- {d['rate']}% loss, datagrams dropped: tunstack's data "
                f"{d.get('tunstack_data', '?')}, its client's ACKs {d.get('tunstack_acks', '?')}; "
                f"nginx's data {d.get('nginx_data', '?')}, its client's ACKs "
                f"{d.get('nginx_acks', '?')}"
            )
        out.append("")

    header = [
        "# tunstack serve benchmark",
        "",
        f"- date: {params['date']}",
        f"- machine: {params['cpu']}, {params['cores']} cores, kernel {params['kernel']}",
        f"- load before the run: {params['background_load']}% of all cores busy, load average "
        f"{params['loadavg']} at the end (anything above a few percent makes these figures "
        "noisy; both servers, both clients and the forwarding share these cores)",
        f"- parameters: rounds {params['rounds']} (the servers alternate going first); veth MTU "
        f"{params['veth_mtu']}, tun0 MTU {params['tun_mtu']}; veth TSO/GSO {params['offloads']} "
        f"for throughput and requests/s, off for loss; tunstack serve --cc {params['cc']}, "
        f"nginx's kernel {params.get('kernel_cc', '?')}; offloads on the TUN (its default)",
        f"- versions: tunstack {params['tunstack']}, {params['nginx']} (one worker, sendfile), "
        f"{params['curl']}, {params['ab']}",
        f"- tunstack serve exited {params['serve_exit']} on SIGTERM at the end; peak RSS over "
        f"the whole run: tunstack serve {kib_to_mib(params.get('serve_rss_kib', '?'))}, nginx "
        f"master+worker {kib_to_mib(params.get('nginx_rss_kib', '?'))}",
        "",
        "tunstack serve runs on tun0 in NAME-client and its clients in NAME-server (veth, "
        "forwarding, TUN); nginx runs in NAME-server and its clients in NAME-client (veth only). "
        "Order: an untimed check of the big file, throughput, loss, ab with keep-alive, ab with a "
        "connection per request (last, as its connections linger in TIME-WAIT at the server). "
        "Median of the rounds, (min–max) beside it; ratios divide medians. Throughput is body "
        "bytes × 8 ÷ curl's time_total. Server CPU is the server's own processes (tunstack serve; "
        "nginx master+worker) from /proc/PID/stat; whole-machine CPU adds the clients, the "
        "kernel's forwarding and TCP, and any other load. Loss is dropped per datagram in both "
        "directions by nftables where the traffic is wire-sized (tunstack: input/output on "
        "NAME-server's veth, port 80, as its super-segments are cut only at the veth; nginx: "
        "input/output on NAME-client's veth, port 8081).",
        "",
    ]
    verdict_block = ["## Verdicts (from this run's medians)", ""] + verdicts + [""]
    text = "\n".join(header + verdict_block + out).rstrip("\n") + "\n"
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
