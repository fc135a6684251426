"""Rows and tables for the end-to-end benchmark (benches/e2e/run.sh).

`report.py row` turns one load-generator report (the JSON that
wrk-json.lua prints, or oha's `--output-format json`, which has the same shape) (plus the server's /proc counters
before and after the run) into one JSON line; `report.py table` reads those
lines, prints the comparison tables (mean over rounds, every round's
requests/s and p99, and each runtime's throughput over `wasmtime`, over
`wasmtime-fresh` when measured, and over the native baseline, `native`) and
writes every raw row to CSV and JSON (the same columns as before the native
and p3 rows: they are new values of `component` and `runtime`).
Standard library only.
"""

import argparse
import csv
import json
import statistics
import sys

FIELDS = [
    "component",
    "concurrency",
    "round",
    "runtime",
    "duration_s",
    "responses",
    "ok",
    "errors",
    "rps",
    "p50_ms",
    "p99_ms",
    "mean_ms",
    "server_cpu_ms_per_req",
    "server_minflt_per_req",
    "server_majflt",
    "server_rss_mib",
]


def row(args: argparse.Namespace) -> None:
    with open(args.report) as f:
        text = f.read()
    # wrk prints its own summary first, then "JSON" and the object.
    report = json.loads(text.split("JSON\n", 1)[-1])
    summary = report["summary"]
    codes = report.get("statusCodeDistribution") or {}
    errors = report.get("errorDistribution") or {}
    ok = int(codes.get("200", 0)) + int(codes.get("2xx", 0))
    responses = sum(int(n) for n in codes.values())
    duration = float(summary["total"])
    pct = report["latencyPercentiles"]
    minflt0, majflt0, cpu0 = (int(x) for x in args.before.split())
    minflt1, majflt1, cpu1 = (int(x) for x in args.after.split())
    per = max(responses, 1)
    out = {
        "component": args.component,
        "concurrency": args.concurrency,
        "round": args.round,
        "runtime": args.runtime,
        "duration_s": round(duration, 3),
        "responses": responses,
        "ok": ok,
        "errors": sum(int(n) for n in errors.values()) + responses - ok,
        # Only successful responses count as throughput.
        "rps": round(ok / duration, 1) if duration > 0 else 0.0,
        "p50_ms": ms(pct.get("p50")),
        "p99_ms": ms(pct.get("p99")),
        "mean_ms": ms(summary.get("average")),
        "server_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / args.clk_tck / per, 4),
        "server_minflt_per_req": round((minflt1 - minflt0) / per, 1),
        "server_majflt": majflt1 - majflt0,
        "server_rss_mib": round(args.rss_kib / 1024, 1),
    }
    print(json.dumps(out))


def ms(seconds):
    return None if seconds is None else round(float(seconds) * 1000, 3)


def table(args: argparse.Namespace) -> None:
    with open(args.rows) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)

    for line in tables(rows):
        print(line)


# Runtimes in the order the tables show them; others follow, sorted.
RUNTIMES = ("gust", "gust-reuse", "wasmtime", "wasmtime-fresh", "native")


def tables(rows):
    """The lines of both tables: one row per (component, concurrency,
    runtime), then one per (component, concurrency) side by side.

    The ratios are requests/s (mean over rounds) of a runtime over
    `wasmtime` (`wasmtime serve` with its defaults) of the same component
    and concurrency, over `wasmtime-fresh` (a fresh instance per request;
    measured for WASIp3 components only) when there is one, and over the
    native baseline (component and runtime `native`, the same for every
    component) at the same concurrency."""
    groups = {}
    for r in rows:
        key = (r["component"], r["concurrency"])
        groups.setdefault(key, {}).setdefault(r["runtime"], []).append(r)
    # In the order measured, except the native baseline (measured inside the
    # first component's rotation), which comes last.
    groups = dict(sorted(groups.items(), key=lambda kv: kv[0][0] == "native"))

    def mean(rs, field):
        values = [r[field] for r in rs if r[field] is not None]
        return statistics.fmean(values) if values else float("nan")

    def order(by_rt):
        known = [rt for rt in RUNTIMES if rt in by_rt]
        return known + sorted(rt for rt in by_rt if rt not in RUNTIMES)

    def ratio(a, b):
        if a is None or not b or b != b or a != a:
            return ""
        return f"{a / b:.2f}x"

    native = {
        conc: mean(by_rt["native"], "rps")
        for (comp, conc), by_rt in groups.items()
        if "native" in by_rt
    }
    fresh = any("wasmtime-fresh" in by_rt for by_rt in groups.values())

    header = (
        "| component | concurrency | runtime | requests/s (mean) | rounds req/s | "
        "p50 ms | p99 ms | rounds p99 ms | server CPU ms/req | minor faults/req | errors | "
        "vs wasmtime | " + ("vs wasmtime-fresh | " if fresh else "") + "vs native |"
    )
    lines = [header]
    lines.append(
        "|---|---:|---|---:|---|---:|---:|---|---:|---:|---:|---:|"
        + ("---:|" if fresh else "")
        + "---:|"
    )
    for (component, conc), by_rt in groups.items():
        rps = {rt: mean(rs, "rps") for rt, rs in by_rt.items()}
        for rt in order(by_rt):
            rs = by_rt[rt]
            vs_wasmtime = "" if rt == "wasmtime" else ratio(rps[rt], rps.get("wasmtime"))
            vs_fresh = (
                "" if rt == "wasmtime-fresh" else ratio(rps[rt], rps.get("wasmtime-fresh"))
            )
            vs_native = "" if rt == "native" else ratio(rps[rt], native.get(conc))
            rounds = " / ".join(f"{r['rps']:.0f}" for r in rs)
            # One noisy round can dominate a mean of p99s: show them all.
            p99s = " / ".join(
                "-" if r["p99_ms"] is None else f"{r['p99_ms']:.2f}" for r in rs
            )
            lines.append(
                f"| {component} | {conc} | {rt} | {rps[rt]:.0f} | {rounds} | "
                f"{mean(rs, 'p50_ms'):.2f} | {mean(rs, 'p99_ms'):.2f} | {p99s} | "
                f"{mean(rs, 'server_cpu_ms_per_req'):.3f} | "
                f"{mean(rs, 'server_minflt_per_req'):.0f} | "
                f"{sum(r['errors'] for r in rs)} | {vs_wasmtime} | "
                + (f"{vs_fresh} | " if fresh else "")
                + f"{vs_native} |"
            )

    # Side by side: each runtime's requests/s and p99 (means over rounds),
    # then gust over wasmtime (and wasmtime-fresh) and over native.
    present = set()
    for by_rt in groups.values():
        present.update(by_rt)
    runtimes = [rt for rt in RUNTIMES if rt in present] + sorted(
        rt for rt in present if rt not in RUNTIMES
    )
    lines.append("")
    lines.append(
        "| component | concurrency | "
        + " | ".join(f"{rt} req/s | {rt} p99 ms" for rt in runtimes)
        + " | gust/wasmtime | "
        + ("gust/wasmtime-fresh | " if fresh else "")
        + "gust/native |"
    )
    lines.append(
        "|---|---:|"
        + "---:|---:|" * len(runtimes)
        + "---:|"
        + ("---:|" if fresh else "")
        + "---:|"
    )
    for (component, conc), by_rt in groups.items():
        rps = {rt: mean(rs, "rps") for rt, rs in by_rt.items()}
        cells = []
        for rt in runtimes:
            if rt in by_rt:
                cells.append(f"{rps[rt]:.0f} | {mean(by_rt[rt], 'p99_ms'):.2f}")
            else:
                cells.append(" | ")
        gust = rps.get("gust")
        lines.append(
            f"| {component} | {conc} | "
            + " | ".join(cells)
            + f" | {ratio(gust, rps.get('wasmtime'))} | "
            + (f"{ratio(gust, rps.get('wasmtime-fresh'))} | " if fresh else "")
            + f"{ratio(gust, native.get(conc))} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("row")
    p.add_argument("--report", required=True)
    p.add_argument("--component", required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--runtime", required=True)
    p.add_argument("--before", required=True, help="minflt majflt cpu_ticks")
    p.add_argument("--after", required=True, help="minflt majflt cpu_ticks")
    p.add_argument("--clk-tck", type=int, required=True)
    p.add_argument("--rss-kib", type=int, required=True)
    p.set_defaults(run=row)
    t = sub.add_parser("table")
    t.add_argument("--rows", required=True)
    t.add_argument("--csv", required=True)
    t.add_argument("--json", required=True)
    t.set_defaults(run=table)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
