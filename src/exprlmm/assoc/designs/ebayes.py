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

__all__ = ["fit_f_dist", "moderate_fit", "squeeze_var", "trigamma_inverse"]


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
