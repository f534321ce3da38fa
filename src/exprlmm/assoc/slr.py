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
    y_np, x_np = fixed_design(trait, covariates, n)
    dev = device(matrix)
    q_basis = xp.asarray(np.linalg.qr(x_np)[0], device=dev)
    y = xp.asarray(y_np, device=dev)
    r_y = y - q_basis @ (q_basis.T @ y)
    ryy = float(xp.sum(r_y * r_y))
    df = n - x_np.shape[1] - 1
    chunk = chunk_size or default_chunk_size(n, budget_bytes=memory_budget(matrix))
    beta = np.empty(g)
    se = np.empty(g)
    for start in range(0, g, chunk):
        stop = min(start + chunk, g)
        block = matrix[:, start:stop]
        sd = xp.std(block, axis=0)
        sd = xp.where(sd > 0, sd, 1.0)
        if standardize:
            block = (block - xp.mean(block, axis=0)) / sd
        r_x = block - q_basis @ (q_basis.T @ block)
        rxx = xp.sum(r_x * r_x, axis=0)
        scale = xp.sum(block * block, axis=0)
        with errstate(xp):
            b = (r_y @ r_x) / rxx
            rss = ryy - b * b * rxx
            rss = xp.where(rss > 0, rss, 0.0)
            s = xp.sqrt(rss / df / rxx)
        degenerate = to_numpy(rxx <= 1e-12 * scale)
        b, s = to_numpy(b).copy(), to_numpy(s).copy()
        b[degenerate] = np.nan
        s[degenerate] = np.nan
        beta[start:stop] = b
        se[start:stop] = s
    stat = beta / se
    pvalue = two_sided_t_pvalue(stat, df)
    return pd.DataFrame(
        {
            "gene": names,
            "beta": beta,
            "se": se,
            "stat": stat,
            "df": np.full(g, float(df)),
            "pvalue": pvalue,
            "padj": benjamini_hochberg(pvalue),
        },
        columns=RESULT_COLUMNS,
    )
