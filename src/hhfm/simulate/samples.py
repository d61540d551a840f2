"""Sample names -> Pythia 8 settings: the record's graviton masses, its QCD pT-hat slices, and one QCD sample
over a wide pT-hat range with its selection biased towards high pT-hat (`QCD_Pt_<lo>to<hi>_biased`).

The biased sample draws events with probability proportional to sigma(pT-hat) * (pT-hat / ref)^power and
weights each event by the inverse (Pythia's PhaseSpace:bias2Selection), so sigma per event is
sigmaGen * w / sum(w), the formula the skim's merge applies to every sample (README "Stage: simulate").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hhfm.errors import ConfigError

#: signal mass points of record 12102 (GeV)
RECORD_MASSES = (600, 1000, 1200, 1400, 1600, 1800, 2000, 2500, 3000, 4000, 4500)
#: QCD pT-hat slices of record 12102 (GeV; None = no upper edge)
RECORD_QCD_SLICES = ("300to470", "470to600", "600to800", "800to1000", "1000to1400", "1400to1800",
                     "1800to2400", "2400to3200", "3200toInf")  # fmt: skip

GRAVITON_ID = 5100039
MAX_SEED = 900_000_000  # Pythia's Random:seed maximum

#: settings common to every sample: 13 TeV pp, quiet, CMS lifetime convention for displaced vertices
COMMON_SETTINGS = (
    "Beams:eCM = 13000",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
)


@dataclass(frozen=True)
class Sample:
    """One simulated sample: process kind and its defining parameters."""

    name: str
    process: str  # "signal" | "qcd"
    mass: float | None = None
    pthat_min: float | None = None
    pthat_max: float | None = None  # None = no upper edge (Inf)
    biased: bool = False  # QCD with PhaseSpace:bias2Selection (weighted events)


_SIGNAL = re.compile(r"^GravitonHH_M(?P<mass>-?\d+(\.\d+)?)$")
_QCD = re.compile(r"^QCD_Pt_(?P<lo>\d+)to(?P<hi>\d+|Inf)(?P<biased>_biased)?$")
#: the Snakemake wildcard constraint of a sample name (the same grammar as parse_sample)
SAMPLE_PATTERN = r"GravitonHH_M\d+|QCD_Pt_\d+to(\d+|Inf)(_biased)?"


def parse_sample(name: str) -> Sample:
    """Parse `GravitonHH_M{mass}` or `QCD_Pt_{lo}to{hi}[_biased]` (hi may be `Inf`); ConfigError otherwise."""
    if m := _SIGNAL.match(name):
        mass = float(m["mass"])
        if mass <= 0:
            raise ConfigError(f"sample {name!r}: signal mass must be > 0 GeV, got {mass:g}")
        return Sample(name, "signal", mass=mass)
    if m := _QCD.match(name):
        lo = float(m["lo"])
        hi = None if m["hi"] == "Inf" else float(m["hi"])
        if lo <= 0 or (hi is not None and hi <= lo):
            raise ConfigError(f"sample {name!r}: need 0 < pT-hat low edge < high edge")
        return Sample(name, "qcd", pthat_min=lo, pthat_max=hi, biased=bool(m["biased"]))
    raise ConfigError(
        f"unknown sample {name!r}: expected 'GravitonHH_M<mass>' or 'QCD_Pt_<lo>to<hi>[_biased]' (hi may be 'Inf')"
    )


def qcd_sample_names(sim) -> list[str]:
    """The QCD samples of a `simulate` config: one per pT-hat slice, or the one biased sample."""
    if sim["qcd_sampling"] == "biased":
        return [f"QCD_Pt_{sim['qcd_biased']['pthat_range']}_biased"]
    return [f"QCD_Pt_{s}" for s in sim["qcd_slices"]]


def sample_files(sim) -> dict[str, int]:
    """{sample name: number of files} of a `simulate` config, in workflow order (workflow/rules/common.smk)."""
    out = {f"GravitonHH_M{int(m)}": int(sim["files_per_sample"]) for m in sim["signal_masses"]}
    n_qcd = int(sim["qcd_biased"]["files"]) if sim["qcd_sampling"] == "biased" else int(sim["files_per_sample"])
    return out | {name: n_qcd for name in qcd_sample_names(sim)}


def bias_settings(power: float, ref_pt: float) -> list[str]:
    """Pythia lines that bias the 2 -> 2 selection by (pT-hat / ref_pt)^power (events weighted by the inverse)."""
    if not power > 0 or not ref_pt > 0:
        raise ConfigError(f"qcd_biased: power and ref_pt must be > 0, got power={power}, ref_pt={ref_pt}")
    return ["PhaseSpace:bias2Selection = on", f"PhaseSpace:bias2SelectionPow = {power:g}",
            f"PhaseSpace:bias2SelectionRef = {ref_pt:g}"]


def pythia_settings(sample: Sample, seed: int, tune: int | None = None, extra: list[str] = (),
                    bias: tuple[float, float] | None = None) -> list[str]:  # fmt: skip
    """The full list of Pythia `readString` lines of one sample for one file seed; `bias` = (power, ref_pt)
    of a biased QCD sample (required for it, ignored otherwise)."""
    lines = list(COMMON_SETTINGS) + ["Random:setSeed = on", f"Random:seed = {seed}"]
    if tune is not None:
        lines.append(f"Tune:pp = {tune}")
    if sample.process == "signal":
        g = GRAVITON_ID
        lines += [
            "ExtraDimensionsG*:gg2G* = on",
            "ExtraDimensionsG*:ffbar2G* = on",
            "ExtraDimensionsG*:SMinBulk = on",
            f"{g}:m0 = {sample.mass:g}",
            f"{g}:onMode = off",
            f"{g}:onIfMatch = 25 25",
            "25:onMode = off",
            "25:onIfMatch = 5 -5",
        ]
    else:
        lines += ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {sample.pthat_min:g}"]
        if sample.pthat_max is not None:
            lines.append(f"PhaseSpace:pTHatMax = {sample.pthat_max:g}")
        if sample.biased:
            if bias is None:
                raise ConfigError(f"sample {sample.name!r} is biased but no (power, ref_pt) was given")
            lines += bias_settings(*bias)
    return lines + list(extra)


def file_seed(global_seed: int, sample: str, index: int) -> int:
    """Deterministic Pythia seed of one file, distinct per (seed, sample, index), in [1, 900,000,000]."""
    digest = hashlib.sha256(f"{int(global_seed)}/{sample}/{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % MAX_SEED + 1
