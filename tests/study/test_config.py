"""Study configuration: defaults, overrides, and one-line errors naming cohort and key."""

from __future__ import annotations

import copy
import sys

import pytest

from exprlmm.errors import UserInputError
from exprlmm.study.config import (
    load_study_config,
    parse_cohort_option,
    study_config_from_dict,
    to_toml,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_defaults_and_paths_relative_to_the_file(study_dict, tmp_path):
    cfg = study_config_from_dict(study_dict, base=tmp_path)
    c = cfg.cohorts[0]
    assert c.expression == str(tmp_path / "data" / "expression.tsv")
    assert cfg.output == str(tmp_path / "out")
    assert cfg.models == ("slr", "lmm", "lmm_nopurity")
    assert cfg.gsea.gsea_settings().permutations == 100
    assert cfg.gsea.gsea_settings().seed == 11
    assert cfg.gsea.remove_genes is None
    assert cfg.subsample.sizes == (20, 30)


def test_cohort_overrides_study_tables(study_dict, tmp_path):
    study_dict["assoc"] = {"delta": "refit", "log2p1": False}
    study_dict["cohorts"][0]["assoc"] = {"delta": "null"}
    cfg = study_config_from_dict(study_dict, base=tmp_path)
    assert cfg.assoc_options(cfg.cohorts[0]) == {"delta": "null", "log2p1": False}


def test_resolved_toml_round_trips(study_dict, tmp_path):
    study_dict["assoc"] = {"covariates": ["age"], "delta": 0.5}
    cfg = study_config_from_dict(study_dict, base=tmp_path)
    text = to_toml(cfg)
    (tmp_path / "resolved.toml").write_text(text, encoding="utf-8")
    again = load_study_config(tmp_path / "resolved.toml")
    assert again == cfg
    assert tomllib.loads(text)["cohorts"][0]["name"] == "TOY"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(colour="red"), "unknown key 'colour' in the top level"),
        (lambda d: d["cohorts"][0].update(expresion="x"), "unknown key 'expresion' in cohorts[0]"),
        (lambda d: d["cohorts"][0].pop("samples"), "cohort 'TOY' has no 'samples' file"),
        (
            lambda d: d["cohorts"][0].update(expression="nope.tsv"),
            "cohort 'TOY' key 'expression' = 'nope.tsv': file not found",
        ),
        (
            lambda d: d["cohorts"][0].update(seg="data/samples.tsv", scores="data/samples.tsv"),
            "sets both 'seg' and 'scores'",
        ),
        (
            lambda d: d["cohorts"][0].update(seg="data/samples.tsv"),
            "gives 'seg' but the trait is 'trait'",
        ),
        (lambda d: d["cohorts"].append(dict(d["cohorts"][0])), "cohort name 'TOY' is used twice"),
        (lambda d: d["cohorts"][0].update(name="bad name"), "needs a name of letters"),
        (lambda d: d.update(models=["slr", "gwas"]), "'models' has 'gwas'"),
        (lambda d: d["purity"].update(alpha=2), "[purity] alpha must be positive and at most 1"),
        (lambda d: d["gsea"].update(permutations=0), "[gsea]: permutations must be at least 1"),
        (lambda d: d["gsea"].update(gene_sets=["missing.gmt"]), "missing.gmt"),
        (lambda d: d["subsample"].update(sizes=[3]), "sizes must be at least 5"),
        (lambda d: d["subsample"].update(cohorts=["BRCA"]), "unknown cohort 'BRCA'"),
        (
            lambda d: d.update(models=["slr", "lmm_nopurity"]),
            "[subsample] compares SLR with LMM",
        ),
        (lambda d: d.update(assoc={"delta": True}), "key 'delta' has the wrong type"),
        (lambda d: d["cohorts"][0].update(icna={"value": "cubic"}), "cohort 'TOY' [icna]"),
        (lambda d: d.update(cohorts=[]), "no cohort given"),
    ],
)
def test_errors_name_the_cohort_and_key(study_dict, tmp_path, edit, message):
    data = copy.deepcopy(study_dict)
    edit(data)
    with pytest.raises(UserInputError) as err:
        study_config_from_dict(data, base=tmp_path, source="study.toml")
    text = str(err.value)
    assert text.startswith("study.toml: ")
    assert message in text
    assert "\n" not in text


def test_invalid_toml_is_a_user_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("output = \n", encoding="utf-8")
    with pytest.raises(UserInputError, match="not valid TOML"):
        load_study_config(path)
    with pytest.raises(UserInputError, match="not found"):
        load_study_config(tmp_path / "absent.toml")


def test_cohort_option():
    assert parse_cohort_option("ACC:expression=a.tsv,samples=b.tsv,purity_column=p") == {
        "name": "ACC",
        "expression": "a.tsv",
        "samples": "b.tsv",
        "purity_column": "p",
    }
    with pytest.raises(UserInputError, match="NAME:expression"):
        parse_cohort_option("a.tsv")
    with pytest.raises(UserInputError, match="is not key=value"):
        parse_cohort_option("ACC:a.tsv")
