"""Enrichment scores (weighted Kolmogorov–Smirnov running sum), in O(k) from hit positions.

Pure maths: arrays in, arrays out.

For a ranked list of N genes with scores r_1 ≥ … ≥ r_N, a gene set S with k genes at sorted
0-based positions p_0 < … < p_{k-1} and weight exponent p (GSEA's "weighted" scheme is p = 1),
the running sum after position j is (Subramanian et al. 2005, PNAS 102:15545)

    RES(j) = Σ_{i: p_i ≤ j} |r_{p_i}|^p / N_R  −  #{misses ≤ j} / (N − k),
    N_R = Σ_i |r_{p_i}|^p .

RES rises only at hits and falls only at misses, so its maximum is reached at a hit and its
minimum just before a hit. With c_i = Σ_{m ≤ i} w_m and m_i = p_i − i misses before hit i:

    peak_i   = c_i / N_R − m_i / (N − k)            (value at hit i)
    trough_i = (c_i − w_i) / N_R − m_i / (N − k)    (value just before hit i)

ES = the signed maximum deviation from zero; on a tie in |.| the earlier point wins (GSEA's
``Math.abs(es) < Math.abs(running)`` update rule). When all hit weights are zero (e.g. an
all-zero ranking) the hits get equal weights 1/k (the p = 0 limit) instead of 0/0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "EnrichmentScores",
    "enrichment_scores",
    "leading_edge",
    "running_sum",
]


@dataclass(frozen=True)
class EnrichmentScores:
    """ES of each row of a position matrix.

    Attributes
    ----------
    es : float64 (m,)
        Signed maximum deviation.
    rank_at_es : int64 (m,)
        0-based list position where ES is reached (as GSEA's RANK_AT_ES: the hit's position for
        a peak, the position just before the hit for a trough).
    """

    es: NDArray[np.float64]
    rank_at_es: NDArray[np.int64]


def enrichment_scores(
    positions: NDArray[np.integer],
    weights: NDArray[np.floating],
    n_genes: int,
) -> EnrichmentScores:
    """ES for each row of ``positions`` (m × k, each row sorted ascending, no repeats).

    Parameters
    ----------
    positions
        Hit positions (0-based ranks), one gene set per row, sorted within rows.
    weights
        |score|^p for every position of the ranked list (length ``n_genes``).
    n_genes
        N, the length of the ranked list.
    """
    pos = np.asarray(positions)
    if pos.ndim != 2:
        raise ValueError("positions must be a 2-D array (sets × hits)")
    m, k = pos.shape
    if k == 0:
        raise ValueError("gene sets must have at least one hit")
    w = np.asarray(weights, dtype=np.float64)[pos]
    cs = np.cumsum(w, axis=1)
    tot = cs[:, -1:].copy()
    zero = tot[:, 0] <= 0
    if zero.any():  # equal weights where a set has no weight at all
        w[zero] = 1.0
        cs[zero] = np.arange(1, k + 1, dtype=np.float64)
        tot[zero] = float(k)
    inv_tot = 1.0 / tot
    misses = (pos - np.arange(k, dtype=pos.dtype)).astype(np.float64)
    if n_genes > k:
        misses *= 1.0 / (n_genes - k)
    else:
        misses[:] = 0.0
    peak = cs * inv_tot
    peak -= misses
    trough = peak - w * inv_tot
    i_max = np.argmax(peak, axis=1)
    i_min = np.argmin(trough, axis=1)
    rows = np.arange(m)
    vmax = peak[rows, i_max]
    vmin = trough[rows, i_min]
    use_min = (-vmin > vmax) | ((-vmin == vmax) & (i_min <= i_max))
    es = np.where(use_min, vmin, vmax)
    rank = np.where(use_min, pos[rows, i_min] - 1, pos[rows, i_max]).astype(np.int64)
    return EnrichmentScores(es=es, rank_at_es=rank)


def running_sum(
    hit_positions: NDArray[np.integer], weights: NDArray[np.floating], n_genes: int
) -> NDArray[np.float64]:
    """The full running sum RES(0 … N−1) of one gene set (for plots)."""
    pos = np.sort(np.asarray(hit_positions))
    k = pos.size
    hit = np.zeros(n_genes, dtype=bool)
    hit[pos] = True
    w = np.asarray(weights, dtype=np.float64)
    step_hit = np.where(hit, w, 0.0)
    tot = step_hit.sum()
    step_hit = step_hit / tot if tot > 0 else hit / k
    step_miss = (~hit) / (n_genes - k) if n_genes > k else np.zeros(n_genes)
    return np.cumsum(step_hit - step_miss)


def leading_edge(
    hit_positions: NDArray[np.integer], es: float, rank_at_es: int, n_genes: int
) -> tuple[NDArray[np.int64], float, float, float]:
    """Leading-edge hits and GSEA's tag %, list % and signal (GSEA's GeneSetSignal).

    For ES ≥ 0 the leading edge is the hits at positions ≤ rank_at_es, for ES < 0 those at
    positions ≥ rank_at_es.

    tags = |leading edge| / k;  list = rank_at_es / N (ES ≥ 0) or (N − rank_at_es) / N;
    signal = tags / (1 − list) · (N − k) / N   (as GSEA 4.x's GeneSetSignalImpl computes it;
    the user guide prints tags · (1 − list) · N / (N − k)).
    """
    pos = np.sort(np.asarray(hit_positions, dtype=np.int64))
    k = pos.size
    if es >= 0:
        core = pos[pos <= rank_at_es]
        list_frac = rank_at_es / n_genes
    else:
        core = pos[pos >= rank_at_es]
        list_frac = (n_genes - rank_at_es) / n_genes
    tags = core.size / k
    with np.errstate(divide="ignore"):
        signal = tags / (1.0 - list_frac) * (n_genes - k) / n_genes if list_frac < 1 else np.inf
    return core, tags, list_frac, signal
