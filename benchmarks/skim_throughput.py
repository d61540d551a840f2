"""Skim throughput vs its floor, and peak memory vs input size.

    python benchmarks/skim_throughput.py [--input file.root] [--events 1500] [--chunk-size 2000]

Prints, measured in the same run on the same file: jets/s of `hhfm skim` (per-file step) and of a plain
uproot read of the same branches in the same chunks (the floor), and their ratio (target <= 2);
the coffea NanoEvents reader for comparison; then the peak RSS of the skim (fresh process each) on a
1x and a 4x copy of the input, which should be equal (memory bounded by chunk_size, not file size).
Without --input a record-format file is written with tests/record_files.py (~50 particles per jet).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PEAK = """
import sys
from hhfm.skim import skim_file
from hhfm.skim.params import stage_config

def status(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) / 1024

base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
if sys.argv[1] != "-":
    skim_file(sys.argv[1], None, sys.argv[2], stage_config({{}}, {{"skim": {{"chunk_size": {chunk}}}}}))
print(base, status("VmHWM:"))
"""


def floor_read(path: str, chunk: int) -> int:
    """Plain uproot read of the skim's branches, chunk by chunk (what any reader must pay)."""
    from hhfm.skim.reader import BRANCHES, open_tree

    tree = open_tree(path)
    n = 0
    for start in range(0, tree.num_entries, chunk):
        n += len(tree.arrays(BRANCHES, entry_start=start, entry_stop=start + chunk, library="ak"))
    return n


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="record-format ROOT file (default: write one)")
    ap.add_argument("--events", type=int, default=1500, help="events of the written file")
    ap.add_argument("--chunk-size", type=int, default=2000)
    args = ap.parse_args()
    import record_files as rf

    from hhfm.skim import skim_file
    from hhfm.skim.params import stage_config

    tmp = Path(tempfile.mkdtemp(prefix="skim_bench_"))
    cols = rf.random_jets(args.events, seed=1, max_cands=100)
    src = args.input or str(rf.write_record_file(tmp / "x1.root", cols))
    big = str(rf.write_record_file(tmp / "x4.root", rf.concat(cols, cols, cols, cols)))
    n = floor_read(src, args.chunk_size)
    t_floor = best_of(lambda: floor_read(src, args.chunk_size))
    def cfg(**runtime):  # defaults for every tracked key; only how the skim runs varies
        return stage_config({}, {"skim": {"chunk_size": args.chunk_size, **runtime}})

    t_skim = best_of(lambda: skim_file(src, None, tmp / "out.h5", cfg()))
    t_skim_lzf = best_of(lambda: skim_file(src, None, tmp / "out.h5", cfg(file_compression="lzf")))
    t_coffea = best_of(lambda: skim_file(src, None, tmp / "out.h5", cfg(reader="coffea")), repeat=1)
    print(f"input: {src} ({n} jets, chunk_size {args.chunk_size})")
    print(f"floor  (uproot read of the same branches): {t_floor:7.3f} s  {n / t_floor:9.0f} jets/s")
    print(f"skim   (defaults: uproot, uncompressed):   {t_skim:7.3f} s  {n / t_skim:9.0f} jets/s  "
          f"ratio {t_skim / t_floor:.2f}x (target <= 2x)")
    print(f"skim   (file_compression: lzf):            {t_skim_lzf:7.3f} s  {n / t_skim_lzf:9.0f} jets/s  "
          f"ratio {t_skim_lzf / t_floor:.2f}x")
    print(f"skim   (coffea NanoEvents reader):         {t_coffea:7.3f} s  {n / t_coffea:9.0f} jets/s  "
          f"ratio {t_coffea / t_floor:.2f}x")
    # glibc raises its mmap threshold dynamically, so freed chunk buffers fragment the heap and the
    # peak creeps up slowly with the number of chunks; a fixed threshold shows the skim's own footprint
    for label, env in (("default malloc", {}), ("MALLOC_MMAP_THRESHOLD_=65536", {"MALLOC_MMAP_THRESHOLD_": "65536"})):
        rss = {}
        for tag, path in (("no skim", "-"), ("1x input", src), ("4x input", big)):
            res = subprocess.run([sys.executable, "-c", PEAK.format(chunk=args.chunk_size), path, str(tmp / "m.h5")],
                                 capture_output=True, text=True, check=True, env={**os.environ, **env})
            base, peak = map(float, res.stdout.split()[-2:])
            rss[tag] = peak - base
            print(f"[{label}] peak RSS {tag:9s}: {peak:7.1f} MiB, {rss[tag]:6.1f} MiB above the imports")
        print(f"[{label}] skim working memory 4x/1x input: {rss['4x input'] / rss['1x input']:.2f} "
              "(1.00 = independent of input size)")

if __name__ == "__main__":
    main()
