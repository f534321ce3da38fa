"""GSEA plots: running-sum enrichment plot with a hit rug, and a bar plot of NES."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from exprlmm.gsea.enrichment import running_sum

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from exprlmm.gsea.engine import GseaResult

__all__ = ["enrichment_plot", "nes_barplot"]


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=(6, 3.5))
    return new


def enrichment_plot(result: GseaResult, term: str, *, ax: Axes | None = None) -> Axes:
    """Running enrichment score of ``term`` along the ranked list, hits as a rug below.

    The dashed line marks the ES; the title gives ES, NES and the FDR q.
    """
    if term not in result.hits:
        raise KeyError(f"gene set {term!r} was not tested; tested sets: {len(result.hits)}")
    ax = _axes(ax)
    rl = result.ranking
    pos = result.hits[term]
    res = running_sum(pos, rl.weights(result.settings.weight), rl.n)
    x = np.arange(rl.n)
    ax.plot(x, res, color="tab:green", lw=1.2)
    ax.axhline(0.0, color="0.5", lw=0.6)
    row = result.table.loc[result.table["term"] == term].iloc[0]
    ax.axhline(row["es"], color="tab:red", lw=0.8, ls="--")
    lo = min(res.min(), 0.0)
    span = max(res.max(), 0.0) - lo or 1.0
    ax.vlines(pos, lo - 0.12 * span, lo - 0.02 * span, color="black", lw=0.5)
    ax.set_xlim(0, rl.n - 1)
    ax.set_xlabel("rank in ordered gene list")
    ax.set_ylabel("running enrichment score")
    ax.set_title(f"{term}\nES={row['es']:.3f}  NES={row['nes']:.2f}  FDR q={row['fdr']:.3g}")
    return ax


def nes_barplot(
    table: pd.DataFrame,
    *,
    terms: Sequence[str] | None = None,
    top: int = 20,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of NES for ``terms`` (default: the ``top`` sets by |NES|)."""
    ax = _axes(ax)
    if terms is not None:
        missing = [t for t in terms if t not in set(table["term"])]
        if missing:
            raise KeyError(f"gene sets not in the table: {missing[:5]}")
        sub = table.set_index("term").loc[list(terms)].reset_index()
    else:
        sub = table.reindex(table["nes"].abs().sort_values(ascending=False).index).head(top)
    sub = sub.iloc[::-1]
    colors = np.where(sub["nes"].to_numpy() >= 0, "tab:red", "tab:blue")
    ax.barh(np.arange(len(sub)), sub["nes"].to_numpy(), color=colors)
    ax.set_yticks(np.arange(len(sub)))
    ax.set_yticklabels(sub["term"].tolist(), fontsize=7)
    ax.axvline(0.0, color="0.3", lw=0.6)
    ax.set_xlabel("NES")
    return ax
