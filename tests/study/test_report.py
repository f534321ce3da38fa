"""Study figures and HTML report on a tiny synthetic output folder (two cohorts)."""

from __future__ import annotations

import base64
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from exprlmm.io.tables import write_table
from exprlmm.study.report import figure_stem, write_figures, write_report

MODELS = ("slr", "lmm", "lmm_nopurity")
TERMS = ["CELL_CYCLE", "HISTONE", "IMMUNE", "STROMAL", "SET_E", "SET_F", "SET_G"]
HIGHLIGHT = ["CELL_CYCLE", "HISTONE", "IMMUNE", "STROMAL"]
NASTY = "lmm<script>&"  # a model name that must come out escaped


def _cohort_tables(rng: np.random.Generator, n_genes: int = 60) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    for model in MODELS:
        tables[f"gsea_{model}.tsv"] = pd.DataFrame(
            {
                "term": TERMS,
                "size": 15,
                "es": rng.uniform(-0.8, 0.8, len(TERMS)),
                "nes": rng.uniform(-2.5, 2.5, len(TERMS)),
                "pvalue": rng.uniform(0, 1, len(TERMS)),
                "fdr": np.r_[0.0, rng.uniform(0, 0.5, len(TERMS) - 1)],
            }
        )
    ranks = np.sort(rng.choice(np.arange(1, n_genes + 1), size=8, replace=False))
    tables["purity_positions.tsv"] = pd.DataFrame(
        {
            "model": np.repeat(MODELS, 8),
            "gene": [f"g{i}" for i in range(24)],
            "direction": np.tile(["positive"] * 5 + ["negative"] * 3, 3),
            "rank": np.tile(ranks, 3),
            "n_genes": n_genes,
        }
    )
    tables["purity_summary.tsv"] = pd.DataFrame(
        {
            "model": [*MODELS, NASTY],
            "n_genes": n_genes,
            "n_purity_genes": 8,
            "top_n": 10,
            "n_purity_in_top": [4, 1, 3, 0],
            "share_purity_in_top": [0.4, 0.1, 0.3, 0.0],
            "share_expected": 8 / n_genes,
            "rank_auc": [0.8, 0.55, 0.7, 0.5],
            "rank_pvalue": [1e-4, 0.4, 0.01, 1.0],
            "fdr": 0.05,
            "n_trait_assoc": [20, 5, 12, 0],
            "n_overlap": [6, 1, 4, 0],
        }
    )
    tables["purity_gsea.tsv"] = pd.DataFrame(
        {
            "model": np.repeat(MODELS, 2),
            "set": ["PURITY_POSITIVE", "PURITY_NEGATIVE"] * 3,
            "size": [5, 3] * 3,
            "es": rng.uniform(-0.8, 0.8, 6),
            "nes": rng.uniform(-2.5, 2.5, 6),
            "pvalue": rng.uniform(0, 1, 6),
            "fdr": rng.uniform(0, 0.5, 6),
        }
    )
    tables["set_overlap.tsv"] = pd.DataFrame(
        {
            "model": np.repeat(MODELS, 2),
            "direction": ["positive", "negative"] * 3,
            "n_purity_sets": 3,
            "n_trait_sets": 2,
            "n_overlap": 1,
            "jaccard": 0.25,
        }
    )
    sizes = np.repeat([20, 40], 3)
    tables["subsample_similarity.tsv"] = pd.DataFrame(
        {
            "size": sizes,
            "repeat": np.tile([0, 1, 2], 2),
            "seed": np.arange(6),
            "spearman": rng.uniform(0.3, 0.9, 6),
        }
    )
    rows = [
        (size, repeat, model, term, rng.normal(), 0.1, 0.2)
        for size in (20, 40)
        for repeat in range(3)
        for model in ("slr", "lmm")
        for term in ("PURITY_POSITIVE", "CELL_CYCLE")
    ]
    tables["subsample_gsea.tsv"] = pd.DataFrame(
        rows, columns=["size", "repeat", "model", "term", "nes", "pvalue", "fdr"]
    )
    return tables


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(7)
    stacked: dict[str, list[pd.DataFrame]] = {}
    for cohort in ("ACC", "UCS"):
        for name, table in _cohort_tables(rng).items():
            write_table(table, tmp_path / "cohorts" / cohort / name)
            stacked.setdefault(name, []).append(table.assign(cohort=cohort))
    for name in ("purity_summary.tsv", "subsample_similarity.tsv", "set_overlap.tsv"):
        frame = pd.concat(stacked[name], ignore_index=True)
        write_table(frame[["cohort", *frame.columns[:-1]]], tmp_path / "summary" / name)
    nes = pd.concat(
        [
            t.assign(model=name[5:-4])[["cohort", "model", "term", "nes", "fdr"]]
            for name, tables in stacked.items()
            if name.startswith("gsea_")
            for t in tables
        ],
        ignore_index=True,
    )
    write_table(nes, tmp_path / "summary" / "nes.tsv")
    return tmp_path


@pytest.fixture(scope="module")
def figures(study_dir):
    """The figures of the synthetic folder, drawn once for the module (drawing is the slow part)."""
    return write_figures(study_dir, highlight_terms=HIGHLIGHT, models=MODELS, dpi=60)


def test_write_figures_png_and_pdf_for_each_cohort_and_summary(study_dir, figures):
    paths = figures
    stems = {p.stem for p in paths}
    for cohort in ("ACC", "UCS"):
        for kind in ("purity_positions", "set_nes", "subsample_nes", "subsample_similarity"):
            assert f"cohort_{cohort}_{kind}" in stems
    for kind in ("purity_share", "subsample_similarity", *(f"nes_heatmap_{m}" for m in MODELS)):
        assert f"summary_{kind}" in stems
    assert len(paths) == 2 * len(stems)
    for path in paths:
        assert path.parent == study_dir / "figures"
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if path.suffix == ".png" else head.startswith(b"%PDF")
    assert not list((study_dir / "figures").glob(".*"))  # no temporary file left behind


def test_write_figures_skips_missing_tables(tmp_path):
    assert write_figures(tmp_path, highlight_terms=HIGHLIGHT, models=MODELS) == []
    table = _cohort_tables(np.random.default_rng(1))["purity_positions.tsv"]
    write_table(table, tmp_path / "cohorts" / "ACC" / "purity_positions.tsv")
    paths = write_figures(tmp_path, highlight_terms=HIGHLIGHT, models=MODELS)
    assert sorted(p.name for p in paths) == [
        "cohort_ACC_purity_positions.pdf",
        "cohort_ACC_purity_positions.png",
    ]


def test_write_report_self_contained_escaped_and_linked(study_dir, figures):
    paths = figures
    config = {"output": str(study_dir), "title": "a <b> & c", "gsea": {"permutations": 100}}
    report = write_report(
        study_dir, config=config, timings={"ACC/lmm": 1.5}, notes=["check <this>"]
    )
    assert report == study_dir / "report.html"
    page = report.read_text(encoding="utf-8")

    pngs = [p for p in paths if p.suffix == ".png"]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(pngs)
    first = (study_dir / "figures" / "cohort_ACC_purity_positions.png").read_bytes()
    assert base64.b64decode(images[0]) == first

    for cohort in ("ACC", "UCS"):
        assert f"<h2>Cohort {cohort}</h2>" in page
        for name in ("purity_summary.tsv", "gsea_lmm.tsv"):
            assert f'href="cohorts/{cohort}/{name}"' in page
    assert 'href="summary/nes.tsv"' in page
    assert 'href="figures/summary_purity_share.pdf"' in page

    # Escaped text from tables, config and notes; nothing raw.
    assert "lmm&lt;script&gt;&amp;" in page and "<script" not in page
    assert "a &lt;b&gt; &amp; c" in page and "a <b> & c" not in page
    assert "check &lt;this&gt;" in page
    assert "<td>1.5 s</td>" in page

    # Self-contained: no network resources, no external stylesheet or script.
    rest = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "http" not in rest
    assert "<link" not in rest and "<script" not in rest and "url(" not in rest


def test_write_report_without_figures_or_tables(tmp_path):
    page = write_report(tmp_path, config={}).read_text(encoding="utf-8")
    assert "<h1>exprlmm study</h1>" in page
    assert "data:image" not in page


def test_figure_stem_is_a_safe_unique_file_name():
    assert figure_stem("ACC", "set_nes") == "cohort_ACC_set_nes"
    assert figure_stem(None, "purity_share") == "summary_purity_share"
    odd = figure_stem("a b/c", "set_nes")
    assert re.fullmatch(r"cohort_a_b_c-[0-9a-f]{6}_set_nes", odd)
    others = {figure_stem(name, "set_nes") for name in ("a_b_c", "a b_c", "a/b c")}
    assert len(others | {odd}) == 4
