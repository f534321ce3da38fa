"""ES: gseapy golden (≤ 1e-6), brute-force running sum, edge cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.gsea.engine import prepare_ranking, prepare_sets
from exprlmm.gsea.enrichment import enrichment_scores, leading_edge, running_sum
from exprlmm.io.gmt import read_gmt
from exprlmm.io.rnk import read_rnk

REF = Path(__file__).resolve().parents[1] / "reference" / "gsea"


def brute_es(scores: np.ndarray, hit: np.ndarray, p: float = 1.0) -> float:
    """Walk all N genes; first maximum |deviation| wins."""
    w = np.where(hit, np.abs(scores) ** p, 0.0)
    w = w / w.sum() if w.sum() > 0 else hit / hit.sum()
    miss = (~hit) / (hit.size - hit.sum())
    best = 0.0
    run = 0.0
    for i in range(hit.size):
        run += w[i] - miss[i]
        if abs(run) > abs(best):
            best = run
    return best


def test_es_matches_gseapy_golden() -> None:
    rl = prepare_ranking(read_rnk(REF / "toy.rnk"))
    sets = prepare_sets(rl, read_gmt(REF / "toy.gmt"), min_size=15, max_size=500)
    gold = pd.read_csv(REF / "gseapy_prerank.tsv", sep="\t").set_index("Term")
    w = rl.weights(1.0)
    ours = {
        name: enrichment_scores(pos[None, :], w, rl.n).es[0]
        for name, pos in zip(sets.names, sets.positions, strict=True)
    }
    assert set(ours) == set(gold.index)
    diff = max(abs(ours[t] - gold.loc[t, "ES"]) for t in ours)
    assert diff <= 1e-6


@pytest.mark.parametrize("p", [0.0, 1.0, 2.0])
def test_es_matches_brute_force(p: float) -> None:
    rng = np.random.default_rng(3)
    n = 300
    scores = np.sort(rng.normal(size=n))[::-1]
    w = np.abs(scores) ** p
    for k in (1, 5, 40, 299):
        pos = np.sort(rng.choice(n, size=k, replace=False))
        hit = np.zeros(n, bool)
        hit[pos] = True
        es = enrichment_scores(pos[None, :], w, n).es[0]
        assert es == pytest.approx(brute_es(scores, hit, p), abs=1e-12)
        assert running_sum(pos, w, n)[-1] == pytest.approx(0.0, abs=1e-12)


def test_set_fully_at_top_and_bottom() -> None:
    n = 100
    w = np.linspace(2, 0.01, n)
    top = enrichment_scores(np.arange(10)[None, :], w, n)
    assert top.es[0] == pytest.approx(1.0)
    assert top.rank_at_es[0] == 9
    bottom = enrichment_scores(np.arange(90, 100)[None, :], w, n)
    assert bottom.es[0] == pytest.approx(-1.0)
    assert bottom.rank_at_es[0] == 89
    core, tags, _, _ = leading_edge(np.arange(90, 100), -1.0, 89, n)
    assert tags == 1.0 and core.size == 10


def test_set_of_size_equal_to_list() -> None:
    n = 50
    w = np.ones(n)
    r = enrichment_scores(np.arange(n)[None, :], w, n)
    assert r.es[0] == pytest.approx(1.0)  # all hits: the sum only rises


def test_all_zero_scores_use_equal_weights() -> None:
    n = 60
    w = np.zeros(n)
    pos = np.array([0, 1, 2, 30, 59])
    es = enrichment_scores(pos[None, :], w, n).es[0]
    hit = np.zeros(n, bool)
    hit[pos] = True
    assert np.isfinite(es)
    assert es == pytest.approx(brute_es(np.ones(n), hit, 0.0))


def test_first_extreme_wins_on_ties() -> None:
    # classic weights, symmetric: +0.5 after 2 hits at top, then -0.5 at the bottom
    n = 8
    pos = np.array([0, 1])  # peak 1.0 at rank 1
    r = enrichment_scores(pos[None, :], np.ones(n), n)
    assert r.es[0] == pytest.approx(1.0)
    # hits in the middle: trough -2/6 before hit 0 at rank 1 ... exact tie handled first-wins
    pos = np.array([3, 4])
    r = enrichment_scores(pos[None, :], np.ones(n), n)
    hit = np.zeros(n, bool)
    hit[pos] = True
    assert r.es[0] == pytest.approx(brute_es(np.ones(n), hit, 0.0))


def test_ties_in_ranking_keep_input_order() -> None:
    s = pd.Series([1.0, 2.0, 1.0, 1.0, 0.5], index=list("abcde"))
    rl = prepare_ranking(s)
    assert rl.genes.tolist() == ["b", "a", "c", "d", "e"]
