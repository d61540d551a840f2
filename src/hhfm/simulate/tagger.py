"""The "standard" double-b tagger `fj_doubleb` (stand-in for CMS BTV-16-002) and the other
b-tag scores, from reconstructed quantities only (fixed, documented formulas).

fj_doubleb = tanh(1.4*s_ip + 1.2*s_prongs + 1.0*s_sv - 2.0), in (-1, 1), with
  s_ip     = tanh(max(fj_trackSipdSig_0, 0) / 8)                 largest 3D IP significance
  s_prongs = (tanh(max(fj_trackSipdSig_0_0, 0) / 8) + tanh(max(fj_trackSipdSig_1_0, 0) / 8)) / 2
             (largest 3D IP significance near each of the two subjet axes: both prongs displaced)
  s_sv     = clip(max(fj_tau_vertexMass_0, 0) / 4, 0, 1)          SV mass along the leading axis
Like the CMS tagger it uses no jet mass and no N-subjettiness ratio (so it is not sculpted by them).
"""

from __future__ import annotations

import numpy as np


def _t(x: np.ndarray, scale: float = 8.0) -> np.ndarray:
    return np.tanh(np.maximum(x, 0.0) / scale)


def doubleb(f: dict[str, np.ndarray]) -> np.ndarray:
    """The fj_doubleb score of every jet from its double-b inputs (see module docstring)."""
    s_ip = _t(f["fj_trackSipdSig_0"])
    s_prongs = 0.5 * (_t(f["fj_trackSipdSig_0_0"]) + _t(f["fj_trackSipdSig_1_0"]))
    s_sv = np.clip(np.maximum(f["fj_tau_vertexMass_0"], 0.0) / 4.0, 0.0, 1.0)
    return np.tanh(1.4 * s_ip + 1.2 * s_prongs + 1.0 * s_sv - 2.0)


def single_b_scores(f: dict[str, np.ndarray], n_sv: np.ndarray) -> dict[str, np.ndarray]:
    """CSVv2 / cMVA / DeepCSV / JetProbability style scores of the fat jet (simple fixed formulas)."""
    s0 = _t(f["fj_trackSipdSig_0"])
    s1 = _t(f["fj_trackSipdSig_1"])
    s2 = _t(f["fj_trackSipdSig_2"])
    has_sv = (n_sv > 0).astype(float)
    csv = 0.5 * (1 + np.tanh(1.5 * s1 + 1.0 * has_sv + 0.5 * s2 - 1.5))
    logits = np.stack([0.5 - s1, 1.5 * s1 + has_sv - 1.5, 0.5 * s0 - 1.0 - s1, 2.0 * s2 + has_sv - 2.5,
                       0.8 * s0 - 2.0 - s1], axis=-1)  # fmt: skip  udsg, b, c, bb, cc
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return {
        "pfCombinedInclusiveSecondaryVertexV2BJetTags": csv,
        "pfCombinedMVAV2BJetTags": 2 * csv - 1,
        "pfDeepCSVJetTags_probudsg": p[:, 0],
        "pfDeepCSVJetTags_probb": p[:, 1],
        "pfDeepCSVJetTags_probc": p[:, 2],
        "pfDeepCSVJetTags_probbb": p[:, 3],
        "pfDeepCSVJetTags_probcc": p[:, 4],
        "pfJetProbabilityBJetTags": 2.5 * (s0 + s1 + s2) / 3,
        "pfJetBProbabilityBJetTags": 8.0 * (s0 + s1 + s2 + _t(f["fj_trackSipdSig_3"])) / 4,
    }


def subjet_csv(max_sip2d: np.ndarray) -> np.ndarray:
    """CSV-like subjet score in [0, 1] from the largest 2D IP significance of its tracks."""
    return 0.5 * (1 + np.tanh(2.5 * _t(max_sip2d) - 1.0))
