#!/usr/bin/env python3
"""Writes N distinct copies of the hello component (each with a custom
section naming its index, so each compiles and caches separately) and a
gust.toml routing /f/{i} to each, into DIR.

    make-1000.py DIR [N] [HELLO.wasm]
"""
import os
import sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/gust-target"))
hello_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
    target, "guest-examples/wasm32-wasip2/release/hello.wasm")
hello = open(hello_path, "rb").read()


def leb(v):
    out = b""
    while True:
        byte, v = v & 0x7F, v >> 7
        if v:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


os.makedirs(out, exist_ok=True)
manifest = ['[cache]\ndir = "cache"\n[ledger]\nenabled = false\n']
for i in range(n):
    name = b"gust-distinct"
    body = leb(len(name)) + name + str(i).encode()
    with open(os.path.join(out, f"f{i}.wasm"), "wb") as f:
        f.write(hello + b"\x00" + leb(len(body)) + body)
    manifest.append(
        f'[functions.f{i}]\ncomponent = "f{i}.wasm"\n'
        f'[[routes]]\npath = "/f/{i}"\nfunction = "f{i}"\n')
with open(os.path.join(out, "gust.toml"), "w") as f:
    f.write("".join(manifest))
print(f"wrote {n} components and gust.toml to {out}")
