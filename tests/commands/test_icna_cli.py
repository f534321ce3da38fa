"""Tests for ``exprlmm icna`` through click's CliRunner on the real CLI group."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from exprlmm import __version__
from exprlmm.cli import cli

TESTS = Path(__file__).resolve().parent.parent
DATA = TESTS / "data" / "seg"
ACC = DATA / "acc_subset.seg"
AWK = TESTS / "reference" / "icna" / "icna_awk.tsv"
ACC_TUMOURS = [
    "TCGA-OR-A5J2-01A-11D-A29H-01",
    "TCGA-OR-A5JU-01A-11D-A309-01",
    "TCGA-OR-A5L8-01A-11D-A29H-01",
]


def _run(*args: str):
    return CliRunner().invoke(cli, ["icna", *map(str, args)], catch_exceptions=False)


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _awk(file: str) -> dict[str, dict[str, str]]:
    return {r["sample"]: r for r in _read_tsv(AWK) if r["file"] == file}


def test_acc_default_keeps_tumours_and_matches_awk(tmp_path):
    out = tmp_path / "icna.tsv"
    result = _run(ACC, "-o", out)
    assert result.exit_code == 0, result.output
    rows = _read_tsv(out)
    assert list(rows[0]) == ["sample", "icna", "fga", "n_segments"]
    assert [r["sample"] for r in rows] == sorted(ACC_TUMOURS, key=[*_awk("acc_subset.seg")].index)
    reference = _awk("acc_subset.seg")
    for row in rows:
        ref = reference[row["sample"]]
        assert float(row["icna"]) == pytest.approx(float(ref["icna_log2"]), rel=1e-12)
        assert float(row["fga"]) == pytest.approx(float(ref["fga"]), rel=1e-12)
        assert int(row["n_segments"]) == int(ref["n_segments"])
    assert "kept 3, dropped 3" in result.output
    assert "2 of type 10, 1 of type 11" in result.output

    record = json.loads((tmp_path / "icna.tsv.run.json").read_text())
    assert record["exprlmm_version"] == __version__
    assert record["input"]["sha256"] == hashlib.sha256(ACC.read_bytes()).hexdigest()
    assert record["input"]["path"] == str(ACC)
    assert record["settings"] == {
        "value": "log2",
        "min_abs_change": 0.0,
        "exclude_chromosomes": [],
        "fga_threshold": 0.2,
        "never_scored_chromosomes": ["MT"],
        "missing_values": "skipped",
        "tumor_only": True,
        "tumor_only_from": "auto",
    }
    counts = record["counts"]
    assert counts["segments_read"] == 384 and counts["samples_read"] == 6
    assert counts["samples_written"] == 3 and counts["samples_dropped_not_tumor"] == 3
    assert counts["dropped_sample_types"] == {"10": 2, "11": 1}
    assert counts["segments_scored"] == 131 + 53 + 47
    # nothing but the two outputs in the folder (no temporary files left behind)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["icna.tsv", "icna.tsv.run.json"]


@pytest.mark.parametrize(
    ("options", "column"),
    [
        (["--value", "linear"], "icna_linear"),
        (["--exclude-chromosomes", "X"], "icna_log2_noX"),
        (["--exclude-chromosomes", "chrX,chrY"], "icna_log2_noX"),  # no Y in the file
        (["--min-abs-change", "0.3"], "icna_log2_min0.3"),
    ],
)
def test_options_match_awk(tmp_path, options, column):
    out = tmp_path / "icna.tsv"
    result = _run(ACC, "-o", out, "--no-tumor-only", *options)
    assert result.exit_code == 0, result.output
    rows = _read_tsv(out)
    reference = _awk("acc_subset.seg")
    assert len(rows) == 6 and "no tumour filter" in result.output
    for row in rows:
        assert float(row["icna"]) == pytest.approx(
            float(reference[row["sample"]][column]), rel=1e-12
        )


def test_fga_threshold_option(tmp_path):
    out = tmp_path / "icna.tsv"
    assert _run(ACC, "-o", out, "--fga-threshold", "100").exit_code == 0
    assert {float(r["fga"]) for r in _read_tsv(out)} == {0.0}
    record = json.loads((tmp_path / "icna.tsv.run.json").read_text())
    assert record["settings"]["fga_threshold"] == 100.0


def test_gatk_file_auto_mode_without_tcga_barcodes(tmp_path):
    out = tmp_path / "gatk.tsv"
    result = _run(DATA / "example_gatk4_modelfinal.seg.gz", "-o", out)
    assert result.exit_code == 0, result.output
    (row,) = _read_tsv(out)
    ref = _awk("example_gatk4_modelfinal.seg.gz")["Sample1"]
    assert row["sample"] == "Sample1"
    assert float(row["icna"]) == pytest.approx(float(ref["icna_log2"]), rel=1e-12)
    assert "LOG2_COPY_RATIO_POSTERIOR_50" in result.output


def test_missing_values_and_mt_are_skipped_and_reported(tmp_path):
    seg = tmp_path / "in.seg"
    seg.write_text(
        "ID\tchrom\tloc.start\tloc.end\tnum.mark\tseg.mean\n"
        "s 1\t1\t1\t100\t5\t0.5\n"
        "s 1\t2\t1\t100\t5\tNA\n"
        "s 1\tchrM\t1\t16569\t5\t1.5\n"
        "s 2\t1\t1\t100\t5\tNA\n"
    )
    out = tmp_path / "out.tsv"
    result = _run(seg, "-o", out)
    assert result.exit_code == 0, result.output
    assert "2 with missing value, 1 on MT" in result.output
    assert "1 samples have no scored segment" in result.output
    rows = _read_tsv(out)
    assert rows == [
        {"sample": "s 1", "icna": "50.0", "fga": "1.0", "n_segments": "1"},
        {"sample": "s 2", "icna": "NA", "fga": "NA", "n_segments": "0"},
    ]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("ID\tchrom\tloc.start\tloc.end\tseg.mean\ns\t1\t200\t100\t0.1\n", r"line 2: end"),
        (
            "ID\tchrom\tloc.start\tloc.end\tseg.mean\ns\t1\t1\t100\t0.1\ns\t1\t50\t150\t0.1\n",
            r"line 2 and line 3 overlap",
        ),
        ("ID\tchrom\tloc.start\tloc.end\tseg.mean\ns\t1\t1\t100\tx\n", r"line 2: value"),
        (
            "ID\tchrom\tloc.start\tloc.end\tseg.mean\ns\tchrUn_x\t1\t100\t0.1\n",
            r"line 2: unknown chromosome",
        ),
    ],
)
def test_bad_input_exits_2_without_output(tmp_path, text, pattern):
    seg = tmp_path / "bad.seg"
    seg.write_text(text)
    out = tmp_path / "out" / "icna.tsv"
    result = CliRunner().invoke(cli, ["icna", str(seg), "-o", str(out)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "bad.seg" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert re.search(pattern, result.output), result.output
    assert not out.exists() and not Path(str(out) + ".run.json").exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_error_leaves_an_existing_output_untouched(tmp_path):
    out = tmp_path / "icna.tsv"
    out.write_text("previous result\n")
    result = CliRunner().invoke(cli, ["icna", str(DATA / "buggy_cnvkit.seg.gz"), "-o", str(out)])
    assert result.exit_code == 2
    assert "buggy_cnvkit.seg.gz, line 2" in result.output
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["icna.tsv"]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--tumor-only"], r"--tumor-only needs TCGA barcodes, but sample 'Sample1'"),
        (["--exclude-chromosomes", "chr99"], r"'chr99' is not a chromosome"),
        (["--value-column", "nope"], r"value column 'nope' not found"),
    ],
)
def test_bad_options_exit_2(tmp_path, args, pattern):
    out = tmp_path / "icna.tsv"
    result = CliRunner().invoke(cli, ["icna", str(DATA / "example_seg.txt"), "-o", str(out), *args])
    assert result.exit_code == 2
    assert re.search(pattern, result.output), result.output
    assert not out.exists()


def test_only_normals_with_tumour_filter_is_an_error(tmp_path):
    seg = tmp_path / "normals.seg"
    lines = ACC.read_text().splitlines()
    seg.write_text("\n".join([lines[0], *(x for x in lines[1:] if "-10A-" in x)]) + "\n")
    result = CliRunner().invoke(cli, ["icna", str(seg), "-o", str(tmp_path / "o.tsv")])
    assert result.exit_code == 2
    assert "none of the 2 TCGA samples is a tumour" in result.output
    ok = _run(seg, "-o", tmp_path / "o.tsv", "--no-tumor-only")
    assert ok.exit_code == 0 and len(_read_tsv(tmp_path / "o.tsv")) == 2


def test_negative_min_abs_change_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        cli, ["icna", str(ACC), "-o", str(tmp_path / "o.tsv"), "--min-abs-change", "-1"]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "o.tsv").exists()


def test_help_documents_the_options():
    result = CliRunner().invoke(cli, ["icna", "--help"])
    assert result.exit_code == 0
    for option in (
        "--value",
        "--value-column",
        "--min-abs-change",
        "--exclude-chromosomes",
        "--fga-threshold",
        "--tumor-only / --no-tumor-only",
    ):
        assert option in result.output


def test_gzip_output_and_refusal_to_overwrite_the_input(tmp_path):
    out = tmp_path / "icna.tsv.gz"
    assert _run(ACC, "-o", out).exit_code == 0
    assert gzip.decompress(out.read_bytes()).decode().startswith("sample\ticna\tfga\tn_segments\n")
    copy = tmp_path / "copy.seg"
    copy.write_bytes(ACC.read_bytes())
    result = CliRunner().invoke(cli, ["icna", str(copy), "-o", str(copy)])
    assert result.exit_code == 2 and "would overwrite the input" in result.output
    assert copy.read_bytes() == ACC.read_bytes()
