"""``exprlmm study``: exit codes, one-line errors, --cohort without a TOML file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.cli import cli
from exprlmm.datasets import toy


def _cohort(tmp_path: Path) -> str:
    expression, samples = toy(seed=1, n_samples=40, n_genes=80)
    expression.to_csv(tmp_path / "e.tsv", sep="\t")
    samples.to_csv(tmp_path / "s.tsv", sep="\t")
    genes = list(expression.columns)
    (tmp_path / "sets.gmt").write_text(
        "A\tx\t" + "\t".join(genes[:20]) + "\nB\tx\t" + "\t".join(genes[30:50]) + "\n"
    )
    return f"TOY:expression={tmp_path / 'e.tsv'},samples={tmp_path / 's.tsv'}"


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "study.toml"
    config.write_text(
        f'trait = "trait"\nmodels = ["slr", "lmm"]\n[gsea]\ngene_sets = ["{tmp_path / "sets.gmt"}"]\n'
        'highlight = ["A"]\n'
    )
    return config


def _quick_study(tmp_path: Path, *extra: str):
    """``exprlmm study`` of the toy cohort, 50 permutations, no report."""
    args = [
        "study",
        str(_config(tmp_path)),
        "--cohort",
        _cohort(tmp_path),
        "-o",
        str(tmp_path / "out"),
        "--permutations",
        "50",
        "--quiet",
        "--no-report",
        *extra,
    ]
    return CliRunner().invoke(cli, args)


def test_cohort_option_runs_the_study(tmp_path):
    result = _quick_study(tmp_path)
    assert result.exit_code == 0, result.output
    assert "steps run" in result.output
    summary = pd.read_csv(tmp_path / "out" / "cohorts" / "TOY" / "purity_summary.tsv", sep="\t")
    assert summary["model"].tolist() == ["slr", "lmm"]
    resolved = (tmp_path / "out" / "study.resolved.toml").read_text()
    assert "permutations = 50" in resolved


def test_user_errors_exit_2_with_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["study"])
    assert result.exit_code == 2
    assert "give a study TOML file or at least one --cohort" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cohorts]]\nname = "X"\nexpression = "missing.tsv"\nsamples = "s.tsv"\n')
    result = runner.invoke(cli, ["study", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "cohort 'X' key 'expression' = 'missing.tsv': file not found" in lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--worker-threads"], "--worker-threads applies to a local cluster: add --workers N"),
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (
            ["--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1"],
            "--scheduler tcp://127.0.0.1:9: no dask scheduler answered within 1 s",
        ),
    ],
)
def test_cluster_option_errors_exit_2_before_any_step(tmp_path, extra, message):
    pytest.importorskip("distributed")
    cohort = _cohort(tmp_path)
    out = tmp_path / "out"
    args = ["study", str(_config(tmp_path)), "--cohort", cohort, "-o", str(out), "--quiet"]
    result = CliRunner().invoke(cli, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (out / "cohorts").exists()


def test_worker_threads_run_the_study(tmp_path):
    pytest.importorskip("distributed")
    result = _quick_study(tmp_path, "--workers", "2", "--worker-threads")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "study.run.json").read_text())
    assert record["cluster"]["n_workers"] == 2
