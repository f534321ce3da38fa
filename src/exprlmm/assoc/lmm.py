r"""The linear-mixed-model association scan: one kinship, all genes at once.

Model for each tested gene ``k`` (DESIGN.md):

.. math:: y = X\gamma + z_k\beta_k + u + e,\quad u \sim N(0, \sigma_g^2 K),\quad
          e \sim N(0, \sigma_e^2 I),\quad \delta = \sigma_e^2/\sigma_g^2 ,

so :math:`V = \sigma_g^2 H`, :math:`H = K + \delta I`. With ``K = U diag(s) Uᵀ`` every
quantity the likelihood needs is a weighted sum over eigen-components with weights
:math:`w_i(\delta) = 1/(s_i + \delta)`; for ``F = [X, z_k]`` (``q`` columns):

* ML:   :math:`\ell(\delta) = -\tfrac12[N\log(2\pi\hat\sigma^2) + \log|H| + N]`,
  :math:`\hat\sigma^2 = r^\top H^{-1} r / N`;
* REML: :math:`\ell_R(\delta) = -\tfrac12[(N-q)\log(2\pi\hat\sigma^2) + \log|H|
  + \log|F^\top H^{-1}F| - \log|F^\top F| + (N-q)]`, :math:`\hat\sigma^2 = r^\top H^{-1}r/(N-q)`;
* GLS :math:`\hat\beta = (F^\top H^{-1}F)^{-1}F^\top H^{-1}y`; the gene's coefficient uses
  the Schur complement :math:`S_k = z_k^\top H^{-1}z_k - z_k^\top H^{-1}X (X^\top H^{-1}X)^{-1}X^\top H^{-1}z_k`,
  :math:`\hat\beta_k = e_k/S_k`, :math:`\widehat{se}^2_k = \hat\sigma^2_{N-q}/S_k` with
  :math:`\hat\sigma^2_{N-q} = r^\top H^{-1}r/(N-q)`, and a Wald t test with ``N − q`` df
  (as PyLMM); or a likelihood-ratio test on the ML likelihoods (χ², 1 df).

``delta="null"`` fits δ once on the null model ``y ~ X + u`` and uses it for every gene
(PyLMM, FaST-LMM, EMMAX; what Yao et al. ran). ``delta="refit"`` finds each gene's own
optimum: the likelihood is evaluated for all genes at Chebyshev nodes of ``log δ`` by
matrix products, the highest node is bracketed, the optimum is refined on the Chebyshev
interpolant (vectorised golden section) and the statistics are recomputed exactly there.
``log δ`` is confined to ``log_delta_bounds`` (default ±10: h² from 4.5e-5 to 0.99995).

Leave-gene-out (``leave_out="gene"``): gene ``k`` is removed from its own kinship,
:math:`K_{-k} = (G K - z_k z_k^\top)/(G-1)`. Because :math:`z_k` is a column of ``F`` this
rank-one change leaves the GLS estimate, the residuals and the REML likelihood exactly
those of the full ``K`` at :math:`\delta' = \delta (G-1)/G`, and changes only the
variance of :math:`\hat\beta_k`: :math:`\widehat{se}^2 = \hat\sigma'^2(1/S'_k - 1/G)`
(Sherman–Morrison); the ML likelihood gains :math:`-\tfrac12\log(1 - z_k^\top H'^{-1}z_k/G)`.
No extra eigendecomposition is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from exprlmm.assoc._common import (
    as_matrix,
    benjamini_hochberg,
    default_chunk_size,
    fixed_design,
    two_sided_t_pvalue,
)
from exprlmm.kinship.kinship import Eigensystem, eigensystem_from_expression

LMM_COLUMNS = ["gene", "beta", "se", "stat", "df", "pvalue", "padj", "h2", "delta"]
LOG_2PI = float(np.log(2.0 * np.pi))


# ---------------------------------------------------------------------------------------
# Eigen-components: weighted sums over the spectrum, with an implicit complement
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Components:
    """Spectrum of ``K`` as weights' poles: ``values`` (m,), multiplicities ``mult`` (m,).

    For a low-rank eigensystem the last component is the complement of ``U`` (eigenvalue
    ``min_eigenvalue``, multiplicity ``N − r``).
    """

    values: np.ndarray
    mult: np.ndarray
    eig: Eigensystem

    @classmethod
    def from_eigensystem(cls, eig: Eigensystem) -> _Components:
        values = np.asarray(eig.values, dtype=np.float64)
        mult = np.ones_like(values)
        if eig.is_low_rank:
            values = np.append(values, eig.min_eigenvalue)
            mult = np.append(mult, float(eig.complement_size))
        return cls(values, mult, eig)

    def weights(self, delta: np.ndarray) -> np.ndarray:
        """``(len(delta), m)`` matrix of ``1/(s_i + δ)``."""
        return 1.0 / (self.values[None, :] + np.asarray(delta, dtype=np.float64)[:, None])

    def logdet(self, delta: np.ndarray) -> np.ndarray:
        r""":math:`\log|K + \delta I| = \sum_i m_i \log(s_i + \delta)` for each δ."""
        delta = np.asarray(delta, dtype=np.float64)
        return np.log(self.values[None, :] + delta[:, None]) @ self.mult

    def products(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r"""Per-component products of two sets of vectors.

        ``a`` is ``N × p`` and ``b`` is ``N × g``; returns ``m × p × g`` (or squeezed
        shapes) with rows :math:`\tilde a_i \tilde b_i` (``ã = Uᵀa``) and, for a low-rank
        ``K``, a last row :math:`a^\top b - \sum_i \tilde a_i \tilde b_i` (the complement).
        """
        u = np.asarray(self.eig.vectors)
        ra, rb = u.T @ a, u.T @ b
        prod = ra[:, :, None] * rb[:, None, :]
        if self.eig.is_low_rank:
            rest = a.T @ b - np.einsum("ip,ig->pg", ra, rb)
            prod = np.concatenate([prod, rest[None]], axis=0)
        return prod


# ---------------------------------------------------------------------------------------
# Statistics from weighted sums (closed-form Schur complement, all genes at once)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sums:
    """Weighted inner products at one δ per leading index (``...`` broadcast to genes)."""

    xx: np.ndarray  # (..., c, c)  Xᵀ H⁻¹ X
    xy: np.ndarray  # (..., c)     Xᵀ H⁻¹ y
    yy: np.ndarray  # (...)        yᵀ H⁻¹ y
    logdet: np.ndarray  # (...)    log |H|
    xz: np.ndarray  # (..., c)     Xᵀ H⁻¹ z
    zz: np.ndarray  # (...)        zᵀ H⁻¹ z
    zy: np.ndarray  # (...)        zᵀ H⁻¹ y


@dataclass(frozen=True)
class _Constants:
    """δ-free terms: sample size, design width, unweighted log-determinants."""

    n: int
    c: int
    logdet_xtx: float  # log |XᵀX|
    logdet_ftf: np.ndarray  # (G,) log |FᵀF| with F = [X, z_k]
    inv_n_kinship_genes: np.ndarray  # (G,) 1/G_K for genes inside K under leave-out, else 0


def _statistics(sums: _Sums, const: _Constants, method: str) -> dict[str, np.ndarray]:
    """GLS estimate, Wald SE, RSS and profile log-likelihoods for every (δ, gene)."""
    a_inv = np.linalg.inv(sums.xx)
    a_inv_xz = np.einsum("...ij,...j->...i", a_inv, sums.xz)
    a_inv_xy = np.einsum("...ij,...j->...i", a_inv, sums.xy)
    schur = sums.zz - np.einsum("...i,...i->...", sums.xz, a_inv_xz)
    e = sums.zy - np.einsum("...i,...i->...", a_inv_xz, sums.xy)
    rss0 = sums.yy - np.einsum("...i,...i->...", sums.xy, a_inv_xy)
    n, q = const.n, const.c + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = e / schur
        rss = np.maximum(rss0 - e * beta, 1e-300)
        sigma2 = rss / (n - q)
        leave = const.inv_n_kinship_genes
        se = np.sqrt(sigma2 * (1.0 / schur - leave))
        loglik_ml = -0.5 * (n * (LOG_2PI + np.log(rss / n)) + sums.logdet + n)
        # leave-gene-out: the ML likelihood gains -½ log(1 - zᵀH⁻¹z / G_K); REML is unchanged
        loglik_ml = loglik_ml - 0.5 * np.log1p(-sums.zz * leave)
        out = {"beta": beta, "se": se, "rss": rss, "loglik_ml": loglik_ml, "rss0": rss0}
        if method == "reml":
            logdet_xx = np.linalg.slogdet(sums.xx)[1]
            logdet_f = logdet_xx + np.log(schur)
            out["loglik"] = -0.5 * (
                (n - q) * (LOG_2PI + np.log(sigma2))
                + sums.logdet
                + logdet_f
                - const.logdet_ftf
                + (n - q)
            )
        else:
            out["loglik"] = loglik_ml
    return out


# ---------------------------------------------------------------------------------------
# Null model
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NullModel:
    r"""The null model ``y = Xγ + u + e`` fitted by (RE)ML over ``log δ``.

    Attributes
    ----------
    delta, h2
        :math:`\hat\delta = \hat\sigma_e^2/\hat\sigma_g^2` and :math:`h^2 = 1/(1+\hat\delta)`.
    loglik
        Maximised (restricted) log-likelihood.
    sigma2_g, sigma2_e
        Variance components, :math:`\hat\sigma_g^2 = r^\top H^{-1} r/(N - c)` (REML) or ``/N`` (ML),
        :math:`\hat\sigma_e^2 = \hat\delta\hat\sigma_g^2`.
    beta
        GLS fixed effects (intercept first).
    method
        ``"reml"`` or ``"ml"``.
    at_boundary
        ``"lower"`` (h² → 1), ``"upper"`` (h² → 0) or ``""``.
    """

    delta: float
    h2: float
    loglik: float
    sigma2_g: float
    sigma2_e: float
    beta: np.ndarray
    method: str
    at_boundary: str


def _null_loglik(comp: _Components, pxx, pxy, pyy, n, c, logdet_xtx, method, log_delta):
    delta = np.exp(np.atleast_1d(log_delta))
    w = comp.weights(delta)
    xx = np.einsum("dm,mij->dij", w, pxx)
    xy = w @ pxy
    yy = w @ pyy
    beta = np.linalg.solve(xx, xy[..., None])[..., 0]
    rss = yy - np.einsum("di,di->d", xy, beta)
    logdet = comp.logdet(delta)
    if method == "reml":
        sigma2 = rss / (n - c)
        ll = -0.5 * (
            (n - c) * (LOG_2PI + np.log(sigma2))
            + logdet
            + np.linalg.slogdet(xx)[1]
            - logdet_xtx
            + (n - c)
        )
    else:
        sigma2 = rss / n
        ll = -0.5 * (n * (LOG_2PI + np.log(sigma2)) + logdet + n)
    return ll, sigma2, beta


def fit_null_model(
    trait,
    eigensystem: Eigensystem,
    *,
    covariates=None,
    method: Literal["reml", "ml"] = "reml",
    log_delta_bounds: tuple[float, float] = (-10.0, 10.0),
    grid_size: int = 200,
) -> NullModel:
    """Fit ``y ~ 1 + covariates + u`` by REML or ML: a ``log δ`` grid, then Brent on the best peak.

    The highest grid point (not the first local peak) is refined by bounded Brent
    (``xatol = 1e-10``) between its neighbours; an optimum at a bound is reported in
    ``at_boundary``.
    """
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    comp = _Components.from_eigensystem(eigensystem)
    y, x = fixed_design(trait, covariates, eigensystem.n_samples)
    n, c = x.shape
    pxx = comp.products(x, x)
    pxy = comp.products(x, y[:, None])[:, :, 0]
    pyy = comp.products(y[:, None], y[:, None])[:, 0, 0]
    logdet_xtx = float(np.linalg.slogdet(x.T @ x)[1])
    args = (comp, pxx, pxy, pyy, n, c, logdet_xtx, method)
    lo, hi = log_delta_bounds
    grid = np.linspace(lo, hi, grid_size)
    ll, _, _ = _null_loglik(*args, grid)
    best = int(np.argmax(ll))
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, grid_size - 1)]
    res = optimize.minimize_scalar(
        lambda t: -_null_loglik(*args, t)[0][0],
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-10},
    )
    t_hat = float(res.x) if -res.fun >= ll[best] else float(grid[best])
    ll_hat, sigma2, beta = _null_loglik(*args, t_hat)
    boundary = ""
    if t_hat <= lo + 1e-6:
        boundary = "lower"
    elif t_hat >= hi - 1e-6:
        boundary = "upper"
    delta = float(np.exp(t_hat))
    return NullModel(
        delta=delta,
        h2=1.0 / (1.0 + delta),
        loglik=float(ll_hat[0]),
        sigma2_g=float(sigma2[0]),
        sigma2_e=float(sigma2[0] * delta),
        beta=beta[0],
        method=method,
        at_boundary=boundary,
    )


# ---------------------------------------------------------------------------------------
# The scan
# ---------------------------------------------------------------------------------------
def _chebyshev_nodes(n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """First-kind Chebyshev nodes on ``[lo, hi]`` and the values→coefficients matrix."""
    j = np.arange(n)
    theta = np.pi * (j + 0.5) / n
    nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(theta)
    to_coef = (2.0 / n) * np.cos(np.outer(np.arange(n), theta))
    to_coef[0] /= 2.0
    return nodes, to_coef


def _chebyshev_basis(x: np.ndarray, n: int) -> np.ndarray:
    """``T_0..T_{n-1}`` at ``x`` in [-1, 1]: shape ``(n, len(x))``."""
    basis = np.empty((n, x.size))
    basis[0] = 1.0
    if n > 1:
        basis[1] = x
    two_x = 2.0 * x
    for k in range(2, n):
        np.multiply(two_x, basis[k - 1], out=basis[k])
        basis[k] -= basis[k - 2]
    return basis


@dataclass(frozen=True)
class _Design:
    """The fixed part, rotated once: per-component products of X and y."""

    y: np.ndarray
    x: np.ndarray
    pxx: np.ndarray  # (m, c, c)
    pxy: np.ndarray  # (m, c)
    pyy: np.ndarray  # (m,)


@dataclass(frozen=True)
class _RotatedBlock:
    """A standardised gene block rotated once: ``z̃ = Uᵀz`` and ``z̃²``, plus complement terms.

    For a low-rank ``K`` the complement of ``U`` contributes ``aᵀz − ãᵀz̃`` for each
    product (``a`` = a column of X, z itself, or y), weighted by ``1/(s₀ + δ)``.
    """

    rz: np.ndarray  # (r, g)
    rz2: np.ndarray  # (r, g)
    rx: np.ndarray  # (r, c)
    ry: np.ndarray  # (r,)
    rest_xz: np.ndarray | None  # (c, g)
    rest_zz: np.ndarray | None  # (g,)
    rest_zy: np.ndarray | None  # (g,)

    @classmethod
    def rotate(cls, comp: _Components, design: _Design, z: np.ndarray) -> _RotatedBlock:
        u = np.asarray(comp.eig.vectors)
        rz = u.T @ z
        rz2 = rz * rz
        rx, ry = u.T @ design.x, u.T @ design.y
        rest = (None, None, None)
        if comp.eig.is_low_rank:
            rest = (
                design.x.T @ z - rx.T @ rz,
                np.einsum("ig,ig->g", z, z) - rz2.sum(axis=0),
                design.y @ z - ry @ rz,
            )
        return cls(rz, rz2, rx, ry, *rest)


def _sums_on_grid(comp: _Components, design: _Design, block: _RotatedBlock, delta_grid) -> _Sums:
    """All sums at a grid of δ by matrix products; leading shape ``(D, g)``."""
    w = comp.weights(delta_grid)  # (D, m)
    r = block.rz.shape[0]
    wr = w[:, :r]
    c = block.rx.shape[1]
    xz = np.stack([(wr * block.rx[:, j]) @ block.rz for j in range(c)], axis=-1)  # (D, g, c)
    zz = wr @ block.rz2
    zy = (wr * block.ry) @ block.rz
    if block.rest_zz is not None:
        w0 = w[:, r][:, None]
        xz = xz + w0[:, :, None] * block.rest_xz.T[None]
        zz = zz + w0 * block.rest_zz
        zy = zy + w0 * block.rest_zy
    return _Sums(
        xx=np.einsum("dm,mij->dij", w, design.pxx)[:, None],
        xy=(w @ design.pxy)[:, None],
        yy=(w @ design.pyy)[:, None],
        logdet=comp.logdet(delta_grid)[:, None],
        xz=xz,
        zz=zz,
        zy=zy,
    )


def _sums_per_gene(
    comp: _Components, design: _Design, block: _RotatedBlock, delta, logdet
) -> _Sums:
    """All sums at one δ per gene (elementwise over components); leading shape ``(g,)``.

    ``logdet`` (``log|K + δI|`` per gene) is passed in: it does not depend on the gene's data.
    """
    w = 1.0 / (comp.values[:, None] + delta[None, :])  # (m, g)
    r = block.rz.shape[0]
    wz = w[:r] * block.rz
    xz = (block.rx.T @ wz).T
    zz = np.einsum("rg,rg->g", w[:r], block.rz2)
    zy = block.ry @ wz
    if block.rest_zz is not None:
        w0 = w[r]
        xz = xz + w0[:, None] * block.rest_xz.T
        zz = zz + w0 * block.rest_zz
        zy = zy + w0 * block.rest_zy
    return _Sums(
        xx=np.einsum("mg,mij->gij", w, design.pxx),
        xy=w.T @ design.pxy,
        yy=w.T @ design.pyy,
        logdet=logdet,
        xz=xz,
        zz=zz,
        zy=zy,
    )


def _refit_block(comp, design, block, const, method, bounds, n_nodes):
    """Per-gene optimum of log δ' for one block; returns (log δ', statistics at it)."""
    lo, hi = bounds
    nodes, to_coef = _chebyshev_nodes(n_nodes, lo, hi)
    grid = _sums_on_grid(comp, design, block, np.exp(nodes))
    objective = _statistics(grid, const, method)["loglik"]  # (n_nodes, g)
    g = block.rz.shape[1]
    best = np.argmax(np.where(np.isfinite(objective), objective, -np.inf), axis=0)
    best_value = objective[best, np.arange(g)]
    # nodes are in decreasing order; neighbours bracket the optimum (interval ends at the edges)
    upper = np.where(best > 0, nodes[np.maximum(best - 1, 0)], hi)
    lower = np.where(best < n_nodes - 1, nodes[np.minimum(best + 1, n_nodes - 1)], lo)
    # interpolate (1 + δ)·S(δ): bounded at both ends, so the relative error is uniform
    scale = (1.0 + np.exp(nodes))[:, None]
    coef = _Sums(
        xx=np.tensordot(to_coef, grid.xx[:, 0] * scale[:, :, None], axes=1),
        xy=np.tensordot(to_coef, grid.xy[:, 0] * scale, axes=1),
        yy=to_coef @ (grid.yy[:, 0] * scale[:, 0]),
        logdet=to_coef @ grid.logdet[:, 0],
        xz=np.tensordot(to_coef, grid.xz * scale[:, :, None], axes=1),  # (n, g, c)
        zz=to_coef @ (grid.zz * scale),
        zy=to_coef @ (grid.zy * scale),
    )

    def interpolated(t: np.ndarray) -> np.ndarray:
        basis = _chebyshev_basis((2.0 * t - (lo + hi)) / (hi - lo), n_nodes)  # (n, g)
        c = coef.xy.shape[1]
        inv_scale = 1.0 / (1.0 + np.exp(t))
        sums = _Sums(
            xx=(basis.T @ coef.xx.reshape(n_nodes, c * c)).reshape(-1, c, c)
            * inv_scale[:, None, None],
            xy=(basis.T @ coef.xy) * inv_scale[:, None],
            yy=(basis.T @ coef.yy) * inv_scale,
            logdet=basis.T @ coef.logdet,
            xz=np.einsum("ng,ngi->gi", basis, coef.xz) * inv_scale[:, None],
            zz=np.einsum("ng,ng->g", basis, coef.zz) * inv_scale,
            zy=np.einsum("ng,ng->g", basis, coef.zy) * inv_scale,
        )
        value = _statistics(sums, const, method)["loglik"]
        return np.where(np.isfinite(value), value, -np.inf)

    def exact_at(t: np.ndarray) -> dict[str, np.ndarray]:
        logdet = _chebyshev_basis((2.0 * t - (lo + hi)) / (hi - lo), n_nodes).T @ coef.logdet
        return _statistics(_sums_per_gene(comp, design, block, np.exp(t), logdet), const, method)

    t = _golden_section_max(interpolated, lower, upper)
    exact = exact_at(t)
    # keep the best exact node if the refined point is (numerically) worse
    worse = ~(exact["loglik"] >= best_value - 1e-12 * np.abs(best_value))
    if np.any(worse):
        t = np.where(worse, nodes[best], t)
        exact = exact_at(t)
    return t, exact


def _golden_section_max(f, lower: np.ndarray, upper: np.ndarray, iterations: int = 36):
    """Vectorised golden-section maximisation of ``f`` on per-element brackets."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lower.astype(np.float64).copy(), upper.astype(np.float64).copy()
    c1 = b - ratio * (b - a)
    c2 = a + ratio * (b - a)
    f1, f2 = f(c1), f(c2)
    for _ in range(iterations):
        move_left = f1 >= f2  # the maximum lies in [a, c2]
        b = np.where(move_left, c2, b)
        a = np.where(move_left, a, c1)
        new = np.where(move_left, b - ratio * (b - a), a + ratio * (b - a))
        f_new = f(new)
        c2, f2, c1, f1 = (
            np.where(move_left, c1, new),
            np.where(move_left, f1, f_new),
            np.where(move_left, new, c2),
            np.where(move_left, f_new, f2),
        )
    candidates = np.stack([a, b, c1, c2])
    values = np.stack([f(a), f(b), f1, f2])
    return candidates[np.argmax(values, axis=0), np.arange(a.size)]


@dataclass(frozen=True)
class _Whitener:
    r"""Cholesky factor of ``H = K + δI`` at one δ and the whitened design.

    ``H = U diag(s − s₀) Uᵀ + (s₀ + δ) I`` (``s₀`` the clipped eigenvalue, so a low-rank
    ``U`` is handled too); every weighted sum is then a dot product of whitened vectors
    ``L⁻¹v``: one triangular solve per gene block, half the flops of a rotation.
    """

    chol: np.ndarray
    wx: np.ndarray
    wy: np.ndarray
    logdet: float

    @classmethod
    def at(cls, eig: Eigensystem, design: _Design, delta: float) -> _Whitener:
        u = np.asarray(eig.vectors)
        h = (u * (np.asarray(eig.values) - eig.min_eigenvalue)) @ u.T
        h[np.diag_indices_from(h)] += eig.min_eigenvalue + delta
        chol = linalg.cholesky(h, lower=True)
        return cls(
            chol=chol,
            wx=linalg.solve_triangular(chol, design.x, lower=True),
            wy=linalg.solve_triangular(chol, design.y, lower=True),
            logdet=float(2.0 * np.log(np.diag(chol)).sum()),
        )


def _fixed_delta_block(whiteners: dict, z, const, method, delta_prime):
    """Statistics of a gene block at one fixed δ per gene (whitened dot products)."""
    g = z.shape[1]
    keys = ("beta", "se", "rss", "rss0", "loglik", "loglik_ml")
    out = {key: np.empty(g) for key in keys}
    for value in np.unique(delta_prime):
        sel = delta_prime == value
        white = whiteners[float(value)]
        wz = linalg.solve_triangular(white.chol, z[:, sel], lower=True)
        sums = _Sums(
            xx=(white.wx.T @ white.wx)[None],
            xy=(white.wx.T @ white.wy)[None],
            yy=np.array([white.wy @ white.wy]),
            logdet=np.array([white.logdet]),
            xz=(white.wx.T @ wz).T,
            zz=np.einsum("ig,ig->g", wz, wz),
            zy=white.wy @ wz,
        )
        sub = _Constants(
            const.n,
            const.c,
            const.logdet_xtx,
            const.logdet_ftf[sel],
            const.inv_n_kinship_genes[sel],
        )
        for key, value_sel in _statistics(sums, sub, method).items():
            if key in out:
                out[key][sel] = value_sel
    return out


def lmm_scan(
    expression,
    trait,
    *,
    covariates=None,
    eigensystem: Eigensystem | None = None,
    kinship_genes=None,
    method: Literal["reml", "ml"] = "reml",
    delta: Literal["null", "refit"] | float = "null",
    leave_out: Literal["none", "gene"] = "none",
    test: Literal["wald", "lrt"] = "wald",
    standardize: bool = True,
    gene_names=None,
    chunk_size: int | None = None,
    log_delta_bounds: tuple[float, float] = (-10.0, 10.0),
    n_nodes: int = 96,
    progress=None,
) -> pd.DataFrame:
    r"""Test every gene against the trait with the LMM ``y = Xγ + z_kβ_k + u + e``.

    Parameters
    ----------
    expression
        ``N × G`` samples × genes (array or DataFrame). Each gene is standardised
        (``ddof = 0``) before testing.
    trait
        ``(N,)`` response.
    covariates
        ``N × c`` numeric covariates (the intercept is always added), or None.
    eigensystem
        Eigensystem of the kinship. Default: ``K = ZZᵀ/G`` from the genes selected by
        ``kinship_genes`` (all genes if None).
    kinship_genes
        Boolean mask (length G) of the genes that build ``K``; needed with a supplied
        ``eigensystem`` only for ``leave_out="gene"``.
    method
        ``"reml"`` (default) or ``"ml"`` for the variance components.
    delta
        ``"null"``: δ of the null model for every gene; ``"refit"``: each gene's own
        optimum; a float: that δ for every gene.
    leave_out
        ``"gene"``: each gene is removed from its own kinship (exact rank-one update).
    test
        ``"wald"`` (t, ``N − q`` df) or ``"lrt"`` (χ² 1 df on ML likelihoods; with
        ``delta="refit"`` requires ``method="ml"``).
    standardize
        Report ``beta``/``se`` per standard deviation of expression; else per unit.
    chunk_size
        Genes per block; memory is ``O(N · chunk)`` (plus ``O(nodes · chunk)`` for refit).
    log_delta_bounds
        Search range of ``log δ`` (null model and refit).
    n_nodes
        Chebyshev nodes of the refit profile (its accuracy is checked in the tests).
    progress
        Optional callable ``progress(n_done, n_total)`` called after each block.

    Returns
    -------
    pandas.DataFrame
        One row per gene: ``gene beta se stat df pvalue padj h2 delta``. ``stat`` is the
        Wald t (or the LRT χ²), ``h2 = 1/(1+δ)`` and ``delta`` the δ used for that gene.
        The null model is in ``DataFrame.attrs["null_model"]``.
    """
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    if leave_out not in ("none", "gene"):
        raise ValueError(f"leave_out must be 'none' or 'gene', got {leave_out!r}")
    if test not in ("wald", "lrt"):
        raise ValueError(f"test must be 'wald' or 'lrt', got {test!r}")
    if test == "lrt" and leave_out == "gene":
        raise ValueError(
            "the likelihood-ratio test is not available with leave_out='gene'; use the Wald test"
        )
    if test == "lrt" and delta == "refit" and method != "ml":
        raise ValueError(
            "a likelihood-ratio test with delta='refit' compares ML fits: use method='ml'"
        )
    if not (isinstance(delta, (int, float)) or delta in ("null", "refit")):
        raise ValueError(f"delta must be 'null', 'refit' or a positive number, got {delta!r}")
    if isinstance(delta, (int, float)) and not delta > 0:
        raise ValueError(f"a fixed delta must be positive, got {delta}")

    matrix, names = as_matrix(expression, gene_names)
    n, g = matrix.shape
    y, x = fixed_design(trait, covariates, n)
    mean = matrix.mean(axis=0)
    sd = matrix.std(axis=0)
    constant = ~(sd > 1e-12 * np.maximum(np.abs(mean), 1.0))
    sd_safe = np.where(constant, 1.0, sd)

    in_kinship = (
        np.ones(g, dtype=bool) if kinship_genes is None else np.asarray(kinship_genes, dtype=bool)
    )
    if in_kinship.shape != (g,):
        raise ValueError(f"kinship_genes must be a boolean mask of length {g}")
    if eigensystem is None:
        usable = in_kinship & ~constant
        if not usable.any():
            raise ValueError("no non-constant genes left to build the kinship")
        eigensystem = eigensystem_from_expression(matrix if usable.all() else matrix[:, usable])
        in_kinship = usable
    elif eigensystem.n_samples != n:
        raise ValueError(f"eigensystem is for {eigensystem.n_samples} samples, expression has {n}")
    if leave_out == "gene" and eigensystem.n_genes < 2:
        raise ValueError(
            "leave_out='gene' needs the number of genes that built K (Eigensystem.n_genes ≥ 2)"
        )
    n_k = eigensystem.n_genes
    leave = np.where(in_kinship, 1.0 / n_k, 0.0) if leave_out == "gene" else np.zeros(g)
    # δ' = δ·(G_K−1)/G_K for genes removed from their own kinship
    shrink = np.where(leave > 0, (n_k - 1.0) / max(n_k, 1), 1.0)

    comp = _Components.from_eigensystem(eigensystem)
    design = _Design(
        y=y,
        x=x,
        pxx=comp.products(x, x),
        pxy=comp.products(x, y[:, None])[:, :, 0],
        pyy=comp.products(y[:, None], y[:, None])[:, 0, 0],
    )
    null = fit_null_model(
        y,
        eigensystem,
        covariates=x[:, 1:] if x.shape[1] > 1 else None,
        method=method,
        log_delta_bounds=log_delta_bounds,
    )
    xtx = x.T @ x
    logdet_xtx = float(np.linalg.slogdet(xtx)[1])
    xtx_inv = np.linalg.inv(xtx)

    if delta != "refit":
        base_delta = null.delta if delta == "null" else float(delta)
        whiteners = {
            float(d): _Whitener.at(eigensystem, design, d) for d in np.unique(base_delta * shrink)
        }
    chunk = chunk_size or default_chunk_size(n, n_arrays=8 + 2 * x.shape[1])
    out = {key: np.full(g, np.nan) for key in ("beta", "se", "stat", "pvalue", "delta")}
    for start in range(0, g, chunk):
        sl = slice(start, min(start + chunk, g))
        z = (matrix[:, sl] - mean[sl]) / sd_safe[sl]
        xz = x.T @ z
        ftf_schur = np.einsum("ig,ig->g", z, z) - np.einsum("cg,cd,dg->g", xz, xtx_inv, xz)
        with np.errstate(divide="ignore", invalid="ignore"):
            const = _Constants(n, x.shape[1], logdet_xtx, logdet_xtx + np.log(ftf_schur), leave[sl])
        if delta == "refit":
            block = _RotatedBlock.rotate(comp, design, z)
            log_dp, st = _refit_block(comp, design, block, const, method, log_delta_bounds, n_nodes)
            delta_used = np.exp(log_dp) / shrink[sl]
        else:
            delta_used = np.full(sl.stop - sl.start, base_delta)
            st = _fixed_delta_block(whiteners, z, const, method, delta_used * shrink[sl])
        if test == "wald":
            stat = st["beta"] / st["se"]
            pvalue = two_sided_t_pvalue(stat, n - x.shape[1] - 1)
        else:
            if delta == "refit":  # both models at their own ML optimum
                stat = 2.0 * (st["loglik_ml"] - null.loglik)
            else:  # both models at the same δ: 2(ℓ1 − ℓ0) = N log(RSS0 / RSS1)
                stat = n * np.log(st["rss0"] / st["rss"])
            stat = np.maximum(stat, 0.0)
            pvalue = stats.chi2.sf(stat, 1)
        scale = 1.0 if standardize else sd_safe[sl]
        out["beta"][sl] = st["beta"] / scale
        out["se"][sl] = st["se"] / scale
        out["stat"][sl] = stat
        out["pvalue"][sl] = pvalue
        out["delta"][sl] = delta_used
        if progress is not None:
            progress(sl.stop, g)
    for key in ("beta", "se", "stat", "pvalue"):
        out[key][constant] = np.nan
    frame = pd.DataFrame(
        {
            "gene": names,
            "beta": out["beta"],
            "se": out["se"],
            "stat": out["stat"],
            "df": np.full(g, float(n - x.shape[1] - 1)) if test == "wald" else np.ones(g),
            "pvalue": out["pvalue"],
            "padj": benjamini_hochberg(out["pvalue"]),
            "h2": 1.0 / (1.0 + out["delta"]),
            "delta": out["delta"],
        },
        columns=LMM_COLUMNS,
    )
    frame.attrs["null_model"] = null
    return frame
