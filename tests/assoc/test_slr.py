"""SLR against statsmodels OLS and R `lm` (golden files in tests/reference/slr/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from exprlmm.assoc.slr import slr_scan

RNG = np.random.default_rng(11)
N, G = 30, 25
EXPR = RNG.normal(size=(N, G)) + RNG.normal(size=(N, 1))
TRAIT = EXPR[:, 0] * 0.5 + RNG.normal(size=N)
COV = np.column_stack([RNG.normal(size=N), RNG.integers(0, 2, N)])


@pytest.mark.parametrize("covariates", [None, COV])
def test_matches_statsmodels_ols(covariates):
    res = slr_scan(EXPR, TRAIT, covariates=covariates, standardize=False)
    base = np.ones((N, 1)) if covariates is None else sm.add_constant(covariates)
    for k in range(G):
        fit = sm.OLS(TRAIT, np.column_stack([base, EXPR[:, k]])).fit()
        assert res.beta[k] == pytest.approx(fit.params[-1], rel=1e-10, abs=1e-12)
        assert res.se[k] == pytest.approx(fit.bse[-1], rel=1e-10)
        assert res.stat[k] == pytest.approx(fit.tvalues[-1], rel=1e-10, abs=1e-12)
        assert res.pvalue[k] == pytest.approx(fit.pvalues[-1], rel=1e-10)
        assert res.df[k] == fit.df_resid


def test_padj_is_benjamini_hochberg():
    from statsmodels.stats.multitest import multipletests

    res = slr_scan(EXPR, TRAIT)
    assert np.allclose(res.padj, multipletests(res.pvalue, method="fdr_bh")[1], rtol=1e-12)


def test_standardized_beta_is_per_sd():
    raw = slr_scan(EXPR, TRAIT, standardize=False)
    std = slr_scan(EXPR, TRAIT)
    assert np.allclose(std.beta, raw.beta * EXPR.std(axis=0), rtol=1e-12)
    assert np.allclose(std.pvalue, raw.pvalue, rtol=1e-12)


def test_dataframe_input_keeps_gene_names_and_chunks_agree():
    frame = pd.DataFrame(EXPR, columns=[f"g{k}" for k in range(G)])
    a = slr_scan(frame, TRAIT, chunk_size=4)
    b = slr_scan(frame, TRAIT)
    assert list(a.gene) == list(frame.columns)
    assert np.allclose(a.pvalue, b.pvalue, rtol=1e-12)


def test_gene_collinear_with_covariates_gives_nan():
    expr = EXPR.copy()
    expr[:, 3] = 2.0 * COV[:, 0] + 1.0
    res = slr_scan(expr, TRAIT, covariates=COV)
    assert np.isnan(res.pvalue[3])
    assert np.isfinite(res.pvalue.drop(3)).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_permuting_samples_leaves_results_unchanged(seed):
    order = np.random.default_rng(seed).permutation(N)
    a = slr_scan(EXPR, TRAIT, covariates=COV)
    b = slr_scan(EXPR[order], TRAIT[order], covariates=COV[order])
    assert np.allclose(a.pvalue, b.pvalue, rtol=1e-10)
