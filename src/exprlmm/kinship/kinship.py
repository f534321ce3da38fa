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
represented implicitly, with the clipped eigenvalue. For very large ``N`` a randomized
SVD keeps only the leading components (``rank=``), through the same low-rank path.
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


def kinship_from_expression(
    expression, *, standardized: bool = False, chunk_size: int = 4096, precision: str = "float64"
):
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
    precision
        ``"float32"``: the products ``Z_b Z_bᵀ`` (standardised in float64) run and
        accumulate in float32, and ``K`` is float32.
    """
    xp = array_namespace(expression)
    n, g = expression.shape
    dtype = xp.float32 if precision == "float32" else expression.dtype
    kinship = xp.zeros((n, n), dtype=dtype, device=device(expression))
    for start in range(0, g, chunk_size):
        block = expression[:, start : min(start + chunk_size, g)]
        z = block if standardized else standardize(block)
        if z.dtype != dtype:
            z = xp.astype(z, dtype)
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


def _clip(xp, values, floor: float):
    """Eigenvalues below ``floor`` raised to it (PyLMM's clipping of K's spectrum)."""
    return xp.where(
        values < floor, xp.asarray(floor, dtype=values.dtype, device=device(values)), values
    )


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
    values = _clip(xp, values, min_eigenvalue)
    return Eigensystem(values, vectors, n_genes=n_genes, min_eigenvalue=min_eigenvalue)


def eigensystem_from_expression(
    expression,
    *,
    standardized: bool = False,
    min_eigenvalue: float = MIN_EIGENVALUE,
    precision: str = "float64",
    rank: int | None = None,
    seed: int = 0,
    power_iterations: int = 2,
    oversampling: int = 10,
) -> Eigensystem:
    r"""Eigensystem of :math:`K = Z Z^\top / G` straight from expression.

    With ``G ≥ N`` genes, ``K`` is formed and eigendecomposed (``O(N²G + N³)``). With
    ``G < N`` the thin SVD :math:`Z = U Σ V^\top` gives :math:`s = Σ^2 / G` and ``U``
    (``N × G``) in ``O(N G²)``; the complement of ``U`` carries the clipped eigenvalue,
    exactly as the clipped zero eigenvalues of the full decomposition would.

    Parameters
    ----------
    precision
        ``"float32"`` forms ``ZZᵀ`` (or the thin SVD) and ``eigh`` in float32; the
        eigensystem is returned in float64.
    rank
        Keep only the leading ``rank`` components, from a randomized SVD of ``Z``
        (:func:`randomized_svd`, ``O(N·G·rank)``):
        :math:`K \approx U_R \operatorname{diag}(Σ_R^2/G) U_R^\top + \bar s\,(I - U_R U_R^\top)`,
        the discarded eigenvalues replaced by their mean
        :math:`\bar s = (\operatorname{tr} K - \sum_R Σ_R^2/G)/(N - R)` (the trace is kept;
        stored as the complement's ``min_eigenvalue``). For very large ``N``; the accuracy
        cost is measured in ``benchmarks/README.md``. Needs a numpy array.
    seed, power_iterations, oversampling
        Of the randomized SVD (deterministic for a given seed and engine).
    """
    if precision not in ("float64", "float32"):
        raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
    xp = array_namespace(expression)
    n, g = expression.shape
    if rank is not None:
        if not 1 <= rank <= min(n, g):
            raise ValueError(
                f"kinship rank {rank} must be between 1 and min(samples, genes) = {min(n, g)}"
            )
        z = np.asarray(expression if standardized else standardize(expression))
        u, sigma = randomized_svd(
            z.astype(precision, copy=False),
            rank,
            seed=seed,
            power_iterations=power_iterations,
            oversampling=oversampling,
        )
        values = np.maximum(sigma.astype(np.float64) ** 2 / g, min_eigenvalue)
        # the discarded spectrum is replaced by its mean (trace-preserving), not by zero
        trace = float(np.einsum("ij,ij->", z, z, dtype=np.float64)) / g
        rest = (trace - values.sum()) / (n - rank) if rank < n else min_eigenvalue
        complement = max(rest, min_eigenvalue)
        return Eigensystem(values, u.astype(np.float64), n_genes=g, min_eigenvalue=complement)
    if g >= n:
        if precision == "float64":
            kinship = kinship_from_expression(expression, standardized=standardized)
            return eigensystem(kinship, n_genes=g, min_eigenvalue=min_eigenvalue)
        kinship = kinship_from_expression(
            expression, standardized=standardized, precision=precision
        )
        eig = eigensystem(kinship, n_genes=g, min_eigenvalue=min_eigenvalue)
        return Eigensystem(
            xp.astype(eig.values, xp.float64),
            xp.astype(eig.vectors, xp.float64),
            n_genes=g,
            min_eigenvalue=min_eigenvalue,
        )
    z = expression if standardized else standardize(expression)
    if precision == "float32":
        z = xp.astype(z, xp.float32)
    u, sigma, _ = xp.linalg.svd(z, full_matrices=False)
    u, sigma = xp.astype(u, xp.float64), xp.astype(sigma, xp.float64)
    values = _clip(xp, sigma * sigma / g, min_eigenvalue)
    return Eigensystem(values, u, n_genes=g, min_eigenvalue=min_eigenvalue)


def randomized_svd(
    z: np.ndarray,
    rank: int,
    *,
    seed: int = 0,
    power_iterations: int = 2,
    oversampling: int = 10,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Leading ``rank`` left singular vectors and singular values of ``z`` (``N × G``).

    Halko, Martinsson & Tropp (2011), Algorithm 4.4: a Gaussian sketch
    :math:`Y = Z\Omega` (``Ω`` of ``G × (rank + oversampling)``), ``power_iterations``
    re-orthonormalised power steps :math:`Q \leftarrow \operatorname{qr}(Z\,\operatorname{qr}(Z^\top Q))`,
    then the exact SVD of the small :math:`B = Q^\top Z = \hat U Σ V^\top` and
    :math:`U = Q\hat U`. When ``rank + oversampling ≥ min(N, G)`` the sketch spans the whole
    column space and the result is the exact SVD (to rounding).

    ``engine="dask"`` uses :func:`dask.array.linalg.svd_compressed` (the same algorithm, run
    on the active dask scheduler, e.g. a distributed cluster), ``"numpy"`` the in-memory
    version; ``"auto"`` picks dask when it is installed. Results depend on the engine and
    the seed, and are deterministic for both.
    """
    n, g = z.shape
    if engine == "auto":
        try:
            import dask.array
        except ImportError:
            engine = "numpy"
        else:
            engine = "dask"
    sketch = min(rank + oversampling, n, g)
    if engine == "dask":
        import dask
        import dask.array as da

        arr = da.from_array(z, chunks=(n, max(min(g, 4096), sketch)))
        u, s, _ = da.linalg.svd_compressed(
            arr,
            k=sketch,
            n_power_iter=power_iterations,
            n_oversamples=0,
            seed=seed,
            coerce_signs=False,
        )
        u, s = dask.compute(u, s)
        return np.asarray(u)[:, :rank], np.asarray(s)[:rank]
    if engine != "numpy":
        raise ValueError(f"engine must be 'auto', 'dask' or 'numpy', got {engine!r}")
    rng = np.random.default_rng(seed)
    omega = rng.standard_normal((g, sketch)).astype(z.dtype, copy=False)
    q = np.linalg.qr(z @ omega)[0]
    for _ in range(power_iterations):
        q = np.linalg.qr(z.T @ q)[0]
        q = np.linalg.qr(z @ q)[0]
    u_small, s, _ = np.linalg.svd(q.T @ z, full_matrices=False)
    return (q @ u_small)[:, :rank], s[:rank]
