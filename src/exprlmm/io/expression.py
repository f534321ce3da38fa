"""Expression-matrix readers: TSV/CSV (optionally compressed), parquet, AnnData ``.h5ad``, GCT.

Every reader returns the matrix as samples × genes (AnnData orientation): a float64
:class:`pandas.DataFrame` indexed by sample ID (``str``, index name ``"sample"``) with one
column per gene (``str``, columns name ``"gene"``). Gene labels are returned as read:
they may repeat or be unnamed (``"?"``, empty); :func:`exprlmm.io.cohort.load_cohort`
applies the duplicate/unnamed policies.

Table layout (TSV/CSV/parquet)
------------------------------
One column holds the row labels (``gene_column``, default the first column): gene IDs
when genes are rows, sample IDs when samples are rows. Every other column is classified:

* listed in ``annotation_columns`` → annotation;
* no non-missing value parses as a number (symbols, descriptions, ``wt``/``ko``) → annotation;
* some values parse and some do not → error naming the column, the line and the value;
* all numeric → expression, except, when genes are rows, a column with a usual gene
  annotation name (``entrez_id``, ``gene_id``, ``length``, ``start`` …, see
  :data:`ANNOTATION_NAMES`) that is not a sample-sheet ID. Numeric annotation columns
  with other names (``entrez_id`` is numeric!) are therefore recognised by *not* matching
  the sample sheet: they are read as samples and dropped by the cohort builder as
  "in the expression file but not in the sample sheet", where the report lists them.

Orientation
-----------
``orientation="auto"`` counts how many header names and how many row labels match the
``sample_ids`` (with the TCGA barcode rule of :func:`exprlmm.io.samples.sample_key`); the
side with matches holds the samples (more matches wins; a tie is an error). Without
``sample_ids``, or when nothing matches, the longer side is taken as genes (expression
files have more genes than samples); GCT always has genes in rows and AnnData defaults to
its own convention (observations = samples).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError
from exprlmm.io.samples import (
    NA_TOKENS,
    base_suffix,
    check_barcode_length,
    check_file,
    column_position,
    duplicate_names,
    first_non_numeric,
    number_hint,
    open_text,
    preview,
    read_delimited,
    sample_key,
    to_numeric_or_none,
)

__all__ = [
    "ANNOTATION_NAMES",
    "ExpressionData",
    "ExpressionFormat",
    "Orientation",
    "read_expression",
    "read_expression_data",
]

Orientation = Literal["auto", "genes-rows", "genes-columns"]
ExpressionFormat = Literal["tsv", "csv", "parquet", "h5ad", "gct"]

#: Column names (compared lower-case, ignoring ``_ . - space``) recognised as gene
#: annotation when genes are rows, even if their values are numeric.
ANNOTATION_NAMES: frozenset[str] = frozenset(
    {
        "entrez",
        "entrezid",
        "entrezgene",
        "entrezgeneid",
        "geneid",
        "gene",
        "genesymbol",
        "symbol",
        "hgncsymbol",
        "genename",
        "name",
        "description",
        "desc",
        "ensembl",
        "ensemblid",
        "ensemblgeneid",
        "transcriptid",
        "probe",
        "probeid",
        "probesetid",
        "chr",
        "chrom",
        "chromosome",
        "start",
        "end",
        "stop",
        "strand",
        "length",
        "genelength",
        "efflength",
        "biotype",
        "genebiotype",
        "genetype",
        "locus",
        "cytoband",
    }
)

_SUFFIX_FORMATS: dict[str, ExpressionFormat] = {
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".h5ad": "h5ad",
    ".gct": "gct",
}


@dataclass(frozen=True)
class ExpressionData:
    """An expression file as read, before any sample or gene filtering.

    Attributes
    ----------
    matrix
        Samples × genes, float64; index ``"sample"`` (str, file order), columns ``"gene"``
        (str, file order; may contain repeats and unnamed genes such as ``"?"`` or ``""``).
        Missing cells are NaN; ``inf`` cells are kept as read.
    genes
        Gene annotation, one row per matrix column in the same order (index = gene label),
        with the annotation columns of a genes-in-rows file (e.g. ``entrez_id``) or the
        ``.var`` columns of an AnnData file; possibly no columns.
    path, fmt
        The file and its format.
    orientation
        ``"genes-rows"`` or ``"genes-columns"``: how the file was laid out.
    orientation_source
        How the orientation was decided: ``"argument"``, ``"sample IDs"``, ``"shape"``,
        ``"shape (no ID matched the sample sheet)"`` or ``"format"`` (GCT; AnnData default).
    annotation_columns
        Names of file columns that were not read as expression values (the row-label
        column excluded).
    n_sample_ids_matched
        How many samples of the file match ``sample_ids`` (None when none were given).
    """

    matrix: pd.DataFrame
    genes: pd.DataFrame
    path: str
    fmt: ExpressionFormat
    orientation: Literal["genes-rows", "genes-columns"]
    orientation_source: str
    annotation_columns: tuple[str, ...] = field(default=())
    n_sample_ids_matched: int | None = None


def _normalise_name(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name).lower()


def _infer_format(path: Path, fmt: str | None) -> ExpressionFormat:
    if fmt is not None:
        if fmt not in get_args(ExpressionFormat):
            raise UserInputError(
                f"unknown expression format {fmt!r}; use one of {', '.join(get_args(ExpressionFormat))}"
            )
        return fmt  # type: ignore[return-value]
    suffix = base_suffix(path)
    if suffix not in _SUFFIX_FORMATS:
        raise UserInputError(
            f"{path.name}: cannot tell the expression format from the suffix {suffix or '(none)'!r};"
            " use .tsv/.csv (optionally .gz), .parquet, .h5ad or .gct, or pass fmt="
        )
    found = _SUFFIX_FORMATS[suffix]
    if found in ("parquet", "h5ad") and base_suffix(path) != path.suffix.lower():
        raise UserInputError(
            f"{path.name}: {found} files cannot be compressed; decompress it first"
        )
    return found


def _check_orientation(orientation: str) -> None:
    if orientation not in get_args(Orientation):
        raise UserInputError(
            f"orientation={orientation!r} is not valid; use 'auto', 'genes-rows' or 'genes-columns'"
        )


def _key_set(sample_ids: Iterable[object] | None, barcode_length: int) -> set[str] | None:
    if sample_ids is None:
        return None
    return {sample_key(s, barcode_length=barcode_length) for s in sample_ids}


def _count_hits(labels: Iterable[object], keys: set[str], barcode_length: int) -> int:
    return sum(sample_key(x, barcode_length=barcode_length) in keys for x in labels)


def _decide_orientation(
    *,
    orientation: Orientation,
    n_rows: int,
    n_cols: int,
    header_ids: Sequence[str],
    row_ids: Sequence[str],
    keys: set[str] | None,
    barcode_length: int,
    name: str,
    label_name: str,
) -> tuple[Literal["genes-rows", "genes-columns"], str]:
    if orientation != "auto":
        return orientation, "argument"  # type: ignore[return-value]
    by_shape: Literal["genes-rows", "genes-columns"] = (
        "genes-rows" if n_rows >= n_cols else "genes-columns"
    )
    if keys is None:
        return by_shape, "shape"
    in_header = _count_hits(header_ids, keys, barcode_length)
    in_rows = _count_hits(row_ids, keys, barcode_length)
    if in_header == 0 and in_rows == 0:
        return by_shape, "shape (no ID matched the sample sheet)"
    if in_header == in_rows:
        raise UserInputError(
            f"{name}: {in_header} column names and {in_rows} values of column {label_name!r} "
            "match sample-sheet IDs, so the orientation is ambiguous; pass "
            "orientation='genes-rows' (samples are columns) or 'genes-columns' (samples are rows)"
        )
    return ("genes-rows", "sample IDs") if in_header > in_rows else ("genes-columns", "sample IDs")


def _is_number_dtype(values: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def _labels(values: pd.Series) -> list[str]:
    """Row labels as stripped strings; missing → ''."""
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append("")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v).strip())
    return out


def _from_table(
    header: list[str],
    frame: pd.DataFrame,
    *,
    name: str,
    row_name: Callable[[int], str],
    orientation: Orientation,
    gene_column: str | int | None,
    annotation_columns: Sequence[str],
    phenotype_columns: Sequence[str],
    keys: set[str] | None,
    barcode_length: int,
    path: Path,
) -> tuple[
    pd.DataFrame, pd.DataFrame, Literal["genes-rows", "genes-columns"], str, tuple[str, ...]
]:
    """Split a positional table into matrix + gene annotation (see the module docstring)."""
    label_pos = column_position(header, gene_column, path, "gene")
    missing = [c for c in annotation_columns if c not in header]
    if missing:
        raise UserInputError(
            f"{name}: annotation column(s) {preview(missing)} not found; columns are: "
            f"{preview(header, 12)}"
        )
    labels = _labels(frame[label_pos])
    others = [i for i in range(len(header)) if i != label_pos]
    if not others:
        raise UserInputError(
            f"{name}: only one column; an expression table needs a label column plus values "
            "(check the delimiter)"
        )
    orient, source = _decide_orientation(
        orientation=orientation,
        n_rows=frame.shape[0],
        n_cols=len(others),
        header_ids=[header[i] for i in others],
        row_ids=labels,
        keys=keys,
        barcode_length=barcode_length,
        name=name,
        label_name=header[label_pos] or "(first column)",
    )
    explicit = set(annotation_columns)
    if orient == "genes-columns":
        explicit |= {c for c in phenotype_columns if c in header}
    value_pos: list[int] = []
    annot_pos: list[int] = []
    converted: dict[int, np.ndarray] = {}  # text columns that parse as numbers
    for i in others:
        col_name = header[i]
        if col_name in explicit:
            annot_pos.append(i)
            continue
        col = frame[i]
        if not _is_number_dtype(col):
            num = to_numeric_or_none(col)
            if num is None:
                text = col.astype("string").str.strip()
                text = text.mask(text.isin(NA_TOKENS))
                if int(pd.to_numeric(text, errors="coerce").notna().sum()) == 0:
                    annot_pos.append(i)
                    continue
                row, value = first_non_numeric(col) or (0, "")
                raise UserInputError(
                    f"{name}: column {col_name!r}, {row_name(row)} has the non-numeric value "
                    f"{value!r}{number_hint(value)}; fix the value or list the column in "
                    "annotation_columns"
                )
            converted[i] = num.to_numpy(dtype="float64")
        if (
            orient == "genes-rows"
            and _normalise_name(col_name) in ANNOTATION_NAMES
            and (keys is None or sample_key(col_name, barcode_length=barcode_length) not in keys)
        ):
            annot_pos.append(i)
            continue
        value_pos.append(i)
    annot_names = tuple(header[i] for i in annot_pos)
    if not value_pos:
        raise UserInputError(
            f"{name}: no numeric expression column found (columns: {preview(header, 8)}); "
            "check the delimiter, gene_column and annotation_columns"
        )
    data = np.empty((frame.shape[0], len(value_pos)), dtype=np.float64)
    direct = [k for k, i in enumerate(value_pos) if i not in converted]
    if direct:
        data[:, direct] = frame.iloc[:, [value_pos[k] for k in direct]].to_numpy(dtype=np.float64)
    for k, i in enumerate(value_pos):
        if i in converted:
            data[:, k] = converted[i]
    value_names = [header[i] for i in value_pos]
    if orient == "genes-rows":
        sample_names, gene_names, matrix = value_names, labels, data.T
        genes = pd.DataFrame(
            {header[i]: frame[i].to_numpy() for i in annot_pos},
            index=pd.Index(gene_names, dtype=object, name="gene"),
        )
        dups = duplicate_names(sample_names)
        if dups:
            raise UserInputError(
                f"{name}: sample column(s) {preview(dups)} appear more than once in the header; "
                "keep one column per sample"
            )
    else:
        sample_names, gene_names, matrix = labels, value_names, data
        empty = [k for k, s in enumerate(sample_names) if s == ""]
        if empty:
            raise UserInputError(
                f"{name}: empty sample ID in column {header[label_pos] or '(first column)'!r} "
                f"at {row_name(empty[0])}; fill it in or delete the row"
            )
        dups = duplicate_names(sample_names)
        if dups:
            first = dups[0]
            rows = [row_name(k) for k, s in enumerate(sample_names) if s == first]
            raise UserInputError(
                f"{name}: sample ID {first!r} appears more than once ({', '.join(rows)}); keep "
                "one row per sample"
            )
        genes = pd.DataFrame(index=pd.Index(gene_names, dtype=object, name="gene"))
    out = pd.DataFrame(
        np.ascontiguousarray(matrix, dtype=np.float64),
        index=pd.Index([str(s) for s in sample_names], dtype=object, name="sample"),
        columns=pd.Index([str(g) for g in gene_names], dtype=object, name="gene"),
    )
    return out, genes, orient, source, annot_names


def _read_text_table(
    path: Path, fmt: ExpressionFormat | None, sep: str | None, gene_column: str | int | None
) -> tuple[list[str], pd.DataFrame]:
    """Delimited text; an explicit ``fmt`` ("tsv"/"csv") fixes the delimiter unless ``sep``."""
    if sep is None and fmt is not None:
        sep = "," if fmt == "csv" else "\t"
    label = gene_column if gene_column is not None else 0
    return read_delimited(path, sep=sep, what="expression file", text_columns=[label])


def _read_parquet(path: Path) -> tuple[list[str], pd.DataFrame]:
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise UserInputError(f"{path.name}: cannot be read as parquet ({exc})") from exc
    if not isinstance(table.index, pd.RangeIndex):
        table = table.reset_index()
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise UserInputError(f"{path.name}: the parquet table is empty; give a table with data")
    header = [str(c).strip() for c in table.columns]
    table = table.copy()
    table.columns = pd.RangeIndex(len(header))
    return header, table


def _gct_tokens(line: str) -> list[str]:
    return [t for t in re.split(r"\s+", line.strip()) if t]


def _read_gct(path: Path) -> tuple[list[str], pd.DataFrame, list[str], int]:
    """GCT 1.2 / 1.3 → (header, positional frame, annotation column names, first data line)."""
    try:
        with open_text(path) as fh:
            version = fh.readline().strip()
            dims_line = fh.readline()
            header_line = fh.readline().rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path.name}: cannot be read as text ({exc})") from exc
    if version not in ("#1.2", "#1.3"):
        raise UserInputError(
            f"{path.name}: first line is {version[:20]!r}, expected '#1.2' or '#1.3' for a GCT file"
        )
    try:
        dims = [int(t) for t in _gct_tokens(dims_line)]
    except ValueError as exc:
        raise UserInputError(
            f"{path.name}: line 2 must hold the GCT dimensions as integers, got {dims_line.strip()!r}"
        ) from exc
    expected = 2 if version == "#1.2" else 4
    if len(dims) != expected:
        raise UserInputError(
            f"{path.name}: GCT {version[1:]} line 2 needs {expected} integers, got {dims_line.strip()!r}"
        )
    n_rows, n_cols = dims[0], dims[1]
    n_row_meta = 1 if version == "#1.2" else dims[2]
    n_col_meta = 0 if version == "#1.2" else dims[3]
    header = [h.strip() for h in header_line.split("\t")]
    if len(header) != 1 + n_row_meta + n_cols:
        raise UserInputError(
            f"{path.name}: GCT header (line 3) has {len(header)} fields but line 2 declares "
            f"1 + {n_row_meta} annotation + {n_cols} sample columns; fix the header or line 2"
        )
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            header=None,
            skiprows=3 + n_col_meta,
            dtype={0: str},
            keep_default_na=False,
            na_values={i: list(NA_TOKENS) for i in range(1, len(header))},
            low_memory=False,
            compression="infer",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserInputError(f"{path.name}: cannot parse the GCT data rows ({exc})") from exc
    if frame.shape[1] != len(header):
        raise UserInputError(
            f"{path.name}: GCT data rows have {frame.shape[1]} fields, the header {len(header)}"
        )
    if frame.shape[0] != n_rows:
        raise UserInputError(
            f"{path.name}: GCT line 2 declares {n_rows} rows but the file has {frame.shape[0]}; "
            "fix line 2"
        )
    frame.columns = pd.RangeIndex(len(header))
    return header, frame, header[1 : 1 + n_row_meta], 4 + n_col_meta


def _read_h5ad(
    path: Path,
    *,
    orientation: Orientation,
    gene_column: str | int | None,
    keys: set[str] | None,
    barcode_length: int,
) -> tuple[pd.DataFrame, pd.DataFrame, Literal["genes-rows", "genes-columns"], str]:
    import anndata
    import scipy.sparse

    try:
        adata = anndata.read_h5ad(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"{path.name}: cannot be read as AnnData .h5ad ({exc})") from exc
    if adata.X is None:
        raise UserInputError(f"{path.name}: the AnnData object has no .X matrix")
    x = adata.X
    x = x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)
    obs = [str(s) for s in adata.obs_names]
    var = [str(s) for s in adata.var_names]
    if orientation != "auto":
        orient, source = orientation, "argument"
    elif keys is not None and (
        _count_hits(obs, keys, barcode_length) or _count_hits(var, keys, barcode_length)
    ):
        in_obs = _count_hits(obs, keys, barcode_length)
        in_var = _count_hits(var, keys, barcode_length)
        if in_obs == in_var:
            raise UserInputError(
                f"{path.name}: as many obs_names as var_names match sample-sheet IDs; pass orientation"
            )
        orient, source = ("genes-columns" if in_obs > in_var else "genes-rows"), "sample IDs"
    else:
        orient, source = "genes-columns", "format"
    if orient == "genes-columns":
        matrix, sample_names, gene_axis = x, obs, adata.var
    else:
        matrix, sample_names, gene_axis = x.T, var, adata.obs
    gene_names = [str(g) for g in gene_axis.index]
    annot = gene_axis.copy()
    if gene_column is not None:
        if gene_column not in gene_axis.columns:
            axis = ".var" if orient == "genes-columns" else ".obs"
            raise UserInputError(
                f"{path.name}: gene_column {gene_column!r} is not a column of {axis}; columns are: "
                f"{preview([str(c) for c in gene_axis.columns], 12)}"
            )
        gene_names = _labels(gene_axis[gene_column].astype(object))
        annot = gene_axis.drop(columns=[gene_column])
    dups = duplicate_names(sample_names)
    if dups:
        raise UserInputError(f"{path.name}: sample names repeat: {preview(dups)}; make them unique")
    genes = pd.DataFrame(annot.to_numpy(), columns=[str(c) for c in annot.columns])
    genes.index = pd.Index(gene_names, dtype=object, name="gene")
    out = pd.DataFrame(
        np.ascontiguousarray(matrix, dtype=np.float64),
        index=pd.Index(sample_names, dtype=object, name="sample"),
        columns=pd.Index(gene_names, dtype=object, name="gene"),
    )
    return out, genes, orient, source  # type: ignore[return-value]


def read_expression_data(
    path: str | os.PathLike[str],
    *,
    orientation: Orientation = "auto",
    gene_column: str | int | None = None,
    annotation_columns: Sequence[str] = (),
    sample_ids: Iterable[object] | None = None,
    barcode_length: int = 15,
    fmt: ExpressionFormat | None = None,
    sep: str | None = None,
    phenotype_columns: Sequence[str] = (),
) -> ExpressionData:
    """Read an expression file into a samples × genes float64 matrix, with what was decided.

    Parameters
    ----------
    path
        TSV/CSV (optionally ``.gz``/``.bz2``/``.xz``), ``.parquet``, ``.h5ad`` or ``.gct``.
    orientation
        ``"auto"`` (detect, see the module docstring), ``"genes-rows"`` (samples are
        columns) or ``"genes-columns"`` (samples are rows).
    gene_column
        Name or 0-based position of the column with the row labels (gene IDs when genes
        are rows; sample IDs when samples are rows); default the first column. For GCT
        it may name a row-annotation column (e.g. a symbol column); for ``.h5ad`` it names
        a column of the gene axis' annotation (``.var``) used instead of its names.
    annotation_columns
        Further columns that are not expression values (e.g. numeric gene lengths).
    sample_ids
        The sample-sheet IDs, for orientation detection (TCGA barcodes compared at
        ``barcode_length`` characters).
    barcode_length
        See :func:`exprlmm.io.samples.sample_key`.
    fmt
        Format, overriding the suffix.
    sep
        Delimiter for text tables, overriding the suffix.
    phenotype_columns
        Sample-sheet columns (trait, covariates) that a samples-in-rows file may also
        carry (e.g. ``weight`` next to the genes); when samples are rows such columns are
        annotation, not genes. Names absent from the file are ignored.

    Returns
    -------
    ExpressionData

    Raises
    ------
    UserInputError
        Missing/empty/unreadable file, unknown format, wrong delimiter, partly non-numeric
        value columns (the message gives column, line and value), repeated or empty sample
        IDs, ambiguous orientation, malformed GCT.
    """
    _check_orientation(orientation)
    check_barcode_length(barcode_length)
    p = check_file(path, "expression file")
    form = _infer_format(p, fmt)
    keys = _key_set(list(sample_ids) if sample_ids is not None else None, barcode_length)
    if form == "h5ad":
        if annotation_columns:
            raise UserInputError("annotation_columns does not apply to .h5ad files")
        matrix, genes, orient, source = _read_h5ad(
            p,
            orientation=orientation,
            gene_column=gene_column,
            keys=keys,
            barcode_length=barcode_length,
        )
        annot: tuple[str, ...] = ()
    else:
        first_line = 2  # file line of the first data row
        table_orientation = orientation
        extra_annot = list(annotation_columns)
        if form == "parquet":
            header, frame = _read_parquet(p)
            first_line = 1
        elif form == "gct":
            if orientation == "genes-columns":
                raise UserInputError(
                    f"{p.name}: GCT files always hold genes in rows; drop orientation='genes-columns'"
                )
            header, frame, gct_annot, first_line = _read_gct(p)
            table_orientation = "genes-rows"
            # the Name/id column and the row annotations; the label column is skipped anyway
            extra_annot += [c for c in [header[0], *gct_annot] if c not in extra_annot]
        else:
            header, frame = _read_text_table(p, fmt, sep, gene_column)
        unit = "row" if form == "parquet" else "line"

        def row_name(k: int) -> str:
            return f"{unit} {k + first_line}"

        matrix, genes, orient, source, annot = _from_table(
            header,
            frame,
            name=p.name,
            row_name=row_name,
            orientation=table_orientation,  # type: ignore[arg-type]
            gene_column=gene_column,
            annotation_columns=extra_annot,
            phenotype_columns=phenotype_columns,
            keys=keys,
            barcode_length=barcode_length,
            path=p,
        )
        if form == "gct" and orientation == "auto":
            source = "format"
    n_hits = None if keys is None else _count_hits(matrix.index, keys, barcode_length)
    return ExpressionData(
        matrix=matrix,
        genes=genes,
        path=str(p),
        fmt=form,
        orientation=orient,
        orientation_source=source,
        annotation_columns=annot,
        n_sample_ids_matched=n_hits,
    )


def read_expression(
    path: str | os.PathLike[str],
    *,
    orientation: Orientation = "auto",
    gene_column: str | int | None = None,
    annotation_columns: Sequence[str] = (),
    sample_ids: Iterable[object] | None = None,
    barcode_length: int = 15,
    fmt: ExpressionFormat | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read an expression file as a samples × genes float64 DataFrame.

    Shorthand for ``read_expression_data(...).matrix``; see :func:`read_expression_data`
    for the parameters. Gene labels are as read (may repeat; ``"?"``/empty kept).
    """
    return read_expression_data(
        path,
        orientation=orientation,
        gene_column=gene_column,
        annotation_columns=annotation_columns,
        sample_ids=sample_ids,
        barcode_length=barcode_length,
        fmt=fmt,
        sep=sep,
    ).matrix
