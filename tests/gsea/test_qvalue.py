"""LOESS extrapolation of q = 0 (the paper's method) and BH q from tails."""

from __future__ import annotations

import numpy as np

from exprlmm.gsea.qvalue import loess_extrapolate_q, q_from_tails


def test_loess_fills_zero_q_with_finite_decreasing_values() -> None:
    nes = np.array([1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.6, 3.0, -1.1, -1.5, -2.5])
    fdr = np.array([0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.0, 0.0, 0.4, 0.2, 0.0])
    q = loess_extrapolate_q(fdr, nes)
    assert np.all(q[:11] > 0)
    assert np.array_equal(q[fdr > 0], fdr[fdr > 0])
    assert q[8] <= q[7] <= 0.01
    assert q[11] == 0.0  # fewer than 5 positive q on the negative side: left as is


def test_q_from_tails_per_direction() -> None:
    p = np.array([1e-20, 1e-3, 0.5, 1e-30, 0.2])
    nes = np.array([3.0, 2.0, 0.5, -3.5, -1.0])
    q = q_from_tails(p, nes)
    assert np.all(q > 0)
    assert q[0] == 1e-20 * 3
    assert q[3] == 1e-30 * 2
