r"""Simple linear regression (SLR) of a trait on each gene, all genes at once.

Per gene ``k`` the ordinary least-squares model is

.. math:: y = X\gamma + x_k \beta_k + \varepsilon, \quad \varepsilon \sim N(0, \sigma^2 I),

with ``X = [1, covariates]``. Projecting the covariates out once,
:math:`M = I - X(X^\top X)^{-1}X^\top`, :math:`r_y = My`, :math:`r_k = Mx_k`, gives for
every gene by matrix products

.. math:: \hat\beta_k = \frac{r_k^\top r_y}{r_k^\top r_k},\quad
          \widehat{se}_k^2 = \frac{r_y^\top r_y - \hat\beta_k^2 r_k^\top r_k}{(N-q)\, r_k^\top r_k},

and a t test with ``N − q`` degrees of freedom (``q`` = columns of ``X`` plus the gene),
identical to R's ``lm(y ~ covariates + x_k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from exprlmm._xp import device, errstate, namespace, to_numpy
from exprlmm.assoc._common import (
    RESULT_COLUMNS,
    as_matrix,
    benjamini_hochberg,
    default_chunk_size,
    fixed_design,
    memory_budget,
    two_sided_t_pvalue,
)


@dataclass(frozen=True)
class SlrPlan:
    """The covariate projection and the residualised trait, shared by all gene blocks."""

    q_basis: object  # N × c orthonormal basis of X
    r_y: object  # M y
    ryy: float
    df: int
    standardize: bool


def prepare_slr(trait, *, covariates=None, n_samples: int, xp=np, dev=None, standardize=True):
    """Project the covariates out of the trait once (see :func:`slr_scan`)."""
    y_np, x_np = fixed_design(trait, covariates, n_samples)
    q_basis = xp.asarray(np.linalg.qr(x_np)[0], device=dev)
    y = xp.asarray(y_np, device=dev)
    r_y = y - q_basis @ (q_basis.T @ y)
    return SlrPlan(
        q_basis, r_y, float(xp.sum(r_y * r_y)), n_samples - x_np.shape[1] - 1, standardize
    )


def slr_block(plan: SlrPlan, block) -> dict[str, np.ndarray]:
    """``beta`` and ``se`` (host arrays; NaN for degenerate genes) of one ``N × g`` block."""
    xp = namespace(block)
    q_basis = plan.q_basis
    sd = xp.std(block, axis=0)
    sd = xp.where(sd > 0, sd, 1.0)
    if plan.standardize:
        block = (block - xp.mean(block, axis=0)) / sd
    r_x = block - q_basis @ (q_basis.T @ block)
    rxx = xp.sum(r_x * r_x, axis=0)
    scale = xp.sum(block * block, axis=0)
    with errstate(xp):
        b = (plan.r_y @ r_x) / rxx
        rss = plan.ryy - b * b * rxx
        rss = xp.where(rss > 0, rss, 0.0)
        s = xp.sqrt(rss / plan.df / rxx)
    degenerate = to_numpy(rxx <= 1e-12 * scale)
    b, s = np.array(to_numpy(b), dtype=np.float64), np.array(to_numpy(s), dtype=np.float64)
    b[degenerate] = np.nan
    s[degenerate] = np.nan
    return {"beta": b, "se": s}


def slr_table(plan: SlrPlan, names, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Assemble block results (in gene order) into the tidy table; BH over all genes."""
    beta = np.concatenate([p["beta"] for p in parts])
    se = np.concatenate([p["se"] for p in parts])
    g = beta.shape[0]
    if len(names) != g:
        raise ValueError(f"{len(names)} gene names for {g} results")
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    pvalue = two_sided_t_pvalue(stat, plan.df)
    return pd.DataFrame(
        {
            "gene": list(names),
            "beta": beta,
            "se": se,
            "stat": stat,
            "df": np.full(g, float(plan.df)),
            "pvalue": pvalue,
            "padj": benjamini_hochberg(pvalue),
        },
        columns=RESULT_COLUMNS,
    )


def slr_scan(
    expression,
    trait,
    *,
    covariates=None,
    standardize: bool = True,
    gene_names=None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Test every gene against the trait by OLS, ``y ~ 1 + covariates + gene``.

    Parameters
    ----------
    expression
        ``N × G`` samples × genes (array or DataFrame).
    trait
        ``(N,)`` response.
    covariates
        ``N × c`` numeric covariates (no intercept column; it is always added), or None.
    standardize
        Report ``beta`` per standard deviation of expression (``ddof = 0``); p-values do
        not depend on it.
    gene_names
        Names for the genes (default: DataFrame columns or ``gene0 …``).
    chunk_size
        Genes per block (bounded memory).

    Returns
    -------
    pandas.DataFrame
        One row per gene, columns ``gene beta se stat df pvalue padj`` (``stat`` is the t
        statistic, ``df = N − q``, ``padj`` Benjamini–Hochberg over all genes).
    """
    matrix, names = as_matrix(expression, gene_names)
    xp = namespace(matrix)
    n, g = matrix.shape
    plan = prepare_slr(
        trait,
        covariates=covariates,
        n_samples=n,
        xp=xp,
        dev=device(matrix),
        standardize=standardize,
    )
    chunk = chunk_size or default_chunk_size(n, budget_bytes=memory_budget(matrix))
    parts = [slr_block(plan, matrix[:, i : min(i + chunk, g)]) for i in range(0, g, chunk)]
    return slr_table(plan, names, parts)
