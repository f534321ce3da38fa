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

The heavy arithmetic is written against the array API: a numpy (default), torch, cupy or
array-api-strict expression matrix keeps its backend through the kinship, the rotation,
the δ grid and the refinement; only the null model's scalar optimisation and the p-value
tails run on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats
from scipy.linalg import blas

from exprlmm._xp import device, errstate, is_numpy_namespace, namespace, to_numpy
from exprlmm.assoc._common import (
    as_matrix,
    benjamini_hochberg,
    default_chunk_size,
    fixed_design,
    memory_budget,
    two_sided_t_pvalue,
)
from exprlmm.assoc._optimize import golden_section_max
from exprlmm.kinship.kinship import Eigensystem, eigensystem_from_expression

LMM_COLUMNS = ["gene", "beta", "se", "stat", "df", "pvalue", "padj", "h2", "delta"]
LOG_2PI = float(np.log(2.0 * np.pi))


# ---------------------------------------------------------------------------------------
# Eigen-components: weighted sums over the spectrum, with an implicit complement
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Components:
    """Spectrum of ``K`` as the poles of the weights ``1/(s_i + δ)``.

    ``values`` (m,) and multiplicities ``mult`` (m,): for a low-rank eigensystem the last
    component is the complement of ``U`` (eigenvalue ``min_eigenvalue``, multiplicity
    ``N − r``). Arrays live in the namespace ``xp``.
    """

    values: object
    mult: object
    vectors: object
    low_rank: bool
    xp: object
    work_vectors: object = None  # ``vectors`` in the working precision (float32 copy or same)

    @classmethod
    def from_eigensystem(
        cls, eig: Eigensystem, xp, dev=None, precision: str = "float64"
    ) -> _Components:
        dev = device(eig.vectors) if dev is None else dev
        values = xp.asarray(eig.values, dtype=xp.float64, device=dev)
        vectors = xp.asarray(eig.vectors, dtype=xp.float64, device=dev)
        mult = xp.ones_like(values)
        if eig.is_low_rank:
            extra = [eig.min_eigenvalue, float(eig.complement_size)]
            values = xp.concat([values, xp.asarray(extra[:1], dtype=xp.float64, device=dev)])
            mult = xp.concat([mult, xp.asarray(extra[1:], dtype=xp.float64, device=dev)])
        work = vectors if precision == "float64" else xp.astype(vectors, xp.float32)
        return cls(values, mult, vectors, eig.is_low_rank, xp, work)

    def on_host(self) -> _Components:
        """The same spectrum as numpy arrays (for the scalar null-model fit)."""
        return _Components(
            to_numpy(self.values), to_numpy(self.mult), to_numpy(self.vectors), self.low_rank, np
        )

    def rotate(self, z):
        r"""``Uᵀz`` (float64); the ``N × N × g`` product runs in the working precision."""
        work = self.vectors if self.work_vectors is None else self.work_vectors
        if work.dtype == self.xp.float64:
            return work.T @ z
        return self.xp.astype(work.T @ self.xp.astype(z, work.dtype), self.xp.float64)

    def weights(self, delta):
        """``(len(delta), m)`` matrix of ``1/(s_i + δ)``."""
        return 1.0 / (self.values[None, :] + delta[:, None])

    def logdet(self, delta):
        r""":math:`\log|K + \delta I| = \sum_i m_i \log(s_i + \delta)` for each δ."""
        return self.xp.log(self.values[None, :] + delta[:, None]) @ self.mult

    def products(self, a, b):
        r"""Per-component products of two sets of vectors.

        ``a`` is ``N × p`` and ``b`` is ``N × g``; returns ``m × p × g`` with rows
        :math:`\tilde a_i \tilde b_i` (``ã = Uᵀa``) and, for a low-rank ``K``, a last row
        :math:`a^\top b - \sum_i \tilde a_i \tilde b_i` (the complement).
        """
        ra, rb = self.vectors.T @ a, self.vectors.T @ b
        prod = ra[:, :, None] * rb[:, None, :]
        if self.low_rank:
            rest = a.T @ b - ra.T @ rb
            prod = self.xp.concat([prod, rest[None, ...]], axis=0)
        return prod


# ---------------------------------------------------------------------------------------
# Statistics from weighted sums (closed-form Schur complement, all genes at once)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Sums:
    """Weighted inner products at one δ per leading index (``...`` broadcast to genes)."""

    xx: object  # (..., c, c)  Xᵀ H⁻¹ X
    xy: object  # (..., c)     Xᵀ H⁻¹ y
    yy: object  # (...)        yᵀ H⁻¹ y
    logdet: object  # (...)    log |H|
    xz: object  # (..., c)     Xᵀ H⁻¹ z
    zz: object  # (...)        zᵀ H⁻¹ z
    zy: object  # (...)        zᵀ H⁻¹ y


@dataclass(frozen=True)
class _Constants:
    """δ-free terms: sample size, design width, unweighted log-determinants."""

    n: int
    c: int
    logdet_ftf: object  # (g,) log |FᵀF| with F = [X, z_k]
    inv_n_kinship_genes: object  # (g,) 1/G_K for genes inside K under leave-out, else 0

    def subset(self, xp, selected) -> _Constants:
        index = xp.nonzero(selected)[0]
        return _Constants(
            self.n,
            self.c,
            xp.take(self.logdet_ftf, index),
            xp.take(self.inv_n_kinship_genes, index),
        )


def _statistics(sums: _Sums, const: _Constants, method: str, xp) -> dict:
    """GLS estimate, Wald SE, RSS and profile log-likelihoods for every (δ, gene)."""
    a_inv = xp.linalg.inv(sums.xx)
    a_inv_xz = (a_inv @ sums.xz[..., None])[..., 0]
    a_inv_xy = (a_inv @ sums.xy[..., None])[..., 0]
    schur = sums.zz - xp.sum(sums.xz * a_inv_xz, axis=-1)
    e = sums.zy - xp.sum(a_inv_xz * sums.xy, axis=-1)
    rss0 = sums.yy - xp.sum(sums.xy * a_inv_xy, axis=-1)
    n, q = const.n, const.c + 1
    with errstate(xp):
        beta = e / schur
        rss = rss0 - e * beta
        rss = xp.where(rss > 1e-300, rss, 1e-300)
        sigma2 = rss / (n - q)
        leave = const.inv_n_kinship_genes
        se = xp.sqrt(sigma2 * (1.0 / schur - leave))
        loglik_ml = -0.5 * (n * (LOG_2PI + xp.log(rss / n)) + sums.logdet + n)
        # leave-gene-out: the ML likelihood gains -½ log(1 - zᵀH⁻¹z / G_K); REML is unchanged
        loglik_ml = loglik_ml - 0.5 * xp.log1p(-sums.zz * leave)
        out = {"beta": beta, "se": se, "rss": rss, "loglik_ml": loglik_ml, "rss0": rss0}
        if method == "reml":
            logdet_f = xp.linalg.slogdet(sums.xx)[1] + xp.log(schur)
            out["loglik"] = -0.5 * (
                (n - q) * (LOG_2PI + xp.log(sigma2))
                + sums.logdet
                + logdet_f
                - const.logdet_ftf
                + (n - q)
            )
        else:
            out["loglik"] = loglik_ml
    return out


# ---------------------------------------------------------------------------------------
# Null model (host: a scalar optimisation)
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
    ``at_boundary``. Runs on the host (numpy) whatever the eigensystem's backend.
    """
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    comp = _Components.from_eigensystem(eigensystem, namespace(eigensystem.vectors)).on_host()
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
# Per-gene refit: Chebyshev nodes of log δ, golden section on the interpolant
# ---------------------------------------------------------------------------------------
def _chebyshev_nodes(n: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """First-kind Chebyshev nodes on ``[lo, hi]`` and the values→coefficients matrix."""
    j = np.arange(n)
    theta = np.pi * (j + 0.5) / n
    nodes = 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(theta)
    to_coef = (2.0 / n) * np.cos(np.outer(np.arange(n), theta))
    to_coef[0] /= 2.0
    return nodes, to_coef


def _chebyshev_basis(x, n: int, xp=np):
    """``T_0..T_{n-1}`` at ``x`` in [-1, 1]: shape ``(n, len(x))``."""
    rows = [xp.ones_like(x), x]
    two_x = 2.0 * x
    for _ in range(2, n):
        rows.append(two_x * rows[-1] - rows[-2])
    return xp.stack(rows[:n], axis=0)


@dataclass(frozen=True)
class _Design:
    """The fixed part: X, y and their per-component products (rotated once)."""

    y: object
    x: object
    pxx: object  # (m, c, c)
    pxy: object  # (m, c)
    pyy: object  # (m,)


@dataclass(frozen=True)
class _RotatedBlock:
    """A standardised gene block rotated once: ``z̃ = Uᵀz`` and ``z̃²``, plus complement terms.

    For a low-rank ``K`` the complement of ``U`` contributes ``aᵀz − ãᵀz̃`` for each
    product (``a`` = a column of X, z itself, or y), weighted by ``1/(s₀ + δ)``.
    """

    rz: object  # (r, g)
    rz2: object  # (r, g)
    rx: object  # (r, c)
    ry: object  # (r,)
    rest_xz: object  # (c, g) or None
    rest_zz: object  # (g,) or None
    rest_zy: object  # (g,) or None

    @classmethod
    def rotate(
        cls, comp: _Components, design: _Design, z, rotated: RotatedGenes | None = None
    ) -> _RotatedBlock:
        """Rotate ``z``, or take its rotation made once for several traits (`rotate_genes`)."""
        xp, u = comp.xp, comp.vectors
        if rotated is None:
            rz = comp.rotate(z)
            rz2 = rz * rz
        else:
            rz, rz2 = rotated.rz, rotated.rz2
        rx, ry = u.T @ design.x, u.T @ design.y
        rest = (None, None, None)
        if comp.low_rank:
            rest = (
                design.x.T @ z - rx.T @ rz,
                xp.sum(z * z, axis=0) - xp.sum(rz2, axis=0),
                design.y @ z - ry @ rz,
            )
        return cls(rz, rz2, rx, ry, *rest)


@dataclass(frozen=True)
class RotatedGenes:
    """A raw gene block standardised and rotated once, for every trait (`rotate_genes`)."""

    z: object  # (N, g) standardised genes (constant genes all zero)
    sd_safe: object  # (g,) their SD (1 for constant genes)
    constant: np.ndarray  # (g,) host mask of constant genes
    rz: object  # (r, g) Uᵀz
    rz2: object  # (r, g) (Uᵀz)²


def rotate_genes(comp: _Components, block) -> RotatedGenes:
    """Standardise a raw ``N × g`` block and rotate it, ``Uᵀz``: the ``N²``-per-gene step,
    which does not depend on the trait (one rotation serves every trait, `lmm_scan_traits`)."""
    z, _, sd_safe, constant = standardized_block(block)
    rz = comp.rotate(z)
    return RotatedGenes(z, sd_safe, constant, rz, rz * rz)


def _sums_on_grid(comp: _Components, design: _Design, block: _RotatedBlock, delta_grid) -> _Sums:
    """All sums at a grid of δ by matrix products; leading shape ``(D, g)``."""
    xp = comp.xp
    w = comp.weights(delta_grid)  # (D, m)
    d, m = w.shape
    r = block.rz.shape[0]
    c = block.rx.shape[1]
    wr = w[:, :r]
    xz = xp.stack([(wr * block.rx[:, j]) @ block.rz for j in range(c)], axis=-1)  # (D, g, c)
    zz = wr @ block.rz2
    zy = (wr * block.ry) @ block.rz
    if block.rest_zz is not None:
        w0 = w[:, r:]  # (D, 1)
        xz = xz + w0[:, :, None] * block.rest_xz.T[None, ...]
        zz = zz + w0 * block.rest_zz
        zy = zy + w0 * block.rest_zy
    return _Sums(
        xx=xp.reshape(w @ xp.reshape(design.pxx, (m, c * c)), (d, 1, c, c)),
        xy=(w @ design.pxy)[:, None, :],
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
    xp = comp.xp
    w = 1.0 / (comp.values[:, None] + delta[None, :])  # (m, g)
    m, g = w.shape
    r = block.rz.shape[0]
    c = block.rx.shape[1]
    wz = w[:r, :] * block.rz
    xz = (block.rx.T @ wz).T
    zz = xp.sum(w[:r, :] * block.rz2, axis=0)
    zy = block.ry @ wz
    if block.rest_zz is not None:
        w0 = w[r, :]
        xz = xz + w0[:, None] * block.rest_xz.T
        zz = zz + w0 * block.rest_zz
        zy = zy + w0 * block.rest_zy
    return _Sums(
        xx=xp.reshape(w.T @ xp.reshape(design.pxx, (m, c * c)), (g, c, c)),
        xy=w.T @ design.pxy,
        yy=w.T @ design.pyy,
        logdet=logdet,
        xz=xz,
        zz=zz,
        zy=zy,
    )


def _refit_block(comp, design, block, const, method, bounds, n_nodes):
    """Per-gene optimum of log δ' for one block; returns (log δ', statistics at it)."""
    xp = comp.xp
    lo, hi = bounds
    nodes_np, to_coef_np = _chebyshev_nodes(n_nodes, lo, hi)
    dev = device(block.rz)
    nodes = xp.asarray(nodes_np, dtype=xp.float64, device=dev)
    to_coef = xp.asarray(to_coef_np, dtype=xp.float64, device=dev)
    grid = _sums_on_grid(comp, design, block, xp.exp(nodes))
    objective = _statistics(grid, const, method, xp)["loglik"]  # (n_nodes, g)
    objective = xp.where(xp.isfinite(objective), objective, -xp.inf)
    best = xp.argmax(objective, axis=0)
    best_value = xp.take_along_axis(objective, best[None, :], axis=0)[0, :]
    # nodes decrease with the index; neighbours bracket the optimum (interval ends at the edges)
    upper = xp.where(best > 0, xp.take(nodes, xp.clip(best - 1, 0, None)), hi)
    lower = xp.where(best < n_nodes - 1, xp.take(nodes, xp.clip(best + 1, None, n_nodes - 1)), lo)
    # interpolate (1 + δ)·S(δ): bounded at both ends, so the relative error is uniform
    scale = 1.0 + xp.exp(nodes)
    c = block.rx.shape[1]
    coef = _Sums(
        xx=xp.tensordot(to_coef, grid.xx[:, 0, ...] * scale[:, None, None], axes=1),
        xy=xp.tensordot(to_coef, grid.xy[:, 0, :] * scale[:, None], axes=1),
        yy=to_coef @ (grid.yy[:, 0] * scale),
        logdet=to_coef @ grid.logdet[:, 0],
        xz=xp.tensordot(to_coef, grid.xz * scale[:, None, None], axes=1),  # (n, g, c)
        zz=to_coef @ (grid.zz * scale[:, None]),
        zy=to_coef @ (grid.zy * scale[:, None]),
    )

    def basis_at(t):
        return _chebyshev_basis((2.0 * t - (lo + hi)) / (hi - lo), n_nodes, xp)  # (n, g)

    def global_sums(t):
        basis = basis_at(t)
        inv_scale = 1.0 / (1.0 + xp.exp(t))
        return _Sums(
            xx=xp.reshape(basis.T @ xp.reshape(coef.xx, (n_nodes, c * c)), (-1, c, c))
            * inv_scale[:, None, None],
            xy=(basis.T @ coef.xy) * inv_scale[:, None],
            yy=(basis.T @ coef.yy) * inv_scale,
            logdet=basis.T @ coef.logdet,
            xz=_contract(xp, basis, coef.xz) * inv_scale[:, None],
            zz=_contract(xp, basis, coef.zz) * inv_scale,
            zy=_contract(xp, basis, coef.zy) * inv_scale,
        )

    # Re-expand each gene's interpolant on its own (narrow) bracket as a short Chebyshev
    # series: exact to rounding there, and a golden-section step then costs LOCAL_TERMS
    # instead of n_nodes terms.
    mid, half = (lower + upper) / 2.0, (upper - lower) / 2.0
    local_nodes, local_to_coef = _chebyshev_nodes(LOCAL_TERMS, -1.0, 1.0)
    samples = [global_sums(mid + half * float(u)) for u in local_nodes]
    to_local = xp.asarray(local_to_coef, dtype=xp.float64, device=dev)
    local = _Sums(
        **{
            field: xp.tensordot(to_local, xp.stack([getattr(v, field) for v in samples]), axes=1)
            for field in _SUM_FIELDS
        }
    )
    half_safe = xp.where(half > 0, half, 1.0)

    def interpolated(t):
        basis = _chebyshev_basis((t - mid) / half_safe, LOCAL_TERMS, xp)  # (k, g)
        sums = _Sums(
            **{field: _contract(xp, basis, getattr(local, field)) for field in _SUM_FIELDS}
        )
        value = _statistics(sums, const, method, xp)["loglik"]
        return xp.where(xp.isfinite(value), value, -xp.inf)

    def exact_at(t):
        logdet = basis_at(t).T @ coef.logdet
        return _statistics(
            _sums_per_gene(comp, design, block, xp.exp(t), logdet), const, method, xp
        )

    t = golden_section_max(interpolated, lower, upper, xp)
    exact = exact_at(t)
    # keep the best exact node if the refined point is (numerically) worse
    worse = ~(exact["loglik"] >= best_value - 1e-12 * xp.abs(best_value))
    if bool(xp.any(worse)):
        t = xp.where(worse, xp.take(nodes, best), t)
        exact = exact_at(t)
    return t, exact


LOCAL_TERMS = 16
_SUM_FIELDS = ("xx", "xy", "yy", "logdet", "xz", "zz", "zy")


def _contract(xp, basis, coef):
    """``Σ_j basis[j, g] · coef[j, g, ...]`` for per-gene series (or shared ``coef[j, g]``)."""
    expand = xp.reshape(basis, tuple(basis.shape) + (1,) * (coef.ndim - 2))
    return xp.sum(expand * coef, axis=0)


# ---------------------------------------------------------------------------------------
# Fixed δ: whitening (numpy: Cholesky + triangular solve) or the rotated sums elsewhere
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Whitener:
    r"""Cholesky factor of ``H = K + δI`` at one δ and the whitened design (numpy only).

    ``H = U diag(s − s₀) Uᵀ + (s₀ + δ) I`` (``s₀`` the clipped eigenvalue, so a low-rank
    ``U`` is handled too); every weighted sum is then a dot product of whitened vectors
    ``L⁻¹v``: one triangular solve per gene block, half the flops of a rotation.
    """

    chol: np.ndarray
    wx: np.ndarray
    wy: np.ndarray
    logdet: float
    chol_work: np.ndarray | None = None  # float32 copy of ``chol`` for precision="float32"

    @classmethod
    def at(
        cls, eig: Eigensystem, design: _Design, delta: float, precision: str = "float64"
    ) -> _Whitener:
        u = np.asarray(eig.vectors)
        h = (u * (np.asarray(eig.values) - eig.min_eigenvalue)) @ u.T
        h[np.diag_indices_from(h)] += eig.min_eigenvalue + delta
        chol = linalg.cholesky(h, lower=True)
        return cls(
            chol=chol,
            wx=linalg.solve_triangular(chol, design.x, lower=True),
            wy=linalg.solve_triangular(chol, design.y, lower=True),
            logdet=float(2.0 * np.log(np.diag(chol)).sum()),
            chol_work=None if precision == "float64" else chol.astype(np.float32),
        )

    def sums(self, z: np.ndarray) -> _Sums:
        """Whitened sums of a gene block; ``z`` (a scratch block) is overwritten.

        With a float32 ``chol_work`` the triangular solve (the ``N²·g`` step) runs in
        float32 and the whitened block is promoted to float64 for the sums.
        """
        chol = self.chol
        if self.chol_work is not None:
            chol, z = self.chol_work, np.asarray(z, dtype=np.float32, order="C")
        if z.flags.c_contiguous:
            # solve Wᵀ Lᵀ = Zᵀ in place on the Fortran view of z: no copy, BLAS trsm directly
            trsm = blas.get_blas_funcs("trsm", (chol, z))
            wz = trsm(1.0, chol, z.T, side=1, lower=1, trans_a=1, overwrite_b=1).T
        else:
            wz = linalg.solve_triangular(chol, z, lower=True, check_finite=False)
        wz = np.asarray(wz, dtype=np.float64)
        return _Sums(
            xx=(self.wx.T @ self.wx)[None],
            xy=(self.wx.T @ self.wy)[None],
            yy=np.array([self.wy @ self.wy]),
            logdet=np.array([self.logdet]),
            xz=(self.wx.T @ wz).T,
            zz=np.einsum("ig,ig->g", wz, wz),
            zy=self.wy @ wz,
        )


def _fixed_delta_block(comp, design, eig, z, const, method, delta_prime, whiteners, precision):
    """Statistics of a gene block at one fixed δ per gene (at most two distinct values), by
    whitening with the Cholesky factor of ``K + δI`` (numpy: half the flops of a rotation)."""
    xp = comp.xp
    g = z.shape[1]
    keys = ("beta", "se", "rss", "rss0", "loglik", "loglik_ml")
    values = np.unique(to_numpy(delta_prime))
    if values.size == 1:
        selections = [(float(values[0]), None)]
    else:
        selections = [(float(v), delta_prime == v) for v in values]
    dev = device(z)
    out = {key: xp.full(g, xp.nan, dtype=xp.float64, device=dev) for key in keys}
    for value, selected in selections:
        sub_z = z if selected is None else xp.take(z, xp.nonzero(selected)[0], axis=1)
        sub_const = const if selected is None else const.subset(xp, selected)
        if value not in whiteners:  # precomputed by prepare_lmm; a fallback only
            whiteners[value] = _Whitener.at(eig, design, value, precision)
        result = _statistics(whiteners[value].sums(sub_z), sub_const, method, xp)
        # gene-independent terms (rss0) come out with shape (1,): give every gene its value
        result = {key: xp.broadcast_to(result[key], (sub_z.shape[1],)) for key in keys}
        if selected is None:
            out = {key: result[key] for key in keys}
        else:
            for key in keys:
                out[key] = xp.where(selected, _scatter(xp, result[key], selected), out[key])
    return out


def _fixed_delta_rotated(comp, design, block: _RotatedBlock, const, method, delta_prime):
    """Statistics of a rotated block at a fixed δ per gene (at most two distinct values).

    The sums at each distinct δ are matrix–vector products over the rotated genes
    (`_sums_on_grid` with a grid of one or two points): a few reads of ``Uᵀz`` per trait.
    """
    xp = comp.xp
    g = block.rz.shape[1]
    values = np.unique(to_numpy(delta_prime))
    grid = xp.asarray(values, dtype=xp.float64, device=device(block.rz))
    at = _statistics(_sums_on_grid(comp, design, block, grid), const, method, xp)  # (D, g)
    first = {key: xp.broadcast_to(value[0, ...], (g,)) for key, value in at.items()}
    if values.size == 1:
        return first
    second = delta_prime == float(values[1])
    return {key: xp.where(second, xp.broadcast_to(at[key][1, ...], (g,)), first[key]) for key in at}


def _scatter(xp, values, selected):
    """Place ``values`` (one per True in ``selected``) at those positions; zeros elsewhere."""
    positions = xp.cumulative_sum(xp.astype(selected, xp.int64)) - 1
    return xp.take(values, xp.clip(positions, 0, None))


# ---------------------------------------------------------------------------------------
# The scan: a plan (null model, rotated design) shared by independent gene blocks
# ---------------------------------------------------------------------------------------
PRECISIONS = ("float64", "float32")


def _constant_genes(xp, block):
    """Per-gene mean, a safe SD (1 for constant genes) and the host mask of constant genes."""
    mean = xp.mean(block, axis=0)
    sd = xp.std(block, axis=0)
    constant = ~(to_numpy(sd) > 1e-12 * np.maximum(np.abs(to_numpy(mean)), 1.0))
    sd_safe = xp.where(xp.asarray(constant, device=device(block)), 1.0, sd)
    return mean, sd_safe, constant


def check_lmm_options(
    *,
    method: str = "reml",
    delta="null",
    leave_out: str = "none",
    test: str = "wald",
    precision: str = "float64",
) -> None:
    """Raise ``ValueError`` for an invalid or inconsistent combination of scan options."""
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    if leave_out not in ("none", "gene"):
        raise ValueError(f"leave_out must be 'none' or 'gene', got {leave_out!r}")
    if test not in ("wald", "lrt"):
        raise ValueError(f"test must be 'wald' or 'lrt', got {test!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
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


def default_eigensystem(matrix, in_kinship: np.ndarray, *, precision: str = "float64"):
    """``K = ZZᵀ/G`` from the non-constant genes of ``in_kinship``; returns (eig, mask used)."""
    xp = namespace(matrix)
    usable = in_kinship & ~_constant_genes(xp, matrix)[2]
    if not usable.any():
        raise ValueError("no non-constant genes left to build the kinship")
    kinship_matrix = (
        matrix
        if usable.all()
        else xp.take(matrix, xp.asarray(np.flatnonzero(usable), device=device(matrix)), axis=1)
    )
    return eigensystem_from_expression(kinship_matrix, precision=precision), usable


@dataclass(frozen=True)
class LmmPlan:
    r"""Everything the scan of one gene block needs, computed once per trait and kinship.

    The null model, the rotated design (:math:`U^\top X`, :math:`U^\top y` and their
    per-component products) and, for a fixed δ on numpy, the Cholesky factors of
    :math:`K + \delta I`. Gene blocks are then independent: :func:`lmm_block` may run them
    in any order, in other processes or on other machines (:mod:`exprlmm.assoc.distributed`),
    and :func:`lmm_table` assembles the results exactly as :func:`lmm_scan` does.
    """

    comp: _Components
    design: _Design
    eigensystem: Eigensystem | None  # numpy eigensystem for the whitening path, else None
    null: NullModel
    n: int
    c: int
    method: str
    delta: object  # "null", "refit" or a float
    base_delta: float | None
    leave_out: str
    n_kinship_genes: int
    test: str
    standardize: bool
    log_delta_bounds: tuple[float, float]
    n_nodes: int
    logdet_xtx: float
    xtx_inv: object
    whiteners: dict
    precision: str

    @property
    def df_wald(self) -> int:
        return self.n - self.c - 1


def prepare_lmm(
    trait,
    eigensystem: Eigensystem,
    *,
    covariates=None,
    method: Literal["reml", "ml"] = "reml",
    delta: Literal["null", "refit"] | float = "null",
    leave_out: Literal["none", "gene"] = "none",
    test: Literal["wald", "lrt"] = "wald",
    standardize: bool = True,
    log_delta_bounds: tuple[float, float] = (-10.0, 10.0),
    n_nodes: int = 96,
    precision: Literal["float64", "float32"] = "float64",
) -> LmmPlan:
    """Fit the null model and rotate the design once; see :func:`lmm_scan` for the options.

    The plan lives in the namespace (and on the device) of ``eigensystem.vectors``.
    """
    check_lmm_options(
        method=method, delta=delta, leave_out=leave_out, test=test, precision=precision
    )
    xp = namespace(eigensystem.vectors)
    dev = device(eigensystem.vectors)
    n = eigensystem.n_samples
    y_np, x_np = fixed_design(trait, covariates, n)
    if leave_out == "gene" and eigensystem.n_genes < 2:
        raise ValueError(
            "leave_out='gene' needs the number of genes that built K (Eigensystem.n_genes ≥ 2)"
        )
    y = xp.asarray(y_np, dtype=xp.float64, device=dev)
    x = xp.asarray(x_np, dtype=xp.float64, device=dev)
    comp = _Components.from_eigensystem(eigensystem, xp, dev, precision)
    design = _Design(
        y=y,
        x=x,
        pxx=comp.products(x, x),
        pxy=comp.products(x, y[:, None])[:, :, 0],
        pyy=comp.products(y[:, None], y[:, None])[:, 0, 0],
    )
    null = fit_null_model(
        y_np,
        eigensystem,
        covariates=x_np[:, 1:] if x_np.shape[1] > 1 else None,
        method=method,
        log_delta_bounds=log_delta_bounds,
    )
    base_delta = null.delta if delta == "null" else (None if delta == "refit" else float(delta))
    numpy_eig = eigensystem if is_numpy_namespace(xp) else None
    whiteners: dict[float, _Whitener] = {}
    if numpy_eig is not None and base_delta is not None:
        n_k = eigensystem.n_genes
        shrinks = [1.0, (n_k - 1.0) / max(n_k, 1)] if leave_out == "gene" else [1.0]
        for shrink in shrinks:
            value = float(np.float64(base_delta) * np.float64(shrink))
            whiteners[value] = _Whitener.at(numpy_eig, design, value, precision)
    return LmmPlan(
        comp=comp,
        design=design,
        eigensystem=numpy_eig,
        null=null,
        n=n,
        c=x_np.shape[1],
        method=method,
        delta=delta,
        base_delta=base_delta,
        leave_out=leave_out,
        n_kinship_genes=eigensystem.n_genes,
        test=test,
        standardize=standardize,
        log_delta_bounds=tuple(log_delta_bounds),
        n_nodes=n_nodes,
        logdet_xtx=float(np.linalg.slogdet(x_np.T @ x_np)[1]),
        xtx_inv=xp.asarray(np.linalg.inv(x_np.T @ x_np), device=dev),
        whiteners=whiteners,
        precision=precision,
    )


def standardized_block(block):
    """``(z, mean, safe sd, constant mask)`` of a raw ``N × g`` block (``ddof = 0``)."""
    xp = namespace(block)
    mean, sd_safe, constant = _constant_genes(xp, block)
    return (block - mean) / sd_safe, mean, sd_safe, constant


def lmm_block(
    plan: LmmPlan, block, in_kinship=None, rotated: RotatedGenes | None = None
) -> dict[str, np.ndarray]:
    r"""Scan one block of genes (``N × g`` raw expression) with a prepared plan.

    ``in_kinship`` (host bool, length ``g``) marks the block's genes that built ``K`` (only
    used with ``leave_out="gene"``; default all). ``rotated``: ``rotate_genes(plan.comp,
    block)``, made once for several traits; the statistics then come from the rotated genes
    (at a fixed δ too, instead of the whitening solve). Returns
    host arrays ``beta se stat pvalue delta`` (NaN for constant genes); p-values are the
    Wald t (``N − q`` df) or χ²₁ LRT tails.
    """
    comp, design, xp = plan.comp, plan.design, plan.comp.xp
    dev = device(block)
    n, g = block.shape
    in_k = np.ones(g, dtype=bool) if in_kinship is None else np.asarray(in_kinship, dtype=bool)
    n_k = plan.n_kinship_genes
    leave_np = np.where(in_k, 1.0 / max(n_k, 1), 0.0) if plan.leave_out == "gene" else np.zeros(g)
    # δ' = δ·(G_K−1)/G_K for genes removed from their own kinship
    shrink_np = np.where(leave_np > 0, (n_k - 1.0) / max(n_k, 1), 1.0)
    leave = xp.asarray(leave_np, device=dev)
    shrink = xp.asarray(shrink_np, device=dev)

    if rotated is None:
        z, _, sd_safe, constant = standardized_block(block)
    else:
        z, sd_safe, constant = rotated.z, rotated.sd_safe, rotated.constant
    xz = design.x.T @ z
    # a standardised gene has zᵀz = N (ddof 0); a constant one is all zeros
    ztz = xp.asarray(np.where(constant, 0.0, float(n)), device=dev)
    ftf_schur = ztz - xp.sum(xz * (plan.xtx_inv @ xz), axis=0)
    with errstate(xp):
        const = _Constants(n, plan.c, plan.logdet_xtx + xp.log(ftf_schur), leave)
    if plan.delta == "refit":
        rotated_block = _RotatedBlock.rotate(comp, design, z, rotated)
        log_dp, st = _refit_block(
            comp, design, rotated_block, const, plan.method, plan.log_delta_bounds, plan.n_nodes
        )
        delta_used = xp.exp(log_dp) / shrink
    elif rotated is not None or not is_numpy_namespace(xp):
        # rotate (here, or once for several traits); numpy with one trait whitens instead
        delta_used = xp.full(g, plan.base_delta, dtype=xp.float64, device=dev)
        rotated_block = _RotatedBlock.rotate(comp, design, z, rotated)
        st = _fixed_delta_rotated(
            comp, design, rotated_block, const, plan.method, delta_used * shrink
        )
    else:
        delta_used = xp.full(g, plan.base_delta, dtype=xp.float64, device=dev)
        st = _fixed_delta_block(
            comp,
            design,
            plan.eigensystem,
            z,
            const,
            plan.method,
            delta_used * shrink,
            plan.whiteners,
            plan.precision,
        )
    st = {key: to_numpy(value) for key, value in st.items()}
    if plan.test == "wald":
        stat = st["beta"] / st["se"]
        pvalue = two_sided_t_pvalue(stat, plan.df_wald)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            if plan.delta == "refit":  # both models at their own ML optimum
                stat = 2.0 * (st["loglik_ml"] - plan.null.loglik)
            else:  # both models at the same δ: 2(ℓ1 − ℓ0) = N log(RSS0 / RSS1)
                stat = n * np.log(st["rss0"] / st["rss"])
        stat = np.maximum(stat, 0.0)
        pvalue = stats.chi2.sf(stat, 1)
    scale = 1.0 if plan.standardize else to_numpy(sd_safe)
    out = {
        "beta": np.array(st["beta"] / scale, dtype=np.float64),
        "se": np.array(st["se"] / scale, dtype=np.float64),
        "stat": np.array(stat, dtype=np.float64),
        "pvalue": np.array(pvalue, dtype=np.float64),
        "delta": np.array(to_numpy(delta_used), dtype=np.float64),
    }
    for key in ("beta", "se", "stat", "pvalue"):
        out[key][constant] = np.nan
    return out


def lmm_table(plan: LmmPlan, names, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Assemble block results (in gene order) into the tidy table; BH over all genes."""
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    g = out["beta"].shape[0]
    if len(names) != g:
        raise ValueError(f"{len(names)} gene names for {g} results")
    frame = pd.DataFrame(
        {
            "gene": list(names),
            "beta": out["beta"],
            "se": out["se"],
            "stat": out["stat"],
            "df": np.full(g, float(plan.df_wald)) if plan.test == "wald" else np.ones(g),
            "pvalue": out["pvalue"],
            "padj": benjamini_hochberg(out["pvalue"]),
            "h2": 1.0 / (1.0 + out["delta"]),
            "delta": out["delta"],
        },
        columns=LMM_COLUMNS,
    )
    frame.attrs["null_model"] = plan.null
    return frame


def lmm_chunk_size(n_samples: int, n_fixed: int, array=None) -> int:
    """Default genes per block of the LMM scan (bounded memory, see :func:`memory_budget`)."""
    budget = memory_budget(array) if array is not None else 256e6
    return default_chunk_size(n_samples, budget_bytes=budget, n_arrays=8 + 2 * n_fixed)


def kinship_genes_mask(kinship_genes, n_genes: int) -> np.ndarray:
    """``kinship_genes`` as a host boolean mask of length ``n_genes`` (None: all genes)."""
    if kinship_genes is None:
        return np.ones(n_genes, dtype=bool)
    mask = np.asarray(to_numpy(kinship_genes), dtype=bool)
    if mask.shape != (n_genes,):
        raise ValueError(f"kinship_genes must be a boolean mask of length {n_genes}")
    return mask


def plan_lmm(
    matrix,
    trait,
    *,
    eigensystem: Eigensystem | None,
    kinship_genes,
    precision: str = "float64",
    **options,
) -> tuple[LmmPlan, np.ndarray]:
    """The kinship's eigensystem (built from ``matrix`` when not given) and `prepare_lmm`.

    Shared by :func:`lmm_scan` and the distributed scan. The eigensystem is moved to the
    array namespace and device of ``matrix``; ``options`` are those of `prepare_lmm`.
    Returns the plan and the mask of the genes in the kinship.
    """
    xp = namespace(matrix)
    n, g = matrix.shape
    in_kinship = kinship_genes_mask(kinship_genes, g)
    if eigensystem is None:
        eigensystem, in_kinship = default_eigensystem(matrix, in_kinship, precision=precision)
    elif eigensystem.n_samples != n:
        raise ValueError(f"eigensystem is for {eigensystem.n_samples} samples, expression has {n}")
    if namespace(eigensystem.vectors) is not xp:
        eigensystem = Eigensystem(
            xp.asarray(to_numpy(eigensystem.values), device=device(matrix)),
            xp.asarray(to_numpy(eigensystem.vectors), device=device(matrix)),
            n_genes=eigensystem.n_genes,
            min_eigenvalue=eigensystem.min_eigenvalue,
        )
    return prepare_lmm(trait, eigensystem, precision=precision, **options), in_kinship


def trait_items(traits) -> list[tuple[str, Any]]:
    """``[(name, values)]`` of a samples × traits DataFrame (float64) or a name → values mapping.

    Raises
    ------
    ValueError
        No traits.
    """
    items = (
        [(str(c), traits[c].to_numpy(dtype=np.float64)) for c in traits.columns]
        if isinstance(traits, pd.DataFrame)
        else [(str(k), v) for k, v in traits.items()]
    )
    if not items:
        raise ValueError("no traits to scan")
    return items


def plan_lmm_traits(
    matrix,
    items: list[tuple[str, Any]],
    *,
    eigensystem: Eigensystem | None,
    kinship_genes,
    covariates=None,
    precision: str = "float64",
    **options,
) -> tuple[dict[str, LmmPlan], np.ndarray]:
    """One `LmmPlan` per trait of ``items`` (see `trait_items`) over one eigensystem.

    The designs are checked first; the eigensystem is built from ``matrix`` once when not
    given. ``options`` are those of `prepare_lmm`. Returns ``{name: plan}`` and the mask of
    the genes in the kinship.
    """
    n, g = matrix.shape
    for _, trait in items:
        fixed_design(trait, covariates, n)  # checks shapes before the kinship is built
    in_kinship = kinship_genes_mask(kinship_genes, g)
    if eigensystem is None:
        eigensystem, in_kinship = default_eigensystem(matrix, in_kinship, precision=precision)
    plans = {}
    for name, trait in items:
        plans[name], in_kinship = plan_lmm(
            matrix,
            trait,
            eigensystem=eigensystem,
            kinship_genes=in_kinship,
            covariates=covariates,
            precision=precision,
            **options,
        )
    return plans, in_kinship


def lmm_block_traits(plans: list[LmmPlan], block, in_kinship=None) -> list[dict[str, np.ndarray]]:
    """`lmm_block` of one gene block for every plan (one per trait, same eigensystem).

    One trait whitens (half the flops of a rotation); several share one standardisation
    and rotation of the block (`rotate_genes`).
    """
    rotated = rotate_genes(plans[0].comp, block) if len(plans) > 1 else None
    return [lmm_block(plan, block, in_kinship, rotated=rotated) for plan in plans]


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
    precision: Literal["float64", "float32"] = "float64",
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
    precision
        ``"float64"`` (default) or ``"float32"``: the ``N²``-per-gene products (the kinship
        ``ZZᵀ`` and its ``eigh`` when ``eigensystem`` is not given, the whitening solve
        :math:`L^{-1}z` at a fixed δ, the rotation :math:`U^\top z` for refit) run in
        float32; the per-gene sums they produce, the null model and the statistics stay in
        float64. Accuracy: ``benchmarks/README.md`` ("float32").

    Returns
    -------
    pandas.DataFrame
        One row per gene: ``gene beta se stat df pvalue padj h2 delta``. ``stat`` is the
        Wald t (or the LRT χ²), ``h2 = 1/(1+δ)`` and ``delta`` the δ used for that gene.
        The null model is in ``DataFrame.attrs["null_model"]``.
    """
    tables = lmm_scan_traits(
        expression,
        {"trait": trait},
        covariates=covariates,
        eigensystem=eigensystem,
        kinship_genes=kinship_genes,
        gene_names=gene_names,
        chunk_size=chunk_size,
        progress=progress,
        precision=precision,
        method=method,
        delta=delta,
        leave_out=leave_out,
        test=test,
        standardize=standardize,
        log_delta_bounds=log_delta_bounds,
        n_nodes=n_nodes,
    )
    return tables["trait"]


def lmm_scan_traits(
    expression,
    traits,
    *,
    covariates=None,
    eigensystem: Eigensystem | None = None,
    kinship_genes=None,
    gene_names=None,
    chunk_size: int | None = None,
    progress=None,
    precision: Literal["float64", "float32"] = "float64",
    **options,
) -> dict[str, pd.DataFrame]:
    r""":func:`lmm_scan` of several traits against one expression matrix, sharing the work
    that does not depend on the trait.

    ``K``'s eigensystem is computed once (unless given), each trait gets its own null model
    and design, and each gene block is standardised and rotated (:math:`U^\top z`, the
    ``N²``-per-gene product) once for all traits; per trait only ``O(N)``-per-gene sums
    remain. At a fixed δ this replaces one whitening solve per trait and gene by one rotation
    per gene (twice the flops of one solve: it pays from three traits on; the refit always
    rotates, so it pays from two). With one trait it is :func:`lmm_scan` (which calls it)
    and whitens as usual. Each table equals :func:`lmm_scan` of that trait with the
    same eigensystem up to rounding (tested to 1e-8 in −log10 p; 1e-13 at N = 1,090, and
    7e-7 where the null model sits at h² ≈ 1 and K + δI is ill-conditioned).

    Parameters
    ----------
    traits
        Mapping of name → ``(N,)`` trait, or a samples × traits DataFrame.
    options
        ``method``, ``delta``, ``leave_out``, ``test``, ``standardize``, ``log_delta_bounds``,
        ``n_nodes``: as for :func:`lmm_scan`, the same for every trait.

    Returns
    -------
    dict
        Trait name → :func:`lmm_scan` table, in the order of ``traits``.
    """
    check_lmm_options(
        precision=precision,
        **{k: options[k] for k in ("method", "delta", "leave_out", "test") if k in options},
    )
    matrix, names = as_matrix(expression, gene_names)
    n, g = matrix.shape
    plans, in_kinship = plan_lmm_traits(
        matrix,
        trait_items(traits),
        eigensystem=eigensystem,
        kinship_genes=kinship_genes,
        covariates=covariates,
        precision=precision,
        **options,
    )
    chunk = chunk_size or lmm_chunk_size(n, next(iter(plans.values())).c, matrix)
    parts: dict[str, list] = {name: [] for name in plans}
    for start in range(0, g, chunk):
        stop = min(start + chunk, g)
        results = lmm_block_traits(
            list(plans.values()), matrix[:, start:stop], in_kinship[start:stop]
        )
        for name, result in zip(plans, results, strict=True):
            parts[name].append(result)
        if progress is not None:
            progress(stop, g)
    return {name: lmm_table(plans[name], names, parts[name]) for name in plans}
