"""Kinship K = Z Zᵀ / G and its eigensystem (closed forms and numpy references)."""

from __future__ import annotations

import numpy as np
import pytest

from exprlmm.kinship import (
    eigensystem,
    eigensystem_from_expression,
    kinship_from_expression,
    standardize,
)

RNG = np.random.default_rng(5)
EXPR = RNG.normal(size=(25, 70)) * RNG.uniform(0.5, 3, 70) + RNG.uniform(0, 10, 70)


def test_standardize_is_ddof0_zscore():
    z = standardize(EXPR)
    assert np.allclose(z.mean(axis=0), 0, atol=1e-12)
    assert np.allclose((z**2).mean(axis=0), 1)
    manual = (EXPR - EXPR.mean(axis=0)) / np.sqrt(
        ((EXPR - EXPR.mean(axis=0)) ** 2).sum(axis=0) / 25
    )
    assert np.allclose(z, manual)


def test_standardize_rejects_constant_gene():
    bad = EXPR.copy()
    bad[:, 4] = 3.0
    with pytest.raises(ValueError, match=r"constant.*\[4\]"):
        standardize(bad)


def test_kinship_is_zzt_over_g_and_chunking_is_exact():
    z = standardize(EXPR)
    expected = sum(np.outer(z[:, k], z[:, k]) for k in range(70)) / 70
    assert np.allclose(kinship_from_expression(EXPR), expected, atol=1e-13)
    assert np.allclose(kinship_from_expression(EXPR, chunk_size=9), expected, atol=1e-13)
    # standardised genes: trace K = N, and K·1 = 0
    k = kinship_from_expression(EXPR)
    assert np.trace(k) == pytest.approx(25)
    assert np.allclose(k @ np.ones(25), 0, atol=1e-12)


def test_eigensystem_reconstructs_k_with_clipping():
    k = kinship_from_expression(EXPR)
    eig = eigensystem(k, n_genes=70)
    assert eig.rank == 25 and not eig.is_low_rank
    assert eig.values.min() == pytest.approx(1e-6)  # the zero eigenvalue along 1, clipped
    rebuilt = (eig.vectors * eig.values) @ eig.vectors.T
    assert np.abs(rebuilt - k).max() < 2e-6
    assert np.allclose(eig.vectors.T @ eig.vectors, np.eye(25), atol=1e-12)


def test_low_rank_path_matches_full_spectrum():
    few = EXPR[:, :10]
    low = eigensystem_from_expression(few)
    assert low.is_low_rank and low.rank == 10 and low.complement_size == 15 and low.n_genes == 10
    full = np.sort(np.linalg.eigvalsh(kinship_from_expression(few)))[::-1]
    full = np.maximum(full, 1e-6)
    assert np.allclose(np.sort(low.values)[::-1], full[:10], atol=1e-12)
    z = standardize(few)
    rebuilt = (low.vectors * low.values) @ low.vectors.T
    # identical up to the clipped eigenvalues (≤ 1e-6 each)
    assert np.abs(rebuilt - z @ z.T / 10).max() < 1e-5


def test_eigensystem_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        eigensystem(np.ones((3, 4)))
