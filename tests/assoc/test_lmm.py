"""LMM scan against a direct dense implementation (tests/assoc/dense_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from dense_reference import clipped, dense_fit_at, dense_optimum
from hypothesis import given, settings
from hypothesis import strategies as st

from exprlmm.assoc.lmm import _chebyshev_basis, _chebyshev_nodes, fit_null_model, lmm_scan
from exprlmm.kinship import eigensystem_from_expression, standardize


def _cohort(seed=1, n=40, g=60, factors=3):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, factors))
    expression = latent @ rng.normal(size=(factors, g)) + rng.normal(size=(n, g))
    trait = latent[:, 0] + rng.normal(size=n)
    covariate = rng.normal(size=(n, 1))
    return expression, trait, covariate


EXPR, TRAIT, COV = _cohort()
Z = standardize(EXPR)
K = clipped(Z @ Z.T / Z.shape[1])
X0 = np.column_stack([np.ones(len(TRAIT)), COV])
GENES = range(0, EXPR.shape[1], 7)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_null_model_matches_dense_optimum(method):
    null = fit_null_model(TRAIT, eigensystem_from_expression(EXPR), covariates=COV, method=method)
    delta = dense_optimum(TRAIT, X0, K, method)
    assert np.log(null.delta) == pytest.approx(np.log(delta), abs=1e-5)
    assert null.loglik == pytest.approx(dense_fit_at(TRAIT, X0, K, delta, method)[2], abs=1e-9)
    assert null.h2 == pytest.approx(1 / (1 + null.delta))


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_null_delta_scan_matches_dense_gls(method):
    res = lmm_scan(EXPR, TRAIT, covariates=COV, method=method, delta="null")
    null = res.attrs["null_model"]
    for k in GENES:
        beta, se, _ = dense_fit_at(TRAIT, np.column_stack([X0, Z[:, k]]), K, null.delta, method)
        assert res.beta[k] == pytest.approx(beta[-1], abs=1e-10)
        assert res.se[k] == pytest.approx(se[-1], abs=1e-10)
    assert (res.df == len(TRAIT) - 3).all()
    assert np.allclose(res.delta, null.delta)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_refit_matches_dense_per_gene_optimum(method):
    res = lmm_scan(EXPR, TRAIT, covariates=COV, method=method, delta="refit")
    for k in GENES:
        x = np.column_stack([X0, Z[:, k]])
        delta = dense_optimum(TRAIT, x, K, method)
        beta, se, loglik = dense_fit_at(TRAIT, x, K, delta, method)
        # the optimum is flat: compare the likelihood reached, then the estimates loosely
        ours = dense_fit_at(TRAIT, x, K, res.delta[k], method)[2]
        assert ours >= loglik - 1e-9
        assert res.beta[k] == pytest.approx(beta[-1], abs=1e-5)
        assert res.se[k] == pytest.approx(se[-1], abs=1e-5)


@pytest.mark.parametrize("delta", ["refit", 0.7])
def test_leave_gene_out_matches_rebuilt_kinship(delta):
    res = lmm_scan(EXPR, TRAIT, covariates=COV, delta=delta, leave_out="gene")
    g = Z.shape[1]
    for k in GENES:
        rest = np.delete(Z, k, axis=1)
        kinship = clipped(rest @ rest.T / (g - 1))
        x = np.column_stack([X0, Z[:, k]])
        d = dense_optimum(TRAIT, x, kinship, "reml") if delta == "refit" else delta
        beta, se, _ = dense_fit_at(TRAIT, x, kinship, d, "reml")
        tol = 1e-5 if delta == "refit" else 1e-10
        assert res.beta[k] == pytest.approx(beta[-1], abs=tol)
        assert res.se[k] == pytest.approx(se[-1], abs=tol)


def test_low_rank_kinship_matches_dense():
    few = EXPR[:, :12]  # fewer genes than samples: thin-SVD path
    eig = eigensystem_from_expression(few)
    assert eig.is_low_rank
    zf = standardize(few)
    kinship = clipped(zf @ zf.T / 12)
    res = lmm_scan(EXPR, TRAIT, eigensystem=eig, delta="refit")
    for k in GENES:
        x = np.column_stack([np.ones(len(TRAIT)), Z[:, k]])
        delta = dense_optimum(TRAIT, x, kinship, "reml")
        beta, se, loglik = dense_fit_at(TRAIT, x, kinship, delta, "reml")
        assert dense_fit_at(TRAIT, x, kinship, res.delta[k], "reml")[2] >= loglik - 1e-9
        assert res.beta[k] == pytest.approx(beta[-1], abs=1e-5)
    fixed = lmm_scan(EXPR, TRAIT, eigensystem=eig, delta=0.3)
    for k in GENES:
        x = np.column_stack([np.ones(len(TRAIT)), Z[:, k]])
        beta, se, _ = dense_fit_at(TRAIT, x, kinship, 0.3, "reml")
        assert fixed.beta[k] == pytest.approx(beta[-1], abs=1e-10)
        assert fixed.se[k] == pytest.approx(se[-1], abs=1e-10)


def test_lrt_at_fixed_delta_is_likelihood_ratio():
    res = lmm_scan(EXPR, TRAIT, covariates=COV, delta=0.5, test="lrt")
    for k in GENES:
        ll1 = dense_fit_at(TRAIT, np.column_stack([X0, Z[:, k]]), K, 0.5, "ml")[2]
        ll0 = dense_fit_at(TRAIT, X0, K, 0.5, "ml")[2]
        assert res.stat[k] == pytest.approx(2 * (ll1 - ll0), rel=1e-8, abs=1e-10)


def test_lrt_refit_uses_ml_optima():
    res = lmm_scan(EXPR, TRAIT, method="ml", delta="refit", test="lrt")
    x0 = np.ones((len(TRAIT), 1))
    ll0 = dense_fit_at(TRAIT, x0, K, dense_optimum(TRAIT, x0, K, "ml"), "ml")[2]
    for k in GENES:
        x = np.column_stack([x0, Z[:, k]])
        ll1 = dense_fit_at(TRAIT, x, K, dense_optimum(TRAIT, x, K, "ml"), "ml")[2]
        assert res.stat[k] == pytest.approx(max(2 * (ll1 - ll0), 0), abs=1e-6)


def test_chebyshev_interpolant_of_weighted_sums_is_accurate():
    """The refit refines δ on an interpolant of (1+δ)·Σ p_i/(s_i+δ); check it away from nodes."""
    rng = np.random.default_rng(3)
    s = np.sort(np.concatenate([rng.gamma(0.5, 2.0, 200), [1e-6, 1e-6]]))
    p = rng.normal(size=s.size) ** 2
    nodes, to_coef = _chebyshev_nodes(96, -10.0, 10.0)

    def scaled_sum(t):
        return (p[None, :] / (s[None, :] + np.exp(t)[:, None])).sum(axis=1) * (1 + np.exp(t))

    coef = to_coef @ scaled_sum(nodes)
    t = rng.uniform(-10, 10, 2000)
    approx = _chebyshev_basis(t / 10.0, 96).T @ coef
    exact = scaled_sum(t)
    assert np.max(np.abs(approx / exact - 1)) < 1e-9


def test_standardize_false_rescales_beta_only():
    a = lmm_scan(EXPR, TRAIT, delta=0.8)
    b = lmm_scan(EXPR, TRAIT, delta=0.8, standardize=False)
    sd = EXPR.std(axis=0)
    assert np.allclose(b.beta * sd, a.beta)
    assert np.allclose(b.pvalue, a.pvalue)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_permuting_samples_leaves_results_unchanged(seed):
    order = np.random.default_rng(seed).permutation(len(TRAIT))
    a = lmm_scan(EXPR, TRAIT, covariates=COV)
    b = lmm_scan(EXPR[order], TRAIT[order], covariates=COV[order])
    # the REML optimum is flat: δ is defined to ~1e-7, so −log10 p agrees to ~1e-8
    assert np.allclose(np.log10(a.pvalue), np.log10(b.pvalue), atol=1e-6)
    assert np.allclose(a.delta, b.delta, rtol=1e-5)


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_scaling_a_gene_leaves_p_unchanged(scale, shift):
    scaled = EXPR.copy()
    scaled[:, 5] = scaled[:, 5] * scale + shift
    a = lmm_scan(EXPR, TRAIT, delta=1.3)
    b = lmm_scan(scaled, TRAIT, delta=1.3)
    assert np.allclose(a.pvalue, b.pvalue, rtol=1e-8)


def test_chunking_does_not_change_results():
    a = lmm_scan(EXPR, TRAIT, covariates=COV, delta="refit")
    b = lmm_scan(EXPR, TRAIT, covariates=COV, delta="refit", chunk_size=7)
    # a flat optimum: the likelihood cannot place δ better than ~1e-6 in float64
    assert np.allclose(np.log10(a.pvalue), np.log10(b.pvalue), atol=1e-6)
    c = lmm_scan(EXPR, TRAIT, covariates=COV, delta="null", chunk_size=7)
    d = lmm_scan(EXPR, TRAIT, covariates=COV, delta="null")
    assert np.allclose(c.pvalue, d.pvalue, rtol=1e-12)


def test_slr_is_the_lmm_limit_of_large_delta():
    from exprlmm.assoc.slr import slr_scan

    slr = slr_scan(EXPR, TRAIT, covariates=COV)
    lmm = lmm_scan(EXPR, TRAIT, covariates=COV, delta=1e9)
    assert np.allclose(slr.stat, lmm.stat, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "bogus"}, "method"),
        ({"delta": -1.0}, "positive"),
        ({"delta": "sometimes"}, "delta"),
        ({"test": "lrt", "leave_out": "gene"}, "leave_out"),
        ({"test": "lrt", "delta": "refit"}, "method='ml'"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lmm_scan(EXPR, TRAIT, **kwargs)


def test_too_few_samples_and_collinear_covariates_raise():
    with pytest.raises(ValueError, match="too few"):
        lmm_scan(EXPR[:3], TRAIT[:3], covariates=COV[:3])
    with pytest.raises(ValueError, match="collinear"):
        lmm_scan(EXPR, TRAIT, covariates=np.column_stack([COV, 2 * COV]))


def test_leave_gene_out_with_genes_outside_the_kinship():
    """Genes not in K keep the full K; genes in K get K without themselves (two δ' values)."""
    in_k = np.arange(EXPR.shape[1]) % 3 != 0
    zk = Z[:, in_k]
    eig = eigensystem_from_expression(EXPR[:, in_k])
    res = lmm_scan(
        EXPR,
        TRAIT,
        covariates=COV,
        eigensystem=eig,
        kinship_genes=in_k,
        delta=0.6,
        leave_out="gene",
    )
    n_k = int(in_k.sum())
    for k in GENES:
        if in_k[k]:
            col = int(in_k[:k].sum())
            rest = np.delete(zk, col, axis=1)
            kinship = clipped(rest @ rest.T / (n_k - 1))
        else:
            kinship = clipped(zk @ zk.T / n_k)
        beta, se, _ = dense_fit_at(TRAIT, np.column_stack([X0, Z[:, k]]), kinship, 0.6, "reml")
        assert res.beta[k] == pytest.approx(beta[-1], abs=1e-10)
        assert res.se[k] == pytest.approx(se[-1], abs=1e-10)


def test_refit_with_a_constant_gene_warns_nothing_and_gives_nan():
    # its profile is -inf everywhere: the optimiser's parabolic step used to warn (NaN)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 30))
    x[:, 3] = 2.5
    y = rng.normal(size=40)
    eig = eigensystem_from_expression(np.delete(x, 3, axis=1))
    table = lmm_scan(x, y, eigensystem=eig, delta="refit")  # warnings are errors in the tests
    assert np.isnan(table.loc[3, ["beta", "se", "pvalue"]].to_numpy(dtype=float)).all()
    assert table.drop(index=3)["pvalue"].notna().all()
