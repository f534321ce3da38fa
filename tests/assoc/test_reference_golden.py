"""SLR and LMM against golden files made by tools we did not write.

tests/reference/lmm: FaST-LMM 0.6.13 (`single_snp`) and a dense base-R implementation
(Cholesky of the 80×80 V, R's `optimize`); tests/reference/slr: R `lm`. See the READMEs
there for how each file was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc import fit_null_model, lmm_scan, slr_scan
from exprlmm.kinship import eigensystem_from_expression

REF = Path(__file__).resolve().parents[1] / "reference"
LMM = REF / "lmm"
EXPR = pd.read_csv(LMM / "expression.tsv", sep="\t", index_col=0)
SHEET = pd.read_csv(LMM / "samples.tsv", sep="\t", index_col=0)
Y = SHEET["y"].to_numpy()
COVARIATES = {"nocov": None, "cov": SHEET[["purity", "group_B"]].to_numpy(dtype=float)}
EIG = eigensystem_from_expression(EXPR.to_numpy())


def _golden(name: str) -> pd.DataFrame:
    frame = pd.read_csv(LMM / name, sep="\t")
    assert list(frame.gene) == list(EXPR.columns)
    return frame


def _neglog10(p):
    return -np.log10(np.asarray(p, dtype=float))


def test_kinship_matches_reference_file():
    kinship = pd.read_csv(LMM / "kinship.tsv", sep="\t", index_col=0).to_numpy()
    rebuilt = (EIG.vectors * EIG.values) @ EIG.vectors.T
    # identical except the clipped zero eigenvalue (K·1 = 0 → 1e-6, PyLMM's convention)
    assert np.abs(rebuilt - kinship).max() < 2e-6
    assert EIG.values.min() == pytest.approx(1e-6)


@pytest.mark.parametrize("cov", ["nocov", "cov"])
def test_fixed_delta_matches_dense_r_and_fastlmm_sharply(cov):
    ours = lmm_scan(
        EXPR, Y, covariates=COVARIATES[cov], eigensystem=EIG, delta=1.0, standardize=False
    )
    dense = _golden(f"dense_r_delta1_{cov}.tsv")
    fast = _golden(f"fastlmm_{cov}_delta1.tsv")
    assert np.allclose(ours.beta, dense.beta, rtol=1e-9, atol=1e-12)
    assert np.allclose(ours.se, dense.se, rtol=1e-9)
    assert np.allclose(ours.stat, dense.t, rtol=1e-9, atol=1e-11)
    assert np.allclose(ours.df, dense.df)
    assert np.abs(_neglog10(ours.pvalue) - dense.neglog10p).max() < 1e-9
    assert np.abs(_neglog10(ours.pvalue) - fast.neglog10p).max() < 1e-9
    std = lmm_scan(EXPR, Y, covariates=COVARIATES[cov], eigensystem=EIG, delta=1.0)
    assert np.allclose(std.beta, fast.SnpWeight, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("cov", ["nocov", "cov"])
def test_null_delta_reml_matches_fastlmm_and_dense_r(cov):
    ours = lmm_scan(EXPR, Y, covariates=COVARIATES[cov], eigensystem=EIG, standardize=False)
    fast = _golden(f"fastlmm_{cov}.tsv")
    dense = _golden(f"dense_r_nulldelta_{cov}.tsv")
    assert np.abs(_neglog10(ours.pvalue) - fast.neglog10p).max() < 1e-6
    assert np.abs(_neglog10(ours.pvalue) - dense.neglog10p).max() < 1e-6
    assert np.allclose(ours.delta, dense.delta, rtol=1e-6)
    assert np.allclose(ours.h2, fast.Nullh2, rtol=1e-6)


@pytest.mark.parametrize("cov", ["nocov", "cov"])
@pytest.mark.parametrize("method", ["reml", "ml"])
def test_null_model_matches_dense_r(cov, method):
    null = fit_null_model(Y, EIG, covariates=COVARIATES[cov], method=method)
    table = pd.read_csv(LMM / "dense_r_null.tsv", sep="\t")
    row = table[(table.method == method) & (table.q_null == (1 if cov == "nocov" else 3))].iloc[0]
    assert null.delta == pytest.approx(row.delta, rel=1e-6)
    assert null.sigma2_g == pytest.approx(row.sigma2_g, rel=1e-6)
    # the clipped zero eigenvalue moves the ML likelihood by ~5e-7 (REML: not at all)
    expected = row.loglik_reml if method == "reml" else row.loglik_ml
    assert null.loglik == pytest.approx(expected, abs=1e-6 if method == "ml" else 1e-9)
    assert null.at_boundary == ""


@pytest.mark.parametrize("cov", ["nocov", "cov"])
@pytest.mark.parametrize("method", ["reml", "ml"])
def test_refit_matches_dense_r(cov, method):
    ours = lmm_scan(
        EXPR,
        Y,
        covariates=COVARIATES[cov],
        eigensystem=EIG,
        delta="refit",
        method=method,
        standardize=False,
    )
    dense = _golden(f"dense_r_{method}_{cov}.tsv")
    interior = (dense.at_bound == 0).to_numpy()
    assert interior.sum() > 250
    # the optimum is flat: δ agrees to ~1e-5 relative, −log10 p to a few 1e-6
    assert np.allclose(ours.delta[interior], dense.delta[interior], rtol=1e-4)
    assert np.abs(_neglog10(ours.pvalue) - dense.neglog10p)[interior].max() < 1e-5
    assert (np.abs(ours.beta - dense.beta) / dense.se)[interior].max() < 1e-5
    # genes whose supremum is h² = 0 sit at our upper bound (δ = e^10) ≈ the OLS limit
    at_zero = (dense.at_bound == 1).to_numpy()
    assert (ours.h2[at_zero] < 1e-4).all()
    assert np.allclose(ours.stat[at_zero], dense.t[at_zero], rtol=1e-3)


@pytest.mark.parametrize("cov", ["nocov", "cov"])
def test_lrt_at_fixed_delta_matches_dense_r(cov):
    ours = lmm_scan(EXPR, Y, covariates=COVARIATES[cov], eigensystem=EIG, delta=1.0, test="lrt")
    dense = _golden(f"dense_r_delta1_{cov}.tsv")
    assert np.allclose(ours.stat, dense.lrt_stat, rtol=1e-8, atol=1e-10)
    assert np.allclose(ours.pvalue, dense.lrt_pvalue, rtol=1e-8)


def test_lrt_ml_refit_matches_dense_r():
    ours = lmm_scan(
        EXPR,
        Y,
        covariates=COVARIATES["cov"],
        eigensystem=EIG,
        delta="refit",
        method="ml",
        test="lrt",
    )
    dense = _golden("dense_r_ml_cov.tsv")
    interior = (dense.at_bound == 0).to_numpy()
    assert np.allclose(ours.stat[interior], dense.lrt_stat[interior], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cov", ["nocov", "cov"])
def test_slr_matches_r_lm(cov):
    ours = slr_scan(EXPR, Y, covariates=COVARIATES[cov], standardize=False)
    golden = pd.read_csv(REF / "slr" / f"lm_{cov}.tsv", sep="\t")
    assert list(golden.gene) == list(ours.gene)
    assert np.allclose(ours.beta, golden.coef, rtol=1e-10, atol=1e-13)
    assert np.allclose(ours.se, golden.se, rtol=1e-10)
    assert np.allclose(ours.stat, golden.t, rtol=1e-10, atol=1e-12)
    assert np.allclose(ours.df, golden.df)
    assert np.abs(_neglog10(ours.pvalue) - golden.neglog10p).max() < 1e-10
