"""Null enrichment scores by gene-set permutation (fast mode), vectorised and chunked.

For pre-ranked lists GSEA's null for a set of size k is the ES of random gene sets of size k
drawn uniformly without replacement from the ranked list. That null depends on the set only
through k, so it is computed once per distinct size and shared by all sets of that size.

Draws are nested: each permutation column is one random sequence of distinct genes (drawn as
the Broad tool draws, uniformly with repeats rejected) and the random set of size k is its
first k genes, so every prefix is an exact uniform k-subset. Going through the sizes in
increasing order, the sorted prefix is extended by merging in the next genes, so the total
sampling cost is that of the largest size, and each ES is computed in O(k) from the sorted
positions. Nulls of different sizes in the same column are nested (dependent); the statistics
layer therefore gives every gene set its own cyclic shift of the columns, so within one
column different sets use different (independent) random sequences, as in the Broad tool.

Permutations are generated in chunks of at most `CHUNK` columns; chunk c uses the generator
``numpy.random.default_rng([seed, c])``, so any chunk can be regenerated on its own and the
result does not depend on how many chunks are held in memory at once.

``backend="torch"`` computes the same null on a torch device instead
(`exprlmm.gsea.null_torch`: prefixes of uniform random permutations, torch's random stream).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK", "null_es_chunk", "sample_distinct", "sample_sorted_subsets"]

#: Permutations per chunk.
CHUNK = 1000
#: Target number of array elements per vectorised batch (bounds temporary memory).
_BATCH_ELEMENTS = 1 << 21


def _draws_needed(n: int, k: int) -> int:
    """Draws with replacement that give ≥ k distinct values with high probability."""
    if k >= n:
        return n
    expected = n * (math.log(n) - math.log(n - k)) if k > 0 else 0.0
    # coupon-collector mean plus a generous margin (std ≤ sqrt of the expected repeats)
    repeats = max(expected - k, 0.0)
    return math.ceil(expected + 6.0 * math.sqrt(repeats + 1.0) + 8)


def sample_sorted_subsets(rng: np.random.Generator, n: int, k: int, m: int) -> NDArray[np.int32]:
    """``m`` independent uniform k-subsets of ``range(n)``, each row sorted ascending."""
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    if k == n:
        return np.broadcast_to(np.arange(n, dtype=np.int32), (m, n)).copy()
    if 2 * k > n:  # draw the complement
        comp = sample_sorted_subsets(rng, n, n - k, m)
        mask = np.ones((m, n), dtype=bool)
        np.put_along_axis(mask, comp.astype(np.intp), False, axis=1)
        return np.nonzero(mask)[1].astype(np.int32).reshape(m, k)
    out = np.empty((m, k), dtype=np.int32)
    for b in _distinct_draws(rng, n, k, m):
        # draw index of the k-th distinct value
        cutoff = np.argmax(b.count[b.good] >= k, axis=1)
        keep = b.first_sorted[b.good] & (b.order[b.good] <= cutoff[:, None])
        out[b.rows] = b.zs[b.good][keep].reshape(b.rows.size, k)
    return out


class _DrawBatch(NamedTuple):
    """One batch of rows drawn with replacement (see `_distinct_draws`)."""

    rows: NDArray  # output rows this batch completes
    good: NDArray  # batch rows that hold ≥ k distinct values
    z: NDArray  # the draws
    order: NDArray  # row-wise stable sort of z ...
    zs: NDArray  # ... and the sorted rows
    first_sorted: NDArray  # first occurrence of each value, in sorted order
    first_orig: NDArray  # the same, in draw order
    count: NDArray  # running count of distinct values, in draw order


def _distinct_draws(rng: np.random.Generator, n: int, k: int, m: int):
    """Draw ``m`` rows with replacement until each holds ≥ k distinct values of ``range(n)``.

    Yields a `_DrawBatch` per batch with at least one completed row; rows short of k
    distinct values are redrawn, longer.
    """
    todo = np.arange(m)
    length = _draws_needed(n, k)
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.int32
    while todo.size:
        z = rng.integers(0, n, size=(todo.size, length), dtype=dtype)
        order, zs = _stable_argsort_rows(z)
        first_sorted = np.empty(zs.shape, dtype=bool)
        first_sorted[:, 0] = True
        np.not_equal(zs[:, 1:], zs[:, :-1], out=first_sorted[:, 1:])
        first_orig = np.empty_like(first_sorted)
        np.put_along_axis(first_orig, order, first_sorted, axis=1)
        count = np.cumsum(first_orig, axis=1, dtype=np.int32)
        good = count[:, -1] >= k
        if good.any():
            yield _DrawBatch(todo[good], good, z, order, zs, first_sorted, first_orig, count)
        todo = todo[~good]
        length = int(length * 1.5) + 1


def _stable_argsort_rows(z: NDArray) -> tuple[NDArray[np.intp], NDArray]:
    """Row-wise stable argsort of ``z`` and the sorted rows.

    For 16-bit values and rows shorter than 2¹⁶ the value and the column are packed into one
    32-bit key (value high, column low) and sorted as integers: same result as
    ``argsort(kind="stable")`` (ties in column order), several times faster.
    """
    if z.dtype == np.uint16 and z.shape[1] <= 1 << 16:
        key = z.astype(np.uint32) << np.uint32(16)
        key |= np.arange(z.shape[1], dtype=np.uint32)
        key.sort(axis=1)
        return (key & np.uint32(0xFFFF)).astype(np.intp), (key >> np.uint32(16)).astype(z.dtype)
    order = np.argsort(z, axis=1, kind="stable")
    return order, np.take_along_axis(z, order, axis=1)


def sample_distinct(rng: np.random.Generator, n: int, k: int, m: int) -> NDArray[np.int32]:
    """``m`` rows of k distinct values of ``range(n)`` in draw order (uniform sequences)."""
    if not 0 < k <= n:
        raise ValueError(f"need 0 < k <= n, got k={k}, n={n}")
    if 2 * k > n:
        base = np.broadcast_to(np.arange(n, dtype=np.int32), (m, n))
        return rng.permuted(base, axis=1)[:, :k].copy()
    out = np.empty((m, k), dtype=np.int32)
    for rows, good, z, _order, _zs, _first_sorted, first_orig, count in _distinct_draws(
        rng, n, k, m
    ):
        keep = first_orig[good] & (count[good] <= k)
        out[rows] = z[good][keep].reshape(rows.size, k)
    return out


def _null_values(pos_t: NDArray[np.int32], weights: NDArray[np.float32], n: int) -> NDArray:
    """ES values of random sets given as columns of ``pos_t`` (k × m, each column sorted).

    Same maths as `enrichment_scores`, in float32 and laid out hits × sets so that the
    cumulative sum and the reductions run over contiguous rows. With v_i = c_i − a·m_i and
    a = N_R / (N − k): peak_i = v_i / N_R, trough_i = (v_i − w_i) / N_R.
    """
    k, _m = pos_t.shape
    w = np.take(weights, pos_t)
    cs = w.copy()
    for i in range(1, k):  # row-wise running sum: faster than cumsum(axis=0) here
        np.add(cs[i], cs[i - 1], out=cs[i])
    tot = cs[-1].copy()
    zero = tot <= 0
    if zero.any():
        w[:, zero] = 1.0
        cs[:, zero] = np.arange(1, k + 1, dtype=np.float32)[:, None]
        tot[zero] = float(k)
    v = (pos_t - np.arange(k, dtype=np.int32)[:, None]).astype(np.float32)
    if n > k:
        v *= -tot / np.float32(n - k)
    else:
        v[:] = 0.0
    v += cs
    vmax = v.max(axis=0)
    v -= w
    vmin = v.min(axis=0)
    return np.where(-vmin > vmax, vmin, vmax) / tot


def null_es_chunk(
    weights: NDArray[np.floating],
    sizes: NDArray[np.integer],
    *,
    seed: int,
    chunk: int,
    n_perm: int,
) -> NDArray[np.float32]:
    """Null ES for each size (rows, ascending) and ``n_perm`` permutations of chunk ``chunk``.

    Parameters
    ----------
    weights
        |score|^p of the ranked list (length N).
    sizes
        Distinct set sizes, strictly increasing.
    seed, chunk
        Chunk c is generated by ``default_rng([seed, c])``.
    n_perm
        Columns in this chunk.
    """
    w = np.asarray(weights, dtype=np.float32)
    n = w.shape[0]
    ks = [int(k) for k in np.asarray(sizes).tolist()]
    if any(b <= a for a, b in itertools.pairwise(ks)):
        raise ValueError("sizes must be strictly increasing")
    out = np.empty((len(ks), n_perm), dtype=np.float32)
    if not ks:
        return out
    kmax = ks[-1]
    rng = np.random.default_rng([int(seed), int(chunk)])
    rows = max(1, min(n_perm, _BATCH_ELEMENTS // max(kmax, 1)))
    for start in range(0, n_perm, rows):
        stop = min(n_perm, start + rows)
        seq = sample_distinct(rng, n, kmax, stop - start)
        srt = np.empty((stop - start, 0), dtype=np.int32)
        prev = 0
        for row, k in enumerate(ks):
            # a sorted run plus a few new genes: timsort ("stable") merges the two runs in
            # about O(k); when many genes are new the SIMD quicksort is faster
            kind = "stable" if 8 * (k - prev) < k else "quicksort"
            srt = np.sort(np.concatenate([srt, seq[:, prev:k]], axis=1), axis=1, kind=kind)
            prev = k
            out[row, start:stop] = _null_values(np.ascontiguousarray(srt.T), w, n)
    return out
