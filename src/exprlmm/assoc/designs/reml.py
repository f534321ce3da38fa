r"""Per-gene (RE)ML fits of a linear mixed model with the gene as the response.

For every gene ``g`` (a column of ``Y``) and a fixed design ``X`` (``N × p``):

.. math:: y_g = X\beta_g + \sum_{k=1}^{m} Z_k u_{gk} + e_g,\qquad
          u_{gk} \sim N(0, \sigma_{gk}^2 I),\qquad e_g \sim N(0, \sigma_{g0}^2 W_g^{-1}),

so :math:`V_g = \sigma_{g0}^2 W_g^{-1} + \sum_k \sigma_{gk}^2 K_k` with :math:`K_k = Z_k Z_k^\top`
and :math:`W_g` the (optional, e.g. voom) precision weights. With
:math:`P = V^{-1} - V^{-1}X(X^\top V^{-1}X)^{-1}X^\top V^{-1}` the restricted log-likelihood is

.. math:: \ell_R = -\tfrac12\left[\log|V| + \log|X^\top V^{-1}X| + y^\top P y + (N-p)\log 2\pi\right]

(lme4's REML criterion is :math:`-2\ell_R`). Two fitting paths, both vectorised over genes:

* **one random intercept** — without weights, the core scan's trick: ``K = U diag(s) Uᵀ`` is
  decomposed once, ``Y`` and ``X`` are rotated once, and with :math:`\lambda = \sigma_1^2/\sigma_0^2`
  the profile :math:`\ell_R(\lambda)` (σ₀² profiled out) is a weighted sum over eigen-components
  with weights :math:`1/(1 + \lambda s_i)`. It is evaluated for all genes on a grid of
  :math:`h = \lambda/(1+\lambda) \in [0, 1)` by matrix products, and refined by vectorised golden
  section between the best node's neighbours. :math:`\lambda = 0` (a *singular* fit) is taken when
  the best node is 0 and no refined point beats it. With weights the same grid and golden
  section run on the dense profile (:math:`H_g = W_g^{-1} + \lambda K`, one batched Cholesky
  per evaluation).
* **several random intercepts** — Newton–Raphson (observed information where it is positive
  definite, else Fisher scoring) on :math:`(\sigma_0^2, \dots, \sigma_m^2)` with
  ``G × N × N`` batches: score :math:`\tfrac12[y^\top P V_k P y - \operatorname{tr}(P V_k)]`,
  Fisher information :math:`\tfrac12\operatorname{tr}(P V_k P V_l)`, components projected on
  :math:`\sigma_k^2 \ge 0` (active set), step halving when the likelihood would drop.

A fit is *singular* when some :math:`\sigma_k^2/\sigma_0^2 < 10^{-8}` (lme4's ``isSingular``
tolerance 1e-4 on :math:`\theta = \sigma_k/\sigma_0`); that component is then set to exactly 0.
With every component at 0 the model *is* the fixed-effects (weighted) least-squares model.

ML (``method="ml"``) replaces ``P`` by :math:`V^{-1}` and drops :math:`\log|X^\top V^{-1}X|`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from exprlmm.assoc._optimize import golden_section_max

__all__ = ["VarianceFit", "consensus_ratios", "fit_fixed_ratios", "fit_variance_components"]

LOG_2PI = float(np.log(2.0 * np.pi))
SINGULAR_RATIO = 1e-8


@dataclass(frozen=True)
class VarianceFit:
    r"""Per-gene fit of :math:`y_g = X\beta_g + \sum_k Z_k u_{gk} + e_g`.

    Attributes
    ----------
    sigma2
        ``G × (m+1)`` variance components; column 0 is the residual :math:`\sigma_0^2`, columns
        ``1..m`` the random intercepts in formula order.
    beta
        ``G × p`` GLS estimates :math:`\hat\beta = (X^\top V^{-1}X)^{-1}X^\top V^{-1}y`.
    cov
        ``G × p × p`` :math:`\Phi = (X^\top V^{-1}X)^{-1}` at the estimates.
    loglik
        ``(G,)`` maximised REML (or ML) log-likelihood.
    singular
        ``(G,)`` True where some random-intercept variance is 0.
    jacobian
        ``G × (m+1) × p × p`` :math:`\partial\Phi/\partial\sigma_k^2 = \Phi X^\top V^{-1}V_k V^{-1}X\Phi`
        (zero for components at 0).
    vcov_varpar
        ``G × (m+1) × (m+1)`` asymptotic covariance of the variance parameters, the inverse of
        minus the observed Hessian of the log-likelihood, restricted to components not at 0
        (as lmerTest's ``2 · solve(hessian(deviance))``; rows/columns of zero components are 0).
    iterations
        Fisher-scoring iterations used (0 for the one-kernel profile path).
    method
        ``"reml"`` or ``"ml"``.
    df_prior, df_cap
        Prior df added to every test's df after empirical-Bayes moderation, and the cap on
        the total (:func:`exprlmm.assoc.designs.ebayes.moderate_fit`); 0 and ∞ otherwise.
    converged
        ``(G,)`` False for genes whose Newton/Fisher iteration hit ``max_iter`` (several
        kernels); all True on the profile paths. None only for hand-built fits.
    """

    sigma2: np.ndarray
    beta: np.ndarray
    cov: np.ndarray
    loglik: np.ndarray
    singular: np.ndarray
    jacobian: np.ndarray
    vcov_varpar: np.ndarray
    iterations: int
    method: str
    df_prior: float = 0.0
    df_cap: float = float("inf")
    converged: np.ndarray | None = None


# ---------------------------------------------------------------------------------------
# Dense per-gene pieces (G × N × N batches)
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pieces:
    vinv: np.ndarray  # (G, N, N)
    cov: np.ndarray  # (G, p, p)
    beta: np.ndarray  # (G, p)
    vx: np.ndarray  # (G, N, p)  V^-1 X
    p_mat: np.ndarray  # (G, N, N)  P (REML) or V^-1 (ML)
    py: np.ndarray  # (G, N)  P y (REML) or V^-1 r (ML)
    loglik: np.ndarray  # (G,)


def _pieces(y: np.ndarray, x: np.ndarray, v: np.ndarray, method: str) -> _Pieces:
    """REML/ML pieces for ``y`` (G × N) with covariance ``v`` (G × N × N)."""
    n, p = x.shape
    chol = np.linalg.cholesky(v)
    eye = np.broadcast_to(np.eye(n), v.shape)
    linv = np.linalg.solve(chol, eye)
    vinv = np.swapaxes(linv, -1, -2) @ linv
    logdet_v = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    vx = vinv @ x  # (G, N, p)
    a = np.einsum("np,gnq->gpq", x, vx)
    cov = np.linalg.inv(a)
    xty = np.einsum("gnp,gn->gp", vx, y)
    beta = np.einsum("gpq,gq->gp", cov, xty)
    if method == "reml":
        p_mat = vinv - vx @ cov @ np.swapaxes(vx, -1, -2)
        py = np.einsum("gab,gb->ga", p_mat, y)
        logdet_a = np.linalg.slogdet(a)[1]
        ypy = np.einsum("ga,ga->g", y, py)
        loglik = -0.5 * (logdet_v + logdet_a + ypy + (n - p) * LOG_2PI)
    else:
        p_mat = vinv
        resid = y - beta @ x.T
        py = np.einsum("gab,gb->ga", vinv, resid)
        loglik = -0.5 * (logdet_v + np.einsum("ga,ga->g", resid, py) + n * LOG_2PI)
    return _Pieces(vinv, cov, beta, vx, p_mat, py, loglik)


def _components(kernels: tuple[np.ndarray, ...], resid_cov: np.ndarray) -> list[np.ndarray]:
    """``V_k`` for k = 0 (residual, ``G × N × N``) and the kernels (``N × N``, shared)."""
    return [resid_cov, *kernels]


def _covariance(sigma2: np.ndarray, comps: list[np.ndarray]) -> np.ndarray:
    v = sigma2[:, 0, None, None] * comps[0]
    for k, kern in enumerate(comps[1:], start=1):
        v = v + sigma2[:, k, None, None] * kern
    return v


def _score_information(pieces: _Pieces, comps: list[np.ndarray]):
    """Score, Fisher information and observed Hessian of ℓ in σ² (all genes)."""
    pv = [pieces.p_mat @ c for c in comps]  # each (G, N, N)
    c = len(comps)
    g = pieces.py.shape[0]
    score = np.empty((g, c))
    fisher = np.empty((g, c, c))
    vpy = [np.matmul(comp, pieces.py[..., None])[..., 0] for comp in comps]
    for k in range(c):
        score[:, k] = 0.5 * (
            np.einsum("ga,ga->g", pieces.py, vpy[k]) - np.trace(pv[k], axis1=-2, axis2=-1)
        )
        for m in range(k, c):
            value = 0.5 * np.einsum("gab,gba->g", pv[k], pv[m])
            fisher[:, k, m] = fisher[:, m, k] = value
    return score, fisher, vpy


def _observed_hessian(pieces: _Pieces, comps: list[np.ndarray], fisher, vpy):
    r""":math:`\partial^2\ell/\partial\sigma_k^2\partial\sigma_l^2 = \tfrac12\operatorname{tr}(PV_kPV_l) - y^\top P V_k P V_l P y`."""
    c = len(comps)
    hess = np.empty_like(fisher)
    pvpy = [np.einsum("gab,gb->ga", pieces.p_mat, vp) for vp in vpy]
    for k in range(c):
        for m in range(k, c):
            value = fisher[:, k, m] - np.einsum("ga,ga->g", vpy[k], pvpy[m])
            hess[:, k, m] = hess[:, m, k] = value
    return hess


def _finish(y, x, sigma2, comps, method, iterations) -> VarianceFit:
    """Statistics at the estimates: β, Φ, ∂Φ/∂σ², and the variance-parameter covariance."""
    g = y.shape[0]
    c = len(comps)
    ratio = sigma2[:, 1:] / sigma2[:, :1]
    zero = np.concatenate([np.zeros((g, 1), dtype=bool), ratio < SINGULAR_RATIO], axis=1)
    sigma2 = np.where(zero, 0.0, sigma2)
    pieces = _pieces(y, x, _covariance(sigma2, comps), method)
    _, fisher, vpy = _score_information(pieces, comps)
    hess = _observed_hessian(pieces, comps, fisher, vpy)
    # restrict to components not at zero: put identity on the zero ones, then zero them out
    eye = np.eye(c)[None]
    keep = ~zero
    mask2 = keep[:, :, None] & keep[:, None, :]
    neg = np.where(mask2, -hess, eye)
    with np.errstate(invalid="ignore", divide="ignore"):
        vcov = np.linalg.inv(neg)
    vcov = np.where(mask2, vcov, 0.0)
    jac = np.empty((g, c, x.shape[1], x.shape[1]))
    for k, comp in enumerate(comps):
        inner = np.swapaxes(pieces.vx, -1, -2) @ comp @ pieces.vx
        jac[:, k] = pieces.cov @ inner @ pieces.cov
    jac = np.where(keep[:, :, None, None], jac, 0.0)
    return VarianceFit(
        converged=np.ones(g, dtype=bool),
        sigma2=sigma2,
        beta=pieces.beta,
        cov=pieces.cov,
        loglik=pieces.loglik,
        singular=zero[:, 1:].any(axis=1),
        jacobian=jac,
        vcov_varpar=vcov,
        iterations=iterations,
        method=method,
    )


# ---------------------------------------------------------------------------------------
# One kernel, no weights: rotated profile on a grid of h, golden-section refinement
# ---------------------------------------------------------------------------------------
def _small_cholesky_solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky ``a = L Lᵀ`` of many small SPD matrices (G × p × p) and ``L⁻¹ b`` (G × p).

    Loops over the ``p`` columns with vector operations over genes: for p ≲ 10 this is far
    faster than batched LAPACK calls, whose per-matrix overhead dominates. Returns the
    diagonal of ``L`` (G × p) and ``L⁻¹b``.
    """
    p = a.shape[-1]
    low = np.zeros_like(a)
    for j in range(p):
        d = a[:, j, j] - np.einsum("gk,gk->g", low[:, j, :j], low[:, j, :j])
        low[:, j, j] = np.sqrt(np.maximum(d, 1e-300))
        for i in range(j + 1, p):
            off = a[:, i, j] - np.einsum("gk,gk->g", low[:, i, :j], low[:, j, :j])
            low[:, i, j] = off / low[:, j, j]
    sol = np.empty_like(b)
    for i in range(p):
        sol[:, i] = (b[:, i] - np.einsum("gk,gk->g", low[:, i, :i], sol[:, :i])) / low[:, i, i]
    return np.diagonal(low, axis1=-2, axis2=-1), sol


def _profile_loglik(lam, ry, rx, s, method):
    """Profiled (RE)ML log-likelihood at one λ per gene (``lam`` (G,), ``ry`` (N, G))."""
    n, p = rx.shape
    w = 1.0 / (1.0 + lam[None, :] * s[:, None])  # (N, G)
    rxx = (rx[:, :, None] * rx[:, None, :]).reshape(n, p * p)
    xwx = (w.T @ rxx).reshape(-1, p, p)
    wy = w * ry
    xwy = wy.T @ rx
    ywy = np.einsum("ng,ng->g", wy, ry)
    diag, half = _small_cholesky_solve(xwx, xwy)
    rss = np.maximum(ywy - np.einsum("ga,ga->g", half, half), 1e-300)
    logdet = -np.log(w).sum(axis=0)
    if method == "reml":
        d = n - p
        logdet_a = 2.0 * np.log(diag).sum(axis=-1)
        return -0.5 * (d * (LOG_2PI + np.log(rss / d)) + logdet + logdet_a + d)
    return -0.5 * (n * (LOG_2PI + np.log(rss / n)) + logdet + n)


def _profile_grid(lams, ry, rx, s, method):
    """Profile at a grid of λ for all genes: ``(D, G)`` by matrix products."""
    n, p = rx.shape
    w = 1.0 / (1.0 + lams[:, None] * s[None, :])  # (D, N)
    xwx = np.einsum("dn,na,nb->dab", w, rx, rx)
    xwy = np.stack([(w * rx[:, j]) @ ry for j in range(p)], axis=-1)  # (D, G, p)
    ywy = w @ (ry * ry)  # (D, G)
    inv = np.linalg.inv(xwx)
    rss = np.maximum(ywy - np.einsum("dga,dab,dgb->dg", xwy, inv, xwy), 1e-300)
    logdet = -np.log(w).sum(axis=1)[:, None]
    if method == "reml":
        d = n - p
        ld = np.linalg.slogdet(xwx)[1][:, None]
        return -0.5 * (d * (LOG_2PI + np.log(rss / d)) + logdet + ld + d)
    return -0.5 * (n * (LOG_2PI + np.log(rss / n)) + logdet + n)


def _fit_one_kernel(y, x, kernel, method, grid_size):
    """λ per gene for one unweighted kernel; returns σ² (G × 2)."""
    s, u = np.linalg.eigh(kernel)
    s = np.clip(s, 0.0, None)
    ry, rx = u.T @ y.T, u.T @ x  # (N, G), (N, p)
    n, p = x.shape
    # h = λ/(1+λ): 0 and a log-spaced λ grid up to 1e6
    lams = np.concatenate([[0.0], np.logspace(-5, 6, grid_size - 1)])
    hs = lams / (1.0 + lams)
    ll = _profile_grid(lams, ry, rx, s, method)
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    best = np.argmax(ll, axis=0)
    lo = hs[np.maximum(best - 1, 0)]
    hi = hs[np.minimum(best + 1, grid_size - 1)]

    def objective(h):
        lam = h / (1.0 - h)
        value = _profile_loglik(lam, ry, rx, s, method)
        return np.where(np.isfinite(value), value, -np.inf)

    h = golden_section_max(objective, lo, hi, iterations=36)
    ll_h = objective(h)
    best_grid = ll[best, np.arange(y.shape[0])]
    h = np.where(ll_h >= best_grid, h, hs[best])
    # the boundary λ = 0: keep it when its likelihood is at least the refined one
    ll0 = ll[0]
    h = np.where((best == 0) & (ll0 >= objective(h) - 1e-12 * np.abs(ll0)), 0.0, h)
    lam = h / (1.0 - h)
    # σ0² at λ: rss/(N−p) (REML) or rss/N (ML)
    w = 1.0 / (1.0 + lam[None, :] * s[:, None])
    xwx = np.einsum("ng,na,nb->gab", w, rx, rx)
    xwy = np.einsum("ng,na,ng->ga", w, rx, ry)
    ywy = np.einsum("ng,ng->g", w, ry * ry)
    rss = ywy - np.einsum("ga,ga->g", xwy, np.linalg.solve(xwx, xwy[..., None])[..., 0])
    sigma0 = rss / ((n - p) if method == "reml" else n)
    return np.stack([sigma0, lam * sigma0], axis=1)


def _dense_profile_loglik(lam, y, x, resid_cov, kernel, method):
    """Profiled (RE)ML at one λ per gene with ``H_g = R_g + λ_g K`` (dense, ``G × N × N``)."""
    n, p = x.shape
    h = resid_cov + lam[:, None, None] * kernel
    chol = np.linalg.cholesky(h)
    rhs = np.concatenate([np.broadcast_to(x, (y.shape[0], n, p)), y[:, :, None]], axis=2)
    white = np.linalg.solve(chol, rhs)  # (G, N, p+1)
    wx, wy = white[:, :, :p], white[:, :, p]
    xhx = np.swapaxes(wx, 1, 2) @ wx
    xhy = np.einsum("gnp,gn->gp", wx, wy)
    yhy = np.einsum("gn,gn->g", wy, wy)
    diag, half = _small_cholesky_solve(xhx, xhy)
    rss = np.maximum(yhy - np.einsum("ga,ga->g", half, half), 1e-300)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    if method == "reml":
        d = n - p
        logdet_a = 2.0 * np.log(diag).sum(axis=-1)
        return -0.5 * (d * (LOG_2PI + np.log(rss / d)) + logdet + logdet_a + d), rss
    return -0.5 * (n * (LOG_2PI + np.log(rss / n)) + logdet + n), rss


def _fit_one_kernel_weighted(y, x, resid_cov, kernel, method, grid_size):
    """λ per gene for one kernel with per-gene residual covariance (voom weights)."""
    g = y.shape[0]
    n, p = x.shape
    lams = np.concatenate([[0.0], np.logspace(-5, 6, grid_size - 1)])
    hs = lams / (1.0 + lams)
    ll = np.empty((lams.size, g))
    for i, lam in enumerate(lams):
        ll[i] = _dense_profile_loglik(np.full(g, lam), y, x, resid_cov, kernel, method)[0]
    ll = np.where(np.isfinite(ll), ll, -np.inf)
    best = np.argmax(ll, axis=0)
    lo = hs[np.maximum(best - 1, 0)]
    hi = hs[np.minimum(best + 1, lams.size - 1)]

    def objective(hv):
        value = _dense_profile_loglik(hv / (1.0 - hv), y, x, resid_cov, kernel, method)[0]
        return np.where(np.isfinite(value), value, -np.inf)

    h = golden_section_max(objective, lo, hi, iterations=36)
    h = np.where(objective(h) >= ll[best, np.arange(g)], h, hs[best])
    h = np.where((best == 0) & (ll[0] >= objective(h) - 1e-12 * np.abs(ll[0])), 0.0, h)
    lam = h / (1.0 - h)
    rss = _dense_profile_loglik(lam, y, x, resid_cov, kernel, method)[1]
    sigma0 = rss / ((n - p) if method == "reml" else n)
    return np.stack([sigma0, lam * sigma0], axis=1)


# ---------------------------------------------------------------------------------------
# General: Fisher scoring with an active set
# ---------------------------------------------------------------------------------------
def _fisher_scoring(y, x, comps, method, max_iter, tol):
    """Fisher scoring for all genes; genes leave the iteration once converged."""
    g = y.shape[0]
    n, p = x.shape
    c = len(comps)
    # start: OLS-like residual variance, split equally
    resid = y - (y @ np.linalg.pinv(x).T) @ x.T
    s2 = np.maximum((resid * resid).sum(axis=1) / max(n - p, 1), 1e-12)
    sigma2 = np.repeat((s2 / c)[:, None], c, axis=1)
    active = np.arange(g)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007  (the count is reported)
        ya = y[active]
        ca = [comps[0][active] if comps[0].shape[0] > 1 else comps[0], *comps[1:]]
        sa = sigma2[active]
        ga = active.size
        pieces = _pieces(ya, x, _covariance(sa, ca), method)
        score, fisher, vpy = _score_information(pieces, ca)
        at_zero = np.zeros((ga, c), dtype=bool)
        at_zero[:, 1:] = (sa[:, 1:] <= 0.0) & (score[:, 1:] <= 0.0)
        free2 = ~at_zero[:, :, None] & ~at_zero[:, None, :]
        # Newton (observed information) where it is positive definite, else Fisher scoring
        observed = np.where(free2, -_observed_hessian(pieces, ca, fisher, vpy), np.eye(c)[None])
        newton = np.linalg.eigvalsh(observed)[:, 0] > 0
        info = np.where(newton[:, None, None], observed, np.where(free2, fisher, np.eye(c)[None]))
        rhs = np.where(at_zero, 0.0, score)
        step = np.linalg.solve(info, rhs[..., None])[..., 0]
        scale = np.ones(ga)
        for _ in range(30):
            cand = sa + scale[:, None] * step
            cand[:, 1:] = np.maximum(cand[:, 1:], 0.0)
            bad0 = cand[:, 0] <= 0.0
            if bad0.any():
                scale = np.where(bad0, scale / 2.0, scale)
                continue
            new = _pieces(ya, x, _covariance(cand, ca), method)
            worse = new.loglik < pieces.loglik - 1e-10 * np.abs(pieces.loglik)
            if not worse.any():
                break
            scale = np.where(worse, scale / 2.0, scale)
        change = np.abs(cand - sa).max(axis=1) / sa.sum(axis=1)
        sigma2[active] = cand
        active = active[change >= tol]
        if active.size == 0:
            break
    converged = np.ones(g, dtype=bool)
    converged[active] = False
    return sigma2, it, converged


def fit_variance_components(
    y,
    x,
    kernels,
    *,
    weights=None,
    method: Literal["reml", "ml"] = "reml",
    grid_size: int = 64,
    max_iter: int = 200,
    tol: float = 1e-10,
    chunk_size: int | None = None,
) -> VarianceFit:
    r"""Fit :math:`V_g = \sigma_0^2 W_g^{-1} + \sum_k \sigma_k^2 K_k` for every gene by REML or ML.

    Parameters
    ----------
    y
        ``N × G`` responses (genes in columns).
    x
        ``N × p`` fixed design, full column rank.
    kernels
        Sequence of ``N × N`` kernels :math:`K_k = Z_kZ_k^\top` (may be empty: fixed effects only).
    weights
        Optional ``N × G`` positive precision weights (e.g. voom), else all ones.
    method
        ``"reml"`` (default) or ``"ml"``.
    grid_size
        Nodes of the ``h = λ/(1+λ)`` grid of the one-kernel path.
    max_iter, tol
        Newton/Fisher-scoring limit and relative-change tolerance (several kernels).
    chunk_size
        Genes per block; the dense per-gene work holds ~``20 · chunk · N²`` floats, so the
        default keeps a block near 256 MB. Results do not depend on it.

    Returns
    -------
    VarianceFit
    """
    if method not in ("reml", "ml"):
        raise ValueError(f"method must be 'reml' or 'ml', got {method!r}")
    y_all = np.asarray(y, dtype=np.float64)
    n_all, g_all = y_all.shape
    chunk = chunk_size or max(1, int(256e6 / (8.0 * 20 * n_all * n_all)))
    if g_all > chunk:
        w_all = None if weights is None else np.asarray(weights, dtype=np.float64)
        parts = [
            fit_variance_components(
                y_all[:, a : a + chunk],
                x,
                kernels,
                weights=None if w_all is None else w_all[:, a : a + chunk],
                method=method,
                grid_size=grid_size,
                max_iter=max_iter,
                tol=tol,
                chunk_size=chunk,
            )
            for a in range(0, g_all, chunk)
        ]
        return _concatenate(parts)
    y = y_all.T  # (G, N)
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    kernels = tuple(np.asarray(k, dtype=np.float64) for k in kernels)
    if weights is None:
        resid_cov = np.eye(n)[None]
    else:
        w = np.asarray(weights, dtype=np.float64).T  # (G, N)
        if np.any(~(w > 0)):
            raise ValueError("precision weights must be positive and finite")
        resid_cov = np.einsum("gn,nm->gnm", 1.0 / w, np.eye(n))
    comps = _components(kernels, resid_cov)
    g = y.shape[0]
    if not kernels:
        sigma2 = np.ones((g, 1))
        fit = _pieces(y, x, _covariance(sigma2, comps), method)
        # closed form: σ0² = rᵀWr/(N−p) (REML) or /N (ML)
        resid = y - fit.beta @ x.T
        rwr = np.einsum("ga,gab,gb->g", resid, fit.vinv, resid)
        sigma2 = (rwr / ((n - x.shape[1]) if method == "reml" else n))[:, None]
        return _finish(y, x, sigma2, comps, method, 0)
    if len(kernels) == 1:
        if weights is None:
            sigma2 = _fit_one_kernel(y, x, kernels[0], method, grid_size)
        else:
            sigma2 = _fit_one_kernel_weighted(y, x, resid_cov, kernels[0], method, grid_size)
        return _finish(y, x, sigma2, comps, method, 0)
    sigma2, iterations, converged = _fisher_scoring(y, x, comps, method, max_iter, tol)
    return replace(_finish(y, x, sigma2, comps, method, iterations), converged=converged)


def _concatenate(parts: list[VarianceFit]) -> VarianceFit:
    """Join per-gene fits of consecutive gene blocks."""
    first = parts[0]
    arrays = {
        name: np.concatenate([getattr(part, name) for part in parts], axis=0)
        for name in (
            "sigma2",
            "beta",
            "cov",
            "loglik",
            "singular",
            "jacobian",
            "vcov_varpar",
            "converged",
        )
    }
    return replace(first, iterations=max(part.iterations for part in parts), **arrays)


def consensus_ratios(fit: VarianceFit, *, trim: float = 0.15) -> np.ndarray:
    r"""One variance ratio per random intercept for all genes (limma ``duplicateCorrelation``).

    Per gene :math:`\rho_{gk} = \lambda_{gk}/(1 + \lambda_{gk})` with
    :math:`\lambda_{gk} = \sigma_{gk}^2/\sigma_{g0}^2` (the intra-group correlation for one
    factor); the consensus is :math:`\tanh` of the ``trim``-trimmed mean of
    :math:`\operatorname{atanh}\rho_{gk}` over genes, returned as :math:`\lambda_k = \rho_k/(1-\rho_k)`.
    """
    from scipy import stats as _stats

    lam = fit.sigma2[:, 1:] / fit.sigma2[:, :1]
    rho = np.clip(lam / (1.0 + lam), 0.0, 1.0 - 1e-7)
    ok = np.all(np.isfinite(rho), axis=1)
    z = _stats.trim_mean(np.arctanh(rho[ok]), trim, axis=0)
    rho_c = np.tanh(z)
    return rho_c / (1.0 - rho_c)


def fit_fixed_ratios(
    y,
    x,
    kernels,
    ratios,
    *,
    weights=None,
    method: Literal["reml", "ml"] = "reml",
) -> VarianceFit:
    r"""GLS for every gene with the variance ratios fixed: :math:`V_g = \sigma_{g0}^2(W_g^{-1} + \sum_k\lambda_k K_k)`.

    Only the scale :math:`\sigma_{g0}^2 = r^\top H^{-1}r/(N-p)` (REML; ``/N`` for ML) is
    estimated per gene, so the Satterthwaite df of every contrast is exactly :math:`N - p`
    (limma's ``lmFit(block=, correlation=)`` with ``duplicateCorrelation``, and the core
    scan's ``delta="null"``). ``sigma2`` reports :math:`(\sigma_{g0}^2, \lambda_k\sigma_{g0}^2)`;
    ``singular`` is True where every :math:`\lambda_k` is 0.
    """
    y = np.asarray(y, dtype=np.float64).T
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    ratios = np.asarray(ratios, dtype=np.float64)
    if weights is None:
        cov = np.eye(n)[None]
    else:
        w = np.asarray(weights, dtype=np.float64).T
        cov = np.einsum("gn,nm->gnm", 1.0 / w, np.eye(n))
    for lam, kern in zip(ratios, kernels, strict=True):
        cov = cov + lam * np.asarray(kern, dtype=np.float64)
    comps = [cov]
    pieces = _pieces(y, x, _covariance(np.ones((y.shape[0], 1)), comps), method)
    resid = y - pieces.beta @ x.T
    rwr = np.einsum("ga,gab,gb->g", resid, pieces.vinv, resid)
    s0 = rwr / ((n - p) if method == "reml" else n)
    fit = _finish(y, x, s0[:, None], comps, method, 0)
    sigma2 = np.column_stack([s0, *(lam * s0 for lam in ratios)])
    singular = np.full(y.shape[0], bool(np.all(ratios <= 0)))
    return replace(fit, sigma2=sigma2, singular=singular)
