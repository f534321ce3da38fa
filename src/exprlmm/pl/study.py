"""Figures of ``exprlmm study`` (Yao et al. 2019, Fig 1, Fig 2 and Supp. Fig S2).

Every function takes tidy DataFrames in the shapes documented in ``docs/study.md`` (no file
reading), draws on ``ax`` (``fig`` for the multi-panel figure; a new one when None) and returns
it. An empty input draws a panel that says "no data" instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "nes_heatmap",
    "purity_positions_plot",
    "purity_share_plot",
    "set_nes_barplot",
    "subsample_nes_plot",
    "subsample_similarity_plot",
]

#: Preferred display order of the study's models; others follow in order of appearance.
MODEL_ORDER = ("slr", "lmm", "lmm_nopurity")
DIRECTION_COLORS = {"positive": "tab:red", "negative": "tab:blue"}
MODEL_COLORS = {"slr": "tab:orange", "lmm": "tab:green", "lmm_nopurity": "tab:purple"}
FDR_MARK = 0.25


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 3.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=figsize)
    return new


def _no_data(ax: Axes, what: str = "") -> Axes:
    """Write "no data" in the middle of an empty panel."""
    ax.text(
        0.5,
        0.5,
        f"no data{': ' + what if what else ''}",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.4",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: missing columns {missing}; has {list(frame.columns)}")


def _model_order(present: Sequence[str], models: Sequence[str] | None) -> list[str]:
    """``models`` restricted to those present, or the present ones in the preferred order."""
    seen = list(dict.fromkeys(str(m) for m in present))
    if models is not None:
        return [m for m in models if m in seen]
    first = [m for m in MODEL_ORDER if m in seen]
    return first + [m for m in seen if m not in first]


def _model_color(model: str, index: int) -> str:
    return MODEL_COLORS.get(model, f"C{index % 10}")


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _mean_sd(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean and sample sd (ddof = 1; 0 for a single repeat) of ``value`` per ``by`` group."""
    grouped = frame.groupby(by, sort=True)[value]
    out = grouped.agg(["mean", "count"]).reset_index()
    sd = grouped.std(ddof=1).reset_index(drop=True).to_numpy(dtype=np.float64)
    out["sd"] = np.where(out["count"].to_numpy() > 1, sd, 0.0)
    return out


def purity_positions_plot(
    positions: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    summary: pd.DataFrame | None = None,
    bins: int = 50,
    fig: Figure | None = None,
) -> Figure:
    """Where the purity-associated genes fall along each model's ranking (paper Fig 1a–c).

    One row per model: a histogram of the ranks (``rank`` = 1-based position by decreasing
    signed statistic; x from 1 to ``n_genes``) stacked by ``direction``, the uniform
    expectation :math:`n_\\text{purity}/\\text{bins}` per bin as a dashed line, and a rug of
    the ranks below it coloured by direction. With ``summary`` (``purity_summary.tsv`` shape)
    the panel title gives the share of purity genes among the ``top_n`` genes with the
    smallest p-value and its expectation ``share_expected`` = n_purity_genes / n_genes.

    Parameters
    ----------
    positions
        ``model gene direction rank n_genes`` (``purity_positions.tsv``).
    models
        Models to draw, top to bottom (default: all present, slr / lmm / lmm_nopurity first).
    summary
        Optional ``model top_n share_purity_in_top share_expected`` table.
    bins
        Number of histogram bins along the ranking.
    fig
        Figure to draw on (cleared); a new one when None.
    """
    _require(positions, ["model", "rank", "n_genes"], "purity positions")
    order = _model_order(positions["model"].astype(str).tolist(), models)
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(7.0, 2.2 * max(1, len(order)) + 0.6))
    else:
        fig.clear()
    if positions.empty or not order:
        _no_data(fig.add_subplot(1, 1, 1), "purity-associated gene positions")
        return fig
    stats = None
    if summary is not None and not summary.empty and "model" in summary.columns:
        stats = summary.assign(model=summary["model"].astype(str)).set_index("model")
    grid = fig.add_gridspec(2 * len(order), 1, height_ratios=[4.0, 0.7] * len(order), hspace=0.0)
    direction = (
        positions["direction"].fillna("").astype(str)
        if "direction" in positions.columns
        else pd.Series("", index=positions.index)
    )
    for i, model in enumerate(order):
        rows = positions["model"].astype(str) == model
        ranks = positions.loc[rows, "rank"].to_numpy(dtype=np.float64)
        n_genes = int(positions.loc[rows, "n_genes"].max())
        dirs = direction[rows].to_numpy()
        hist_ax = fig.add_subplot(grid[2 * i])
        rug_ax = fig.add_subplot(grid[2 * i + 1], sharex=hist_ax)
        edges = np.linspace(1.0, n_genes + 1.0, bins + 1)
        groups = [d for d in ("positive", "negative") if np.any(dirs == d)]
        other = ~np.isin(dirs, ["positive", "negative"])
        data = [ranks[dirs == d] for d in groups]
        colors = [DIRECTION_COLORS[d] for d in groups]
        labels = [f"{d} with purity" for d in groups]
        if other.any():
            data.append(ranks[other])
            colors.append("0.5")
            labels.append("direction unknown")
        hist_ax.hist(data, bins=edges, stacked=True, color=colors, label=labels)
        hist_ax.axhline(len(ranks) / bins, color="0.3", lw=0.8, ls="--")
        for values, color in zip(data, colors, strict=True):
            rug_ax.vlines(values, 0.0, 1.0, color=color, lw=0.4)
        hist_ax.set_xlim(1, n_genes)
        hist_ax.set_ylabel("genes")
        hist_ax.tick_params(labelbottom=False)
        rug_ax.set_ylim(0, 1)
        rug_ax.set_yticks([])
        title = f"{model}: {len(ranks)} purity-associated genes"
        if stats is not None and model in stats.index:
            row = stats.loc[model]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            if {"share_purity_in_top", "top_n"} <= set(row.index):
                title += f"; {row['share_purity_in_top']:.1%} of top {int(row['top_n'])}"
                if "share_expected" in row.index:
                    title += f" (expected {row['share_expected']:.1%})"
        hist_ax.set_title(title, fontsize=9)
        if i == 0:
            hist_ax.legend(fontsize=7, loc="upper right", frameon=False)
        if i == len(order) - 1:
            rug_ax.set_xlabel("rank in the ranking (1 = most positively associated with the trait)")
    return fig


def set_nes_barplot(
    nes: pd.DataFrame,
    terms: Sequence[str],
    *,
    models: Sequence[str] = ("slr", "lmm"),
    fdr: float = FDR_MARK,
    ax: Axes | None = None,
) -> Axes:
    """Grouped horizontal bars of NES per gene set, one bar per model (paper Fig 2a/b).

    Bars whose FDR q < ``fdr`` are hatched and marked with a star beyond the bar end.
    Terms absent from every model are dropped; a term absent from one model has no bar there.

    Parameters
    ----------
    nes
        Long table ``model term nes fdr`` (one cohort; e.g. the ``gsea_<m>.tsv`` tables stacked
        with a ``model`` column).
    terms
        Gene sets to show, top to bottom.
    models
        Models to compare, one bar each per term.
    """
    ax = _axes(ax, (6.0, 0.5 + 0.45 * max(1, len(terms))))
    _require(nes, ["model", "term", "nes", "fdr"], "NES table")
    frame = nes.assign(model=nes["model"].astype(str), term=nes["term"].astype(str))
    frame = frame[frame["model"].isin(list(models)) & frame["term"].isin(list(terms))]
    shown = [t for t in dict.fromkeys(terms) if t in set(frame["term"])]
    present = [m for m in models if m in set(frame["model"])]
    if not shown or not present:
        return _no_data(ax, "gene sets not tested")
    if frame.duplicated(["model", "term"]).any():
        raise ValueError("NES table: several rows for one model and term (more than one cohort?)")
    table = frame.set_index(["model", "term"])
    height = 0.8 / len(present)
    y = np.arange(len(shown))[::-1].astype(np.float64)
    span = float(np.nanmax(np.abs(frame["nes"].to_numpy(dtype=np.float64)), initial=1.0))
    for j, model in enumerate(present):
        idx = pd.MultiIndex.from_arrays([[model] * len(shown), shown])
        part = table.reindex(idx)
        values = part["nes"].to_numpy(dtype=np.float64)
        q = part["fdr"].to_numpy(dtype=np.float64)
        offset = (len(present) - 1) / 2.0 - j
        ypos = y + offset * height
        keep = np.isfinite(values)
        bars = ax.barh(
            ypos[keep],
            values[keep],
            height=height,
            color=_model_color(model, j),
            edgecolor="0.2",
            linewidth=0.4,
            label=model,
        )
        significant = (q[keep] < fdr) & np.isfinite(q[keep])
        for bar, sig in zip(bars.patches, significant, strict=True):
            if sig:
                bar.set_hatch("///")
        for value, yy in zip(values[keep][significant], ypos[keep][significant], strict=True):
            ax.text(
                value + np.sign(value) * 0.03 * span,
                yy,
                "*",
                ha="left" if value >= 0 else "right",
                va="center",
                fontsize=9,
            )
    ax.set_yticks(y, [_short(t) for t in shown], fontsize=7)
    ax.axvline(0.0, color="0.3", lw=0.6)
    ax.set_xlim(-1.2 * span, 1.2 * span)
    ax.set_xlabel(f"NES (* and hatched: FDR q < {fdr:g})")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return ax


def _heatmap_terms(sub: pd.DataFrame, direction: str, fdr: float, max_terms: int) -> list[str]:
    """Terms enriched in ``direction`` (FDR < ``fdr``) in at least one cohort, most often first."""
    sign = 1.0 if direction == "positive" else -1.0
    hit = sub[(sign * sub["nes"] > 0) & (sub["fdr"] < fdr)]
    if hit.empty:
        return []
    score = hit.groupby("term").agg(n=("nes", "size"), strength=("nes", lambda v: np.abs(v).mean()))
    score = score.sort_values(["n", "strength"], ascending=[False, False], kind="mergesort")
    return score.index[:max_terms].astype(str).tolist()


def nes_heatmap(
    nes: pd.DataFrame,
    *,
    model: str,
    direction: str = "positive",
    value: str = "nes",
    terms: Sequence[str] | None = None,
    fdr: float = FDR_MARK,
    q_floor: float | None = None,
    max_terms: int = 30,
    ax: Axes | None = None,
) -> Axes:
    """Cohorts × gene sets heatmap of one model's enrichment (paper Fig 1d/e, 2c/d).

    ``value="nes"`` draws the NES; ``value="signed_log10q"`` draws
    :math:`\\operatorname{sign}(\\mathrm{NES})\\,(-\\log_{10}\\max(q, q_\\text{floor}))`, the floor
    keeping q = 0 (no null score as extreme) finite; the colorbar label states it. Cells with
    FDR q < ``fdr`` are marked with a dot; untested cells are blank.

    Parameters
    ----------
    nes
        Long table ``cohort model term nes fdr`` (``summary/nes.tsv``).
    model
        The model whose rankings are shown.
    direction
        ``positive`` / ``negative``: without ``terms``, the columns are the sets with NES of
        that sign and FDR q < ``fdr`` in at least one cohort (most cohorts first, at most
        ``max_terms``). The cells keep their sign either way (diverging colour map).
    terms
        Gene sets to show (overrides the selection by ``direction``).
    q_floor
        Floor of q for ``signed_log10q`` (e.g. 1 / permutations); default: the smallest
        positive q in the table (1e-3 when there is none).
    """
    if direction not in ("positive", "negative"):
        raise ValueError(f"direction must be 'positive' or 'negative', not {direction!r}")
    if value not in ("nes", "signed_log10q"):
        raise ValueError(f"value must be 'nes' or 'signed_log10q', not {value!r}")
    ax = _axes(ax, (8.0, 4.0))
    _require(nes, ["cohort", "model", "term", "nes", "fdr"], "NES table")
    sub = nes[nes["model"].astype(str) == model].assign(
        cohort=lambda f: f["cohort"].astype(str), term=lambda f: f["term"].astype(str)
    )
    chosen = (
        [t for t in dict.fromkeys(terms) if t in set(sub["term"])]
        if terms is not None
        else _heatmap_terms(sub, direction, fdr, max_terms)
    )
    ax.set_title(f"{model}: {direction} enrichment", fontsize=9)
    if sub.empty or not chosen:
        return _no_data(ax, f"no set with {direction} enrichment at FDR < {fdr:g}")
    sub = sub[sub["term"].isin(chosen)]
    if sub.duplicated(["cohort", "term"]).any():
        raise ValueError(f"NES table: several rows for one cohort and term under model {model!r}")
    cohorts = sorted(set(sub["cohort"]))
    nes_m = sub.pivot(index="cohort", columns="term", values="nes").reindex(
        index=cohorts, columns=chosen
    )
    q_m = sub.pivot(index="cohort", columns="term", values="fdr").reindex(
        index=cohorts, columns=chosen
    )
    nes_v = nes_m.to_numpy(dtype=np.float64)
    q_v = q_m.to_numpy(dtype=np.float64)
    if value == "nes":
        cells = nes_v
        label = "NES"
    else:
        if q_floor is None:
            positive = q_v[np.isfinite(q_v) & (q_v > 0)]
            q_floor = float(positive.min()) if positive.size else 1e-3
        cells = np.sign(nes_v) * -np.log10(np.maximum(q_v, q_floor))
        label = f"sign(NES) · −log10 q\n(q floored at {q_floor:.2g})"
    finite = cells[np.isfinite(cells)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit or 1.0
    import matplotlib as mpl

    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="white")
    image = ax.imshow(
        np.ma.masked_invalid(cells),
        aspect="auto",
        cmap=cmap,
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    rows, cols = np.nonzero((q_v < fdr) & np.isfinite(cells))
    if rows.size:
        ax.scatter(cols, rows, s=6, color="black", marker="o", linewidths=0)
    ax.set_xticks(np.arange(len(chosen)), [_short(t) for t in chosen], rotation=90, fontsize=6)
    ax.set_yticks(np.arange(len(cohorts)), cohorts, fontsize=7)
    ax.figure.colorbar(image, ax=ax, label=label, shrink=0.8)
    ax.set_xlabel(f"gene set (dot: FDR q < {fdr:g})", fontsize=8)
    return ax


def _lines_vs_size(ax: Axes, stats: pd.DataFrame, key: str, values, labels) -> None:
    """One mean ± sd line against ``size`` per value of ``key`` (a `_mean_sd` table)."""
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        part = stats[stats[key] == value]
        ax.errorbar(
            part["size"].to_numpy(dtype=np.float64),
            part["mean"].to_numpy(),
            yerr=part["sd"].to_numpy(),
            marker="o",
            ms=3,
            capsize=2,
            lw=1.0,
            color=f"C{i % 10}",
            label=label,
        )


def subsample_nes_plot(
    subsample_gsea: pd.DataFrame,
    *,
    terms: Sequence[str],
    model: str = "lmm",
    ax: Axes | None = None,
) -> Axes:
    """Mean ± sd (over repeats, ddof = 1) NES of each gene set against the subset size (Supp. S2).

    Parameters
    ----------
    subsample_gsea
        ``size repeat model term nes`` (``subsample_gsea.tsv`` of one cohort).
    terms
        Gene sets to draw, one line each (those not in the table are skipped).
    model
        The model whose rankings are shown.
    """
    ax = _axes(ax, (5.0, 3.5))
    _require(subsample_gsea, ["size", "model", "term", "nes"], "subsample GSEA table")
    sub = subsample_gsea[
        (subsample_gsea["model"].astype(str) == model)
        & subsample_gsea["term"].astype(str).isin(list(terms))
    ]
    sub = sub.assign(term=sub["term"].astype(str), nes=sub["nes"].astype(np.float64))
    sub = sub[np.isfinite(sub["nes"].to_numpy())]
    ax.set_title(f"{model}: NES vs subset size", fontsize=9)
    shown = [t for t in dict.fromkeys(terms) if t in set(sub["term"])]
    if not shown:
        return _no_data(ax, "subsampling GSEA")
    stats = _mean_sd(sub, ["term", "size"], "nes")
    _lines_vs_size(ax, stats, "term", shown, labels=[_short(t) for t in shown])
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel("subset size (samples)")
    ax.set_ylabel("NES (mean ± sd over repeats)")
    ax.legend(fontsize=6, frameon=False, loc="best")
    return ax


def subsample_similarity_plot(similarity: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Spearman correlation of the SLR and LMM statistics against the subset size (Supp. S2).

    One line per cohort: mean ± sd (ddof = 1) over the repeats at each size. Without a
    ``cohort`` column the table is one cohort.

    Parameters
    ----------
    similarity
        ``[cohort] size repeat spearman`` (``subsample_similarity.tsv``).
    """
    ax = _axes(ax, (5.0, 3.5))
    _require(similarity, ["size", "spearman"], "subsample similarity table")
    frame = similarity.assign(
        cohort=similarity["cohort"].astype(str) if "cohort" in similarity.columns else "",
        spearman=similarity["spearman"].astype(np.float64),
    )
    frame = frame[np.isfinite(frame["spearman"].to_numpy())]
    ax.set_title("SLR vs LMM ranking similarity", fontsize=9)
    if frame.empty:
        return _no_data(ax, "subsampling similarity")
    stats = _mean_sd(frame, ["cohort", "size"], "spearman")
    cohorts = sorted(set(stats["cohort"]))
    _lines_vs_size(ax, stats, "cohort", cohorts, labels=[c or None for c in cohorts])
    ax.set_xlabel("subset size (samples)")
    ax.set_ylabel("Spearman(SLR stat, LMM stat)")
    if any(cohorts):
        ax.legend(fontsize=6, frameon=False, loc="best")
    return ax


def purity_share_plot(
    summary: pd.DataFrame, *, models: Sequence[str] | None = None, ax: Axes | None = None
) -> Axes:
    """Share of purity-associated genes among each model's top genes, per cohort.

    Grouped bars of ``share_purity_in_top`` (cohorts along x, one bar per model); the black
    tick on each group is ``share_expected`` = n_purity_genes / n_genes (no enrichment).

    Parameters
    ----------
    summary
        ``[cohort] model top_n share_purity_in_top share_expected`` (``purity_summary.tsv``).
    models
        Models to draw (default: all present, slr / lmm / lmm_nopurity first).
    """
    ax = _axes(ax, (6.0, 3.5))
    _require(summary, ["model", "share_purity_in_top"], "purity summary table")
    frame = summary.assign(
        cohort=summary["cohort"].astype(str) if "cohort" in summary.columns else "",
        model=summary["model"].astype(str),
    )
    order = _model_order(frame["model"].tolist(), models)
    frame = frame[frame["model"].isin(order)]
    ax.set_title("purity-associated genes among the top genes", fontsize=9)
    if frame.empty:
        return _no_data(ax, "purity summary")
    cohorts = sorted(set(frame["cohort"]))
    width = 0.8 / len(order)
    x = np.arange(len(cohorts), dtype=np.float64)
    table = frame.drop_duplicates(["cohort", "model"]).set_index(["cohort", "model"])
    for j, model in enumerate(order):
        idx = pd.MultiIndex.from_arrays([cohorts, [model] * len(cohorts)])
        share = table.reindex(idx)["share_purity_in_top"].to_numpy(dtype=np.float64)
        keep = np.isfinite(share)
        ax.bar(
            x[keep] + (j - (len(order) - 1) / 2.0) * width,
            share[keep],
            width=width,
            color=_model_color(model, j),
            label=model,
        )
    if "share_expected" in frame.columns:
        expected = frame.groupby("cohort")["share_expected"].first().reindex(cohorts)
        ax.hlines(
            expected.to_numpy(dtype=np.float64),
            x - 0.45,
            x + 0.45,
            color="black",
            lw=1.2,
            label="expected",
        )
    top = ""
    if "top_n" in frame.columns and frame["top_n"].nunique() == 1:
        top = f" {int(frame['top_n'].iloc[0])}"
    ax.set_xticks(x, cohorts, rotation=90 if len(cohorts) > 8 else 0, fontsize=7)
    ax.set_ylabel(f"share of purity genes in top{top}")
    handles, labels = ax.get_legend_handles_labels()
    last = [i for i, label in enumerate(labels) if label == "expected"]
    keep = [i for i in range(len(labels)) if i not in last] + last
    ax.legend(
        [handles[i] for i in keep], [labels[i] for i in keep], fontsize=7, frameon=False, loc="best"
    )
    return ax
