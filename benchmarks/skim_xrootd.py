"""Skim throughput over XRootD (root://localhost, a real server) vs the same file on local disk.

    python benchmarks/skim_xrootd.py [--input file.root] [--events 3000] [--chunk-size 2000]

Needs the test server (tests/xrootd/server.sh start, as root). Prints, measured in the same run on the
same bytes: jets/s of `hhfm skim` reading the local file and reading it as root://localhost:PORT//eos/...,
best of 3 each, and their ratio. The target: streaming costs at most 1.5x the local time (ratio of
times <= 1.5). On localhost this measures the client/protocol overhead (vector reads of the skim's
33 of 219 branches, no latency); a remote site adds its round-trip time per read, once per basket.
Without --input a record-format file is written with tests/record_files.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SERVER = ROOT / "tests/xrootd/server.sh"
EXPORT = Path(os.environ.get("HHFM_XROOTD_STATE", "/tmp/hhfm-xrootd")) / "export"
TARGET = 1.5  # streamed time / local time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="record-format ROOT file (default: write one)")
    ap.add_argument("--events", type=int, default=3000, help="events of the written file")
    ap.add_argument("--chunk-size", type=int, default=2000)
    args = ap.parse_args()
    if subprocess.run([str(SERVER), "status"], capture_output=True).returncode != 0:
        sys.exit("no XRootD server on localhost: run `tests/xrootd/server.sh install && tests/xrootd/server.sh start`")
    import record_files as rf

    from hhfm.skim import skim_file
    from hhfm.skim.params import stage_config
    from skim_throughput import best_of  # benchmarks/ is this script's directory

    tmp = Path(tempfile.mkdtemp(prefix="skim_xrootd_"))
    src = Path(args.input) if args.input else rf.write_record_file(tmp / "x.root", rf.random_jets(args.events, seed=1))
    served = EXPORT / "eos" / f"bench-{uuid.uuid4().hex[:8]}"
    served.mkdir(parents=True)
    served.chmod(0o755)
    shutil.copyfile(src, served / "x.root")
    (served / "x.root").chmod(0o644)
    base = subprocess.run([str(SERVER), "url"], capture_output=True, text=True, check=True).stdout.strip()
    url = f"{base}/eos/{served.name}/x.root"
    cfg = stage_config({}, {"skim": {"chunk_size": args.chunk_size}})
    try:
        jets = skim_file(url, None, tmp / "warm.h5", cfg)["entries_read"]  # warm the client (first connection)
        t_local = best_of(lambda: skim_file(str(src), None, tmp / "local.h5", cfg))
        t_remote = best_of(lambda: skim_file(url, None, tmp / "remote.h5", cfg))
    finally:
        shutil.rmtree(served, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    size = (src.stat().st_size if args.input else None)
    print(f"file: {jets} jets{f', {size / 1e6:.1f} MB' if size else ''}, chunk {args.chunk_size}")
    print(f"skim, local disk           : {jets / t_local:10.0f} jets/s  (reference)")
    print(f"skim, root://localhost      : {jets / t_remote:10.0f} jets/s")
    ratio = t_remote / t_local
    print(f"time ratio streamed / local: {ratio:.2f}  (target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")


if __name__ == "__main__":
    main()
