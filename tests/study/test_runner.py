"""The study runner: documented outputs, resume after interruption, content-hash skipping."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.errors import UserInputError
from exprlmm.pipeline import AssocSettings, run_assoc
from exprlmm.study import run_study, study_config_from_dict
from exprlmm.study import runner as runner_module

DOCS = Path(__file__).resolve().parents[2] / "docs" / "study.md"


def _documented_columns() -> dict[str, list[str]]:
    """``file.tsv: `col col ...``` entries of docs/study.md."""
    text = DOCS.read_text(encoding="utf-8")
    out = {}
    pattern = r"^`([a-z_<>/]+\.tsv)`: `([a-z_0-9 \n.]+)`"
    for name, cols in re.findall(pattern, text, flags=re.M):
        out[name.removeprefix("summary/")] = [c for c in cols.split() if c != "..."]
    return out


def _tables(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*.tsv"))
        if ".steps" not in p.parts
    }


def _run(study_dict, tmp_path, output="out", report=False):
    data = copy.deepcopy(study_dict)
    data["output"] = output
    return run_study(study_config_from_dict(data, base=tmp_path), progress=False, report=report)


def test_outputs_are_those_documented(study_dict, tmp_path):
    result = _run(study_dict, tmp_path, report=True)
    out = result.output
    folder = out / "cohorts" / "TOY"
    documented = _documented_columns()
    assert len(documented) >= 9
    for name, columns in documented.items():
        if name.startswith("assoc_"):
            for model in ("slr", "lmm", "lmm_nopurity"):
                table = pd.read_csv(folder / f"assoc_{model}.tsv", sep="\t")
                assert list(table.columns)[: len(columns) - (model == "slr") * 2] == (
                    columns if model != "slr" else columns[:-2]
                )
            continue
        if name.startswith("gsea_"):
            table = pd.read_csv(folder / "gsea_lmm.tsv", sep="\t")
            assert set(columns) <= set(table.columns), name
            continue
        path = out / "summary" / "nes.tsv" if name == "nes.tsv" else folder / name
        table = pd.read_csv(path, sep="\t")
        assert list(table.columns) == columns, name
    for name in ("study.resolved.toml", "study.log", "report.html", "study.run.json"):
        assert (out / name).exists()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "TOY: " in html and "purity-associated" in html and "Rank AUC" in html
    summary = pd.read_csv(folder / "purity_summary.tsv", sep="\t")
    assert summary["model"].tolist() == ["slr", "lmm", "lmm_nopurity"]
    purity = pd.read_csv(folder / "purity_genes.tsv", sep="\t")
    # toy(): a quarter of the genes load on purity; most of them are found at N = 60
    assert 20 < purity["purity_associated"].sum() <= 60
    sims = pd.read_csv(folder / "subsample_similarity.tsv", sep="\t")
    assert sims[["size", "repeat"]].value_counts().shape[0] == 4
    assert sims["spearman"].between(-1, 1).all()
    sub = pd.read_csv(folder / "subsample_gsea.tsv", sep="\t")
    assert {"SET_0", "PURITY_POSITIVE", "PURITY_NEGATIVE"} <= set(sub["term"])
    assert list(result.steps_skipped) == []


def test_subsets_are_reproducible_from_the_written_seed(study_dict, tmp_path):
    result = _run(study_dict, tmp_path)
    sims = pd.read_csv(result.output / "cohorts/TOY/subsample_similarity.tsv", sep="\t")
    seeds = sims["seed"].tolist()
    assert len(set(seeds)) == len(seeds)
    expected = runner_module.derived_seed(5, "TOY", "subsample", 20, 0)
    assert seeds[0] == expected


def test_rerun_skips_everything_and_changes_nothing(study_dict, tmp_path):
    first = _run(study_dict, tmp_path)
    before = _tables(first.output)
    again = _run(study_dict, tmp_path)
    assert again.steps_run == ()
    assert len(again.steps_skipped) == len(first.steps_run)
    assert _tables(again.output) == before


def test_changed_gsea_setting_reruns_only_gsea_and_dependents(study_dict, tmp_path):
    _run(study_dict, tmp_path)
    changed = copy.deepcopy(study_dict)
    changed["gsea"]["permutations"] = 120
    result = _run(changed, tmp_path)
    ran = {s.split("/")[1] for s in result.steps_run}
    assert ran == {
        "gsea_slr",
        "gsea_lmm",
        "gsea_lmm_nopurity",
        "gsea_purity",
        "summary",
        "subsample_20",
        "subsample_30",
    }


def test_interrupted_run_resumes_to_identical_results(study_dict, tmp_path, monkeypatch):
    reference = _run(study_dict, tmp_path, output="uninterrupted")
    calls = {"n": 0}
    original = runner_module._gsea_table

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as if killed in the middle of the GSEA steps
        return original(*args, **kwargs)

    monkeypatch.setattr(runner_module, "_gsea_table", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run(study_dict, tmp_path, output="resumed")
    partial = tmp_path / "resumed" / "cohorts" / "TOY"
    assert not (partial / "summary.tsv").exists()
    assert not list(partial.rglob("*.tmp"))  # nothing half-written
    monkeypatch.setattr(runner_module, "_gsea_table", original)
    resumed = _run(study_dict, tmp_path, output="resumed")
    assert resumed.steps_skipped  # the finished steps were not redone
    assert _tables(resumed.output) == _tables(reference.output)


def test_lmm_without_purity_genes_equals_assoc_with_kinship_exclude(study_dict, tmp_path):
    result = _run(study_dict, tmp_path)
    folder = result.output / "cohorts" / "TOY"
    purity = pd.read_csv(folder / "purity_genes.tsv", sep="\t")
    excluded = tmp_path / "purity_genes.txt"
    excluded.write_text("\n".join(purity.loc[purity["purity_associated"], "gene"]) + "\n")
    data = tmp_path / "data"
    ref = run_assoc(
        AssocSettings(
            expression=str(data / "expression.tsv"),
            samples=str(data / "samples.tsv"),
            trait="trait",
            model="lmm",
            kinship_exclude=str(excluded),
        )
    ).table
    ours = pd.read_csv(folder / "assoc_lmm_nopurity.tsv", sep="\t")
    assert ours["gene"].tolist() == ref["gene"].tolist()
    np.testing.assert_allclose(
        -np.log10(ours["pvalue"]), -np.log10(ref["pvalue"]), rtol=1e-8, atol=1e-8
    )
    full = pd.read_csv(folder / "assoc_lmm.tsv", sep="\t")
    assert not np.allclose(full["pvalue"], ours["pvalue"])


def test_seg_trait_is_icna_of_the_segments(tmp_path, gmt_writer):
    from exprlmm.datasets import toy

    expression, samples = toy(seed=2, n_samples=30, n_genes=60)
    gmt_writer(tmp_path / "sets.gmt", list(expression.columns), n_sets=2)
    rng = np.random.default_rng(0)
    rows = []
    for s in samples.index:
        for chrom in ("1", "2"):
            rows.append((s, chrom, 1, 1000, 10, round(float(rng.normal(0, 0.5)), 3)))
    seg = pd.DataFrame(
        rows, columns=["ID", "chrom", "loc.start", "loc.end", "num.mark", "seg.mean"]
    )
    seg.to_csv(tmp_path / "toy.seg", sep="\t", index=False)
    expression.to_csv(tmp_path / "expression.tsv", sep="\t")
    samples.drop(columns="trait").to_csv(tmp_path / "samples.tsv", sep="\t")
    data = {
        "output": "out",
        "models": ["slr", "lmm"],
        "gsea": {"gene_sets": ["sets.gmt"], "highlight": [], "permutations": 20},
        "subsample": {"terms": []},
        "cohorts": [
            {
                "name": "T",
                "expression": "expression.tsv",
                "samples": "samples.tsv",
                "seg": "toy.seg",
            }
        ],
    }
    run_study(study_config_from_dict(data, base=tmp_path), progress=False, report=False)
    trait = pd.read_csv(tmp_path / "out" / "cohorts" / "T" / "trait.tsv", sep="\t")
    expected = seg.assign(c=(seg["loc.end"] - seg["loc.start"] + 1) * seg["seg.mean"].abs())
    expected = expected.groupby("ID", sort=False)["c"].sum()
    np.testing.assert_allclose(trait.set_index("sample")["icna"], expected.loc[trait["sample"]])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["cohorts"][0].update(purity_column="cpe"),
            "cohort 'TOY': purity column 'cpe' (key 'purity_column') is not in",
        ),
        (lambda d: d["subsample"].update(sizes=[20, 61]), "sizes has 61 but the cohort has 60"),
        (lambda d: d["gsea"].update(highlight=["NOPE"]), "gene set 'NOPE'"),
        (lambda d: d.update(trait="weight"), "cohort 'TOY'"),
        (
            lambda d: d.update(
                gsea={"gene_sets": ["estimate"], "highlight": []}, subsample={"terms": []}
            ),
            "cohort 'TOY': no gene of the [gsea] gene_sets is in",
        ),
    ],
)
def test_data_errors_come_before_heavy_work(study_dict, tmp_path, edit, message):
    data = copy.deepcopy(study_dict)
    edit(data)
    with pytest.raises(UserInputError) as err:
        run_study(study_config_from_dict(data, base=tmp_path), progress=False, report=False)
    assert message in str(err.value)
    assert not (tmp_path / "out" / "cohorts" / "TOY" / "purity_genes.tsv").exists()


def test_too_few_samples_names_the_cohort(study_dict, tmp_path):
    sheet = pd.read_csv(tmp_path / "data" / "samples.tsv", sep="\t")
    sheet.iloc[:8].to_csv(tmp_path / "data" / "few.tsv", sep="\t", index=False)
    data = copy.deepcopy(study_dict)
    data["cohorts"][0]["samples"] = "data/few.tsv"
    data["subsample"]["sizes"] = []
    with pytest.raises(UserInputError, match=r"cohort 'TOY': only 8 samples"):
        run_study(study_config_from_dict(data, base=tmp_path), progress=False, report=False)


@pytest.mark.parametrize(("cache_bytes", "loads"), [(1 << 30, 2), (0, 4)])
def test_two_cohorts_stack_into_the_summary(study_dict, tmp_path, monkeypatch, cache_bytes, loads):
    from exprlmm.datasets import toy

    # each cohort is read once when both fit the cache; with no cache only the most recent
    # one stays, so each is read twice: to check it before any step, then for its steps
    monkeypatch.setattr(runner_module, "COHORT_CACHE_BYTES", cache_bytes)
    calls: list[str] = []
    real_load = runner_module.load_assoc_data

    def counting_load(settings, **kwargs):
        calls.append(settings.expression)
        return real_load(settings, **kwargs)

    monkeypatch.setattr(runner_module, "load_assoc_data", counting_load)

    expression, samples = toy(seed=1, n_samples=50, n_genes=200)
    expression.to_csv(tmp_path / "data" / "expression2.tsv", sep="\t")
    samples.to_csv(tmp_path / "data" / "samples2.tsv", sep="\t")
    data = copy.deepcopy(study_dict)
    data["cohorts"].append(
        {
            "name": "TOY2",
            "expression": "data/expression2.tsv",
            "samples": "data/samples2.tsv",
            "purity_column": "purity",
        }
    )
    data["subsample"]["cohorts"] = ["TOY2"]
    result = run_study(study_config_from_dict(data, base=tmp_path), progress=False, report=False)
    summary = result.output / "summary"
    purity = pd.read_csv(summary / "purity_summary.tsv", sep="\t")
    assert purity.groupby("cohort").size().to_dict() == {"TOY": 3, "TOY2": 3}
    nes = pd.read_csv(summary / "nes.tsv", sep="\t")
    assert set(nes["model"]) == {"slr", "lmm", "lmm_nopurity", "purity"}
    assert set(nes["cohort"]) == {"TOY", "TOY2"}
    sims = pd.read_csv(summary / "subsample_similarity.tsv", sep="\t")
    assert set(sims["cohort"]) == {"TOY2"}
    assert not (result.output / "cohorts" / "TOY" / "subsample_similarity.tsv").exists()
    assert len(calls) == loads


def test_cluster_run_gives_the_single_process_tables(study_dict, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from exprlmm.assoc import distributed
    from exprlmm.assoc.distributed import open_client

    tasks: list[str] = []
    real_map_tasks = distributed.map_tasks

    def spy(fn, items, client, **kwargs):
        items = list(items)
        tasks.extend([fn.__name__] * len(items))
        return real_map_tasks(fn, items, client, **kwargs)

    monkeypatch.setattr(distributed, "map_tasks", spy)
    single = _run(study_dict, tmp_path, output="single").output
    assert tasks == []
    data = copy.deepcopy(study_dict)
    data["output"] = "cluster"
    with open_client(workers=2, processes=False) as client:
        cluster = run_study(
            study_config_from_dict(data, base=tmp_path), progress=False, report=False, client=client
        ).output
        # 4 rankings (3 models + purity) and 2 sizes × 2 repeats, each a task
        assert sorted(tasks) == ["_ranking_gsea"] * 4 + ["_subsample_replicate"] * 4
        # a rerun on the cluster finds every step up to date and submits nothing
        again = run_study(
            study_config_from_dict(data, base=tmp_path), progress=False, report=False, client=client
        )
    assert again.steps_run == ()
    assert len(tasks) == 8
    a, b = _tables(single), _tables(cluster)
    assert a.keys() == b.keys()
    # GSEA ran as tasks on the cluster: the same bytes given the same rankings
    assert (
        a[str(Path("cohorts") / "TOY" / "gsea_purity.tsv")]
        == b[str(Path("cohorts") / "TOY" / "gsea_purity.tsv")]
    )
    folder = Path("cohorts") / "TOY"
    # subsets run as tasks through the same function: the same bytes
    for name in ("subsample_similarity.tsv", "subsample_gsea.tsv"):
        assert a[str(folder / name)] == b[str(folder / name)], name
    # the scans ran in gene chunks on the cluster: equal to 1e-8 in −log10 p
    for model in ("slr", "lmm", "lmm_nopurity"):
        x = pd.read_csv(single / folder / f"assoc_{model}.tsv", sep="\t")
        y = pd.read_csv(cluster / folder / f"assoc_{model}.tsv", sep="\t")
        assert x["gene"].tolist() == y["gene"].tolist()
        np.testing.assert_allclose(
            -np.log10(y["pvalue"]), -np.log10(x["pvalue"]), rtol=0, atol=1e-8, err_msg=model
        )
    record = json.loads((cluster / "study.run.json").read_text())
    assert record["cluster"]["n_workers"] == 2
    assert json.loads((single / "study.run.json").read_text())["cluster"] is None


def test_cluster_with_a_gpu_backend_is_refused(study_dict, tmp_path):
    pytest.importorskip("distributed")
    from exprlmm.assoc.distributed import open_client

    data = copy.deepcopy(study_dict)
    data["cohorts"][0]["assoc"] = {"backend": "torch"}
    with (
        open_client(workers=1, processes=False) as client,
        pytest.raises(UserInputError, match="cohort 'TOY': backend 'torch' with --workers"),
    ):
        run_study(study_config_from_dict(data, base=tmp_path), progress=False, client=client)
