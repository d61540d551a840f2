"""One source of truth for labels, feature lists and their standardisation.

Every stage imports names and codes from here; nothing else hard-codes them.
"""

from __future__ import annotations

# --- record label codes (fj_label, see shared/hbb_opendata_schema.md section 2.5) -------------
FJ_LABEL = {
    "Top_bcq": 11, "Top_bqq": 12, "Top_bc": 13, "Top_bq": 14,
    "W_cq": 21, "W_qq": 22,
    "Z_bb": 31, "Z_cc": 32, "Z_qq": 33,
    "H_bb": 41, "H_cc": 42, "H_qqqq": 43,
    "QCD_bb": 51, "QCD_cc": 52, "QCD_b": 53, "QCD_c": 54, "QCD_others": 55,
}  # fmt: skip

#: classes of the `multiclass` pretraining task, in output order (index = /jets/label_class)
JET_CLASSES = ["H_bb", "QCD_bb", "QCD_cc", "QCD_b", "QCD_c", "QCD_others"]

#: JetClass' ten classes in the published taggers' output order (label_<name> branches of a JetClass file;
#: /jets/label_jetclass indexes this list). shared/pretrained/README.md
JETCLASS_CLASSES = ["QCD", "Hbb", "Hcc", "Hgg", "H4q", "Hqql", "Zqq", "Wqq", "Tbqq", "Tbl"]
#: JetClass file-name prefix of each class (a real download: <prefix>_<index>.root; the simulated stand-in the same)
JETCLASS_FILE_PREFIX = {"QCD": "ZJetsToNuNu", "Hbb": "HToBB", "Hcc": "HToCC", "Hgg": "HToGG", "H4q": "HToWW4Q",
                        "Hqql": "HToWW2Q1L", "Zqq": "ZToQQ", "Wqq": "WToQQ", "Tbqq": "TTBar", "Tbl": "TTBarLep"}
#: JetClass' jet selection (GeV): pT window and |eta| < JETCLASS_MAX_ETA, anti-kT R = 0.8
JETCLASS_PT_RANGE = (500.0, 1000.0)
JETCLASS_MAX_ETA = 2.0

#: regression targets of the `multilabel` task (dataset /jets/<name>), transformed by the model code
REGRESSION_TARGETS = ["fj_sdmass", "fj_nbHadrons", "fj_gen_pt"]

# --- per-particle inputs of ParT, JetClass "full" convention, in this order -------------------
#: name -> (shift a, scale b, clip lo, clip hi): stored value = clip((x - a) * b, lo, hi);
#: None = stored raw. Constants as in the ParT JetClass YAMLs (shared/model_notes.md section 1.4).
PARTICLE_FEATURES: dict[str, tuple[float, float, float, float] | None] = {
    "part_pt_log": (1.7, 0.7, -5.0, 5.0),
    "part_e_log": (2.0, 0.7, -5.0, 5.0),
    "part_logptrel": (-4.7, 0.7, -5.0, 5.0),
    "part_logerel": (-4.7, 0.7, -5.0, 5.0),
    "part_deltaR": (0.2, 4.0, -5.0, 5.0),
    "part_charge": None,
    "part_isChargedHadron": None,
    "part_isNeutralHadron": None,
    "part_isPhoton": None,
    "part_isElectron": None,
    "part_isMuon": None,
    "part_d0": None,  # tanh(dxy [mm])
    "part_d0err": (0.0, 1.0, 0.0, 1.0),  # dxy/dxysig [mm], clipped to [0, 1]
    "part_dz": None,  # tanh(dz [mm])
    "part_dzerr": (0.0, 1.0, 0.0, 1.0),
    "part_deta": None,
    "part_dphi": None,
}
PARTICLE_FEATURE_NAMES = list(PARTICLE_FEATURES)
N_PARTICLE_FEATURES = len(PARTICLE_FEATURE_NAMES)  # 17

#: record impact parameters are in cm; JetClass (whose ParT weights we may load) used mm, so the skim
#: multiplies dxy, dz and their errors by this before tanh / clipping (README "Stage: skim")
IMPACT_PARAMETER_SCALE = 10.0

#: masses entering log features are floored at this value (GeV): soft-drop masses of 0 occur
HLF_MASS_FLOOR_GEV = 1.0


def particle_transform():
    """(shift, scale, lo, hi) float32 arrays of length 17 from PARTICLE_FEATURES (None = identity, no clip)."""
    import numpy as np

    specs = [PARTICLE_FEATURES[n] or (0.0, 1.0, -np.inf, np.inf) for n in PARTICLE_FEATURE_NAMES]
    return tuple(np.array(col, dtype=np.float32) for col in zip(*specs))


def standardise_particles(raw, mask):
    """Apply PARTICLE_FEATURES' (shift, scale, clip) to raw (N, P, 17) inputs; padding (mask False) -> 0."""
    import numpy as np

    shift, scale, lo, hi = particle_transform()
    out = np.subtract(raw, shift, dtype=np.float32)
    out *= scale
    np.clip(out, lo, hi, out=out)
    out *= mask[..., None]
    return out


#: four-vector components stored for the pairwise features (GeV)
VECTOR_NAMES = ["px", "py", "pz", "E"]

#: jet high-level features fed to event heads, in /jets/hlf column order (raw, not standardised)
HLF_NAMES = ["log_pt", "eta", "phi", "log_mass", "log_sdmass"]

#: split codes stored in /events/split and /jets/split
SPLITS = {"train": 0, "val": 1, "test": 2}
