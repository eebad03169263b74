#!/usr/bin/env python3
"""Turn the soak's raw runs into a markdown report.

usage: soak_report.py PARAMS_FILE RUNS_FILE OUTPUT_MD [SLOWEST_FILE]

PARAMS_FILE has key=value lines (date, kernel, cpu, limit, ...); RUNS_FILE has one line per
download as bench/soak.sh writes them: `case=8M@20 contender=C run=N outcome=ok|failed|limit|
corrupt bytes=N data_seen=N data_drop=N ack_seen=N ack_drop=N kept=PATH exit=E wall=S ...`.
SLOWEST_FILE lists the slowest successful runs whose artefacts were kept (`case= contender= run=
wall= kept=`).

A run that failed, hit the limit or delivered wrong bytes counts at the limit time in the median,
p90 and max. p90 is the nearest-rank percentile (the ceil(0.9 n)-th smallest time). Target per
case: tunstack's p90 and max no worse than curl's, its median no worse than 1.25x curl's.
"""

import math
import statistics
import sys

CONTENDERS = [("tunstack", "tunstack"), ("curl", "kernel TCP (curl)")]


def read_params(path):
    params = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("=")
            params[key] = value
    return params


def read_runs(path):
    runs = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            runs.append(dict(field.split("=", 1) for field in line.split() if "=" in field))
    return runs


def p90(values):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def seconds(value):
    return f"{value:.2f}"


def case_label(case):
    size, _, rate = case.partition("@")
    return f"{size}iB at {rate}% loss each way"


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    params = read_params(sys.argv[1])
    runs = read_runs(sys.argv[2])
    output = sys.argv[3]
    slowest = read_runs(sys.argv[4]) if len(sys.argv) == 5 else []
    limit = float(params["limit"])

    cases = []
    for run in runs:
        if run["case"] not in cases:
            cases.append(run["case"])

    def time_of(run):
        return float(run["wall"]) if run["outcome"] == "ok" else limit

    out = [
        "# Heavy-loss soak: tunstack against the kernel's TCP (curl)",
        "",
        "Written by `bench/soak.sh` (`sudo just soak`).",
        "",
        f"- date: {params['date']}",
        f"- kernel: {params['kernel']}; CPU: {params['cpu']} ({params['cores']} cores)",
        f"- load: {params['background_load']}% of all cores busy in the 2 s before starting; "
        f"`uptime` before: `{params['uptime_before'].strip()}`; after: "
        f"`{params['uptime_after'].strip()}`",
        f"- cases: `{params['cases']}` (SIZE@PERCENT, loss in each direction); "
        f"{params['runs']} runs per contender per case, tunstack and curl alternating (who goes "
        f"first alternates too); per-run limit {params['limit']} s; budget {params['budget']} s, "
        f"the soak took {params['soak_seconds']} s"
        + (f"; **stopped by the budget**: {params['stopped'].strip('; ')}" if params["stopped"] else ""),
        f"- loss: nftables `numgen random mod 100 < PERCENT drop` in a netdev `ingress` chain on each "
        f"veth end (data on arrival in the client namespace, before the forward/local split; "
        f"ACKs and requests on arrival in the server namespace), the same rule for both "
        f"contenders; {params['offloads']}; MTU 1500",
        f"- served by {params['nginx']} (sendfile) from tmpfs; {params['curl']}; tunstack "
        f"{params['tunstack']}"
        + (f" with `{params['tunstack_args']}`" if params["tunstack_args"] else "")
        + f" (offloads on the TUN, its default); {params['nft']}",
        f"- captures (tcpdump -s 128 on the client's veth end, every run, both contenders; "
        f"they show each segment before the loss rules judge it): {params['pcap']}; failed runs "
        f"and the {params['keep_slowest']} slowest successful ones per contender and case are "
        f"kept (command line, stderr, capture) in `{params['keep']}`",
        "",
        "A run that failed or hit the limit counts at the limit time. p90 is nearest-rank.",
        "",
    ]

    verdicts = []
    for case in cases:
        out += [f"## {case_label(case)}", ""]
        out.append(
            "| | runs | median s | p90 s | max s | failed | hit the limit | data dropped | "
            "ACKs/requests dropped |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        stats = {}
        for key, label in CONTENDERS:
            mine = [r for r in runs if r["case"] == case and r["contender"] == key]
            if not mine:
                continue
            times = [time_of(r) for r in mine]
            failed = sum(1 for r in mine if r["outcome"] in ("failed", "corrupt"))
            limited = sum(1 for r in mine if r["outcome"] == "limit")
            ds = sum(int(r["data_seen"]) for r in mine)
            dd = sum(int(r["data_drop"]) for r in mine)
            acs = sum(int(r["ack_seen"]) for r in mine)
            ad = sum(int(r["ack_drop"]) for r in mine)
            stats[key] = (statistics.median(times), p90(times), max(times))
            out.append(
                f"| {label} | {len(mine)} | {seconds(stats[key][0])} | {seconds(stats[key][1])} | "
                f"{seconds(stats[key][2])} | {failed} | {limited} | "
                f"{100 * dd / ds if ds else 0:.2f}% ({dd} of {ds}) | "
                f"{100 * ad / acs if acs else 0:.2f}% ({ad} of {acs}) |"
            )
        out.append("")
        if "tunstack" in stats and "curl" in stats:
            (tm, tp, tx), (cm, cp, cx) = stats["tunstack"], stats["curl"]
            checks = [
                (f"median {seconds(tm)} ≤ 1.25 × {seconds(cm)} = {seconds(1.25 * cm)}", tm <= 1.25 * cm),
                (f"p90 {seconds(tp)} ≤ {seconds(cp)}", tp <= cp),
                (f"max {seconds(tx)} ≤ {seconds(cx)}", tx <= cx),
            ]
            met = all(ok for _, ok in checks)
            verdicts.append((case, met))
            out.append(
                f"Target: {'**met**' if met else '**not met**'} — "
                + "; ".join(f"{text}: {'yes' if ok else 'no'}" for text, ok in checks)
                + f" (tunstack/curl: median {tm / cm:.2f}×, p90 {tp / cp:.2f}×, max {tx / cx:.2f}×)"
            )
            out.append("")

        # Per-run times, in the order they ran, so tails can be inspected.
        out.append("<details><summary>per-run times (s), in order</summary>")
        out.append("")
        out.append("| run | tunstack | curl | tunstack data/ACK drops | curl data/ACK drops |")
        out.append("|---:|---:|---:|---:|---:|")
        by_run = {}
        for r in runs:
            if r["case"] == case:
                by_run.setdefault(int(r["run"]), {})[r["contender"]] = r

        def cell(r):
            if r is None:
                return "—"
            text = seconds(float(r["wall"]))
            return text if r["outcome"] == "ok" else f"**{r['outcome']}** ({text})"

        def drops(r):
            if r is None:
                return "—"
            return f"{r['data_drop']}/{r['data_seen']}, {r['ack_drop']}/{r['ack_seen']}"

        for number in sorted(by_run):
            pair = by_run[number]
            out.append(
                f"| {number} | {cell(pair.get('tunstack'))} | {cell(pair.get('curl'))} | "
                f"{drops(pair.get('tunstack'))} | {drops(pair.get('curl'))} |"
            )
        out += ["", "</details>", ""]

    bad = [r for r in runs if r["outcome"] != "ok"]
    out += ["## Failed runs", ""]
    if not bad:
        out.append("None.")
    for r in bad:
        out.append(
            f"- {r['case']} {r['contender']} run {r['run']}: {r['outcome']} (exit {r['exit']}, "
            f"{float(r['wall']):.1f} s, {r['bytes']} bytes received): `{r['kept']}` "
            f"(command.txt, stderr.txt, capture.pcap)"
        )
    out.append("")
    if slowest:
        out += ["## Slowest successful runs, kept for their tails", ""]
        for r in slowest:
            out.append(
                f"- {r['case']} {r['contender']} run {r['run']}: {float(r['wall']):.2f} s: `{r['kept']}`"
            )
        out.append("")
    if verdicts:
        out.append(
            "Verdict: "
            + ", ".join(f"{case_label(c)} {'**met**' if ok else '**not met**'}" for c, ok in verdicts)
            + "."
        )
        out.append("")

    with open(output, "w", encoding="utf-8") as md:
        md.write("\n".join(out))


if __name__ == "__main__":
    main()
