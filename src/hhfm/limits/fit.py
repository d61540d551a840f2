"""Robust pyhf fits at any event count: a bounded Newton minimiser on pyhf's autodiff (pytorch) likelihood.

pyhf's default SLSQP with a unit starting Hessian fails on our models once bins hold ~1e6-1e9 background
events: the curvatures of the staterror parameters grow like b and differ from the signal strength's by
up to ~1e9, so the first quasi-Newton step jumps to the parameter bounds ("Inequality constraints
incompatible"). Newton steps with the exact Hessian are invariant to that scaling, so the likelihood is
fitted as written: no yields are rescaled, and a limit is that of the saved workspace. Everything else
(likelihood, constraint terms, test statistics) is pyhf's own.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import pyhf
import torch
from scipy.optimize import OptimizeResult


class NewtonOptimizer(pyhf.optimize.scipy_optimizer):
    """Damped Newton with an active set on the parameter bounds (pyhf optimizer interface).

    Hessian: exact, by vectorised double autodiff of pyhf's objective. Multiplicative parameters
    (lower bound > 0: the staterror gammas) move in log space, where the valley gamma_i * normsys(alpha)
    = const of a bin with many events is nearly straight. A step is Levenberg-Marquardt damped until the
    Hessian is positive definite and halved until it makes progress; converged when the predicted
    decrease of 2 NLL (Newton decrement g.H^-1.g / 2) is below `tolerance`.
    """

    def __init__(self, tolerance: float = 1e-6, max_steps: int = 100, **kwargs):
        super().__init__(**kwargs)
        self.name = "newton"
        self.newton_tolerance = tolerance
        self.max_steps = max_steps

    def minimize(self, objective, data, pdf, *args, **kwargs):
        """pyhf's entry point; keeps objective, data and model for the exact (autodiff) Hessian."""
        self._hessian = twice_nll_hessian(pdf, data, objective)
        n = np.abs(np.asarray(data, dtype=np.float64)[: pdf.config.nmaindata])
        self._noise = 1e-15 * float(np.sum(n * (np.abs(np.log(np.maximum(n, 1.0))) + 1.0)))  # rounding of 2 NLL
        return super().minimize(objective, data, pdf, *args, **kwargs)

    def _minimize(self, minimizer, func, x0, do_grad=False, bounds=None, fixed_vals=None, options={}):
        if not do_grad:
            raise ValueError("NewtonOptimizer needs autodiff gradients: use pyhf's pytorch backend")
        x = np.asarray(x0, dtype=np.float64).copy()
        lo, hi = (np.asarray([b[i] for b in bounds], dtype=np.float64) for i in (0, 1))
        free = np.ones(len(x), dtype=bool)
        for i, value in fixed_vals or []:
            x[i], free[i] = value, False
        logs = lo > 0
        to_y = lambda v: np.where(logs, np.log(np.where(logs, v, 1.0)), v)  # noqa: E731
        to_x = lambda v: np.where(logs, np.exp(np.where(logs, v, 0.0)), v)  # noqa: E731
        ylo, yhi = to_y(lo), to_y(hi)
        y = np.clip(to_y(np.clip(x, lo, hi)), ylo, yhi)

        def value_grad(v: np.ndarray) -> tuple[float, np.ndarray]:
            """2 NLL and its gradient in y over the free parameters."""
            f, g = func(to_x(v))
            return float(f), (np.asarray(g, dtype=np.float64) * np.where(logs, to_x(v), 1.0))[free]

        def hessian(v: np.ndarray, g: np.ndarray, move: np.ndarray) -> np.ndarray:
            """Hessian in y over the parameters `move` (g: the free gradient in y at v)."""
            xv = to_x(v)
            jac = np.where(logs, xv, 1.0)
            full_g = np.zeros(len(v))
            full_g[free] = g
            hess = self._hessian(xv) * np.outer(jac, jac) + np.diag(np.where(logs, full_g, 0.0))
            return hess[np.ix_(move, move)]

        idx = np.flatnonzero(free)
        f, g = value_grad(y)
        steps, converged, cached = 0, len(idx) == 0, None  # cached: (move, Hessian) at the current y
        while not converged and steps < self.max_steps:
            steps += 1
            # parameters at a bound whose gradient pushes outward stay there for this step (active set)
            held = ((y[idx] <= ylo[idx]) & (g > 0)) | ((y[idx] >= yhi[idx]) & (g < 0))
            move = idx[~held]
            if len(move) == 0:
                converged = True
                break
            hess = cached[1] if cached is not None and np.array_equal(cached[0], move) else hessian(y, g, move)
            step = _damped_step(hess, g[~held])
            decrease = -0.5 * float(g[~held] @ step)
            if decrease < max(self.newton_tolerance, self._noise):
                converged = True
                break
            for _ in range(30):  # halve the step until it makes progress
                p = y.copy()
                p[move] = np.clip(y[move] + step, ylo[move], yhi[move])
                f_new, g_new = value_grad(p)
                hess_new = None
                # the NLL must not increase beyond its rounding (~1e-15 of sum n ln n, ~1e-4 at 1e9 events per
                # bin); near the minimum, where rounding hides the progress, a shrinking Newton decrement (exact
                # gradient and Hessian at the new point) also counts as progress
                if not np.all(np.isfinite(g_new)) or not np.isfinite(f_new):
                    ok = False
                elif f_new <= f + self._noise:
                    ok = True
                elif decrease > 1e-2:
                    ok = False
                else:
                    hess_new = hessian(p, g_new, move)
                    ok = -0.5 * float(g_new[~held] @ _damped_step(hess_new, g_new[~held])) < decrease
                if ok:
                    break
                step = 0.5 * step
            else:  # no progress along the Newton direction: at the optimum within rounding, or stuck
                converged = decrease < 1e-3
                break
            y, f, g = p, f_new, g_new
            cached = (move, hess_new) if hess_new is not None else None
        return OptimizeResult(x=to_x(y), fun=f, success=converged, nit=steps, message="newton")


def twice_nll_hessian(model: pyhf.pdf.Model, data, objective=None) -> Callable[[np.ndarray], np.ndarray]:
    """Exact Hessian of -2 ln L (pyhf's `twice_nll`, or `objective`) by vectorised double autodiff."""
    objective = objective or pyhf.infer.mle.twice_nll

    def hessian(p: np.ndarray) -> np.ndarray:
        pars = torch.as_tensor(np.asarray(p, dtype=np.float64))
        return torch.autograd.functional.hessian(lambda q: objective(q, data, model), pars, vectorize=True).numpy()

    return hessian


def wald(model: pyhf.pdf.Model, data, pars: np.ndarray) -> tuple[float, np.ndarray]:
    """Gaussian (Fisher) approximation at `pars`: sigma of the POI with the nuisance parameters profiled,
    and d(theta^^)/d(mu), the linearised conditional nuisance parameters (fit starts)."""
    hess = twice_nll_hessian(model, data)(pars)
    poi = model.config.poi_index
    nuis = [i for i in range(len(pars)) if i != poi]
    slope = np.zeros(len(pars))
    slope[poi] = 1.0
    slope[nuis] = -np.linalg.solve(hess[np.ix_(nuis, nuis)], hess[nuis, poi])
    curvature = hess[poi, poi] + hess[poi, nuis] @ slope[nuis]  # of 2 NLL along the profile
    return float(np.sqrt(2.0 / curvature)), slope


def _damped_step(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """Newton step -H^-1 g, Levenberg-Marquardt damped (lambda * diag H) until H is positive definite."""
    diag = np.maximum(np.abs(np.diag(hess)), 1e-12)
    lam = 0.0
    for _ in range(60):
        try:
            chol = np.linalg.cholesky(hess + lam * np.diag(diag))
            return -np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
        except np.linalg.LinAlgError:
            lam = max(2 * lam, 1e-6)
    return -grad / diag


@contextlib.contextmanager
def robust_backend() -> Iterator[None]:
    """pyhf on the float64 pytorch backend with `NewtonOptimizer`; the previous backend and torch's default
    dtype (which pyhf's 64b pytorch backend sets to float64 globally) are restored after."""
    previous, dtype = pyhf.get_backend(), torch.get_default_dtype()
    pyhf.set_backend(pyhf.tensor.pytorch_backend(precision="64b"), NewtonOptimizer())
    try:
        yield
    finally:
        pyhf.set_backend(*previous)
        torch.set_default_dtype(dtype)
