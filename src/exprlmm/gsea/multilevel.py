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

Implementation (fgsea's grouping and effort, compiled MCMC in `exprlmm.gsea._kernels`):

* one ruler per distinct (size, sign), extended to the largest |ES| among its sets; each
  set's p is read from the level at which its ES is reached;
* MCMC effort per level as fgsea: steps (one swap proposal per sample) until
  ``moves``·S·k/2 swaps are accepted, then as many steps again;
* the samples are sorted rows of hit positions; a proposal is decided in O(1) by a *witness*
  hit whose running-sum value after the swap is updated incrementally, and otherwise by an
  O(k) rescoring of the new set that stops once no later hit can reach the bound, so every
  accept/reject decision is the one a full rescoring gives (see `exprlmm.gsea._kernels`);
* each ruler draws its uniform numbers in numpy from its own stream
  ``default_rng([seed, k, sign, 7])`` (the compiled kernel only consumes them), so a set's
  tail p-value is deterministic for a seed and does not depend on which other sets are
  tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, polygamma

from exprlmm.gsea._kernels import mcmc_steps, score_population
from exprlmm.gsea.null import sample_sorted_subsets

__all__ = ["TailPvalues", "multilevel_error", "tail_pvalues"]

_LN2 = math.log(2.0)
#: MCMC steps whose random numbers a ruler draws at once.
_DRAWS = 64


def _beta_mean_log(a: float, b: float) -> float:
    return float(digamma(a) - digamma(b + 1))


def _var_per_level(a: float, b: float) -> float:
    return float(polygamma(1, a) - polygamma(1, b + 1))


def _multilevel_error(pvalue: NDArray[np.float64], sample_size: int) -> NDArray[np.float64]:
    levels = np.floor(-np.log2(pvalue) + 1)
    per_level = polygamma(1, (sample_size + 1) / 2) - polygamma(1, sample_size + 1)
    return np.sqrt(levels * per_level) / _LN2


def multilevel_error(pvalue: float, sample_size: int) -> float:
    """fgsea's expected log2 error of a multilevel estimate of ``pvalue``.

    sqrt(⌊−log2 p + 1⌋ · (ψ'((S + 1)/2) − ψ'(S + 1))) / ln 2.
    """
    return float(_multilevel_error(np.array([pvalue], dtype=np.float64), sample_size)[0])


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
        target: float,
        eps: float,
        moves: float,
        rng: np.random.Generator,
    ):
        self.k = k
        self.s = sample_size
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
        self._cum: tuple[NDArray, NDArray] | None = None

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
        if self._cum is None:  # levels passed in full: running sums of their terms
            nh = np.array([hs.size + 1 for hs, _ in self.high], dtype=np.float64)
            self._cum = (
                np.concatenate([[0.0], np.cumsum(digamma(nh) - digamma(s + 1))]),
                np.concatenate([[0.0], np.cumsum(polygamma(1, nh) - polygamma(1, s + 1))]),
            )
        cum_adj, cum_var = self._cum
        for lev, bound in enumerate(self.bounds):
            if es <= bound:
                hs, hg = self.high[lev]
                ls, lg = self.low[lev]
                adj, var = float(cum_adj[lev]), float(cum_var[lev])
                num = int(hg.sum()) + int((lg & (ls >= es)).sum())
                if num == 0:
                    return math.exp(adj + _beta_mean_log(1, s)), math.nan
                adj += _beta_mean_log(num, s)
                var += _var_per_level(num, s)
                return min(1.0, math.exp(adj)), math.sqrt(var) / _LN2
        adj, var = float(cum_adj[-1]), float(cum_var[-1])
        hs, hg = self.high[-1]
        num = int((hg & (hs >= es)).sum())
        if num == 0:
            return math.exp(adj + _beta_mean_log(1, hs.size)), math.nan
        adj += _beta_mean_log(num, hs.size)
        var += _var_per_level(num, hs.size)
        return min(1.0, math.exp(adj)), math.sqrt(var) / _LN2


def _run_ruler(ru: _Ruler, w: NDArray[np.float64], n: int) -> None:
    """Build the levels of one ruler; its MCMC runs in the compiled `mcmc_steps`.

    The population is S sorted rows of hit positions (S × k int32); each sample's witness
    (see `exprlmm.gsea._kernels`) is reset to its maximum at every level end. Random numbers come
    from the ruler's own Generator, in blocks of `_DRAWS` steps (2 × S uniforms per step)
    that carry over level ends, and ``rng.integers`` for the copies at each split.
    """
    s, k = ru.s, ru.k
    x = sample_sorted_subsets(ru.rng, n, k, s)
    es_plus = np.empty(s)
    positive = np.empty(s, dtype=np.bool_)
    wit_p = np.empty(s, dtype=np.int64)
    wit_c = np.empty(s)
    wit_m = np.empty(s, dtype=np.int64)
    wit_t = np.empty(s)
    witness = (wit_p, wit_c, wit_m, wit_t)
    draws = np.empty((0, 2, s))
    col = 0
    while True:
        score_population(x, w, n, es_plus, positive, *witness)
        res = ru.split(es_plus, positive)
        if res is None:
            return
        bound, dst, src = res
        x[dst] = x[src]
        for arr in witness:
            arr[dst] = arr[src]
        # steps, accepted, phase, phase-2 steps, need, max phase-1 steps
        state = np.array([0, 0, 0, 0, ru.need, ru.max_steps], dtype=np.int64)
        done = False
        while not done:
            if col == draws.shape[0]:
                draws = ru.rng.random((_DRAWS, 2, s))
                col = 0
            col, done = mcmc_steps(x, *witness, w, n, bound, draws, col, state)


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
    ok = (ns > 0) & np.isfinite(es)
    nb_ok, ns_ok = nb[ok], ns[ok]
    crude = (nb_ok + 1) / (ns_ok + 1)
    simple = np.sqrt(polygamma(1, nb_ok + 1) - polygamma(1, ns_ok + 1)) / _LN2
    p[ok] = crude
    err[ok] = simple
    used[ok] = _multilevel_error(crude, s) < simple
    groups: dict[tuple[int, bool], list[int]] = {}
    for i in np.flatnonzero(used):
        groups.setdefault((int(sizes[i]), bool(es[i] >= 0)), []).append(int(i))
    n = w.size
    w_dir = {True: np.ascontiguousarray(w), False: np.ascontiguousarray(w[::-1])}
    rulers: dict[tuple[int, bool], _Ruler] = {}
    for (k, positive), members in sorted(groups.items()):
        ruler = _Ruler(
            k,
            s,
            max(abs(es[i]) for i in members),
            eps,
            moves,
            np.random.default_rng([int(seed), k, int(positive), 7]),
        )
        _run_ruler(ruler, w_dir[positive], n)
        rulers[(k, positive)] = ruler
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
