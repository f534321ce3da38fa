r"""Empirical-Bayes moderation of residual variances across genes (limma's ``eBayes``).

Each gene's residual variance :math:`s_g^2` on :math:`d_g` df is taken as a draw from a
scaled inverse-χ² prior with scale :math:`s_0^2` and :math:`d_0` df (Smyth 2004). The prior is
fitted by moments of :math:`\log s_g^2` (limma ``fitFDist``, no covariate, not robust):

.. math:: e_g = \log s_g^2 - \psi(d_g/2) + \log(d_g/2),\quad
          \bar e,\ \ v = \widehat{\operatorname{var}}(e) - \overline{\psi'(d_g/2)},\quad
          d_0 = 2\,\psi'^{-1}(v),\quad s_0^2 = \exp(\bar e + \psi(d_0/2) - \log(d_0/2))

(:math:`d_0 = \infty`, :math:`s_0^2 = \overline{s^2}` when :math:`v \le 0`); variances are first
floored at :math:`10^{-5}` × their median. The posterior variance is
:math:`\tilde s_g^2 = (d_0 s_0^2 + d_g s_g^2)/(d_0 + d_g)` and the moderated t uses
:math:`\tilde s_g` on :math:`\min(d_0 + d_g, \sum_g d_g)` df.

For a mixed model the moderated quantity is the REML scale :math:`\hat\sigma_0^2` (at the
fitted variance ratios :math:`\hat\sigma_0^2 = r^\top H^{-1}r/(N-p)`, so :math:`d_g = N - p`):
:math:`\operatorname{Cov}(\hat\beta)` is multiplied by :math:`\tilde s_g^2/s_g^2` and
:math:`d_0` is added to each Satterthwaite df (capped at :math:`\sum_g d_g`). For a singular or
fixed-effects fit this is exactly limma's moderated t. Adding :math:`d_0` to the Satterthwaite
df is our choice (dream adds it to its own residual df); its calibration is measured in
docs/designs.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import special

from exprlmm.assoc.designs.reml import VarianceFit

__all__ = [
    "fit_f_dist",
    "fit_f_dist_trend",
    "moderate_fit",
    "natural_spline_basis",
    "squeeze_var",
    "squeeze_var_trend",
    "trigamma_inverse",
]


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    r"""Solve :math:`\psi'(y) = x` by Newton's method (limma ``trigammaInverse``)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    big, small = x > 1e7, x < 1e-6
    out[big] = 1.0 / np.sqrt(x[big])
    out[small] = 1.0 / x[small]
    mid = ~big & ~small
    xm = x[mid]
    y = 0.5 + 1.0 / xm
    for _ in range(50):
        tri = special.polygamma(1, y)
        dif = tri * (1.0 - tri / xm) / special.polygamma(2, y)
        y = y + dif
        if np.all(-dif / y < 1e-8):
            break
    out[mid] = y
    return out


def fit_f_dist(s2: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """Prior ``(s0², d0)`` from variances ``s2`` on ``df`` df (limma ``fitFDist``, no covariate)."""
    s2 = np.asarray(s2, dtype=np.float64)
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), s2.shape)
    ok = np.isfinite(df) & (df > 1e-15) & np.isfinite(s2) & (s2 > -1e-15)
    x, d1 = np.maximum(s2[ok], 0.0), df[ok]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), 0.0
    m = float(np.median(x))
    if m == 0:
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    e = np.log(x) - special.digamma(d1 / 2) + np.log(d1 / 2)
    emean = float(e.mean())
    evar = float(((e - emean) ** 2).sum() / (x.size - 1)) - float(
        special.polygamma(1, d1 / 2).mean()
    )
    if evar > 0:
        d0 = 2.0 * float(trigamma_inverse(np.array([evar]))[0])
        s0 = float(np.exp(emean + special.digamma(d0 / 2) - np.log(d0 / 2)))
    else:
        d0 = float("inf")
        s0 = float(x.mean())
    return s0, d0


def squeeze_var(s2: np.ndarray, df, *, s2_prior: float, df_prior: float) -> np.ndarray:
    r"""Posterior variances :math:`(d_0 s_0^2 + d s^2)/(d_0 + d)` (:math:`s_0^2` if :math:`d_0=\infty`)."""
    s2 = np.asarray(s2, dtype=np.float64)
    if not np.isfinite(df_prior):
        return np.full_like(s2, s2_prior)
    return (df * s2 + df_prior * s2_prior) / (df + df_prior)


def moderate_fit(fit: VarianceFit, *, n_samples: int) -> tuple[VarianceFit, dict]:
    r"""Moderate every gene's residual scale across genes; return the moderated fit and prior.

    The covariance :math:`\Phi` and its derivatives are scaled by
    :math:`\tilde s_g^2/s_g^2`; ``df_prior`` (:math:`d_0`, capped so that the total does not
    exceed :math:`\sum_g d_g`) is stored on the fit and added to every test's df.
    """
    p = fit.beta.shape[1]
    d = float(n_samples - p)
    s2 = fit.sigma2[:, 0]
    s0, d0 = fit_f_dist(s2, np.full(s2.shape, d))
    post = squeeze_var(s2, d, s2_prior=s0, df_prior=d0)
    ratio = post / s2
    pooled = d * s2.size
    moderated = replace(
        fit,
        cov=fit.cov * ratio[:, None, None],
        jacobian=fit.jacobian * ratio[:, None, None, None],
        df_prior=min(d0, pooled),
        df_cap=pooled,
    )
    return moderated, {"s2_prior": s0, "df_prior": d0, "df_residual": d}


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    r"""Natural cubic spline basis with knots :math:`\xi_1 < \dots < \xi_K` (K columns).

    :math:`N_1 = 1`, :math:`N_2 = x`, :math:`N_{k+2} = d_k - d_{K-1}` with
    :math:`d_k(x) = \{(x-\xi_k)_+^3 - (x-\xi_K)_+^3\}/(\xi_K - \xi_k)` (Hastie, Tibshirani &
    Friedman, eq. 5.4–5.5): cubic between the knots, linear outside the boundary knots. It
    spans the same space as R's ``splines::ns(x, knots = ξ_2..ξ_{K-1}, Boundary.knots =
    c(ξ_1, ξ_K), intercept = TRUE)`` (including ``predict`` outside the boundary), so least
    squares fitted values agree. ``x`` and the knots are first mapped to ``[0, 1]`` by the
    boundary knots (the space is invariant under affine maps; this keeps the cubes small).
    """
    x = np.asarray(x, dtype=np.float64)
    knots = np.asarray(knots, dtype=np.float64)
    lo, hi = knots[0], knots[-1]
    scale = hi - lo if hi > lo else 1.0
    t = (x - lo) / scale
    k = (knots - lo) / scale
    cols = [np.ones_like(t), t]
    if k.size > 2:

        def d(j):
            return (np.maximum(t - k[j], 0.0) ** 3 - np.maximum(t - k[-1], 0.0) ** 3) / (
                k[-1] - k[j]
            )

        last = d(k.size - 2)
        cols += [d(j) - last for j in range(k.size - 2)]
    return np.stack(cols, axis=1)


def fit_f_dist_trend(
    s2: np.ndarray, df: np.ndarray, covariate: np.ndarray
) -> tuple[np.ndarray, float]:
    r"""Prior ``(s0²_g, d0)`` with a scale trend in ``covariate`` (limma ``fitFDist``).

    As limma 3.54 ``fitFDist(x, df1, covariate)`` (non-robust): genes with finite
    :math:`d_g > 10^{-15}` and :math:`s^2_g > -10^{-15}` enter; variances are floored at
    :math:`10^{-5}` × their median; :math:`e_g = \log s^2_g - \psi(d_g/2) + \log(d_g/2)` is
    regressed on a natural cubic spline in the covariate with ``k = 1 + [n≥3] + [n≥6] +
    [n≥30]`` df (at most the number of distinct covariate values; interior knots at the
    equally spaced quantiles, boundary knots at the range, as ``splines::ns(covariate, df = k,
    intercept = TRUE)``), giving the fitted trend :math:`\hat e_g` and
    :math:`v = \mathrm{RSS}/(n - k) - \overline{\psi'(d_g/2)}`; then
    :math:`d_0 = 2\psi'^{-1}(v)` and :math:`s^2_{0g} = \exp\{\hat e_g + \psi(d_0/2) -
    \log(d_0/2)\}` (:math:`d_0 = \infty`, :math:`s^2_{0g} = e^{\hat e_g}` if :math:`v \le 0`).
    Genes left out are given the trend's value at their covariate. With ``k < 2`` the
    no-covariate fit :func:`fit_f_dist` is returned (its scale repeated).

    Returns
    -------
    (numpy.ndarray, float)
        Per-gene prior scale :math:`s^2_{0g}` and the prior df :math:`d_0`.
    """
    s2 = np.asarray(s2, dtype=np.float64)
    n = s2.size
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), s2.shape)
    cov = np.asarray(covariate, dtype=np.float64)
    if cov.shape != s2.shape:
        raise ValueError("s2 and covariate must have the same length")
    if n == 0:
        return np.full(0, np.nan), float("nan")
    if n == 1:
        return s2.copy(), 0.0
    fin = np.isfinite(cov)
    if not fin.all():
        if fin.any():
            cov = cov.copy()
            cov[cov == -np.inf] = cov[fin].min() - 1.0
            cov[cov == np.inf] = cov[fin].max() + 1.0
        else:
            cov = np.sign(cov)
    ok = np.isfinite(df) & (df > 1e-15) & np.isfinite(s2) & (s2 > -1e-15)
    nok = int(ok.sum())
    if nok == 0:
        return np.full(n, np.nan), float("nan")
    if nok == 1:
        return np.full(n, s2[ok][0]), 0.0
    x, d1, c = s2[ok], df[ok], cov[ok]
    k = 1 + (nok >= 3) + (nok >= 6) + (nok >= 30)
    k = min(k, np.unique(c).size)
    if k < 2:
        s0, d0 = fit_f_dist(x, d1)
        return np.full(n, s0), d0
    x = np.maximum(x, 0.0)
    m = float(np.median(x))
    if m == 0:
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    e = np.log(x) - special.digamma(d1 / 2) + np.log(d1 / 2)
    probs = np.linspace(0.0, 1.0, k)
    knots = np.quantile(c, probs)  # type 7, as R's quantile; ends = range
    basis = natural_spline_basis(c, knots)
    coef, _, rank, _ = np.linalg.lstsq(basis, e, rcond=None)
    fitted = basis @ coef
    evar = float(np.sum((e - fitted) ** 2) / (nok - rank))
    emean = np.empty(n)
    emean[ok] = fitted
    if nok < n:
        emean[~ok] = natural_spline_basis(cov[~ok], knots) @ coef
    evar -= float(special.polygamma(1, d1 / 2).mean())
    if evar > 0:
        d0 = 2.0 * float(trigamma_inverse(np.array([evar]))[0])
        s0 = np.exp(emean + special.digamma(d0 / 2) - np.log(d0 / 2))
    else:
        d0 = float("inf")
        s0 = np.exp(emean)
    return s0, d0


def squeeze_var_trend(s2: np.ndarray, df: np.ndarray, covariate: np.ndarray | None) -> dict:
    r"""limma ``squeezeVar(var, df, covariate)`` (non-robust): prior and posterior variances.

    Variances on 0 df are set to 0 first; the prior comes from :func:`fit_f_dist_trend`
    (or :func:`fit_f_dist` without a covariate); posterior
    :math:`\tilde s^2_g = (d_g s^2_g + d_0 s^2_{0g})/(d_g + d_0)` (:math:`s^2_{0g}` if
    :math:`d_0 = \infty`).

    Returns
    -------
    dict
        ``df_prior`` (float), ``var_prior`` (G), ``var_post`` (G).
    """
    s2 = np.asarray(s2, dtype=np.float64).copy()
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), s2.shape)
    if s2.size == 0:
        raise ValueError("s2 is empty")
    if s2.size == 1:
        return {"df_prior": 0.0, "var_prior": s2.copy(), "var_post": s2.copy()}
    s2[df == 0] = 0.0
    if covariate is None:
        s0, d0 = fit_f_dist(s2, df)
        prior = np.full(s2.shape, s0)
    else:
        prior, d0 = fit_f_dist_trend(s2, df, covariate)
    if not np.isfinite(d0) and np.isnan(d0):
        raise ValueError("could not estimate the prior df")
    if np.isfinite(d0):
        post = (df * s2 + d0 * prior) / (df + d0)
    else:
        post = prior.copy()
    return {"df_prior": float(d0), "var_prior": prior, "var_post": post}
