"""The 27 inputs of the double-b tagger (schema 2.5) with the record's defaults for missing values.
The two tau axes are the soft-drop subjet axes (the jet axis stands in for axis 0 without two subjets)."""

from __future__ import annotations

import numpy as np

from hhfm.simulate.candidates import Tracks
from hhfm.simulate.detector import SecondaryVertices
from hhfm.simulate.frame import JetFrame, segments
from hhfm.simulate.labels import delta_r, eta_phi
from hhfm.simulate.vertices import JetSVs

PION_MASS = 0.13957
NEAR_SV_DR = 0.7  # SVs counted by fj_nSV; an SV belongs to the nearest tau axis within it
CHARM_MASS, BOTTOM_MASS = 1.5, 5.2  # running track-mass thresholds (GeV)


def _kth(values: np.ndarray, offsets: np.ndarray, k: int, default: float) -> np.ndarray:
    """k-th value of each segment (values sorted within segments), `default` where too short."""
    idx = offsets[:-1] + k
    ok = idx < offsets[1:]
    out = np.full(len(offsets) - 1, default, dtype=np.float64)
    out[ok] = values[idx[ok]]
    return out


def _top_sig3(sig3: np.ndarray, jet: np.ndarray, n: int, count: int) -> list[np.ndarray]:
    """The `count` largest 3D IP significances of each of n jets (descending), -50 where missing."""
    order = np.lexsort((-sig3, jet))
    offsets = segments(jet[order], n)
    return [_kth(sig3[order], offsets, k, -50.0) for k in range(count)]


def _eta_rel(p3: np.ndarray, eta: float, phi: float) -> np.ndarray:
    """Pseudorapidity of momenta relative to an axis given by (eta, phi)."""
    ax = np.array([np.cos(phi), np.sin(phi), np.sinh(eta)]) / np.cosh(eta)
    par = p3 @ ax
    perp = np.linalg.norm(np.cross(p3, ax), axis=-1)
    th = np.arctan2(perp, par)
    return -np.log(np.tan(np.clip(th, 1e-6, np.pi - 1e-6) / 2))


def _tau_axes(frame: JetFrame) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of the two tau axes, each (n, 2): subjets if two, else the jet axis and none."""
    ax_eta = np.stack([np.where(frame.two, frame.sj_eta[:, 0], frame.eta), frame.sj_eta[:, 1]], -1)
    ax_phi = np.stack([np.where(frame.two, frame.sj_phi[:, 0], frame.phi), frame.sj_phi[:, 1]], -1)
    return ax_eta, ax_phi


def _ip_significances(frame: JetFrame, tk: Tracks, ax_eta: np.ndarray, ax_phi: np.ndarray) -> dict:
    """Largest 3D IP significances of the jet (4) and of the tracks nearest each tau axis (2 each)."""
    sig3, tj = tk.branches["trackBTag_Sip3dSig"], tk.jet
    out = {f"fj_trackSipdSig_{k}": v for k, v in enumerate(_top_sig3(sig3, tj, frame.n, 4))}
    d0 = delta_r(tk.eta, tk.phi, ax_eta[tj, 0], ax_phi[tj, 0])
    d1 = np.where(frame.two[tj], delta_r(tk.eta, tk.phi, ax_eta[tj, 1], ax_phi[tj, 1]), np.inf)
    near1 = d1 < d0
    for a, mask in ((0, ~near1), (1, near1)):
        sel = np.flatnonzero(mask)
        for k, v in enumerate(_top_sig3(sig3[sel], tj[sel], frame.n, 2)):
            out[f"fj_trackSipdSig_{a}_{k}"] = v
    return out


def _above_mass_thresholds(n: int, tk: Tracks, energy: np.ndarray) -> dict:
    """2D IP significance of the tracks (in Sip2dSig order) that lift the running mass above the
    charm / bottom thresholds; -19 where never reached."""
    above_c = np.full(n, -19.0)
    above_b = np.full((n, 2), -19.0)
    sig2 = tk.branches["trackBTag_Sip2dSig"]
    for j in range(n):
        s, t = tk.offsets[j], tk.offsets[j + 1]
        if t == s:
            continue
        ce, cp = np.cumsum(energy[s:t]), np.cumsum(tk.p3[s:t], axis=0)
        m = np.sqrt(np.maximum(ce**2 - (cp**2).sum(-1), 0.0))
        ic = np.flatnonzero(m > CHARM_MASS)
        if len(ic):
            above_c[j] = sig2[s + ic[0]]
        ib = np.flatnonzero(m > BOTTOM_MASS)
        if len(ib):
            above_b[j, 0] = sig2[s + ib[0]]
            if ib[0] + 1 < t - s:
                above_b[j, 1] = sig2[s + ib[0] + 1]
    return {"fj_trackSip2dSigAboveCharm_0": above_c, "fj_trackSip2dSigAboveBottom_0": above_b[:, 0],
            "fj_trackSip2dSigAboveBottom_1": above_b[:, 1]}  # fmt: skip


def _z_ratio(svp: list[np.ndarray], jet_eta: float, jet_phi: float) -> float:
    """fj_z_ratio: dR(SV1, SV2 or the jet axis) x pT of the last one / mass of the SV system."""
    tot = svp[0] + svp[1] if len(svp) == 2 else svp[0]
    m = np.sqrt(max(tot[3] ** 2 - (tot[:3] ** 2).sum(), 1e-9))
    e0, p0 = eta_phi(*svp[0][:3])
    e1, p1 = eta_phi(*svp[1][:3]) if len(svp) == 2 else (jet_eta, jet_phi)
    return delta_r(e0, p0, e1, p1) * np.hypot(svp[-1][0], svp[-1][1]) / m


class _TauVertexInputs:
    """Inputs from the leading SV along each tau axis (SVs of a jet are sorted by flight significance)."""

    def __init__(self, frame: JetFrame, tk: Tracks, jsv: JetSVs, svs: SecondaryVertices, energy: np.ndarray) -> None:
        self.frame, self.tk, self.jsv, self.svs, self.energy = frame, tk, jsv, svs, energy
        self.ax_eta, self.ax_phi = _tau_axes(frame)
        n = frame.n
        self.mass, self.eratio, self.fd = (np.full((n, 2), -1.0) for _ in range(3))
        self.dr0 = np.full(n, -1.0)
        self.etarel = np.full((n, 2, 3), -1.0)
        self.z_ratio = np.full(n, -3.0)

    def _leading(self, j: int) -> list[int]:
        """Index (in JetSVs) of the first SV of jet j nearest to each axis within NEAR_SV_DR, -1 if none."""
        jsv, chosen = self.jsv, [-1, -1]
        for i in range(jsv.offsets[j], jsv.offsets[j + 1]):
            d0 = delta_r(jsv.eta[i], jsv.phi[i], self.ax_eta[j, 0], self.ax_phi[j, 0])
            d1 = delta_r(jsv.eta[i], jsv.phi[i], self.ax_eta[j, 1], self.ax_phi[j, 1]) if self.frame.two[j] else np.inf
            da = [d0, d1]
            a = int(np.argmin(da))
            if da[a] < NEAR_SV_DR and chosen[a] < 0:
                chosen[a] = i
        return chosen

    def _fill_axis(self, j: int, a: int, i: int) -> np.ndarray:
        """Record SV i (in JetSVs) as the vertex of axis a of jet j; return its four-momentum."""
        jsv, svs, tk = self.jsv, self.svs, self.tk
        v = jsv.sv[i]
        self.mass[j, a] = jsv.mass[i]
        self.fd[j, a] = min(jsv.dxysig[i], 800.0)
        ts, tt = tk.offsets[j], tk.offsets[j + 1]
        mine = np.flatnonzero(tk.hadron[ts:tt] == svs.hadron[v]) + ts
        tk_e = self.energy[ts:tt].sum()
        self.eratio[j, a] = svs.e[v] / tk_e if tk_e > 0 else -1.0
        rel = np.sort(_eta_rel(tk.p3[mine], self.ax_eta[j, a], self.ax_phi[j, a]))[:3]
        self.etarel[j, a, : len(rel)] = rel
        if a == 0:
            self.dr0[j] = delta_r(jsv.eta[i], jsv.phi[i], self.ax_eta[j, 0], self.ax_phi[j, 0])
        return np.array([svs.px[v], svs.py[v], svs.pz[v], svs.e[v]])

    def branches(self) -> dict:
        """Fill every jet and return the fj_tau* vertex branches and fj_z_ratio."""
        for j in range(self.frame.n):
            if self.jsv.offsets[j + 1] == self.jsv.offsets[j]:
                continue
            svp = [self._fill_axis(j, a, i) for a, i in enumerate(self._leading(j)) if i >= 0]
            if svp:
                self.z_ratio[j] = _z_ratio(svp, self.frame.eta[j], self.frame.phi[j])
        out = {"fj_tau_vertexDeltaR_0": self.dr0, "fj_z_ratio": self.z_ratio}
        for a in (0, 1):
            out[f"fj_tau_vertexMass_{a}"] = self.mass[:, a]
            out[f"fj_tau_vertexEnergyRatio_{a}"] = self.eratio[:, a]
            out[f"fj_tau_flightDistance2dSig_{a}"] = self.fd[:, a]
            for k in range(3):
                out[f"fj_tau{a}_trackEtaRel_{k}"] = self.etarel[:, a, k]
        return out


def doubleb_inputs(frame: JetFrame, tk: Tracks, jsv: JetSVs, svs: SecondaryVertices) -> dict[str, np.ndarray]:
    """Every double-b tagger input branch of the jets of a batch."""
    energy = np.sqrt((tk.p3**2).sum(-1) + PION_MASS**2)
    out = _ip_significances(frame, tk, *_tau_axes(frame))
    out["fj_jetNTracks"] = np.bincount(tk.jet, (tk.pt > 1.0).astype(float), frame.n)
    out["fj_nSV"] = np.bincount(jsv.jet, (jsv.dr < NEAR_SV_DR).astype(float), frame.n)
    out.update(_above_mass_thresholds(frame.n, tk, energy))
    out.update(_TauVertexInputs(frame, tk, jsv, svs, energy).branches())
    return out
