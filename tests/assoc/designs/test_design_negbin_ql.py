"""Quasi-likelihood F test of the negative-binomial option vs edgeR 3.40.2 / limma 3.54.1.

Golden files made by ``tests/reference/designs/nb_make_ql_golden.R``: the seeded simulated
counts (sim_counts.tsv.gz, filterByExpr + TMM as test_design_negbin.py), design
``~ weight + urea + group``, and the first 20 kept genes set to 0 in group 1 (so that edgeR's
residual-df adjustment for exact zeros is exercised), then ``estimateGLMCommonDisp`` +
``glmQLFit`` + ``glmQLFTest``. ``tight``: edgeR's Levenberg IRLS run to tol 1e-13 and the
common dispersion optimised to 1e-10, so the maths can be compared exactly; ``default``:
edgeR as installed (IRLS tol 1e-6, optimize tol 1e-5).

Tolerances (measured values in brackets):

* Given edgeR's common dispersion (tight): AveLogCPM 1e-10 absolute [7e-15]; zero-adjusted
  residual df exactly; deviance 1e-6 relative [5e-10; 7.7e-8 for the 20 genes with a group
  of zeros, where edgeR adds 1e-8 to y and μ]; prior df d0, trended prior and posterior QL
  dispersions 1e-7 relative [1.4e-9]; F ``rtol 1e-6, atol 1e-7`` [abs ≤ 1.7e-8 where F is
  small (the LR is accurate to ~1e-8 absolute, as in test_design_negbin.py), ≤ 2e-7 relative
  otherwise]; p-values 1e-6 relative [7.2e-7]; denominator df 1e-6 absolute [1.3e-8];
  Poisson-bound flags exactly.
* limma ``squeezeVar`` with the abundance trend, 6 genes on 0 df (left out of the fit and
  extrapolated): 1e-10 relative (same inputs, closed-form maths).
* Common dispersion without the zero-group genes: 2e-5 relative [3.5e-6; edgeR's APL carries
  its IRLS error]; on edgeR's systematic subset of 500 genes: 2e-5 [1.2e-7].
  With the 20 zero-group genes the Cox–Reid term of those genes is degenerate (the fitted
  means of the zero group go to 0 and log det(XᵀWX) to −∞; edgeR floors its LDLᵀ pivots at
  1e-10 after Bunch–Kaufman pivoting, we do not), and the common dispersions differ by
  8.6e-4 relative: tested to 2e-3.
* End to end (``fit_design_negbin``, our common dispersion) vs edgeR as installed (common
  dispersion 1.8e-3 off the exact optimiser, IRLS tol 1e-6): p-values 1e-2 relative
  [2.9e-3], identical BH calls at 5 % (0, 0 and 28 genes).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.assoc._common import benjamini_hochberg
from exprlmm.assoc.designs.api import fit_design_negbin
from exprlmm.assoc.designs.ebayes import natural_spline_basis, squeeze_var_trend
from exprlmm.assoc.designs.negbin import (
    ave_log_cpm,
    common_dispersion,
    fit_nb_glm,
    nb_ql_fit,
    nb_ql_ftest,
    residual_df_zeros,
)
from exprlmm.cli import cli

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"
TERMS = {"weight": [1], "urea": [2], "group": [3, 4]}


def _prior(name):
    lines = (REF / f"nb_ql_{name}_prior.txt").read_text().splitlines()
    return {k: float(v) for k, v in (line.split() for line in lines)}


@pytest.fixture(scope="module")
def sim(nb_sim):
    # the QL references zero the first 20 kept genes in group 1 (after TMM): exact zeros
    c = nb_sim["c"].copy()
    c[np.ix_(nb_sim["mouse"]["group"].to_numpy() == 1, np.arange(20))] = 0.0
    return {**nb_sim, "c": c}


@pytest.fixture(scope="module")
def tight(sim):
    g = pd.read_csv(REF / "nb_ql_tight.tsv.gz", sep="\t")
    assert list(g["gene"]) == list(sim["genes"])
    return g


@pytest.fixture(scope="module")
def ql(sim):
    phi = _prior("tight")["common_dispersion"]
    ab = ave_log_cpm(sim["c"], sim["lib"], dispersion=phi)
    return nb_ql_fit(sim["c"], sim["x"], sim["off"], phi, abundance=ab), ab


def test_ave_log_cpm_matches_edger(ql, tight):
    np.testing.assert_allclose(ql[1], tight["AveLogCPM"], rtol=0, atol=1e-10)


def test_residual_df_adjusted_for_zeros(sim, ql, tight):
    fit = ql[0]
    np.testing.assert_array_equal(fit.df_residual, tight["df_residual"])
    # 10 samples − 3 zeros − rank 4 (the intercept is a sum of the two remaining groups)
    assert (fit.df_residual[:20] == 3).all() and (fit.df_residual[20:] == 5).all()
    np.testing.assert_array_equal(
        residual_df_zeros(sim["c"], fit.glm.mu, sim["x"]), fit.df_residual
    )


def test_ql_dispersions_match_edger(ql, tight):
    fit = ql[0]
    np.testing.assert_allclose(fit.glm.deviance, tight["deviance"], rtol=1e-6)
    np.testing.assert_allclose(fit.df_prior, _prior("tight")["df_prior"], rtol=1e-7)
    np.testing.assert_allclose(fit.var_prior, tight["var_prior"], rtol=1e-7)
    np.testing.assert_allclose(fit.var_post, tight["var_post"], rtol=1e-7)


@pytest.mark.parametrize("term", list(TERMS))
def test_ql_ftest_matches_edger(sim, ql, tight, term):
    res = nb_ql_ftest(sim["c"], sim["x"], sim["off"], ql[0], TERMS[term])
    np.testing.assert_allclose(res["stat"], tight[f"F_{term}"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(res["pvalue"], tight[f"p_{term}"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(res["df"], tight[f"df_total_{term}"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(res["below_poisson"], tight["below_poisson"])
    assert res["below_poisson"].sum() > 0  # the Poisson bound is exercised
    assert (res["ndf"] == len(TERMS[term])).all()


def test_squeeze_var_trend_matches_limma(tight):
    sv = squeeze_var_trend(
        tight["s2"].to_numpy(), tight["sv_df"].to_numpy(float), tight["AveLogCPM"].to_numpy()
    )
    assert (tight["sv_df"] == 0).sum() == 6
    np.testing.assert_allclose(sv["df_prior"], _prior("tight")["sv_df_prior"], rtol=1e-10)
    np.testing.assert_allclose(sv["var_prior"], tight["sv_var_prior"], rtol=1e-10)
    np.testing.assert_allclose(sv["var_post"], tight["sv_var_post"], rtol=1e-10)


def test_natural_spline_basis_spans_natural_cubic_splines():
    from scipy.interpolate import CubicSpline

    knots = np.array([-1.5, 0.3, 2.0, 6.0])
    values = np.array([0.4, -1.0, 2.5, 1.0])
    # the interpolating natural cubic spline (scipy, independent) lies in the span
    coef = np.linalg.solve(natural_spline_basis(knots, knots), values)
    t = np.linspace(-1.5, 6.0, 41)
    spline = CubicSpline(knots, values, bc_type="natural")
    np.testing.assert_allclose(natural_spline_basis(t, knots) @ coef, spline(t), atol=1e-12)
    # linear beyond the boundary knots (as splines::ns and its predict method)
    out = natural_spline_basis(np.array([-4.0, -3.0, -2.0, 7.0, 8.0, 9.0]), knots) @ coef
    np.testing.assert_allclose(out[0] - 2 * out[1] + out[2], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[3] - 2 * out[4] + out[5], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[1] - out[2], -spline(-1.5, 1), rtol=1e-12)


def test_common_dispersion_matches_edger(sim):
    ref = _prior("tight")
    c = sim["c"][:, 20:]
    ours = common_dispersion(c, sim["x"], sim["off"])
    np.testing.assert_allclose(ours, ref["common_dispersion_without_zero_genes"], rtol=2e-5)
    sub = common_dispersion(c, sim["x"], sim["off"], subset=500)
    np.testing.assert_allclose(
        sub, ref["common_dispersion_without_zero_genes_subset500"], rtol=2e-5
    )
    # with the 20 genes whose group-1 fitted means go to 0 (degenerate Cox–Reid term)
    full = common_dispersion(sim["c"], sim["x"], sim["off"])
    np.testing.assert_allclose(full, ref["common_dispersion"], rtol=2e-3)


def test_end_to_end_matches_edger_default(sim):
    default = pd.read_csv(REF / "nb_ql_default.tsv.gz", sep="\t")
    samples = sim["mouse"].set_index("animal")
    counts = pd.DataFrame(sim["c"], index=samples.index, columns=sim["genes"])
    res = fit_design_negbin(counts, samples, "~ weight + urea + C(group)", lib_size=sim["lib"])
    assert set(res.table["test"]) == {"F"}
    for term, name in (("weight", "weight"), ("urea", "urea"), ("C(group)", "group")):
        part = res.table[res.table["term"] == term]
        ref = default[f"p_{name}"].to_numpy()
        np.testing.assert_allclose(part["pvalue"].to_numpy(), ref, rtol=1e-2)
        calls = benjamini_hochberg(ref) < 0.05
        np.testing.assert_array_equal(part["padj"].to_numpy() < 0.05, calls)


def test_fit_design_negbin_ql_table(sim):
    samples = sim["mouse"].set_index("animal")
    counts = pd.DataFrame(sim["c"][:, 20:400], index=samples.index, columns=sim["genes"][20:400])
    res = fit_design_negbin(counts, samples, "~ weight + urea + C(group)", lib_size=sim["lib"])
    assert res.settings["nb_test"] == "ql"
    assert set(res.table["test"]) == {"F"}
    v = res.variance
    assert {"ql_dispersion", "ql_dispersion_post", "ql_df_residual"} <= set(v.columns)
    assert np.unique(v["dispersion"]).size == 1
    d0 = res.settings["ql_df_prior"]
    weight = res.table[res.table["term"] == "weight"]
    np.testing.assert_allclose(weight["df"], d0 + v["ql_df_residual"], rtol=1e-12)
    assert (weight["ndf"] == 1).all()
    # se = Wald SE at the common dispersion × posterior QL standard deviation (log2 scale)
    fit = fit_nb_glm(counts.to_numpy(), sim["x"], sim["off"], v["dispersion"].to_numpy())
    se = np.sqrt(fit.cov[:, 1, 1] * v["ql_dispersion_post"].to_numpy()) / np.log(2.0)
    np.testing.assert_allclose(weight["se"], se, rtol=1e-10)
    grp = res.table[res.table["term"] == "C(group)"]
    assert grp["beta"].isna().all() and (grp["ndf"] == 2).all()


@pytest.fixture
def files(design_files):
    return design_files(200)


def _args(files, out, *extra, formula="~ weight + urea + C(group)"):
    return [
        "design",
        "--counts",
        str(files["counts"]),
        "--samples",
        str(files["sheet"]),
        "--formula",
        formula,
        *extra,
        "-o",
        str(out),
    ]


def test_cli_negbin_defaults_to_ql(files):
    import json

    out = files["dir"] / "nb.tsv"
    res = CliRunner().invoke(cli, _args(files, out, "--family", "negbin"), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "quasi-likelihood F" in res.output
    table = pd.read_csv(out, sep="\t")
    assert set(table["test"]) == {"F"}
    assert {"dispersion", "ql_dispersion_post", "ql_df_residual"} <= set(table.columns)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["settings"]["nb_test"] == "ql"
    assert record["fit"]["ql_df_prior"] > 0


def test_cli_nb_test_needs_negbin(files):
    out = files["dir"] / "bad.tsv"
    res = CliRunner().invoke(cli, _args(files, out, "--nb-test", "lrt"))
    assert res.exit_code == 2
    assert "--nb-test applies to --family negbin only" in res.output
    assert not out.exists()
