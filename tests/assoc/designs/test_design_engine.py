"""Invariants of the per-gene engine and the API (fit_design)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc.designs.api import fit_design
from exprlmm.assoc.designs.formula import build_design
from exprlmm.assoc.designs.reml import (
    consensus_ratios,
    fit_fixed_ratios,
    fit_variance_components,
)
from exprlmm.errors import UserInputError

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"


@pytest.fixture(scope="module")
def mouse():
    samples = pd.read_csv(REF / "mouse.tsv", sep="\t").set_index("animal")
    expr = pd.read_csv(REF / "mouse_sim.tsv", sep="\t", index_col=0)
    return samples.loc[expr.index], expr


def _gene_fit(samples, expr, **options):
    res = fit_design(expr, samples, "~ weight + urea + (1|group)", **options)
    return res.table.set_index(["gene", "term"]).sort_index()


@pytest.mark.parametrize("options", [{"variance": "gene", "ebayes": False}, {}])
def test_sample_order_does_not_matter(mouse, options):
    samples, expr = mouse
    order = np.random.default_rng(3).permutation(len(samples))
    a = _gene_fit(samples, expr, **options)
    b = _gene_fit(samples.iloc[order], expr.iloc[order], **options)
    np.testing.assert_allclose(
        a[["beta", "se", "df", "pvalue"]], b[["beta", "se", "df", "pvalue"]], rtol=1e-6
    )


def test_scaling_a_gene_scales_beta_only(mouse):
    samples, expr = mouse
    a = _gene_fit(samples, expr, variance="gene", ebayes=False)
    b = _gene_fit(samples, expr * 7.5 + 3.0, variance="gene", ebayes=False)
    np.testing.assert_allclose(b["beta"], 7.5 * a["beta"], rtol=1e-6)
    np.testing.assert_allclose(b["pvalue"], a["pvalue"], rtol=1e-6)
    np.testing.assert_array_equal(b["singular"], a["singular"])


def test_consensus_fit_has_n_minus_p_df(mouse):
    samples, expr = mouse
    design = build_design("~ weight + urea + (1|group)", samples)
    fit = fit_variance_components(expr.to_numpy(), design.x, design.kernels)
    ratio = consensus_ratios(fit)
    assert ratio.shape == (1,) and ratio[0] > 0
    fixed = fit_fixed_ratios(expr.to_numpy(), design.x, design.kernels, ratio)
    np.testing.assert_allclose(fixed.sigma2[:, 1], ratio[0] * fixed.sigma2[:, 0])
    res = fit_design(expr, samples, "~ weight + urea + (1|group)", ebayes=False)
    np.testing.assert_allclose(res.table["df"], 7.0, rtol=1e-9)


def test_ml_and_reml_differ_and_ml_is_smaller_variance(mouse):
    samples, expr = mouse
    design = build_design("~ weight + urea + (1|group)", samples)
    reml = fit_variance_components(expr.to_numpy(), design.x, design.kernels)
    ml = fit_variance_components(expr.to_numpy(), design.x, design.kernels, method="ml")
    total_reml = reml.sigma2.sum(axis=1)
    total_ml = ml.sigma2.sum(axis=1)
    assert np.all(total_ml <= total_reml * (1 + 1e-9))


def test_collinear_design_is_a_user_error(mouse):
    samples, expr = mouse
    with pytest.raises(UserInputError, match="collinear"):
        fit_design(expr, samples.assign(w2=2 * samples.weight), "~ weight + w2")


def test_unknown_test_term(mouse):
    samples, expr = mouse
    with pytest.raises(UserInputError, match="not a fixed term"):
        fit_design(expr, samples, "~ weight + urea", test=["age"])


def test_variable_name_selects_wrapped_term(mouse):
    samples, expr = mouse
    res = fit_design(expr, samples, "~ weight + C(group)", test=["group"], ebayes=False)
    assert set(res.table.term) == {"C(group)"} and (res.table["test"] == "F").all()


@pytest.mark.parametrize("weighted", [False, True])
def test_gene_blocks_do_not_change_results(mouse, weighted):
    samples, expr = mouse
    design = build_design("~ weight + urea + (1|group) + (1|weight.score)", samples)
    y = expr.to_numpy()
    w = np.random.default_rng(1).uniform(0.5, 2.0, y.shape) if weighted else None
    whole = fit_variance_components(y, design.x, design.kernels, weights=w)
    blocks = fit_variance_components(y, design.x, design.kernels, weights=w, chunk_size=6)
    np.testing.assert_allclose(blocks.sigma2, whole.sigma2, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(blocks.cov, whole.cov, rtol=1e-8)
    np.testing.assert_array_equal(blocks.singular, whole.singular)


def test_unconverged_genes_are_flagged(mouse):
    samples, expr = mouse
    design = build_design("~ weight + urea + (1|group) + (1|weight.score)", samples)
    short = fit_variance_components(expr.to_numpy(), design.x, design.kernels, max_iter=2)
    full = fit_variance_components(expr.to_numpy(), design.x, design.kernels)
    assert not short.converged.all()
    assert full.converged.all()
