"""Chunked reading of `deepntuplizer/tree` (record format) with uproot or coffea NanoEvents.

The tree is addressed without a cycle number (real files carry e.g. `;42`), by branch name only;
memory is bounded by `chunk_size` entries whatever the file size. Every failure names the file.
"""

from __future__ import annotations

import logging
from typing import Iterator

import awkward as ak
import uproot

from hhfm.errors import InputError
from hhfm.remote import (RetryPolicy, call_with_retries, configure_client, is_transient, is_url, is_xrootd,
                         truncated, xrootd_code)

TREE = "deepntuplizer/tree"

#: per-jet scalar branches the skim reads
JET_BRANCHES = ["fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "fj_doubleb", "fj_gen_pt", "fj_nbHadrons",
                "fj_ncHadrons", "fj_label", "fj_isQCD", "label_H_bb", "sample_isQCD"]
#: the record's event key (shared/hbb_opendata_schema.md section 2.7) plus the jet's index in its event
KEY_BRANCHES = ["sample_isQCD", "event_no", "rho", "npv", "ntrueInt", "jet_no"]
#: per-constituent branches (var * float32, sorted by pT in the record)
PFCAND_BRANCHES = ["pfcand_ptrel", "pfcand_erel", "pfcand_etarel", "pfcand_phirel", "pfcand_deltaR",
                   "pfcand_charge", "pfcand_isChargedHad", "pfcand_isNeutralHad", "pfcand_isGamma", "pfcand_isEl",
                   "pfcand_isMu", "pfcand_dxy", "pfcand_dxysig", "pfcand_dz", "pfcand_dzsig"]
BRANCHES = list(dict.fromkeys(JET_BRANCHES + KEY_BRANCHES + PFCAND_BRANCHES))

log = logging.getLogger("hhfm.skim")


def open_tree(source: str, policy: RetryPolicy | None = None):
    """Open `source` (local path or root:// / http URL) and return its `deepntuplizer/tree`, checked.

    Remote sources are retried on transient errors (`policy`); every failure names `source`.
    """
    policy = policy or RetryPolicy()
    if is_xrootd(source):
        configure_client(policy)
    f = call_with_retries(lambda: _open_file(source), source, "open the file", policy)
    return checked_tree(f, source, TREE, BRANCHES)


def checked_tree(f, source: str, name: str, branches, what: str = "") -> "uproot.TTree":
    """Tree `name` of an open file, with every branch of `branches`; InputError naming the file and what
    is missing otherwise (`what`: the format, e.g. " (JetClass format)")."""
    try:
        tree = f[name]
    except Exception as err:
        raise InputError(f"{source}: no TTree '{name}'{what} (keys: {f.keys(cycle=False)})") from err
    if not isinstance(tree, uproot.TTree):
        raise InputError(f"{source}: '{name}' is a {type(tree).__name__}, not a TTree")
    present = set(tree.keys(full_paths=False))
    missing = [b for b in branches if b not in present]
    if missing:
        raise InputError(f"{source}: tree '{name}' lacks branch(es) {', '.join(missing)}{what}")
    return tree


def _open_file(source: str):
    """uproot's file, checked to be complete: a partial download can still open and read."""
    try:
        f = uproot.open(source, array_cache=None)  # no cross-chunk cache: memory bounded by chunk_size
        size, end = f.file.source.num_bytes, f.file.fEND
        if size is not None and size < end:
            raise InputError(f"{source}: truncated file ({size} bytes, its ROOT header says {end})")
        return f
    except InputError:
        raise
    except FileNotFoundError as err:
        raise InputError(f"{source}: input file does not exist") from err
    except Exception as err:  # uproot raises ValueError/OSError/... for truncated or non-ROOT files
        if is_url(source) and is_transient(err):
            raise  # call_with_retries decides: retry, or give up naming the URL
        if is_url(source) and xrootd_code(err) == 3011:
            raise InputError(f"{source}: no such file on the server ({str(err).strip()})") from err
        short = truncated(source)
        if short:
            raise InputError(f"{source}: truncated file ({short})") from err
        raise InputError(f"{source}: not a readable ROOT file ({type(err).__name__}: {err})") from err


def iterate_chunks(source: str, chunk_size: int, reader: str = "uproot",
                   policy: RetryPolicy | None = None) -> Iterator[tuple[int, ak.Array]]:
    """Yield (first entry, chunk) with the skim's BRANCHES as fields, `chunk_size` entries at a time.

    A transient error while reading a remote chunk reopens the file and reads that chunk again.
    """
    policy = policy or RetryPolicy()
    state = {"tree": open_tree(source, policy), "fresh": True}
    n = state["tree"].num_entries

    def read(start: int, stop: int) -> ak.Array:
        if not state["fresh"]:  # a failed try may leave the connection broken: reopen
            state["tree"] = open_tree(source, policy)
        state["fresh"] = False
        try:
            if reader == "coffea":
                return _coffea_chunk(source, start, stop)
            return state["tree"].arrays(BRANCHES, entry_start=start, entry_stop=stop, library="ak")
        except InputError:
            raise
        except Exception as err:  # decompression / basket errors of a truncated or corrupt file
            if is_url(source) and is_transient(err):
                raise
            raise InputError(f"{source}: cannot read entries {start}-{stop} of '{TREE}' "
                             f"({type(err).__name__}: {err})") from err

    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        state["fresh"] = True
        yield start, call_with_retries(lambda: read(start, stop), source, f"read entries {start}-{stop}", policy)


def _coffea_chunk(source: str, start: int, stop: int) -> ak.Array:
    """Read one chunk through coffea NanoEvents (BaseSchema, virtual mode: only BRANCHES are read)."""
    import warnings

    from coffea.nanoevents import BaseSchema, NanoEventsFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = NanoEventsFactory.from_root({source: TREE}, schemaclass=BaseSchema, entry_start=start,
                                             entry_stop=stop, mode="virtual").events()
        return ak.zip({b: ak.materialize(events[b]) for b in BRANCHES}, depth_limit=1)


def num_entries(source: str, policy: RetryPolicy | None = None) -> int:
    return open_tree(source, policy).num_entries
