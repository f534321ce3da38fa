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

As in fgsea, sets whose permutation p is already as accurate as a multilevel estimate would be
(fgsea's rule comparing the two expected errors) keep the permutation estimate
(n_beyond + 1) / (n_same_sign + 1), with log2err = sqrt(ψ'(n_beyond + 1) − ψ'(n_same + 1)) / ln 2.

Implementation: the MCMC is vectorised over the population (one swap proposal per sample per
step); sets of one size and sign share one ruler extended to the largest |ES| needed.
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


def _score(pos: NDArray[np.integer], w: NDArray[np.float64], n: int) -> tuple[NDArray, NDArray]:
    """ES⁺ (largest running-sum value) and whether the signed ES is ≥ 0, per row."""
    _m, k = pos.shape
    ww = w[pos]
    cs = np.cumsum(ww, axis=1)
    tot = cs[:, -1:]
    tot = np.where(tot > 0, tot, 1.0)
    misses = (pos - np.arange(k)) / (n - k) if n > k else np.zeros(pos.shape)
    peak = cs / tot - misses
    trough = peak - ww / tot
    es_pos = peak.max(axis=1)
    es_neg = trough.min(axis=1)
    return es_pos, es_pos >= -es_neg


class _Ruler:
    """One multilevel ruler (size k, one direction)."""

    def __init__(self, w: NDArray[np.float64], k: int, sample_size: int, rng: np.random.Generator):
        self.w = w
        self.n = w.size
        self.k = k
        self.s = sample_size
        self.rng = rng
        self.bounds: list[float] = []
        self.high: list[tuple[NDArray, NDArray]] = []
        self.low: list[tuple[NDArray, NDArray]] = []

    def extend(self, target: float, eps: float, moves: float) -> None:
        s, k, n, rng = self.s, self.k, self.n, self.rng
        x = sample_sorted_subsets(rng, n, k, s)
        sc, sg = _score(x, self.w, n)
        adj = 0.0
        while True:
            order = np.argsort(sc, kind="stable")
            sc, sg, x = sc[order], sg[order], x[order]
            central = sc[s // 2]
            start = int(np.searchsorted(sc, central, side="left"))
            if start == 0:
                start = int(np.searchsorted(sc, sc[0], side="right"))
            if start >= s:
                return  # all equal: cannot advance
            bound = float(sc[start - 1])
            self.bounds.append(bound)
            self.low.append((sc[:start].copy(), sg[:start].copy()))
            self.high.append((sc[start:].copy(), sg[start:].copy()))
            if bound >= target:
                return
            adj += _beta_mean_log(s - start + 1, s)
            if eps > 0 and adj < math.log(eps):
                return
            pick = rng.integers(start, s, size=start)
            x[:start], sc[:start], sg[:start] = x[pick], sc[pick], sg[pick]
            self._mcmc(x, sc, sg, bound, moves)

    def _mcmc(self, x: NDArray, sc: NDArray, sg: NDArray, bound: float, moves: float) -> None:
        s, k, _n, _rng = self.s, self.k, self.n, self.rng
        need = max(1, int(moves * s * k / 2))
        rows = np.arange(s)
        accepted = 0
        steps = 0
        max_steps = 50 * k + 100
        while accepted < need and steps < max_steps:
            accepted += self._step(x, sc, sg, bound, rows)
            steps += 1
        for _ in range(steps):
            self._step(x, sc, sg, bound, rows)

    def _step(self, x: NDArray, sc: NDArray, sg: NDArray, bound: float, rows: NDArray) -> int:
        s, k, n, rng = self.s, self.k, self.n, self.rng
        j = rng.integers(0, k, size=s)
        g = rng.integers(0, n, size=s)
        present = (x == g[:, None]).any(axis=1)
        xn = x.copy()
        xn[rows, j] = g
        xn.sort(axis=1)
        scn, sgn = _score(xn, self.w, n)
        ok = ~present & (scn > bound)
        x[ok], sc[ok], sg[ok] = xn[ok], scn[ok], sgn[ok]
        return int(ok.sum())

    def pvalue(self, es: float) -> tuple[float, float]:
        """(P(ES⁺ ≥ es, ES ≥ 0), log2err) from the levels built."""
        s = self.s
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
    for (k, positive), members in sorted(groups.items()):
        rng = np.random.default_rng([int(seed), k, int(positive), 7])
        wk = w if positive else w[::-1].copy()
        ruler = _Ruler(wk, k, s, rng)
        target = max(abs(es[i]) for i in members)
        ruler.extend(target, eps, moves)
        for i in members:
            cond, e = ruler.pvalue(abs(float(es[i])))
            denom = (ns[i] + 1) / (n_perm + 1)
            p[i] = min(1.0, cond / denom)
            err[i] = e
            if eps > 0 and p[i] < eps:
                p[i], err[i] = eps, np.nan
    return TailPvalues(pvalue=p, log2err=err, used_multilevel=used)
