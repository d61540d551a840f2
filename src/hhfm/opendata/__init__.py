"""`hhfm opendata-files`: the CMS open data record 12102's ROOT files as a config overlay.

The record (shared/hbb_opendata_schema.md section 1.4) holds 91 ROOT files, `test/ntuple_merged_{0..8}`
and `train/ntuple_merged_{9..90}`, served over XRootD by CERN's EOS. The list is built in (this
module is its one source) and written to `configs/opendata.yaml`; `--from-portal` asks the portal
(cernopendata-client, needs the network) instead, and `--base` points the same names at a mirror
(e.g. a site's copy, or the test server of tests/xrootd/server.sh).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from hhfm.errors import HhfmError
from hhfm.io import atomic_path

RECORD_ID = 12102
#: XRootD base of the record on CERN's EOS (the same tree is under http://opendata.cern.ch/eos/...)
BASE_URL = ("root://eospublic.cern.ch//eos/opendata/cms/datascience/HiggsToBBNtupleProducerTool/"
            "HiggsToBBNTuple_HiggsToBB_QCD_RunII_13TeV_MC/")
#: file indices of the record's test and train directories
SPLIT_FILES = {"test": range(0, 9), "train": range(9, 91)}
FILE_NAME = "ntuple_merged_{index}.root"
_NAME = re.compile(r"/(test|train)/ntuple_merged_(\d+)\.root$")


def record_files(base: str = BASE_URL) -> list[str]:
    """Every ROOT file of the record under `base`: test files first, then train, by index."""
    base = base if base.endswith("/") else base + "/"
    return [f"{base}{split}/{FILE_NAME.format(index=i)}" for split, idx in SPLIT_FILES.items() for i in idx]


def portal_files(timeout_s: float = 120.0) -> list[str]:
    """The record's ROOT file URLs as the portal lists them now (cernopendata-client, needs the network)."""
    cmd = ["cernopendata-client", "get-file-locations", "--recid", str(RECORD_ID), "--protocol", "xrootd"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as err:
        raise HhfmError("cernopendata-client is not installed (pip install cernopendata-client)") from err
    except subprocess.TimeoutExpired as err:
        raise HhfmError(f"the CERN open data portal did not answer within {timeout_s:.0f} s "
                        f"(no network here?); the shipped list is unchanged") from err
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no message"]
        raise HhfmError(f"cannot reach the CERN open data portal for record {RECORD_ID} ({why[0]}); "
                        f"no network here? The shipped list is unchanged")
    urls = [u.strip() for u in done.stdout.splitlines() if _NAME.search(u.strip())]
    if not urls:
        raise HhfmError(f"the portal listed no ntuple_merged_*.root files for record {RECORD_ID}")
    return sorted(urls, key=_sort_key)


def _sort_key(url: str) -> tuple[int, int]:
    m = _NAME.search(url)
    return (0 if m.group(1) == "test" else 1, int(m.group(2)))


def overlay_text(files: list[str], origin: str) -> str:
    """configs/opendata.yaml: data.source opendata and the files, one per line."""
    lines = [f"# CMS open data record {RECORD_ID} (https://opendata.cern.ch/record/{RECORD_ID}): {len(files)} ROOT files.",
             f"# Written by `hhfm opendata-files` ({origin}); regenerate rather than edit.",
             "# Use: snakemake -c8 --configfile configs/opendata.yaml   (README: Running on the real record)",
             "data:", "  source: opendata", "  opendata_files:"]
    lines += [f"    - {u}" for u in files]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="configs/opendata.yaml", help="overlay to write (atomically)")
    parser.add_argument("--base", default=BASE_URL, help="base URL or directory of a copy in the record's layout")
    parser.add_argument("--from-portal", action="store_true",
                        help="ask the portal (cernopendata-client, needs the network) instead of the built-in list")
    parser.add_argument("--split", choices=["all", "test", "train"], default="all", help="only these files")


def run(args: argparse.Namespace) -> None:
    if args.from_portal:
        files, origin = portal_files(), "listed by the CERN open data portal"
        if args.base != BASE_URL:
            files = [args.base.rstrip("/") + "/" + "/".join(u.rsplit("/", 2)[-2:]) for u in files]
    else:
        files, origin = record_files(args.base), "built-in list of hhfm.opendata"
    if args.split != "all":
        files = [u for u in files if f"/{args.split}/" in u]
    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(overlay_text(files, origin))
    print(f"{args.output}: {len(files)} files ({origin})")
