"""q-values without q = 0: from tail p-values, and the paper's LOESS extrapolation.

Pure maths.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exprlmm.gsea.stats import bh_adjust

__all__ = ["loess_extrapolate_q", "q_from_tails"]


def q_from_tails(pvalue_tail: NDArray[np.floating], nes: NDArray[np.floating]) -> NDArray:
    """Benjamini–Hochberg q from tail p-values, separately for NES ≥ 0 and NES < 0.

    The tail p-values are positive and resolve far below 1/permutations, so the q-values are
    finite, positive and ordered like the p-values within each direction (the Broad FDR is
    also computed per direction).
    """
    p = np.asarray(pvalue_tail, dtype=np.float64)
    x = np.asarray(nes, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    for side in (x >= 0, x < 0):
        idx = np.flatnonzero(side)
        if idx.size:
            q[idx] = bh_adjust(p[idx])
    return q


def loess_extrapolate_q(
    fdr: NDArray[np.floating],
    nes: NDArray[np.floating],
    *,
    frac: float = 0.75,
    tail_fraction: float = 0.25,
) -> NDArray[np.float64]:
    """Replace q = 0 by a LOESS extrapolation of log10 q against |NES| (Yao et al.).

    Per direction (NES ≥ 0, NES < 0): fit ``statsmodels`` lowess of log10 q on |NES| over the
    sets with 0 < q ≤ 1; extrapolate to the sets with q = 0 along the straight line fitted to
    the smoothed curve over its top ``tail_fraction`` of |NES| (lowess itself does not
    extrapolate). Extrapolated q are capped at the smallest observed positive q of that
    direction and made non-increasing in |NES|. With fewer than 5 positive q in a direction,
    q = 0 are left as they are. Other q are returned unchanged.
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    q = np.asarray(fdr, dtype=np.float64).copy()
    x = np.abs(np.asarray(nes, dtype=np.float64))
    signs = np.asarray(nes, dtype=np.float64) >= 0
    for side in (signs, ~signs):
        fit_idx = np.flatnonzero(side & (q > 0) & np.isfinite(q) & np.isfinite(x))
        zero_idx = np.flatnonzero(side & (q == 0) & np.isfinite(x))
        if zero_idx.size == 0 or fit_idx.size < 5:
            continue
        xf = x[fit_idx]
        yf = np.log10(q[fit_idx])
        smooth = lowess(yf, xf, frac=frac, return_sorted=True)
        sx, sy = smooth[:, 0], smooth[:, 1]
        n_tail = max(3, int(np.ceil(tail_fraction * sx.size)))
        tx, ty = sx[-n_tail:], sy[-n_tail:]
        if np.ptp(tx) > 0:
            slope, intercept = np.polyfit(tx, ty, 1)
        else:
            slope, intercept = 0.0, float(ty.mean())
        qmin = q[fit_idx].min()
        if slope >= 0:
            pred = np.full(zero_idx.size, qmin)
        else:
            pred = np.minimum(10.0 ** (intercept + slope * x[zero_idx]), qmin)
        order = np.argsort(x[zero_idx], kind="stable")
        pred[order] = np.minimum.accumulate(pred[order])
        q[zero_idx] = pred
    return q
