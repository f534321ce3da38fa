"""Negative-binomial option vs edgeR (golden files made by nb_make_golden.R).

Data: the seeded simulated counts (sim_counts.tsv.gz, 2,000 genes × the 10 mice), design
``~ weight + urea + group`` (group categorical), TMM offsets. Tolerances:

* GLM at a common dispersion 0.1 (all 2,000 genes) vs edgeR's Levenberg IRLS run to
  tol = 1e-13: coefficients 5e-5 absolute (measured 5e-6; edgeR adds 1e-8 to y and μ in its
  deviance, so its own optimum is that loose), deviance 1e-8 relative (5e-10), LR 1e-6
  absolute (3e-8). vs edgeR's default glmFit/glmLRT (tol 1e-6): LR 5e-3 absolute (1.8e-3),
  p 5e-3 relative (9e-4).
* Cox–Reid adjusted profile log-likelihood at φ = 0.01, 0.1, 1 (300 genes) vs
  ``adjustedProfileLik``: 2e-5 absolute (measured 5e-6, edgeR's GLM tolerance).
* Per-gene dispersion (300 genes) vs ``dispCoxReid`` per gene (optimize, tol 1e-10 on φ^¼):
  2e-4 relative where edgeR's φ > 1e-4 (measured 4.5e-5); our APL at our φ is never below
  the APL at edgeR's φ by more than 1e-7.
* LRT at edgeR's per-gene dispersions vs glmLRT: LR 5e-3 absolute, logFC 1e-3 absolute.
* Dispersions shrunk to the common APL (prior.df 10, all 2,000 genes) vs edgeR
  ``estimateGLMTagwiseDisp(prior.df = 10, trend = FALSE)``: 1.5e-2 relative, median 5e-3
  (measured max 8.8e-3, median 2.7e-3: edgeR maximises a spline through an 11-point grid).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.assoc.designs.api import fit_design_negbin
from exprlmm.assoc.designs.inference import TEST_COLUMNS
from exprlmm.assoc.designs.negbin import (
    adjusted_profile_loglik,
    estimate_dispersion,
    fit_nb_glm,
    nb_lrt,
)
from exprlmm.cli import cli
from exprlmm.errors import UserInputError

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"
TERMS = {"weight": [1], "urea": [2], "group": [3, 4]}


@pytest.fixture(scope="module")
def sim(nb_sim):
    return nb_sim


@pytest.fixture(scope="module")
def golden_common():
    return pd.read_csv(REF / "nb_glm_common.tsv.gz", sep="\t")


@pytest.fixture(scope="module")
def golden_disp():
    return pd.read_csv(REF / "nb_dispersion.tsv", sep="\t")


def test_offsets_match_edger(sim):
    np.testing.assert_allclose(sim["off"], np.loadtxt(REF / "nb_offset.txt"), rtol=1e-14)


def test_glm_matches_edger_at_common_dispersion(sim, golden_common):
    g = golden_common
    assert list(g["gene"]) == list(sim["counts"].columns)
    fit = fit_nb_glm(sim["c"], sim["x"], sim["off"], 0.1)
    assert fit.converged.all()
    tight = g.filter(like="tight_").iloc[:, :5].to_numpy()
    np.testing.assert_allclose(fit.beta, tight, rtol=0, atol=5e-5)
    np.testing.assert_allclose(fit.deviance, g["tight_deviance"], rtol=1e-8)
    for term, cols in TERMS.items():
        res = nb_lrt(sim["c"], sim["x"], sim["off"], 0.1, cols, full=fit)
        np.testing.assert_allclose(res["stat"], g[f"tight_lr_{term}"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(res["stat"], g[f"lr_{term}"], rtol=0, atol=5e-3)
        np.testing.assert_allclose(res["pvalue"], g[f"p_{term}"], rtol=5e-3)


def test_adjusted_profile_loglik_matches_edger(sim, golden_disp):
    c = sim["c"][:, :300]
    for phi in ("0.01", "0.1", "1"):
        apl = adjusted_profile_loglik(c, sim["x"], sim["off"], float(phi))
        np.testing.assert_allclose(apl, golden_disp[f"apl_{phi}"], rtol=0, atol=2e-5)


def test_dispersion_matches_cox_reid(sim, golden_disp):
    c = sim["c"][:, :300]
    disp = estimate_dispersion(c, sim["x"], sim["off"])
    ref = golden_disp["disp_coxreid"].to_numpy()
    inner = ref > 1e-4
    assert inner.sum() >= 295
    np.testing.assert_allclose(disp.dispersion[inner], ref[inner], rtol=2e-4)
    # genes that edgeR puts at (near) zero sit at our lower bound (Poisson-like)
    assert np.all(disp.at_lower_bound[~inner])
    assert np.all(disp.dispersion[~inner] == pytest.approx(1e-6))
    at_ref = adjusted_profile_loglik(c, sim["x"], sim["off"], np.maximum(ref, 1e-12))
    assert np.all(disp.apl[inner] >= at_ref[inner] - 1e-7)


def test_lrt_at_edger_dispersions_matches_glmlrt(sim, golden_disp):
    c = sim["c"][:, :300]
    phi = golden_disp["disp_coxreid"].to_numpy()
    fit = fit_nb_glm(c, sim["x"], sim["off"], phi)
    for term, col in (("weight", 1), ("urea", 2)):
        res = nb_lrt(c, sim["x"], sim["off"], phi, [col], full=fit)
        np.testing.assert_allclose(res["stat"], golden_disp[f"lr_{term}"], rtol=0, atol=5e-3)
        logfc = fit.beta[:, col] / np.log(2.0)
        np.testing.assert_allclose(logfc, golden_disp[f"logFC_{term}"], rtol=0, atol=1e-3)


def test_genes_are_fitted_independently(sim):
    c = sim["c"][:, :60]
    full = estimate_dispersion(c, sim["x"], sim["off"])
    part = estimate_dispersion(c[:, 20:40], sim["x"], sim["off"])
    np.testing.assert_allclose(part.dispersion, full.dispersion[20:40], rtol=1e-5)
    fit = fit_nb_glm(c, sim["x"], sim["off"], full.dispersion)
    one = fit_nb_glm(c[:, [7]], sim["x"], sim["off"], full.dispersion[[7]])
    np.testing.assert_allclose(one.beta[0], fit.beta[7], rtol=1e-8, atol=1e-10)


def test_prior_df_matches_edger_weighted_likelihood(sim):
    # edgeR estimateGLMTagwiseDisp(prior.df = 10, trend = FALSE) from the common dispersion:
    # the same weighted likelihood, maximised on an 11-point grid by spline interpolation
    lines = (REF / "nb_dispersion_prior10.txt").read_text().split()
    ref = np.array([float(v) for v in lines[2:]])
    shrunk = estimate_dispersion(sim["c"], sim["x"], sim["off"], prior_df=10)
    np.testing.assert_allclose(shrunk.dispersion, ref, rtol=1.5e-2)
    assert np.median(np.abs(shrunk.dispersion / ref - 1)) < 5e-3
    own = estimate_dispersion(sim["c"][:, :200], sim["x"], sim["off"])
    spread = np.std(np.log(own.dispersion[~own.at_lower_bound]))
    assert np.std(np.log(shrunk.dispersion[:200])) < 0.8 * spread
    assert "prior.df = 10" in shrunk.method


def test_group_of_zeros_converges_in_deviance():
    rng = np.random.default_rng(3)
    x = np.column_stack([np.ones(9), np.repeat([0.0, 1.0, 0.0], 3), np.repeat([0.0, 0.0, 1.0], 3)])
    y = rng.poisson(50, (9, 4)).astype(float)
    y[6:, 0] = 0.0  # third group all zero: its coefficient runs to -inf
    fit = fit_nb_glm(y, x, np.zeros(9), 0.1)
    assert fit.converged.all()
    assert fit.beta[0, 2] < -15
    assert np.all(np.isfinite(fit.deviance))


@pytest.mark.parametrize("prior_df", [0.0, 10.0])
def test_sparse_overdispersed_counts_stay_finite(prior_df):
    # very low, very overdispersed counts, a gene with a single read and a gene that is zero
    # in one group: no overflow/underflow warnings (errors under pytest), finite results
    rng = np.random.default_rng(1)
    x = np.column_stack([np.ones(10), rng.normal(size=10), np.repeat([0.0, 1.0], 5)])
    mu = rng.uniform(0, 3, (1, 300))
    y = rng.negative_binomial(0.5, 0.5 / (0.5 + mu), (10, 300)).astype(float)
    y[:, 0] = 0.0
    y[9, 0] = 1.0
    y[:, 1] = 0.0
    y[:5, 1] = 1000.0
    y = y[:, y.sum(axis=0) > 0]
    disp = estimate_dispersion(y, x, np.zeros(10), prior_df=prior_df)
    assert np.all(np.isfinite(disp.dispersion)) and np.all(np.isfinite(disp.apl))
    fit = fit_nb_glm(y, x, np.zeros(10), disp.dispersion)
    assert fit.converged.all()
    res = nb_lrt(y, x, np.zeros(10), disp.dispersion, [1], full=fit)
    assert np.all((res["pvalue"] >= 0) & (res["pvalue"] <= 1))


def test_fit_design_negbin_table(sim):
    counts = sim["counts"].iloc[:, :150]
    samples = sim["mouse"].set_index("animal")
    counts.index = samples.index
    lib = np.exp(sim["off"])
    res = fit_design_negbin(
        counts, samples, "~ weight + urea + C(group)", lib_size=lib, test_method="lrt"
    )
    assert list(res.table.columns) == [*TEST_COLUMNS, "singular"]
    assert res.tested == ("weight", "urea", "C(group)")
    assert set(res.table["test"]) == {"LRT"}
    grp = res.table[res.table["term"] == "C(group)"]
    assert grp["beta"].isna().all() and (grp["ndf"] == 2).all()
    assert {"dispersion", "converged", "loglik"} <= set(res.variance.columns)
    assert res.settings["family"] == "negbin"
    assert "Cox-Reid" in res.settings["dispersion_method"]
    weight = res.table[res.table["term"] == "weight"]
    phi = res.variance["dispersion"].to_numpy()
    fit = fit_nb_glm(sim["c"][:, :150], sim["x"], sim["off"], phi)
    np.testing.assert_allclose(weight["beta"], fit.beta[:, 1] / np.log(2.0), rtol=1e-12)


def test_fit_design_negbin_refuses_random_effects(sim):
    samples = sim["mouse"].set_index("animal")
    counts = sim["counts"].iloc[:, :20]
    counts.index = samples.index
    with pytest.raises(UserInputError, match="fixed-effects designs only"):
        fit_design_negbin(counts, samples, "~ weight + urea + (1|group)")


@pytest.fixture
def files(design_files):
    return design_files(120)


def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_family_negbin(files):
    out = files["dir"] / "nb.tsv"
    res = _run(
        [
            "design",
            "--counts",
            str(files["counts"]),
            "--samples",
            str(files["sheet"]),
            "--formula",
            "~ weight + urea + C(group)",
            "--test",
            "weight,urea",
            "--family",
            "negbin",
            "--nb-test",
            "lrt",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, sep="\t")
    assert set(table["term"]) == {"weight", "urea"}
    assert set(table["test"]) == {"LRT"}
    assert {"dispersion", "converged"} <= set(table.columns)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["settings"]["family"] == "negbin"
    assert record["settings"]["nb_test"] == "lrt"
    assert "Cox-Reid" in record["fit"]["dispersion_method"]


@pytest.mark.parametrize(
    ("extra", "formula", "message"),
    [
        ([], "~ weight + urea + (1|group)", "fixed-effects designs only"),
        (["--ddf", "kenward-roger"], "~ weight + urea", "--nb-test"),
    ],
)
def test_cli_family_negbin_user_errors(files, extra, formula, message):
    out = files["dir"] / "bad.tsv"
    res = CliRunner().invoke(
        cli,
        [
            "design",
            "--counts",
            str(files["counts"]),
            "--samples",
            str(files["sheet"]),
            "--formula",
            formula,
            "--family",
            "negbin",
            *extra,
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 2
    assert message in res.output
    assert not out.exists()


def test_cli_family_negbin_needs_counts(files, tmp_path):
    expr = tmp_path / "logexpr.tsv"
    pd.read_csv(files["counts"], sep="\t", index_col=0).pipe(np.log1p).to_csv(expr, sep="\t")
    res = CliRunner().invoke(
        cli,
        [
            "design",
            "--expression",
            str(expr),
            "--samples",
            str(files["sheet"]),
            "--formula",
            "~ weight + urea",
            "--family",
            "negbin",
            "-o",
            str(tmp_path / "x.tsv"),
        ],
    )
    assert res.exit_code == 2
    assert "--counts" in res.output
