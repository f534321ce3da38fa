"""Volcano and QQ plots of a design result table (one panel per tested term).

Each function takes the tidy table of :func:`exprlmm.assoc.designs.api.fit_design` (columns
``term beta pvalue padj``), draws on ``ax`` (created when None) and returns the Axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["qq_plot", "volcano_plot"]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=(4.5, 4))
    return new


def _term(table: pd.DataFrame, term: str) -> pd.DataFrame:
    part = table[table["term"] == term]
    if part.empty:
        raise KeyError(f"term {term!r} was not tested; tested: {', '.join(table.term.unique())}")
    return part


def volcano_plot(
    table: pd.DataFrame, term: str, *, alpha: float = 0.05, ax: Axes | None = None
) -> Axes:
    r"""Effect (``beta``; F statistic for a multi-column term) against :math:`-\log_{10} p`.

    Genes with ``padj < alpha`` are drawn in red; the title counts them.
    """
    ax = _axes(ax)
    part = _term(table, term)
    x = part["beta"].to_numpy() if part["beta"].notna().any() else part["stat"].to_numpy()
    y = -np.log10(np.clip(part["pvalue"].to_numpy(), 1e-300, 1.0))
    hit = part["padj"].to_numpy() < alpha
    ax.scatter(x[~hit], y[~hit], s=4, color="0.6", linewidths=0)
    ax.scatter(x[hit], y[hit], s=6, color="tab:red", linewidths=0)
    ax.set_xlabel("beta" if part["beta"].notna().any() else "F")
    ax.set_ylabel("-log10 p")
    ax.set_title(f"{term}: {int(hit.sum())} genes at padj < {alpha:g}")
    return ax


def qq_plot(table: pd.DataFrame, term: str, *, ax: Axes | None = None) -> Axes:
    r"""Observed against expected :math:`-\log_{10} p` under the uniform null, with the diagonal.

    The title gives the genomic inflation :math:`\lambda = \text{median}(\chi^2_1)/0.4549`
    computed from the p-values.
    """
    from scipy import stats

    ax = _axes(ax)
    p = np.sort(np.clip(_term(table, term)["pvalue"].dropna().to_numpy(), 1e-300, 1.0))
    n = p.size
    expected = -np.log10((np.arange(1, n + 1) - 0.5) / n)
    ax.scatter(expected, -np.log10(p), s=4, color="tab:blue", linewidths=0)
    top = float(max(expected.max(initial=1.0), 1.0))
    ax.plot([0, top], [0, top], color="0.3", lw=0.8, ls="--")
    lam = float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)) if n else float("nan")
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(f"{term}: QQ (λ = {lam:.2f})")
    return ax
