r"""RNA-seq counts: low-count filter, library-size normalisation, logCPM and voom weights.

Ports of the edgeR/limma steps (same defaults, checked against R in the tests):

* :func:`filter_by_expr` — edgeR ``filterByExpr``: keep a gene with CPM ≥ ``min_count`` /
  median(library size)·1e6 in at least ``n_min`` samples (``n_min = 1/max(hat(X))``, shrunk
  towards ``large_n`` above it) and a total count ≥ ``min_total_count``.
* :func:`calc_norm_factors` — edgeR ``calcNormFactors``: TMM (trimmed mean of M values,
  reference = the sample whose upper-quartile factor is closest to their mean; 30 % log-ratio
  and 5 % abundance trimming; precision weights :math:`(n_O - o)/(n_O o) + (n_R - r)/(n_R r)`),
  or upper quartile; factors scaled to geometric mean 1.
* :func:`voom` — limma ``voom``: :math:`E = \log_2\{(c + 0.5)/(L + 1)\cdot 10^6\}` with the
  effective library size :math:`L` = library size × factor; a least-squares fit of ``E`` on
  the design gives per-gene :math:`\sqrt{\hat\sigma_g}` against the mean log count, a LOWESS
  trend (span 0.5) through them, and weights :math:`w_{gi} = 1/\text{trend}(\log_2 \hat c_{gi})^4`
  at the fitted counts :math:`\hat c_{gi}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["VoomResult", "calc_norm_factors", "filter_by_expr", "log_cpm", "voom"]


def _check_counts(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if not np.all(np.isfinite(counts)):
        raise ValueError("counts must be finite")
    if np.any(counts < 0):
        raise ValueError("counts must not be negative")
    return counts


def filter_by_expr(
    counts,
    design=None,
    *,
    min_count: float = 10.0,
    min_total_count: float = 15.0,
    large_n: int = 10,
    min_prop: float = 0.7,
) -> np.ndarray:
    """Boolean mask of genes to keep (edgeR ``filterByExpr``); ``counts`` is samples × genes."""
    counts = _check_counts(counts)
    n = counts.shape[0]
    lib = counts.sum(axis=1)
    if design is None:
        min_size = float(n)
    else:
        x = np.asarray(design, dtype=np.float64)
        q, _ = np.linalg.qr(x)
        min_size = 1.0 / float(np.max((q * q).sum(axis=1)))
    if min_size > large_n:
        min_size = large_n + (min_size - large_n) * min_prop
    cutoff = min_count / float(np.median(lib)) * 1e6
    cpm = counts / lib[:, None] * 1e6
    tol = 1e-14
    keep_cpm = (cpm >= cutoff).sum(axis=0) >= min_size - tol
    keep_total = counts.sum(axis=0) >= min_total_count - tol
    return keep_cpm & keep_total


def _upper_quartile(counts: np.ndarray, lib: np.ndarray, p: float = 0.75) -> np.ndarray:
    return np.quantile(counts, p, axis=1) / lib


def _tmm_factor(obs, ref, n_obs, n_ref, logratio_trim=0.3, sum_trim=0.05) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log2((obs / n_obs) / (ref / n_ref))
        abs_e = (np.log2(obs / n_obs) + np.log2(ref / n_ref)) / 2
        v = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    fin = np.isfinite(log_r) & np.isfinite(abs_e) & (abs_e > -1e10)
    log_r, abs_e, v = log_r[fin], abs_e[fin], v[fin]
    if np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = log_r.size
    lo_l = np.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = np.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    rank_r = stats.rankdata(log_r)
    rank_e = stats.rankdata(abs_e)
    keep = (rank_r >= lo_l) & (rank_r <= hi_l) & (rank_e >= lo_s) & (rank_e <= hi_s)
    f = np.sum(log_r[keep] / v[keep]) / np.sum(1.0 / v[keep])
    return float(2.0**f) if np.isfinite(f) else 1.0


def calc_norm_factors(
    counts, *, method: Literal["TMM", "upperquartile", "none"] = "TMM"
) -> np.ndarray:
    """Normalisation factors per sample (edgeR ``calcNormFactors``); ``counts`` samples × genes."""
    counts = _check_counts(counts)
    n = counts.shape[0]
    lib = counts.sum(axis=1)
    x = counts[:, (counts > 0).any(axis=0)]
    if x.shape[1] == 0 or n == 1:
        method = "none"
    if method == "TMM":
        f75 = _upper_quartile(x, lib)
        if np.median(f75) < 1e-20:
            ref = int(np.argmax(np.sqrt(x).sum(axis=1)))
        else:
            ref = int(np.argmin(np.abs(f75 - f75.mean())))
        f = np.array([_tmm_factor(x[i], x[ref], lib[i], lib[ref]) for i in range(n)])
    elif method == "upperquartile":
        f = _upper_quartile(x, lib)
    elif method == "none":
        f = np.ones(n)
    else:
        raise ValueError(f"method must be 'TMM', 'upperquartile' or 'none', got {method!r}")
    return f / np.exp(np.mean(np.log(f)))


def log_cpm(counts, lib_size) -> np.ndarray:
    r""":math:`\log_2\{(c + 0.5)/(L + 1)\cdot 10^6\}` (voom's logCPM), samples × genes."""
    counts = _check_counts(counts)
    lib = np.asarray(lib_size, dtype=np.float64)
    return np.log2((counts + 0.5) / (lib[:, None] + 1.0) * 1e6)


@dataclass(frozen=True)
class VoomResult:
    """``expression`` (logCPM) and ``weights`` (samples × genes), the trend and library sizes."""

    expression: np.ndarray
    weights: np.ndarray
    lib_size: np.ndarray
    trend_x: np.ndarray
    trend_y: np.ndarray


def _lowest(x, y, xs, nleft, nright, rw):
    """One local weighted linear fit at ``xs`` (R ``lowest``, 0-based, inclusive bounds)."""
    n = x.size
    rng = x[-1] - x[0]
    h = max(xs - x[nleft], x[nright] - xs)
    h9, h1 = 0.999 * h, 0.001 * h
    # candidate points: from nleft up to (and including ties beyond) the first x > xs + h9
    stop = int(np.searchsorted(x, xs + h9, side="right"))
    j = np.arange(nleft, max(stop, nleft))
    if j.size == 0:
        return 0.0, False
    r = np.abs(x[j] - xs)
    w = np.where(r <= h1, 1.0, (1.0 - (r / h) ** 3) ** 3) if h > 0 else np.ones(j.size)
    w = np.where(r <= h9, w, 0.0)
    if rw is not None:
        w = w * rw[j]
    a = w.sum()
    if a <= 0.0:
        return 0.0, False
    w = w / a
    if h > 0.0:
        a = np.sum(w * x[j])
        b = xs - a
        c = np.sum(w * (x[j] - a) ** 2)
        if np.sqrt(c) > 0.001 * rng:
            w = w * (b / c * (x[j] - a) + 1.0)
    del n
    return float(np.sum(w * y[j])), True


def _lowess(x: np.ndarray, y: np.ndarray, span: float, iterations: int = 3):
    """R's ``lowess(x, y, f = span)`` (``clowess``: delta = 1 % of the range), sorted by x.

    A port of R's C routine, including its robustness weights (bisquare of 6·median|res|
    with the 0.001/0.999 cut-offs) and the linear interpolation over points closer than
    ``delta``; statsmodels' lowess differs from it by ~1e-6.
    """
    order = np.argsort(x, kind="stable")
    x, y = np.asarray(x, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    n = x.size
    delta = 0.01 * (x[-1] - x[0])
    ns = max(2, min(n, int(span * n + 1e-7)))
    ys = np.empty(n)
    rw = None
    for it in range(iterations + 1):
        nleft, nright, last, i = 0, ns - 1, -1, 0
        while True:
            if nright < n - 1:
                if x[i] - x[nleft] > x[nright + 1] - x[i]:
                    nleft += 1
                    nright += 1
                    continue
            value, ok = _lowest(x, y, x[i], nleft, nright, rw)
            ys[i] = value if ok else y[i]
            if last < i - 1:
                denom = x[i] - x[last]
                jj = np.arange(last + 1, i)
                alpha = (x[jj] - x[last]) / denom
                ys[jj] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        res = y - ys
        if it == iterations:
            break
        sc = np.mean(np.abs(res))
        cmad = 6.0 * float(np.median(np.abs(res)))
        if cmad < 1e-7 * sc:
            break
        r = np.abs(res)
        rw = np.where(
            r <= 0.001 * cmad, 1.0, np.where(r <= 0.999 * cmad, (1 - (r / cmad) ** 2) ** 2, 0.0)
        )
    return x, ys


def voom(counts, design, *, lib_size=None, span: float = 0.5) -> VoomResult:
    """limma ``voom`` precision weights from the fitted design; ``counts`` samples × genes."""
    counts = _check_counts(counts)
    x = np.asarray(design, dtype=np.float64)
    lib = counts.sum(axis=1) if lib_size is None else np.asarray(lib_size, dtype=np.float64)
    e = log_cpm(counts, lib)
    n, p = x.shape
    coef, *_ = np.linalg.lstsq(x, e, rcond=None)  # (p, G)
    fitted = x @ coef
    resid = e - fitted
    sigma = np.sqrt((resid * resid).sum(axis=0) / (n - p))
    amean = e.mean(axis=0)
    sx = amean + np.mean(np.log2(lib + 1.0)) - np.log2(1e6)
    sy = np.sqrt(sigma)
    nonzero = counts.sum(axis=0) > 0
    lx, ly = _lowess(sx[nonzero], sy[nonzero], span)
    ux, inverse = np.unique(lx, return_inverse=True)
    uy = np.bincount(inverse, weights=ly) / np.bincount(inverse)
    fitted_count = 1e-6 * (2.0**fitted) * (lib[:, None] + 1.0)
    trend = np.interp(np.log2(fitted_count), ux, uy)
    return VoomResult(e, 1.0 / trend**4, lib, ux, uy)
