#!/usr/bin/env python3
"""Runs wasmtime's own `wasi:http` test programs under `wasmtime serve` and
under `gust serve`, granted the same capabilities, sends both servers the
same requests and compares status, headers and body.

Called by `wasmtime-programs.sh` (which builds the components); usable on
its own:

    compat.py --components DIR --gust BIN --wasmtime BIN [--out FILE.json]

DIR holds `NAME.component.wasm` for each program. Each program gets a
fresh `gust.toml` (and data directory) in a temporary directory; the
capability mapping per program is in PROGRAMS below and in README.md.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

# Headers not compared: per-response values (date, gust's request id) and
# message framing (how each server chose to frame the same body).
IGNORED_HEADERS = {"date", "x-request-id", "connection", "keep-alive", "transfer-encoding", "content-length"}

# The upstream's bodies, as in wasmtime's `do_wasi_http_hash_all` test.
HASH_BODIES = {
    "/a": "\u2019Twas brillig, and the slithy toves",
    "/b": "Did gyre and gimble in the wabe:",
    "/c": "All mimsy were the borogoves,",
    "/d": "And the mome raths outgrabe.",
}


def megabyte():
    """wasmtime's `do_wasi_http_echo` body: a sorta-random-ish MiB."""
    out = bytearray(1024 * 1024)
    n = 0
    for i in range(len(out)):
        n = (n + 251) & 0xFF
        out[i] = n
    return bytes(out)


class Upstream(http.server.BaseHTTPRequestHandler):
    """The backend the proxy programs call: GET /a../d as in wasmtime's
    hash-all test, POST /echo echoes the body (double-echo test), GET or
    POST /fwd/... answers with what it received (forward-request)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        self.send_response_only(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-upstream", "compat")
        self.end_headers()
        self.wfile.write(body)

    def body_chunks(self):
        """The request body as it arrives (chunked or content-length)."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                if not line:
                    raise ConnectionError("request body cut")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        left = int(self.headers.get("content-length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 16384))
            if not chunk:
                raise ConnectionError("request body cut")
            left -= len(chunk)
            yield chunk

    def read_body(self):
        return b"".join(self.body_chunks())

    def stream_echo(self):
        """Like the hyper echo of wasmtime's double-echo test: the response
        head goes out at once and the body is echoed as it arrives (the
        program waits for the head before it sends the body)."""
        self.send_response_only(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-upstream", "compat")
        self.end_headers()
        self.wfile.flush()
        for chunk in self.body_chunks():
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def seen(self, body):
        headers = sorted(f"{k.lower()}: {v}" for k, v in self.headers.items())
        return json.dumps(
            {"method": self.command, "path": self.path, "headers": headers, "body_len": len(body)},
            indent=1,
        ).encode()

    def do_GET(self):
        if self.path in HASH_BODIES:
            self.reply(200, HASH_BODIES[self.path].encode())
        elif self.path.startswith("/fwd/"):
            self.reply(200, self.seen(b""), "application/json")
        else:
            self.reply(405, b"")

    def do_POST(self):
        if self.path == "/echo":
            self.stream_echo()
            return
        body = self.read_body()
        if self.path.startswith("/fwd/"):
            self.reply(200, self.seen(body), "application/json")
        else:
            self.reply(405, b"")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Server:
    """One server process (wasmtime serve or gust serve) on a free port."""

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.port = free_port()
        self.argv = [a.replace("{PORT}", str(self.port)) for a in argv]
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.ready = wait_port(self.port, self.proc)

    def log_tail(self, n=15):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def send(port, req):
    """Sends one request; returns (status, [(name, value)], body) or an error string."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(req["method"], req["path"], skip_host=True, skip_accept_encoding=True)
        conn.putheader("host", req.get("host", f"localhost:{port}"))
        for k, v in req.get("headers", []):
            conn.putheader(k, v)
        body = req.get("body")
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, [(k.lower(), v) for k, v in resp.getheaders()], data
    except (OSError, http.client.HTTPException) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def describe_body(body, mode, ctx):
    """A comparable form of a body (per case: exact, sorted lines, digest)."""
    if mode == "sha256":
        return f"{len(body)} bytes sha256 {hashlib.sha256(body).hexdigest()[:16]}"
    text = body.decode(errors="replace")
    if mode == "sorted-lines":
        # hash-all streams results in completion order.
        text = "\n".join(sorted(text.replace(ctx["upstream"], "UPSTREAM").splitlines()))
    return text.replace(ctx["upstream"], "UPSTREAM")


def summarize(result, mode, ctx):
    if isinstance(result, str):
        return {"error": result}
    status, headers, body = result
    relevant = sorted((k, v) for k, v in headers if k not in IGNORED_HEADERS)
    out = {
        "status": status,
        "headers": [f"{k}: {v}" for k, v in relevant],
        "body": describe_body(body, mode, ctx),
        "content_length": dict(headers).get("content-length"),
    }
    return out


def compare(w, g):
    """Differences between the wasmtime and gust summaries, as text."""
    if "error" in w or "error" in g:
        def said(x):
            return x.get("error") or f"{x['status']} {short(x['body'], 60)!r}"
        return [] if w == g else [f"wasmtime: {said(w)}; gust: {said(g)}"]
    diffs = []
    if w["status"] != g["status"]:
        diffs.append(f"status {w['status']} vs {g['status']}")
    wh, gh = set(w["headers"]), set(g["headers"])
    if wh - gh:
        diffs.append("only wasmtime: " + ", ".join(sorted(wh - gh)))
    if gh - wh:
        diffs.append("only gust: " + ", ".join(sorted(gh - wh)))
    if w["content_length"] and g["content_length"] and w["content_length"] != g["content_length"]:
        diffs.append(f"content-length {w['content_length']} vs {g['content_length']}")
    if w["body"] != g["body"]:
        diffs.append(f"body {short(w['body'])!r} vs {short(g['body'])!r}")
    return diffs


# The bodies each server answers with when the guest failed before its
# response (wasmtime serve: an HTML 500 page; gust: README "Statuses gust
# answers itself").
WASMTIME_500 = "<title>500 Internal Server Error</title>"
GUST_FAILURES = {"function trapped", "function sent no response", "function failed"}


def both_failed(w, g):
    if "error" in w or "error" in g:
        return False
    return (
        w["status"] == g["status"] == 500
        and WASMTIME_500 in w["body"]
        and g["body"].strip() in GUST_FAILURES
    )


def short(text, n=120):
    return text if len(text) <= n else text[:n] + "..."


def toml_str(s):
    return json.dumps(s)


def gust_manifest(program, component, data_dir, grants, head=""):
    lines = [
        f"name = {toml_str(program.replace('_', '-'))}",
        "",
        "[data]",
        f"dir = {toml_str(data_dir)}",
        head,
        "[functions.main]",
        f"component = {toml_str(component)}",
        *grants,
        "",
        "[[routes]]",
        'path = "/{*rest}"',
        'function = "main"',
        "",
    ]
    return "\n".join(lines)


def programs(ctx):
    """Each program: wasmtime flags and extra env, gust grants, requests.

    The flags are those of wasmtime's own tests (tests/all/cli_tests.rs);
    the api_proxy requests are those of crates/wasi-http/tests/all/p2.rs.
    """
    up = ctx["upstream"]
    up_host = up.removeprefix("http://")
    mib = ctx["mib"]
    hash_all = [("url", f"{up}{p}") for p in HASH_BODIES]
    return [
        {
            "program": "p2_cli_serve_hello_world",
            "wasmtime_flags": ["-Scli"],
            "grants": [],
            "cases": [
                {"name": "GET /", "method": "GET", "path": "/"},
                {"name": "POST /x body", "method": "POST", "path": "/x?q=1", "body": b"ignored"},
                {"name": "HEAD /", "method": "HEAD", "path": "/"},
            ],
        },
        {
            "program": "p2_cli_serve_config",
            "wasmtime_flags": ["-Scli", "-Sconfig", "-Sconfig-var=hello=world"],
            "grants": ['config = { hello = "world" }'],
            "cases": [{"name": "GET /", "method": "GET", "path": "/"}],
        },
        {
            # --env=BAR with BAR unset on the host (the test removes it):
            # wasmtime passes nothing for BAR, so gust grants only FOO.
            "program": "p2_cli_serve_echo_env",
            "wasmtime_flags": ["-Scli", "--env=FOO=bar", "--env=BAR"],
            "env_remove": ["BAR"],
            "grants": ['environment = { FOO = "bar" }'],
            "cases": [
                {"name": "env: FOO", "method": "GET", "path": "/", "headers": [("env", "FOO")]},
                {"name": "env: BAR (unset on host)", "method": "GET", "path": "/", "headers": [("env", "BAR")]},
                {"name": "env: PATH (not granted)", "method": "GET", "path": "/", "headers": [("env", "PATH")]},
                {"name": "no env header (guest asserts)", "method": "GET", "path": "/"},
            ],
        },
        {
            # --env=BAR with BAR=baz on the host: wasmtime inherits it;
            # gust reads it only through a secret the operator declares.
            "program": "p2_cli_serve_echo_env",
            "variant": "BAR set on host",
            "wasmtime_flags": ["-Scli", "--env=FOO=bar", "--env=BAR"],
            "env_set": {"BAR": "baz"},
            "head": '[secrets.bar]\nenv = "BAR"\n',
            "grants": ['environment = { FOO = "bar", BAR = "{{ secrets.bar }}" }'],
            "cases": [
                {"name": "env: BAR (BAR=baz on host)", "method": "GET", "path": "/", "headers": [("env", "BAR")]},
            ],
        },
        {
            # wasmtime's in-memory provider ignores the store name; the
            # program opens "". gust grants stores by name: "" first (as
            # the program needs), then "default" preloaded with hello=world.
            "program": "p2_cli_serve_keyvalue",
            "wasmtime_flags": ["-Scli", "-Skeyvalue", "-Skeyvalue-in-memory-data=hello=world"],
            "grants": ['key_value_stores = [""]'],
            "preload": {"store": "", "key": "hello", "value": b"world"},
            "cases": [{"name": "GET / (store \"\")", "method": "GET", "path": "/"}],
        },
        {
            "program": "p2_cli_serve_keyvalue",
            "variant": "gust grants \"default\"",
            "wasmtime_flags": ["-Scli", "-Skeyvalue", "-Skeyvalue-in-memory-data=hello=world"],
            "grants": ['key_value_stores = ["default"]'],
            "preload": {"store": "default", "key": "hello", "value": b"world"},
            "cases": [{"name": "GET / (store \"default\" preloaded)", "method": "GET", "path": "/"}],
        },
        {
            # No value for "hello" (wasmtime) / store "" not granted (gust):
            # the program traps after it has set its 200 response, so this
            # compares what a client sees of a failure after the head.
            "program": "p2_cli_serve_keyvalue",
            "variant": "no data: trap after response set",
            "wasmtime_flags": ["-Scli", "-Skeyvalue"],
            "grants": ['key_value_stores = ["default"]'],
            "cases": [{"name": "GET / (guest traps after set)", "method": "GET", "path": "/"}],
        },
        {
            "program": "p2_api_proxy",
            "wasmtime_flags": [],
            "grants": [],
            "cases": [
                {"name": "GET /test-path", "method": "GET", "path": "/test-path"},
                {"name": "POST /test-path body", "method": "POST", "path": "/test-path", "body": b"x" * 100},
                {
                    "name": "custom-forbidden-header: yes",
                    "method": "GET",
                    "path": "/test-path",
                    "headers": [("custom-forbidden-header", "yes")],
                },
                {"name": "GET /early_drop", "method": "GET", "path": "/early_drop"},
                {"name": "GET /new_fields/50", "method": "GET", "path": "/new_fields/50"},
                {"name": "GET /new_fields/200000", "method": "GET", "path": "/new_fields/200000"},
                {
                    "name": "GET /modify_fields/50 (+10 B headers)",
                    "method": "GET",
                    "path": "/modify_fields/50",
                    "headers": [("k0000", "v0000")],
                },
                {"name": "GET /modify_fields/x", "method": "GET", "path": "/modify_fields/x"},
            ],
        },
        {
            "program": "p2_api_proxy_streaming",
            "wasmtime_flags": [],
            "grants": [f"allowed_outbound_hosts = [{toml_str(up)}]"],
            "cases": [
                {
                    "name": "GET /hash-all (4 upstream urls)",
                    "method": "GET",
                    "path": "/hash-all",
                    "headers": hash_all,
                    "body_mode": "sorted-lines",
                },
                {
                    "name": "POST /echo 1 MiB",
                    "method": "POST",
                    "path": "/echo",
                    "headers": [("content-type", "application/octet-stream")],
                    "body": mib,
                    "body_mode": "sha256",
                },
                {
                    "name": "POST /double-echo 1 MiB via upstream",
                    "method": "POST",
                    "path": "/double-echo",
                    "headers": [("content-type", "application/octet-stream"), ("url", f"{up}/echo")],
                    "body": mib,
                    "body_mode": "sha256",
                },
                {"name": "POST /double-echo without url", "method": "POST", "path": "/double-echo", "body": b""},
                {"name": "GET /other", "method": "GET", "path": "/other"},
                {
                    # Not granted in gust (wasmtime serve allows any host):
                    # a difference by design, listed for the record.
                    "name": "GET /hash-all to a host not granted",
                    "method": "GET",
                    "path": "/hash-all",
                    "headers": [("url", f"http://localhost:{ctx['upstream_port']}/a")],
                    "body_mode": "sorted-lines",
                    "expected_difference": "gust grants only the listed upstream; wasmtime serve allows any host",
                },
            ],
        },
        {
            # The nearest gust has to wasmtime serve's "any host": a
            # wildcard grant. gust still refuses loopback and private
            # addresses unless an entry names them (README of outbound HTTP).
            "program": "p2_api_proxy_streaming",
            "variant": "gust grants *://*:*",
            "wasmtime_flags": [],
            "grants": ['allowed_outbound_hosts = ["*://*:*"]'],
            "cases": [
                {
                    "name": "GET /hash-all (4 upstream urls on 127.0.0.1)",
                    "method": "GET",
                    "path": "/hash-all",
                    "headers": hash_all,
                    "body_mode": "sorted-lines",
                    "expected_difference": "a wildcard grant does not reach loopback addresses in gust",
                },
            ],
        },
        {
            # The program forwards the request to its own scheme://authority:
            # the client sends the upstream's address as Host.
            "program": "p2_api_proxy_forward_request",
            "wasmtime_flags": [],
            "grants": [f"allowed_outbound_hosts = [{toml_str(up)}]"],
            "cases": [
                {"name": "GET /fwd/get?q=1 (Host: upstream)", "method": "GET", "path": "/fwd/get?q=1", "host": up_host},
                {
                    "name": "POST /fwd/post (Host: upstream)",
                    "method": "POST",
                    "path": "/fwd/post",
                    "host": up_host,
                    "body": b"dropped by the program",
                },
            ],
        },
    ]


def preload_gust_store(data_dir, app, store, key, value):
    """Writes key=value into the SQLite file gust opens for an unmapped
    store (DATA/apps/APP/kv/STORE.sqlite; gust created it at load)."""
    path = os.path.join(data_dir, "apps", app, "kv", f"{store}.sqlite")
    if not os.path.exists(path):
        return f"no store file {path}"
    db = sqlite3.connect(path, timeout=10)
    try:
        db.execute(
            "INSERT INTO kv (app, store, key, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (app, store, key) DO UPDATE SET value = excluded.value",
            (app, store, key, value),
        )
        db.commit()
    finally:
        db.close()
    return None


def run_program(spec, args, ctx, work):
    program = spec["program"]
    label = program + (f" [{spec['variant']}]" if spec.get("variant") else "")
    component = os.path.join(args.components, f"{program}.component.wasm")
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    pdir = os.path.join(work, slug)
    os.makedirs(pdir, exist_ok=True)
    data_dir = os.path.join(pdir, "data")
    app = program.replace("_", "-")

    env = {k: v for k, v in os.environ.items() if k not in spec.get("env_remove", [])}
    env.update(spec.get("env_set", {}))

    manifest = gust_manifest(program, component, data_dir, spec["grants"], spec.get("head", ""))
    manifest_path = os.path.join(pdir, "gust.toml")
    with open(manifest_path, "w") as f:
        f.write(manifest)

    wasmtime_argv = [args.wasmtime, "serve", "--addr=127.0.0.1:{PORT}", *spec["wasmtime_flags"], component]
    gust_argv = [args.gust, "serve", manifest_path, "--listen", "127.0.0.1:{PORT}", "--no-ledger",
                 "--cache-dir", os.path.join(work, "gust-cache")]

    result = {"program": program, "variant": spec.get("variant"), "gust_manifest": manifest,
              "wasmtime_command": None, "gust_command": None, "cases": []}
    wt = Server("wasmtime", wasmtime_argv, env, os.path.join(pdir, "wasmtime.log"))
    gs = Server("gust", gust_argv, env, os.path.join(pdir, "gust.log"))
    result["wasmtime_command"] = " ".join(wt.argv)
    result["gust_command"] = " ".join(gs.argv)
    try:
        not_ready = [s for s in (wt, gs) if not s.ready]
        if not_ready:
            result["status"] = "not runnable"
            result["why"] = "; ".join(f"{s.name} did not start: {s.log_tail(6)}" for s in not_ready)
            return result
        if "preload" in spec:
            p = spec["preload"]
            err = preload_gust_store(data_dir, app, p["store"], p["key"], p["value"])
            if err:
                result["preload_error"] = err
        for case in spec["cases"]:
            mode = case.get("body_mode", "text")
            w = summarize(send(wt.port, case), mode, ctx)
            g = summarize(send(gs.port, case), mode, ctx)
            diffs = compare(w, g)
            if not diffs:
                verdict = "same"
            elif both_failed(w, g):
                # Both servers answer for a guest that failed before
                # responding; only their own error pages differ.
                verdict = "same failure"
            elif case.get("expected_difference"):
                verdict = "expected difference"
            else:
                verdict = "different"
            result["cases"].append({
                "case": case["name"], "verdict": verdict, "differences": diffs,
                "expected_difference": case.get("expected_difference"), "wasmtime": w, "gust": g,
            })
        # What each server logged about these requests (traps, denials).
        time.sleep(0.3)
        result["wasmtime_log_tail"] = wt.log_tail()
        result["gust_log_tail"] = gs.log_tail()
        verdicts = {c["verdict"] for c in result["cases"]}
        result["status"] = "different" if verdicts & {"different"} else "same"
        return result
    finally:
        wt.stop()
        gs.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--components", required=True)
    ap.add_argument("--gust", required=True)
    ap.add_argument("--wasmtime", required=True)
    ap.add_argument("--out", help="JSON results file")
    ap.add_argument("--only", help="comma-separated program names")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (manifests, logs)")
    ap.add_argument("--source-commit", help="wasmtime commit the programs were built from (recorded)")
    args = ap.parse_args()

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = upstream.server_address[1]
    ctx = {"upstream": f"http://127.0.0.1:{port}", "upstream_port": port, "mib": megabyte()}

    work = tempfile.mkdtemp(prefix="gust-compat-")
    only = set(args.only.split(",")) if args.only else None
    results = []
    for spec in programs(ctx):
        if only and spec["program"] not in only:
            continue
        results.append(run_program(spec, args, ctx, work))
    upstream.shutdown()

    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError as e:
            return str(e)

    report = {
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wasmtime": version([args.wasmtime, "--version"]),
        "gust": args.gust,
        "gust_commit": version(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"]),
        "components": args.components,
        "wasmtime_source_commit": args.source_commit,
        "ignored_headers": sorted(IGNORED_HEADERS),
        "results": results,
    }
    print_table(results)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1, default=lambda b: base64.b64encode(b).decode())
        print(f"\nresults: {args.out}")
    if args.keep:
        print(f"work directory (manifests, server logs): {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def print_table(results):
    rows = []
    for r in results:
        label = r["program"] + (f" [{r['variant']}]" if r.get("variant") else "")
        if r["status"] == "not runnable":
            rows.append((label, "-", "not runnable", short(r["why"].replace("\n", " "), 200)))
            continue
        for c in r["cases"]:
            detail = "; ".join(c["differences"])
            if c["verdict"] == "same failure":
                detail = f"500 both (wasmtime: its HTML page; gust: {c['gust']['body'].strip()!r})"
            elif c["verdict"] == "same":
                w = c["wasmtime"]
                detail = f"{w.get('status', w.get('error'))} {short(w.get('body', ''), 40)!r}"
                if w.get("headers"):
                    detail += " [" + ", ".join(w["headers"]) + "]"
            rows.append((label, c["case"], c["verdict"], detail))
    widths = [max(len(row[i]) for row in rows + [("program", "case", "verdict", "")]) for i in range(3)]
    print(f"{'program':<{widths[0]}}  {'case':<{widths[1]}}  {'verdict':<{widths[2]}}  detail")
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {short(row[3], 300)}")


if __name__ == "__main__":
    sys.exit(main())
