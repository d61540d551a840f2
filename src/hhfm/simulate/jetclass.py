"""Stage `simulate-jetclass`: a JetClass-like sample (Qu, Li, Qian, arXiv:2202.03772) of one class,
simulated with Pythia 8 + FastJet + the parametric detector of this package and written as ONE ROOT
file in the JetClass format (shared/pretrained/README.md "JetClass file format").

Python API: `simulate_jetclass_file(cls, n_jets, seed, output, max_particles=128, index=0, ...) -> dict`.
CLI: `hhfm simulate-jetclass --class Hbb --n-jets N --seed S --index K --output HToBB_K.root
[--max-particles 128] [--qcd-process zjets|dijet] [--no-progress]`.

Chain (reused from hhfm.simulate): `generate` (Pythia 8, 13 TeV, `samples.COMMON_SETTINGS`:
limitTau0 / tau0Max = 10 mm), `detector.reconstruct` (default `simulate.detector` config, no pile-up,
like JetClass), then Delphes-like thresholds (charged pT > 0.1 GeV, photons E > 0.5 GeV, neutral
hadrons E > 1 GeV), `jets.cluster` (anti-kT R = 0.8, soft drop beta = 0 / z_cut = 0.1, tau1..3); tau4
is computed here the same way (beta = 1, exclusive-kT axes, normalised by sum pT * R).

Selection (JetClass): 500 < pT < 1000 GeV, |eta| < 2; a signal jet must contain the decay products
of its resonance / top: every quark, gluon and charged lepton (e, mu, tau; the tau before its decay)
of the decay chain within dR < 0.8 of the jet axis (neutrinos are not required). QCD: no matching.
Every jet of an event that passes is kept; the file holds exactly `n_jets` jets.

Processes (Pythia 8 hard processes, `PhaseSpace:pTHatMin` = PTHAT_MIN):
- Hbb, Hcc, Hgg, H4q, Hqql: `HiggsSM:ffbar2HZ` with Z -> nu nu (the H recoils against nothing
  visible), H forced by `25:onMode` to b b~ / c c~ / g g / W W*. H4q: both W -> q q'. Hqql: W -> q q'
  or l nu (l = e, mu, tau) and only decays with exactly one leptonic W are kept (~44 %).
- Zqq: `WeakBosonAndParton:qqbar2gmZg + qg2gmZq` (pure Z, `WeakZ0:gmZmode = 2`), Z -> q q~ (q = udscb).
- Wqq: `WeakBosonAndParton:qqbar2Wg + qg2Wq`, W -> q q'.
- Tbqq / Tbl: `Top:gg2ttbar + qqbar2ttbar`, every W -> q q' (Tbqq) or every W -> l nu, l = e, mu, tau (Tbl).
- QCD: `qcd_process="zjets"` (default) Z(-> nu nu) + jet (`qqbar2gmZg + qg2gmZq`), as JetClass'
  ZJetsToNuNu; `"dijet"`: `HardQCD:all`.

Conventions decided here (the published JetClass example file `JetClass_example_100k.root`,
`tree.show()` in jet-universe/particle_transformer notebooks/JetClass101.ipynb, and its dataloader.py):
- The FILE stores `part_deta = sign(jet_eta) * (part_eta - jet_eta)` (dataloader docstring:
  `np.where(jet_eta>0, part_eta-jet_eta, -(part_eta-jet_eta))`; the loader reads part_deta as is) and
  `part_dphi = delta_phi(part_phi, jet_phi)` in [-pi, pi).
- Particles are ordered by pT, descending; at most `max_particles` (the hardest) are stored
  (<= 0: all). `jet_nparticles` = the number stored.
- Impact parameters in mm (detector.py works in cm): `part_d0val/d0err` = transverse IP and its
  error, `part_dzval/dzerr` longitudinal; 0 for neutral particles.
- dtypes as in the example file: part_* float32 jagged, except part_is* int32 jagged; jet_* float32;
  label_QCD float32, label_Hbb/Hcc/Hgg/H4q/Hqql bool, label_Zqq/Wqq/Tbqq/Tbl int32; aux_* float32.
- One deviation forced by uproot (it cannot write std::vector): jagged branches need an integer
  counter branch; `jet_nparticles` IS that counter, so it is int32 instead of float32 (same value),
  and no extra branch exists: the branch names are exactly JetClass'.
- aux_genpart_pt/eta/phi/pid: the matched resonance / top (its last copy, before decay); for QCD
  the nearest outgoing hard-process parton. aux_truth_match: 1 for signal; for QCD 1 if that parton
  is within dR < 0.8.
- N-subjettiness is normalised (tau_N / (sum pT * 0.8)), as in the rest of hhfm; JetClass' own
  normalisation is not documented; ratios tau21 / tau32 do not depend on it.
A JSON sidecar `<output>.json` records class, seeds, events generated, timing and Pythia settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hhfm.errors import ConfigError
from hhfm.features import JETCLASS_CLASSES, JETCLASS_FILE_PREFIX, JETCLASS_MAX_ETA, JETCLASS_PT_RANGE
from hhfm.io import atomic_path, setup_logging, write_json
from hhfm.simulate import samples

log = logging.getLogger("hhfm.simulate.jetclass")

TREE = "tree"
MATCH_DR = 0.8
PTHAT_MIN = 450.0
BATCH_EVENTS = 100
FLUSH_JETS = 2000
#: Delphes-like reconstruction thresholds (GeV): charged pT, photon E, neutral-hadron E
MIN_CHARGED_PT, MIN_PHOTON_E, MIN_NEUTRAL_HADRON_E = 0.1, 0.5, 1.0

PART_FLOAT = ["part_px", "part_py", "part_pz", "part_energy", "part_deta", "part_dphi", "part_d0val", "part_d0err",
              "part_dzval", "part_dzerr", "part_charge"]  # fmt: skip
PART_INT = ["part_isChargedHadron", "part_isNeutralHadron", "part_isPhoton", "part_isElectron", "part_isMuon"]
COUNTER = "jet_nparticles"
JET_FLOAT = ["jet_pt", "jet_eta", "jet_phi", "jet_energy", "jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3",
             "jet_tau4"]  # fmt: skip
LABEL_DTYPES: dict[str, np.dtype] = {
    f"label_{c}": np.dtype(np.float32 if c == "QCD" else bool if c.startswith("H") else np.int32)
    for c in JETCLASS_CLASSES
}
AUX_FLOAT = ["aux_genpart_eta", "aux_genpart_phi", "aux_genpart_pid", "aux_genpart_pt", "aux_truth_match"]
#: every branch of the file (JetClass' names exactly)
BRANCHES = sorted([*PART_FLOAT, *PART_INT, COUNTER, *JET_FLOAT, *LABEL_DTYPES, *AUX_FLOAT])

QUARKS, GLUON, CHARGED_LEPTONS = (1, 2, 3, 4, 5), 21, (11, 13, 15)
RESONANCES = (6, 23, 24, 25)  # followed through their decays when collecting decay products


@dataclass(frozen=True)
class ClassSpec:
    """Pythia process of a class and the decay its jets must contain (None = QCD, no matching)."""

    settings: tuple[str, ...]
    resonance: int | None = None  # |pdgId| of the matched particle
    n_quarks: int = 0
    n_gluons: int = 0
    n_leptons: int = 0
    flavour: int | None = None  # every quark has this |pdgId|


_ZNUNU = ("23:onMode = off", "23:onIfAny = 12 14 16")
_HZ = ("HiggsSM:ffbar2HZ = on", *_ZNUNU, "25:onMode = off")
_VJET = ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2")
_WJET = ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on")
_TT = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off")
_W_HAD = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")

CLASSES: dict[str, ClassSpec] = {
    "Hbb": ClassSpec((*_HZ, "25:onIfMatch = 5 -5"), 25, n_quarks=2, flavour=5),
    "Hcc": ClassSpec((*_HZ, "25:onIfMatch = 4 -4"), 25, n_quarks=2, flavour=4),
    "Hgg": ClassSpec((*_HZ, "25:onIfMatch = 21 21"), 25, n_gluons=2),
    "H4q": ClassSpec((*_HZ, "25:onIfMatch = 24 -24", *_W_HAD), 25, n_quarks=4),
    "Hqql": ClassSpec((*_HZ, "25:onIfMatch = 24 -24", "24:onMode = off", "24:onIfAny = 1 2 3 4 5 11 13 15"), 25,
                      n_quarks=2, n_leptons=1),  # fmt: skip
    "Zqq": ClassSpec((*_VJET, "23:onMode = off", "23:onIfAny = 1 2 3 4 5"), 23, n_quarks=2),
    "Wqq": ClassSpec((*_WJET, *_W_HAD), 24, n_quarks=2),
    "Tbqq": ClassSpec((*_TT, "24:onIfAny = 1 2 3 4 5"), 6, n_quarks=3),
    "Tbl": ClassSpec((*_TT, "24:onIfAny = 11 13 15"), 6, n_quarks=1, n_leptons=1),
}
QCD_PROCESSES: dict[str, tuple[str, ...]] = {"zjets": (*_VJET, *_ZNUNU), "dijet": ("HardQCD:all = on",)}
assert sorted([*CLASSES, "QCD"]) == sorted(JETCLASS_CLASSES)


def class_spec(cls: str, qcd_process: str = "zjets") -> ClassSpec:
    """The ClassSpec of a JetClass class name; ConfigError for an unknown class / QCD process."""
    if cls == "QCD":
        if qcd_process not in QCD_PROCESSES:
            raise ConfigError(f"unknown QCD process {qcd_process!r}; choose from {sorted(QCD_PROCESSES)}")
        return ClassSpec(QCD_PROCESSES[qcd_process])
    if cls not in CLASSES:
        raise ConfigError(f"unknown JetClass class {cls!r}; choose from {JETCLASS_CLASSES}")
    return CLASSES[cls]


def pythia_settings(cls: str, pythia_seed: int, qcd_process: str = "zjets", pthat_min: float = PTHAT_MIN,
                    extra: Sequence[str] = ()) -> list[str]:  # fmt: skip
    """Every Pythia `readString` line of one class and seed (`extra` lines last, so they override)."""
    spec = class_spec(cls, qcd_process)
    return [*samples.COMMON_SETTINGS, "Random:setSeed = on", f"Random:seed = {pythia_seed}",
            f"PhaseSpace:pTHatMin = {pthat_min:g}", *spec.settings, *extra]  # fmt: skip


# --- CLI -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class", dest="cls", required=True, choices=JETCLASS_CLASSES, help="JetClass class")
    parser.add_argument("--n-jets", type=int, required=True, help="number of jets in the file")
    parser.add_argument("--seed", type=int, required=True, help="global seed")
    parser.add_argument("--index", type=int, default=0, help="file index (>= 0): distinct seeds per file")
    parser.add_argument("--output", required=True, help="output ROOT file (a .json sidecar is written next to it)")
    parser.add_argument("--max-particles", type=int, default=128,
                        help="particles kept per jet, hardest first (<= 0: all)")
    parser.add_argument("--qcd-process", default="zjets", choices=sorted(QCD_PROCESSES),
                        help="QCD jets: Z(nunu)+jets (JetClass) or dijets")
    parser.add_argument("--no-progress", action="store_true", help="disable the progress bar")


def run(args: argparse.Namespace) -> None:
    setup_logging()
    simulate_jetclass_file(args.cls, args.n_jets, args.seed, Path(args.output), max_particles=args.max_particles,
                           index=args.index, qcd_process=args.qcd_process, progress=not args.no_progress)  # fmt: skip


# --- truth matching ------------------------------------------------------------------------------


def _daughters(batch, row: int) -> list[int]:
    d1, d2 = int(batch.daughter1[row]), int(batch.daughter2[row])
    if d1 < 0:
        return []
    if d2 < 0 or d2 == d1:
        return [d1]
    return list(range(d1, d2 + 1)) if d2 > d1 else [d1, d2]


def _last_copy(batch, row: int) -> tuple[int, list[int]]:
    """The last copy of a particle (through recoils and emissions, e.g. t -> t g) and its daughters."""
    pid = int(batch.pid[row])
    for _ in range(1000):
        ds = _daughters(batch, row)
        same = [d for d in ds if int(batch.pid[d]) == pid]
        if not same:
            return row, ds
        row = same[0]
    raise RuntimeError("Pythia event record: copy chain too long")


def _decay_leaves(batch, row: int) -> tuple[int, list[int]]:
    """(last copy, decay products) of a resonance; decays of intermediate t / Z / W / H are followed."""
    last, ds = _last_copy(batch, row)
    leaves: list[int] = []
    for d in ds:
        if abs(int(batch.pid[d])) in RESONANCES:
            leaves += _decay_leaves(batch, d)[1]
        else:
            leaves.append(d)
    return last, leaves


def _decay_ok(spec: ClassSpec, pids: np.ndarray) -> bool:
    a = np.abs(pids)
    quarks = a[np.isin(a, QUARKS)]
    ok = (len(quarks) == spec.n_quarks and int((a == GLUON).sum()) == spec.n_gluons
          and int(np.isin(a, CHARGED_LEPTONS).sum()) == spec.n_leptons)  # fmt: skip
    return ok and (spec.flavour is None or bool(np.all(quarks == spec.flavour)))


@dataclass
class Resonance:
    """A generated resonance / top of the class' decay: its event, last copy and the rows to match."""

    event: int
    row: int
    match: np.ndarray  # rows of its quarks, gluons and charged leptons


def resonances(batch, spec: ClassSpec) -> list[Resonance]:
    """Hard-process resonances of `spec.resonance` whose decay is the class' decay."""
    out: list[Resonance] = []
    if spec.resonance is None:
        return out
    rows = np.flatnonzero((np.abs(batch.pid) == spec.resonance) & (np.abs(batch.status) == 22))
    for r in rows.tolist():
        last, leaves = _decay_leaves(batch, r)
        leaves = np.asarray(leaves, dtype=np.int64)
        if not len(leaves) or not _decay_ok(spec, batch.pid[leaves]):
            continue
        a = np.abs(batch.pid[leaves])
        visible = np.isin(a, QUARKS) | (a == GLUON) | np.isin(a, CHARGED_LEPTONS)
        event = int(np.searchsorted(batch.offsets, r, side="right") - 1)
        out.append(Resonance(event, last, leaves[visible]))
    return out


def _gen(batch, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from hhfm.simulate.labels import eta_phi

    eta, phi = eta_phi(batch.px[rows], batch.py[rows], batch.pz[rows])
    return np.hypot(batch.px[rows], batch.py[rows]), eta, phi


def match_jets(batch, spec: ClassSpec, jet_event: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray):
    """(matched mask, aux dict) of the jets. Signal: all decay products within MATCH_DR of the
    jet axis; QCD: every jet, aux from the nearest outgoing hard parton."""
    from hhfm.simulate.labels import delta_r

    n = len(jet_event)
    aux = {k: np.zeros(n) for k in AUX_FLOAT}
    matched = np.zeros(n, dtype=bool)
    if spec.resonance is None:
        a = np.abs(batch.pid)
        partons = np.flatnonzero((batch.status == -23) & ((a <= 5) | (a == 21)))
        pev = batch.event[partons]
        ppt, peta, pphi = _gen(batch, partons)
        for j in range(n):
            mine = np.flatnonzero(pev == jet_event[j])
            matched[j] = True
            if not len(mine):
                continue
            dr = delta_r(jet_eta[j], jet_phi[j], peta[mine], pphi[mine])
            k = mine[int(np.argmin(dr))]
            aux["aux_genpart_pt"][j], aux["aux_genpart_eta"][j], aux["aux_genpart_phi"][j] = ppt[k], peta[k], pphi[k]
            aux["aux_genpart_pid"][j] = batch.pid[partons[k]]
            aux["aux_truth_match"][j] = float(dr.min() < MATCH_DR)
        return matched, aux
    for res in resonances(batch, spec):
        _, eta, phi = _gen(batch, res.match)
        for j in np.flatnonzero((jet_event == res.event) & ~matched):
            if np.all(delta_r(jet_eta[j], jet_phi[j], eta, phi) < MATCH_DR):
                matched[j] = True
                pt, reta, rphi = _gen(batch, np.array([res.row]))
                aux["aux_genpart_pt"][j], aux["aux_genpart_eta"][j], aux["aux_genpart_phi"][j] = pt[0], reta[0], rphi[0]
                aux["aux_genpart_pid"][j] = batch.pid[res.row]
                aux["aux_truth_match"][j] = 1.0
                break
    return matched, aux


# --- reconstruction ------------------------------------------------------------------------------


def apply_thresholds(reco):
    """The Reco table without the candidates below the Delphes-like thresholds."""
    from hhfm.simulate.detector import NEUTRAL_HADRON, PHOTON, Reco

    n_ev = len(reco.offsets) - 1
    event = np.repeat(np.arange(n_ev), np.diff(reco.offsets))
    keep = np.where(reco.charge != 0, reco.pt > MIN_CHARGED_PT,
                    np.where(reco.ptype == PHOTON, reco.e > MIN_PHOTON_E,
                             np.where(reco.ptype == NEUTRAL_HADRON, reco.e > MIN_NEUTRAL_HADRON_E, True)))  # fmt: skip
    offsets = np.concatenate([[0], np.cumsum(np.bincount(event[keep], minlength=n_ev))]).astype(np.int64)
    cols = {f: getattr(reco, f)[keep] for f in Reco.__dataclass_fields__ if f != "offsets"}
    return Reco(offsets=offsets, **cols)


def tau_n(reco, cons: np.ndarray, ncons: np.ndarray, n_axes: int) -> np.ndarray:
    """tau_N (beta = 1, exclusive-kT axes, normalised by sum pT * R) of each jet, as jets.nsubjettiness."""
    import awkward as ak
    import fastjet

    from hhfm.simulate.jets import CA_RECLUSTER_R, R, _four, _no_banner

    n = len(ncons)
    if n == 0:
        return np.zeros(0)
    parts = _four(reco.px[cons], reco.py[cons], reco.pz[cons], reco.e[cons], ncons)
    with _no_banner():
        kt = fastjet.ClusterSequence(parts, fastjet.JetDefinition(fastjet.kt_algorithm, CA_RECLUSTER_R))
        axes = kt.exclusive_jets_up_to(n_jets=n_axes)
    jet = np.repeat(np.arange(n), ncons)
    pt = reco.pt[cons]
    eta = np.arcsinh(reco.pz[cons] / np.maximum(pt, 1e-9))
    phi = np.arctan2(reco.py[cons], reco.px[cons])
    counts = ak.to_numpy(ak.num(axes, axis=1))
    ax = {f: ak.to_numpy(ak.flatten(axes[f])) for f in ("px", "py", "pz")}
    apt = np.hypot(ax["px"], ax["py"])
    aeta, aphi = np.arcsinh(ax["pz"] / np.maximum(apt, 1e-9)), np.arctan2(ax["py"], ax["px"])
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    best = np.full(len(pt), np.inf)
    for a in range(n_axes):
        has = counts > a
        idx = np.where(has, start + a, 0)
        e_a = np.where(has, aeta[idx] if len(aeta) else 0.0, np.nan)
        p_a = np.where(has, aphi[idx] if len(aphi) else 0.0, np.nan)
        best = np.fmin(best, np.hypot(eta - e_a[jet], (phi - p_a[jet] + np.pi) % (2 * np.pi) - np.pi))
    best = np.where(np.isfinite(best), best, 0.0)
    return np.bincount(jet, pt * best, n) / np.maximum(np.bincount(jet, pt, n) * R, 1e-12)


def _particles(reco, jets, sel: np.ndarray, jet_eta: np.ndarray, jet_phi: np.ndarray, max_particles: int):
    """Particle branches (flat, pT-descending per jet, at most max_particles) and counts of the jets `sel`."""
    from hhfm.simulate.detector import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
    from hhfm.simulate.labels import delta_phi, eta_phi

    starts, stops = jets.cons_offsets[sel], jets.cons_offsets[sel + 1]
    ncons = stops - starts
    k = np.repeat(np.arange(len(sel)), ncons)
    rows = jets.cons[np.repeat(starts, ncons) + (np.arange(ncons.sum()) - np.repeat(np.cumsum(ncons) - ncons, ncons))]
    order = np.lexsort((-reco.pt[rows], k))
    k, rows = k[order], rows[order]
    rank = np.arange(len(k)) - np.repeat(np.cumsum(ncons) - ncons, ncons)
    if max_particles > 0:
        keep = rank < max_particles
        k, rows = k[keep], rows[keep]
    counts = np.bincount(k, minlength=len(sel))
    eta, phi = eta_phi(reco.px[rows], reco.py[rows], reco.pz[rows])
    ptype = reco.ptype[rows]
    out = {
        "part_px": reco.px[rows], "part_py": reco.py[rows], "part_pz": reco.pz[rows], "part_energy": reco.e[rows],
        "part_deta": np.where(jet_eta[k] > 0, 1.0, -1.0) * (eta - jet_eta[k]),
        "part_dphi": delta_phi(phi, jet_phi[k]),
        "part_d0val": reco.dxy[rows] * 10.0, "part_d0err": reco.dxy_err[rows] * 10.0,  # cm -> mm
        "part_dzval": reco.dz[rows] * 10.0, "part_dzerr": reco.dz_err[rows] * 10.0,
        "part_charge": reco.charge[rows],
        "part_isChargedHadron": ptype == CHARGED_HADRON, "part_isNeutralHadron": ptype == NEUTRAL_HADRON,
        "part_isPhoton": ptype == PHOTON, "part_isElectron": ptype == ELECTRON, "part_isMuon": ptype == MUON,
    }  # fmt: skip
    return out, counts


def simulate_batch(pythia, rng: np.random.Generator, cls: str, spec: ClassSpec, det: Mapping, n_events: int,
                   max_particles: int) -> tuple[dict, int]:  # fmt: skip
    """Generate `n_events` events and return (flat branches of the selected jets incl. `counts`, n jets)."""
    from hhfm.simulate import detector, generate, jets
    from hhfm.simulate.labels import eta_phi

    batch = generate.next_batch(pythia, n_events)
    reco = apply_thresholds(detector.reconstruct(batch, rng, det, None))
    fj = jets.cluster(reco, JETCLASS_PT_RANGE[0], JETCLASS_MAX_ETA)
    pt = np.hypot(fj.px, fj.py)
    eta, phi = eta_phi(fj.px, fj.py, fj.pz)
    window = (pt > JETCLASS_PT_RANGE[0]) & (pt < JETCLASS_PT_RANGE[1]) & (np.abs(eta) < JETCLASS_MAX_ETA)
    matched, aux = match_jets(batch, spec, fj.event, eta, phi)
    sel = np.flatnonzero(window & matched)
    out, counts = _particles(reco, fj, sel, eta[sel], phi[sel], max_particles)
    ncons = np.diff(fj.cons_offsets)[sel]
    cons = fj.cons[np.concatenate([np.arange(fj.cons_offsets[j], fj.cons_offsets[j + 1]) for j in sel] or [[]])
                   .astype(np.int64)]  # fmt: skip
    tau = fj.tau[sel]
    out.update({
        "counts": counts, "jet_pt": pt[sel], "jet_eta": eta[sel], "jet_phi": phi[sel], "jet_energy": fj.e[sel],
        "jet_sdmass": fj.msd[sel], "jet_tau1": tau[:, 0], "jet_tau2": tau[:, 1], "jet_tau3": tau[:, 2],
        "jet_tau4": np.minimum(tau_n(reco, cons, ncons, 4), tau[:, 2]),
    })  # fmt: skip
    out.update({k: v[sel] for k, v in aux.items()})
    for c in JETCLASS_CLASSES:
        out[f"label_{c}"] = np.full(len(sel), c == cls)
    return out, len(sel)


# --- writing -------------------------------------------------------------------------------------


def _concat(parts: list[dict], n_jets: int) -> dict:
    """Concatenate batch outputs and keep the first `n_jets` jets (particles trimmed accordingly)."""
    counts = np.concatenate([p["counts"] for p in parts])[:n_jets]
    n_part = int(counts.sum())
    out: dict = {"counts": counts}
    for name in parts[0]:
        if name == "counts":
            continue
        flat = np.concatenate([p[name] for p in parts])
        out[name] = flat[:n_part] if name.startswith("part_") else flat[:n_jets]
    return out


def to_arrays(flat: dict) -> dict:
    """The uproot `extend` dict: one jagged record `part` (counter jet_nparticles) + typed scalars."""
    import awkward as ak

    fields = {n: np.asarray(flat[n], dtype=np.float32) for n in PART_FLOAT}
    fields.update({n: np.asarray(flat[n], dtype=np.int32) for n in PART_INT})
    out: dict = {"part": ak.unflatten(ak.zip(fields), np.asarray(flat["counts"], dtype=np.int64))}
    out.update({n: np.asarray(flat[n], dtype=np.float32) for n in (*JET_FLOAT, *AUX_FLOAT)})
    out.update({n: np.asarray(flat[n]).astype(d) for n, d in LABEL_DTYPES.items()})
    return out


class JetClassWriter:
    """Writes tree `tree` with uproot mktree/extend; the jagged counter is `jet_nparticles`."""

    def __init__(self, path) -> None:
        import uproot

        self.file = uproot.recreate(path, compression=uproot.LZ4(1))
        self.tree = None

    def write(self, arrays: dict) -> None:
        import awkward as ak

        if self.tree is None:
            types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in arrays.items()}
            self.tree = self.file.mktree(TREE, types, title="tree", counter_name=lambda group: COUNTER,
                                         field_name=lambda outer, inner: inner)  # fmt: skip
        self.tree.extend(arrays)

    def close(self) -> None:
        self.file.close()


def _empty() -> dict:
    out = {n: np.zeros(0) for n in (*PART_FLOAT, *PART_INT, *JET_FLOAT, *AUX_FLOAT, *LABEL_DTYPES)}
    out["counts"] = np.zeros(0, np.int64)
    return out


def simulate_jetclass_file(cls: str, n_jets: int, seed: int, output: Path, max_particles: int = 128, *,
                           index: int = 0, qcd_process: str = "zjets", detector: Mapping | None = None,
                           batch_events: int = BATCH_EVENTS, max_events: int | None = None,
                           extra_settings: Sequence[str] = (),
                           progress: bool = True, sidecar: bool = True) -> dict:  # fmt: skip
    """Simulate `n_jets` jets of JetClass class `cls` into the JetClass-format ROOT file `output`
    (written atomically) and its JSON sidecar; return the sidecar dict.

    The Pythia / smearing seed is `samples.file_seed(seed, "JetClass_<cls>", index)`: a file is
    reproducible from (seed, cls, index). `extra_settings` are appended to the Pythia settings (e.g.
    "PartonLevel:MPI = off" for fast tests). `detector` overrides the `simulate.detector` config
    (defaults in config.schema.yaml). RuntimeError if `max_events` (default 500 * n_jets + 2000)
    events do not give `n_jets` jets.
    """
    from tqdm import tqdm

    from hhfm import config
    from hhfm.simulate import generate

    spec = class_spec(cls, qcd_process)
    if n_jets < 0 or index < 0:
        raise ConfigError(f"--n-jets and --index must be >= 0, got {n_jets}, {index}")
    det = detector if detector is not None else config.load("{}", None, sections=["simulate"]).simulate.detector
    pythia_seed = samples.file_seed(int(seed), f"JetClass_{cls}", int(index))
    settings = pythia_settings(cls, pythia_seed, qcd_process, extra=extra_settings)
    max_events = int(max_events if max_events is not None else 500 * n_jets + 2000)
    log.info("simulating JetClass %s file %d: %d jets, Pythia seed %d", cls, index, n_jets, pythia_seed)
    t0 = time.perf_counter()
    pythia = generate.make_pythia(settings)
    rng = np.random.default_rng(pythia_seed)
    output = Path(output)
    done, n_events, pending = 0, 0, []
    bar = tqdm(total=n_jets, desc=f"simulate-jetclass {cls}[{index}]", unit="jet", disable=not progress,
               mininterval=0.5 if sys.stderr.isatty() else 15.0)  # fmt: skip
    with atomic_path(output) as tmp:
        out = JetClassWriter(tmp)
        while done < n_jets:
            if n_events >= max_events:
                raise RuntimeError(f"{cls}: only {done} of {n_jets} jets after {n_events} events")
            flat, got = simulate_batch(pythia, rng, cls, spec, det, batch_events, max_particles)
            n_events += batch_events
            got = min(got, n_jets - done)
            if got:
                pending.append(_concat([flat], got))
                done += got
                bar.update(got)
            n_pending = sum(len(p["jet_pt"]) for p in pending)
            if pending and (done == n_jets or n_pending >= FLUSH_JETS):
                out.write(to_arrays(_concat(pending, n_pending)))
                pending = []
        if out.tree is None:
            out.write(to_arrays(_empty()))
        out.close()
    bar.close()
    seconds = time.perf_counter() - t0
    side = {
        "class": cls, "file_prefix": JETCLASS_FILE_PREFIX[cls], "index": int(index), "n_jets": int(n_jets),
        "seed": int(seed),
        "pythia_seed": int(pythia_seed), "n_events": int(n_events), "max_particles": int(max_particles),
        "qcd_process": qcd_process if cls == "QCD" else None, "generation_seconds": round(seconds, 2),
        "jets_per_second": round(n_jets / seconds, 2) if seconds > 0 else None, "pythia_settings": settings,
    }  # fmt: skip
    if sidecar:
        write_json(output.with_suffix(".json"), side)
    log.info("wrote %s: %d %s jets from %d events in %.1f s (%.2f jets/s)", output, n_jets, cls, n_events, seconds,
             n_jets / max(seconds, 1e-9))  # fmt: skip
    return side
