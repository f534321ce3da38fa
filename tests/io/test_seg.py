"""Tests for exprlmm.io.seg: formats, messy real-world files, errors with line numbers."""

from __future__ import annotations

import csv
import gzip
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprlmm.errors import UserInputError
from exprlmm.io.seg import SEG_COLUMNS, normalize_chromosome, read_seg, validate_segments

DATA = Path(__file__).resolve().parent.parent / "data" / "seg"
ACC = DATA / "acc_subset.seg"


def _csv_rows(path: Path) -> list[list[str]]:
    """The fixture's data rows, read with the csv module (header dropped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t") if r and not r[0].startswith("@")]
    return rows[1:]


def _key(frame: pd.DataFrame) -> pd.DataFrame:
    """The content of a segment table without line numbers and attrs, in a fixed order."""
    out = frame[["sample", "chrom", "start", "end", "value"]].copy()
    out.attrs = {}
    return out.sort_values(["sample", "chrom", "start"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# real files in several flavours
# ---------------------------------------------------------------------------------------


def test_tcga_acc_subset_parses_to_canonical_table():
    seg = read_seg(ACC)
    rows = _csv_rows(ACC)
    assert list(seg.columns) == list(SEG_COLUMNS)
    assert len(seg) == len(rows) == 384
    assert seg["sample"].nunique() == 6
    assert seg["start"].dtype == np.int64 and seg["end"].dtype == np.int64
    assert seg["value"].dtype == np.float64
    assert str(seg["num_mark"].dtype) == "Int64"
    # line numbers are the physical lines of the file (header is line 1)
    assert seg["line"].tolist() == list(range(2, 386))
    # values, positions and chromosomes as written (23 -> X)
    assert seg["sample"].tolist() == [r[0] for r in rows]
    assert seg["start"].tolist() == [int(r[2]) for r in rows]
    assert seg["end"].tolist() == [int(r[3]) for r in rows]
    assert seg["num_mark"].tolist() == [int(r[4]) for r in rows]
    assert seg["value"].tolist() == [float(r[5]) for r in rows]
    assert seg["chrom"].tolist() == [("X" if r[1] == "23" else r[1]) for r in rows]
    assert seg.attrs["columns"] == {
        "sample": "Sample",
        "chrom": "Chromosome",
        "start": "Start",
        "end": "End",
        "num_mark": "Num_Probes",
        "value": "Segment_Mean",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", seg.attrs["sha256"])


def test_gdc_file_with_extra_columns_uses_segment_mean_not_last_column():
    path = DATA / "brca_gdc_subset.seg.tsv"
    seg = read_seg(path)
    rows = _csv_rows(path)
    assert len(seg) == 110
    assert seg.attrs["value_column"] == "Segment_Mean"
    assert seg["value"].tolist() == [float(r[5]) for r in rows]
    assert seg["value"].min() < -7  # the near-homozygous deletion survives parsing
    assert set(seg["chrom"]) == {"1", "17"}


@pytest.mark.parametrize(
    ("name", "n_segments", "samples"),
    [
        ("example_seg.txt", 54, ["Sample1"]),
        ("issue192_tumor.seg", 6, ["tumor"]),
        ("coriell_DNAcopy_CBS_segments_DERIVED.seg", 72, ["Coriell.05296", "Coriell.13330"]),
        ("example_gatk4_modelfinal.seg.gz", 23, ["Sample1"]),
    ],
)
def test_purecn_and_dnacopy_examples_parse(name, n_segments, samples):
    seg = read_seg(DATA / name)
    assert len(seg) == n_segments
    assert pd.unique(seg["sample"]).tolist() == samples
    assert set(seg["chrom"]) <= {str(i) for i in range(1, 23)} | {"X", "Y"}


def test_gatk_modelfinal_takes_sample_from_rg_and_posterior_median():
    path = DATA / "example_gatk4_modelfinal.seg.gz"
    seg = read_seg(path)
    rows = _csv_rows(path)
    assert seg.attrs["value_column"] == "LOG2_COPY_RATIO_POSTERIOR_50"
    assert seg.attrs["columns"]["sample"] == "@RG SM:Sample1"
    assert seg["value"].tolist() == [float(r[6]) for r in rows]  # column 7, not 6 or 8
    assert seg["num_mark"].tolist() == [int(r[3]) for r in rows]
    assert seg["line"].iloc[0] == 28  # 26 '@' lines + column header
    assert seg["chrom"].iloc[-1] == "X"


def test_value_column_override():
    path = DATA / "example_gatk4_modelfinal.seg.gz"
    seg = read_seg(path, value_column="log2_copy_ratio_posterior_90")
    assert seg["value"].tolist() == [float(r[7]) for r in _csv_rows(path)]


def test_coriell_chromosome_23_is_x_and_start_zero_allowed():
    seg = read_seg(DATA / "coriell_DNAcopy_CBS_segments_DERIVED.seg")
    assert (seg["chrom"] == "X").sum() == 2
    assert (seg["start"] == 0).any()


def test_buggy_cnvkit_export_is_rejected_at_line_2():
    with pytest.raises(UserInputError, match=r"buggy_cnvkit\.seg\.gz, line 2: start .* empty"):
        read_seg(DATA / "buggy_cnvkit.seg.gz")


# ---------------------------------------------------------------------------------------
# messy versions of a real file give the same table
# ---------------------------------------------------------------------------------------


def _acc_lines() -> list[str]:
    return ACC.read_text().splitlines()


def _messy(kind: str) -> str:
    lines = _acc_lines()
    header, body = lines[0], lines[1:]
    if kind == "crlf":
        return "\r\n".join(lines) + "\r\n"
    if kind == "cr":
        return "\r".join(lines) + "\r"
    if kind == "comments_and_blank_lines":
        out = ["# exported 2016-01-28", "#track name=acc", "", header]
        for i, line in enumerate(body):
            out.append(line)
            if i % 50 == 0:
                out += ["", "# a comment", "   "]
        return "\n".join(out) + "\n"
    if kind == "whitespace_only_lines":  # no '#' anywhere: exercises the fast path's checks
        out = [header]
        for i, line in enumerate(body):
            out.append(line)
            if i % 40 == 0:
                out.append("   " if i % 80 else "\t\t\t\t\t")
        return "\n".join(out) + "\n\n\n"
    if kind == "quotes":
        return "\n".join(
            '"' + '"\t"'.join(line.split("\t")) + '"' if i % 2 else line
            for i, line in enumerate(lines)
        )
    if kind == "chr_prefix":
        out = [header]
        for line in body:
            f = line.split("\t")
            f[1] = {"23": "chrX"}.get(f[1], "chr" + f[1])
            out.append("\t".join(f))
        return "\n".join(out) + "\n"
    if kind == "repeated_header":  # cat a.seg b.seg
        return "\n".join([header, *body[:100], header, *body[100:]]) + "\n"
    if kind == "bom_and_trailing_spaces":
        return "\ufeff" + "\n".join(line + "  " for line in lines) + "\n"
    if kind == "comma_separated":
        return "\n".join(line.replace("\t", ",") for line in lines) + "\n"
    if kind == "whitespace_separated":
        return "\n".join(line.replace("\t", "   ") for line in lines) + "\n"
    if kind == "r_scientific_positions":
        out = [header]
        for line in body:
            f = line.split("\t")
            if f[2].endswith("00000"):
                f[2] = f"{int(f[2]):.0e}".replace("e+0", "e+")
            out.append("\t".join(f))
        return "\n".join(out) + "\n"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "crlf",
        "cr",
        "comments_and_blank_lines",
        "whitespace_only_lines",
        "quotes",
        "chr_prefix",
        "repeated_header",
        "bom_and_trailing_spaces",
        "comma_separated",
        "whitespace_separated",
        "r_scientific_positions",
    ],
)
def test_messy_variants_of_a_real_file_read_the_same(tmp_path, kind):
    path = tmp_path / "messy.seg"
    path.write_bytes(_messy(kind).encode("utf-8"))
    pd.testing.assert_frame_equal(_key(read_seg(path)), _key(read_seg(ACC)))


def test_messy_file_keeps_physical_line_numbers(tmp_path):
    path = tmp_path / "messy.seg"
    path.write_text(_messy("comments_and_blank_lines"))
    seg = read_seg(path)
    lines = path.read_text().split("\n")
    for line_no, start in zip(seg["line"], seg["start"], strict=True):
        assert lines[line_no - 1].split("\t")[2] == str(start)


def test_gzip_detected_from_content_not_name(tmp_path):
    path = tmp_path / "segments.txt"  # no .gz suffix
    path.write_bytes(gzip.compress(ACC.read_bytes()))
    seg = read_seg(path)
    pd.testing.assert_frame_equal(_key(seg), _key(read_seg(ACC)))
    assert seg.attrs["sha256"] != read_seg(ACC).attrs["sha256"]  # hash of the bytes on disk


def test_sample_ids_with_spaces_kept_as_written(tmp_path):
    path = tmp_path / "spaces.seg"
    path.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "patient 1 tumour\t1\t1\t100\t5\t0.5\n"
        "  patient 1 tumour \t2\t1\t100\t5\t0.5\n"
        '"patient 2, relapse"\tchrY\t10\t20\t3\t-1\n'
    )
    seg = read_seg(path)
    assert seg["sample"].tolist() == ["patient 1 tumour"] * 2 + ["patient 2, relapse"]
    assert seg["chrom"].tolist() == ["1", "2", "Y"]


def test_missing_values_become_nan(tmp_path):
    path = tmp_path / "na.seg"
    path.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "s\t1\t1\t100\tNA\tNA\n"
        "s\t1\t101\t200\t4\t\n"
        "s\t1\t201\t300\t\tnan\n"
        "s\t1\t301\t400\t7\t0.25\n"
    )
    seg = read_seg(path)
    assert seg["value"].isna().tolist() == [True, True, True, False]
    assert seg["num_mark"].isna().tolist() == [True, False, True, False]
    assert seg["value"].iloc[3] == 0.25


def test_mitochondrial_names_are_read_as_mt(tmp_path):
    path = tmp_path / "mt.seg"
    path.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "s\tchrM\t1\t16569\t5\t2\ns\tMT\t1\t16569\t5\t2\n".replace("s\tMT", "t\tMT")
    )
    assert read_seg(path)["chrom"].tolist() == ["MT", "MT"]


def test_positional_columns_when_header_is_unrecognised(tmp_path):
    path = tmp_path / "igv.seg"
    path.write_text("who\twhere\tfrom\tto\tmarkers\tsignal\ns\t1\t1\t100\t5\t0.5\n")
    seg = read_seg(path)
    assert seg[["sample", "chrom", "start", "end"]].iloc[0].tolist() == ["s", "1", 1, 100]
    assert seg["value"].iloc[0] == 0.5


def test_shared_boundary_base_is_not_an_overlap(tmp_path):
    path = tmp_path / "touch.seg"
    path.write_text(
        "ID\tchrom\tloc.start\tloc.end\tseg.mean\ns\t1\t1\t100\t0.1\ns\t1\t100\t200\t0.2\n"
    )
    assert len(read_seg(path)) == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1", "1"),
        ("chr1", "1"),
        ("CHR22", "22"),
        ("01", "1"),
        ("23", "X"),
        ("chr23", "X"),
        ("24", "Y"),
        ("x", "X"),
        ("chrY", "Y"),
        ("M", "MT"),
        ("chrM", "MT"),
        ("MT", "MT"),
        ('"7"', "7"),
        ("0", None),
        ("25", None),
        ("26", None),
        ("chr1_gl000191_random", None),
        ("GL000192.1", None),
        ("chrUn_KI270302v1", None),
        ("", None),
        ("١", None),  # a non-ASCII digit
    ],
)
def test_normalize_chromosome(name, expected):
    assert normalize_chromosome(name) == expected


# ---------------------------------------------------------------------------------------
# errors: one line, file name, line number, a fix
# ---------------------------------------------------------------------------------------

HEADER = "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
GOOD = "s1\t1\t1000\t2000\t10\t0.5\n"


@pytest.mark.parametrize(
    ("body", "line", "pattern"),
    [
        ("s1\t1\t2000\t1000\t10\t0.5\n", 2, r"end \(1000\) is before start \(2000\)"),
        (GOOD + "s1\t1\t1500\t3000\t10\t0.5\n", 2, r"lines? 2 and line 3 overlap"),
        (GOOD + "s2\t1\t1\t5\t1\t0\n" + GOOD, 2, r"line 2 and line 4 overlap"),
        ("s1\t1\t5\t5\t1\t0.5\n" * 2, 2, r"line 2 and line 3 overlap"),  # duplicate 1-base
        (GOOD + "s1\t2\t1\t50\t3\tabc\n", 3, r"'abc', not a number"),
        (GOOD + "s1\t2\t1\t50\t3\t0,5\n", 3, r"decimal separator"),
        (GOOD + "s1\t2\t1\t50\t3\t-Inf\n", 3, r"infinite"),
        (GOOD + "s1\tchr1_gl000191_random\t1\t50\t3\t0.1\n", 3, r"unknown chromosome"),
        (GOOD + "s1\t25\t1\t50\t3\t0.1\n", 3, r"unknown chromosome '25'"),
        (GOOD + "s1\t2\t\t50\t3\t0.1\n", 3, r"start .* is empty"),
        (GOOD + "s1\t2\t12.5\t50\t3\t0.1\n", 3, r"'12\.5', not a whole number"),
        (GOOD + "s1\t2\t-5\t50\t3\t0.1\n", 3, r"negative"),
        (GOOD + "s1\t2\tNA\t50\t3\t0.1\n", 3, r"start .*'NA', not a whole number"),
        (GOOD + "s1\t2\t1\t50\t0.1\n", 3, r"has 5 fields, the header has 6"),
        (GOOD + "7\ts1\t2\t1\t50\t3\t0.1\n", 3, r"has 7 fields.*row\.names"),
        (GOOD + "\t2\t1\t50\t3\t0.1\n", 3, r"sample ID is empty"),
        (GOOD + "s1\t2\t1\t50\tmany\t0.1\n", 3, r"num\.mark .*'many'"),
    ],
)
def test_bad_rows_raise_with_file_and_line(tmp_path, body, line, pattern):
    path = tmp_path / "bad input.seg"
    path.write_text(HEADER + body)
    with pytest.raises(UserInputError) as info:
        read_seg(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}")
    assert re.search(rf"\bline {line}\b", message), message
    assert re.search(pattern, message), message


def test_first_problem_in_the_file_is_reported(tmp_path):
    path = tmp_path / "two_problems.seg"
    path.write_text(HEADER + GOOD + "s1\tchrZ\t1\t50\t3\t0.1\n" + "s1\t2\t1\t50\t3\tabc\n")
    with pytest.raises(UserInputError, match=r"line 3: unknown chromosome 'chrZ'"):
        read_seg(path)
    path.write_text(HEADER + GOOD + "s1\t2\t1\t50\t3\tabc\n" + "s1\tchrZ\t1\t50\t3\t0.1\n")
    with pytest.raises(UserInputError, match=r"line 3: value"):
        read_seg(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"no header line and no segments"),
        ("# only a comment\n\n", r"no header line"),
        (HEADER, r"header found on line 1 but no segments"),
        (GOOD, r"line 1: the first line looks like data"),
        ("ID chrom\n", r"line 1: header has 2 column"),
        (
            "ID\tchrom\tloc.start\tloc.end\tnum.mark\tdepth\tweight\n" + "s\t1\t1\t2\t3\t4\t5\n",
            r"no value column.*--value-column",
        ),
        (
            "chrom\tstart\tend\tgene\tlog2\tdepth\tprobes\tweight\n1\t0\t10\tA\t0.1\t1\t2\t3\n",
            r"no sample column.*cnvkit\.py export seg",
        ),
    ],
)
def test_bad_files_raise(tmp_path, text, pattern):
    path = tmp_path / "bad.seg"
    path.write_text(text)
    with pytest.raises(UserInputError, match=pattern):
        read_seg(path)


def test_value_column_not_found(tmp_path):
    with pytest.raises(
        UserInputError, match=r"value column 'LOG2_MEAN' not found; columns are: ID"
    ):
        read_seg(ACC.parent / "example_seg.txt", value_column="LOG2_MEAN")


def test_missing_file_excel_binary_and_non_utf8(tmp_path):
    with pytest.raises(UserInputError, match="file not found"):
        read_seg(tmp_path / "nope.seg")
    xlsx = tmp_path / "cohort.seg"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(UserInputError, match="ZIP/Excel"):
        read_seg(xlsx)
    latin1 = tmp_path / "latin1.seg"
    latin1.write_bytes((HEADER + GOOD + "S\xe9n\t1\t1\t2\t3\t0.1\n").encode("latin-1"))
    with pytest.raises(UserInputError, match=r"line 3: not valid UTF-8"):
        read_seg(latin1)
    truncated = tmp_path / "cut.seg.gz"
    truncated.write_bytes(gzip.compress(ACC.read_bytes())[:500])
    with pytest.raises(UserInputError, match="cannot decompress"):
        read_seg(truncated)


def test_validate_segments_on_a_table_without_line_numbers():
    table = pd.DataFrame(
        {"sample": ["a", "a"], "chrom": ["1", "1"], "start": [1, 50], "end": [100, 200]}
    )
    with pytest.raises(UserInputError, match=r"row 0 and row 1 overlap"):
        validate_segments(table)
    with pytest.raises(UserInputError, match=r"row 0: chromosome 'chr1'"):
        validate_segments(table.assign(chrom=["chr1", "1"]))
    with pytest.raises(UserInputError, match=r"row 1: sample ID is missing"):
        validate_segments(table.assign(sample=["a", None], chrom=["1", "2"]))
    validate_segments(table.assign(chrom=["1", "2"]))  # different chromosomes: fine
    validate_segments(table.assign(sample=["a", "b"]))  # different samples: fine


# ---------------------------------------------------------------------------------------
# property: line order does not matter
# ---------------------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_shuffled_lines_give_the_same_segments(tmp_path, seed):
    lines = _acc_lines()
    body = lines[1:]
    random.Random(seed).shuffle(body)
    path = tmp_path / f"shuffled_{seed}.seg"
    path.write_text("\n".join([lines[0], *body]) + "\n")
    seg = read_seg(path)
    pd.testing.assert_frame_equal(_key(seg), _key(read_seg(ACC)))
    # the recorded line numbers still point at the right lines
    assert [body[n - 2].split("\t")[2] for n in seg["line"]] == [str(s) for s in seg["start"]]
