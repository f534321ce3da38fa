"""NES, nominal p, FDR q and FWER with the null kept on a torch device (``backend="torch"``).

The same statistics as `exprlmm.gsea.stats.permutation_stats` (see its module docstring for
the definitions and the null layout), computed where the null was drawn, so that only
per-set and per-column summaries cross to the host:

* pass 1, per chunk: per-row sums and counts of the null ES ≥ 0 and ≤ 0, and per set the
  count of same-signed null ES strictly beyond the observed ES (a direct comparison of the
  set's row with its ES, float32 as on the host);
* pass 2, per chunk: null NES (each row normalised by its own sign's mean, float32), read per
  set with the fast mode's cyclic shift; each column's largest and smallest null NES and its
  number of null NES ≥ 0 and ≤ 0; and the FDR numerators Σ_c #{null NES in c ≥ t} / #{null NES
  in c ≥ 0} for every observed NES t ≥ 0 (mirror image for t < 0), from one sort of the
  chunk's qualifying null NES with each value weighted by 1 / its column's count: a suffix sum
  of the sorted weights read at ``searchsorted(t)``.

The host finishes with `exprlmm.gsea.stats.normalise`, `exprlmm.gsea.stats.fdr_and_fwer` and
`exprlmm.gsea.stats.assemble` on those summaries (one number per set, row or column). Counts are exact; sums are float64 in
a different order than numpy's, so a row mean can differ from the numpy path in the last bit
of float32 (NES within ~1e-7 relative).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from exprlmm.gsea.stats import PermutationStats, assemble, fdr_and_fwer, normalise

__all__ = ["permutation_stats_torch"]


def _tail_weights_sum(values: Any, weights: Any, queries: Any) -> Any:
    """For each query t: Σ weights[i] over the values[i] ≥ t (torch, float64 result)."""
    import torch

    if values.numel() == 0 or queries.numel() == 0:
        return torch.zeros(queries.shape, dtype=torch.float64, device=queries.device)
    v, order = torch.sort(values)
    suffix = torch.cumsum(weights[order].flip(0), dim=0)
    suffix = torch.cat([suffix.new_zeros(1), suffix])
    first = torch.searchsorted(v, queries, right=False)  # v[first:] ≥ t
    return suffix[v.numel() - first]


def permutation_stats_torch(
    es: NDArray[np.floating],
    row_of_set: NDArray[np.integer],
    chunks: Callable[[], Iterable[Any]],
    *,
    shift: bool,
    device: Any,
) -> PermutationStats:
    """`exprlmm.gsea.stats.permutation_stats` for null chunks that are torch tensors.

    Parameters
    ----------
    es
        Observed ES per gene set (host).
    row_of_set
        Null row used by each set (host).
    chunks
        Called twice; each call yields the same float32 torch tensors (rows × columns), all on
        one device.
    shift
        Read set g's row with a cyclic shift of g columns within each chunk (fast mode).
    device
        The chunks' torch device.
    """
    import torch

    es32 = np.asarray(es, dtype=np.float32)
    rows = np.asarray(row_of_set, dtype=np.intp)
    n_sets = es32.size
    n_rows = int(rows.max()) + 1 if n_sets else 0
    f64 = {"dtype": torch.float64, "device": device}
    i64 = {"dtype": torch.int64, "device": device}
    es_d = torch.as_tensor(es32, device=device)
    rows_d = torch.as_tensor(rows, dtype=torch.int64, device=device)
    q_is_pos = es_d >= 0

    # ---- pass 1 -----------------------------------------------------------------------
    sum_pos = torch.zeros(n_rows, **f64)
    sum_neg = torch.zeros(n_rows, **f64)
    cnt_pos = torch.zeros(n_rows, **i64)
    cnt_neg = torch.zeros(n_rows, **i64)
    beyond = torch.zeros(n_sets, **i64)
    n_perm = 0
    for chunk in chunks():
        n_perm += int(chunk.shape[1])
        nonneg = chunk >= 0
        nonpos = chunk <= 0
        sum_pos += torch.where(nonneg, chunk, 0).sum(dim=1, dtype=torch.float64)
        sum_neg += torch.where(nonpos, chunk, 0).sum(dim=1, dtype=torch.float64)
        cnt_pos += nonneg.sum(dim=1)
        cnt_neg += nonpos.sum(dim=1)
        x = chunk[rows_d]
        q = es_d[:, None]
        beyond += torch.where(q_is_pos, (x > q).sum(dim=1), (x < q).sum(dim=1))
    beyond_h = beyond.cpu().numpy()
    nes, pvalue, same, mean_pos, mean_neg = normalise(
        es32,
        rows,
        sum_pos.cpu().numpy(),
        sum_neg.cpu().numpy(),
        cnt_pos.cpu().numpy(),
        cnt_neg.cpu().numpy(),
        beyond_h,
    )

    # ---- pass 2 -----------------------------------------------------------------------
    with np.errstate(invalid="ignore", divide="ignore"):
        norm_pos = torch.as_tensor(np.float32(1) / mean_pos, device=device)[:, None]
        norm_neg = torch.as_tensor(np.float32(1) / np.abs(mean_neg), device=device)[:, None]
    nes_d = torch.as_tensor(nes, device=device)
    q_pos = torch.nonzero(nes_d >= 0).flatten()
    q_neg = torch.nonzero(nes_d < 0).flatten()
    numr_sum = torch.zeros(n_sets, **f64)
    ncols_pos = torch.zeros((), **i64)
    ncols_neg = torch.zeros((), **i64)
    colmax: list[Any] = []
    colmin: list[Any] = []
    set_index = torch.arange(n_sets, device=device)[:, None]
    for chunk in chunks():
        n_cols = int(chunk.shape[1])
        nchunk = torch.where(chunk >= 0, chunk * norm_pos, chunk * norm_neg)
        if shift:
            cols = (torch.arange(n_cols, device=device)[None, :] + set_index) % n_cols
            x = nchunk[rows_d[:, None], cols]  # sets × columns
        else:
            x = nchunk[rows_d]
        nan = torch.isnan(x)
        colmax.append(torch.where(nan, -torch.inf, x).amax(dim=0))
        colmin.append(torch.where(nan, torch.inf, x).amin(dim=0))
        nonneg = x >= 0
        nonpos = x <= 0
        d_pos = nonneg.sum(dim=0)
        d_neg = nonpos.sum(dim=0)
        ncols_pos += (d_pos > 0).sum()
        ncols_neg += (d_neg > 0).sum()
        if q_pos.numel():
            w = (1.0 / d_pos.clamp(min=1).to(torch.float64)).expand(x.shape)
            numr_sum[q_pos] += _tail_weights_sum(x[nonneg], w[nonneg], nes_d[q_pos])
        if q_neg.numel():
            w = (1.0 / d_neg.clamp(min=1).to(torch.float64)).expand(x.shape)
            # count x ≤ t  <=>  (-x) ≥ (-t)
            numr_sum[q_neg] += _tail_weights_sum(-x[nonpos], w[nonpos], -nes_d[q_neg])
    cmax = torch.cat(colmax).cpu().numpy() if colmax else np.zeros(0, np.float32)
    cmin = torch.cat(colmin).cpu().numpy() if colmin else np.zeros(0, np.float32)
    fdr, fwer = fdr_and_fwer(
        nes, numr_sum.cpu().numpy(), int(ncols_pos), int(ncols_neg), cmax, cmin
    )
    return assemble(nes, pvalue, fdr, fwer, same, beyond_h, mean_pos, mean_neg, n_perm)
