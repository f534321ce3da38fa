"""Figures and the self-contained HTML report of an ``exprlmm study`` output folder.

Reads the tables of the documented layout (``docs/study.md``; whatever is missing is skipped),
draws the figures of :mod:`exprlmm.pl.study` per cohort and across cohorts, saves each as PNG
and PDF under ``<output>/figures/`` and writes ``<output>/report.html`` with the PNGs embedded
as base64 data URIs (no external CSS, JavaScript or network resource). Every file is written
atomically.

Figure names (flat, under ``figures/``): ``cohort_<name>_<kind>.{png,pdf}`` per cohort and
``summary_<kind>.{png,pdf}`` across cohorts; ``<name>`` is the cohort folder name with
characters outside ``[A-Za-z0-9._-]`` replaced (plus a short hash when anything was replaced).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from exprlmm.io.atomic import atomic_path, write_text_atomic
from exprlmm.pl.study import MODEL_ORDER

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure_stem", "write_figures", "write_report"]

log = logging.getLogger(__name__)

FORMATS = ("png", "pdf")
DPI = 110

#: Per-cohort figures: kind → caption (report order).
COHORT_FIGURES: dict[str, str] = {
    "purity_positions": (
        "Where the purity-associated genes fall along each model's ranking "
        "(histogram and rug of their ranks; dashed: uniform expectation)."
    ),
    "set_nes": "NES of the highlighted gene sets under each model (* and hatched: FDR q < 0.25).",
    "subsample_nes": "NES of the chosen gene sets in random subsets (mean ± sd over repeats).",
    "subsample_similarity": (
        "Spearman correlation of the SLR and LMM statistics in random subsets (mean ± sd)."
    ),
}
#: Cross-cohort figures (the NES heatmaps, one per model, come after ``purity_share``).
SUMMARY_FIGURES: dict[str, str] = {
    "purity_share": (
        "Share of purity-associated genes among each model's top genes "
        "(black tick: share expected without enrichment)."
    ),
    "subsample_similarity": "SLR vs LMM ranking similarity against subset size, per cohort.",
}
HEATMAP_CAPTION = (
    "Cohorts × gene sets enriched under {model} (top: positive, bottom: negative enrichment; "
    "dot: FDR q < 0.25; blank: not tested)."
)
PURITY_SETS = ("PURITY_POSITIVE", "PURITY_NEGATIVE")


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> pd.DataFrame | None:
    """A TSV of the output folder, or None when absent; an empty file is an empty table."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _cohort_dirs(output: Path) -> list[Path]:
    root = output / "cohorts"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _stacked(output: Path, name: str) -> pd.DataFrame | None:
    """``summary/<name>``, or the per-cohort ``<name>`` tables stacked with a ``cohort`` column."""
    table = _read(output / "summary" / name)
    if table is not None:
        return table
    parts = []
    for folder in _cohort_dirs(output):
        part = _read(folder / name)
        if part is not None and not part.empty:
            parts.append(part.assign(cohort=folder.name)[["cohort", *part.columns]])
    return pd.concat(parts, ignore_index=True) if parts else None


def _model_tables(folder: Path, models: Sequence[str]) -> pd.DataFrame:
    """``gsea_<m>.tsv`` of each model and ``purity_gsea.tsv`` as one ``model term nes fdr`` table."""
    parts = []
    for model in models:
        table = _read(folder / f"gsea_{model}.tsv")
        if table is not None and {"term", "nes", "fdr"} <= set(table.columns):
            parts.append(table[["term", "nes", "fdr"]].assign(model=model))
    purity = _read(folder / "purity_gsea.tsv")
    if purity is not None and {"model", "set", "nes", "fdr"} <= set(purity.columns):
        parts.append(purity.rename(columns={"set": "term"})[["model", "term", "nes", "fdr"]])
    if not parts:
        return pd.DataFrame(columns=["model", "term", "nes", "fdr"])
    return pd.concat(parts, ignore_index=True)[["model", "term", "nes", "fdr"]]


def _nes_summary(output: Path, models: Sequence[str]) -> pd.DataFrame | None:
    table = _read(output / "summary" / "nes.tsv")
    if table is not None:
        return table
    parts = []
    for folder in _cohort_dirs(output):
        for model in models:
            part = _read(folder / f"gsea_{model}.tsv")
            if part is not None and {"term", "nes", "fdr"} <= set(part.columns):
                parts.append(part[["term", "nes", "fdr"]].assign(cohort=folder.name, model=model))
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True)[["cohort", "model", "term", "nes", "fdr"]]


def _ordered_models(present: Sequence[str], models: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(str(m) for m in present))
    first = [m for m in (*models, *MODEL_ORDER) if m in seen]
    first = list(dict.fromkeys(first))
    return first + [m for m in seen if m not in first]


# --------------------------------------------------------------------------- figures


def figure_stem(cohort: str | None, kind: str) -> str:
    """File stem of a figure: ``cohort_<name>_<kind>``, or ``summary_<kind>`` across cohorts."""
    if cohort is None:
        return f"summary_{kind}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cohort)
    if safe != cohort:
        safe += "-" + hashlib.sha1(cohort.encode("utf-8")).hexdigest()[:6]
    return f"cohort_{safe}_{kind}"


def _new_figure(width: float, height: float) -> Figure:
    # A bare Figure (no pyplot): no global state, no GUI backend, nothing to close.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, folder: Path, stem: str, dpi: int) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = folder / f"{stem}.{fmt}"
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
        # The first save ran the constrained layout; keep it for the other formats.
        fig.set_layout_engine("none")
        paths.append(path)
    fig.clear()
    return paths


def write_figures(
    output_dir: str | os.PathLike[str],
    *,
    highlight_terms: Sequence[str],
    models: Sequence[str],
    q_floor: float | None = None,
    heatmap_value: str = "nes",
    dpi: int = DPI,
) -> list[Path]:
    """Draw every figure the tables of ``output_dir`` allow; save PNG + PDF under ``figures/``.

    Per cohort (``cohorts/<cohort>/``): purity gene positions (``purity_positions.tsv`` with
    ``purity_summary.tsv`` for the titles), NES of ``highlight_terms`` and of the purity sets
    per model (``gsea_<m>.tsv``, ``purity_gsea.tsv``), NES vs subset size per model
    (``subsample_gsea.tsv``; its sets), SLR–LMM similarity vs subset size
    (``subsample_similarity.tsv``). Across cohorts (``summary/``, else the per-cohort tables
    stacked): share of purity genes in the top genes, one two-panel NES heatmap per model
    (positive / negative enrichment; ``heatmap_value`` ``nes`` or ``signed_log10q`` with
    ``q_floor``, e.g. 1 / permutations), similarity vs subset size.

    Returns
    -------
    list of Path
        The files written, PNG then PDF of each figure, in report order.
    """
    from exprlmm.pl.study import (
        nes_heatmap,
        purity_positions_plot,
        purity_share_plot,
        set_nes_barplot,
        subsample_nes_plot,
        subsample_similarity_plot,
    )

    output = Path(output_dir)
    folder = output / "figures"
    written: list[Path] = []
    models = list(models)
    for cohort_dir in _cohort_dirs(output):
        cohort = cohort_dir.name

        def save(fig: Figure, kind: str, cohort: str = cohort) -> None:
            written.extend(_save(fig, folder, figure_stem(cohort, kind), dpi))

        positions = _read(cohort_dir / "purity_positions.tsv")
        if positions is not None:
            summary = _read(cohort_dir / "purity_summary.tsv")
            n = max(1, positions["model"].nunique()) if "model" in positions.columns else 1
            fig = _new_figure(7.5, 2.0 * n + 0.8)
            purity_positions_plot(positions, models=None, summary=summary, fig=fig)
            fig.suptitle(cohort, fontsize=10)
            save(fig, "purity_positions")

        nes = _model_tables(cohort_dir, models)
        present = set(nes["term"].astype(str))
        terms = [t for t in (*highlight_terms, *PURITY_SETS) if t in present]
        if terms:
            shown = _ordered_models(nes["model"].astype(str).tolist(), models)
            fig = _new_figure(7.0, 1.2 + 0.22 * len(terms) * max(2, len(shown)))
            ax = set_nes_barplot(nes, terms, models=shown, ax=fig.add_subplot())
            ax.set_title(cohort, fontsize=10)
            save(fig, "set_nes")

        sub_gsea = _read(cohort_dir / "subsample_gsea.tsv")
        if sub_gsea is not None and {"model", "term"} <= set(sub_gsea.columns):
            shown = _ordered_models(sub_gsea["model"].astype(str).tolist(), models) or ["lmm"]
            sets = list(dict.fromkeys(sub_gsea["term"].astype(str)))
            fig = _new_figure(4.2 * len(shown), 3.6)
            axes = fig.subplots(1, len(shown), squeeze=False, sharey=True)[0]
            for ax, model in zip(axes, shown, strict=True):
                subsample_nes_plot(sub_gsea, terms=sets, model=model, ax=ax)
            fig.suptitle(cohort, fontsize=10)
            save(fig, "subsample_nes")

        similarity = _read(cohort_dir / "subsample_similarity.tsv")
        if similarity is not None:
            fig = _new_figure(5.0, 3.6)
            ax = subsample_similarity_plot(similarity, ax=fig.add_subplot())
            ax.set_title(f"{cohort}: SLR vs LMM ranking similarity", fontsize=9)
            save(fig, "subsample_similarity")

    def save_summary(fig: Figure, kind: str) -> None:
        written.extend(_save(fig, folder, figure_stem(None, kind), dpi))

    purity = _stacked(output, "purity_summary.tsv")
    if purity is not None:
        n_cohorts = purity["cohort"].nunique() if "cohort" in purity.columns else 1
        fig = _new_figure(max(5.0, 1.5 + 0.6 * n_cohorts), 3.8)
        purity_share_plot(purity, ax=fig.add_subplot())
        save_summary(fig, "purity_share")

    nes_all = _nes_summary(output, models)
    if nes_all is not None and "model" in nes_all.columns:
        n_cohorts = nes_all["cohort"].nunique() if "cohort" in nes_all.columns else 1
        for model in _ordered_models(nes_all["model"].astype(str).tolist(), models):
            fig = _new_figure(10.0, 2.0 * (4.0 + 0.22 * n_cohorts))  # room for set names
            top, bottom = fig.subplots(2, 1)
            for ax, direction in ((top, "positive"), (bottom, "negative")):
                nes_heatmap(
                    nes_all,
                    model=model,
                    direction=direction,
                    value=heatmap_value,
                    q_floor=q_floor,
                    ax=ax,
                )
            save_summary(fig, f"nes_heatmap_{model}")

    similarity = _stacked(output, "subsample_similarity.tsv")
    if similarity is not None:
        fig = _new_figure(5.5, 3.8)
        subsample_similarity_plot(similarity, ax=fig.add_subplot())
        save_summary(fig, "subsample_similarity")
    return written


# --------------------------------------------------------------------------- report

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1, h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; }
td.text { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
nav ul { columns: 3; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != 0.0 and np.isfinite(v) and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.3g}"
    return str(value)


def _html_table(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """An escaped HTML table of ``frame`` (``columns`` that exist, in that order)."""
    cols = [c for c in columns if c in frame.columns] if columns else list(frame.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    rows = []
    for record in frame[cols].itertuples(index=False, name=None):
        cells = []
        for value in record:
            numeric = isinstance(value, (int, float, np.integer, np.floating))
            css = "" if numeric else ' class="text"'
            cells.append(f"<td{css}>{_e(_fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _href(relative: str) -> str:
    return _e(quote(relative, safe="/"))


def _figure_html(output: Path, stem: str, caption: str) -> str:
    png = output / "figures" / f"{stem}.png"
    if not png.is_file():
        return ""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    links = f'<a href="{_href(f"figures/{stem}.png")}">PNG</a>'
    if (output / "figures" / f"{stem}.pdf").is_file():
        links += f' · <a href="{_href(f"figures/{stem}.pdf")}">PDF</a>'
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(stem)}">'
        f"<figcaption>{_e(caption)} ({links})</figcaption></figure>"
    )


def _links_html(output: Path, folder: Path) -> str:
    files = sorted(p for p in folder.glob("*.tsv") if p.is_file())
    if not files:
        return ""
    items = "".join(
        f'<li><a href="{_href(p.relative_to(output).as_posix())}">{_e(p.name)}</a></li>'
        for p in files
    )
    return f"<h3>Tables</h3><ul>{items}</ul>"


PURITY_SUMMARY_COLUMNS = (
    "cohort",
    "model",
    "n_genes",
    "n_purity_genes",
    "top_n",
    "n_purity_in_top",
    "share_purity_in_top",
    "share_expected",
    "rank_auc",
    "rank_pvalue",
    "fdr",
    "n_trait_assoc",
    "n_overlap",
)
PURITY_GSEA_COLUMNS = ("model", "set", "size", "es", "nes", "pvalue", "fdr")
SET_OVERLAP_COLUMNS = (
    "cohort",
    "model",
    "direction",
    "n_purity_sets",
    "n_trait_sets",
    "n_overlap",
    "jaccard",
)


def _cohort_html(output: Path, folder: Path, anchor: str) -> str:
    cohort = folder.name
    parts = [f'<section id="{_e(anchor)}"><h2>Cohort {_e(cohort)}</h2>']
    summary = _read(folder / "purity_summary.tsv")
    if summary is not None and not summary.empty:
        parts.append("<h3>Purity-associated genes under each model</h3>")
        parts.append(_html_table(summary, PURITY_SUMMARY_COLUMNS))
    purity_gsea = _read(folder / "purity_gsea.tsv")
    if purity_gsea is not None and not purity_gsea.empty:
        parts.append("<h3>GSEA of the purity gene sets on each ranking</h3>")
        parts.append(_html_table(purity_gsea, PURITY_GSEA_COLUMNS))
    overlap = _read(folder / "set_overlap.tsv")
    if overlap is not None and not overlap.empty:
        parts.append("<h3>Purity-associated vs trait-associated gene sets (FDR q &lt; 0.25)</h3>")
        parts.append(_html_table(overlap, SET_OVERLAP_COLUMNS))
    for kind, caption in COHORT_FIGURES.items():
        parts.append(_figure_html(output, figure_stem(cohort, kind), caption))
    parts.append(_links_html(output, folder))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _heatmap_stems(output: Path) -> list[tuple[str, str]]:
    stems = [p.stem for p in (output / "figures").glob("summary_nes_heatmap_*.png")]
    models = [s.removeprefix("summary_nes_heatmap_") for s in stems]
    order = _ordered_models(sorted(models), [])
    return [(f"summary_nes_heatmap_{m}", m) for m in order]


def _summary_html(output: Path) -> str:
    parts = ['<section id="cross-cohort"><h2>Across cohorts</h2>']
    purity = _stacked(output, "purity_summary.tsv")
    if purity is not None and not purity.empty:
        parts.append("<h3>Purity-associated genes under each model, all cohorts</h3>")
        parts.append(_html_table(purity, PURITY_SUMMARY_COLUMNS))
    overlap = _stacked(output, "set_overlap.tsv")
    if overlap is not None and not overlap.empty:
        parts.append("<h3>Purity-associated vs trait-associated gene sets</h3>")
        parts.append(_html_table(overlap, SET_OVERLAP_COLUMNS))
    parts.append(_figure_html(output, "summary_purity_share", SUMMARY_FIGURES["purity_share"]))
    for stem, model in _heatmap_stems(output):
        parts.append(_figure_html(output, stem, HEATMAP_CAPTION.format(model=model)))
    parts.append(
        _figure_html(
            output, "summary_subsample_similarity", SUMMARY_FIGURES["subsample_similarity"]
        )
    )
    parts.append(_links_html(output, output / "summary"))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _timings_html(timings: Mapping[str, Any]) -> str:
    rows = []
    for name, value in timings.items():
        shown = f"{value:.1f} s" if isinstance(value, (int, float)) else str(value)
        rows.append(f'<tr><td class="text">{_e(name)}</td><td>{_e(shown)}</td></tr>')
    return (
        '<section id="timings"><h2>Timings</h2><table><thead><tr><th>step</th><th>time</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def write_report(
    output_dir: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    timings: Mapping[str, Any] | None = None,
    notes: Sequence[str] | None = None,
) -> Path:
    """Write ``<output_dir>/report.html``: one self-contained page for the whole study.

    Per cohort: the purity summary, purity-set GSEA and set-overlap tables, the cohort's
    figures (PNG embedded as base64 data URIs, links to the PNG/PDF files) and relative links
    to its TSV tables; then the cross-cohort tables, figures and links; the resolved
    configuration (JSON, preformatted) and the timings (seconds). All text is HTML-escaped;
    run :func:`write_figures` first for the figures to appear.

    Parameters
    ----------
    config
        The resolved configuration (JSON-serialisable; other values are shown with ``str``).
    timings
        Step name → seconds (or any text).
    notes
        Paragraphs shown at the top (e.g. warnings of the run).
    """
    output = Path(output_dir)
    cohorts = _cohort_dirs(output)
    anchors = [f"cohort-{i}" for i in range(len(cohorts))]
    toc = [
        f'<li><a href="#{a}">{_e(folder.name)}</a></li>'
        for a, folder in zip(anchors, cohorts, strict=True)
    ]
    toc += ['<li><a href="#cross-cohort">Across cohorts</a></li>']
    toc += ['<li><a href="#configuration">Configuration</a></li>']
    if timings:
        toc += ['<li><a href="#timings">Timings</a></li>']
    body: list[str] = ["<h1>exprlmm study</h1>", f"<nav><ul>{''.join(toc)}</ul></nav>"]
    if notes:
        body.append(
            '<section id="notes"><h2>Notes</h2>'
            + "".join(f"<p>{_e(n)}</p>" for n in notes)
            + "</section>"
        )
    body += [_cohort_html(output, f, a) for f, a in zip(cohorts, anchors, strict=True)]
    body.append(_summary_html(output))
    extra = [
        f'<a href="{_href(name)}">{_e(name)}</a>'
        for name in ("study.resolved.toml", "study.log")
        if (output / name).is_file()
    ]
    config_text = json.dumps(dict(config), indent=2, default=str, ensure_ascii=False)
    body.append(
        '<section id="configuration"><h2>Configuration</h2>'
        + (f"<p>{' · '.join(extra)}</p>" if extra else "")
        + f"<pre>{_e(config_text)}</pre></section>"
    )
    if timings:
        body.append(_timings_html(timings))
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>exprlmm study report</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    path = output / "report.html"
    write_text_atomic(path, page)
    return path
