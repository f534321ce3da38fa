"""A direct dense LMM, written independently of exprlmm's spectral code, for the tests.

Builds ``H = K + δI`` explicitly, inverts it, computes GLS and the (restricted)
likelihood from their textbook definitions and optimises ``log δ`` with scipy.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize


def dense_fit_at(y, x, kinship, delta, method):
    """GLS at a fixed δ: returns (beta, se, loglik) with se from RSS/(N − q)."""
    n, q = x.shape
    h = kinship + delta * np.eye(n)
    h_inv = np.linalg.inv(h)
    a = x.T @ h_inv @ x
    beta = np.linalg.solve(a, x.T @ h_inv @ y)
    resid = y - x @ beta
    rss = resid @ h_inv @ resid
    logdet_h = np.linalg.slogdet(h)[1]
    if method == "reml":
        sigma2 = rss / (n - q)
        loglik = -0.5 * (
            (n - q) * np.log(2 * np.pi * sigma2)
            + logdet_h
            + np.linalg.slogdet(a)[1]
            - np.linalg.slogdet(x.T @ x)[1]
            + (n - q)
        )
    else:
        loglik = -0.5 * (n * np.log(2 * np.pi * rss / n) + logdet_h + n)
    se = np.sqrt(rss / (n - q) * np.diag(np.linalg.inv(a)))
    return beta, se, loglik


def dense_optimum(y, x, kinship, method, bounds=(-10.0, 10.0)):
    """δ maximising the (restricted) likelihood: a fine grid, then bounded Brent."""

    def negative(t):
        return -dense_fit_at(y, x, kinship, np.exp(t), method)[2]

    grid = np.linspace(*bounds, 401)
    values = np.array([negative(t) for t in grid])
    best = int(np.argmin(values))
    res = optimize.minimize_scalar(
        negative,
        bounds=(grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(np.exp(res.x))


def clipped(kinship, min_eigenvalue=1e-6):
    """``K`` with eigenvalues below ``min_eigenvalue`` raised to it (PyLMM's convention)."""
    values, vectors = np.linalg.eigh(kinship)
    return (vectors * np.maximum(values, min_eigenvalue)) @ vectors.T
