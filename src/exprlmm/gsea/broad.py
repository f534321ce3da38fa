"""``--mode broad``: the GSEA 4.x pre-ranked permutation null, draw for draw.

Pure maths. What is reproduced (read from the public GSEA desktop source, GSEA-MSigDB/
gsea-desktop: KSTests.shuffleGeneSet_precannedRankedList, GeneSetGenerators.
createRandomGeneSetsFixedSize, XMath.randomlySampleWithoutReplacement, KSCore,
GeneSetScoringTables, RandomSeedGenerators):

* One ``java.util.Random(seed)`` stream, consumed set after set in gene-set order (after the
  size filter), ``nperm`` random sets per gene set.
* A random set of size k: ``nextInt(N)`` repeatedly, skipping values already drawn, until k
  distinct; for k = N no draws are made (all positions).
* Hit weights in float32: totalWeight = Σ |score| (float32, summed in member order: the GMT
  order for real sets; java.util.HashSet iteration order for random sets, i.e. by bucket
  ``(h ^ h>>>16) & (capacity − 1)`` of the gene's String.hashCode, insertion order within a
  bucket, capacity 16 doubled while k > 0.75·capacity); hit = float32(|score| / totalWeight);
  miss = float32(1 / (N − k)); non-finite scores weigh 0.01; weight 2 uses score².
* The running sum in double, updated as KSCore does (subtract gap·miss before each hit, add the
  hit; the tail at the last gene), the ES kept as float32 with the update rule
  ``|es| < |running|`` evaluated at the same points.

Not verified / not reproduced: the order in which the desktop tool lists gene sets when several
GMT files are combined (we use the order given); treeified HashMap bins (≥ 8 genes in one
bucket, practically never with ≤ 0.75 load); the float32 accumulation inside the FDR numerator
(we sum in float64; differences ~1e-7 relative); ranked-list tie order inside the Java sort
(we keep input order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from exprlmm.gsea.javarandom import JavaRandom

if TYPE_CHECKING:
    from exprlmm.gsea.engine import GseaSettings, PreparedSets, RankedList

__all__ = ["broad_es", "broad_null_and_es", "java_string_hash", "sample_broad"]

_TWO31 = 1 << 31


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` (UTF-16 code units), as a signed 32-bit int."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= _TWO31 else h


def _hash_buckets(hashes: NDArray[np.int64], capacity: int) -> NDArray[np.int64]:
    h = hashes & 0xFFFFFFFF
    spread = h ^ (h >> 16)
    return spread & (capacity - 1)


def _hashset_capacity(k: int) -> int:
    cap = 16
    while k > 0.75 * cap:
        cap *= 2
    return cap


def sample_broad(rand: JavaRandom, n: int, k: int, n_perm: int) -> NDArray[np.int32]:
    """``n_perm`` random k-sets in draw order, consuming ``rand`` as GSEA 4.x does."""
    if k == n:
        return np.broadcast_to(np.arange(n, dtype=np.int32), (n_perm, n)).copy()
    expected = n_perm * k * (1.0 + k / (2.0 * n))
    budget = int(expected * 1.05 + 10 * np.sqrt(expected) + 64)
    pow2 = n & (n - 1) == 0
    while True:
        saved = rand.state
        states = rand.states(budget)
        r = JavaRandom.next31(states)
        if pow2:
            vals_all = (n * r) >> 31
            valid = np.ones(r.size, dtype=bool)
        else:
            vals_all = r % n
            valid = (r - vals_all + (n - 1)) < _TWO31
        raw_idx = np.flatnonzero(valid)
        vals = vals_all[raw_idx]
        order = np.argsort(vals, kind="stable")
        sv = vals[order]
        prev = np.full(vals.size, -1, dtype=np.int64)
        same = sv[1:] == sv[:-1]
        prev[order[1:][same]] = order[:-1][same]
        starts = np.empty(n_perm, dtype=np.int64)
        s = 0
        total = vals.size
        ok = True
        for j in range(n_perm):
            e = s + k
            if e > total:
                ok = False
                break
            bad = int(np.count_nonzero(prev[s:e] >= s))
            while bad:
                if e >= total:
                    ok = False
                    break
                if prev[e] < s:
                    bad -= 1
                e += 1
            if not ok:
                break
            starts[j] = s
            s = e
        if ok:
            break
        rand.state = saved
        budget = int(budget * 1.5) + 64
    rand.state = int(states[raw_idx[s - 1]])
    t = np.arange(s)
    owner = np.searchsorted(starts, t, side="right") - 1
    accepted = prev[:s] < starts[owner]
    return vals[:s][accepted].reshape(n_perm, k).astype(np.int32)


def broad_es(
    members: NDArray[np.integer],
    abs32: NDArray[np.float32],
    sq32: NDArray[np.float32],
    n: int,
    weight: float,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """ES (float32) and rank at ES of each row of ``members`` (positions in member order)."""
    mem = np.asarray(members, dtype=np.int64)
    m, k = mem.shape
    if weight == 0:
        base = np.ones_like(abs32)
    elif weight == 2:
        base = sq32
    else:
        base = abs32
    b = base[mem]
    tw = np.cumsum(b, axis=1, dtype=np.float32)[:, -1]  # sequential float32 sum
    srt = np.sort(mem, axis=1)
    if weight == 0:
        hit = np.full((m, k), np.float32(1.0) / np.float32(k), dtype=np.float32)
    else:
        hit = (base[srt] / tw[:, None]).astype(np.float32)
    miss = float(np.float32(1.0) / np.float32(n - k)) if n > k else 0.0
    gaps = np.diff(srt, axis=1, prepend=-1) - 1
    last = srt[:, -1]
    tail_gap = n - 2 - last
    terms = np.zeros((m, 2 * k + 2))
    terms[:, 0 : 2 * k : 2] = -(gaps * miss)
    terms[:, 1 : 2 * k : 2] = hit
    has_tail = last < n - 1
    terms[:, 2 * k] = np.where(has_tail & (tail_gap > 0), -(tail_gap * miss), 0.0)
    terms[:, 2 * k + 1] = np.where(has_tail, -miss, 0.0)
    run = np.cumsum(terms, axis=1)
    check = np.zeros((m, 2 * k + 2), dtype=bool)
    check[:, 0 : 2 * k : 2] = gaps > 0
    check[:, 1 : 2 * k : 2] = True
    check[:, 2 * k] = has_tail & (tail_gap > 0)
    check[:, 2 * k + 1] = has_tail
    ranks = np.zeros((m, 2 * k + 2), dtype=np.int64)
    ranks[:, 0 : 2 * k : 2] = srt - 1
    ranks[:, 1 : 2 * k : 2] = srt
    ranks[:, 2 * k] = n - 2
    ranks[:, 2 * k + 1] = n - 1
    a = np.where(check, np.abs(run), -1.0)
    i_max = np.argmax(a, axis=1)
    rows = np.arange(m)
    top = a[rows, i_max]
    es = run[rows, i_max].astype(np.float32)
    rank = ranks[rows, i_max]
    near = (a >= top[:, None] * (1.0 - 2.0**-21)) & check
    for i in np.flatnonzero(near.sum(axis=1) > 1):  # exact sequential rule for near ties
        best = np.float32(0.0)
        best_rank = 0
        for t in np.flatnonzero(check[i]):
            if abs(float(best)) < abs(run[i, t]):
                best = np.float32(run[i, t])
                best_rank = int(ranks[i, t])
        es[i], rank[i] = best, best_rank
    return es, rank


def broad_null_and_es(
    rl: RankedList, sets: PreparedSets, st: GseaSettings
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float32]]:
    """Observed ES, rank at ES, and the (sets × permutations) float32 null, as GSEA 4.x."""
    n = rl.n
    s32 = rl.scores.astype(np.float32)
    finite = np.isfinite(s32)
    abs32 = np.where(finite, np.abs(s32), np.float32(0.01)).astype(np.float32)
    sq32 = (s32 * s32).astype(np.float32)
    hashes = np.array([java_string_hash(g) for g in rl.genes.tolist()], dtype=np.int64)
    n_sets = len(sets.names)
    es = np.empty(n_sets)
    rank = np.empty(n_sets, dtype=np.int64)
    null = np.empty((n_sets, st.permutations), dtype=np.float32)
    rand = JavaRandom(st.seed)
    for g in range(n_sets):
        order = sets.member_order[g] if sets.member_order else sets.positions[g]
        e, r = broad_es(order[None, :], abs32, sq32, n, st.weight)
        es[g], rank[g] = float(e[0]), int(r[0])
        k = order.size
        draws = sample_broad(rand, n, k, st.permutations).astype(np.int64)
        buckets = _hash_buckets(hashes[draws], _hashset_capacity(k))
        it = np.argsort(buckets, axis=1, kind="stable")
        members = np.take_along_axis(draws, it, axis=1)
        null[g] = broad_es(members, abs32, sq32, n, st.weight)[0]
    return es, rank, null
