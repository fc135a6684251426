"""What one fresh instance costs, per language (benches/languages/cost.sh).

For every component (the hellos benches/e2e/run.sh builds into
benches/.tools/components/), served alone by gust and by `wasmtime serve`
(same component; the `*-example` ones by gust only), one request at a time
on one keep-alive connection over loopback for --seconds after --warmup
requests, this reads the server process's /proc/PID/stat before and after and
reports per request:

  * server CPU (utime + stime, all threads) and minor / major page faults;
  * the client's mean round trip;
  * gust only: fuel (Wasm fuel + host fuel, what gust bills), host fuel, the
    linear memory's peak and gust's own wall time of the invocation, from
    the invocation log line of a separate probe server (RUST_LOG
    gust::invocation=info) and, as a check, from the measured server's
    ledger (`gust usage`: total fuel / requests).

Servers alternate (gust, wasmtime, gust, ...) for --rounds rounds, each
component in turn; every server this starts is stopped before the next.
Rows go to DIR/languages-STAMP.{csv,json} and the table to stdout.
Standard library only.
"""

import argparse
import csv
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

FIELDS = [
    "component",
    "runtime",
    "round",
    "component_bytes",
    "requests",
    "seconds",
    "server_cpu_ms_per_req",
    "server_minflt_per_req",
    "server_majflt",
    "client_ms_per_req",
    "server_rss_mib",
    "fuel_per_req",
    "host_fuel_per_req",
    "wasm_fuel_per_req",
    "ledger_fuel_per_req",
    "peak_memory_bytes",
    "gust_duration_us",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): minflt = 10, majflt = 12, utime 14, stime 15.
    return int(fields[7]), int(fields[9]), int(fields[11]) + int(fields[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class Server:
    def __init__(self, argv, port, log, env=None):
        self.port = port
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{argv[0]} exited; see {log}")
            try:
                status, _ = get(port)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{argv[0]} not ready after 180 s; see {log}")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def get(port, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/hello")
    response = conn.getresponse()
    body = response.read()
    if own:
        conn.close()
    return response.status, body


def warm(port, warmup):
    """A keep-alive connection, after `warmup` requests on it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(warmup):
        status, body = get(port, conn)
        if status != 200:
            raise SystemExit(f"unexpected answer {status}: {body!r}")
    return conn


def measure(server, warmup, seconds):
    """`warmup` requests, then as many as fit in `seconds`, one at a time on
    one keep-alive connection, with the server's counters around them."""
    conn = warm(server.port, warmup)
    pid = server.proc.pid
    flt0, maj0, cpu0 = proc_stat(pid)
    n = 0
    bad = 0
    started = time.monotonic()
    end = started + seconds
    while time.monotonic() < end:
        status, body = get(server.port, conn)
        n += 1
        bad += status != 200 or not body.startswith(b"Hello")
    elapsed = time.monotonic() - started
    flt1, maj1, cpu1 = proc_stat(pid)
    conn.close()
    if bad:
        raise SystemExit(f"{bad} of {n} answers were not a hello")
    return {
        "requests": n,
        "seconds": round(elapsed, 3),
        "server_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / CLK_TCK / n, 4),
        "server_minflt_per_req": round((flt1 - flt0) / n, 1),
        "server_majflt": maj1 - maj0,
        "client_ms_per_req": round(elapsed * 1000 / n, 4),
        "server_rss_mib": round(rss_mib(pid), 1),
    }


INVOCATION = re.compile(r"gust::invocation: invocation .*")


def probe(args, comp, wasm, work):
    """Fuel, host fuel, peak memory and gust's duration of one request,
    from the invocation log line of a gust serving `wasm` with no ledger."""
    port = free_port()
    log = os.path.join(work, f"probe-{comp}.log")
    server = Server(
        [args.gust, "serve", wasm, "--listen", f"127.0.0.1:{port}", "--no-ledger"],
        port,
        log,
        {"RUST_LOG": "warn,gust::invocation=info"},
    )
    try:
        for _ in range(5):
            get(port)
        time.sleep(0.3)
    finally:
        server.stop()
    lines = [m.group(0) for m in INVOCATION.finditer(open(log).read())]
    if not lines:
        raise SystemExit(f"no invocation line in {log}")
    fields = dict(kv.split("=", 1) for kv in lines[-1].split() if "=" in kv)
    fuels = {int(dict(kv.split("=", 1) for kv in l.split() if "=" in kv)["fuel"]) for l in lines}
    if len(fuels) > 1:
        print(f"note: {comp}: fuel differs between requests: {sorted(fuels)}", file=sys.stderr)
    fuel = int(fields["fuel"])
    host = int(fields["host_fuel"])
    return {
        "fuel_per_req": fuel,
        "host_fuel_per_req": host,
        "wasm_fuel_per_req": fuel - host,
        "peak_memory_bytes": int(fields["peak_memory"]),
        # The last of the 5: a warm process.
        "gust_duration_us": int(fields["duration_us"]),
    }


def ledger_fuel(args, ledger):
    out = subprocess.run(
        [args.gust, "usage", "--ledger", ledger, "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = json.loads(out)
    requests = sum(r["requests"] for r in rows)
    return round(sum(r["fuel"] for r in rows) / max(requests, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gust", required=True)
    p.add_argument("--wasmtime", required=True)
    p.add_argument("--components-dir", required=True)
    p.add_argument("--components", default="rust c go go-example python python-example js js-example")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--stamp", default=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    args = p.parse_args()

    comps = args.components.split()
    work = tempfile.mkdtemp(prefix="gust-languages-")
    probes = {}
    for comp in comps:
        wasm = os.path.join(args.components_dir, f"{comp}.wasm")
        probes[comp] = probe(args, comp, wasm, work)
        print(f"[languages] {comp}: {probes[comp]}", file=sys.stderr)

    rows = []
    for rnd in range(1, args.rounds + 1):
        for comp in comps:
            wasm = os.path.join(args.components_dir, f"{comp}.wasm")
            runtimes = ["gust"] if comp.endswith("-example") else ["gust", "wasmtime"]
            for rt in runtimes:
                port = free_port()
                log = os.path.join(work, f"{comp}-{rt}-{rnd}.log")
                ledger = os.path.join(work, f"{comp}-{rnd}.sqlite")
                if rt == "gust":
                    argv = [args.gust, "serve", wasm, "--listen", f"127.0.0.1:{port}", "--ledger", ledger]
                    env = {"RUST_LOG": "warn"}
                else:
                    argv = [
                        args.wasmtime, "serve", "-O", "pooling-allocator", "-S", "cli",
                        "--addr", f"127.0.0.1:{port}", wasm,
                    ]
                    env = {}
                server = Server(argv, port, log, env)
                try:
                    m = measure(server, args.warmup, args.seconds)
                finally:
                    server.stop()
                row = {
                    "component": comp,
                    "runtime": rt,
                    "round": rnd,
                    "component_bytes": os.path.getsize(wasm),
                    **m,
                }
                if rt == "gust":
                    row.update(probes[comp])
                    row["ledger_fuel_per_req"] = ledger_fuel(args, ledger)
                rows.append(row)
                print(f"[languages] {json.dumps(row)}", file=sys.stderr)

    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, f"languages-{args.stamp}")
    with open(base + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    with open(base + ".json", "w") as f:
        json.dump({"stamp": args.stamp, "cpus": os.cpu_count(), "rows": rows}, f, indent=1)
    for line in table(comps, rows):
        print(line)
    print(f"\nrows: {base}.csv, {base}.json")


def table(comps, rows):
    def mean(rs, k):
        vs = [r[k] for r in rs if r.get(k) is not None]
        return statistics.fmean(vs) if vs else float("nan")

    yield (
        "| component | size | fuel/req (Wasm + host) | peak memory | gust CPU ms/req | "
        "wasmtime CPU ms/req | gust/wasmtime CPU | gust minor faults/req | "
        "wasmtime minor faults/req | gust round trip ms | wasmtime round trip ms |"
    )
    yield "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for comp in comps:
        g = [r for r in rows if r["component"] == comp and r["runtime"] == "gust"]
        w = [r for r in rows if r["component"] == comp and r["runtime"] == "wasmtime"]
        if not g:
            continue
        first = g[0]
        size = first["component_bytes"]
        size = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.0f} KiB"
        fuel = f"{first['fuel_per_req']:,} ({first['wasm_fuel_per_req']:,} + {first['host_fuel_per_req']:,})"
        peak = f"{first['peak_memory_bytes'] / 2**20:.1f} MiB"

        def cell(rs, k, fmt):
            return fmt.format(mean(rs, k)) if rs else "–"

        gc, wc = mean(g, "server_cpu_ms_per_req"), mean(w, "server_cpu_ms_per_req")
        yield (
            f"| {comp} | {size} | {fuel} | {peak} | {gc:.3f} | {cell(w, 'server_cpu_ms_per_req', '{:.3f}')} | "
            f"{(f'{gc / wc:.2f}x' if w and wc else '–')} | {mean(g, 'server_minflt_per_req'):.0f} | "
            f"{cell(w, 'server_minflt_per_req', '{:.0f}')} | {mean(g, 'client_ms_per_req'):.3f} | "
            f"{cell(w, 'client_ms_per_req', '{:.3f}')} |"
        )


if __name__ == "__main__":
    main()
