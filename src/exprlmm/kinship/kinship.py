r"""Kinship (sample-similarity) matrices from expression, and their eigensystems.

As in PyLMM and Yao et al. (2019), the kinship of ``N`` samples is built from the
per-gene standardised expression matrix ``Z`` (``N × G``; each column has mean 0 and
standard deviation 1 with ``ddof = 0``):

.. math:: K = Z Z^\top / G .

Its eigensystem ``K = U \operatorname{diag}(s) U^\top`` is computed once and handed to
every scan (:class:`Eigensystem`). Eigenvalues below ``min_eigenvalue`` (default
``1e-6``, PyLMM's value) are clipped to it, so ``K + δI`` is well conditioned for every
``δ > 0``. When fewer genes than samples build ``K`` the thin SVD of ``Z`` gives the
non-zero part of the spectrum in ``O(N·G·min(N, G))`` and the orthogonal complement is
represented implicitly, with the clipped eigenvalue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from array_api_compat import array_namespace, device

MIN_EIGENVALUE = 1e-6


def standardize(expression, *, ddof: int = 0):
    r"""Standardise each gene (column): :math:`z_{ik} = (x_{ik} - \bar x_k) / s_k`.

    Parameters
    ----------
    expression
        ``N × G`` array (samples × genes), float64.
    ddof
        Delta degrees of freedom of the standard deviation (0, as PyLMM).

    Raises
    ------
    ValueError
        If a gene is constant (its standard deviation is 0) or not finite.
    """
    xp = array_namespace(expression)
    mean = xp.mean(expression, axis=0)
    centred = expression - mean
    n = expression.shape[0]
    sd = xp.sqrt(xp.sum(centred * centred, axis=0) / (n - ddof))
    bad = ~(sd > 0) | ~xp.isfinite(sd)
    if bool(xp.any(bad)):
        index = np.flatnonzero(np.asarray(bad))
        raise ValueError(
            f"{index.size} gene(s) are constant or not finite (column(s) {index[:5].tolist()}); "
            "drop them before standardising"
        )
    return centred / sd


def kinship_from_expression(expression, *, standardized: bool = False, chunk_size: int = 4096):
    r"""Kinship :math:`K = Z Z^\top / G = \sum_{\text{blocks } b} Z_b Z_b^\top / G`.

    Accumulated over blocks of genes, so no standardised copy of the whole matrix is held.

    Parameters
    ----------
    expression
        Samples × genes: only the genes that should build ``K`` (select columns first,
        e.g. without purity-associated genes).
    standardized
        ``True`` if ``expression`` is already per-gene standardised (``ddof = 0``).
    chunk_size
        Genes per block.
    """
    xp = array_namespace(expression)
    n, g = expression.shape
    kinship = xp.zeros((n, n), dtype=expression.dtype, device=device(expression))
    for start in range(0, g, chunk_size):
        block = expression[:, start : min(start + chunk_size, g)]
        z = block if standardized else standardize(block)
        kinship += z @ z.T
    return kinship / g


@dataclass(frozen=True)
class Eigensystem:
    r"""Eigensystem of a kinship matrix, :math:`K = U \operatorname{diag}(s) U^\top`.

    Attributes
    ----------
    values
        ``(r,)`` eigenvalues, clipped below at ``min_eigenvalue``.
    vectors
        ``N × r`` orthonormal eigenvectors. ``r < N`` for a low-rank kinship; the
        orthogonal complement then has eigenvalue ``min_eigenvalue``.
    n_genes
        How many genes built ``K`` (needed by leave-gene-out updates); 0 if unknown.
    min_eigenvalue
        The clipping value, also the eigenvalue of the implicit complement.
    """

    values: object
    vectors: object
    n_genes: int = 0
    min_eigenvalue: float = MIN_EIGENVALUE

    @property
    def n_samples(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def rank(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def is_low_rank(self) -> bool:
        return self.rank < self.n_samples

    @property
    def complement_size(self) -> int:
        """Dimension of the implicit eigenspace with eigenvalue ``min_eigenvalue``."""
        return self.n_samples - self.rank


def eigensystem(kinship, *, n_genes: int = 0, min_eigenvalue: float = MIN_EIGENVALUE):
    """Eigendecompose a symmetric kinship matrix once (``eigh``), clipping small eigenvalues.

    Parameters
    ----------
    kinship
        ``N × N`` symmetric positive semi-definite matrix.
    n_genes
        Number of genes that built ``K`` (for leave-gene-out); 0 if not built from genes.
    min_eigenvalue
        Eigenvalues below it are set to it (PyLMM: ``1e-6``).
    """
    xp = array_namespace(kinship)
    if kinship.ndim != 2 or kinship.shape[0] != kinship.shape[1]:
        raise ValueError(f"kinship must be a square matrix, got shape {tuple(kinship.shape)}")
    values, vectors = xp.linalg.eigh((kinship + kinship.T) / 2)
    values = xp.where(
        values < min_eigenvalue,
        xp.asarray(min_eigenvalue, dtype=values.dtype, device=device(values)),
        values,
    )
    return Eigensystem(values, vectors, n_genes=n_genes, min_eigenvalue=min_eigenvalue)


def eigensystem_from_expression(
    expression, *, standardized: bool = False, min_eigenvalue: float = MIN_EIGENVALUE
) -> Eigensystem:
    r"""Eigensystem of :math:`K = Z Z^\top / G` straight from expression.

    With ``G ≥ N`` genes, ``K`` is formed and eigendecomposed (``O(N²G + N³)``). With
    ``G < N`` the thin SVD :math:`Z = U Σ V^\top` gives :math:`s = Σ^2 / G` and ``U``
    (``N × G``) in ``O(N G²)``; the complement of ``U`` carries the clipped eigenvalue,
    exactly as the clipped zero eigenvalues of the full decomposition would.
    """
    xp = array_namespace(expression)
    n, g = expression.shape
    if g >= n:
        kinship = kinship_from_expression(expression, standardized=standardized)
        return eigensystem(kinship, n_genes=g, min_eigenvalue=min_eigenvalue)
    z = expression if standardized else standardize(expression)
    u, sigma, _ = xp.linalg.svd(z, full_matrices=False)
    values = sigma * sigma / g
    values = xp.where(
        values < min_eigenvalue,
        xp.asarray(min_eigenvalue, dtype=values.dtype, device=device(values)),
        values,
    )
    return Eigensystem(values, u, n_genes=g, min_eigenvalue=min_eigenvalue)
