"""Vectorised one-dimensional maximisation shared by the scans (array API)."""

from __future__ import annotations

import numpy as np

from exprlmm._xp import errstate


def golden_section_max(f, lower, upper, xp=np, iterations: int = 16):
    """Vectorised golden-section maximisation of ``f`` on per-element brackets ``[lower, upper]``.

    Each iteration evaluates ``f`` once for every element (``f`` maps an array of points to
    an array of values); ``iterations`` steps shrink each bracket by 0.618^iterations, and a
    final parabolic step through the best interior point and its neighbours refines it.
    Returns the best point found per element (bracket ends included).
    """
    ratio = (5.0**0.5 - 1.0) / 2.0
    a, b = lower, upper
    c1 = b - ratio * (b - a)
    c2 = a + ratio * (b - a)
    f1, f2 = f(c1), f(c2)
    for _ in range(iterations):
        move_left = f1 >= f2  # the maximum lies in [a, c2]
        b = xp.where(move_left, c2, b)
        a = xp.where(move_left, a, c1)
        new = xp.where(move_left, b - ratio * (b - a), a + ratio * (b - a))
        f_new = f(new)
        c2, f2, c1, f1 = (
            xp.where(move_left, c1, new),
            xp.where(move_left, f1, f_new),
            xp.where(move_left, new, c2),
            xp.where(move_left, f_new, f2),
        )
    fa, fb = f(a), f(b)
    # one parabolic step through the best interior point and its neighbours
    left = xp.where(f1 >= f2, a, c1)
    middle = xp.where(f1 >= f2, c1, c2)
    right = xp.where(f1 >= f2, c2, b)
    f_left = xp.where(f1 >= f2, fa, f1)
    f_mid = xp.where(f1 >= f2, f1, f2)
    f_right = xp.where(f1 >= f2, f2, fb)
    # elements whose objective is -inf everywhere (e.g. a constant gene) give NaN here and
    # fall back to ``middle`` below
    with errstate(xp):
        num = (middle - left) ** 2 * (f_mid - f_right) - (middle - right) ** 2 * (f_mid - f_left)
        den = (middle - left) * (f_mid - f_right) - (middle - right) * (f_mid - f_left)
        vertex = middle - 0.5 * num / den
    vertex = xp.where(xp.isfinite(vertex), xp.clip(vertex, left, right), middle)
    candidates = xp.stack([a, b, c1, c2, vertex])
    values = xp.stack([fa, fb, f1, f2, f(vertex)])
    best = xp.argmax(values, axis=0)
    return xp.take_along_axis(candidates, best[None, :], axis=0)[0, :]
