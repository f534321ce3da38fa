"""Compiled (numba) kernels of the multilevel MCMC (`exprlmm.gsea.multilevel`).

Pure maths, no random numbers: the caller draws uniform numbers from its seeded numpy
Generator and the kernels consume them, so results are deterministic for a seed.

A sample is one random gene set of size k, held as a sorted row of hit positions
p_0 < … < p_{k-1} of the ranked list (N genes, hit weights w ≥ 0). In numerator form (as `exprlmm.gsea.enrichment`), with
c_i = Σ_{m ≤ i} w_{p_m}, N_R = c_{k-1}, λ = N_R / (N − k) and m_i = p_i − i misses before
hit i,

    v_i = c_i − λ m_i            (N_R · running sum at hit i: a peak)
    u_i = c_i − w_{p_i} − λ m_i  (N_R · running sum just before hit i: a trough)
    ES⁺ = max_i v_i / N_R,  ES ≥ 0 iff max_i v_i ≥ −min_i u_i

(N_R ≤ 0, all hit weights zero, is replaced by 1).

MCMC move (`mcmc_steps`): sample r proposes to swap member a = p_j for gene g (skipped when
g is a member: binary search in the row, which also gives g's place). Each sample keeps a *witness* hit P (a member) with C = cumulative weight up to P,
M = misses before P and the total weight T = N_R, so that after the swap

    C' = C − w_a [a < P] + w_g [g < P],  M' = M + [a < P] − [g < P],  T' = T − w_a + w_g,

and v'(P) = C' − M' T'/(N − k) is known in O(1). The swap is accepted when
v'(P) > bound · T' (then ES⁺' ≥ v'(P)/T' > bound); otherwise (or when a = P) the new set
is rescored in O(k) by one pass over the merged sorted row, stopped as soon as no later hit
can exceed the bound (v_i ≤ T' − λ' m_i, and m_i only grows), and accepted iff
max v' > bound · T'; an accepted swap shifts the row to keep it sorted. T is recomputed at
each level end and updated incrementally in between; the O(1) test keeps a margin of
10⁻¹² T' so that rounding of the incrementally updated C and T never makes it accept what
the rescoring would reject. The decisions are therefore those of scoring every proposed set
from scratch, up to rounding of T (≪ 10⁻¹² relative).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64
from numpy.typing import NDArray

__all__ = ["enrichment_score", "mcmc_steps", "score_population"]

#: Relative margin of the O(1) witness test (see module docstring).
_MARGIN = 1e-12


def _njit(func):
    """``njit(cache=True)``; without a writable cache location, compile in each process.

    numba caches next to the source (``__pycache__``) or, for a read-only install, in the
    user's cache directory; where neither is writable it refuses ``cache=True`` at
    decoration time, which would make this module fail to import.
    """
    try:
        return njit(cache=True)(func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(cache=False)(func)


@_njit
def _scan(row, w, n):  # pragma: no cover - compiled
    """One pass over a sorted row: (max v, its index, c there, min u, its index, N_R, λ)."""
    k = row.size
    tot = 0.0
    for i in range(k):
        tot += w[row[i]]
    t = tot if tot > 0 else 1.0
    lam = t / (n - k) if n > k else 0.0
    c = 0.0
    vmax = -np.inf
    imax = 0
    cmax = 0.0
    umin = np.inf
    imin = 0
    for i in range(k):
        lm = (row[i] - i) * lam
        u = c - lm
        if u < umin:
            umin = u
            imin = i
        c += w[row[i]]
        v = c - lm
        if v > vmax:
            vmax = v
            imax = i
            cmax = c
    return vmax, imax, cmax, umin, imin, tot, lam


@_njit
def enrichment_score(row: NDArray[np.int32], w: NDArray[np.float64], n: int) -> float:
    """Signed ES of one gene set (sorted hit positions ``row``), as `enrichment_scores`.

    ES = max_i v_i / N_R unless −min_i u_i is larger (or equal and not later), then
    min_i u_i / N_R. For sets of positive total weight only (no equal-weight fallback).
    """
    vmax, imax, _cmax, umin, imin, tot, _lam = _scan(row, w, n)
    t = tot if tot > 0 else 1.0
    if -umin > vmax or (-umin == vmax and imin <= imax):
        return umin / t
    return vmax / t


@_njit
def score_population(
    x: NDArray[np.int32],
    w: NDArray[np.float64],
    n: int,
    es_plus: NDArray[np.float64],
    positive: NDArray[np.bool_],
    wit_p: NDArray[np.int64],
    wit_c: NDArray[np.float64],
    wit_m: NDArray[np.int64],
    wit_t: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    """Exact ES⁺, ES ≥ 0 and a fresh witness (the maximum) of every sorted row of ``x``."""
    for r in range(x.shape[0]):
        row = x[r]
        vmax, imax, cmax, umin, _imin, tot, _lam = _scan(row, w, n)
        t = tot if tot > 0 else 1.0
        es_plus[r] = vmax / t
        positive[r] = vmax >= -umin
        wit_p[r] = row[imax]
        wit_c[r] = cmax
        wit_m[r] = row[imax] - imax
        wit_t[r] = tot


@_njit
def _visit(p, i, w, lam, mcut, c, best, bp, bc, bm):  # pragma: no cover - compiled
    """One hit of the scan of `_rescore`: position p at new index i (misses m = p − i).

    Returns (stop, c, best, bp, bc, bm); stop once m ≥ mcut (no later hit can exceed the
    bound).
    """
    m = p - i
    if m >= mcut:
        return True, c, best, bp, bc, bm
    c += w[p]
    v = c - m * lam
    if v > best:
        best = v
        bp = p
        bc = c
        bm = m
    return False, c, best, bp, bc, bm


@_njit
def _scan_range(x, r, lo, hi, d, w, lam, mcut, c, best, bp, bc, bm):  # pragma: no cover
    """Continue the scan of `_rescore` over old indices [lo, hi) (new index = old + d)."""
    for o in range(lo, hi):
        stop, c, best, bp, bc, bm = _visit(x[r, o], o + d, w, lam, mcut, c, best, bp, bc, bm)
        if stop:
            return True, c, best, bp, bc, bm
    return False, c, best, bp, bc, bm


@_njit
def _rescore(x, r, j, q, g, w, t, lam, bound):  # pragma: no cover - compiled
    """Whether the row with member j replaced by g (new index q) has max v' > bound · T'.

    Scans the new row in order, as segments of the old row, while a later hit can still
    exceed the bound (v_i ≤ T' − λ' m_i: stop once m_i ≥ (T' − bound · T') / λ').
    Returns (accepted, witness position, c there, misses before it) with the maximum as the
    witness.
    """
    k = x.shape[1]
    limit = bound * t
    reach = t * (1.0 + _MARGIN)  # c_i ≤ T' up to rounding
    mcut = (reach - limit) / lam if lam > 0 else np.inf
    c, best, bp, bc, bm = 0.0, -np.inf, -1, 0.0, 0
    # before the changed stretch: old index = new index
    lo = min(j, q)
    stop, c, best, bp, bc, bm = _scan_range(x, r, 0, lo, 0, w, lam, mcut, c, best, bp, bc, bm)
    if not stop:
        if q <= j:  # g at q, then row[q:j] one place later
            stop, c, best, bp, bc, bm = _visit(g, q, w, lam, mcut, c, best, bp, bc, bm)
            if not stop:
                stop, c, best, bp, bc, bm = _scan_range(
                    x, r, q, j, 1, w, lam, mcut, c, best, bp, bc, bm
                )
        else:  # row[j+1:q+1] one place earlier, then g at q
            stop, c, best, bp, bc, bm = _scan_range(
                x, r, j + 1, q + 1, -1, w, lam, mcut, c, best, bp, bc, bm
            )
            if not stop:
                stop, c, best, bp, bc, bm = _visit(g, q, w, lam, mcut, c, best, bp, bc, bm)
    if not stop:
        lo = j + 1 if q <= j else q + 1
        stop, c, best, bp, bc, bm = _scan_range(x, r, lo, k, 0, w, lam, mcut, c, best, bp, bc, bm)
    return best > limit, bp, bc, bm


@_njit
def _lower_bound(x, r, g):  # pragma: no cover - compiled
    """First index i with x[r, i] ≥ g (as ``np.searchsorted``), by branch-free halving."""
    lo = 0
    m = x.shape[1]
    while m > 1:
        half = m >> 1
        lo = lo + half if x[r, lo + half - 1] < g else lo
        m -= half
    return lo + (1 if x[r, lo] < g else 0)


@_njit
def _swap(x, r, j, q, g):  # pragma: no cover - compiled
    """Replace x[r, j] by g at new index q (unsigned offsets: no index wraparound)."""
    if q > j:
        for t in range(q - j):
            x[r, uint64(j + t)] = x[r, uint64(j + t + 1)]
    else:
        for t in range(j - q):
            x[r, uint64(j - t)] = x[r, uint64(j - t - 1)]
    x[r, q] = g


@_njit
def mcmc_steps(
    x: NDArray[np.int32],
    wit_p: NDArray[np.int64],
    wit_c: NDArray[np.float64],
    wit_m: NDArray[np.int64],
    wit_t: NDArray[np.float64],
    w: NDArray[np.float64],
    n: int,
    bound: float,
    draws: NDArray[np.float64],
    col: int,
    state: NDArray[np.int64],
) -> tuple[int, bool]:  # pragma: no cover - compiled
    """MCMC steps on the population ``x`` (S × k sorted rows) at level ``bound``.

    Step t uses ``draws[t]`` (2 × S uniform numbers): sample r proposes to swap its member
    ``x[r, ⌊draws[t, 0, r]·k⌋]`` for gene ``⌊draws[t, 1, r]·N⌋`` (no proposal when that gene
    is already a member). Steps run from column ``col`` until the block is used up or the
    level's effort is spent; ``state`` = (steps, accepted, phase, phase-2 steps, accepted
    swaps needed, most phase-1 steps) carries the effort rule across blocks: phase 1 runs
    until ``need`` swaps are accepted (or ``max_steps``), phase 2 runs as many steps again.

    Returns the next unused column and whether the level is finished.
    """
    s, k = x.shape
    inv_nk = 1.0 / (n - k) if n > k else 0.0
    nb = draws.shape[0]
    while col < nb:
        nacc = 0
        for r in range(s):
            g = min(int(draws[col, 1, r] * n), n - 1)  # u·N can round up to N
            q = _lower_bound(x, r, g)
            if q < k and x[r, q] == g:  # already a member
                continue
            j = min(int(draws[col, 0, r] * k), k - 1)
            a = x[r, j]
            if g > a:
                q -= 1  # g's index once a is removed
            wa = w[a]
            wg = w[g]
            tot = wit_t[r] - wa + wg
            t = tot if tot > 0 else 1.0
            lam = t * inv_nk
            p = wit_p[r]
            if a != p:
                c2 = wit_c[r]
                m2 = wit_m[r]
                if a < p:
                    c2 -= wa
                    m2 += 1
                if g < p:
                    c2 += wg
                    m2 -= 1
                if c2 - m2 * lam > (bound + _MARGIN) * t:
                    _swap(x, r, j, q, g)
                    wit_c[r] = c2
                    wit_m[r] = m2
                    wit_t[r] = tot
                    nacc += 1
                    continue
            ok, bp, bc, bm = _rescore(x, r, j, q, g, w, t, lam, bound)
            if ok:
                _swap(x, r, j, q, g)
                wit_p[r] = bp
                wit_c[r] = bc
                wit_m[r] = bm
                wit_t[r] = tot
                nacc += 1
        col += 1
        state[0] += 1
        if state[2] == 0:
            state[1] += nacc
            if state[1] >= state[4] or state[0] >= state[5]:
                state[3] = state[0]
                state[0] = 0
                state[2] = 1
        elif state[0] >= state[3]:
            return col, True
    return col, False
