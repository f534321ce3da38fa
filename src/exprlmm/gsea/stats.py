"""NES, nominal p, FDR q and FWER from observed and null enrichment scores, as GSEA 4.x does.

Pure maths. Definitions (GSEA desktop 4.x, classes Norms.MeanDivPosNegSeperate,
PValueCalculatorImpls, SkewCorrectedFdrStruc, XMath; "≥ 0" counts as positive and "≤ 0" as
negative, so a null ES of exactly 0 counts on both sides):

* NES = ES / mean{null ES ≥ 0} if ES ≥ 0, else ES / |mean{null ES ≤ 0}|; every null ES is
  normalised the same way (by its own sign's mean) to give null NES.
* nominal p = #{same-signed null ES strictly beyond ES} / #{same-signed null ES}.
* FDR q (NES* ≥ 0) = numerator / denominator with
  numerator = mean over permutation columns c (with at least one null NES ≥ 0) of
  #{null NES in column c ≥ NES*} / #{null NES in column c ≥ 0}, the null NES of all gene sets
  pooled per column; denominator = (rank of NES* among observed NES sorted decreasingly, 1-based)
  / #{observed NES ≥ 0}; capped at 1. Mirror image (≤, increasing order) for NES* < 0.
* FWER (NES* ≥ 0) = #{columns whose largest null NES over all sets > NES*} / #columns; mirror
  image with the smallest for NES* < 0.

Arithmetic follows the Broad tool's float32 where it matters for ties: ES are compared as
float32, means and NES are float32.

Null layout. Nulls arrive in chunks of columns (permutations): a matrix with one row per null
"source" (a distinct set size in fast mode, a gene set in broad mode); gene set g reads row
``row_of_set[g]``. In fast mode sets of equal size share a row, so gene set g reads its row
with a cyclic shift of g columns inside each chunk: within one column, different sets then see
different random sets (as in the Broad tool, where each set has its own draws), while each
set's null distribution is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PermutationStats",
    "assemble",
    "bh_adjust",
    "fdr_and_fwer",
    "normalise",
    "permutation_stats",
]


@dataclass(frozen=True)
class PermutationStats:
    """Per-set permutation statistics (arrays aligned with the observed ES)."""

    nes: NDArray[np.float64]
    pvalue: NDArray[np.float64]
    fdr: NDArray[np.float64]
    fwer: NDArray[np.float64]
    n_null_same_sign: NDArray[np.int64]
    n_null_beyond: NDArray[np.int64]
    mean_pos: NDArray[np.float64]
    mean_neg: NDArray[np.float64]
    n_perm: int


def bh_adjust(p: NDArray[np.floating]) -> NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values; NaN stays NaN and is not counted."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out[order] = np.minimum(ranked, 1.0)
    return out


def _shifted(
    chunk: NDArray[np.float32], row_of_set: NDArray[np.intp], shift: bool
) -> NDArray[np.float32]:
    """Per-set view of a null chunk: (n_sets × C), with set g shifted by g columns."""
    n_cols = chunk.shape[1]
    if not shift:
        return chunk[row_of_set]
    cols = (np.arange(n_cols)[None, :] + np.arange(row_of_set.size)[:, None]) % n_cols
    return chunk[row_of_set[:, None], cols]


def _tail_weights_sum(
    values: NDArray[np.float32],
    cols: NDArray[np.integer],
    col_weights: NDArray[np.float64],
    queries: NDArray[np.float32],
) -> NDArray[np.float64]:
    """For each query t: Σ col_weights[cols[i]] over the values[i] ≥ t.

    The values are sorted as one integer key (order-preserving bits of the float32 value in
    the high word, the column in the low word): a plain integer sort, much faster than an
    argsort, and ties need no particular order since a query takes all of a tie or none.
    """
    if values.size == 0 or queries.size == 0:
        return np.zeros(queries.shape)
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    neg = bits >= np.uint32(0x80000000)
    key = np.where(neg, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
    key <<= np.uint64(32)
    key |= cols.astype(np.uint64)
    key.sort()
    high = (key >> np.uint64(32)).astype(np.uint32)
    v = np.where(high >= np.uint32(0x80000000), high & np.uint32(0x7FFFFFFF), ~high)
    v = v.view(np.float32)
    w = col_weights[(key & np.uint64(0xFFFFFFFF)).astype(np.intp)]
    cw = np.concatenate([[0.0], np.cumsum(w[::-1])])  # suffix sums
    first = np.searchsorted(v, queries, side="left")  # v[first:] ≥ t
    return cw[v.size - first]


def normalise(
    es32: NDArray[np.float32],
    rows: NDArray[np.intp],
    sum_pos: NDArray[np.float64],
    sum_neg: NDArray[np.float64],
    cnt_pos: NDArray[np.int64],
    cnt_neg: NDArray[np.int64],
    beyond: NDArray[np.int64],
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.int64], NDArray, NDArray]:
    """NES, nominal p and same-sign counts from pass 1's per-row sums and per-set counts.

    mean⁺_r = Σ{null ≥ 0} / #{null ≥ 0} and mean⁻_r likewise (float32), NES = ES / mean⁺ or
    ES / |mean⁻| by the sign of ES, p = beyond / #same-signed null (NaN when there is none).
    Returns ``(nes, pvalue, same, mean_pos, mean_neg)``.
    """
    pos_obs = es32 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pos = (sum_pos / cnt_pos).astype(np.float32)
        mean_neg = (sum_neg / cnt_neg).astype(np.float32)
        same = np.where(pos_obs, cnt_pos[rows], cnt_neg[rows])
        pvalue = np.where(same > 0, beyond / np.maximum(same, 1), np.nan)
        nes = np.where(pos_obs, es32 / mean_pos[rows], es32 / np.abs(mean_neg[rows]))
    return nes.astype(np.float32), pvalue, same, mean_pos, mean_neg


def fdr_and_fwer(
    nes: NDArray[np.float32],
    numr_sum: NDArray[np.float64],
    ncols_pos: int,
    ncols_neg: int,
    cmax: NDArray[np.float32],
    cmin: NDArray[np.float32],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """FDR q and FWER from pass 2's accumulators (see the module docstring).

    ``numr_sum[g]`` is Σ over columns of the fraction of the column's same-signed null NES
    at or beyond NES_g; ``ncols_pos``/``ncols_neg`` count the columns with any null NES ≥ 0 /
    ≤ 0; ``cmax``/``cmin`` are each column's largest / smallest null NES.
    """
    n_sets = nes.size
    pos = nes >= 0
    n_obs_pos = max(int(pos.sum()), 1)
    n_obs_neg = max(int((nes <= 0).sum()), 1)
    rank_desc = np.empty(n_sets, dtype=np.int64)
    rank_desc[np.argsort(-nes, kind="stable")] = np.arange(n_sets)
    rank_asc = np.empty(n_sets, dtype=np.int64)
    rank_asc[np.argsort(nes, kind="stable")] = np.arange(n_sets)
    with np.errstate(invalid="ignore", divide="ignore"):
        numr = np.where(
            pos,
            numr_sum / ncols_pos if ncols_pos else np.nan,
            numr_sum / ncols_neg if ncols_neg else np.nan,
        )
        denr = np.where(pos, (rank_desc + 1) / n_obs_pos, (rank_asc + 1) / n_obs_neg)
        fdr = np.minimum(numr / denr, 1.0)
    above = cmax.size - np.searchsorted(np.sort(cmax), nes, side="right")
    below = np.searchsorted(np.sort(cmin), nes, side="left")
    fwer = np.where(pos, above / max(cmax.size, 1), below / max(cmin.size, 1))
    missing = np.isnan(nes)
    fdr[missing] = np.nan
    fwer[missing] = np.nan
    return fdr, fwer


def permutation_stats(
    es: NDArray[np.floating],
    row_of_set: NDArray[np.integer],
    chunks: Callable[[], Iterable[NDArray[np.float32]]],
    *,
    shift: bool,
) -> PermutationStats:
    """NES, nominal p, FDR and FWER (see module docstring).

    Parameters
    ----------
    es
        Observed ES per gene set.
    row_of_set
        Null row used by each set.
    chunks
        Called twice (two passes); each call yields the null chunks (rows × columns, float32)
        in the same order.
    shift
        Read set g's row with a cyclic shift of g columns within each chunk (fast mode).
    """
    es32 = np.asarray(es, dtype=np.float32)
    rows = np.asarray(row_of_set, dtype=np.intp)
    n_sets = es32.size
    n_rows = int(rows.max()) + 1 if n_sets else 0

    # ---- pass 1: per-row sums and counts; per-set exceedance counts -------------------
    sum_pos = np.zeros(n_rows)
    sum_neg = np.zeros(n_rows)
    cnt_pos = np.zeros(n_rows, dtype=np.int64)
    cnt_neg = np.zeros(n_rows, dtype=np.int64)
    beyond = np.zeros(n_sets, dtype=np.int64)
    n_perm = 0
    for chunk in chunks():
        n_perm += chunk.shape[1]
        nonneg = chunk >= 0
        nonpos = chunk <= 0
        sum_pos += np.where(nonneg, chunk, 0).sum(axis=1, dtype=np.float64)
        sum_neg += np.where(nonpos, chunk, 0).sum(axis=1, dtype=np.float64)
        cnt_pos += nonneg.sum(axis=1)
        cnt_neg += nonpos.sum(axis=1)
        srt = np.sort(chunk, axis=1)
        for r in np.unique(rows):
            members = np.flatnonzero(rows == r)
            q = es32[members]
            hi = srt.shape[1] - np.searchsorted(srt[r], q, side="right")  # > q
            lo = np.searchsorted(srt[r], q, side="left")  # < q
            beyond[members] += np.where(q >= 0, hi, lo)
    nes, pvalue, same, mean_pos, mean_neg = normalise(
        es32, rows, sum_pos, sum_neg, cnt_pos, cnt_neg, beyond
    )

    # ---- pass 2: null NES per column -> FDR numerators and FWER ------------------------
    numr_sum = np.zeros(n_sets)
    ncols_pos = 0
    ncols_neg = 0
    colmax: list[NDArray[np.float32]] = []
    colmin: list[NDArray[np.float32]] = []
    q_pos = np.flatnonzero(nes >= 0)
    q_neg = np.flatnonzero(nes < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm_pos = np.float32(1) / mean_pos
        norm_neg = np.float32(1) / np.abs(mean_neg)
    for chunk in chunks():
        with np.errstate(invalid="ignore"):
            nchunk = np.where(chunk >= 0, chunk * norm_pos[:, None], chunk * norm_neg[:, None])
        x = _shifted(nchunk.astype(np.float32), rows, shift)  # sets × columns
        col_index = np.arange(x.shape[1], dtype=np.uint32)
        with np.errstate(invalid="ignore"):
            colmax.append(np.nanmax(np.where(np.isnan(x), -np.inf, x), axis=0))
            colmin.append(np.nanmin(np.where(np.isnan(x), np.inf, x), axis=0))
        nonneg = x >= 0
        nonpos = x <= 0
        d_pos = nonneg.sum(axis=0)
        d_neg = nonpos.sum(axis=0)
        ncols_pos += int((d_pos > 0).sum())
        ncols_neg += int((d_neg > 0).sum())
        if q_pos.size:
            cols = np.broadcast_to(col_index, x.shape)[nonneg]
            numr_sum[q_pos] += _tail_weights_sum(
                x[nonneg], cols, 1.0 / np.maximum(d_pos, 1), nes[q_pos]
            )
        if q_neg.size:
            cols = np.broadcast_to(col_index, x.shape)[nonpos]
            # count x ≤ t  <=>  (-x) ≥ (-t)
            numr_sum[q_neg] += _tail_weights_sum(
                -x[nonpos], cols, 1.0 / np.maximum(d_neg, 1), -nes[q_neg]
            )
    cmax = np.concatenate(colmax) if colmax else np.zeros(0, np.float32)
    cmin = np.concatenate(colmin) if colmin else np.zeros(0, np.float32)
    fdr, fwer = fdr_and_fwer(nes, numr_sum, ncols_pos, ncols_neg, cmax, cmin)
    return assemble(nes, pvalue, fdr, fwer, same, beyond, mean_pos, mean_neg, n_perm)


def assemble(nes, pvalue, fdr, fwer, same, beyond, mean_pos, mean_neg, n_perm) -> PermutationStats:
    """`PermutationStats` from the host arrays of both passes (float64 / int64)."""
    return PermutationStats(
        nes=np.asarray(nes, dtype=np.float64),
        pvalue=np.asarray(pvalue, dtype=np.float64),
        fdr=fdr,
        fwer=fwer,
        n_null_same_sign=np.asarray(same, dtype=np.int64),
        n_null_beyond=np.asarray(beyond, dtype=np.int64),
        mean_pos=np.asarray(mean_pos, dtype=np.float64),
        mean_neg=np.asarray(mean_neg, dtype=np.float64),
        n_perm=int(n_perm),
    )
