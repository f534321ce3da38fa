"""`exprlmm assoc` end to end: files in, table + run record out, user errors exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from exprlmm.assoc import lmm_scan, slr_scan
from exprlmm.cli import cli
from exprlmm.kinship import eigensystem_from_expression

COLUMNS = ["model", "gene", "beta", "se", "stat", "df", "pvalue", "padj", "h2", "delta"]


@pytest.fixture
def cohort_files(tmp_path):
    rng = np.random.default_rng(7)
    n, g = 36, 40
    latent = rng.normal(size=(n, 2))
    expr = latent @ rng.normal(size=(2, g)) + rng.normal(size=(n, g))
    ids = [f"S{i:02d}" for i in range(n)]
    genes = [f"G{k}" for k in range(g)]
    frame = pd.DataFrame(expr.T, index=pd.Index(genes, name="gene"), columns=ids)
    frame.to_csv(tmp_path / "expr.tsv", sep="\t", float_format="%.17g")
    sheet = pd.DataFrame(
        {
            "sample": ids,
            "trait": latent[:, 0] + rng.normal(size=n),
            "purity": rng.uniform(0.3, 0.9, n),
            "batch": rng.choice(["a", "b", "c"], n),
            "word": ["x"] * n,
        }
    )
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False, float_format="%.17g")
    return tmp_path, frame.T, sheet


def _assoc(path, *extra):
    """Run `exprlmm assoc` on the fixture files with extra options; return (result, output)."""
    out = path / "res.tsv"
    args = ["assoc", "-e", str(path / "expr.tsv"), "-s", str(path / "samples.tsv"), *extra]
    return CliRunner().invoke(cli, [*args, "-o", str(out)]), out


def _neglog10(p):
    return -np.log10(np.asarray(p, dtype=float))


def test_both_models_one_table_matches_the_api(cohort_files):
    path, expr, sheet = cohort_files
    result, out = _assoc(path, "-t", "trait", "-c", "purity")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS
    cov = sheet[["purity"]].to_numpy()
    slr = slr_scan(expr, sheet.trait, covariates=cov)
    lmm = lmm_scan(expr, sheet.trait, covariates=cov)
    got_slr = table[table.model == "slr"].reset_index(drop=True)
    got_lmm = table[table.model == "lmm"].reset_index(drop=True)
    assert np.allclose(got_slr.pvalue, slr.pvalue, rtol=1e-8)
    # null δ is only defined to ~1e-7 (flat REML optimum): compare −log10 p at 1e-6
    assert np.allclose(_neglog10(got_lmm.pvalue), _neglog10(lmm.pvalue), atol=1e-6)
    assert np.allclose(got_lmm.h2, lmm.h2, rtol=1e-6)
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["settings"]["delta"] == "null"
    assert len(record["inputs"]["expression"]["sha256"]) == 64
    assert record["design"]["fixed_effects"] == ["intercept", "purity", "gene"]
    assert record["null_model"]["h2"] == pytest.approx(lmm.h2[0], rel=1e-6)


def test_categorical_covariate_becomes_dummies(cohort_files):
    path, expr, sheet = cohort_files
    result, out = _assoc(path, "-t", "trait", "-c", "batch", "--model", "slr")
    assert result.exit_code == 0, result.output
    dummies = pd.get_dummies(sheet.batch, drop_first=True).to_numpy(dtype=float)
    expected = slr_scan(expr, sheet.trait, covariates=dummies)
    table = pd.read_csv(out, sep="\t")
    assert np.allclose(table.pvalue, expected.pvalue, rtol=1e-8)
    assert "model" not in table


def test_kinship_exclude_changes_k(cohort_files):
    path, expr, sheet = cohort_files
    (path / "drop.txt").write_text("gene\nG0\nG1\nG2\n")
    result, out = _assoc(
        path, "-t", "trait", "--model", "lmm", "--kinship-exclude", str(path / "drop.txt")
    )
    assert result.exit_code == 0, result.output
    mask = ~expr.columns.isin(["G0", "G1", "G2"])
    expected = lmm_scan(
        expr, sheet.trait, eigensystem=eigensystem_from_expression(expr.to_numpy()[:, mask])
    )
    table = pd.read_csv(out, sep="\t")
    assert np.allclose(_neglog10(table.pvalue), _neglog10(expected.pvalue), atol=1e-6)
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["kinship"]["n_kinship_genes"] == 37


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-t", "nonexistent"], "nonexistent"),
        (["-t", "word"], "word"),
        (["-t", "trait", "-c", "purity,purity2"], "purity2"),
        (["-t", "trait", "--delta", "-3"], "positive"),
        (["-t", "trait", "--delta", "often"], "null"),
        (["-t", "trait", "--kinship-genes", "MISSING_FILE"], "MISSING_FILE"),
    ],
)
def test_user_errors_exit_2_without_output(cohort_files, extra, message):
    path, _, _ = cohort_files
    result, out = _assoc(path, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    assert not list(path.glob(".res.tsv*"))


def test_collinear_covariates_are_a_user_error(cohort_files):
    path, _, sheet = cohort_files
    sheet.assign(purity2=2 * sheet.purity).to_csv(path / "samples.tsv", sep="\t", index=False)
    result, out = _assoc(path, "-t", "trait", "-c", "purity,purity2")
    assert result.exit_code == 2
    assert "collinear" in result.output
    assert not out.exists()


def test_no_overlapping_samples_is_a_user_error(cohort_files):
    path, _, sheet = cohort_files
    renamed = sheet.assign(sample=[f"X{i}" for i in range(len(sheet))])
    renamed.to_csv(path / "samples.tsv", sep="\t", index=False)
    result, out = _assoc(path, "-t", "trait")
    assert result.exit_code == 2
    assert "samples.tsv" in result.output or "expr.tsv" in result.output
    assert not out.exists()


def test_missing_gpu_backend_is_a_clear_user_error(cohort_files, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    path, _, _ = cohort_files
    result, out = _assoc(path, "-t", "trait", "--backend", "torch")
    assert result.exit_code == 2
    assert "exprlmm[gpu]" in result.output
    assert not out.exists()


def test_python_m_entry_point_shows_help():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "exprlmm", "assoc", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--kinship-exclude" in done.stdout


@pytest.fixture
def thread_cluster(monkeypatch):
    """`--workers N` on threads (fast, and monkeypatches reach the workers)."""
    pytest.importorskip("distributed")
    from exprlmm.assoc import distributed as dist

    real = dist.open_client

    def threads(**kwargs):
        return real(**{**kwargs, "processes": False})

    monkeypatch.setattr(dist, "open_client", threads)
    return dist


def test_workers_give_the_single_process_table(cohort_files, thread_cluster):
    path, _, _ = cohort_files
    single, out = _assoc(path, "-t", "trait", "-c", "purity,batch", "--delta", "refit")
    assert single.exit_code == 0, single.output
    expected = pd.read_csv(out, sep="\t")
    out.unlink()
    result, out = _assoc(
        path, "-t", "trait", "-c", "purity,batch", "--delta", "refit", "--workers", "2",
        "--chunk-size", "7",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == COLUMNS
    assert (table.gene == expected.gene).all() and (table.model == expected.model).all()
    assert np.allclose(_neglog10(table.pvalue), _neglog10(expected.pvalue), atol=1e-8)
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["distributed"]["n_chunks"] == 6
    assert not list(path.glob(".res.tsv.chunks*"))


def test_worker_threads_give_the_single_process_table(cohort_files):
    pytest.importorskip("distributed")
    path, _, _ = cohort_files
    single, out = _assoc(path, "-t", "trait", "--model", "lmm")
    assert single.exit_code == 0, single.output
    expected = pd.read_csv(out, sep="\t")
    out.unlink()
    args = ("-t", "trait", "--model", "lmm", "--workers", "2", "--worker-threads")
    result, out = _assoc(path, *args, "--chunk-size", "9")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert np.allclose(_neglog10(table.pvalue), _neglog10(expected.pvalue), atol=1e-8)
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["distributed"]["scheduler"] == "LocalCluster(2 threads)"
    out.unlink()
    result, _ = _assoc(path, "-t", "trait", "--worker-threads")
    assert result.exit_code == 2
    assert "--worker-threads applies to a local cluster: add --workers N" in result.output


def test_a_failed_distributed_run_leaves_no_table_and_resumes(
    cohort_files, thread_cluster, monkeypatch
):
    path, _, _ = cohort_files
    real = thread_cluster._chunk_task

    def failing(plans, block, in_kinship):
        if block.shape[1] < 7:  # the last chunk (genes 35-39)
            raise RuntimeError("worker lost")
        return real(plans, block, in_kinship)

    monkeypatch.setattr(thread_cluster, "_chunk_task", failing)
    args = ("-t", "trait", "--model", "lmm", "--workers", "2", "--chunk-size", "7")
    result, out = _assoc(path, *args)
    assert result.exit_code != 0
    assert not out.exists() and not (path / "res.tsv.run.json").exists()
    folder = path / ".res.tsv.chunks"
    finished = sorted(folder.glob("chunk-*.npz"))
    assert 0 < len(finished) < 6 and (folder / "manifest.json").exists()
    monkeypatch.setattr(thread_cluster, "_chunk_task", real)
    result, out = _assoc(path, *args)
    assert result.exit_code == 0, result.output
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["distributed"]["reused"] == len(finished)
    assert not folder.exists()


def test_unreachable_scheduler_exits_2(cohort_files):
    pytest.importorskip("distributed")
    path, _, _ = cohort_files
    result, out = _assoc(
        path, "-t", "trait", "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "1"
    )
    assert result.exit_code == 2, result.output
    assert "no dask scheduler answered within 1 s" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_float32_and_kinship_rank_options(cohort_files):
    path, expr, sheet = cohort_files
    result, out = _assoc(path, "-t", "trait", "--model", "lmm", "--precision", "float32")
    assert result.exit_code == 0, result.output
    exact = lmm_scan(expr, sheet.trait)
    table = pd.read_csv(out, sep="\t")
    assert np.allclose(_neglog10(table.pvalue), _neglog10(exact.pvalue), atol=1e-3)
    # full rank (min(N, G) = 36): the randomized SVD is exact
    result, out = _assoc(path, "-t", "trait", "--model", "lmm", "--kinship-rank", "36")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert np.allclose(_neglog10(table.pvalue), _neglog10(exact.pvalue), atol=1e-6)
    assert json.loads((path / "res.tsv.run.json").read_text())["seed"] == 0
    result, out = _assoc(path, "-t", "trait", "--kinship-rank", "99")
    assert result.exit_code == 2 and "at most" in result.output


def test_several_traits_one_table_each_equal_to_its_own_run(cohort_files, monkeypatch):
    from exprlmm import pipeline

    path, _, _ = cohort_files
    calls = []
    real = pipeline.kinship_eigensystem

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "kinship_eigensystem", counting)
    result, out = _assoc(path, "-t", "trait", "-t", "purity")
    assert result.exit_code == 0, result.output
    assert len(calls) == 1  # one K for both traits
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["trait", *COLUMNS]
    assert table["trait"].drop_duplicates().tolist() == ["trait", "purity"]
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["traits"] == ["trait", "purity"]
    assert set(record["null_models"]) == {"trait", "purity"}
    assert "purity: LMM:" in result.output
    for trait in ("trait", "purity"):
        single, single_out = _assoc(path, "-t", trait)
        assert single.exit_code == 0, single.output
        alone = pd.read_csv(single_out, sep="\t")
        part = table[table["trait"] == trait].drop(columns="trait").reset_index(drop=True)
        # the LMM of several traits rotates each gene block once instead of whitening per
        # trait: equal to rounding
        pd.testing.assert_frame_equal(part, alone, check_exact=False, rtol=1e-9, atol=0)
        if trait == "purity":
            assert (
                record["null_models"]["purity"]
                == json.loads((path / "res.tsv.run.json").read_text())["null_model"]
            )


def test_several_traits_use_the_samples_that_have_all_of_them(cohort_files):
    path, _, sheet = cohort_files
    sheet.loc[3, "purity"] = np.nan
    sheet.to_csv(path / "samples.tsv", sep="\t", index=False, float_format="%.17g")
    result, out = _assoc(path, "-t", "trait", "-t", "purity", "--model", "slr")
    assert result.exit_code == 0, result.output
    record = json.loads((path / "res.tsv.run.json").read_text())
    assert record["design"]["n_samples"] == len(sheet) - 1
    assert list(pd.read_csv(out, sep="\t").columns) == ["trait", *COLUMNS[1:8]]


def test_the_same_trait_twice_is_a_user_error(cohort_files):
    path, _, _ = cohort_files
    result, out = _assoc(path, "-t", "trait", "-t", "trait")
    assert result.exit_code == 2
    assert "the same trait is given twice" in result.output
    assert not out.exists()


def test_several_traits_on_a_cluster_match_one_process(cohort_files):
    pytest.importorskip("distributed")
    path, _, _ = cohort_files
    local, out = _assoc(path, "-t", "trait", "-t", "purity")
    assert local.exit_code == 0, local.output
    expected = pd.read_csv(out, sep="\t")
    cluster, out = _assoc(
        path,
        "-t",
        "trait",
        "-t",
        "purity",
        "--workers",
        "2",
        "--worker-threads",
        "--chunk-size",
        "7",
    )
    assert cluster.exit_code == 0, cluster.output
    got = pd.read_csv(out, sep="\t")
    assert got[["trait", "model", "gene"]].equals(expected[["trait", "model", "gene"]])
    assert np.max(np.abs(_neglog10(got.pvalue) - _neglog10(expected.pvalue))) <= 1e-8
    assert not list(path.glob(".res.tsv.chunks"))  # the chunk folders are gone once written
