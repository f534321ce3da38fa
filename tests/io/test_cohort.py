"""Tests for exprlmm.io.cohort: matching, filtering, policies, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprlmm.errors import UserInputError
from exprlmm.io.cohort import UNNAMED_GENE_IDS, Cohort, load_cohort

DATA = Path(__file__).resolve().parents[1] / "data" / "expression"
ACC = DATA / "acc_expression.tsv"
ACC_SHEET = DATA / "acc_samples.tsv"
ACC_ICNA = DATA / "acc_icna.tsv"

WITH_EXPRESSION = [
    "TCGA-OR-A5J1-01",
    "TCGA-OR-A5J2-01",
    "TCGA-OR-A5J3-01",
    "TCGA-OR-A5J5-01",
    "TCGA-OR-A5J6-01",
    "TCGA-OR-A5J7-01",
    "TCGA-OR-A5J8-01",
    "TCGA-OR-A5J9-01",
    "TCGA-P6-A5OF-01",
]
CONSTANT = ("AAA1", "AADACL3")


def acc_table() -> pd.DataFrame:
    return pd.read_csv(ACC, sep="\t")


def raw_value(gene: str, sample15: str, *, row: int = 0) -> float:
    """Value of ``gene`` (its ``row``-th occurrence) for a sample, straight from the file."""
    table = acc_table()
    col = next(c for c in table.columns[2:] if c.startswith(sample15))
    return float(table.loc[table["gene_symbol"] == gene, col].iloc[row])


def write_acc(tmp_path: Path, edit) -> Path:
    table = acc_table()
    edit(table)
    path = tmp_path / "acc_edited.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


# ---------------------------------------------------------------------------- ACC


def test_acc_defaults():
    cohort = load_cohort(ACC, ACC_SHEET)
    rep = cohort.report
    assert cohort.expression.index.tolist() == WITH_EXPRESSION  # sample-sheet order
    assert cohort.samples.index.equals(cohort.expression.index)
    assert cohort.expression.index.name == "sample" and cohort.expression.columns.name == "gene"
    assert cohort.expression.dtypes.unique().tolist() == [np.float64]
    assert rep.n_expression_samples == 9 and rep.n_expression_genes == 26
    assert rep.n_sheet_samples == 11 and rep.n_matched == 9
    assert rep.samples_dropped("not in expression") == ("TCGA-OR-A5J4-01", "TCGA-OR-A5JH-01")
    assert rep.samples_dropped("not in sample sheet") == ()
    assert rep.n_genes_unnamed == 3
    assert rep.duplicated_genes == ("SLC35E2",) and rep.n_duplicate_rows_removed == 1
    assert rep.genes_constant == CONSTANT
    assert rep.n_samples == 9 and rep.n_genes == 26 - 3 - 1 - 2 == cohort.expression.shape[1]
    assert cohort.expression.columns.is_unique
    assert not set(cohort.expression.columns) & UNNAMED_GENE_IDS
    # duplicates="first": the first SLC35E2 row of the file
    assert cohort.expression.loc["TCGA-OR-A5J2-01", "SLC35E2"] == raw_value(
        "SLC35E2", "TCGA-OR-A5J2-01"
    )
    assert cohort.genes.loc["SLC35E2", "entrez_id"] == 728661
    assert cohort.genes.index.equals(cohort.expression.columns)
    assert rep.expression_ids[0] == ("TCGA-OR-A5J1-01", "TCGA-OR-A5J1-01A-11R-A29S-07")
    assert rep.orientation == "genes-rows" and rep.orientation_source == "sample IDs"
    assert rep.sample_column == "sample15" and rep.annotation_columns == ("entrez_id",)


def test_log2p1_matches_numpy():
    raw = load_cohort(ACC, ACC_SHEET).expression
    logged = load_cohort(ACC, ACC_SHEET, log2p1=True)
    np.testing.assert_array_equal(logged.expression.to_numpy(), np.log2(raw.to_numpy() + 1))
    assert logged.report.log2p1 and logged.report.genes_constant == CONSTANT


def test_log2p1_rejects_negative_values():
    with pytest.raises(UserInputError) as err:
        load_cohort(
            DATA / "rat_expression_samples_x_probes.tsv",
            DATA / "rat_expression_samples_x_probes.tsv",
            log2p1=True,
        )
    msg = str(err.value)
    assert "rat_expression_samples_x_probes.tsv" in msg and "negative" in msg
    assert "drop log2p1" in msg and "'A_43_P22290'" in msg


def test_duplicates_mean_and_error():
    cohort = load_cohort(ACC, ACC_SHEET, duplicates="mean", log2p1=True)
    a = np.log2(raw_value("SLC35E2", "TCGA-OR-A5J7-01", row=0) + 1)
    b = np.log2(raw_value("SLC35E2", "TCGA-OR-A5J7-01", row=1) + 1)
    assert cohort.expression.loc["TCGA-OR-A5J7-01", "SLC35E2"] == pytest.approx((a + b) / 2)
    assert cohort.report.n_duplicate_rows_removed == 1
    assert list(cohort.expression.columns).index("SLC35E2") == list(
        load_cohort(ACC, ACC_SHEET).expression.columns
    ).index("SLC35E2")
    with pytest.raises(UserInputError) as err:
        load_cohort(ACC, ACC_SHEET, duplicates="error")
    msg = str(err.value)
    assert "acc_expression.tsv" in msg and "'SLC35E2' x2" in msg
    assert "gene_column='entrez_id'" in msg


def test_entrez_ids_as_genes_keep_unnamed_symbols():
    cohort = load_cohort(ACC, ACC_SHEET, gene_column="entrez_id")
    assert cohort.report.n_genes_unnamed == 0 and cohort.report.duplicated_genes == ()
    assert cohort.expression.shape[1] == 26 - 3  # only the 3 all-zero genes go
    assert cohort.genes.loc["9906", "gene_symbol"] == "SLC35E2"


def _with_missing(table: pd.DataFrame) -> None:
    j2 = next(c for c in table.columns if c.startswith("TCGA-OR-A5J2"))
    j3 = next(c for c in table.columns if c.startswith("TCGA-OR-A5J3"))
    table.loc[table["gene_symbol"] == "CAV1", j2] = np.nan
    table.loc[table["gene_symbol"] == "MX1", j3] = np.inf


def test_missing_drop_gene(tmp_path):
    cohort = load_cohort(write_acc(tmp_path, _with_missing), ACC_SHEET)
    assert cohort.report.genes_missing == ("CAV1", "MX1")
    assert "CAV1" not in cohort.expression.columns and cohort.expression.shape == (9, 18)
    assert np.isfinite(cohort.expression.to_numpy()).all()


def test_missing_drop_sample(tmp_path):
    cohort = load_cohort(write_acc(tmp_path, _with_missing), ACC_SHEET, missing="drop-sample")
    assert cohort.report.samples_dropped("missing expression") == (
        "TCGA-OR-A5J2-01",
        "TCGA-OR-A5J3-01",
    )
    assert cohort.expression.shape == (7, 20)
    assert [d.detail for d in cohort.report.dropped_samples][-1] == "1 values"


def test_missing_error(tmp_path):
    with pytest.raises(UserInputError) as err:
        load_cohort(write_acc(tmp_path, _with_missing), ACC_SHEET, missing="error")
    msg = str(err.value)
    assert "2 missing or infinite expression values in 2 genes and 2 samples" in msg
    assert "'CAV1'" in msg and "missing='drop-gene'" in msg


def test_missing_in_a_gene_that_is_dropped_as_unnamed_does_not_count(tmp_path):
    def edit(table):
        table.iloc[0, 3] = np.nan  # a "?" gene

    cohort = load_cohort(write_acc(tmp_path, edit), ACC_SHEET, missing="error")
    assert cohort.report.genes_missing == ()


# ------------------------------------------------------------------ sheet columns


def test_required_columns_drop_missing_values():
    cohort = load_cohort(ACC, ACC_SHEET, required_columns=["aran_CPE", "taylor_absolute_purity"])
    dropped = [d for d in cohort.report.dropped_samples if d.reason == "missing value"]
    assert [(d.sample, d.detail) for d in dropped] == [
        ("TCGA-P6-A5OF-01", "taylor_absolute_purity")
    ]
    assert cohort.expression.shape[0] == 8
    assert cohort.samples["aran_CPE"].dtype == np.float64


def test_required_columns_missing_error_policy():
    with pytest.raises(UserInputError) as err:
        load_cohort(
            ACC, ACC_SHEET, required_columns=["taylor_absolute_purity"], sheet_missing="error"
        )
    msg = str(err.value)
    assert "acc_samples.tsv" in msg and "'TCGA-P6-A5OF-01': taylor_absolute_purity" in msg
    assert "sheet_missing='drop-sample'" in msg


def test_infinite_trait_is_missing(tmp_path):
    sheet = pd.read_csv(ACC_SHEET, sep="\t", dtype=str, keep_default_na=False)
    sheet.loc[0, "age_years"] = "inf"
    path = tmp_path / "s.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    cohort = load_cohort(ACC, path, required_columns=["age_years"])
    assert cohort.report.samples_dropped("missing value") == ("TCGA-OR-A5J1-01",)


def test_missing_required_column_lists_columns():
    with pytest.raises(UserInputError) as err:
        load_cohort(ACC, ACC_SHEET, required_columns=["purity"])
    msg = str(err.value)
    assert "acc_samples.tsv: column 'purity' not found; columns are:" in msg
    assert "'aran_CPE'" in msg and "scores_path" in msg


def test_non_numeric_trait_and_categorical():
    with pytest.raises(UserInputError) as err:
        load_cohort(ACC, ACC_SHEET, required_columns=["gender"])
    msg = str(err.value)
    assert "column 'gender' is not numeric" in msg and "'male'" in msg
    assert "categorical_columns" in msg
    cohort = load_cohort(ACC, ACC_SHEET, categorical_columns=["gender", "sample_type_code"])
    assert set(cohort.samples["gender"]) == {"male", "female"}
    assert cohort.samples["sample_type_code"].iloc[0] == "01"  # kept as text


def test_partly_non_numeric_trait_names_sample(tmp_path):
    sheet = pd.read_csv(ACC_SHEET, sep="\t", dtype=str, keep_default_na=False)
    sheet.loc[2, "age_years"] = "abc"
    path = tmp_path / "s.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    with pytest.raises(
        UserInputError,
        match=r"'age_years' has the non-numeric value 'abc' for sample 'TCGA-OR-A5J3-01'",
    ):
        load_cohort(ACC, path, required_columns=["age_years"])


# --------------------------------------------------------------------------- scores


def test_scores_joined_by_barcode():
    cohort = load_cohort(ACC, ACC_SHEET, scores_path=ACC_ICNA, required_columns=["icna"])
    rep = cohort.report
    assert rep.scores_unmatched == ("TCGA-OR-A5J1-10A-01D-A29K-01",)  # the normal aliquot
    assert rep.samples_dropped("missing value") == ("TCGA-OR-A5J9-01", "TCGA-P6-A5OF-01")
    assert cohort.samples.loc["TCGA-OR-A5J2-01", "icna"] == pytest.approx(7.74804e08)
    assert {"icna", "fga", "n_segments"} <= set(cohort.samples.columns)
    assert any("scores: acc_icna.tsv" in line for line in rep.summary_lines())


def test_scores_column_clash(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("sample\tgender\nTCGA-OR-A5J1-01A-11D-A29H-01\tmale\n")
    with pytest.raises(
        UserInputError, match=r"scores\.tsv: column\(s\) 'gender' are also in acc_samples\.tsv"
    ):
        load_cohort(ACC, ACC_SHEET, scores_path=path)


def test_scores_without_overlap(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("sample\ticna\nS1\t1\n")
    with pytest.raises(UserInputError, match=r"scores\.tsv: no sample of the scores\.tsv matches"):
        load_cohort(ACC, ACC_SHEET, scores_path=path)


# --------------------------------------------------------------------- ID problems


def test_no_overlap_rat_prefix_hint():
    with pytest.raises(UserInputError) as err:
        load_cohort(DATA / "rat_expression_samples_x_probes.tsv", DATA / "rat_samples.tsv")
    msg = str(err.value)
    assert "no sample of the rat_expression_samples_x_probes.tsv matches the rat_samples.tsv" in msg
    assert "'ID202'" in msg and "'202'" in msg and "prefix 'ID'" in msg and "\n" not in msg


def test_no_overlap_suggests_sample_column(tmp_path):
    sheet = pd.read_csv(ACC_SHEET, sep="\t", dtype=str, keep_default_na=False)
    sheet.insert(0, "row", [f"r{i}" for i in range(len(sheet))])
    path = tmp_path / "s.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    with pytest.raises(
        UserInputError,
        match=r"sheet column 'sample15' matches 9 expression samples: pass sample_column='sample15'",
    ):
        load_cohort(ACC, path)
    assert load_cohort(ACC, path, sample_column="sample15").report.n_matched == 9


def test_patient_barcodes_need_barcode_length_12():
    with pytest.raises(UserInputError, match="pass barcode_length=12"):
        load_cohort(ACC, ACC_SHEET, sample_column="patient")
    cohort = load_cohort(ACC, ACC_SHEET, sample_column="patient", barcode_length=12)
    assert cohort.report.n_matched == 9 and cohort.expression.index[0] == "TCGA-OR-A5J1"


def test_no_overlap_with_given_orientation():
    with pytest.raises(UserInputError, match="try orientation='auto'"):
        load_cohort(
            DATA / "bladder_expression.tsv",
            DATA / "bladder_samples.tsv",
            orientation="genes-columns",
        )


def test_two_aliquots_of_one_sample(tmp_path):
    def edit(table):
        table["TCGA-OR-A5J1-01A-21R-A29S-07"] = table.iloc[:, 2] + 1

    with pytest.raises(UserInputError) as err:
        load_cohort(write_acc(tmp_path, edit), ACC_SHEET)
    msg = str(err.value)
    assert "acc_edited.tsv" in msg and "'TCGA-OR-A5J1-01A-11R-A29S-07' and" in msg
    assert "'TCGA-OR-A5J1-01A-21R-A29S-07' → 'TCGA-OR-A5J1-01'" in msg


def test_expression_samples_not_in_sheet(tmp_path):
    sheet = pd.read_csv(ACC_SHEET, sep="\t", dtype=str, keep_default_na=False).iloc[:5]
    path = tmp_path / "s.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    cohort = load_cohort(ACC, path)
    assert cohort.report.samples_dropped("not in sample sheet") == (
        "TCGA-OR-A5J7-01A-11R-A29S-07",
        "TCGA-OR-A5J8-01A-11R-A29S-07",
        "TCGA-OR-A5J9-01A-11R-A29S-07",
        "TCGA-P6-A5OF-01A-11R-A29S-07",
    )
    assert cohort.report.samples_dropped("not in expression") == ()


def test_too_few_samples():
    with pytest.raises(UserInputError) as err:
        load_cohort(ACC, ACC_SHEET, min_samples=10, required_columns=["taylor_absolute_purity"])
    msg = str(err.value)
    assert "only 8 samples left (at least 10 needed; 9 matched" in msg
    assert "2 not in expression" in msg and "1 missing value" in msg


def test_no_gene_left(tmp_path):
    def edit(table):
        table.iloc[:, 2:] = 1.0

    with pytest.raises(
        UserInputError,
        match=r"no gene left after filtering \(26 read: 3 unnamed, 1 repeated, 0 with missing values, 22 constant\)",
    ):
        load_cohort(write_acc(tmp_path, edit), ACC_SHEET)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("missing", "drop"),
        ("duplicates", "last"),
        ("sheet_missing", "ignore"),
        ("orientation", "rows"),
        ("min_samples", 0),
        ("barcode_length", 10),
    ],
)
def test_invalid_options(option, value):
    with pytest.raises(UserInputError, match=option):
        load_cohort(ACC, ACC_SHEET, **{option: value})


def test_cohort_checks_alignment():
    cohort = load_cohort(ACC, ACC_SHEET)
    with pytest.raises(ValueError, match="same index"):
        Cohort(cohort.expression, cohort.samples.iloc[::-1], cohort.genes, cohort.report)


# ------------------------------------------------------------- other data layouts


def test_mouse_trait_in_expression_file_and_identical_samples():
    path = DATA / "mouse_weight_expression.tsv"
    cohort = load_cohort(path, path, required_columns=["weight"])
    assert "weight" not in cohort.expression.columns
    assert cohort.expression.shape == (5, 6)
    assert cohort.samples["weight"].tolist() == [33.7, 42.3, 42.7, 31.5, 33.7]
    assert cohort.report.identical_samples == (("F2_81", "F2_81.1"),)
    assert any(line.startswith("warning: 1 groups") for line in cohort.report.summary_lines())


def test_nutrimouse_samples_in_rows_with_categorical_diet():
    cohort = load_cohort(
        DATA / "nutrimouse_expression.tsv",
        DATA / "nutrimouse_fatty_acids.tsv",
        required_columns=["C16.0"],
        categorical_columns=["diet"],
    )
    assert cohort.report.orientation == "genes-columns"
    assert cohort.report.annotation_columns == ("genotype", "diet")
    assert cohort.expression.shape == (8, 5) and cohort.samples["diet"].iloc[0] == "lin"


def test_geuvadis_counts_log2p1():
    cohort = load_cohort(
        DATA / "geuvadis_counts.tsv",
        DATA / "geuvadis_samples.tsv",
        log2p1=True,
        categorical_columns=["sex"],
    )
    assert cohort.expression.loc["NA20502", "ENSG00000000419"] == np.log2(340.0)


# -------------------------------------------------------------------------- report


def test_report_dict_and_summary():
    cohort = load_cohort(
        ACC, ACC_SHEET, log2p1=True, scores_path=ACC_ICNA, required_columns=["icna", "aran_CPE"]
    )
    record = json.loads(json.dumps(cohort.report.to_dict()))
    assert record["n_matched"] == 9 and record["n_samples"] == 7
    assert record["n_dropped_samples"] == {
        "not in expression": 2,
        "not in sample sheet": 0,
        "missing value": 2,
        "missing expression": 0,
    }
    assert record["n_genes_dropped"] == {"unnamed": 3, "duplicate": 1, "missing": 0, "constant": 2}
    assert record["dropped_samples"][0] == {
        "sample": "TCGA-OR-A5J4-01",
        "reason": "not in expression",
        "detail": "",
    }
    lines = cohort.report.summary_lines()
    text = "\n".join(lines)
    assert lines[0].startswith("expression: acc_expression.tsv (tsv, genes in rows, detected")
    assert "matched 9 samples" in text
    assert "2 samples in the sample sheet but not in the expression file: TCGA-OR-A5J4-01" in text
    assert (
        "2 samples dropped for missing values in required columns: TCGA-OR-A5J9-01 (icna)" in text
    )
    assert "dropped 3 unnamed" in text and "SLC35E2" in text and "dropped 2 constant" in text
    assert lines[-1] == "cohort: 7 samples x 20 genes"


# ------------------------------------------------------------------------ property


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_input_order_does_not_change_the_cohort(tmp_path_factory, data):
    table = acc_table()
    sheet = pd.read_csv(ACC_SHEET, sep="\t", dtype=str, keep_default_na=False)
    gene_order = data.draw(st.permutations(range(len(table))))
    sample_cols = data.draw(st.permutations(list(table.columns[2:])))
    sheet_order = data.draw(st.permutations(range(len(sheet))))
    folder = tmp_path_factory.mktemp("shuffled")
    expr_path, sheet_path = folder / "e.tsv", folder / "s.tsv"
    table.iloc[list(gene_order)][["gene_symbol", "entrez_id", *sample_cols]].to_csv(
        expr_path, sep="\t", index=False
    )
    sheet.iloc[list(sheet_order)].to_csv(sheet_path, sep="\t", index=False)
    options = {"log2p1": True, "duplicates": "mean", "required_columns": ["taylor_absolute_purity"]}
    base = load_cohort(ACC, ACC_SHEET, **options)
    shuffled = load_cohort(expr_path, sheet_path, **options)
    pd.testing.assert_frame_equal(
        shuffled.expression.sort_index().sort_index(axis=1),
        base.expression.sort_index().sort_index(axis=1),
        rtol=1e-14,
        atol=0,
    )
    pd.testing.assert_frame_equal(shuffled.samples.sort_index(), base.samples.sort_index())
    assert sorted(shuffled.report.genes_constant) == sorted(base.report.genes_constant)
    assert sorted(shuffled.report.dropped_samples, key=str) == sorted(
        base.report.dropped_samples, key=str
    )
    shutil.rmtree(folder)
