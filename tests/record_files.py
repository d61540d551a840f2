"""Hand-written record-format ROOT files (shared/hbb_opendata_schema.md section 5.2) for skim tests.

Only the branches the skim reads are written (plus their counters), with the record's dtypes:
float32 scalars, int32 flags/labels, uint32 event_no/jet_no, var * float32 `pfcand_*` lists.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

FLOAT_SCALARS = ["fj_pt", "fj_eta", "fj_phi", "fj_mass", "fj_sdmass", "fj_doubleb", "fj_gen_pt", "rho", "npv",
                 "ntrueInt"]
INT_SCALARS = ["fj_nbHadrons", "fj_ncHadrons", "fj_label", "fj_isQCD", "label_H_bb", "sample_isQCD"]
UINT_SCALARS = ["event_no", "jet_no"]
PFCAND = ["ptrel", "erel", "etarel", "phirel", "deltaR", "charge", "isChargedHad", "isNeutralHad", "isGamma",
          "isEl", "isMu", "dxy", "dxysig", "dz", "dzsig"]


def random_jets(n_events: int, seed: int = 0, sample_isQCD: int = 1, jets_per_event: tuple[int, int] = (1, 6),
                max_cands: int = 120, event_offset: int = 0) -> dict:
    """Columns of `n_events` random events, jets listed in a shuffled (not pT) order within each event."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in FLOAT_SCALARS + INT_SCALARS + UINT_SCALARS}
    cands: dict[str, list] = {k: [] for k in PFCAND}
    for ev in range(n_events):
        nj = int(rng.integers(jets_per_event[0], jets_per_event[1] + 1))
        rho, npv, ntrue = rng.uniform(5, 40), float(rng.integers(5, 45)), float(rng.integers(0, 75))
        for j in rng.permutation(nj):
            pt = float(rng.uniform(200, 1500))
            h = int(sample_isQCD == 0 and rng.random() < 0.7)
            label = 41 if h else int(rng.choice([51, 52, 53, 54, 55]))
            row = dict(fj_pt=pt, fj_eta=rng.uniform(-2.4, 2.4), fj_phi=rng.uniform(-np.pi, np.pi),
                       fj_mass=rng.uniform(10, 250), fj_sdmass=rng.uniform(0, 220), fj_doubleb=rng.uniform(-1, 1),
                       fj_gen_pt=pt if h else -999.0, rho=rho, npv=npv, ntrueInt=ntrue,
                       fj_nbHadrons=2 if h else int(label == 51) * 2 + int(label == 53),
                       fj_ncHadrons=int(label == 52) * 2 + int(label == 54), fj_label=label,
                       fj_isQCD=int(label >= 50), label_H_bb=h, sample_isQCD=sample_isQCD,
                       event_no=ev + event_offset, jet_no=int(j))
            for k, v in row.items():
                cols[k].append(v)
            n = int(rng.integers(2, max_cands))
            ptrel = np.sort(rng.exponential(0.02, n) + 0.95 / pt)[::-1]
            charge = rng.choice([-1.0, 0.0, 1.0], n)
            deta, dphi = rng.normal(0, 0.2, n), rng.normal(0, 0.2, n)
            dxy = np.where(charge != 0, rng.normal(0, 0.02, n), 0.0)
            dz = np.where(charge != 0, rng.normal(0, 0.05, n), 0.0)
            part = dict(ptrel=ptrel, erel=ptrel * rng.uniform(0.8, 1.2, n), etarel=deta, phirel=dphi,
                        deltaR=np.hypot(deta, dphi), charge=charge, isChargedHad=(charge != 0) * 1.0,
                        isNeutralHad=(charge == 0) * (rng.random(n) < 0.3), isGamma=np.zeros(n), isEl=np.zeros(n),
                        isMu=np.zeros(n), dxy=dxy, dxysig=np.where(charge != 0, dxy / 0.01, 0.0), dz=dz,
                        dzsig=np.where(charge != 0, dz / 0.02, 0.0))
            part["isGamma"] = ((charge == 0) & (part["isNeutralHad"] == 0)) * 1.0
            for k in PFCAND:
                cands[k].append(np.asarray(part[k], dtype=np.float32))
    return {"scalars": cols, "pfcand": cands}


def concat(*parts: dict) -> dict:
    """Concatenate column dicts from random_jets (entries in the given order)."""
    return {g: {k: sum((p[g][k] for p in parts), []) for k in parts[0][g]} for g in ("scalars", "pfcand")}


def take(jets: dict, rows) -> dict:
    """Entries `rows` (in that order) of a column dict."""
    return {g: {k: [v[i] for i in rows] for k, v in jets[g].items()} for g in ("scalars", "pfcand")}


def write_record_file(path: str | Path, jets: dict, drop: tuple[str, ...] = (), basket_entries: int = 1000) -> Path:
    """Write `jets` as TTree deepntuplizer/tree with the record's branch names and dtypes.

    Entries go in baskets of `basket_entries` (one `extend` each), like ROOT's auto-flush in real
    files: a reader then decompresses only the baskets of the entries it asks for.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    s = jets["scalars"]
    branches: dict = {}
    for k in FLOAT_SCALARS:
        branches[k] = np.asarray(s[k], dtype=np.float32)
    for k in INT_SCALARS:
        branches[k] = np.asarray(s[k], dtype=np.int32)
    for k in UINT_SCALARS:
        branches[k] = np.asarray(s[k], dtype=np.uint32)
    branches["npfcands"] = np.asarray([len(x) for x in jets["pfcand"]["ptrel"]], dtype=np.float32)
    counts = np.asarray([len(x) for x in jets["pfcand"]["ptrel"]], dtype=np.int64)
    flat = {k: np.concatenate([np.asarray(x, dtype=np.float32) for x in jets["pfcand"][k]] or [np.zeros(0, np.float32)])
            for k in PFCAND if f"pfcand_{k}" not in drop}
    pf = ak.zip({k: ak.unflatten(v, counts) for k, v in flat.items()})
    branches["pfcand"] = pf
    branches = {k: v for k, v in branches.items() if k not in drop}
    with uproot.recreate(path) as f:
        tree = f.mktree("deepntuplizer/tree", {k: v.type if isinstance(v, ak.Array) else v.dtype
                                               for k, v in branches.items()},
                        counter_name=lambda counted: "n_pfcands", title="tree")
        n = len(branches["fj_pt"]) if "fj_pt" in branches else len(branches["event_no"])
        for a in range(0, max(n, 1), basket_entries):
            tree.extend({k: v[a:a + basket_entries] for k, v in branches.items()})
    return path
