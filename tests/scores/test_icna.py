"""Tests for exprlmm.scores.icna against closed forms and independent hand computations."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exprlmm.errors import UserInputError
from exprlmm.io.seg import read_seg
from exprlmm.scores.icna import (
    ICNA_COLUMNS,
    IcnaSettings,
    icna_scores,
    is_tcga_barcode,
    is_tcga_tumor,
    tcga_sample_type,
)

TESTS = Path(__file__).resolve().parent.parent
DATA = TESTS / "data" / "seg"
AWK = TESTS / "reference" / "icna" / "icna_awk.tsv"


def _segments(rows: list[tuple]) -> pd.DataFrame:
    """A segment table from (sample, chrom, start, end, value) tuples."""
    return pd.DataFrame(rows, columns=["sample", "chrom", "start", "end", "value"])


def _awk_reference() -> dict[tuple[str, str], dict[str, float]]:
    with open(AWK, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {
        (r["file"], r["sample"]): {k: float(v) for k, v in r.items() if k not in ("file", "sample")}
        for r in rows
    }


# ---------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [0.7, -1.3, 0.0, 2.5e-4])
def test_one_segment_log2_is_length_times_abs_value(v):
    result = icna_scores(_segments([("s", "1", 101, 1100, v)]))
    assert list(result.columns) == list(ICNA_COLUMNS)
    assert result.index.name == "sample"
    assert result.loc["s", "icna"] == pytest.approx(1000 * abs(v), rel=1e-15)
    assert result.loc["s", "n_segments"] == 1


@pytest.mark.parametrize("v", [1.0, -1.0, 0.5, -3.0])
def test_one_segment_linear_is_length_times_relative_change(v):
    result = icna_scores(_segments([("s", "1", 1, 1000, v)]), value="linear")
    assert result.loc["s", "icna"] == pytest.approx(1000 * abs(2**v - 1), rel=1e-14)


def test_linear_known_values():
    # one copy gained (log2 1.585 -> ratio 3 -> change 2), one lost (log2 -1 -> 0.5)
    segs = _segments([("s", "1", 1, 10, math.log2(3)), ("s", "2", 1, 20, -1.0)])
    result = icna_scores(segs, value="linear")
    assert result.loc["s", "icna"] == pytest.approx(10 * 2 + 20 * 0.5, rel=1e-14)


def test_length_is_end_minus_start_plus_one():
    result = icna_scores(_segments([("s", "1", 5, 5, 1.0)]))
    assert result.loc["s", "icna"] == 1.0


def test_min_abs_change_zeroes_small_segments_only():
    segs = _segments([("s", "1", 1, 100, 0.1), ("s", "1", 101, 200, -0.3), ("s", "2", 1, 300, 0.5)])
    result = icna_scores(segs, min_abs_change=0.3)
    assert result.loc["s", "icna"] == pytest.approx(100 * 0.3 + 300 * 0.5)  # 0.3 itself counts
    assert result.loc["s", "n_segments"] == 3  # still scored, they contribute 0
    linear = icna_scores(segs, value="linear", min_abs_change=0.3)
    # in linear mode the threshold applies to |2^v - 1|: 0.072, 0.188, 0.414
    assert linear.loc["s", "icna"] == pytest.approx(300 * (2**0.5 - 1))


@pytest.mark.parametrize("spelling", [["X"], ["chrX"], ["23"], ["x", "Y"], "X,Y"])
def test_exclude_chromosomes_any_spelling(spelling):
    segs = _segments([("s", "1", 1, 100, 0.5), ("s", "X", 1, 1000, 1.0), ("s", "Y", 1, 10, 1.0)])
    expected_y = 0.0 if "Y" in str(spelling) else 10.0
    result = icna_scores(segs, exclude_chromosomes=spelling)
    assert result.loc["s", "icna"] == pytest.approx(50 + expected_y)
    assert result.loc["s", "n_segments"] == (1 if expected_y == 0 else 2)


def test_mitochondrial_segments_never_scored_and_na_skipped():
    segs = _segments(
        [("s", "1", 1, 100, 0.5), ("s", "MT", 1, 16569, 3.0), ("s", "2", 1, 50, np.nan)]
    )
    result = icna_scores(segs)
    assert result.loc["s", "icna"] == 50
    assert result.loc["s", "n_segments"] == 1
    assert result.loc["s", "fga"] == 1.0  # denominator without MT and NA segments


def test_sample_without_scored_segments_is_kept_with_nan():
    segs = _segments([("a", "1", 1, 100, 0.5), ("b", "X", 1, 100, 0.5), ("c", "1", 1, 9, np.nan)])
    result = icna_scores(segs, exclude_chromosomes=["X"])
    assert result.index.tolist() == ["a", "b", "c"]  # order of first appearance
    assert np.isnan(result.loc["b", "icna"]) and np.isnan(result.loc["b", "fga"])
    assert result.loc["b", "n_segments"] == 0 and result.loc["c", "n_segments"] == 0
    assert result["n_segments"].dtype == np.int64


def test_fga_is_length_fraction_strictly_above_threshold():
    segs = _segments(
        [
            ("s", "1", 1, 100, 0.2),  # |v| == threshold: not altered
            ("s", "1", 101, 400, -0.25),  # altered, 300 bases
            ("s", "2", 1, 600, 0.0),
        ]
    )
    assert icna_scores(segs).loc["s", "fga"] == pytest.approx(300 / 1000)
    assert icna_scores(segs, fga_threshold=0.1).loc["s", "fga"] == pytest.approx(400 / 1000)
    # FGA always uses log2 values, also when ICNA is linear
    assert icna_scores(segs, value="linear").loc["s", "fga"] == pytest.approx(0.3)


def test_input_table_is_not_modified():
    segs = _segments([("s", "1", 1, 100, -0.5), ("s", "MT", 1, 10, 1.0)])
    before = segs.copy()
    icna_scores(segs, value="linear", exclude_chromosomes=["X"])
    pd.testing.assert_frame_equal(segs, before)


# ---------------------------------------------------------------------------------------
# hand computations on real segments
# ---------------------------------------------------------------------------------------


def _loop_icna(path: Path) -> dict[str, tuple[float, float, int]]:
    """ICNA, FGA and n_segments the obvious way: a loop over the csv rows."""
    icna: dict[str, float] = {}
    altered: dict[str, float] = {}
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)
        for sample, _chrom, start, end, _marks, mean in reader:
            length = int(end) - int(start) + 1
            icna[sample] = icna.get(sample, 0.0) + length * abs(float(mean))
            altered[sample] = altered.get(sample, 0.0) + (length if abs(float(mean)) > 0.2 else 0)
            total[sample] = total.get(sample, 0.0) + length
            count[sample] = count.get(sample, 0) + 1
    return {s: (icna[s], altered[s] / total[s], count[s]) for s in icna}


def test_acc_subset_matches_a_plain_loop():
    result = icna_scores(read_seg(DATA / "acc_subset.seg"))
    expected = _loop_icna(DATA / "acc_subset.seg")
    assert sorted(result.index) == sorted(expected)
    for sample, (icna, fga, n) in expected.items():
        assert result.loc[sample, "icna"] == pytest.approx(icna, rel=1e-12)
        assert result.loc[sample, "fga"] == pytest.approx(fga, rel=1e-12)
        assert result.loc[sample, "n_segments"] == n
    # a real tumour with a lot of arm-level change scores far above its matched normal
    assert (
        result.loc["TCGA-OR-A5J2-01A-11D-A29H-01", "icna"]
        > 100 * result.loc["TCGA-OR-A5J2-10A-01D-A29K-01", "icna"]
    )


AWK_FILES = [
    "acc_subset.seg",
    "example_seg.txt",
    "issue192_tumor.seg",
    "coriell_DNAcopy_CBS_segments_DERIVED.seg",
    "brca_gdc_subset.seg.tsv",
    "example_gatk4_modelfinal.seg.gz",
]


@pytest.mark.parametrize("name", AWK_FILES)
def test_all_settings_match_the_awk_reference(name):
    reference = {s: r for (f, s), r in _awk_reference().items() if f == name}
    assert reference, f"no reference rows for {name}"
    segs = read_seg(DATA / name)
    runs = {
        "icna_log2": icna_scores(segs),
        "icna_linear": icna_scores(segs, value="linear"),
        "icna_log2_noX": icna_scores(segs, exclude_chromosomes=["X"]),
        "icna_log2_min0.3": icna_scores(segs, min_abs_change=0.3),
    }
    base = runs["icna_log2"]
    assert sorted(base.index) == sorted(reference)
    for sample, ref in reference.items():
        for column, result in runs.items():
            assert result.loc[sample, "icna"] == pytest.approx(ref[column], rel=1e-12, abs=1e-9)
        assert base.loc[sample, "fga"] == pytest.approx(ref["fga"], rel=1e-12, abs=1e-15)
        assert base.loc[sample, "n_segments"] == ref["n_segments"]


def test_purecn_issue192_by_hand():
    # the 6 segments of sample "tumor", lengths and |seg.mean| typed from the file
    by_hand = (
        (57961455 - 105930 + 1) * 0.0372507
        + (80343975 - 61680889 + 1) * 0.163111
        + (136720674 - 81495027 + 1) * 0.648407
        + (151618297 - 136791606 + 1) * 0.119727
        + (152269420 - 151809054 + 1) * 0.736822
        + (170640583 - 152277886 + 1) * 0.111717
    )
    result = icna_scores(read_seg(DATA / "issue192_tumor.seg"))
    assert result.loc["tumor", "icna"] == pytest.approx(by_hand, rel=1e-13)
    assert result.loc["tumor", "n_segments"] == 6


# ---------------------------------------------------------------------------------------
# settings and errors
# ---------------------------------------------------------------------------------------


def test_settings_are_frozen_and_canonical():
    s = IcnaSettings(exclude_chromosomes=("chrX", "23", "y"), min_abs_change=1)
    assert s.exclude_chromosomes == ("X", "Y")
    assert s.min_abs_change == 1.0 and isinstance(s.min_abs_change, float)
    assert s.as_dict() == {
        "value": "log2",
        "min_abs_change": 1.0,
        "exclude_chromosomes": ["X", "Y"],
        "fga_threshold": 0.2,
    }
    with pytest.raises(AttributeError):
        s.value = "linear"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"value": "log10"}, r"value='log10'"),
        ({"min_abs_change": -0.1}, r"min_abs_change=-0\.1"),
        ({"fga_threshold": float("nan")}, r"fga_threshold=nan"),
        ({"exclude_chromosomes": ["chr99"]}, r"'chr99' is not a chromosome"),
    ],
)
def test_bad_settings_raise(kwargs, pattern):
    with pytest.raises(UserInputError, match=pattern):
        icna_scores(_segments([("s", "1", 1, 2, 0.1)]), **kwargs)


def test_bad_tables_raise():
    with pytest.raises(UserInputError, match=r"missing column\(s\) value"):
        icna_scores(_segments([("s", "1", 1, 2, 0.1)]).drop(columns="value"))
    with pytest.raises(UserInputError, match=r"overlap"):
        icna_scores(_segments([("s", "1", 1, 200, 0.1), ("s", "1", 100, 300, 0.1)]))
    with pytest.raises(UserInputError, match=r"row 1: value is infinite"):
        icna_scores(_segments([("s", "1", 1, 2, 0.1), ("s", "2", 1, 2, -np.inf)]))


# ---------------------------------------------------------------------------------------
# TCGA barcodes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("barcode", "is_tcga", "sample_type", "tumour"),
    [
        ("TCGA-OR-A5J1-01A-11D-A29H-01", True, 1, True),
        ("TCGA-OR-A5J1-10A-01D-A29K-01", True, 10, False),
        ("TCGA-OR-A5K9-11A-11D-A29K-01", True, 11, False),
        ("TCGA-AB-2803-03A", True, 3, True),
        ("TCGA-EE-A2GJ-06", True, 6, True),
        ("TCGA.OR.A5J1.01A", True, 1, True),  # R make.names form
        ("tcga-or-a5j1-02a", True, 2, True),
        ("TCGA-OR-A5J1-20A", True, 20, False),
        ("TCGA-OR-A5J1", False, None, False),  # patient barcode: no sample type
        ("Coriell.05296", False, None, False),
        ("Sample1", False, None, False),
    ],
)
def test_tcga_helpers(barcode, is_tcga, sample_type, tumour):
    assert is_tcga_barcode([barcode]).tolist() == [is_tcga]
    code = tcga_sample_type([barcode])[0]
    assert (code is pd.NA) if sample_type is None else (code == sample_type)
    assert is_tcga_tumor([barcode]).tolist() == [tumour]


def test_tcga_tumour_filter_on_real_ids():
    ids = pd.unique(read_seg(DATA / "acc_subset.seg")["sample"])
    assert is_tcga_barcode(ids).all()
    assert sorted(ids[is_tcga_tumor(ids)]) == [
        "TCGA-OR-A5J2-01A-11D-A29H-01",
        "TCGA-OR-A5JU-01A-11D-A309-01",
        "TCGA-OR-A5L8-01A-11D-A29H-01",
    ]


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------


@st.composite
def segment_tables(draw):
    """Random non-overlapping segments for 1-3 samples on a few chromosomes."""
    rows = []
    for sample in ["a", "b", "c"][: draw(st.integers(1, 3))]:
        for chrom in draw(st.sets(st.sampled_from(["1", "2", "X"]), min_size=1)):
            position = draw(st.integers(1, 1000))
            for _ in range(draw(st.integers(1, 5))):
                length = draw(st.integers(1, 10**6))
                value = draw(st.floats(-8, 3, allow_nan=False, width=32))
                rows.append((sample, chrom, position, position + length - 1, value))
                position += length + draw(st.integers(0, 1000))
    return _segments(rows)


@settings(max_examples=60, deadline=None)
@given(
    table=segment_tables(),
    seed=st.integers(0, 2**32 - 1),
    value=st.sampled_from(["log2", "linear"]),
)
def test_row_order_does_not_change_scores(table, seed, value):
    shuffled = table.sample(frac=1.0, random_state=seed % (2**32 - 1))
    a = icna_scores(table, value=value).sort_index()
    b = icna_scores(shuffled, value=value).sort_index()
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(table=segment_tables(), data=st.data())
def test_splitting_a_segment_keeps_icna_and_adds_one_segment(table, data):
    i = data.draw(st.integers(0, len(table) - 1))
    row = table.iloc[i]
    if row["end"] == row["start"]:
        return
    cut = data.draw(st.integers(int(row["start"]), int(row["end"]) - 1))
    left = row.copy()
    left["end"] = cut
    right = row.copy()
    right["start"] = cut + 1
    split = pd.concat([table.drop(index=table.index[i]), pd.DataFrame([left, right])])
    split = split.astype(table.dtypes.to_dict()).reset_index(drop=True)
    before, after = icna_scores(table), icna_scores(split).reindex(icna_scores(table).index)
    np.testing.assert_allclose(after["icna"], before["icna"], rtol=1e-12)
    np.testing.assert_allclose(after["fga"], before["fga"], rtol=1e-12)
    sample = row["sample"]
    assert after.loc[sample, "n_segments"] == before.loc[sample, "n_segments"] + 1


@settings(max_examples=40, deadline=None)
@given(table=segment_tables(), scale=st.floats(0.125, 8))
def test_log2_icna_is_linear_in_the_values(table, scale):
    scaled = table.assign(value=table["value"] * scale)
    np.testing.assert_allclose(
        icna_scores(scaled)["icna"], scale * icna_scores(table)["icna"], rtol=1e-12
    )
