"""Purity maths against independent computations (brute force, scipy, set algebra)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from exprlmm.assoc import slr_scan
from exprlmm.study.purity import (
    purity_associated_genes,
    purity_gene_sets,
    purity_positions,
    purity_summary,
    set_overlap,
)


def _scan(rng: np.random.Generator, g: int = 300) -> pd.DataFrame:
    stat = rng.standard_t(4, size=g)
    p = 2 * stats.t.sf(np.abs(stat), df=50)
    padj = np.minimum(1, p * g / stats.rankdata(p))  # crude, only used as a threshold input
    return pd.DataFrame(
        {"gene": [f"g{i}" for i in range(g)], "stat": stat, "pvalue": p, "padj": padj}
    )


def test_purity_genes_match_pearson_correlation_tests():
    rng = np.random.default_rng(3)
    n, g = 40, 120
    purity = rng.uniform(0.2, 0.9, n)
    x = rng.normal(size=(n, g))
    x[:, :20] += 4 * purity[:, None]
    x[:, 20:30] -= 4 * purity[:, None]
    scan = slr_scan(x, purity, gene_names=[f"g{i}" for i in range(g)])
    out = purity_associated_genes(scan, alpha=0.01)
    ref_p = np.array([stats.pearsonr(purity, x[:, k]).pvalue for k in range(g)])
    ref_r = np.array([stats.pearsonr(purity, x[:, k]).statistic for k in range(g)])
    np.testing.assert_allclose(out["pvalue"], ref_p, rtol=1e-9)
    bonf = np.minimum(1, ref_p * g)
    np.testing.assert_allclose(out["p_bonferroni"], bonf, rtol=1e-9)
    assert (out["purity_associated"] == (bonf < 0.01)).all()
    expected = np.where(bonf < 0.01, np.where(ref_r > 0, "positive", "negative"), "")
    assert (out["direction"].to_numpy() == expected).all()
    sets = purity_gene_sets(out)
    assert set(sets["PURITY_POSITIVE"]) <= {f"g{i}" for i in range(20)}
    assert set(sets["PURITY_NEGATIVE"]) <= {f"g{i}" for i in range(20, 30)}


def test_positions_equal_pandas_first_rank_of_negative_stat():
    rng = np.random.default_rng(1)
    scan = _scan(rng)
    scan.loc[5, "stat"] = scan.loc[6, "stat"]  # a tie: file order decides
    flagged = scan["gene"].iloc[[5, 6, 10, 200]]
    genes = pd.DataFrame(
        {
            "gene": [*flagged, "absent_gene"],
            "purity_associated": True,
            "direction": ["positive", "negative", "positive", "negative", "positive"],
        }
    )
    pos = purity_positions(scan, genes, "slr")
    ref = (-scan["stat"]).rank(method="first").astype(int)
    ref.index = scan["gene"]
    assert list(pos.columns) == ["model", "gene", "direction", "rank", "n_genes"]
    assert len(pos) == 4 and (pos["n_genes"] == len(scan)).all()
    for _, row in pos.iterrows():
        assert row["rank"] == ref[row["gene"]]
    assert pos["rank"].is_monotonic_increasing


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n_purity=st.integers(1, 60), top_n=st.integers(1, 400))
def test_summary_matches_brute_force(seed, n_purity, top_n):
    rng = np.random.default_rng(seed)
    scan = _scan(rng)
    scan["pvalue"] = np.round(scan["pvalue"], 2)  # ties in p
    flagged = rng.choice(scan["gene"], size=n_purity, replace=False)
    out = purity_summary(scan, flagged, "lmm", top_n=top_n, fdr=0.1)
    is_p = scan["gene"].isin(flagged).to_numpy()
    p = scan["pvalue"].to_numpy()
    # AUC by explicit pairs: P(p_purity < p_other) + 0.5 P(equal)
    a, b = p[is_p][:, None], p[~is_p][None, :]
    auc = ((a < b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size)
    assert out["rank_auc"] == pytest.approx(auc, abs=1e-12)
    # top by p, ties broken by larger |stat|
    ordered = sorted(range(len(p)), key=lambda i: (p[i], -abs(scan["stat"].iloc[i])))
    top = ordered[: min(top_n, len(p))]
    assert out["n_purity_in_top"] == int(is_p[top].sum())
    assert out["share_expected"] == pytest.approx(n_purity / len(p))
    sig = scan["padj"].to_numpy() < 0.1
    assert out["n_trait_assoc"] == sig.sum()
    assert out["n_overlap"] == (sig & is_p).sum()


def test_rank_test_detects_enrichment_and_its_absence():
    rng = np.random.default_rng(7)
    scan = _scan(rng, g=2000)
    best = scan.sort_values("pvalue")["gene"].iloc[:100]
    assert purity_summary(scan, best, "slr")["rank_pvalue"] < 1e-30
    assert purity_summary(scan, best, "slr")["rank_auc"] > 0.9
    null = rng.choice(scan["gene"], 100, replace=False)
    assert 0.4 < purity_summary(scan, null, "slr")["rank_auc"] < 0.6


def test_set_overlap_is_set_algebra():
    purity = pd.DataFrame(
        {
            "term": ["A", "B", "C", "D", "PURITY_POSITIVE"],
            "nes": [2.0, 1.5, -2.0, 1.2, 3.0],
            "fdr": [0.01, 0.2, 0.01, 0.5, 0.0],
        }
    )
    trait = pd.DataFrame(
        {
            "term": ["A", "B", "C", "E", "PURITY_POSITIVE"],
            "nes": [1.8, -1.5, -2.2, 2.0, 2.0],
            "fdr": [0.1, 0.01, 0.3, 0.01, 0.0],
        }
    )
    out = set_overlap(purity, trait, "lmm", set_fdr=0.25).set_index("direction")
    # positive: purity {A, B}, trait {A, E} → overlap {A}, union {A, B, E}
    assert out.loc["positive", ["n_purity_sets", "n_trait_sets", "n_overlap"]].tolist() == [2, 2, 1]
    assert out.loc["positive", "jaccard"] == pytest.approx(1 / 3)
    # negative: purity {C}, trait {B} (C has q 0.3) → no overlap
    assert out.loc["negative", ["n_purity_sets", "n_trait_sets", "n_overlap"]].tolist() == [1, 1, 0]
    assert out.loc["negative", "jaccard"] == 0
