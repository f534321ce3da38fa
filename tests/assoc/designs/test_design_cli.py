"""``exprlmm design`` end to end: outputs, run record, one-line user errors with exit 2."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.cli import cli

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"


@pytest.fixture
def files(design_files):
    written = design_files(300)
    mouse = pd.read_csv(REF / "mouse.tsv", sep="\t")
    sim = pd.read_csv(REF / "mouse_sim.tsv", sep="\t", index_col=0)
    expr = sim.assign(**{"Gene.X": mouse.set_index("animal")["Gene.X"]}).T
    expr.index.name = "gene"
    expr_path = written["dir"] / "logexpr.tsv"
    expr.to_csv(expr_path, sep="\t")
    return {**written, "expr": expr_path}


def _run(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_counts_run_writes_table_and_record(files):
    out = files["dir"] / "out.tsv"
    res = _run(
        [
            "design",
            "--counts",
            str(files["counts"]),
            "--samples",
            str(files["sheet"]),
            "--formula",
            "~ weight + urea + (1|group)",
            "--plots",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    for kind in ("volcano", "qq"):
        assert Path(f"{out}.{kind}.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns[:8]) == ["gene", "term", "beta", "se", "df", "stat", "pvalue", "padj"]
    assert {"singular", "sigma2_residual", "sigma2_group"} <= set(table.columns)
    assert set(table.term) == {"weight", "urea"}
    assert table.gene.nunique() == len(table) // 2
    record = json.loads(Path(f"{out}.run.json").read_text())
    # defaults: consensus variance ratio (GLS, N − p = 7 df) + empirical Bayes (+ d0)
    d0 = record["fit"]["ebayes_prior"]["df_prior"]
    np.testing.assert_allclose(table.df, 7 + d0, rtol=1e-9)
    assert record["fit"]["consensus_ratios"]["group"] > 0
    assert record["command"] == "design"
    assert any(a["code"] == "few-levels" for a in record["advice"])
    assert len(record["counts"]["norm_factors"]) == 10
    assert "few-levels" in res.output


def test_expression_run_matches_api(files):
    out = files["dir"] / "out.tsv"
    res = _run(
        [
            "design",
            "--expression",
            str(files["expr"]),
            "--samples",
            str(files["sheet"]),
            "--formula",
            "~ weight + urea + (1|group)",
            "--test",
            "urea",
            "--variance",
            "gene",
            "--no-ebayes",
            "--style",
            "limma",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, sep="\t").set_index("gene")
    assert {"logFC", "t", "P.Value", "adj.P.Val"} <= set(table.columns)
    ref = pd.read_csv(REF / "golden_coef.tsv", sep="\t", skipinitialspace=True)
    r = ref.query("dataset == 'mouse' and model == 'weight+urea+(1|group)' and term == 'urea'")
    # 10 significant digits in the file
    np.testing.assert_allclose(table.loc["Gene.X", "P.Value"], r.p.iloc[0], rtol=1e-8)
    assert bool(table.loc["Gene.X", "singular"])


def _inputs(files, kind, formula):
    """``--counts``/``--expression`` FILE ``--samples`` FILE ``--formula`` FORMULA."""
    data = files["counts"] if kind == "counts" else files["expr"]
    return [f"--{kind}", str(data), "--samples", str(files["sheet"]), "--formula", formula]


def _expect_user_error(files, args, pattern):
    out = files["dir"] / "bad.tsv"
    res = _run(["design", *args, "-o", str(out)])
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and pattern in last, last
    assert not out.exists() and not Path(f"{out}.run.json").exists()
    assert not list(files["dir"].glob(".bad.tsv*"))


def test_users_model_exits_2_with_advice(files):
    args = _inputs(files, "counts", "~ (1|urea.score) + (1|weight.score)")
    _expect_user_error(files, args, "nothing to test")


def test_unknown_variable(files):
    args = _inputs(files, "expression", "~ weight + age + (1|group)")
    _expect_user_error(files, args, "age not in the sample sheet")


def test_one_level_grouping_factor(files):
    sheet = pd.read_csv(files["sheet"], sep="\t").assign(lab="L1")
    sheet.to_csv(files["sheet"], sep="\t", index=False)
    args = _inputs(files, "expression", "~ weight + (1|lab)")
    _expect_user_error(files, args, "has one level")


def test_negative_counts(files):
    raw = files["raw"].copy()
    raw.iloc[3, 2] = -5
    raw.to_csv(files["counts"], sep="\t")
    args = _inputs(files, "counts", "~ weight + urea")
    _expect_user_error(files, args, "negative count")


def test_non_numeric_counts(files):
    raw = files["raw"].astype(object)
    raw.iloc[3, 2] = "many"
    raw.to_csv(files["counts"], sep="\t")
    args = _inputs(files, "counts", "~ weight + urea")
    _expect_user_error(files, args, "non-numeric value 'many'")


def test_samples_missing_from_sheet(files):
    sheet = pd.read_csv(files["sheet"], sep="\t").iloc[1:]
    sheet.to_csv(files["sheet"], sep="\t", index=False)
    args = _inputs(files, "counts", "~ weight + urea")
    _expect_user_error(files, args, "not in the sample sheet (CR4.2)")


def test_check_only_prints_advice(files):
    res = _run(
        [
            "design",
            "--samples",
            str(files["sheet"]),
            "--formula",
            "~ (1|urea.score) + (1|weight.score)",
            "--check-only",
        ]
    )
    assert res.exit_code == 0
    assert "no-tested-term" in res.output and "numeric-grouping" in res.output


def test_kenward_roger_option(files):
    out = files["dir"] / "kr.tsv"
    base = ["design", "--expression", str(files["expr"]), "--samples", str(files["sheet"])]
    res = _run(
        [
            *base,
            "--formula",
            "~ weight + urea + (1|group)",
            "--ddf",
            "kenward-roger",
            "--variance",
            "gene",
            "--no-ebayes",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, sep="\t").set_index(["gene", "term"])
    ref = pd.read_csv(REF / "golden_coef.tsv", sep="\t", skipinitialspace=True)
    r = ref.query("dataset == 'mouse' and model == 'weight+urea+(1|group)' and term == 'weight'")
    np.testing.assert_allclose(table.loc[("Gene.X", "weight"), "df"], r.df_kr.iloc[0], rtol=1e-8)
    _expect_user_error(
        files,
        [*base[1:], "--formula", "~ weight + urea + (1|group)", "--ddf", "kenward-roger"],
        "--variance gene --no-ebayes",
    )
