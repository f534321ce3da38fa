r"""Negative-binomial GLMs for fixed-effects designs, vectorised over genes (edgeR-style).

For gene :math:`g` and sample :math:`i`, with counts :math:`y_{gi}`, design row :math:`x_i` and
offset :math:`o_i = \log(L_i f_i)` (library size × TMM factor, as edgeR):

.. math:: y_{gi} \sim \mathrm{NB}(\mu_{gi}, \phi_g),\quad
          \log \mu_{gi} = o_i + x_i^\top\beta_g,\quad
          \operatorname{Var} y_{gi} = \mu_{gi} + \phi_g\mu_{gi}^2 .

* :func:`fit_nb_glm` — maximum likelihood for :math:`\beta_g` at fixed :math:`\phi_g` by
  Newton–Raphson as IRLS, all genes at once (observed-information weights
  :math:`w = \mu(1+\phi y)/(1+\phi\mu)^2 > 0`, working response
  :math:`z = x^\top\beta + (y-\mu)/\{(1+\phi\mu)w\}`; Fisher scoring, with
  :math:`w = \mu/(1+\phi\mu)`, converges only linearly because the log link is not the NB's
  canonical link), one unrolled-Cholesky ``G × p × p`` solve per iteration (1e-12 relative
  ridge), step halving where the deviance rises by more than 1e-9·(D + 1) (its rounding
  level for large counts), in the orthonormal basis of ``X = QR``, :math:`\mu \ge e^{-30}`.
  Converged when the deviance changes by less than ``tol·(D + 1)``; then polished until the
  step is below ``step_tol`` (at most 4 more iterations). The Wald covariance is
  :math:`(X^\top W X)^{-1}` with the expected weights :math:`\mu/(1+\phi\mu)`.
* :func:`adjusted_profile_loglik` — Cox–Reid adjusted profile log-likelihood, as edgeR's
  ``adjustedProfileLik``:
  :math:`\ell^{CR}_g(\phi) = \ell_g(\hat\beta_\phi, \phi) - \tfrac12\log\det(X^\top W X)`.
* :func:`estimate_dispersion` — per-gene ("tagwise", no prior weight) maximiser of
  :math:`\ell^{CR}_g` over :math:`\log\phi \in [\log\phi_{min}, \log\phi_{max}]`: a 1-unit grid
  in :math:`\log\phi`, then golden-section search (vectorised over genes) in the bracket of
  the best grid point, to a width of ``tol`` in :math:`\log\phi`. Genes whose maximum is at
  the lower bound are Poisson-like. Optionally (``prior_df > 0``) the per-gene APL is
  shrunk towards the common APL, as edgeR's weighted likelihood with ``trend="none"``:
  :math:`\ell^{CR}_g(\phi) + \tfrac{d_0}{N-p}\,\overline{\ell^{CR}}(\phi)` with the mean over
  genes interpolated from the grid (cubic spline in :math:`\log\phi`).
* :func:`nb_lrt` — likelihood-ratio test of a set of coefficients at the gene's dispersion,
  as edgeR's ``glmLRT``: :math:`LR = D_0 - D_1` (deviances) on ``q`` df, :math:`\chi^2_q`
  p-value.
* Quasi-likelihood (edgeR 3.40 ``glmQLFit`` / ``glmQLFTest``): :func:`common_dispersion`
  (``estimateGLMCommonDisp``), :func:`ave_log_cpm` (``aveLogCPM``), :func:`residual_df_zeros`
  (edgeR's ``.residDF``), :func:`nb_ql_fit` (QL dispersions
  :math:`s^2_g = D_g/d_g` moderated by limma's ``squeezeVar`` with an abundance trend) and
  :func:`nb_ql_ftest` (:math:`F = LR/(q\,\tilde s^2_g)` on :math:`(q, d_0 + d_g)` df, with
  edgeR's Poisson bound).

Unit deviance: :math:`d = 2\{y\log(y/\mu) - (y + 1/\phi)\log[(y+1/\phi)/(\mu+1/\phi)]\}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "DispersionFit",
    "NBGLMFit",
    "QLFit",
    "adjusted_profile_loglik",
    "apl_at_fit",
    "ave_log_cpm",
    "common_dispersion",
    "estimate_dispersion",
    "fit_nb_glm",
    "nb_lrt",
    "nb_ql_fit",
    "nb_ql_ftest",
    "residual_df_zeros",
]

_ETA_MIN = -30.0
_GOLD = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class NBGLMFit:
    """Per-gene NB GLM fit (``G`` genes, ``p`` coefficients, natural-log scale).

    Attributes
    ----------
    beta
        ``G × p`` coefficients.
    cov
        ``G × p × p`` :math:`(X^\\top W X)^{-1}` at the fit (Wald covariance), or None.
    mu
        ``G × N`` fitted means.
    deviance
        ``G`` residual deviances.
    converged
        ``G`` booleans (False: iteration limit reached).
    iterations
        ``G`` IRLS iterations used.
    """

    beta: np.ndarray
    cov: np.ndarray | None
    mu: np.ndarray
    deviance: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


@dataclass(frozen=True)
class DispersionFit:
    """Per-gene dispersion estimates: ``dispersion`` (G), ``apl`` (maximised Cox–Reid APL),
    ``at_lower_bound`` (G booleans), ``prior_df``, ``bounds``, ``method`` (text)."""

    dispersion: np.ndarray
    apl: np.ndarray
    at_lower_bound: np.ndarray
    prior_df: float
    bounds: tuple[float, float]
    method: str


def _as_gn(counts, offset):
    y = np.asarray(counts, dtype=np.float64).T  # G × N
    off = np.asarray(offset, dtype=np.float64)
    if off.ndim == 1:
        off = np.broadcast_to(off[None, :], y.shape)
    else:
        off = off.T
    return np.ascontiguousarray(y), off


def _unit_deviance(y: np.ndarray, mu: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """NB unit deviance (G × N), ``phi`` (G, 1); stable for small ``phi`` via ``log1p``."""
    r = 1.0 / phi
    # μ is clipped to [e^-30, e^700], so y·log(y/μ) is finite and 0 at y = 0
    ylog = y * np.log(np.where(y > 0, y, 1.0) / mu)
    t = (y - mu) / (mu + r)
    # log((y + r)/(μ + r)): log1p for small changes, the plain ratio near -1 (y ≪ μ, r ≪ μ)
    log_ratio = np.log1p(np.maximum(t, -0.5))
    low = t <= -0.5
    if low.any():
        rr = np.broadcast_to(r, y.shape)[low]
        log_ratio[low] = np.log((y[low] + rr) / (mu[low] + rr))
    return 2.0 * (ylog - (y + r) * log_ratio)


def _outer_columns(x: np.ndarray) -> np.ndarray:
    """``p² × N`` products of the design columns: ``XᵀWX`` for all genes is one matmul."""
    n, p = x.shape
    return (x[:, :, None] * x[:, None, :]).reshape(n, p * p).T.copy()


def _spd_solve(xtwx: np.ndarray, rhs: np.ndarray | None, p: int):
    r"""Solve ``A β = b`` for many small SPD ``A`` by an unrolled Cholesky over genes.

    ``xtwx`` is ``p² × G`` (row ``i·p + j`` holds ``A_ij`` of every gene), ``rhs`` ``p × G``.
    Loops over the ``p`` columns with vector operations over genes (batched LAPACK calls are
    dominated by their per-matrix overhead at p ≈ 5). Returns ``β`` (``G × p``, or None) and
    :math:`\log\det A` (G).
    """
    low = [[None] * p for _ in range(p)]
    for j in range(p):
        d = xtwx[j * p + j].copy()
        for k in range(j):
            d -= low[j][k] * low[j][k]
        low[j][j] = np.sqrt(np.maximum(d, 1e-300))
        for i in range(j + 1, p):
            o = xtwx[i * p + j].copy()
            for k in range(j):
                o -= low[i][k] * low[j][k]
            low[i][j] = o / low[j][j]
    logdet = 2.0 * np.sum([np.log(low[j][j]) for j in range(p)], axis=0)
    if rhs is None:
        return None, logdet
    z = [None] * p
    for i in range(p):
        v = rhs[i].copy()
        for k in range(i):
            v -= low[i][k] * z[k]
        z[i] = v / low[i][i]
    sol = [None] * p
    for i in reversed(range(p)):
        v = z[i].copy()
        for k in range(i + 1, p):
            v -= low[k][i] * sol[k]
        sol[i] = v / low[i][i]
    return np.stack(sol, axis=1), logdet


def _mu(off, x, beta):
    # μ ≥ e^-30 counts: a group of zeros drives its coefficient down until μ is negligible
    # (deviance contribution ≤ 2μ ≈ 2e-13) instead of underflowing
    eta = off + beta @ x.T
    return np.exp(np.clip(eta, _ETA_MIN, 700.0))


def fit_nb_glm(
    counts,
    x,
    offset,
    dispersion,
    *,
    beta_start: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    step_tol: float = 1e-9,
    with_cov: bool = True,
) -> NBGLMFit:
    r"""Fit :math:`\log\mu = o + X\beta` per gene at fixed dispersion, by vectorised IRLS.

    Parameters
    ----------
    counts
        ``N × G`` counts (samples × genes).
    x
        ``N × p`` design (full column rank).
    offset
        ``N`` or ``N × G`` offsets (natural log, e.g. :math:`\log(L_i f_i)`).
    dispersion
        Scalar or ``G`` dispersions :math:`\phi_g \ge 0`.
    beta_start
        Optional ``G × p`` starting values; default: least squares of
        :math:`\log(y + 0.5) - o` on ``X``.
    max_iter, tol, step_tol
        Iteration limit; a gene is converged when its deviance changes by less than
        ``tol·(D + 1)``, and iterates on (at most 4 more times) until its step in the
        orthonormal basis of ``X`` is below ``step_tol`` (a coefficient running to −∞, e.g.
        a group of zeros, stops there with a converged deviance). ``step_tol=inf``: stop
        on the deviance alone.
    with_cov
        Also return :math:`(X^\top W X)^{-1}` (else ``cov`` is None).

    Returns
    -------
    NBGLMFit
    """
    y, off = _as_gn(counts, offset)
    x_in = np.asarray(x, dtype=np.float64)
    g, _ = y.shape
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (g,))[:, None]
    phi = np.maximum(phi, 1e-12)
    # iterate in the orthonormal basis Q of X = QR (well conditioned; same fit)
    x, rmat = np.linalg.qr(x_in)
    p = x.shape[1]
    xx = _outer_columns(x)
    if beta_start is None:
        beta = np.linalg.lstsq(x, (np.log(y + 0.5) - off).T, rcond=None)[0].T
    else:
        beta = np.asarray(beta_start, dtype=np.float64) @ rmat.T
    mu = _mu(off, x, beta)
    dev = _unit_deviance(y, mu, phi).sum(axis=1)
    converged = np.zeros(g, dtype=bool)
    iters = np.zeros(g, dtype=np.int64)
    polish = np.zeros(g, dtype=np.int64)  # iterations after the deviance converged
    active = np.arange(g)
    for _ in range(max_iter):
        if active.size == 0:
            break
        ya, oa, pa, ba, ma = y[active], off[active], phi[active], beta[active], mu[active]
        # Newton step with the observed information (the log link is not canonical for the
        # NB, so Fisher scoring would converge only linearly); its weights are > 0
        denom = 1.0 + pa * ma
        w = ma * (1.0 + pa * ya) / (denom * denom)
        score = (ya - ma) / denom
        xtwx = xx @ w.T
        # a 1e-12 relative ridge keeps near-singular systems (groups of zeros) solvable
        ridge = 1e-12 * xtwx[:: p + 1].mean(axis=0)
        xtwx[:: p + 1] += ridge
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            new, _ = _spd_solve(xtwx, x.T @ (w * (ba @ x.T) + score).T, p)
            step = new - ba
        bad = ~np.all(np.isfinite(step), axis=1)
        step[bad] = 0.0
        new[bad] = ba[bad]
        d_old = dev[active]
        mu_new = _mu(oa, x, new)
        d_new = _unit_deviance(ya, mu_new, pa).sum(axis=1)
        # halve steps that increase the deviance beyond rounding (near the optimum the
        # deviance of large counts is only accurate to ~1e-10 relative; accept such steps)
        slack = 1e-9 * (np.abs(d_old) + 1.0)
        worse = ~(d_new <= d_old + slack)
        halvings = 0
        while np.any(worse) and halvings < 30:
            step[worse] *= 0.5
            new[worse] = ba[worse] + step[worse]
            mu_new[worse] = _mu(oa[worse], x, new[worse])
            d_new[worse] = _unit_deviance(ya[worse], mu_new[worse], pa[worse]).sum(axis=1)
            worse = worse & ~(d_new <= d_old + slack)
            halvings += 1
        # a step that cannot reduce the deviance any more: keep the old point (converged)
        new[worse], mu_new[worse], d_new[worse] = ba[worse], ma[worse], d_old[worse]
        beta[active], mu[active], dev[active] = new, mu_new, d_new
        iters[active] += 1
        dev_ok = (np.abs(d_old - d_new) <= tol * (np.abs(d_new) + 1.0)) & ~bad
        worse &= ~bad
        # deviance converged (flagged) and, to pin β down along flat directions, a small step
        converged[active[dev_ok | worse]] = True
        polish[active[dev_ok]] += 1
        small = np.max(np.abs(step), axis=1) <= step_tol
        done = (dev_ok & (small | (polish[active] > 3))) | worse | bad  # bad: not converged
        active = active[~done]
    cov = None
    if with_cov:
        w = mu / (1.0 + phi * mu)
        cov = np.linalg.inv(np.einsum("gn,np,nq->gpq", w, x_in, x_in))
    beta = np.linalg.solve(rmat, beta.T).T
    return NBGLMFit(beta, cov, mu, dev, converged, iters)


def _loglik(y, mu, phi):
    """NB log-likelihood per gene (G), including :math:`-\\log y!` (as edgeR)."""
    r = 1.0 / phi
    ylogmu = y * (np.log(mu) - np.log(mu + r))  # μ > 0 (clipped): 0 at y = 0
    term = special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1.0)
    return (term + ylogmu - r * np.log1p(mu / r)).sum(axis=1)


def _apl_gn(y, off, x, phi, beta_start):
    fit = fit_nb_glm(y.T, x, off.T, phi, beta_start=beta_start, step_tol=np.inf, with_cov=False)
    ph = np.asarray(phi, dtype=np.float64).reshape(-1, 1)
    ll = _loglik(y, fit.mu, ph)
    w = fit.mu / (1.0 + ph * fit.mu)
    _, logdet = _spd_solve(_outer_columns(x) @ w.T, None, x.shape[1])
    return ll - 0.5 * logdet, fit.beta


def apl_at_fit(counts, x, fit: NBGLMFit, dispersion) -> np.ndarray:
    r"""Cox–Reid adjusted profile log-likelihood of an existing fit (no refit), per gene."""
    y = np.asarray(counts, dtype=np.float64).T
    x = np.asarray(x, dtype=np.float64)
    ph = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (y.shape[0],))[:, None]
    w = fit.mu / (1.0 + ph * fit.mu)
    _, logdet = _spd_solve(_outer_columns(x) @ w.T, None, x.shape[1])
    return _loglik(y, fit.mu, ph) - 0.5 * logdet


def adjusted_profile_loglik(counts, x, offset, dispersion) -> np.ndarray:
    r"""Cox–Reid adjusted profile log-likelihood per gene (edgeR ``adjustedProfileLik``).

    :math:`\ell^{CR}_g(\phi_g) = \sum_i \log f_{NB}(y_{gi}; \hat\mu_{gi}, \phi_g)
    - \tfrac12\log\det(X^\top W_g X)`, :math:`W_g = \mathrm{diag}\{\hat\mu/(1+\phi_g\hat\mu)\}`,
    with :math:`\hat\mu` the GLM fit at :math:`\phi_g`. ``counts`` is ``N × G``.
    """
    y, off = _as_gn(counts, offset)
    x = np.asarray(x, dtype=np.float64)
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (y.shape[0],))
    return _apl_gn(y, off, x, phi, None)[0]


def estimate_dispersion(
    counts,
    x,
    offset,
    *,
    bounds: tuple[float, float] = (1e-6, 20.0),
    prior_df: float = 0.0,
    tol: float = 1e-6,
) -> DispersionFit:
    r"""Per-gene NB dispersion maximising the Cox–Reid adjusted profile likelihood.

    Parameters
    ----------
    counts
        ``N × G`` counts.
    x
        ``N × p`` design.
    offset
        ``N`` or ``N × G`` offsets.
    bounds
        Search interval for :math:`\phi` (the lower bound stands for "Poisson").
    prior_df
        0 (default): each gene's own maximiser (edgeR ``estimateGLMTagwiseDisp(prior.df=0)``,
        maximised exactly rather than by spline interpolation). ``d0 > 0``: maximise
        :math:`\ell^{CR}_g(\phi) + \tfrac{d_0}{N-p}\overline{\ell^{CR}}(\phi)` (shrinkage to the
        common dispersion, edgeR's weighted likelihood with ``trend="none"``).
    tol
        Width of the final bracket in :math:`\log\phi`.

    Returns
    -------
    DispersionFit
    """
    y, off = _as_gn(counts, offset)
    x = np.asarray(x, dtype=np.float64)
    g = y.shape[0]
    n, p = x.shape
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    grid = np.linspace(lo, hi, int(np.ceil(hi - lo)) + 1)
    apl = np.empty((grid.size, g))
    beta = None
    for k, u in enumerate(grid[::-1]):  # from large dispersion down: stable warm starts
        apl[grid.size - 1 - k], beta = _apl_gn(y, off, x, np.full(g, np.exp(u)), beta)
    prior_n = prior_df / (n - p) if prior_df > 0 else 0.0
    if prior_n > 0:
        from scipy.interpolate import CubicSpline

        common = CubicSpline(grid, apl.mean(axis=1))

        def penalty(u):
            return prior_n * common(u)

        apl_pen = apl + prior_n * apl.mean(axis=1, keepdims=True)
    else:

        def penalty(u):
            return 0.0

        apl_pen = apl
    best = np.argmax(apl_pen, axis=0)
    a = grid[np.maximum(best - 1, 0)]
    b = grid[np.minimum(best + 1, grid.size - 1)]

    def f(u, start):
        val, bt = _apl_gn(y, off, x, np.exp(u), start)
        return val + penalty(u), bt

    c = b - _GOLD * (b - a)
    d = a + _GOLD * (b - a)
    fc, bc = f(c, None)
    fd, bd = f(d, bc)
    while np.max(b - a) > tol:
        left = fc > fd  # maximum in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = np.where(left, b - _GOLD * (b - a), d)
        new_d = np.where(left, c, a + _GOLD * (b - a))
        fc_keep, fd_keep = fc.copy(), fd.copy()
        u_eval = np.where(left, new_c, new_d)
        start = np.where(left[:, None], bc, bd)
        fe, be = f(u_eval, start)
        fc = np.where(left, fe, fd_keep)
        fd = np.where(left, fc_keep, fe)
        bc_new = np.where(left[:, None], be, bd)
        bd = np.where(left[:, None], bc, be)
        bc = bc_new
        c, d = new_c, new_d
    u_hat = np.where(fc > fd, c, d)
    # the bracket ends at the grid bounds: compare with the bound itself
    at_lo = (best == 0) & (apl_pen[0] >= np.maximum(fc, fd))
    u_hat = np.where(at_lo, lo, u_hat)
    at_hi = (best == grid.size - 1) & (apl_pen[-1] >= np.maximum(fc, fd))
    u_hat = np.where(at_hi, hi, u_hat)
    phi = np.exp(u_hat)
    final = adjusted_profile_loglik(y.T, x, off.T, phi)
    method = (
        "Cox-Reid APL per gene (tagwise, prior.df = 0)"
        if prior_n == 0
        else f"Cox-Reid APL per gene shrunk to the common APL (prior.df = {prior_df:g})"
    )
    return DispersionFit(phi, final, at_lo, float(prior_df), tuple(map(float, bounds)), method)


def nb_lrt(
    counts, x, offset, dispersion, columns, *, full: NBGLMFit | None = None
) -> dict[str, np.ndarray]:
    r"""Likelihood-ratio test of coefficients ``columns`` = 0 at fixed dispersion (``glmLRT``).

    :math:`LR_g = D_g(\text{reduced}) - D_g(\text{full})`, p-value :math:`P(\chi^2_q > LR_g)`.

    Returns
    -------
    dict
        ``stat`` (LR), ``df`` (q), ``pvalue``, ``deviance_full``, ``deviance_reduced``.
    """
    x = np.asarray(x, dtype=np.float64)
    cols = sorted(set(int(c) for c in columns))
    keep = [j for j in range(x.shape[1]) if j not in cols]
    if full is None:
        full = fit_nb_glm(counts, x, offset, dispersion)
    reduced = fit_nb_glm(counts, x[:, keep], offset, dispersion)
    stat = np.maximum(reduced.deviance - full.deviance, 0.0)
    q = float(len(cols))
    return {
        "stat": stat,
        "df": np.full(stat.shape, q),
        "pvalue": stats.chi2.sf(stat, q),
        "deviance_full": full.deviance,
        "deviance_reduced": reduced.deviance,
    }


def ave_log_cpm(
    counts, lib_size, *, dispersion=0.05, prior_count: float = 2.0, tol: float = 1e-10
) -> np.ndarray:
    r"""Average log2 counts per million per gene, as edgeR ``aveLogCPM``.

    Prior counts :math:`c_i = c\,L_i/\bar L` are added to the counts and twice to the library
    sizes; the intercept-only NB GLM :math:`\log\mu_i = \beta + \log(L_i + 2c_i)` at the
    dispersion is fitted by edgeR's one-group Fisher scoring (start
    :math:`\log\{\frac1N\sum_i (y_i + c_i)/(L_i + 2c_i)\}`, steps
    :math:`\sum_i \frac{y_i-\mu_i}{1+\phi\mu_i} / \sum_i \frac{\mu_i}{1+\phi\mu_i}` until one is
    below ``tol``); returns :math:`(\hat\beta + \log 10^6)/\log 2`.

    Parameters
    ----------
    counts
        ``N × G`` counts.
    lib_size
        ``N`` effective library sizes (library size × normalisation factor).
    dispersion
        Scalar or ``G`` NB dispersions (edgeR's default 0.05).
    prior_count
        Average prior count ``c`` (edgeR default 2).
    tol
        Step tolerance of the scoring iteration (edgeR's ``mglmOneGroup`` default 1e-10).
    """
    y = np.asarray(counts, dtype=np.float64).T  # G × N
    lib = np.asarray(lib_size, dtype=np.float64)
    g = y.shape[0]
    prior = prior_count * lib / lib.mean()
    yp = y + prior[None, :]
    off = np.log(lib + 2.0 * prior)
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (g,))[:, None]
    beta = np.log(np.mean(yp / np.exp(off)[None, :], axis=1))
    active = np.arange(g)
    for _ in range(50):
        if active.size == 0:
            break
        mu = np.exp(beta[active, None] + off[None, :])
        den = 1.0 + mu * phi[active]
        step = ((yp[active] - mu) / den).sum(axis=1) / (mu / den).sum(axis=1)
        beta[active] += step
        active = active[~(np.abs(step) < tol)]
    return (beta + np.log(1e6)) / np.log(2.0)


def common_dispersion(
    counts,
    x,
    offset,
    *,
    interval: tuple[float, float] = (0.0, 4.0),
    tol: float = 1e-10,
    min_row_sum: float = 5.0,
    subset: int = 10000,
) -> float:
    r"""Common NB dispersion maximising the summed Cox–Reid APL (edgeR ``estimateGLMCommonDisp``).

    As edgeR's ``dispCoxReid``: genes with fewer than ``min_row_sum`` reads in total are left
    out; when at least ``2·subset`` genes remain, a systematic subset is used (edgeR
    ``systematicSubset``: with ``r = ⌊G/subset⌋``, every ``r``-th gene in the order of
    :func:`ave_log_cpm` at dispersion 0.05, starting at rank ``⌊r/2⌋ + 1``);
    :math:`\sum_g \ell^{CR}_g(\phi)` is maximised over :math:`\phi^{1/4}` in
    ``interval``\ :sup:`1/4` by Brent's method to ``tol`` (edgeR: ``optimize``, tol 1e-5).

    Parameters
    ----------
    counts
        ``N × G`` counts.
    x
        ``N × p`` design.
    offset
        ``N`` offsets :math:`\log(L_i f_i)`.
    """
    from scipy.optimize import minimize_scalar

    y, off = _as_gn(counts, offset)
    x = np.asarray(x, dtype=np.float64)
    rows = np.flatnonzero(y.sum(axis=1) >= min_row_sum)
    if rows.size == 0:
        raise ValueError("no gene has the required number of counts")
    if subset is not None and subset <= rows.size / 2:
        lib = np.exp(np.asarray(offset, dtype=np.float64))
        ave = ave_log_cpm(y[rows].T, lib, dispersion=0.05)
        ratio = rows.size // subset  # ≥ 2 here
        order = np.argsort(ave, kind="stable")  # R's order(): ties by position
        rows = rows[order[ratio // 2 :: ratio]]
    ys, offs = y[rows], off[rows]
    state = {"beta": None}

    def negsum(par):
        phi = np.full(ys.shape[0], max(par, 0.0) ** 4)
        val, state["beta"] = _apl_gn(ys, offs, x, phi, state["beta"])
        return -float(np.sum(val))

    lo, hi = (v**0.25 for v in interval)
    res = minimize_scalar(negsum, bounds=(lo, hi), method="bounded", options={"xatol": tol})
    return float(res.x**4)


def residual_df_zeros(counts, mu, x) -> np.ndarray:
    r"""Residual df per gene adjusted for exact zeros (edgeR ``.residDF``).

    A sample is a "zero" of a gene when its count and its fitted mean are both below 1e-4.
    :math:`d_g = N - p` without zeros, 0 when every sample is a zero, and otherwise
    :math:`\max(0, N - z_g - \operatorname{rank} X_{\text{non-zero}})`. Computed once per
    distinct zero pattern (not per gene).

    Parameters
    ----------
    counts
        ``N × G`` counts.
    mu
        ``G × N`` fitted means (:attr:`NBGLMFit.mu`).
    x
        ``N × p`` design.
    """
    y = np.asarray(counts, dtype=np.float64).T
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    zero = (y < 1e-4) & (np.asarray(mu) < 1e-4)
    nzero = zero.sum(axis=1)
    df = np.full(y.shape[0], float(n - p))
    df[nzero == n] = 0.0
    some = np.flatnonzero((nzero > 0) & (nzero < n))
    if some.size:
        patterns, inverse = np.unique(zero[some], axis=0, return_inverse=True)
        ranks = np.array([np.linalg.matrix_rank(x[~pat]) for pat in patterns])
        df[some] = np.maximum(n - nzero[some] - ranks[np.ravel(inverse)], 0.0)
    return df


@dataclass(frozen=True)
class QLFit:
    """Quasi-likelihood fit (edgeR ``glmQLFit``) of ``G`` genes.

    Attributes
    ----------
    glm
        The NB GLM at the NB dispersion.
    dispersion
        ``G`` NB dispersions used.
    df_residual
        ``G`` residual df adjusted for exact zeros.
    s2
        ``G`` raw QL dispersions :math:`D_g/d_g` (0 where :math:`d_g = 0`).
    df_prior, var_prior, var_post
        Prior df :math:`d_0`, prior (trended) QL dispersions and posterior QL dispersions.
    abundance
        ``G`` average log2 CPM (the trend covariate), or None (no trend).
    """

    glm: NBGLMFit
    dispersion: np.ndarray
    df_residual: np.ndarray
    s2: np.ndarray
    df_prior: float
    var_prior: np.ndarray
    var_post: np.ndarray
    abundance: np.ndarray | None


def nb_ql_fit(
    counts, x, offset, dispersion, *, abundance: np.ndarray | None = None, fit=None
) -> QLFit:
    r"""QL dispersions moderated across genes, as edgeR 3.40 ``glmQLFit`` (robust = FALSE).

    :math:`s^2_g = D_g/d_g` with the deviance :math:`D_g` of the NB GLM at ``dispersion`` and
    the zero-adjusted residual df :math:`d_g` (:func:`residual_df_zeros`); then limma's
    ``squeezeVar(s2, d, covariate = abundance)``
    (:func:`~exprlmm.assoc.designs.ebayes.squeeze_var_trend`):
    :math:`\tilde s^2_g = (d_g s^2_g + d_0 s^2_{0g})/(d_g + d_0)` with a prior
    :math:`s^2_{0g}` trended in the abundance (pass ``abundance=None`` for edgeR's
    ``abundance.trend = FALSE``).

    Parameters
    ----------
    counts
        ``N × G`` counts.
    x
        ``N × p`` design.
    offset
        ``N`` or ``N × G`` offsets.
    dispersion
        Scalar or ``G`` NB dispersions (edgeR: the trended or common dispersion).
    abundance
        ``G`` average log2 CPM (:func:`ave_log_cpm` at the dispersion), or None.
    fit
        Optional NB GLM already fitted at ``dispersion``.
    """
    from exprlmm.assoc.designs.ebayes import squeeze_var_trend

    y = np.asarray(counts, dtype=np.float64)
    g = y.shape[1]
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), (g,)).copy()
    if fit is None:
        fit = fit_nb_glm(y, x, offset, phi)
    df = residual_df_zeros(y, fit.mu, x)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.where(df > 0, fit.deviance / np.where(df > 0, df, 1.0), 0.0)
    s2 = np.maximum(s2, 0.0)
    sq = squeeze_var_trend(s2, df, abundance)
    return QLFit(fit, phi, df, s2, sq["df_prior"], sq["var_prior"], sq["var_post"], abundance)


def nb_ql_ftest(
    counts, x, offset, ql: QLFit, columns, *, poisson_bound: bool = True
) -> dict[str, np.ndarray]:
    r"""Quasi-likelihood F test of coefficients ``columns`` = 0, as edgeR ``glmQLFTest``.

    :math:`F_g = LR_g/(q\,\tilde s^2_g)` with :math:`LR_g = D_g(\text{reduced}) -
    D_g(\text{full})` at the NB dispersion, on :math:`q` and
    :math:`\min(d_0 + d_g,\ G(N - p))` df. Poisson bound (``poisson_bound=True``): for genes
    with :math:`(\mu_{gi}\phi_g + 1)\tilde s^2_g < 1` in some sample the p-value is at least
    that of the :math:`\chi^2_q` LRT of the Poisson GLM (dispersion 0).

    Returns
    -------
    dict
        ``stat`` (F), ``df`` (denominator df), ``ndf`` (q), ``pvalue``, ``lr``,
        ``below_poisson`` (G booleans).
    """
    y = np.asarray(counts, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    g = y.shape[1]
    lrt = nb_lrt(y, x, offset, ql.dispersion, columns, full=ql.glm)
    q = float(lrt["df"][0]) if g else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fstat = lrt["stat"] / q / ql.var_post
    df2 = np.minimum(ql.df_prior + ql.df_residual, g * (n - p))
    pvalue = stats.f.sf(fstat, q, df2)
    below = np.zeros(g, dtype=bool)
    if poisson_bound:
        below = np.any(
            (ql.glm.mu * ql.dispersion[:, None] + 1.0) * ql.var_post[:, None] < 1.0, axis=1
        )
        if below.any():
            off = np.asarray(offset, dtype=np.float64)
            off_b = off if off.ndim == 1 else off[:, below]
            pois = nb_lrt(y[:, below], x, off_b, 0.0, columns)
            pvalue[below] = np.maximum(pvalue[below], pois["pvalue"])
    return {
        "stat": fstat,
        "df": df2,
        "ndf": np.full(g, q),
        "pvalue": pvalue,
        "lr": lrt["stat"],
        "below_poisson": below,
    }
