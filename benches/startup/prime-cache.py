#!/usr/bin/env python3
"""Fills the compile cache of an app written by `make-1000.py` without
compiling every copy: compiling 10,000 hellos takes ~25 minutes on 2 cores.

    prime-cache.py [--gust BIN] DIR

make-1000.py's components are one hello with a different custom section
each, and wasmtime leaves custom sections out of its artifacts, so they
all compile to the same artifact. This script has gust compile two of
them (f0 and f1, each served alone with DIR's cache), checks that their
artifacts are byte-identical, reads the engine hash from the load index's
file name (`index-<engine hash>.txt`), and writes the artifact under every
other component's cache key, SHA-256(engine hash | component bytes), as a
file of its own (no hard links: nothing shared that a real cache would not
share). gust still reads, verifies and links every artifact itself: the
first start afterwards finds them in the cache but not in the load index.
"""
import argparse
import glob
import hashlib
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from density import serve, stop  # noqa: E402


def compile_one(gust, app_dir, cache, name):
    """Serves DIR/NAME.wasm alone with `cache`, so gust compiles it."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "gust.toml")
        with open(manifest, "w") as f:
            f.write(f'[cache]\ndir = "{cache}"\n[ledger]\nenabled = false\n'
                    f'[functions.{name}]\ncomponent = "{os.path.join(app_dir, name)}.wasm"\n'
                    f'[[routes]]\npath = "/"\nfunction = "{name}"\n')
        with open(os.path.join(tmp, "log"), "w") as log:
            proc, _, _ = serve(gust, manifest, log)
            stop(proc)


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/gust-target"))
    parser.add_argument("--gust", default=os.path.join(target, "release", "gust"))
    parser.add_argument("dir")
    args = parser.parse_args()
    app_dir = os.path.abspath(args.dir)
    cache = os.path.join(app_dir, "cache")
    os.makedirs(cache, exist_ok=True)
    before = set(glob.glob(os.path.join(cache, "*.cwasm")))
    compile_one(args.gust, app_dir, cache, "f0")
    compile_one(args.gust, app_dir, cache, "f1")
    indexes = glob.glob(os.path.join(cache, "index-*.txt"))
    if len(indexes) != 1:
        sys.exit(f"expected one load index in {cache}, found {indexes}")
    engine = bytes.fromhex(re.match(r"index-([0-9a-f]{64})\.txt",
                                    os.path.basename(indexes[0])).group(1))

    def key(name):
        data = open(os.path.join(app_dir, f"{name}.wasm"), "rb").read()
        return hashlib.sha256(engine + data).hexdigest()

    artifacts = [open(os.path.join(cache, f"{key(n)}.cwasm"), "rb").read() for n in ("f0", "f1")]
    if artifacts[0] != artifacts[1]:
        sys.exit("f0 and f1 compiled to different artifacts: compile them all instead")
    source = os.path.join(cache, f"{key('f0')}.cwasm")
    names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(app_dir, "f*.wasm")))
    written = 0
    for name in names:
        path = os.path.join(cache, f"{key(name)}.cwasm")
        if not os.path.exists(path):
            shutil.copyfile(source, path)
            written += 1
    print(f"{len(names)} components, {written} artifacts written, "
          f"{len(before)} were cached before", file=sys.stderr)


if __name__ == "__main__":
    main()
