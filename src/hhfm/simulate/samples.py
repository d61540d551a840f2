"""Sample names -> Pythia 8 settings (the record's graviton masses and QCD pT-hat slices)."""

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


_SIGNAL = re.compile(r"^GravitonHH_M(?P<mass>-?\d+(\.\d+)?)$")
_QCD = re.compile(r"^QCD_Pt_(?P<lo>\d+)to(?P<hi>\d+|Inf)$")


def parse_sample(name: str) -> Sample:
    """Parse `GravitonHH_M{mass}` or `QCD_Pt_{lo}to{hi}` (hi may be `Inf`); ConfigError otherwise."""
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
        return Sample(name, "qcd", pthat_min=lo, pthat_max=hi)
    raise ConfigError(
        f"unknown sample {name!r}: expected 'GravitonHH_M<mass>' or 'QCD_Pt_<lo>to<hi>' (hi may be 'Inf')"
    )


def sample_names(signal_masses: list[float], qcd_slices: list[str]) -> list[str]:
    """Sample names in workflow order (same convention as workflow/rules/common.smk)."""
    return [f"GravitonHH_M{int(m)}" for m in signal_masses] + [f"QCD_Pt_{s}" for s in qcd_slices]


def pythia_settings(sample: Sample, seed: int, tune: int | None = None, extra: list[str] = ()) -> list[str]:
    """The full list of Pythia `readString` lines of one sample for one file seed."""
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
    return lines + list(extra)


def file_seed(global_seed: int, sample: str, index: int) -> int:
    """Deterministic Pythia seed of one file, distinct per (seed, sample, index), in [1, 900,000,000]."""
    digest = hashlib.sha256(f"{int(global_seed)}/{sample}/{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % MAX_SEED + 1
