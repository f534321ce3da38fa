"""Multilevel tail p-values vs gseapy's fgsea port (golden), within the stated errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.gsea import GseaSettings, prerank
from exprlmm.gsea.multilevel import multilevel_error, tail_pvalues
from exprlmm.io.gmt import read_gmt
from exprlmm.io.rnk import read_rnk

REF = Path(__file__).resolve().parents[1] / "reference" / "gsea"
EPS = 1e-13


@pytest.fixture(scope="module")
def ours() -> pd.DataFrame:
    res = prerank(
        read_rnk(REF / "toy.rnk"),
        read_gmt(REF / "toy.gmt"),
        GseaSettings(permutations=1000, seed=1, tail_eps=EPS),
    )
    return res.table.set_index("term")


def test_tail_p_within_stated_error_of_gseapy(ours: pd.DataFrame) -> None:
    gold = pd.read_csv(REF / "gseapy_multilevel.tsv", sep="\t").set_index("Term")
    both = ours.join(gold[["NOM p-val", "log2err"]], how="inner")
    assert len(both) == len(gold)
    above = both[both["NOM p-val"] > EPS * 2]
    z = np.log2(above["pvalue_tail"] / above["NOM p-val"]) / np.sqrt(
        above["log2err_tail"] ** 2 + above["log2err"] ** 2
    )
    assert np.all(np.abs(z) < 3), z[np.abs(z) >= 3]
    assert (above["NOM p-val"] < 1e-10).sum() >= 1  # at least one deep-tail comparison
    # gseapy's p below our floor: ours sits at the floor, never at 0
    below = both[both["NOM p-val"] <= EPS]
    assert (below["pvalue_tail"] == EPS).all()
    assert (ours["pvalue_tail"] > 0).all()


def test_q_from_tails_finite_and_ordered(ours: pd.DataFrame) -> None:
    assert (ours["fdr_tail"] > 0).all() and (ours["fdr_tail"] <= 1).all()
    for side in (ours["nes"] >= 0, ours["nes"] < 0):
        t = ours[side].sort_values("pvalue_tail")
        assert t["fdr_tail"].is_monotonic_increasing


def test_simple_estimate_kept_when_as_accurate() -> None:
    w = np.linspace(3, 0.01, 500)
    tp = tail_pvalues(
        w,
        np.array([0.3]),
        np.array([20]),
        n_perm=1000,
        n_beyond=np.array([200]),
        n_same_sign=np.array([500]),
    )
    assert not tp.used_multilevel[0]
    assert tp.pvalue[0] == pytest.approx(201 / 501)


def test_multilevel_error_formula() -> None:
    # fgsea: sqrt(floor(-log2 p + 1) * (trigamma((S+1)/2) - trigamma(S+1))) / log(2)
    assert multilevel_error(1e-10, 101) == pytest.approx(0.8391, abs=1e-3)


def _ranked_weights(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(np.abs(rng.standard_t(4, size=n)))[::-1]


def test_tail_p_of_a_set_does_not_depend_on_the_other_sets() -> None:
    # each ruler has its own random stream: same p alone or together
    w = _ranked_weights(800, 5)
    ks = np.array([18, 40, 95, 25])
    es = np.array([0.55, -0.5, 0.35, 0.6])
    kw = {"n_perm": 1000, "seed": 3, "eps": 1e-12}
    together = tail_pvalues(w, es, ks, n_beyond=np.zeros(4, int), n_same_sign=np.full(4, 500), **kw)
    assert together.used_multilevel.all()
    for i in range(4):
        alone = tail_pvalues(w, es[i : i + 1], ks[i : i + 1], n_beyond=[0], n_same_sign=[500], **kw)
        assert alone.pvalue[0] == together.pvalue[i]


def test_tail_p_matches_brute_force_within_stated_error() -> None:
    from exprlmm.gsea.enrichment import enrichment_scores
    from exprlmm.gsea.null import sample_sorted_subsets

    n, k = 1000, 20
    w = _ranked_weights(n, 11)
    rng = np.random.default_rng(12)
    null = np.concatenate(
        [enrichment_scores(sample_sorted_subsets(rng, n, k, 50_000), w, n).es for _ in range(6)]
    )
    x = float(np.quantile(null, 1 - 1e-3))  # a positive ES with p ≈ 2e-3 among ES ≥ 0
    n_pos = int((null >= 0).sum())
    n_hit = int((null >= x).sum())
    brute = n_hit / n_pos
    runs = [
        tail_pvalues(
            w,
            np.array([x]),
            np.array([k]),
            n_perm=null.size,
            n_beyond=np.array([0]),
            n_same_sign=np.array([n_pos]),
            seed=seed,
        )
        for seed in range(8)
    ]
    assert all(tp.used_multilevel[0] for tp in runs)
    log2p = np.array([np.log2(tp.pvalue[0]) for tp in runs])
    stated = np.array([tp.log2err[0] for tp in runs])
    # the mean of 8 independent runs, against its stated error and the brute-force error
    mc_err = 1 / np.sqrt(n_hit) / np.log(2)
    z = (log2p.mean() - np.log2(brute)) / np.hypot(stated.mean() / np.sqrt(8), mc_err)
    assert abs(z) < 3, (log2p, np.log2(brute), stated)
    # the stated error is the spread of single runs (not a gross under/over-statement)
    assert 0.5 < log2p.std(ddof=1) / stated.mean() < 2


def test_set_equal_to_the_list_gets_a_tail_p() -> None:
    # every random set of size N is the list itself: no level can be built (used to crash)
    genes = [f"G{i}" for i in range(20)]
    scores = pd.Series(np.linspace(3, -3, 20), index=genes)
    res = prerank(
        scores,
        {"ALL": genes, "TOP": genes[:5]},
        GseaSettings(permutations=200, seed=1, min_size=5),
    )
    row = res.table.set_index("term").loc["ALL"]
    assert 0.5 < row["pvalue_tail"] <= 1
