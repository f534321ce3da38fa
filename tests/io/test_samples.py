"""Tests for exprlmm.io.samples: sample sheets and sample-ID matching."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exprlmm.errors import UserInputError
from exprlmm.io.samples import (
    explain_no_overlap,
    is_tcga_barcode,
    match_ids,
    read_sample_sheet,
    sample_key,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "expression"
ALIQUOT = "TCGA-OR-A5J1-01A-11R-A29S-07"


# ----------------------------------------------------------------------------- keys


def test_sample_key_truncates_tcga_barcodes_to_barcode_length():
    assert sample_key(ALIQUOT) == "TCGA-OR-A5J1-01"
    assert sample_key(ALIQUOT, barcode_length=12) == "TCGA-OR-A5J1"
    assert sample_key(ALIQUOT, barcode_length=16) == "TCGA-OR-A5J1-01A"
    assert sample_key(ALIQUOT, barcode_length=28) == ALIQUOT


def test_sample_key_normalises_case_separators_and_whitespace():
    assert sample_key(" tcga.or.a5j1.01a.11r.a29s.07 ") == "TCGA-OR-A5J1-01"
    assert sample_key("TCGA_OR_A5J1_01A") == "TCGA-OR-A5J1-01"


def test_sample_key_keeps_other_ids_exact_but_stripped():
    assert sample_key("  GSM71019.CEL\t") == "GSM71019.CEL"
    assert sample_key("ID202") == "ID202"
    assert sample_key("gsm1") != sample_key("GSM1")  # case matters outside TCGA
    assert not is_tcga_barcode("NA20502")
    assert is_tcga_barcode(ALIQUOT)


def test_short_barcode_is_kept_whole():
    assert sample_key("TCGA-OR-A5J1") == "TCGA-OR-A5J1"


@pytest.mark.parametrize("length", [11, 29, 15.0, True])
def test_barcode_length_out_of_range(length):
    with pytest.raises(UserInputError, match="barcode_length"):
        match_ids(["a"], ["a"], barcode_length=length)


# -------------------------------------------------------------------------- matching


def test_match_ids_tcga_and_unmatched_lists():
    expr = [ALIQUOT, "TCGA-OR-A5J2-01A-11R-A29S-07", "TCGA-OR-A5J3-11A-11R-A29S-07"]
    sheet = ["TCGA-OR-A5J2-01", "TCGA-OR-A5J1-01", "TCGA-OR-A5J4-01"]
    m = match_ids(expr, sheet)
    assert m.mapping == {
        ALIQUOT: "TCGA-OR-A5J1-01",
        "TCGA-OR-A5J2-01A-11R-A29S-07": "TCGA-OR-A5J2-01",
    }
    assert list(m.mapping) == expr[:2]  # order of the first table
    assert m.unmatched == ("TCGA-OR-A5J3-11A-11R-A29S-07",)  # normal tissue: -11 ≠ -01
    assert m.sheet_unmatched == ("TCGA-OR-A5J4-01",)
    assert m.n_matched == 2


def test_match_ids_exact_for_non_tcga():
    m = match_ids(["S1 ", "s2", "S3"], ["S1", "S2"])
    assert m.mapping == {"S1 ": "S1"}
    assert m.unmatched == ("s2", "S3")


def test_match_ids_two_aliquots_of_one_sample_is_an_error():
    expr = [ALIQUOT, "TCGA-OR-A5J1-01A-21R-A29S-07"]
    with pytest.raises(UserInputError) as err:
        match_ids(expr, ["TCGA-OR-A5J1-01"], names=("expr.tsv", "samples.tsv"))
    msg = str(err.value)
    assert "expr.tsv" in msg and ALIQUOT in msg and "TCGA-OR-A5J1-01A-21R-A29S-07" in msg
    assert "barcode_length=15" in msg and "\n" not in msg
    # at full length they are distinct aliquots and no longer clash
    assert match_ids(expr, [ALIQUOT], barcode_length=28).mapping == {ALIQUOT: ALIQUOT}


def test_match_ids_sheet_duplicates_after_truncation():
    with pytest.raises(UserInputError, match=r"samples\.tsv.*TCGA-OR-A5J1-01A.*TCGA-OR-A5J1-01B"):
        match_ids([ALIQUOT], ["TCGA-OR-A5J1-01A", "TCGA-OR-A5J1-01B"], names=("e", "samples.tsv"))


def test_explain_no_overlap_prefix_hint_rat():
    msg = explain_no_overlap(["ID202", "ID203"], ["202", "203", "204"], names=("expr", "sheet"))
    assert "prefix 'ID'" in msg and "'ID202' vs '202'" in msg and "2 would match" in msg


def test_explain_no_overlap_suffix_hint():
    msg = explain_no_overlap(["GSM1", "GSM2"], ["GSM1.CEL", "GSM2.CEL"])
    assert "suffix '.CEL'" in msg and "sample sheet IDs carry" in msg


def test_explain_no_overlap_short_barcodes():
    msg = explain_no_overlap([ALIQUOT], ["TCGA-OR-A5J1"])
    assert "barcode_length=12" in msg


def test_explain_no_overlap_same_patient_other_sample_type():
    msg = explain_no_overlap(["TCGA-OR-A5J1-11A-11R-A29S-07"], ["TCGA-OR-A5J1-01"])
    assert "patients are shared" in msg


def test_explain_no_overlap_shows_examples_of_both():
    msg = explain_no_overlap(["a", "b"], ["x", "y", "z"])
    assert "'a'" in msg and "'x'" in msg and "2 expression IDs" in msg and "3 sample sheet" in msg


# ----------------------------------------------------------------------- sample sheet


def test_read_acc_sheet():
    sheet = read_sample_sheet(DATA / "acc_samples.tsv")
    assert sheet.index.name == "sample15"
    assert sheet.index[0] == "TCGA-OR-A5J1-01"
    assert sheet.shape == (11, 9)
    assert sheet["aran_CPE"].dtype == np.float64
    assert sheet["gender"].tolist()[:2] == ["male", "female"]
    assert np.isnan(sheet.loc["TCGA-P6-A5OF-01", "taylor_absolute_purity"])
    assert pd.isna(sheet.loc["TCGA-P6-A5OF-01", "cnv_aliquot"])
    # numeric-looking codes are numbers unless kept as text
    assert sheet["sample_type_code"].iloc[0] == 1.0
    as_text = read_sample_sheet(DATA / "acc_samples.tsv", text_columns=["sample_type_code"])
    assert as_text["sample_type_code"].iloc[0] == "01"


def test_numeric_ids_stay_text():
    sheet = read_sample_sheet(DATA / "rat_samples.tsv")
    assert sheet.index.tolist()[:2] == ["202", "203"]
    assert all(isinstance(i, str) for i in sheet.index)


@pytest.mark.parametrize("column", ["patient", 1])
def test_sample_column_by_name_or_position(column):
    sheet = read_sample_sheet(DATA / "acc_samples.tsv", sample_column=column)
    assert sheet.index[0] == "TCGA-OR-A5J1" and sheet.index.name == "patient"
    assert "sample15" in sheet.columns


def test_sample_column_with_empty_ids():
    # rnaseq_aliquot is empty for the two samples without RNA-seq
    with pytest.raises(UserInputError) as err:
        read_sample_sheet(DATA / "acc_samples.tsv", sample_column="rnaseq_aliquot")
    assert "line(s) 11, 12" in str(err.value) and "'rnaseq_aliquot'" in str(err.value)


def test_unknown_sample_column_lists_columns():
    with pytest.raises(UserInputError, match=r"'nope' not found; columns are: 'sample15'"):
        read_sample_sheet(DATA / "acc_samples.tsv", sample_column="nope")


def test_na_tokens_and_whitespace(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text(
        "id\tage\tstage\n a \t 3.5 \t[Not Available]\nb\tNA\tii\nc\t[Unknown]\t \n",
        encoding="utf-8",
    )
    sheet = read_sample_sheet(path)
    assert sheet.index.tolist() == ["a", "b", "c"]
    assert sheet["age"].dtype == np.float64
    assert sheet["age"].iloc[0] == 3.5 and sheet["age"].isna().tolist() == [False, True, True]
    assert sheet["stage"].isna().tolist() == [True, False, True]


def test_duplicate_sample_ids_name_lines(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("id\tx\na\t1\nb\t2\na\t3\n")
    with pytest.raises(UserInputError, match=r"s\.tsv: sample ID 'a' appears on lines 2, 4"):
        read_sample_sheet(path)


def test_empty_sample_id(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("id\tx\na\t1\n\t2\n")
    with pytest.raises(UserInputError, match=r"empty or missing sample ID .* line\(s\) 3"):
        read_sample_sheet(path)


def test_duplicate_column_names(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("id\tx\tx\na\t1\t2\n")
    with pytest.raises(UserInputError, match=r"'x'.*rename"):
        read_sample_sheet(path)


def test_empty_file(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("")
    with pytest.raises(UserInputError, match=r"s\.tsv: file is empty"):
        read_sample_sheet(path)


def test_blank_lines_only(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("\n\n")
    with pytest.raises(UserInputError, match="no content"):
        read_sample_sheet(path)


def test_header_only(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("id\tx\n")
    with pytest.raises(UserInputError, match="only a header line"):
        read_sample_sheet(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        read_sample_sheet(tmp_path / "nope.tsv")
    with pytest.raises(UserInputError, match="not a file"):
        read_sample_sheet(tmp_path)


def test_csv_named_tsv_is_reported(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_text("id,age,sex\na,1,m\nb,2,f\n")
    with pytest.raises(UserInputError) as err:
        read_sample_sheet(path)
    msg = str(err.value)
    assert "samples.tsv" in msg and "single column" in msg and "comma-separated" in msg
    assert read_sample_sheet(path, sep=",").shape == (2, 2)


def test_tsv_named_csv_is_reported(tmp_path):
    path = tmp_path / "samples.csv"
    path.write_text("id\tage\na\t1\n")
    with pytest.raises(UserInputError, match="tab-separated"):
        read_sample_sheet(path)


def test_sniffed_txt_gzip_bom_csv(tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("id,age\na,1\nb,2\n")
    gz = tmp_path / "s.csv.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write("\ufeffid,age\r\na,1\r\nb,2\r\n")
    for path in (txt, gz):
        sheet = read_sample_sheet(path)
        assert sheet.index.name == "id" and sheet["age"].tolist() == [1.0, 2.0]


def test_r_style_header_without_row_label_name(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("age\tsex\na\t1\tm\nb\t2\tf\n")
    sheet = read_sample_sheet(path)
    assert sheet.index.tolist() == ["a", "b"] and list(sheet.columns) == ["age", "sex"]
    assert sheet.index.name == "sample"


def test_ragged_rows(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("id\tx\na\t1\nb\t2\t3\t4\n")
    with pytest.raises(UserInputError, match=r"s\.tsv: cannot parse .*same number of fields"):
        read_sample_sheet(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "s.tsv.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(UserInputError, match=r"s\.tsv\.gz: cannot be read"):
        read_sample_sheet(path)
