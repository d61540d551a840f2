"""Record-format ROOT writer: tree `deepntuplizer/tree`, one entry per jet, the record's 219 branch
names and dtypes (schema section 2.4). uproot cannot write std::vector<float>, so the jagged
branches are written as three record groups whose counters are the record's own int32 branches
`n_pfcands`, `n_tracks`, `n_sv` (schema section 5.2): no extra branch appears."""

from __future__ import annotations

import awkward as ak
import numpy as np

TREE = "deepntuplizer/tree"

_JETINFO_F4 = """Delta_gen_pt gen_pt jet_corr_pt jet_eta jet_looseId jet_phi jet_pt jet_tightId npv ntrueInt
pfBoostedDoubleSecondaryVertexAK8BJetTags pfCombinedInclusiveSecondaryVertexV2BJetTags pfCombinedMVAV2BJetTags
pfDeepCSVJetTags_probb pfDeepCSVJetTags_probbb pfDeepCSVJetTags_probc pfDeepCSVJetTags_probcc
pfDeepCSVJetTags_probudsg pfJetBProbabilityBJetTags pfJetProbabilityBJetTags rho softPFElectronBJetTags
softPFMuonBJetTags""".split()
_JETINFO_I4 = "isB isBB isC isG isLeptonicB isLeptonicB_C isS isUD isUndefined".split()
_SJ = [f"fj_sdsj{k}_{v}" for k in (1, 2) for v in ("axis1", "axis2", "csv", "eta", "mass", "mult", "phi", "pt", "ptD")]
_FJ_F4 = (
    "fj_doubleb fj_eta fj_gen_eta fj_gen_pt fj_jetNTracks fj_mass fj_nSV fj_n_sdsubjets fj_phi fj_pt fj_ptDR "
    "fj_relptdiff fj_sdmass fj_sdn2".split()
    + _SJ
    + [f"fj_tau0_trackEtaRel_{k}" for k in range(3)]
    + ["fj_tau1"]
    + [f"fj_tau1_trackEtaRel_{k}" for k in range(3)]
    + "fj_tau2 fj_tau21 fj_tau3 fj_tau32 fj_tau_flightDistance2dSig_0 fj_tau_flightDistance2dSig_1 "
    "fj_tau_vertexDeltaR_0 fj_tau_vertexEnergyRatio_0 fj_tau_vertexEnergyRatio_1 fj_tau_vertexMass_0 "
    "fj_tau_vertexMass_1 fj_trackSip2dSigAboveBottom_0 fj_trackSip2dSigAboveBottom_1 "
    "fj_trackSip2dSigAboveCharm_0 fj_trackSipdSig_0 fj_trackSipdSig_0_0 fj_trackSipdSig_0_1 fj_trackSipdSig_1 "
    "fj_trackSipdSig_1_0 fj_trackSipdSig_1_1 fj_trackSipdSig_2 fj_trackSipdSig_3 fj_z_ratio".split()
)
_LABELS = ("H_bb H_cc H_qqqq QCD_b QCD_bb QCD_c QCD_cc QCD_others Top_bc Top_bcq Top_bq Top_bqq W_cq W_qq "
           "Z_bb Z_cc Z_qq").split()  # fmt: skip
_FJ_I4 = (
    "fj_isBB fj_isH fj_isNonBB fj_isQCD fj_isTop fj_isW fj_isZ fj_label fj_labelJMAR fj_labelLegacy "
    "fj_nbHadrons fj_ncHadrons".split()
    + [f"label_{x}" for x in _LABELS]
    + ["sample_isQCD"]
)

#: scalar branches -> dtype (the counters n_pfcands/n_tracks/n_sv are written by uproot as int32)
SCALARS: dict[str, np.dtype] = {
    **{k: np.dtype(np.float32) for k in _JETINFO_F4 + _FJ_F4 + ["npfcands", "ntracks", "nsv"]},
    **{k: np.dtype(np.int32) for k in _JETINFO_I4 + _FJ_I4},
    "event_no": np.dtype(np.uint32),
    "jet_no": np.dtype(np.uint32),
}
PFCAND = ("VTX_ass charge deltaR drminsv drsubjet1 drsubjet2 dxy dxysig dz dzsig erel etarel fromPV hcalFrac "
          "isChargedHad isEl isGamma isMu isNeutralHad lostInnerHits mass phirel ptrel puppiw").split()  # fmt: skip
TRACKBTAG = ("DeltaR Eta EtaRel JetDistVal Momentum PPar PParRatio PtRatio PtRel Sip2dSig Sip2dVal Sip3dSig "
             "Sip3dVal").split()  # fmt: skip
TRACK = ("VTX_ass charge deltaR detadeta dlambdadz dphidphi dphidxy dptdpt drminsv drsubjet1 drsubjet2 dxy "
         "dxydxy dxydz dxysig dz dzdz dzsig erel etarel fromPV isChargedHad isEl isMu lostInnerHits mass "
         "normchi2 phirel pt ptrel puppiw quality").split()  # fmt: skip
SV = ("chi2 costhetasvpv d3d d3derr d3dsig deltaR dxy dxyerr dxysig erel etarel mass ndf normchi2 ntracks "
      "phirel pt ptrel").split()  # fmt: skip
#: jagged groups: group name (counter n_<group>) -> branch names (all float32 lists)
GROUPS: dict[str, list[str]] = {
    "pfcands": [f"pfcand_{x}" for x in PFCAND],
    "tracks": [f"trackBTag_{x}" for x in TRACKBTAG] + [f"track_{x}" for x in TRACK],
    "sv": [f"sv_{x}" for x in SV],
}
COUNTERS = {"pfcands": ("n_pfcands", "npfcands"), "tracks": ("n_tracks", "ntracks"), "sv": ("n_sv", "nsv")}
ALL_BRANCHES = sorted([*SCALARS, *(c for c, _ in COUNTERS.values()), *(b for g in GROUPS.values() for b in g)])
assert len(ALL_BRANCHES) == 219, len(ALL_BRANCHES)


def to_arrays(jet: dict, groups: dict[str, dict], offsets: dict[str, np.ndarray]) -> dict:
    """Cast one batch to the record's dtypes: scalar numpy arrays + one awkward record per group."""
    out: dict = {}
    for group, names in GROUPS.items():
        counts = np.diff(offsets[group])
        out[COUNTERS[group][1]] = counts.astype(np.float32)
        cols = {n: np.asarray(groups[group][n], dtype=np.float32) for n in names}
        out[group] = ak.unflatten(ak.zip(cols), counts)
    for name, dtype in SCALARS.items():
        if name in out:
            continue
        if name not in jet:
            raise KeyError(f"simulator produced no value for branch {name!r}")
        out[name] = np.asarray(jet[name]).astype(dtype)
    return out


class TreeWriter:
    """Appends batches to `deepntuplizer/tree` with uproot mktree/extend (never the RNTuple default)."""

    def __init__(self, path) -> None:
        import uproot

        self.file = uproot.recreate(path, compression=uproot.LZ4(1))  # ~4x faster than ZLIB, via cramjam
        self.tree = None

    def write(self, arrays: dict) -> None:
        if self.tree is None:  # declare types first: mktree(data) builds its metadata ~6x slower
            types = {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in arrays.items()}
            self.tree = self.file.mktree(
                TREE, types, title="tree",
                counter_name=lambda group: COUNTERS[group][0],
                field_name=lambda outer, inner: inner,
            )  # fmt: skip
        self.tree.extend(arrays)

    def close(self) -> None:
        if self.tree is None:  # no jet at all: still write the tree with every branch, zero entries
            empty = {n: np.zeros(0, d) for n, d in SCALARS.items()}
            empty_groups = {g: {n: np.zeros(0) for n in names} for g, names in GROUPS.items()}
            self.write(to_arrays(empty, empty_groups, {g: np.zeros(1, np.int64) for g in GROUPS}))
        self.file.close()
