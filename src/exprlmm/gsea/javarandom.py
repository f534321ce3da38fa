"""java.util.Random, bit for bit, with vectorised generation of long runs.

Pure maths. java.util.Random is a 48-bit linear congruential generator (Java SE API spec,
``java.util.Random``; Knuth TAOCP vol. 2 §3.2.1):

    seed₀      = (seed XOR 0x5DEECE66D) mod 2⁴⁸
    seedₙ₊₁    = (0x5DEECE66D · seedₙ + 0xB) mod 2⁴⁸
    next(bits) = seedₙ₊₁ >>> (48 − bits)      (as a signed 32-bit int)
    nextInt(bound): r = next(31); m = bound − 1;
        bound a power of 2:  (bound · r) >> 31
        otherwise:           u = r; while u − (r = u mod bound) + m < 0 (32-bit overflow): u = next(31)

A run of consecutive states is generated in numpy by jumping ahead: seedₙ₊ⱼ = Aⱼ·seedₙ + Cⱼ
(mod 2⁴⁸), with the 48-bit products split into 24-bit halves so they fit in uint64.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["JavaRandom"]

_MULT = 0x5DEECE66D
_ADD = 0xB
_MASK = (1 << 48) - 1
_M24 = (1 << 24) - 1


def _mulmod48(a: NDArray[np.uint64], s: NDArray[np.uint64] | np.uint64) -> NDArray[np.uint64]:
    """(a · s) mod 2⁴⁸ for 48-bit unsigned inputs, element-wise, without overflow."""
    a_lo = a & np.uint64(_M24)
    a_hi = a >> np.uint64(24)
    s = np.asarray(s, dtype=np.uint64)
    s_lo = s & np.uint64(_M24)
    s_hi = s >> np.uint64(24)
    cross = (a_hi * s_lo + a_lo * s_hi) & np.uint64(_M24)
    return (a_lo * s_lo + (cross << np.uint64(24))) & np.uint64(_MASK)


class JavaRandom:
    """A java.util.Random with the same stream for the same seed."""

    _jump_cache: ClassVar[dict[int, tuple[NDArray[np.uint64], NDArray[np.uint64]]]] = {}

    def __init__(self, seed: int) -> None:
        self.state = (int(seed) ^ _MULT) & _MASK

    def next(self, bits: int) -> int:
        """Java's ``next(bits)`` (signed 32-bit result)."""
        self.state = (self.state * _MULT + _ADD) & _MASK
        r = self.state >> (48 - bits)
        if r >= 1 << 31:
            r -= 1 << 32
        return r

    def next_int(self, bound: int) -> int:
        """Java's ``nextInt(bound)``."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        r = self.next(31)
        m = bound - 1
        if bound & m == 0:
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            if u - r + m < 1 << 31:  # no 32-bit overflow
                return r
            u = self.next(31)

    @classmethod
    def _jumps(cls, length: int) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        if length not in cls._jump_cache:
            a = np.empty(length, dtype=np.uint64)
            c = np.empty(length, dtype=np.uint64)
            aj, cj = 1, 0
            for j in range(length):
                aj = (aj * _MULT) & _MASK
                cj = (cj * _MULT + _ADD) & _MASK
                a[j], c[j] = aj, cj
            cls._jump_cache[length] = (a, c)
        return cls._jump_cache[length]

    def states(self, count: int, *, block: int = 4096) -> NDArray[np.uint64]:
        """The next ``count`` states (advances the generator); ``next(31) = state >> 17``."""
        a, c = self._jumps(block)
        out = np.empty(count, dtype=np.uint64)
        s = self.state
        for start in range(0, count, block):
            m = min(block, count - start)
            out[start : start + m] = (_mulmod48(a[:m], np.uint64(s)) + c[:m]) & np.uint64(_MASK)
            s = int(out[start + m - 1])
        if count:
            self.state = s
        return out

    @staticmethod
    def next31(states: NDArray[np.uint64]) -> NDArray[np.int64]:
        """``next(31)`` values of given states."""
        return (states >> np.uint64(17)).astype(np.int64)
