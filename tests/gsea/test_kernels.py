"""Compiled multilevel kernels vs the numpy enrichment scores (independent O(k) code)."""

from __future__ import annotations

import numpy as np
import pytest

from exprlmm.gsea._kernels import enrichment_score, mcmc_steps, score_population
from exprlmm.gsea.enrichment import enrichment_scores, running_sum
from exprlmm.gsea.multilevel import tail_pvalues
from exprlmm.gsea.null import sample_sorted_subsets


def _weights(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(np.abs(rng.standard_t(3, size=n)))[::-1].copy()


@pytest.mark.parametrize(("n", "k"), [(50, 1), (50, 7), (300, 40), (2000, 150), (120, 119)])
def test_enrichment_score_equals_reference(n: int, k: int) -> None:
    rng = np.random.default_rng(n + k)
    w = _weights(n, rng)
    x = sample_sorted_subsets(rng, n, k, 200)
    ref = enrichment_scores(x, w, n).es
    ours = np.array([enrichment_score(row, w, n) for row in x])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_score_population_es_plus_and_sign() -> None:
    rng = np.random.default_rng(4)
    n, k, s = 400, 25, 60
    w = _weights(n, rng)
    x = sample_sorted_subsets(rng, n, k, s)
    es_plus, positive = np.empty(s), np.empty(s, dtype=bool)
    wit = (np.empty(s, np.int64), np.empty(s), np.empty(s, np.int64), np.empty(s))
    score_population(x, w, n, es_plus, positive, *wit)
    for r in range(s):
        rs = running_sum(x[r], w, n)
        # ES⁺ is the largest running-sum value at a hit; the witness is where it is reached
        assert es_plus[r] == pytest.approx(rs[x[r]].max(), abs=1e-12)
        assert wit[0][r] == x[r][np.argmax(rs[x[r]])]
        i = int(np.searchsorted(x[r], wit[0][r]))
        assert wit[1][r] == pytest.approx(w[x[r][: i + 1]].sum(), rel=1e-12)
        assert wit[2][r] == wit[0][r] - i
        assert wit[3][r] == pytest.approx(w[x[r]].sum(), rel=1e-12)
    np.testing.assert_array_equal(positive, enrichment_scores(x, w, n).es >= 0)


def _es_plus(row: np.ndarray, w: np.ndarray, n: int) -> float:
    return float(running_sum(row, w, n)[row].max())


@pytest.mark.parametrize("k", [3, 30, 90])
def test_mcmc_decisions_equal_full_rescoring(k: int) -> None:
    # every proposal is accepted iff the new set's ES⁺ (scored from scratch) beats the bound
    rng = np.random.default_rng(k)
    n, s, steps = 500, 41, 12
    w = _weights(n, rng)
    x = sample_sorted_subsets(rng, n, k, s)
    es_plus, positive = np.empty(s), np.empty(s, dtype=bool)
    wit = (np.empty(s, np.int64), np.empty(s), np.empty(s, np.int64), np.empty(s))
    score_population(x, w, n, es_plus, positive, *wit)
    bound = float(np.median(es_plus))
    # start from samples above the bound, as after a split
    above = np.flatnonzero(es_plus > bound)
    pick = above[rng.integers(0, above.size, s)]
    x = x[pick].copy()
    wit = tuple(a[pick].copy() for a in wit)
    draws = rng.random((steps, 2, s))
    expect = [set(row.tolist()) for row in x]
    n_acc = n_rej = 0
    for t in range(steps):
        for r in range(s):
            g = int(draws[t, 1, r] * n)
            if g in expect[r]:
                continue
            a = sorted(expect[r])[int(draws[t, 0, r] * k)]
            new = (expect[r] - {a}) | {g}
            if _es_plus(np.array(sorted(new)), w, n) > bound:
                expect[r] = new
                n_acc += 1
            else:
                n_rej += 1
    state = np.array([0, 0, 0, 0, 10**9, 10**9], dtype=np.int64)
    col, done = mcmc_steps(x, *wit, w, n, bound, draws, 0, state)
    assert (col, done) == (steps, False)
    assert n_acc > 0 and n_rej > 0
    assert state[1] == n_acc
    for r in range(s):
        assert x[r].tolist() == sorted(expect[r])
        assert _es_plus(x[r], w, n) > bound
        # the witness is a member whose running sum beats the bound, with its sums up to date
        p = int(wit[0][r])
        i = int(np.searchsorted(x[r], p))
        assert x[r][i] == p
        assert running_sum(x[r], w, n)[p] > bound
        assert wit[1][r] == pytest.approx(w[x[r][: i + 1]].sum(), rel=1e-10)
        assert wit[2][r] == p - i
        assert wit[3][r] == pytest.approx(w[x[r]].sum(), rel=1e-10)


def test_mcmc_effort_rule() -> None:
    # phase 1 stops at max_steps when too few swaps are accepted, phase 2 runs as many steps
    rng = np.random.default_rng(1)
    n, k, s = 200, 10, 11
    w = _weights(n, rng)
    x = sample_sorted_subsets(rng, n, k, s)
    es_plus, positive = np.empty(s), np.empty(s, dtype=bool)
    wit = (np.empty(s, np.int64), np.empty(s), np.empty(s, np.int64), np.empty(s))
    score_population(x, w, n, es_plus, positive, *wit)
    state = np.array([0, 0, 0, 0, 10**9, 5], dtype=np.int64)
    draws = rng.random((20, 2, s))
    col, done = mcmc_steps(x, *wit, w, n, -1.0, draws, 0, state)
    assert (col, done) == (10, True)  # 5 steps of phase 1, then 5 of phase 2
    assert state[2] == 1 and state[3] == 5


def test_tail_pvalues_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(8)
    w = _weights(700, rng)
    args = (w, np.array([0.5, -0.45, 0.4]), np.array([15, 30, 60]))
    kw = {"n_perm": 1000, "n_beyond": [0, 0, 0], "n_same_sign": [500, 500, 500]}
    a = tail_pvalues(*args, seed=5, **kw)
    b = tail_pvalues(*args, seed=5, **kw)
    c = tail_pvalues(*args, seed=6, **kw)
    assert a.used_multilevel.all()
    np.testing.assert_array_equal(a.pvalue, b.pvalue)
    np.testing.assert_array_equal(a.log2err, b.log2err)
    assert not np.array_equal(a.pvalue, c.pvalue)


def test_njit_without_cache_location_compiles_uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    # numba refuses cache=True where no cache directory is writable; import must still work
    import exprlmm.gsea._kernels as kern

    calls: list[bool] = []

    def fake_njit(*, cache: bool):
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return lambda f: f

    monkeypatch.setattr(kern, "njit", fake_njit)
    assert kern._njit(lambda: 7)() == 7
    assert calls == [True, False]
