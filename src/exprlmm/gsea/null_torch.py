"""Fast-mode permutation null on a torch device (``backend="torch"``; GPU or CPU).

Same null as `exprlmm.gsea.null` (the ES of uniform random gene sets of each distinct size k,
shared by all sets of that size, float32), drawn with torch's random stream on the device.

Draws. Permutation column j takes i.i.d. uniform float64 keys u_1..u_N (one per gene) and
the indices of its ``k_max`` largest keys in decreasing key order (``topk``): the first k_max
elements of a uniform random permutation of the N genes. The random set of size k is the
first k of them. A prefix of a uniform random permutation is a uniform random k-subset (by
symmetry every k-subset is equally likely to occupy the first k places), so each size's null
has exactly the distribution of independent draws per size; sizes in one column are nested
(dependent), as in the numpy null, and the statistics layer gives each gene set its own cyclic
shift of the columns (see `exprlmm.gsea.stats`). Ties among float64 keys have probability
about N²/2⁵⁴ per column (≈ 2·10⁻⁸ for N = 20,000).

Permutations come in blocks of `exprlmm.gsea.null.CHUNK` columns; block b draws its keys from
a ``torch.Generator`` on the device seeded from ``numpy.random.SeedSequence([seed, b])``, so
the numbers do not depend on how many blocks are computed at once (that is sized from memory).
For one seed the null is reproducible on the same device type and torch version; CPU and CUDA
torch, and numpy, are different random streams (same distribution).

ES from sorted hit positions, vectorised over permutations and sizes. Distinct sizes are
grouped so that a group's largest size K is at most ``_GROUP_RATIO`` times its smallest. Per
group the first K draws of each column are sorted once: positions P_1 < … < P_K and each one's
arrival rank R_i (its place in the random sequence). The set of size k ≤ K is {i : R_i < k}.
With the mask M_i = [R_i < k], hit weights w_i = |score|^p at P_i, c_i = Σ_{l≤i} M_l w_l,
T = c_K (if T ≤ 0: w_i = 1, T = k, as GSEA does for all-zero weights), j_i = Σ_{l≤i} M_l and
a = T / (N − k) (0 if k = N), the running sum at hit i peaks at v_i / T and dips at
(v_i − w_i) / T with v_i = c_i − a·(P_i − j_i + 1), so

    ES = max_{M_i} v_i / T   if  max_{M_i} v_i ≥ −min_{M_i} (v_i − w_i),  else  min_{M_i} (v_i − w_i) / T,

the same formula as `exprlmm.gsea.null._null_values` (float32), evaluated for all sizes of a
group and all columns at once, in O(K) per size and column.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from exprlmm.gsea.null import CHUNK

__all__ = ["draw_prefixes", "null_es_torch", "prefix_null_es", "torch_memory_budget"]

#: A size group's largest size is at most this multiple of its smallest (bounds wasted work).
_GROUP_RATIO = 1.25
#: Working bytes per (size, column, position) element of `prefix_null_es` (about 8 temporaries).
_BYTES_PER_ELEMENT = 40
#: Cap of the working memory off CUDA (MiB).
_CPU_BUDGET_MB = 64.0


def torch_memory_budget(device: Any, memory_limit_mb: float) -> float:
    """Working bytes for the null on ``device``.

    CUDA: a quarter of the free device memory (large batches amortise kernel launches).
    Elsewhere: ``memory_limit_mb`` capped at `_CPU_BUDGET_MB` (cache-friendlier batches: 2×
    faster on the CPU than 512 MB). One block's keys (``CHUNK × N`` float64) come on top.
    """
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        try:
            return torch.cuda.mem_get_info(dev)[0] / 4
        except Exception:  # device queries are best effort; fall back to the setting
            pass
    return min(float(memory_limit_mb), _CPU_BUDGET_MB) * 2**20


def _block_seed(seed: int, block: int) -> int:
    """A 63-bit torch seed for permutation block ``block`` (independent streams per block)."""
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def draw_prefixes(n: int, kmax: int, *, seed: int, block: int, m: int, device: Any) -> Any:
    """First ``kmax`` elements of ``m`` uniform random permutations of ``range(n)`` (block b).

    Returns an ``m × kmax`` int64 tensor on ``device``: row j lists the genes with the largest
    of n i.i.d. uniform float64 keys, in decreasing key order.
    """
    import torch

    if not 0 < kmax <= n:
        raise ValueError(f"need 0 < kmax <= n, got kmax={kmax}, n={n}")
    gen = torch.Generator(device=device)
    gen.manual_seed(_block_seed(seed, block))
    keys = torch.rand((m, n), generator=gen, dtype=torch.float64, device=device)
    return torch.topk(keys, kmax, dim=1, largest=True, sorted=True).indices


def _groups(ks: list[int]) -> list[list[int]]:
    """Consecutive runs of the ascending sizes with max ≤ `_GROUP_RATIO` × min."""
    groups: list[list[int]] = []
    for k in ks:
        if groups and k <= _GROUP_RATIO * groups[-1][0]:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def prefix_null_es(
    positions: Any, arrival: Any, weights: Any, sizes: Any, n: int
) -> Any:  # torch tensors in and out
    """ES of the sets {i : arrival_i < k} for each size k (see the module docstring).

    Parameters
    ----------
    positions
        ``C × K`` int64, each row sorted ascending (hit positions in the ranked list).
    arrival
        ``C × K`` int64, each position's place in its random sequence (0-based).
    weights
        Length-N float32 |score|^p on the same device.
    sizes
        ``S`` int64 sizes, each ≤ K.
    n
        Length N of the ranked list.

    Returns
    -------
    torch.Tensor
        ``S × C`` float32 null ES.
    """
    import torch

    k = sizes.to(torch.float32).view(-1, 1, 1)  # S × 1 × 1
    mask = arrival.unsqueeze(0) < sizes.view(-1, 1, 1)  # S × C × K
    mf = mask.to(torch.float32)
    w = weights[positions].unsqueeze(0) * mf
    cs = torch.cumsum(w, dim=2)
    hits = torch.cumsum(mf, dim=2)
    tot = cs[..., -1:]
    zero = tot <= 0  # all hit weights 0: classic (unweighted) statistic, as GSEA
    w = torch.where(zero, mf, w)
    cs = torch.where(zero, hits, cs)
    tot = torch.where(zero, k, tot)
    slope = torch.where(k < n, tot / (n - k).clamp(min=1.0), torch.zeros_like(tot))
    v = cs - slope * (positions.unsqueeze(0).to(torch.float32) - hits + 1.0)
    vmax = torch.where(mask, v, -math.inf).amax(dim=2)
    vmin = torch.where(mask, v - w, math.inf).amin(dim=2)
    es = torch.where(-vmin > vmax, vmin, vmax) / tot.squeeze(2)
    return es


def null_es_torch(
    weights: Any,
    sizes: NDArray[np.integer],
    *,
    seed: int,
    n_perm: int,
    budget_bytes: float,
    to_host: bool = True,
) -> Iterator[Any]:
    """Null ES chunks (sizes × ≤ `CHUNK` columns, float32) computed on the device.

    Parameters
    ----------
    weights
        |score|^p of the ranked list as a torch tensor on the device (length N).
    sizes
        Distinct set sizes, strictly increasing.
    seed
        Block b of `CHUNK` permutations uses the generator seeded from ``[seed, b]``.
    n_perm
        Permutations in all.
    budget_bytes
        Working memory allowed on the device; columns are processed in batches of whole
        blocks, and sizes in sub-batches, to stay within it.
    to_host
        Yield numpy arrays on the host (default) or torch tensors left on the device.

    Yields
    ------
    numpy.ndarray or torch.Tensor
        One float32 ``len(sizes) × m`` chunk per block, in block order.
    """
    import torch

    ks = [int(k) for k in np.asarray(sizes).tolist()]
    if any(b <= a for a, b in itertools.pairwise(ks)):
        raise ValueError("sizes must be strictly increasing")
    if not ks:
        for b0 in range(0, n_perm, CHUNK):
            empty = np.empty((0, min(CHUNK, n_perm - b0)), dtype=np.float32)
            yield empty if to_host else torch.from_numpy(empty).to(weights.device)
        return
    device = weights.device
    w32 = weights.to(torch.float32)
    n = int(w32.shape[0])
    kmax = ks[-1]
    groups = _groups(ks)
    blocks = [(b, min(CHUNK, n_perm - b * CHUNK)) for b in range(math.ceil(n_perm / CHUNK))]
    # columns per batch: the stored prefixes (8 B) + one size's work (K elements) per column,
    # and the keys of one block (N float64) drawn at a time
    per_col = kmax * (8 + 2 * _BYTES_PER_ELEMENT)
    cols = max(CHUNK, int((budget_bytes - CHUNK * n * 16) // per_col))
    per_batch = max(1, cols // CHUNK)
    sizes_t = torch.tensor(ks, dtype=torch.int64, device=device)
    for i0 in range(0, len(blocks), per_batch):
        batch = blocks[i0 : i0 + per_batch]
        seqs = torch.cat(
            [draw_prefixes(n, kmax, seed=seed, block=b, m=m, device=device) for b, m in batch]
        )
        c = int(seqs.shape[0])
        out = torch.empty((len(ks), c), dtype=torch.float32, device=device)
        row = 0
        for group in groups:
            big = group[-1]
            pos, arrival = torch.sort(seqs[:, :big], dim=1)
            step = max(1, int(budget_bytes // (_BYTES_PER_ELEMENT * c * big)))
            for s0 in range(0, len(group), step):
                s1 = min(len(group), s0 + step)
                out[row + s0 : row + s1] = prefix_null_es(
                    pos, arrival, w32, sizes_t[row + s0 : row + s1], n
                )
            row += len(group)
        result = out.cpu().numpy() if to_host else out
        col = 0
        for _b, m in batch:
            yield result[:, col : col + m]
            col += m
