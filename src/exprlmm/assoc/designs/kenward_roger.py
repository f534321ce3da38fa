r"""Kenward–Roger small-sample tests (Kenward & Roger 1997), as pbkrtest / lmerTest.

With :math:`\Sigma = \sum_i \sigma_i^2 G_i` (``G_i`` = the kernels and the residual identity /
:math:`W^{-1}`), :math:`\Phi = (X^\top\Sigma^{-1}X)^{-1}`,
:math:`P_i = -X^\top\Sigma^{-1}G_i\Sigma^{-1}X`,
:math:`Q_{ij} = X^\top\Sigma^{-1}G_i\Sigma^{-1}G_j\Sigma^{-1}X`:

* expected REML information (times 2)
  :math:`I_{ij} = \operatorname{tr}(G_i\Sigma^{-1}G_j\Sigma^{-1}) - 2\operatorname{tr}(\Phi Q_{ij})
  + \operatorname{tr}(\Phi P_i\Phi P_j)`, :math:`W = 2I^{-1}` (pseudo-inverse if
  ill-conditioned);
* adjusted covariance :math:`\Phi_A = \Phi + 2\Phi\big[\sum_{ij}W_{ij}(Q_{ij} - P_i\Phi P_j)\big]\Phi`;
* for ``L`` (q × p), :math:`\Theta = L^\top(L\Phi L^\top)^{-1}L`, :math:`u_i = \Theta\Phi P_i\Phi`,
  :math:`A_1 = \sum_{ij}W_{ij}\operatorname{tr}u_i\operatorname{tr}u_j`,
  :math:`A_2 = \sum_{ij}W_{ij}\operatorname{tr}(u_iu_j)`, and pbkrtest's ``Lb_ddf`` /
  ``.KR_adjust`` formulas for the denominator df ``m`` and the F scaling.

Every variance component enters, also one estimated at 0 (as pbkrtest: at singular fits
Kenward–Roger then differs strongly from the fixed-effects model). Validated against pbkrtest
on unweighted fits only: pbkrtest is wrong for weighted models in the Debian versions.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from exprlmm.assoc.designs.reml import VarianceFit

__all__ = ["kenward_roger_test"]


def _kr_pieces(fit: VarianceFit, x: np.ndarray, kernels, weights):
    g = fit.beta.shape[0]
    n = x.shape[0]
    if weights is None:
        resid = np.broadcast_to(np.eye(n), (g, n, n))
    else:
        w = np.asarray(weights, dtype=np.float64).T
        resid = np.einsum("gn,nm->gnm", 1.0 / w, np.eye(n))
    comps = [*(np.asarray(k, dtype=np.float64) for k in kernels), resid]
    sig = [fit.sigma2[:, k] for k in range(1, len(kernels) + 1)] + [fit.sigma2[:, 0]]
    sigma = sum(s[:, None, None] * c for s, c in zip(sig, comps, strict=True))
    sinv = np.linalg.inv(sigma)
    phi = fit.cov
    tt = sinv @ x  # (G, N, p)
    hh = [np.matmul(c, sinv) for c in comps]  # G_i Σ⁻¹
    oo = [h @ x for h in hh]  # G_i Σ⁻¹ X
    m = len(comps)
    pp = [-(np.swapaxes(o, 1, 2) @ tt) for o in oo]
    qq = {}
    for i in range(m):
        for j in range(i, m):
            qq[i, j] = np.swapaxes(oo[i], 1, 2) @ sinv @ oo[j]
            qq[j, i] = np.swapaxes(qq[i, j], 1, 2)
    ie2 = np.empty((g, m, m))
    for i in range(m):
        for j in range(i, m):
            ktr = np.einsum("gab,gba->g", hh[i], hh[j])
            value = (
                ktr
                - 2.0 * np.einsum("gab,gab->g", phi, qq[i, j])
                + np.einsum("gab,gab->g", phi @ pp[i], pp[j] @ phi)
            )
            ie2[:, i, j] = ie2[:, j, i] = value
    cond = np.min(np.abs(np.linalg.eigvalsh(ie2)), axis=1)
    ww = np.zeros_like(ie2)
    good = cond > 1e-10
    if good.any():
        ww[good] = 2.0 * np.linalg.inv(ie2[good])
    if (~good).any():
        ww[~good] = 2.0 * np.linalg.pinv(ie2[~good])
    uu = np.zeros_like(phi)
    for i in range(m):
        for j in range(m):
            uu = uu + ww[:, i, j, None, None] * (qq[i, j] - pp[i] @ phi @ pp[j])
    phi_a = phi + 2.0 * phi @ uu @ phi
    return phi_a, pp, ww


def _ddf(lmat, phi, pp, ww):
    """Denominator df and F scaling (pbkrtest ``Lb_ddf`` / ``.KR_adjust``) per gene."""
    q = lmat.shape[0]
    mid = np.linalg.inv(np.einsum("ap,gpr,br->gab", lmat, phi, lmat))
    theta = np.einsum("ap,gab,br->gpr", lmat, mid, lmat)
    theta_phi = theta @ phi
    u = [theta_phi @ p @ phi for p in pp]
    m = len(pp)
    a1 = 0.0
    a2 = 0.0
    for i in range(m):
        for j in range(m):
            tr_i = np.trace(u[i], axis1=1, axis2=2)
            tr_j = np.trace(u[j], axis1=1, axis2=2)
            a1 = a1 + ww[:, i, j] * tr_i * tr_j
            a2 = a2 + ww[:, i, j] * np.einsum("gab,gba->g", u[i], u[j])
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (a1 + 6.0 * a2) / (2.0 * q)
        gg = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        den = 3 * q + 2 * (1 - gg)
        c1, c2, c3 = gg / den, (q - gg) / den, (q + 2 - gg) / den
        v0 = 1 + c1 * b
        v1 = 1 - c2 * b
        v2 = 1 - c3 * b
        v0 = np.where(np.abs(v0) < 1e-10, 0.0, v0)
        x1 = 1 - a2 / q
        ratio = np.where((np.abs(x1) < 1e-14) & (np.abs(v1) < 1e-14), 1.0, x1 / v1)
        rho = 1.0 / q * ratio**2 * v0 / v2
        df2 = 4 + (q + 2) / (q * rho - 1)
        scaling = np.where(np.abs(df2 - 2) < 0.01, 1.0, df2 * (1 - a2 / q) / (df2 - 2))
    return df2, scaling


def kenward_roger_test(fit: VarianceFit, x, kernels, contrast, *, weights=None) -> dict:
    r"""Kenward–Roger test of :math:`L\beta = 0` for every gene (REML fits).

    Parameters
    ----------
    fit
        Per-gene REML fit (:func:`exprlmm.assoc.designs.reml.fit_variance_components`).
    x, kernels, weights
        The design, kernels and weights the fit was made with.
    contrast
        ``(p,)`` vector (t test with the adjusted SE, as lmerTest ``contest1D``) or ``q × p``
        matrix (scaled F test, as lmerTest's ``anova(ddf = "Kenward-Roger")``).

    Returns
    -------
    dict
        ``estimate``, ``se`` (adjusted; NaN for q > 1), ``stat`` (t, or scaled F), ``df``,
        ``ndf``, ``pvalue``.
    """
    if fit.method != "reml":
        raise ValueError("Kenward–Roger needs a REML fit")
    x = np.asarray(x, dtype=np.float64)
    lmat = np.atleast_2d(np.asarray(contrast, dtype=np.float64))
    q = lmat.shape[0]
    g = fit.beta.shape[0]
    phi_a, pp, ww = _kr_pieces(fit, x, kernels, weights)
    df2, scaling = _ddf(lmat, fit.cov, pp, ww)
    if q == 1:
        c = lmat[0]
        est = fit.beta @ c
        se = np.sqrt(np.einsum("p,gpr,r->g", c, phi_a, c))
        t = est / se
        return {
            "estimate": est,
            "se": se,
            "stat": t,
            "df": df2,
            "ndf": np.ones(g),
            "pvalue": 2.0 * stats.t.sf(np.abs(t), df2),
        }
    lb = fit.beta @ lmat.T  # (G, q)
    vl = np.einsum("ap,gpr,br->gab", lmat, phi_a, lmat)
    wald = np.einsum("ga,ga->g", lb, np.linalg.solve(vl, lb[..., None])[..., 0])
    fstat = scaling * wald / q
    return {
        "estimate": np.full(g, np.nan),
        "se": np.full(g, np.nan),
        "stat": fstat,
        "df": df2,
        "ndf": np.full(g, float(q)),
        "pvalue": stats.f.sf(fstat, q, df2),
    }
