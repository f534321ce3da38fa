"""Study figures: each plot draws what its table holds, and says "no data" on empty input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from exprlmm.pl.study import (
    nes_heatmap,
    purity_positions_plot,
    purity_share_plot,
    set_nes_barplot,
    subsample_nes_plot,
    subsample_similarity_plot,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _bars(ax) -> list[Rectangle]:
    return [p for c in ax.containers if hasattr(c, "patches") for p in c.patches]


def _positions() -> pd.DataFrame:
    rows = []
    # slr: 3 positive + 2 negative purity genes; lmm: 1 positive + 1 negative; 100 genes.
    for model, ranks, dirs in (
        ("slr", [1, 2, 3, 99, 100], ["positive"] * 3 + ["negative"] * 2),
        ("lmm", [40, 60], ["positive", "negative"]),
    ):
        for i, (rank, d) in enumerate(zip(ranks, dirs, strict=True)):
            rows.append((model, f"g{model}{i}", d, rank, 100))
    return pd.DataFrame(rows, columns=["model", "gene", "direction", "rank", "n_genes"])


def test_purity_positions_one_row_per_model_with_rug_histogram_and_title():
    summary = pd.DataFrame(
        {
            "model": ["slr", "lmm"],
            "top_n": [500, 500],
            "share_purity_in_top": [0.25, 0.05],
            "share_expected": [0.1, 0.1],
        }
    )
    fig = purity_positions_plot(_positions(), summary=summary)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # histogram + rug per model
    hist_slr, rug_slr, hist_lmm, rug_lmm = fig.axes
    assert hist_slr.get_title().startswith("slr: 5 purity-associated genes")
    assert "25.0% of top 500 (expected 10.0%)" in hist_slr.get_title()
    assert "5.0% of top 500" in hist_lmm.get_title()
    # Rug: one line collection per direction, one segment per purity gene, at its rank.
    rug = [c for c in rug_slr.collections if isinstance(c, LineCollection)]
    assert len(rug) == 2
    xs = sorted(seg[0, 0] for c in rug for seg in c.get_segments())
    assert xs == [1, 2, 3, 99, 100]
    assert sum(len(c.get_segments()) for c in rug_lmm.collections) == 2
    # Histogram: counts per bin sum to the number of genes; x spans 1..n_genes.
    heights = [p.get_height() for p in hist_slr.patches if isinstance(p, Rectangle)]
    assert sum(heights) == pytest.approx(5.0)
    assert hist_slr.get_xlim() == (1.0, 100.0)
    # Uniform expectation per bin: 5 genes / 50 bins.
    assert hist_slr.lines[0].get_ydata()[0] == pytest.approx(0.1)


def test_purity_positions_models_argument_selects_and_orders():
    fig = purity_positions_plot(_positions(), models=["lmm"])
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title().startswith("lmm: 2 ")


def test_purity_positions_empty_says_no_data():
    empty = _positions().iloc[:0]
    fig = purity_positions_plot(empty)
    assert len(fig.axes) == 1
    assert _texts(fig.axes[0])[0].startswith("no data")


def _nes_one_cohort() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["slr", "slr", "lmm", "lmm", "lmm"],
            "term": ["CELL_CYCLE", "IMMUNE", "CELL_CYCLE", "IMMUNE", "OTHER"],
            "nes": [2.1, -1.8, 1.9, -0.4, 1.0],
            "fdr": [0.01, 0.1, 0.02, 0.6, 0.9],
        }
    )


def test_set_nes_barplot_bars_labels_and_fdr_marks():
    ax = set_nes_barplot(_nes_one_cohort(), ["CELL_CYCLE", "IMMUNE", "NOT_TESTED"])
    bars = _bars(ax)
    assert len(bars) == 4  # 2 terms × 2 models; the untested set is dropped
    assert sorted(round(b.get_width(), 6) for b in bars) == [-1.8, -0.4, 1.9, 2.1]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CELL_CYCLE", "IMMUNE"]
    # FDR < 0.25: slr CELL_CYCLE, slr IMMUNE, lmm CELL_CYCLE -> 3 stars and 3 hatched bars.
    assert _texts(ax).count("*") == 3
    assert sum(bool(b.get_hatch()) for b in bars) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["slr", "lmm"]


def test_set_nes_barplot_missing_model_term_has_no_bar():
    ax = set_nes_barplot(_nes_one_cohort(), ["OTHER"], models=("slr", "lmm"))
    bars = _bars(ax)
    assert len(bars) == 1 and bars[0].get_width() == pytest.approx(1.0)


def test_set_nes_barplot_empty_says_no_data():
    ax = set_nes_barplot(_nes_one_cohort().iloc[:0], ["CELL_CYCLE"])
    assert _texts(ax)[0].startswith("no data")


def _nes_cohorts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cohort": ["ACC", "ACC", "ACC", "UCS", "UCS", "UCS", "UCS"],
            "model": ["lmm", "lmm", "lmm", "lmm", "lmm", "lmm", "slr"],
            "term": ["A", "B", "C", "A", "B", "C", "A"],
            "nes": [2.0, -1.5, 0.5, 1.2, 1.1, -2.5, 9.0],
            "fdr": [0.0, 0.01, 0.5, 0.1, 0.3, 0.001, 0.0],
        }
    )


def test_nes_heatmap_positive_selects_terms_and_draws_nes():
    ax = nes_heatmap(_nes_cohorts(), model="lmm", direction="positive")
    # Positive and FDR < 0.25 in some cohort: A (ACC, UCS) then B (none: ACC negative, UCS q .3).
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ACC", "UCS"]
    values = ax.images[0].get_array()
    np.testing.assert_allclose(values.filled(np.nan), [[2.0], [1.2]])
    assert ax.images[0].colorbar.ax.get_ylabel() == "NES"


def test_nes_heatmap_signed_log10q_floors_q_and_says_so():
    ax = nes_heatmap(
        _nes_cohorts(),
        model="lmm",
        direction="negative",
        value="signed_log10q",
        terms=["A", "B", "C"],
        q_floor=1e-3,
    )
    values = ax.images[0].get_array().filled(np.nan)
    expected = [
        [3.0, -2.0, -np.log10(0.5)],  # ACC: A has q = 0, floored at 1e-3
        [1.0, -np.log10(0.3), -3.0],  # UCS
    ]
    np.testing.assert_allclose(values, expected)
    label = ax.images[0].colorbar.ax.get_ylabel()
    assert "floored at 0.001" in label
    # Dots on cells with q < 0.25: ACC A, ACC B, UCS A, UCS C.
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(dots) == 1 and len(dots[0].get_offsets()) == 4


def test_nes_heatmap_untested_cell_is_blank():
    frame = _nes_cohorts().iloc[[0, 3, 4]]  # ACC: only A; UCS: A and B
    ax = nes_heatmap(frame, model="lmm", terms=["A", "B"])
    values = ax.images[0].get_array()
    assert values.mask.tolist() == [[False, True], [False, False]]


def test_nes_heatmap_empty_and_bad_arguments():
    ax = nes_heatmap(_nes_cohorts(), model="lmm_nopurity")
    assert _texts(ax)[0].startswith("no data")
    assert not ax.images
    with pytest.raises(ValueError, match="direction"):
        nes_heatmap(_nes_cohorts(), model="lmm", direction="up")
    with pytest.raises(ValueError, match="value"):
        nes_heatmap(_nes_cohorts(), model="lmm", value="q")


def _subsample_gsea() -> pd.DataFrame:
    rows = []
    nes = {("A", 20): [1.0, 2.0, 3.0], ("A", 40): [2.0, 2.0, 2.0], ("B", 20): [-1.0, -3.0, 0.0]}
    for (term, size), values in nes.items():
        for repeat, value in enumerate(values):
            rows.append((size, repeat, "lmm", term, value, 0.1, 0.2))
            rows.append((size, repeat, "slr", term, 5.0, 0.1, 0.2))
    return pd.DataFrame(rows, columns=["size", "repeat", "model", "term", "nes", "pvalue", "fdr"])


def test_subsample_nes_plot_mean_and_sd_per_size():
    ax = subsample_nes_plot(_subsample_gsea(), terms=["A", "B", "MISSING"], model="lmm")
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    line_a, line_b = (c.lines[0] for c in bars)
    np.testing.assert_allclose(line_a.get_xdata(), [20, 40])
    np.testing.assert_allclose(line_a.get_ydata(), [2.0, 2.0])
    np.testing.assert_allclose(line_b.get_ydata(), [-4.0 / 3.0])
    # Error bar of A at size 20: sd(1, 2, 3) = 1 -> segment from 1 to 3.
    segments = bars[0].lines[2][0].get_segments()
    np.testing.assert_allclose(segments[0][:, 1], [1.0, 3.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["A", "B"]


def test_subsample_nes_plot_empty():
    ax = subsample_nes_plot(_subsample_gsea(), terms=["A"], model="lmm_nopurity")
    assert _texts(ax)[0].startswith("no data")


def test_subsample_similarity_one_line_per_cohort():
    frame = pd.DataFrame(
        {
            "cohort": ["ACC"] * 4 + ["UCS"] * 2,
            "size": [20, 20, 40, 40, 20, 20],
            "repeat": [0, 1, 0, 1, 0, 1],
            "seed": [1, 2, 3, 4, 5, 6],
            "spearman": [0.5, 0.7, 0.8, 0.8, 0.2, 0.4],
        }
    )
    ax = subsample_similarity_plot(frame)
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    np.testing.assert_allclose(bars[0].lines[0].get_ydata(), [0.6, 0.8])
    np.testing.assert_allclose(bars[1].lines[0].get_ydata(), [0.3])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ACC", "UCS"]
    single = subsample_similarity_plot(frame.drop(columns="cohort").iloc[:2])
    assert single.get_legend() is None


def test_subsample_similarity_empty():
    ax = subsample_similarity_plot(pd.DataFrame(columns=["size", "repeat", "seed", "spearman"]))
    assert _texts(ax)[0].startswith("no data")


def test_purity_share_plot_bars_and_expected():
    summary = pd.DataFrame(
        {
            "cohort": ["ACC", "ACC", "UCS", "UCS"],
            "model": ["lmm", "slr", "lmm", "slr"],
            "top_n": 500,
            "share_purity_in_top": [0.1, 0.4, 0.05, 0.3],
            "share_expected": [0.08, 0.08, 0.04, 0.04],
        }
    )
    ax = purity_share_plot(summary)
    bars = _bars(ax)
    assert len(bars) == 4
    # slr first (preferred order): ACC, UCS; then lmm.
    assert [round(b.get_height(), 6) for b in bars] == [0.4, 0.3, 0.1, 0.05]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["slr", "lmm", "expected"]
    assert ax.get_ylabel() == "share of purity genes in top 500"
    empty = purity_share_plot(summary.iloc[:0])
    assert _texts(empty)[0].startswith("no data")
