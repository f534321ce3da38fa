"""Tests for exprlmm.io.expression: formats, orientation detection, annotation columns."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from exprlmm.errors import UserInputError
from exprlmm.io.expression import read_expression, read_expression_data
from exprlmm.io.samples import read_sample_sheet

DATA = Path(__file__).resolve().parents[1] / "data" / "expression"
ACC = DATA / "acc_expression.tsv"
ACC_SHEET = DATA / "acc_samples.tsv"


def acc_table() -> pd.DataFrame:
    """The ACC fixture as pandas reads it (genes × [gene_symbol, entrez_id, samples...])."""
    return pd.read_csv(ACC, sep="\t")


def acc_expected() -> pd.DataFrame:
    """Samples × genes as the reader should return it."""
    table = acc_table()
    values = table.iloc[:, 2:]
    return pd.DataFrame(
        values.to_numpy(dtype=float).T,
        index=pd.Index(list(values.columns), name="sample"),
        columns=pd.Index(table["gene_symbol"].tolist(), name="gene"),
    )


def sheet_ids() -> list[str]:
    return list(read_sample_sheet(ACC_SHEET).index)


def write_gct(table: pd.DataFrame, path: Path, version: str) -> None:
    """Write genes-rows ``table`` ([gene_symbol, entrez_id, samples...]) as GCT."""
    samples = list(table.columns[2:])
    values = table[samples]
    lines = []
    if version == "1.2":
        lines += [
            "#1.2",
            f"{len(table)}\t{len(samples)}",
            "\t".join(["Name", "Description", *samples]),
        ]
        for (_, row), vals in zip(table.iterrows(), values.to_numpy(), strict=True):
            lines.append(
                "\t".join(
                    [row["gene_symbol"], str(row["entrez_id"]), *(repr(float(v)) for v in vals)]
                )
            )
    else:
        lines += [
            "#1.3",
            f"{len(table)}\t{len(samples)}\t1\t2",
            "\t".join(["id", "entrez_id", *samples]),
            "\t".join(["sample_type", "na", *["tumour"] * len(samples)]),
            "\t".join(["plate", "na", *["A29S"] * len(samples)]),
        ]
        for (_, row), vals in zip(table.iterrows(), values.to_numpy(), strict=True):
            lines.append(
                "\t".join(
                    [row["gene_symbol"], str(row["entrez_id"]), *(repr(float(v)) for v in vals)]
                )
            )
    path.write_text("\n".join(lines) + "\n")


def write_variant(kind: str, tmp_path: Path) -> Path:
    table = acc_table()
    if kind == "tsv":
        return ACC
    if kind == "tsv.gz":
        path = tmp_path / "acc.tsv.gz"
        with gzip.open(path, "wt") as fh:
            fh.write(ACC.read_text())
        return path
    if kind == "csv":
        path = tmp_path / "acc.csv"
        table.to_csv(path, index=False)
        return path
    if kind == "txt":
        path = tmp_path / "acc.txt"
        table.to_csv(path, sep="\t", index=False)
        return path
    if kind == "parquet":
        path = tmp_path / "acc.parquet"
        table.to_parquet(path, index=False)
        return path
    if kind == "parquet-index":
        path = tmp_path / "acc_index.parquet"
        table.set_index("gene_symbol").to_parquet(path)
        return path
    if kind in ("gct-1.2", "gct-1.3"):
        path = tmp_path / f"acc_{kind[-3:]}.gct"
        write_gct(table, path, kind[-3:])
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["tsv", "tsv.gz", "csv", "txt", "parquet", "parquet-index", "gct-1.2", "gct-1.3"]
)
def test_formats_read_identically(kind, tmp_path):
    path = write_variant(kind, tmp_path)
    data = read_expression_data(path, sample_ids=sheet_ids())
    pd.testing.assert_frame_equal(data.matrix, acc_expected())
    assert data.orientation == "genes-rows"
    assert data.n_sample_ids_matched == 9
    entrez = data.genes.iloc[:, 0].astype(int).tolist()  # entrez_id (GCT 1.2: Description)
    assert entrez == acc_table()["entrez_id"].tolist()
    assert data.matrix.to_numpy().flags.c_contiguous


def test_h5ad_reads_identically_with_gene_column(tmp_path):
    table = acc_table()
    expected = acc_expected()
    path = tmp_path / "acc.h5ad"
    adata = anndata.AnnData(
        X=expected.to_numpy(),
        obs=pd.DataFrame(index=list(expected.index)),
        var=pd.DataFrame(
            {"gene_symbol": table["gene_symbol"].tolist()},
            index=table["entrez_id"].astype(str).tolist(),
        ),
    )
    adata.write_h5ad(path)
    data = read_expression_data(path, gene_column="gene_symbol", sample_ids=sheet_ids())
    pd.testing.assert_frame_equal(data.matrix, expected)
    assert data.orientation == "genes-columns" and data.orientation_source == "sample IDs"
    plain = read_expression_data(path)  # var_names = entrez ids; AnnData convention
    assert plain.orientation_source == "format"
    assert plain.matrix.columns[0] == str(table["entrez_id"].iloc[0])


def test_h5ad_transposed_and_sparse_detected_from_ids(tmp_path):
    expected = acc_expected()
    genes = [f"g{i}" for i in range(expected.shape[1])]
    path = tmp_path / "t.h5ad"
    anndata.AnnData(
        X=scipy.sparse.csr_matrix(expected.to_numpy().T),
        obs=pd.DataFrame(index=genes),
        var=pd.DataFrame(index=list(expected.index)),
    ).write_h5ad(path)
    data = read_expression_data(path, sample_ids=sheet_ids())
    assert data.orientation == "genes-rows"
    np.testing.assert_array_equal(data.matrix.to_numpy(), expected.to_numpy())
    with pytest.raises(UserInputError, match=r"gene_column 'nope' is not a column of \.obs"):
        read_expression_data(path, sample_ids=sheet_ids(), gene_column="nope")


def test_acc_annotation_and_orientation():
    data = read_expression_data(ACC, sample_ids=sheet_ids())
    assert data.orientation_source == "sample IDs"
    assert data.annotation_columns == ("entrez_id",)
    assert data.matrix.index.name == "sample" and data.matrix.columns.name == "gene"
    assert data.matrix.dtypes.unique().tolist() == [np.float64]
    assert list(data.matrix.columns).count("SLC35E2") == 2  # repeats kept by the reader
    assert list(data.matrix.columns).count("?") == 3
    assert data.matrix.shape == (9, 26)


def test_without_sample_ids_shape_and_annotation_names():
    data = read_expression_data(ACC)
    assert data.orientation == "genes-rows" and data.orientation_source == "shape"
    assert data.annotation_columns == ("entrez_id",)  # recognised by its name
    pd.testing.assert_frame_equal(read_expression(ACC), acc_expected())


def test_entrez_as_gene_column_makes_symbol_annotation():
    data = read_expression_data(ACC, gene_column="entrez_id", sample_ids=sheet_ids())
    assert data.annotation_columns == ("gene_symbol",)
    assert data.matrix.columns[0] == "100130426"
    assert data.genes["gene_symbol"].iloc[0] == "?"


def test_numeric_unknown_annotation_becomes_unmatched_sample(tmp_path):
    table = acc_table()
    table.insert(2, "gc_content", np.linspace(0.3, 0.6, len(table)))
    path = tmp_path / "e.tsv"
    table.to_csv(path, sep="\t", index=False)
    data = read_expression_data(path, sample_ids=sheet_ids())
    assert "gc_content" in data.matrix.index  # dropped later as "not in sample sheet"
    data = read_expression_data(path, sample_ids=sheet_ids(), annotation_columns=["gc_content"])
    assert "gc_content" not in data.matrix.index
    assert data.annotation_columns == ("entrez_id", "gc_content")


def test_forced_orientation_transposes():
    path = DATA / "bladder_expression.tsv"
    data = read_expression_data(path, orientation="genes-columns")
    assert data.orientation_source == "argument"
    assert data.matrix.shape == (6, 5)  # probes are now "samples"
    assert data.matrix.index[0] == "1007_s_at"
    with pytest.raises(UserInputError, match=r"sample ID '\?' appears more than once"):
        read_expression(ACC, orientation="genes-columns")


def test_samples_in_rows_rat():
    sheet = read_sample_sheet(DATA / "rat_samples.tsv")
    data = read_expression_data(
        DATA / "rat_expression_samples_x_probes.tsv", sample_ids=sheet.index
    )
    # IDs do not match the sheet (ID202 vs 202): shape decides, samples are the rows
    assert data.orientation == "genes-columns"
    assert data.orientation_source.startswith("shape")
    assert data.matrix.index[0] == "ID202" and data.matrix.columns[0] == "A_43_P14555"
    assert data.matrix.iloc[0, 3] == pytest.approx(3e-05)  # field "  3e-05"


def test_samples_in_rows_detected_by_ids_rat(tmp_path):
    data = read_expression_data(
        DATA / "rat_expression_samples_x_probes.tsv", sample_ids=["ID202", "ID203"]
    )
    assert data.orientation == "genes-columns" and data.orientation_source == "sample IDs"


def test_mouse_phenotype_column_in_expression_file():
    path = DATA / "mouse_weight_expression.tsv"
    ids = read_sample_sheet(path).index
    data = read_expression_data(path, sample_ids=ids)
    assert "weight" in data.matrix.columns  # numeric: a gene unless we are told otherwise
    data = read_expression_data(path, sample_ids=ids, phenotype_columns=["weight", "absent"])
    assert "weight" not in data.matrix.columns
    assert data.annotation_columns == ("weight",) and data.matrix.shape == (5, 6)


def test_nutrimouse_text_columns_are_annotation():
    data = read_expression_data(
        DATA / "nutrimouse_expression.tsv",
        sample_ids=read_sample_sheet(DATA / "nutrimouse_fatty_acids.tsv").index,
    )
    assert data.orientation == "genes-columns"
    assert data.annotation_columns == ("genotype", "diet")
    assert data.matrix.index.tolist() == [str(i) for i in range(1, 9)]
    assert data.matrix.loc["1", "X36b4"] == -0.42


def test_bladder_leading_spaces_and_cel_ids():
    data = read_expression_data(
        DATA / "bladder_expression.tsv",
        sample_ids=read_sample_sheet(DATA / "bladder_samples.tsv").index,
    )
    assert data.orientation_source == "sample IDs"
    assert data.matrix.loc["GSM71020.CEL", "1053_at"] == 5.0636


def test_geuvadis_integer_counts_become_float():
    data = read_expression_data(
        DATA / "geuvadis_counts.tsv",
        sample_ids=read_sample_sheet(DATA / "geuvadis_samples.tsv").index,
    )
    assert data.matrix.dtypes.unique().tolist() == [np.float64]
    assert data.matrix.loc["NA20502", "ENSG00000000419"] == 339.0


def test_r_style_header(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("S1\tS2\tS3\ng1\t1\t2\t3\ng2\t4\t5\t6\ng3\t7\t8\t9\ng4\t1\t1\t1\n")
    data = read_expression_data(path, sample_ids=["S1", "S2", "S3"])
    assert data.matrix.index.tolist() == ["S1", "S2", "S3"]
    assert data.matrix.columns.tolist() == ["g1", "g2", "g3", "g4"]


def test_missing_and_infinite_cells(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("gene\tS1\tS2\ng1\tNA\t2\ng2\t\tinf\ng3\t-Inf\tNaN\n")
    m = read_expression(path, sample_ids=["S1", "S2"]).to_numpy()  # samples × genes
    assert np.isnan(m[0, 0]) and np.isnan(m[0, 1]) and m[0, 2] == -np.inf
    assert m[1, 0] == 2 and m[1, 1] == np.inf and np.isnan(m[1, 2])


def test_gene_label_na_is_kept_as_text(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("gene\tS1\tS2\n\t1\t2\nNA\t3\t4\n")
    m = read_expression(path, sample_ids=["S1", "S2"])
    assert m.columns.tolist() == ["", ""]  # both unnamed: the cohort builder drops them


# ------------------------------------------------------------------------------ errors


def test_non_numeric_value_names_column_line_and_value(tmp_path):
    text = ACC.read_text().splitlines()
    fields = text[5].split("\t")
    fields[4] = "12,5"
    text[5] = "\t".join(fields)
    path = tmp_path / "bad.tsv"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(UserInputError) as err:
        read_expression(path, sample_ids=sheet_ids())
    msg = str(err.value)
    assert "bad.tsv" in msg and "'TCGA-OR-A5J3-01A-11R-A29S-07'" in msg and "line 6" in msg
    assert "'12,5'" in msg and "decimal comma" in msg and "annotation_columns" in msg


def test_second_header_line_is_reported(tmp_path):
    path = tmp_path / "firehose.tsv"
    path.write_text(
        "Hybridization REF\tS1\tS2\ngene_id\tnormalized_count\tnormalized_count\ng1\t1\t2\n"
    )
    with pytest.raises(UserInputError, match=r"column 'S1', line 2 .*'normalized_count'"):
        read_expression(path, sample_ids=["S1", "S2"])


def test_text_only_file_has_no_values(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("gene\tdesc\ng1\tfoo\ng2\tbar\n")
    with pytest.raises(UserInputError, match="no numeric expression column"):
        read_expression(path)


def test_one_column(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("gene\ng1\ng2\n")
    with pytest.raises(UserInputError, match="only one column"):
        read_expression(path)


def test_csv_read_as_tsv(tmp_path):
    path = tmp_path / "e.tsv"
    acc_table().to_csv(path, index=False)
    with pytest.raises(UserInputError, match=r"e\.tsv: the header has a single column.*comma"):
        read_expression(path)


def test_duplicate_sample_columns(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("gene\tS1\tS1\ng1\t1\t2\n")
    with pytest.raises(UserInputError, match=r"'S1'.*more than once.*one column per sample"):
        read_expression(path, sample_ids=["S1"])


def test_duplicate_sample_rows(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("id\tg1\tg2\tg3\nS1\t1\t2\t3\nS1\t4\t5\t6\n")
    with pytest.raises(
        UserInputError, match=r"sample ID 'S1' appears more than once \(line 2, line 3\)"
    ):
        read_expression(path, sample_ids=["S1"])


def test_empty_sample_id_in_rows(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("id\tg1\tg2\tg3\nS1\t1\t2\t3\n\t4\t5\t6\n")
    with pytest.raises(UserInputError, match=r"empty sample ID .* line 3"):
        read_expression(path, sample_ids=["S1"])


def test_ambiguous_orientation(tmp_path):
    path = tmp_path / "e.tsv"
    path.write_text("id\tA\tB\nA\t1\t2\nB\t3\t4\n")
    with pytest.raises(UserInputError, match="ambiguous; pass orientation"):
        read_expression(path, sample_ids=["A", "B"])
    assert read_expression(path, sample_ids=["A", "B"], orientation="genes-rows").shape == (2, 2)


def test_bad_options_and_files(tmp_path):
    with pytest.raises(UserInputError, match="orientation='sideways' is not valid"):
        read_expression(ACC, orientation="sideways")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="unknown expression format 'xlsx'"):
        read_expression(ACC, fmt="xlsx")  # type: ignore[arg-type]
    odd = tmp_path / "e.xlsx"
    odd.write_text("x")
    with pytest.raises(UserInputError, match=r"e\.xlsx: cannot tell the expression format"):
        read_expression(odd)
    with pytest.raises(UserInputError, match="not found"):
        read_expression(tmp_path / "missing.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(UserInputError, match="file is empty"):
        read_expression(empty)
    header_only = tmp_path / "h.tsv"
    header_only.write_text("gene\tS1\n")
    with pytest.raises(UserInputError, match="only a header line"):
        read_expression(header_only)
    with pytest.raises(UserInputError, match=r"annotation column\(s\) 'nope' not found"):
        read_expression(ACC, annotation_columns=["nope"])
    with pytest.raises(UserInputError, match="gene column 'nope' not found"):
        read_expression(ACC, gene_column="nope")
    gzpq = tmp_path / "e.parquet.gz"
    gzpq.write_bytes(b"x")
    with pytest.raises(UserInputError, match="cannot be compressed"):
        read_expression(gzpq)
    notpq = tmp_path / "e.parquet"
    notpq.write_text("not parquet")
    with pytest.raises(UserInputError, match=r"e\.parquet: cannot be read as parquet"):
        read_expression(notpq)
    noth5 = tmp_path / "e.h5ad"
    noth5.write_text("not hdf5")
    with pytest.raises(UserInputError, match=r"e\.h5ad: cannot be read as AnnData"):
        read_expression(noth5)


def test_gct_errors(tmp_path):
    table = acc_table()
    path = tmp_path / "e.gct"
    write_gct(table, path, "1.2")
    lines = path.read_text().splitlines()
    with pytest.raises(UserInputError, match="GCT files always hold genes in rows"):
        read_expression(path, orientation="genes-columns")
    bad = tmp_path / "bad.gct"
    bad.write_text("\n".join(["#1.4", *lines[1:]]) + "\n")
    with pytest.raises(UserInputError, match=r"expected '#1\.2' or '#1\.3'"):
        read_expression(bad)
    bad.write_text("\n".join([lines[0], "26\t9\t1", *lines[2:]]) + "\n")
    with pytest.raises(UserInputError, match="line 2 needs 2 integers"):
        read_expression(bad)
    bad.write_text("\n".join([lines[0], "28\t9", *lines[2:]]) + "\n")
    with pytest.raises(UserInputError, match="declares 28 rows but the file has 26"):
        read_expression(bad)
    bad.write_text("\n".join([lines[0], "26\t8", *lines[2:]]) + "\n")
    with pytest.raises(UserInputError, match=r"header \(line 3\) has 11 fields"):
        read_expression(bad)
    bad.write_text("\n".join([lines[0], "x y", *lines[2:]]) + "\n")
    with pytest.raises(UserInputError, match="dimensions as integers"):
        read_expression(bad)
    fields = lines[5].split("\t")
    fields[3] = "oops"
    bad.write_text("\n".join([*lines[:5], "\t".join(fields), *lines[6:]]) + "\n")
    with pytest.raises(UserInputError, match=r"line 6 has the non-numeric value 'oops'"):
        read_expression(bad)


def test_gct_gene_column_can_be_annotation(tmp_path):
    path = tmp_path / "e.gct"
    write_gct(acc_table(), path, "1.3")
    data = read_expression_data(path, gene_column="entrez_id")
    assert data.matrix.columns[0] == "100130426"
    assert data.annotation_columns == ("id",)
    assert data.orientation_source == "format"


def test_explicit_format_fixes_the_delimiter(tmp_path):
    path = tmp_path / "expr.dat"
    path.write_text("gene\tS1\tS2\ng1\t1\t2\ng2\t3\t4\ng3\t5\t6\n")
    assert read_expression(path, fmt="tsv").shape == (2, 3)
    with pytest.raises(UserInputError, match="looks tab-separated"):
        read_expression(path, fmt="csv")
