"""Helpers shared by the scans: inputs as arrays, the fixed design, p-values, BH."""

from __future__ import annotations

import numpy as np
import pandas as pd
from array_api_compat import is_array_api_obj
from scipy import stats

from exprlmm._xp import namespace, to_numpy

RESULT_COLUMNS = ["gene", "beta", "se", "stat", "df", "pvalue", "padj"]


def as_matrix(expression, gene_names=None) -> tuple[object, list[str]]:
    """Return ``(N × G float64 array, gene names)`` from an array or a samples × genes DataFrame.

    DataFrames and array-likes become numpy arrays; arrays of another array-API backend
    (torch, cupy, …) are kept on their device.
    """
    if isinstance(expression, pd.DataFrame):
        names = [str(g) for g in expression.columns] if gene_names is None else list(gene_names)
        matrix = expression.to_numpy(dtype=np.float64)
    elif isinstance(expression, np.ndarray) or not is_array_api_obj(expression):
        matrix = np.asarray(expression, dtype=np.float64)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
        names = None
    else:
        matrix = expression
        names = None
    xp = namespace(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"expression must be 2-D (samples × genes), got {matrix.ndim}-D")
    if matrix.dtype != xp.float64:
        matrix = xp.astype(matrix, xp.float64)
    if names is None:
        names = (
            [f"gene{k}" for k in range(matrix.shape[1])] if gene_names is None else list(gene_names)
        )
    if len(names) != matrix.shape[1]:
        raise ValueError(f"{len(names)} gene names for {matrix.shape[1]} genes")
    if not bool(xp.all(xp.isfinite(matrix))):
        raise ValueError("expression contains NaN or infinite values; filter them first")
    return matrix, names


def fixed_design(trait, covariates, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Return host ``(y, X)`` with ``X = [1, covariates]``; check shapes, finiteness and rank.

    ``trait`` and ``covariates`` may be arrays of any backend; the design is small and lives
    on the host.
    """
    y = np.asarray(to_numpy(trait) if is_array_api_obj(trait) else trait, dtype=np.float64).reshape(
        -1
    )
    if y.shape[0] != n_samples:
        raise ValueError(f"trait has {y.shape[0]} values for {n_samples} samples")
    if not np.all(np.isfinite(y)):
        raise ValueError("trait contains NaN or infinite values")
    columns = [np.ones(n_samples)]
    if covariates is not None:
        cov = to_numpy(covariates) if is_array_api_obj(covariates) else covariates
        cov = np.asarray(cov, dtype=np.float64)
        if cov.ndim == 1:
            cov = cov[:, None]
        if cov.shape[0] != n_samples:
            raise ValueError(f"covariates have {cov.shape[0]} rows for {n_samples} samples")
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariates contain NaN or infinite values")
        columns.extend(cov.T)
    x = np.column_stack(columns)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(
            "the covariates are collinear (with each other or with the intercept); "
            "drop redundant or constant covariate columns"
        )
    if n_samples - x.shape[1] - 1 < 1:
        raise ValueError(
            f"{n_samples} samples are too few for {x.shape[1] + 1} fixed effects "
            "(intercept, covariates and the gene); need at least one residual degree of freedom"
        )
    return y, x


def two_sided_t_pvalue(stat: np.ndarray, df) -> np.ndarray:
    """Two-sided p-value of a t statistic, ``2 · P(T_df > |t|)``."""
    return 2.0 * stats.t.sf(np.abs(stat), df)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    r"""Benjamini–Hochberg adjusted p-values (as R's ``p.adjust(method = "BH")``).

    :math:`p^{adj}_{(i)} = \min_{j \ge i} \min(1, m\,p_{(j)}/j)`; NaN stays NaN and is not
    counted in ``m``.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    values = np.empty(m)
    values[order] = np.minimum(adjusted, 1.0)
    out[ok] = values
    return out


def memory_budget(array) -> float:
    """Bytes a scan may use for one chunk's working arrays.

    256 MB on the CPU (bounded, cache-friendly); on a GPU an eighth of the free device
    memory, so that large chunks amortise kernel launches.
    """
    module = type(array).__module__.split(".")[0]
    try:
        if module == "torch" and array.is_cuda:
            import torch

            return torch.cuda.mem_get_info(array.device)[0] / 8
        if module == "cupy":
            import cupy

            return cupy.cuda.Device().mem_info[0] / 8
    except Exception:  # device queries are best effort; fall back to the CPU budget
        pass
    return 256e6


def default_chunk_size(n_samples: int, budget_bytes: float = 256e6, n_arrays: int = 6) -> int:
    """Genes per chunk so that ``n_arrays`` float64 arrays of ``N × chunk`` stay within budget."""
    return int(max(64, budget_bytes // (8 * max(n_samples, 1) * n_arrays)))
