"""The device statistics (`permutation_stats_torch`) against the numpy ones on the same null.

Both compute the same definitions (GSEA 4.x; see `exprlmm.gsea.stats`) from identical float32
null chunks, so counts must be equal and NES, FDR and FWER equal up to the order of float64
summation (a row mean may differ in its last float32 bit).
"""

from __future__ import annotations

import numpy as np
import pytest

from exprlmm.gsea.null import null_es_chunk
from exprlmm.gsea.stats import permutation_stats

torch = pytest.importorskip("torch")

from exprlmm.gsea.stats_torch import permutation_stats_torch  # noqa: E402


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _both(es, rows, chunks, shift):
    ref = permutation_stats(es, rows, lambda: iter(chunks), shift=shift)
    dev = [torch.as_tensor(c, device=_device()) for c in chunks]
    got = permutation_stats_torch(es, rows, lambda: iter(dev), shift=shift, device=_device())
    return ref, got


def _assert_same(ref, got) -> None:
    assert got.n_perm == ref.n_perm
    np.testing.assert_array_equal(got.n_null_beyond, ref.n_null_beyond)
    np.testing.assert_array_equal(got.n_null_same_sign, ref.n_null_same_sign)
    np.testing.assert_array_equal(got.pvalue, ref.pvalue)
    for name in ("mean_pos", "mean_neg", "nes", "fdr", "fwer"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-6, err_msg=name)


def test_matches_numpy_on_the_fast_null() -> None:
    rng = np.random.default_rng(8)
    weights = np.abs(rng.standard_t(4, size=3000))
    sizes = np.array([15, 16, 40, 41, 120, 300])
    chunks = [null_es_chunk(weights, sizes, seed=4, chunk=c, n_perm=700) for c in range(3)]
    rows = rng.integers(0, sizes.size, size=60)
    # observed ES spread over the null's range, a few beyond it and one exactly 0
    es = rng.uniform(-0.6, 0.6, size=rows.size)
    es[:3] = [0.0, 0.95, -0.95]
    ref, got = _both(es, rows, chunks, shift=True)
    assert np.isfinite(ref.fdr).all() and (ref.fwer > 0).any() and (ref.fwer < 1).any()
    _assert_same(ref, got)


@pytest.mark.parametrize("shift", [True, False])
def test_matches_numpy_with_ties_zeros_and_one_signed_rows(shift: bool) -> None:
    rng = np.random.default_rng(21)
    # values on a coarse grid: many ties and exact zeros; row 2 has no negative null ES
    chunks = [(rng.integers(-8, 9, size=(4, 250)) / 8).astype(np.float32) for _ in range(3)]
    for c in chunks:
        c[2] = np.abs(c[2]) + np.float32(0.125)
    rows = np.array([0, 1, 2, 2, 3, 0, 1, 3, 2])
    es = np.array([0.5, -0.25, -0.5, 0.75, 0.0, -1.0, 1.0, 0.125, 0.0])
    ref, got = _both(es, rows, chunks, shift=shift)
    assert np.isnan(ref.nes[2])  # negative ES against a row without negative null ES
    _assert_same(ref, got)


def test_chunking_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    null = rng.standard_normal((5, 900)).astype(np.float32)
    rows = np.arange(5)
    es = np.array([2.0, -1.5, 0.3, -0.1, 2.8])
    dev = torch.as_tensor(null, device=_device())
    whole = permutation_stats_torch(es, rows, lambda: iter([dev]), shift=False, device=_device())
    parts = permutation_stats_torch(
        es, rows, lambda: iter([dev[:, :400], dev[:, 400:]]), shift=False, device=_device()
    )
    _assert_same(whole, parts)
