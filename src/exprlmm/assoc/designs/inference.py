r"""Small-sample tests of fixed effects for per-gene mixed models: Satterthwaite, as lmerTest.

For a contrast :math:`c` (one row of ``L``) with :math:`\Phi = \operatorname{Cov}(\hat\beta)`,
:math:`v = c^\top\Phi c`, its gradient in the variance parameters
:math:`g_k = c^\top (\partial\Phi/\partial\sigma_k^2) c` and :math:`A` the asymptotic covariance of
the variance parameters (inverse of minus the observed Hessian of the log-likelihood),

.. math:: t = c^\top\hat\beta/\sqrt v,\qquad \nu = \frac{2 v^2}{g^\top A g}

(Satterthwaite 1946; Kuznetsova, Brockhoff & Christensen 2017, lmerTest ``contest1D``).
:math:`\nu` does not depend on the parametrisation of the variance parameters at the optimum,
so it equals lmerTest's value computed in lme4's :math:`(\theta, \sigma)`.

A term with ``q > 1`` columns (a categorical variable) is tested by the F statistic of
lmerTest's ``contestMD``: with :math:`L\Phi L^\top = P D P^\top`,
:math:`F = \tfrac1q\sum_m (P_m^\top L\hat\beta)^2/d_m`, per-direction :math:`\nu_m` as above,
:math:`E = \sum_m \nu_m/(\nu_m - 2)` and denominator df :math:`2E/(E - q)` (2 if any
:math:`\nu_m \le 2`; their mean if they are all equal).

Singular fits (a variance component at 0): that component drops out of :math:`g` and
:math:`A`; with every component at 0 the estimates, SEs and :math:`\nu = N - p` are exactly
those of the fixed-effects model (``lm``), which is what lmerTest reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from exprlmm.assoc._common import benjamini_hochberg
from exprlmm.assoc.designs.reml import VarianceFit

__all__ = ["TEST_COLUMNS", "contrast_test", "term_tests"]

TEST_COLUMNS = ["gene", "term", "beta", "se", "df", "stat", "pvalue", "padj", "ndf", "test"]


def _nu(fit: VarianceFit, c: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Satterthwaite df of contrast ``c`` (p,) or per-gene ``c`` (G, p) with variance ``var``."""
    if c.ndim == 1:
        grad = np.einsum("p,gkpq,q->gk", c, fit.jacobian, c)
    else:
        grad = np.einsum("gp,gkpq,gq->gk", c, fit.jacobian, c)
    denom = np.einsum("gk,gkl,gl->g", grad, fit.vcov_varpar, grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = 2.0 * var * var / denom
    # empirical-Bayes moderation adds the prior df (0 otherwise), capped at the pooled df
    return np.minimum(nu + fit.df_prior, fit.df_cap)


def _ddf_from_nu(nu: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """lmerTest's ``get_Fstat_ddf`` for each gene (rows of ``nu``)."""
    q = nu.shape[1]
    if q == 1:
        return nu[:, 0]
    equal = np.all(np.abs(np.diff(nu, axis=1)) < tol, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.sum(nu / (nu - 2.0), axis=1)
        ddf = 2.0 * e / (e - q)
    ddf = np.where(np.any(nu <= 2.0, axis=1), 2.0, ddf)
    return np.where(equal, nu.mean(axis=1), ddf)


def contrast_test(fit: VarianceFit, contrast) -> dict[str, np.ndarray]:
    r"""Test :math:`L\beta = 0` for every gene (Satterthwaite).

    Parameters
    ----------
    fit
        Per-gene variance-component fit.
    contrast
        ``(p,)`` vector (t test) or ``q × p`` matrix (F test).

    Returns
    -------
    dict
        ``estimate``, ``se`` (NaN for ``q > 1``), ``stat`` (t, or F), ``df`` (denominator),
        ``ndf`` (numerator: 1 for t), ``pvalue`` (two-sided t, or upper F tail).
    """
    lmat = np.atleast_2d(np.asarray(contrast, dtype=np.float64))
    g = fit.beta.shape[0]
    if lmat.shape[0] == 1:
        c = lmat[0]
        est = fit.beta @ c
        var = np.einsum("p,gpq,q->g", c, fit.cov, c)
        se = np.sqrt(var)
        nu = _nu(fit, c, var)
        t = est / se
        return {
            "estimate": est,
            "se": se,
            "stat": t,
            "df": nu,
            "ndf": np.ones(g),
            "pvalue": 2.0 * stats.t.sf(np.abs(t), nu),
        }
    vl = np.einsum("ap,gpq,bq->gab", lmat, fit.cov, lmat)
    d, pvec = np.linalg.eigh(vl)  # ascending; lmerTest sorts descending (order is irrelevant)
    eps = np.sqrt(np.finfo(float).eps)
    pos = d > np.maximum(eps * d[:, -1:], 0.0)
    q = lmat.shape[0]
    if not np.all(pos):
        raise ValueError("the contrast matrix is rank deficient for some genes")
    ptl = np.einsum("gam,ap->gmp", pvec, lmat)  # rows: Pᵀ L
    proj = np.einsum("gmp,gp->gm", ptl, fit.beta)
    fvalue = np.sum(proj * proj / d, axis=1) / q
    nu = np.stack([_nu(fit, ptl[:, m], d[:, m]) for m in range(q)], axis=1)
    ddf = _ddf_from_nu(nu)
    return {
        "estimate": np.full(g, np.nan),
        "se": np.full(g, np.nan),
        "stat": fvalue,
        "df": ddf,
        "ndf": np.full(g, float(q)),
        "pvalue": stats.f.sf(fvalue, q, ddf),
    }


def term_tests(
    fit: VarianceFit,
    terms: dict[str, Sequence[int]],
    *,
    tested: Sequence[str],
    genes: Sequence[str],
    test_fn: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
) -> pd.DataFrame:
    """One tidy row per gene × tested term: ``gene term beta se df stat pvalue padj ndf test``.

    A one-column term is a t test (``beta``/``se`` its coefficient), a multi-column term an F
    test of all its columns (``beta``/``se`` NaN, ``stat`` = F, ``ndf`` numerator df).
    ``padj`` is Benjamini–Hochberg within each term across genes. ``test_fn(contrast)``
    replaces the Satterthwaite test (e.g. Kenward–Roger).
    """
    p = fit.beta.shape[1]
    frames = []
    for term in tested:
        cols = list(terms[term])
        lmat = np.eye(p)[cols]
        contrast = lmat[0] if len(cols) == 1 else lmat
        res = contrast_test(fit, contrast) if test_fn is None else test_fn(contrast)
        frames.append(
            pd.DataFrame(
                {
                    "gene": list(genes),
                    "term": term,
                    "beta": res["estimate"],
                    "se": res["se"],
                    "df": res["df"],
                    "stat": res["stat"],
                    "pvalue": res["pvalue"],
                    "padj": benjamini_hochberg(res["pvalue"]),
                    "ndf": res["ndf"],
                    "test": "t" if len(cols) == 1 else "F",
                },
                columns=TEST_COLUMNS,
            )
        )
    return pd.concat(frames, ignore_index=True)
