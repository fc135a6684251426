#!/usr/bin/env python3
"""Density: many functions in one `gust serve`, warm compile cache.

    density.py [--gust BIN] [--label NAME] [--requests K] [--runs R] DIR...

DIR is an app written by `make-1000.py DIR N` (N distinct hello
components, `/f/{i}` routed to `f{i}`). For each DIR the app is served
once to warm the compile cache (untimed; compiles whatever is missing),
then R times measured:

- serving: seconds from spawning gust to its first HTTP answer (a probe
  of an unrouted path every 2 ms, so a 404 counts);
- idle RSS: /proc/PID/status VmRSS 2 s after serving, and where it is
  (/proc/PID/smaps summed by mapping: compiled code and the rest of the
  artifacts, the instance pool, heap, the gust binary, other files);
- first request: K functions picked at random (seeded), each asked once
  on a kept-alive connection, so the time is gust's: routing, loading
  the function if it is not resident, instantiating, the guest, the
  response; then the same K again (second request, already resident);
- RSS after those requests;
- with --all, then every function once (in order), and RSS after.

Prints a table and writes benches/results/density-<stamp>.{csv,json}
(and density-latest.*).
"""
import argparse
import csv
import datetime
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

NICE = 0
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "..", "results")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(port):
    """Any HTTP answer on `port`, or None."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/__density_probe")
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def kib(field, text):
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def memory(pid):
    """RSS and where it is, in MiB. Anonymous mappings are told apart by
    shape: executable ones hold compiled code (a deserialized artifact's
    text), read-only ones the rest of an artifact, those of a GiB or more
    of address space the pooling allocator's instance slots, the others
    (and [heap]) the allocator's heap and thread stacks."""
    status = open(f"/proc/{pid}/status").read()
    rollup = open(f"/proc/{pid}/smaps_rollup").read()
    by = {"code": 0, "artifact data": 0, "instance pool": 0, "heap": 0,
          "gust binary": 0, "other files": 0}
    exe = os.readlink(f"/proc/{pid}/exe")
    maps = []
    for line in open(f"/proc/{pid}/smaps"):
        head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$", line)
        if head:
            maps.append([int(head.group(1), 16), int(head.group(2), 16), head.group(3),
                         head.group(4).strip(), 0])
        elif line.startswith("Rss:"):
            maps[-1][4] = int(line.split()[1])
    # The pool is one reservation of terabytes, split into many mappings
    # as slots are made accessible: whatever lies between its first and
    # last huge piece.
    anon = lambda name: name == "" or name.startswith("[anon")  # noqa: E731
    huge = [(lo, hi) for lo, hi, _, name, _ in maps if anon(name) and hi - lo >= 1 << 30]
    pool = (min(lo for lo, _ in huge), max(hi for _, hi in huge)) if huge else (0, 0)
    for lo, hi, perm, name, rss in maps:
        if name == exe:
            by["gust binary"] += rss
        elif anon(name):
            if pool[0] <= lo and hi <= pool[1]:
                by["instance pool"] += rss
            elif "x" in perm:
                by["code"] += rss
            elif perm.startswith("r-"):
                by["artifact data"] += rss
            else:
                by["heap"] += rss
        elif name in ("[heap]", "[stack]"):
            by["heap"] += rss
        elif not name.startswith("["):
            by["other files"] += rss
    out = {
        "rss_mib": kib("VmRSS", status) / 1024,
        "hwm_mib": kib("VmHWM", status) / 1024,
        "virt_gib": kib("VmSize", status) / 1024 / 1024,
        "page_tables_mib": kib("VmPTE", status) / 1024,
        "anon_mib": kib("Anonymous", rollup) / 1024,
        "threads": int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1)),
    }
    for k, v in by.items():
        out[f"rss_{k}_mib"] = v / 1024
    return out


def timed_get(conn, path):
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200 or b"Hello" not in body:
        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    return elapsed * 1000


def serve(gust, manifest, log):
    port = free_port()
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [gust, "serve", "--listen", f"127.0.0.1:{port}", "--no-ledger", manifest],
        stdout=log, stderr=subprocess.STDOUT, env=env,
        preexec_fn=lambda: os.nice(NICE) if NICE else None)
    deadline = started + 3600
    while probe(port) is None:
        if proc.poll() is not None:
            raise RuntimeError(f"gust exited with {proc.returncode}; see {log.name}")
        if time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError("gust did not serve within an hour")
        time.sleep(0.002)
    return proc, port, time.perf_counter() - started


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def functions_in(manifest):
    return len(re.findall(r"^\[functions\.", open(manifest).read(), re.M))


def measure(gust, app_dir, k, run, rng, touch_all):
    manifest = os.path.join(app_dir, "gust.toml")
    n = functions_in(manifest)
    with open(os.path.join(app_dir, f"density-run{run}.log"), "w") as log:
        proc, port, serving = serve(gust, manifest, log)
        try:
            time.sleep(2)
            idle = memory(proc.pid)
            picks = rng.sample(range(n), min(k, n))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            first = [timed_get(conn, f"/f/{i}") for i in picks]
            second = [timed_get(conn, f"/f/{i}") for i in picks]
            time.sleep(0.5)
            after = memory(proc.pid)
            every = None
            if touch_all:
                every = [timed_get(conn, f"/f/{i}") for i in range(n)]
                time.sleep(0.5)
                every = {"p50_ms": statistics.median(every), "max_ms": max(every),
                         "memory": memory(proc.pid)}
            conn.close()
        finally:
            stop(proc)
    loaded = re.findall(r"app loaded.*", open(log.name).read())
    return {
        "functions": n,
        "run": run,
        "serving_s": serving,
        "idle": idle,
        "first_ms": first,
        "second_ms": second,
        "after": after,
        "all": every,
        "picked": picks,
        "load_log": loaded[-1] if loaded else "",
    }


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/gust-target"))
    parser.add_argument("--gust", default=os.path.join(target, "release", "gust"))
    parser.add_argument("--label", default="")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--all", action="store_true",
                        help="then ask every function once, and measure RSS after")
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--nice", type=int, default=0,
                        help="run gust and this client at this niceness (negative: ahead of "
                             "other work on the machine; needs root)")
    args = parser.parse_args()
    global NICE
    NICE = args.nice
    if NICE:
        os.nice(NICE)
    rng = random.Random(args.seed)
    rows = []
    for app_dir in args.dirs:
        manifest = os.path.join(app_dir, "gust.toml")
        print(f"{app_dir}: warming the cache ({functions_in(manifest)} functions)",
              file=sys.stderr)
        with open(os.path.join(app_dir, "density-warmup.log"), "w") as log:
            proc, _, warm = serve(args.gust, manifest, log)
            stop(proc)
        print(f"  warm-up served after {warm:.2f} s", file=sys.stderr)
        for run in range(args.runs):
            r = measure(args.gust, app_dir, args.requests, run, rng, args.all)
            r["label"] = args.label
            r["warmup_serving_s"] = warm
            rows.append(r)
            if r["all"]:
                m = r["all"]["memory"]
                print(f"  every function asked once: p50 {r['all']['p50_ms']:.2f} ms, max "
                      f"{r['all']['max_ms']:.2f} ms; RSS {m['rss_mib']:.0f} MiB (code+data "
                      f"{m['rss_code_mib'] + m['rss_artifact data_mib']:.0f}, pool "
                      f"{m['rss_instance pool_mib']:.0f}, heap {m['rss_heap_mib']:.0f})",
                      file=sys.stderr)
            print(f"  run {run}: serving {r['serving_s']:.2f} s, idle RSS "
                  f"{r['idle']['rss_mib']:.0f} MiB, first request max "
                  f"{max(r['first_ms']):.2f} ms", file=sys.stderr)

    header = ["label", "functions", "run", "serving_s", "idle_rss_mib", "idle_heap_mib",
              "idle_code_mib", "idle_binary_mib", "page_tables_mib", "virt_gib",
              "first_p50_ms", "first_max_ms", "second_p50_ms", "second_max_ms",
              "rss_after_mib", "after_heap_mib", "after_code+data_mib", "after_pool_mib",
              "requests"]
    table = []
    for r in rows:
        table.append([
            r["label"], r["functions"], r["run"], round(r["serving_s"], 3),
            round(r["idle"]["rss_mib"], 1), round(r["idle"]["rss_heap_mib"], 1),
            round(r["idle"]["rss_code_mib"] + r["idle"]["rss_artifact data_mib"], 1),
            round(r["idle"]["rss_gust binary_mib"], 1),
            round(r["idle"]["page_tables_mib"], 1), round(r["idle"]["virt_gib"], 1),
            round(statistics.median(r["first_ms"]), 2), round(max(r["first_ms"]), 2),
            round(statistics.median(r["second_ms"]), 2), round(max(r["second_ms"]), 2),
            round(r["after"]["rss_mib"], 1), round(r["after"]["rss_heap_mib"], 1),
            round(r["after"]["rss_code_mib"] + r["after"]["rss_artifact data_mib"], 1),
            round(r["after"]["rss_instance pool_mib"], 1), len(r["first_ms"]),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    for line in [header] + table:
        print(" | ".join(str(x).rjust(w) for x, w in zip(line, widths)))

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(RESULTS, exist_ok=True)
    for name in (f"density-{stamp}", "density-latest"):
        with open(os.path.join(RESULTS, f"{name}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(table)
        with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
            json.dump({"stamp": stamp, "gust": args.gust, "rows": rows}, f, indent=1)
    print(f"wrote benches/results/density-{stamp}.{{csv,json}}", file=sys.stderr)


if __name__ == "__main__":
    main()
