"""Tail p-values of enrichment scores by adaptive multilevel splitting (as fgsea).

Pure maths. Method: Korotkevich et al. (2021, bioRxiv 060012), fgsea's ``fgseaMultilevel``:
a population of ``sample_size`` random gene sets of size k is pushed up through levels; at
each level the population is split at its median ES⁺ (the largest positive running-sum
value), the lower half is replaced by copies of the upper half, and every sample is moved by
MCMC (swap one member for one non-member, accept iff ES⁺ stays above the level's bound), which
keeps the population uniform on {ES⁺ > bound}. With n_ℓ samples above the bound at each level,

    log P(ES⁺ ≥ x, ES ≥ 0) ≈ Σ_ℓ E[log Beta(n_ℓ + 1, S − n_ℓ)] + E[log Beta(c, S − c + 1)],

using E[log B] = ψ(a) − ψ(a + b) (fgsea's betaMeanLog), where c counts the samples of the last
level reached with ES⁺ ≥ x whose signed ES is positive. The conditional p-value reported is

    p = P(ES⁺ ≥ x, ES ≥ 0) / P(ES ≥ 0)

with P(ES ≥ 0) estimated from the permutation null as (n_same_sign + 1) / (n_perm + 1), as
fgsea does; negative ES use the reversed list. Its error is the standard deviation of log2 p:

    log2err = sqrt(Σ_ℓ [ψ'(n_ℓ) − ψ'(S + 1)]) / ln 2.

Which sets run it. As in fgsea, a set keeps its permutation estimate
(n_beyond + 1) / (n_same_sign + 1), with log2err = sqrt(ψ'(n_beyond + 1) − ψ'(n_same + 1)) / ln 2,
when that is already as accurate as a multilevel estimate would be (fgsea's rule comparing the
two expected errors, `multilevel_error`). The multilevel estimate is therefore only computed
where the permutations run out of resolution: with 10,000 permutations, sets with about 10
or fewer same-signed null ES beyond the observed one.

Implementation (fgsea's grouping, vectorised):

* one ruler per distinct (size, sign), extended to the largest |ES| among its sets; each
  set's p is read from the level at which its ES is reached;
* all rulers run their MCMC in lockstep, one swap proposal per sample per step for every
  sample of every ruler at once (flat numpy arrays, no Python loop over samples or rulers);
  MCMC effort per level as fgsea: proposals until ``moves``·S·k/2 are accepted, then as many
  steps again;
* a proposal is decided in O(1) by a *witness* hit whose running-sum value after the swap is
  updated incrementally (see `_run_rulers`); only the proposals the witness cannot accept
  are scored in full (sorted positions, cumulative weights), so every accept/reject
  decision is exactly the one a full rescoring gives;
* each ruler draws from its own stream ``default_rng([seed, k, sign, 7])``, so a set's tail
  p-value does not depend on which other sets are tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, polygamma

from exprlmm.gsea.null import sample_sorted_subsets

__all__ = ["TailPvalues", "multilevel_error", "tail_pvalues"]

_LN2 = math.log(2.0)
#: Full scans pad rows to the largest size within this factor (size classes).
_BATCH_RATIO = 2.5
#: Padding of sample rows (sorts last; weight 0; very negative running sum).
_PAD = 1 << 30
#: Memory for the samples' membership flags of the rulers that run together.
_MEMBER_BYTES = 256 * 2**20
#: MCMC steps whose random numbers a ruler draws at once.
_DRAWS = 64


def _beta_mean_log(a: float, b: float) -> float:
    return float(digamma(a) - digamma(b + 1))


def _var_per_level(a: float, b: float) -> float:
    return float(polygamma(1, a) - polygamma(1, b + 1))


def multilevel_error(pvalue: float, sample_size: int) -> float:
    """fgsea's expected log2 error of a multilevel estimate of ``pvalue``."""
    levels = math.floor(-math.log2(pvalue) + 1)
    return (
        math.sqrt(levels * (polygamma(1, (sample_size + 1) / 2) - polygamma(1, sample_size + 1)))
        / _LN2
    )


@dataclass(frozen=True)
class TailPvalues:
    """Tail p-values (never 0 unless below ``eps``) and their log2 standard errors."""

    pvalue: NDArray[np.float64]
    log2err: NDArray[np.float64]
    used_multilevel: NDArray[np.bool_]


class _Ruler:
    """One multilevel ruler (size k, one direction): its levels and its p-value read-out."""

    def __init__(
        self,
        k: int,
        sample_size: int,
        offset: int,
        target: float,
        eps: float,
        moves: float,
        rng: np.random.Generator,
    ):
        self.k = k
        self.s = sample_size
        self.offset = offset  # where this direction's weights start in the weight table
        self.target = target
        self.eps = eps
        self.rng = rng
        self.need = max(1, int(moves * sample_size * k / 2))
        self.max_steps = 50 * k + 100
        self.adj = 0.0
        self.bounds: list[float] = []
        self.high: list[tuple[NDArray, NDArray]] = []
        self.low: list[tuple[NDArray, NDArray]] = []
        self.flat: tuple[NDArray, NDArray] = (np.zeros(0), np.zeros(0, dtype=bool))

    def split(
        self, sc: NDArray[np.float64], sg: NDArray[np.bool_]
    ) -> tuple[float, NDArray[np.intp], NDArray[np.intp]] | None:
        """Record a level from the population's scores; None when the ruler is finished.

        Otherwise returns the level's bound and the rows to overwrite (``dst``, the samples at
        or below the bound) with copies of rows ``src`` (random samples above it).
        """
        s = self.s
        order = np.argsort(sc, kind="stable")
        scs, sgs = sc[order], sg[order]
        central = scs[s // 2]
        start = int(np.searchsorted(scs, central, side="left"))
        if start == 0:
            start = int(np.searchsorted(scs, scs[0], side="right"))
        if start >= s:  # all equal: cannot advance
            if not self.bounds:  # no level at all: p is read from this population
                self.flat = (scs.copy(), sgs.copy())
            return None
        bound = float(scs[start - 1])
        self.bounds.append(bound)
        self.low.append((scs[:start].copy(), sgs[:start].copy()))
        self.high.append((scs[start:].copy(), sgs[start:].copy()))
        if bound >= self.target:
            return None
        self.adj += _beta_mean_log(s - start + 1, s)
        if self.eps > 0 and self.adj < math.log(self.eps):
            return None
        pick = self.rng.integers(start, s, size=start)
        return bound, order[:start], order[pick]

    def pvalue(self, es: float) -> tuple[float, float]:
        """(P(ES⁺ ≥ es, ES ≥ 0), log2err) from the levels built."""
        s = self.s
        if not self.bounds:  # every sample had the same ES⁺ (e.g. the set is the whole list)
            hs, hg = self.flat
            num = int((hg & (hs >= es * (1 - 1e-12))).sum())  # tolerate rounding of equal ES
            if num == 0:
                return math.exp(_beta_mean_log(1, s)), math.nan
            return min(1.0, math.exp(_beta_mean_log(num, s))), math.sqrt(
                _var_per_level(num, s)
            ) / _LN2
        adj = 0.0
        var = 0.0
        for bound, (hs, hg), (ls, lg) in zip(self.bounds, self.high, self.low, strict=True):
            if es <= bound:
                num = int(hg.sum()) + int((lg & (ls >= es)).sum())
                if num == 0:
                    return math.exp(adj + _beta_mean_log(1, s)), math.nan
                adj += _beta_mean_log(num, s)
                var += _var_per_level(num, s)
                return min(1.0, math.exp(adj)), math.sqrt(var) / _LN2
            nh = hs.size + 1
            adj += _beta_mean_log(nh, s)
            var += _var_per_level(nh, s)
        hs, hg = self.high[-1]
        num = int((hg & (hs >= es)).sum())
        if num == 0:
            return math.exp(adj + _beta_mean_log(1, hs.size)), math.nan
        adj += _beta_mean_log(num, hs.size)
        var += _var_per_level(num, hs.size)
        return min(1.0, math.exp(adj)), math.sqrt(var) / _LN2


def _score_rows(
    xs: NDArray[np.int32],
    k_r: NDArray[np.intp],
    wtab: NDArray[np.float64],
    off_r: NDArray[np.intp],
    inv_nk: NDArray[np.float64],
    *,
    sign: bool = False,
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """Exact scores of sorted rows; row r holds ``k_r[r]`` hit positions, then `_PAD`.

    In units of the row's total hit weight N_R (numerator form of `enrichment_scores`):
    v_i = c_i − m_i · N_R/(N − k), ES⁺ = max_i v_i / N_R, ES ≥ 0 iff max v ≥ −min(v − w).
    Padding entries get weight 0 and v ≈ −2³⁰ · N_R/(N − k), so they never win the max
    (``sign`` needs rows without padding).

    Returns ES⁺ · N_R (the numerator), whether ES ≥ 0 (all True unless ``sign``), the
    argmax hit index, the cumulative weight there and N_R, per row.
    """
    m, width = xs.shape
    rows = np.arange(m)
    ww = np.take(wtab, xs + off_r[:, None], mode="clip")  # padding -> trailing 0
    cs = np.cumsum(ww, axis=1)
    tot = cs[rows, k_r - 1]
    lam = np.where(tot > 0, tot, 1.0) * inv_nk
    v = xs - np.arange(width, dtype=np.int32)
    v = v * -lam[:, None]
    v += cs
    am = v.argmax(axis=1)
    num = v[rows, am]
    if sign:
        v -= ww
        positive = num >= -v.min(axis=1)
    else:
        positive = np.ones(m, dtype=bool)
    return num, positive, am, cs[rows, am], tot


def _run_rulers(rulers: list[_Ruler], wtab: NDArray[np.float64], n: int) -> None:
    """Build the levels of all rulers at once: their MCMC steps run in lockstep.

    State per sample (one row): its k members in any order, a membership bitmap and a
    *witness* hit P with the cumulative hit weight C up to P, the misses M before P and the
    total weight N_R, so that the running sum at P after a proposed swap (drop member a,
    add gene g) is known in O(1):

        C' = C − w_a [a < P] + w_g [g < P],   M' = M + [a < P] − [g < P],
        N_R' = N_R − w_a + w_g,               RES'(P) = C'/N_R' − M'/(N − k).

    If RES'(P) > bound the swap is accepted (ES⁺' ≥ RES'(P)); otherwise (or when a = P) the
    proposal is scored in full, exactly, and the witness moves to the new maximum. The
    accept/reject decisions are therefore those of scoring every proposal in full, as fgsea
    does. Rows of finished rulers are dropped as they accumulate.
    """
    s = rulers[0].s
    nc = len(rulers)
    ks = np.array([r.k for r in rulers], dtype=np.intp)
    width = int(ks.max())
    # size classes: full scans of one class are padded to the class's largest size only
    cls = np.zeros(nc, dtype=np.intp)
    lo = int(ks.min())
    for c in range(nc):
        while ks[c] > lo * _BATCH_RATIO ** (cls[c] + 1):
            cls[c] += 1
    cls_width = {int(c): int(ks[cls == c].max()) for c in np.unique(cls)}
    has_zero = bool((wtab[:n] <= 0).any())

    chain = np.repeat(np.arange(nc), s)  # ruler of each row
    k_r = ks[chain]
    off_r = np.array([r.offset for r in rulers], dtype=np.intp)[chain]
    nk = (n - k_r).astype(np.float64)
    inv_nk = np.divide(1.0, nk, out=np.zeros_like(nk), where=nk > 0)
    cls_r = cls[chain]
    x = np.full((nc * s, width), _PAD, dtype=np.int32)
    member = np.zeros((nc * s, n), dtype=bool)
    wit_p = np.zeros(nc * s, dtype=np.int64)
    wit_c = np.zeros(nc * s)
    wit_m = np.zeros(nc * s, dtype=np.int64)
    wit_tot = np.zeros(nc * s)
    bound_r = np.full(nc * s, 2.0)  # above any ES⁺: rows not (or no longer) sampling
    first = np.arange(nc) * s  # first row of each ruler (-1 once dropped)

    active = np.ones(nc, dtype=bool)
    phase2 = np.zeros(nc, dtype=bool)
    steps = np.zeros(nc, dtype=np.int64)
    accepted = np.zeros(nc, dtype=np.int64)
    target2 = np.zeros(nc, dtype=np.int64)
    need = np.array([r.need for r in rulers], dtype=np.int64)
    max_steps = np.array([r.max_steps for r in rulers], dtype=np.int64)
    n_dead_rows = 0
    # zeros, not empty: rows of finished rulers are still indexed (harmlessly) until compacted
    draws = np.zeros((nc * s, 2 * _DRAWS))
    step = 0

    def level_end(ci: int) -> None:
        nonlocal n_dead_rows
        ru = rulers[ci]
        k = ru.k
        r0 = int(first[ci])
        sl = slice(r0, r0 + s)
        xs = np.sort(x[sl, :k], axis=1)
        x[sl, :k] = xs
        num, sg, am, cam, tot = _score_rows(xs, k_r[sl], wtab, off_r[sl], inv_nk[sl], sign=True)
        steps[ci] = accepted[ci] = 0
        phase2[ci] = False
        res = ru.split(num / np.where(tot > 0, tot, 1.0), sg)
        if res is None:
            active[ci] = False
            member[sl] = True  # every proposal is "already a member": rows stay frozen
            n_dead_rows += s
            return
        bound, dst, src = res
        wit_p[sl] = xs[np.arange(s), am]
        wit_c[sl] = cam
        wit_m[sl] = wit_p[sl] - am
        wit_tot[sl] = tot
        rd, rs = r0 + dst, r0 + src
        member[rd[:, None], x[rd, :k]] = False
        x[rd] = x[rs]
        member[rd[:, None], x[rd, :k]] = True
        for arr in (wit_p, wit_c, wit_m, wit_tot):
            arr[rd] = arr[rs]
        bound_r[sl] = bound

    for ci, ru in enumerate(rulers):
        r0 = ci * s
        xs = sample_sorted_subsets(ru.rng, n, ru.k, s)
        x[r0 : r0 + s, : ru.k] = xs
        member[np.arange(r0, r0 + s)[:, None], xs] = True
        level_end(ci)

    while active.any():
        if n_dead_rows * 3 > chain.size:  # drop the rows of finished rulers
            keep = active[chain]
            chain, k_r, off_r, inv_nk, cls_r = (
                arr[keep] for arr in (chain, k_r, off_r, inv_nk, cls_r)
            )
            x, member, draws = x[keep], member[keep], draws[keep]
            wit_p, wit_c, wit_m, wit_tot, bound_r = (
                arr[keep] for arr in (wit_p, wit_c, wit_m, wit_tot, bound_r)
            )
            first[:] = -1
            first[chain[::s]] = np.arange(0, chain.size, s)
            n_dead_rows = 0
        big = chain.size
        col = step % _DRAWS
        if col == 0:  # each ruler draws from its own stream, a block of steps at a time
            for ci in np.flatnonzero(active).tolist():
                r0 = int(first[ci])
                draws[r0 : r0 + s] = rulers[ci].rng.random((s, 2 * _DRAWS))
        step += 1
        j = (draws[:, col] * k_r).astype(np.intp)
        g = (draws[:, _DRAWS + col] * n).astype(np.intp)
        xf, mf = x.reshape(-1), member.reshape(-1)  # flat views: 1-D indexing is fast
        xrow = np.arange(0, big * width, width)
        mrow = np.arange(0, big * n, n)
        a = xf.take(xrow + j)
        fresh = ~mf.take(mrow + g)
        wa = wtab[off_r + a]
        wg = wtab[off_r + g]
        tot = wit_tot - wa
        tot += wg
        a_lt = a < wit_p
        g_lt = g < wit_p
        c2 = wit_c - wa * a_lt
        c2 += wg * g_lt
        m2 = wit_m + a_lt
        m2 -= g_lt
        tots = np.where(tot > 0, tot, 1.0) if has_zero else tot
        ok_w = c2 - m2 * (tots * inv_nk) > bound_r * tots
        ok_w &= fresh
        ok_w &= a != wit_p
        acc_w = np.flatnonzero(ok_w)
        und = np.flatnonzero(fresh & ~ok_w)
        if acc_w.size:
            xf[xrow[acc_w] + j[acc_w]] = g[acc_w]
            mf[mrow[acc_w] + a[acc_w]] = False
            mf[mrow[acc_w] + g[acc_w]] = True
            wit_c[acc_w] = c2[acc_w]
            wit_m[acc_w] = m2[acc_w]
            wit_tot[acc_w] = tot[acc_w]
        n_acc = np.bincount(chain[acc_w], minlength=nc)
        if und.size:
            cu = cls_r[und]
            for c in np.unique(cu).tolist() if cu.min() != cu.max() else [int(cu[0])]:
                ui = und[cu == c] if cu.min() != cu.max() else und
                kw = cls_width[c]
                xp = x[ui, :kw]
                xp.reshape(-1)[np.arange(0, ui.size * kw, kw) + j[ui]] = g[ui]
                xp.sort(axis=1)
                num, _, am, cam, tot_u = _score_rows(xp, k_r[ui], wtab, off_r[ui], inv_nk[ui])
                ok_u = num > bound_r[ui] * np.where(tot_u > 0, tot_u, 1.0)
                acc_u = ui[ok_u]
                if acc_u.size:
                    x[acc_u, :kw] = xp[ok_u]
                    mf[mrow[acc_u] + a[acc_u]] = False
                    mf[mrow[acc_u] + g[acc_u]] = True
                    amu = am[ok_u]
                    wit_p[acc_u] = xp[ok_u, amu]
                    wit_c[acc_u] = cam[ok_u]
                    wit_m[acc_u] = wit_p[acc_u] - amu
                    wit_tot[acc_u] = tot_u[ok_u]
                    n_acc += np.bincount(chain[acc_u], minlength=nc)
        steps += active
        accepted += np.where(phase2, 0, n_acc)
        start2 = active & ~phase2 & ((accepted >= need) | (steps >= max_steps))
        ends = np.flatnonzero(active & phase2 & (steps >= target2))
        if start2.any():
            target2[start2] = steps[start2]
            steps[start2] = 0
            phase2[start2] = True
        for ci in ends.tolist():
            level_end(ci)


def tail_pvalues(
    weights: NDArray[np.floating],
    es: NDArray[np.floating],
    sizes: NDArray[np.integer],
    *,
    n_perm: int,
    n_beyond: NDArray[np.integer],
    n_same_sign: NDArray[np.integer],
    sample_size: int = 101,
    eps: float = 1e-10,
    seed: int = 0,
    moves: float = 1.0,
) -> TailPvalues:
    """Tail p-value per gene set (see module docstring).

    Parameters
    ----------
    weights
        |score|^p of the ranked list (decreasing scores).
    es, sizes
        Observed ES and size of each set.
    n_perm, n_beyond, n_same_sign
        From the permutation null: permutations, same-signed null ES strictly beyond ES, and
        same-signed null ES.
    sample_size, eps, seed, moves
        Population size (made odd), smallest p estimated, seed, MCMC effort (1 = fgsea's).
    """
    w = np.asarray(weights, dtype=np.float64)
    es = np.asarray(es, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.int64)
    nb = np.asarray(n_beyond, dtype=np.float64)
    ns = np.asarray(n_same_sign, dtype=np.float64)
    s = int(sample_size) | 1
    m = es.size
    p = np.full(m, np.nan)
    err = np.full(m, np.nan)
    used = np.zeros(m, dtype=bool)
    for i in range(m):
        if ns[i] <= 0 or not np.isfinite(es[i]):
            continue
        crude = (nb[i] + 1) / (ns[i] + 1)
        simple = math.sqrt(polygamma(1, nb[i] + 1) - polygamma(1, ns[i] + 1)) / _LN2
        p[i] = crude
        err[i] = simple
        used[i] = multilevel_error(crude, s) < simple
    groups: dict[tuple[int, bool], list[int]] = {}
    for i in np.flatnonzero(used):
        groups.setdefault((int(sizes[i]), bool(es[i] >= 0)), []).append(int(i))
    n = w.size
    # weight table: this list, a zero (the padding sentinel), the reversed list, a zero
    wtab = np.concatenate([w, [0.0], w[::-1], [0.0]])
    rulers: dict[tuple[int, bool], _Ruler] = {}
    for (k, positive), members in sorted(groups.items()):
        rulers[(k, positive)] = _Ruler(
            k,
            s,
            0 if positive else n + 1,
            max(abs(es[i]) for i in members),
            eps,
            moves,
            np.random.default_rng([int(seed), k, int(positive), 7]),
        )
    # rulers run together in groups of similar size whose membership flags (S × N bytes per
    # ruler) stay within _MEMBER_BYTES; results do not depend on the grouping
    by_size = sorted(rulers.values(), key=lambda r: r.k)
    per_group = max(1, _MEMBER_BYTES // (s * n))
    for start in range(0, len(by_size), per_group):
        _run_rulers(by_size[start : start + per_group], wtab, n)
    for (k, positive), members in groups.items():
        ruler = rulers[(k, positive)]
        for i in members:
            cond, e = ruler.pvalue(abs(float(es[i])))
            denom = (ns[i] + 1) / (n_perm + 1)
            p[i] = min(1.0, cond / denom)
            err[i] = e
            if eps > 0 and p[i] < eps:
                p[i], err[i] = eps, np.nan
    return TailPvalues(pvalue=p, log2err=err, used_multilevel=used)
