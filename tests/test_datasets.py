"""Tests for exprlmm.datasets: determinism, shapes and the simulated correlation structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exprlmm.datasets import CohortSettings, SimulatedCohort, confounded_cohort, toy

SMALL = {"n_samples": 300, "n_genes": 400, "n_factors": 5, "n_causal": 8}


def _corr_with(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``matrix`` with ``vector``."""
    m = matrix - matrix.mean(axis=0)
    v = vector - vector.mean()
    return (m.T @ v) / (np.linalg.norm(m, axis=0) * np.linalg.norm(v))


def _residualise(a: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Residuals of ``a`` (vector or matrix) after least squares on ``design``."""
    coef, *_ = np.linalg.lstsq(design, a, rcond=None)
    return a - design @ coef


@pytest.fixture(scope="module")
def cohort() -> SimulatedCohort:
    return confounded_cohort(7, **SMALL)


def test_confounded_cohort_is_deterministic_by_seed() -> None:
    a = confounded_cohort(3, **SMALL)
    b = confounded_cohort(3, **SMALL)
    pd.testing.assert_frame_equal(a.expression, b.expression)
    pd.testing.assert_series_equal(a.trait, b.trait)
    pd.testing.assert_series_equal(a.purity, b.purity)
    np.testing.assert_array_equal(a.is_causal, b.is_causal)
    np.testing.assert_array_equal(a.is_purity_gene, b.is_purity_gene)
    assert a.settings == b.settings
    c = confounded_cohort(4, **SMALL)
    assert not np.allclose(a.expression.to_numpy(), c.expression.to_numpy())
    assert not np.array_equal(a.is_causal, c.is_causal)


def test_settings_reproduce_the_cohort(cohort: SimulatedCohort) -> None:
    settings = cohort.settings.to_dict()
    seed = settings.pop("seed")
    again = confounded_cohort(seed, **settings)
    pd.testing.assert_frame_equal(again.expression, cohort.expression)
    assert isinstance(cohort.settings, CohortSettings)


def test_shapes_names_and_counts(cohort: SimulatedCohort) -> None:
    n, g = SMALL["n_samples"], SMALL["n_genes"]
    assert cohort.expression.shape == (n, g)
    assert cohort.expression.index.name == "sample"
    assert cohort.expression.columns.name == "gene"
    assert cohort.expression.index.is_unique and cohort.expression.columns.is_unique
    assert list(cohort.trait.index) == list(cohort.expression.index)
    assert list(cohort.purity.index) == list(cohort.expression.index)
    assert cohort.factors.shape == (n, SMALL["n_factors"] - 1)
    assert cohort.is_causal.shape == cohort.is_purity_gene.shape == (g,)
    assert cohort.is_causal.dtype == bool and cohort.is_purity_gene.dtype == bool
    assert cohort.is_causal.sum() == SMALL["n_causal"]
    assert cohort.is_purity_gene.sum() == round(0.25 * g)
    np.testing.assert_array_equal(cohort.is_confounded, cohort.is_purity_gene & ~cohort.is_causal)
    assert np.isfinite(cohort.expression.to_numpy()).all()
    assert ((cohort.purity > 0) & (cohort.purity < 1)).all()


def test_masks_are_read_only(cohort: SimulatedCohort) -> None:
    with pytest.raises(ValueError, match="read-only"):
        cohort.is_causal[0] = not cohort.is_causal[0]


def test_trait_is_driven_by_purity(cohort: SimulatedCohort) -> None:
    r = np.corrcoef(cohort.trait, cohort.purity)[0, 1]
    # purity_trait_r2 = 0.5 by default: r ~ sqrt(0.5) ~ 0.71
    assert 0.6 < r < 0.8
    assert 0.85 < cohort.trait.var() < 1.15


def test_purity_genes_correlate_with_purity(cohort: SimulatedCohort) -> None:
    r = np.abs(_corr_with(cohort.expression.to_numpy(), cohort.purity.to_numpy()))
    purity_genes = cohort.is_purity_gene & ~cohort.is_causal
    other_genes = ~cohort.is_purity_gene & ~cohort.is_causal
    assert np.min(r[purity_genes]) > 0.3
    assert np.quantile(r[other_genes], 0.99) < 0.2
    # ...and so, marginally, with the trait: the confounding
    rt = np.abs(_corr_with(cohort.expression.to_numpy(), cohort.trait.to_numpy()))
    assert np.median(rt[cohort.is_confounded]) > 0.3
    assert np.median(rt[other_genes]) < 0.1


def test_causal_genes_are_the_ones_with_direct_effects() -> None:
    cohort = confounded_cohort(11, **SMALL, causal_effect=1.5)
    design = np.column_stack(
        [np.ones(SMALL["n_samples"]), cohort.purity.to_numpy(), cohort.factors.to_numpy()]
    )
    # Given purity and the other factors, only causal genes are still tied to the trait.
    trait_res = _residualise(cohort.trait.to_numpy(), design)
    expr_res = _residualise(cohort.expression.to_numpy(), design)
    partial = np.abs(_corr_with(expr_res, trait_res))
    top = np.argsort(partial)[::-1][: SMALL["n_causal"]]
    assert set(top) == set(np.flatnonzero(cohort.is_causal))
    assert np.max(partial[cohort.is_confounded]) < 0.25


def test_no_causal_genes_means_no_partial_association() -> None:
    cohort = confounded_cohort(5, **{**SMALL, "n_causal": 0})
    assert not cohort.is_causal.any()
    design = np.column_stack([np.ones(SMALL["n_samples"]), cohort.purity.to_numpy()])
    partial = _corr_with(
        _residualise(cohort.expression.to_numpy(), design),
        _residualise(cohort.trait.to_numpy(), design),
    )
    # null partial correlations ~ N(0, 1/N): |z| = sqrt(N)|r| rarely beyond 4.5 in 400 genes
    assert np.max(np.abs(partial)) * np.sqrt(SMALL["n_samples"]) < 4.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"purity_gene_fraction": 1.5},
        {"n_causal": 10_000},
        {"n_factors": 0},
        {"purity_trait_r2": 0.8, "trait_noise_r2": 0.3},
        {"noise_sd_range": (0.0, 1.0)},
        {"n_samples": 2},
    ],
)
def test_confounded_cohort_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        confounded_cohort(0, **{**SMALL, **kwargs})


def test_toy_shapes_columns_and_determinism() -> None:
    expression, samples = toy()
    assert expression.shape == (60, 200)
    assert list(samples.columns) == ["trait", "purity", "age", "batch"]
    assert samples.index.equals(expression.index)
    assert isinstance(samples["batch"].dtype, pd.CategoricalDtype)
    assert set(samples["batch"]) <= {"A", "B"}
    for column in ["trait", "purity", "age"]:
        assert pd.api.types.is_float_dtype(samples[column])
    again_expression, again_samples = toy(seed=0)
    pd.testing.assert_frame_equal(expression, again_expression)
    pd.testing.assert_frame_equal(samples, again_samples)
    other_expression, _ = toy(seed=1)
    assert not np.allclose(expression.to_numpy(), other_expression.to_numpy())
    small_expression, small_samples = toy(seed=2, n_samples=20, n_genes=30)
    assert small_expression.shape == (20, 30) and len(small_samples) == 20


def test_toy_is_the_confounded_cohort_plus_a_batch_shift() -> None:
    expression, samples = toy(seed=3, n_samples=100, n_genes=200)
    base = confounded_cohort(
        3, n_samples=100, n_genes=200, n_factors=3, n_causal=5, causal_effect=1.0
    )
    pd.testing.assert_series_equal(samples["trait"], base.trait)
    shift = (expression - base.expression).to_numpy()
    in_b = (samples["batch"] == "B").to_numpy()
    assert 0 < in_b.sum() < 100
    np.testing.assert_allclose(shift[~in_b], 0.0, atol=1e-12)
    shifted = np.isclose(shift[in_b], 0.5, atol=1e-12).all(axis=0)
    unshifted = np.isclose(shift[in_b], 0.0, atol=1e-12).all(axis=0)
    assert (shifted | unshifted).all()
    assert 5 <= shifted.sum() <= 40  # a tenth of the genes, on average


def test_mouse_design_counts_is_seeded_and_marks_true_genes():
    from exprlmm.datasets import mouse_design_counts

    design = pd.DataFrame(
        {
            "weight": [20.0, 22, 24, 21, 23, 25],
            "urea": [40.0, 90, 120, 300, 320, 340],
            "group": list("aabbcc"),
        }
    )
    a = mouse_design_counts(3, design, n_genes=50, n_true=5)
    b = mouse_design_counts(3, design, n_genes=50, n_true=5)
    assert a.counts.shape == (6, 50)
    assert np.array_equal(a.counts, b.counts)
    assert (a.counts >= 0).all() and np.array_equal(a.counts, np.round(a.counts))
    assert np.flatnonzero(a.beta_weight).tolist() == list(range(5))
    assert np.flatnonzero(a.beta_urea).tolist() == list(range(5, 10))
    assert not np.array_equal(a.counts, mouse_design_counts(4, design, n_genes=50, n_true=5).counts)
