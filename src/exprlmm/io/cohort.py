"""Analysis-ready cohorts: expression matched to a sample sheet, filtered, with a report.

:func:`load_cohort` reads an expression file and a sample sheet (optionally joined with a
per-sample scores table, e.g. the output of ``exprlmm icna``), matches samples by ID,
drops what cannot be analysed and says why in a :class:`CohortReport`.

Order of operations
-------------------
1. Read the sample sheet (and the scores table, joined on the sample ID with the same
   barcode rule); check that the required columns exist and that non-categorical ones
   are numeric.
2. Read the expression file, orientation detected from the sheet IDs.
3. Match expression samples to sheet rows (:func:`exprlmm.io.samples.match_ids`); keep
   the matched samples in **sample-sheet order**. Samples only in the sheet or only in
   the expression file are dropped and listed.
4. Drop samples with a missing (NaN/empty/NA token) or infinite value in a required
   column (or raise, ``sheet_missing="error"``).
5. ``log2p1``: ``x → log2(x + 1)`` (any negative value in the file is an error).
6. Genes: drop unnamed genes (ID empty, ``?``, ``NA``, ``---`` …: :data:`UNNAMED_GENE_IDS`);
   resolve repeated IDs (``duplicates``); handle non-finite values (NaN, ±inf:
   ``missing``); check that at least ``min_samples`` samples remain; drop genes that are
   constant over the remaining samples (``max == min``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError
from exprlmm.io.expression import ExpressionFormat, Orientation, read_expression_data
from exprlmm.io.samples import (
    check_barcode_length,
    explain_no_overlap,
    is_tcga_barcode,
    match_ids,
    preview,
    read_sample_sheet,
    sample_key,
)

__all__ = [
    "UNNAMED_GENE_IDS",
    "Cohort",
    "CohortReport",
    "DroppedSample",
    "DuplicatePolicy",
    "MissingPolicy",
    "SheetMissingPolicy",
    "load_cohort",
]

MissingPolicy = Literal["drop-gene", "drop-sample", "error"]
DuplicatePolicy = Literal["first", "mean", "error"]
SheetMissingPolicy = Literal["drop-sample", "error"]
DropReason = Literal[
    "not in expression", "not in sample sheet", "missing value", "missing expression"
]

#: Gene IDs treated as "no name" (compared after stripping whitespace). TCGA files use
#: ``?`` for genes without a symbol, Affymetrix annotations ``---``.
UNNAMED_GENE_IDS: frozenset[str] = frozenset(
    {"", "?", "-", "--", "---", "NA", "N/A", "n/a", "nan", "NaN", "null", "NULL", "None"}
)

_SHOW = 8


@dataclass(frozen=True)
class DroppedSample:
    """One sample left out of the cohort.

    Attributes
    ----------
    sample
        Sample-sheet ID, or the expression ID for ``"not in sample sheet"``.
    reason
        ``"not in expression"`` (sheet row without expression), ``"not in sample sheet"``
        (expression sample without a sheet row), ``"missing value"`` (missing/non-finite
        value in a required sheet column), ``"missing expression"`` (non-finite expression
        value, ``missing="drop-sample"``).
    detail
        The columns with missing values, or the number of missing expression values.
    """

    sample: str
    reason: DropReason
    detail: str = ""


@dataclass(frozen=True)
class CohortReport:
    """What :func:`load_cohort` read, matched and dropped.

    Counts are attributes; ``to_dict()`` gives a JSON-ready record for the run record and
    ``summary_lines()`` the lines the CLI prints.
    """

    expression_path: str
    expression_format: str
    orientation: str
    orientation_source: str
    annotation_columns: tuple[str, ...]
    samples_path: str
    sample_column: str
    scores_path: str | None
    barcode_length: int
    n_expression_samples: int
    n_expression_genes: int
    n_sheet_samples: int
    n_matched: int
    dropped_samples: tuple[DroppedSample, ...]
    scores_unmatched: tuple[str, ...]
    log2p1: bool
    duplicates: str
    missing: str
    n_genes_unnamed: int
    duplicated_genes: tuple[str, ...]
    n_duplicate_rows_removed: int
    genes_missing: tuple[str, ...]
    genes_constant: tuple[str, ...]
    identical_samples: tuple[tuple[str, ...], ...]
    expression_ids: tuple[tuple[str, str], ...]
    n_samples: int
    n_genes: int
    required_columns: tuple[str, ...] = field(default=())
    categorical_columns: tuple[str, ...] = field(default=())

    def samples_dropped(self, reason: DropReason) -> tuple[str, ...]:
        """IDs of the samples dropped for ``reason``."""
        return tuple(d.sample for d in self.dropped_samples if d.reason == reason)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (tuples become lists) with the counts added."""
        out = asdict(self)
        out["dropped_samples"] = [asdict(d) for d in self.dropped_samples]
        out["identical_samples"] = [list(g) for g in self.identical_samples]
        out["expression_ids"] = [list(p) for p in self.expression_ids]
        for key, value in list(out.items()):
            if isinstance(value, tuple):
                out[key] = list(value)
        out["n_dropped_samples"] = {
            reason: len(self.samples_dropped(reason)) for reason in get_args(DropReason)
        }
        out["n_genes_dropped"] = {
            "unnamed": self.n_genes_unnamed,
            "duplicate": self.n_duplicate_rows_removed,
            "missing": len(self.genes_missing),
            "constant": len(self.genes_constant),
        }
        return out

    def summary_lines(self) -> list[str]:
        """Human-readable summary, one finding per line (for the CLI to print)."""
        lines = [
            f"expression: {Path(self.expression_path).name} ({self.expression_format}, "
            f"{self.orientation.replace('-', ' in ')}, {_source_words(self.orientation_source)}): "
            f"{self.n_expression_samples} samples x {self.n_expression_genes} genes"
            + (
                f"; annotation columns: {', '.join(self.annotation_columns)}"
                if self.annotation_columns
                else ""
            ),
            f"sample sheet: {Path(self.samples_path).name}: {self.n_sheet_samples} samples "
            f"(ID column {self.sample_column!r}"
            + (
                f"; TCGA barcodes matched at {self.barcode_length} characters)"
                if any(is_tcga_barcode(e) for _, e in self.expression_ids)
                else ")"
            ),
        ]
        if self.scores_path is not None:
            lines.append(
                f"scores: {Path(self.scores_path).name} joined by sample ID"
                + (
                    f"; {len(self.scores_unmatched)} rows match no sheet sample: "
                    f"{_ids(self.scores_unmatched)}"
                    if self.scores_unmatched
                    else ""
                )
            )
        lines.append(f"matched {self.n_matched} samples")
        for reason, words in (
            ("not in expression", "in the sample sheet but not in the expression file"),
            ("not in sample sheet", "in the expression file but not in the sample sheet"),
            ("missing value", "dropped for missing values in required columns"),
            ("missing expression", "dropped for missing expression values"),
        ):
            dropped = [d for d in self.dropped_samples if d.reason == reason]
            if dropped:
                shown = ", ".join(
                    d.sample + (f" ({d.detail})" if d.detail else "") for d in dropped[:_SHOW]
                )
                more = f", … ({len(dropped) - _SHOW} more)" if len(dropped) > _SHOW else ""
                lines.append(f"{len(dropped)} samples {words}: {shown}{more}")
        gene_parts = []
        if self.log2p1:
            gene_parts.append("transformed log2(x + 1)")
        if self.n_genes_unnamed:
            gene_parts.append(f"dropped {self.n_genes_unnamed} unnamed ('?', empty, NA)")
        if self.duplicated_genes:
            how = {"first": "kept the first", "mean": "averaged"}.get(self.duplicates, "")
            gene_parts.append(
                f"{len(self.duplicated_genes)} IDs repeated ({how}; "
                f"{self.n_duplicate_rows_removed} rows removed: {_ids(self.duplicated_genes)})"
            )
        if self.genes_missing:
            gene_parts.append(
                f"dropped {len(self.genes_missing)} with missing values "
                f"({_ids(self.genes_missing)})"
            )
        if self.genes_constant:
            gene_parts.append(f"dropped {len(self.genes_constant)} constant")
        lines.append(
            f"genes: {self.n_expression_genes} read"
            + ("; " + "; ".join(gene_parts) if gene_parts else "")
        )
        if self.identical_samples:
            groups = "; ".join(" = ".join(g) for g in self.identical_samples[:_SHOW])
            lines.append(
                f"warning: {len(self.identical_samples)} groups of samples have identical "
                f"expression (duplicated rows?): {groups}"
            )
        lines.append(f"cohort: {self.n_samples} samples x {self.n_genes} genes")
        return lines


def _source_words(source: str) -> str:
    return {
        "argument": "as given",
        "sample IDs": "detected from the sample IDs",
        "format": "fixed by the format",
        "shape": "guessed from the shape",
    }.get(source, source)


def _ids(ids: Sequence[str], n: int = _SHOW) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", … ({len(ids) - n} more)" if len(ids) > n else "")


@dataclass(frozen=True)
class Cohort:
    """An analysis-ready cohort.

    Attributes
    ----------
    expression
        Samples × genes, float64, all finite, no constant gene, unique gene IDs; index
        ``"sample"`` (sample-sheet IDs, sheet order), columns ``"gene"``.
    samples
        Sample-sheet rows (joined with the scores table) for the same samples, same index
        and order. Required non-categorical columns are float64 and finite; categorical
        columns are text.
    genes
        Gene annotation (e.g. ``entrez_id``), index = ``expression.columns``.
    report
        What was read, matched and dropped.
    """

    expression: pd.DataFrame
    samples: pd.DataFrame
    genes: pd.DataFrame
    report: CohortReport

    def __post_init__(self) -> None:
        if not self.expression.index.equals(self.samples.index):
            raise ValueError("Cohort: expression and samples must share the same index")
        if not self.expression.columns.equals(self.genes.index):
            raise ValueError("Cohort: genes.index must equal expression.columns")


def _check_choice(value: str, options: Any, name: str) -> None:
    allowed = get_args(options)
    if value not in allowed:
        raise UserInputError(
            f"{name}={value!r} is not valid; use one of {', '.join(repr(a) for a in allowed)}"
        )


def _join_scores(
    sheet: pd.DataFrame,
    scores_path: str | os.PathLike[str],
    *,
    barcode_length: int,
    sheet_name: str,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    scores = read_sample_sheet(scores_path)
    name = Path(scores_path).name
    clash = [c for c in scores.columns if c in sheet.columns]
    if clash:
        raise UserInputError(
            f"{name}: column(s) {preview(clash)} are also in {sheet_name}; rename them in one "
            "of the files"
        )
    m = match_ids(
        scores.index, sheet.index, barcode_length=barcode_length, names=(name, sheet_name)
    )
    if m.n_matched == 0:
        raise UserInputError(
            f"{name}: "
            + explain_no_overlap(
                scores.index, sheet.index, barcode_length=barcode_length, names=(name, sheet_name)
            )
        )
    matched = scores.loc[list(m.mapping)]
    matched.index = pd.Index([m.mapping[k] for k in m.mapping], name=sheet.index.name)
    return sheet.join(matched, how="left"), m.unmatched


def _check_columns(
    sheet: pd.DataFrame,
    required: Sequence[str],
    categorical: Sequence[str],
    *,
    sheet_name: str,
    scores_given: bool,
) -> None:
    missing = [c for c in [*required, *categorical] if c not in sheet.columns]
    if missing:
        extra = "" if scores_given else " (or pass scores_path= for columns in another table)"
        raise UserInputError(
            f"{sheet_name}: column {missing[0]!r} not found; columns are: "
            f"{preview(list(sheet.columns), 30)}{extra}"
        )
    for col in required:
        if col in categorical:
            continue
        values = sheet[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype(str)
        num = pd.to_numeric(text, errors="coerce")
        bad = text[num.isna()]
        if num.notna().any():
            raise UserInputError(
                f"{sheet_name}: column {col!r} has the non-numeric value {bad.iloc[0]!r} for "
                f"sample {bad.index[0]!r}; fix the value (or leave the cell empty)"
            )
        levels = list(dict.fromkeys(bad.tolist()))
        raise UserInputError(
            f"{sheet_name}: column {col!r} is not numeric (values: {preview(levels, 4)}); list "
            "it in categorical_columns if it is a categorical covariate"
        )


def _no_overlap_message(
    expr_ids: Sequence[str],
    sheet: pd.DataFrame,
    *,
    barcode_length: int,
    names: tuple[str, str],
    orientation_source: str,
) -> str:
    msg = explain_no_overlap(expr_ids, sheet.index, barcode_length=barcode_length, names=names)
    keys = {sample_key(i, barcode_length=barcode_length) for i in expr_ids}
    for col in sheet.columns:
        if sheet[col].dtype != object:
            continue
        hits = sum(
            sample_key(v, barcode_length=barcode_length) in keys
            for v in sheet[col].dropna().astype(str)
        )
        if hits:
            return msg + (
                f"; sheet column {col!r} matches {hits} expression samples: pass "
                f"sample_column={col!r}"
            )
    if orientation_source == "argument":
        msg += "; the orientation was given: try orientation='auto'"
    return msg


def _missing_in_sheet(
    samples: pd.DataFrame, required: Sequence[str], categorical: Sequence[str]
) -> dict[str, list[str]]:
    """{sample: [columns with a missing or non-finite value]} for the given columns."""
    out: dict[str, list[str]] = {}
    for col in dict.fromkeys([*required, *categorical]):
        values = samples[col]
        if col in categorical:
            bad = values.isna().to_numpy()
        else:
            bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        for sid in samples.index[bad]:
            out.setdefault(str(sid), []).append(col)
    return out


def _identical_groups(x: np.ndarray, ids: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    groups: dict[bytes, list[str]] = {}
    for row, sid in zip(x, ids, strict=True):
        groups.setdefault(row.tobytes(), []).append(sid)
    return tuple(tuple(g) for g in groups.values() if len(g) > 1)


def _unique_annotation_hint(genes: pd.DataFrame) -> str:
    for col in genes.columns:
        values = genes[col]
        if values.notna().all() and values.is_unique:
            return f", or use the unique IDs of column {col!r} (gene_column={col!r})"
    return ""


def load_cohort(
    expression_path: str | os.PathLike[str],
    samples_path: str | os.PathLike[str],
    *,
    sample_column: str | int | None = None,
    orientation: Orientation = "auto",
    gene_column: str | int | None = None,
    annotation_columns: Sequence[str] = (),
    fmt: ExpressionFormat | None = None,
    barcode_length: int = 15,
    log2p1: bool = False,
    missing: MissingPolicy = "drop-gene",
    duplicates: DuplicatePolicy = "first",
    required_columns: Sequence[str] = (),
    categorical_columns: Sequence[str] = (),
    sheet_missing: SheetMissingPolicy = "drop-sample",
    scores_path: str | os.PathLike[str] | None = None,
    min_samples: int = 3,
) -> Cohort:
    """Read, match and filter an expression file and a sample sheet into a :class:`Cohort`.

    Parameters
    ----------
    expression_path
        Expression file (see :func:`exprlmm.io.expression.read_expression_data`).
    samples_path
        Sample sheet (see :func:`exprlmm.io.samples.read_sample_sheet`). It may be the
        expression file itself when that has samples in rows and carries the trait.
    sample_column
        Sheet column with the sample IDs; default the first.
    orientation, gene_column, annotation_columns, fmt
        Passed to the expression reader.
    barcode_length
        TCGA barcodes are matched on their first ``barcode_length`` characters (12–28;
        15 = sample). Other IDs are matched exactly.
    log2p1
        Transform expression as ``log2(x + 1)`` (for un-logged RSEM/counts). Negative
        values are an error.
    missing
        Non-finite expression values (NaN, ±inf) in the matched samples:
        ``"drop-gene"`` drops every gene that has one, ``"drop-sample"`` every sample
        that has one, ``"error"`` raises.
    duplicates
        Gene IDs that occur more than once: ``"first"`` keeps the first row in file
        order, ``"mean"`` averages them (after ``log2p1``; NaN propagates), ``"error"``
        raises. Unnamed genes are always dropped and counted.
    required_columns
        Sheet (or scores) columns that must exist, e.g. the trait and covariates. They
        must be numeric unless also listed in ``categorical_columns``; samples with a
        missing or non-finite value are dropped (``sheet_missing``).
    categorical_columns
        Required columns that are categorical (kept as text, e.g. a batch or sex).
    sheet_missing
        ``"drop-sample"`` (default, reported) or ``"error"`` for missing values in the
        required columns of matched samples.
    scores_path
        Optional per-sample table (first column = sample ID, e.g. the ``exprlmm icna``
        output ``sample icna fga n_segments`` with aliquot barcodes) left-joined onto the
        sheet with the same ID rule. Its column names must not repeat sheet columns.
    min_samples
        Fewer samples left after filtering is an error.

    Returns
    -------
    Cohort

    Raises
    ------
    UserInputError
        Any problem with the inputs, in one line naming file, column/row and the fix.
    """
    _check_choice(orientation, Orientation, "orientation")
    _check_choice(missing, MissingPolicy, "missing")
    _check_choice(duplicates, DuplicatePolicy, "duplicates")
    _check_choice(sheet_missing, SheetMissingPolicy, "sheet_missing")
    check_barcode_length(barcode_length)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise UserInputError(f"min_samples must be a positive integer, got {min_samples!r}")
    required = list(dict.fromkeys(str(c) for c in required_columns))
    categorical = list(dict.fromkeys(str(c) for c in categorical_columns))
    sheet_name = Path(samples_path).name
    expr_name = Path(expression_path).name
    if sheet_name == expr_name and Path(samples_path) != Path(expression_path):
        sheet_name, expr_name = str(samples_path), str(expression_path)

    # 1. sample sheet (+ scores)
    sheet = read_sample_sheet(samples_path, sample_column=sample_column, text_columns=categorical)
    id_column = str(sheet.index.name)
    n_sheet = sheet.shape[0]
    scores_unmatched: tuple[str, ...] = ()
    if scores_path is not None:
        sheet, scores_unmatched = _join_scores(
            sheet, scores_path, barcode_length=barcode_length, sheet_name=sheet_name
        )
    _check_columns(
        sheet, required, categorical, sheet_name=sheet_name, scores_given=scores_path is not None
    )

    # 2. expression
    data = read_expression_data(
        expression_path,
        orientation=orientation,
        gene_column=gene_column,
        annotation_columns=annotation_columns,
        sample_ids=sheet.index,
        barcode_length=barcode_length,
        fmt=fmt,
        phenotype_columns=[*required, *categorical],
    )
    matrix = data.matrix
    n_expr_samples, n_expr_genes = matrix.shape
    if log2p1:
        values = matrix.to_numpy()
        negative = values < 0
        if negative.any():
            r, c = np.argwhere(negative)[0]
            raise UserInputError(
                f"{expr_name}: log2p1 needs non-negative values but {int(negative.sum())} are "
                f"negative (e.g. gene {matrix.columns[c]!r}, sample {matrix.index[r]!r}: "
                f"{values[r, c]:g}); the data look already logged or centred: drop log2p1"
            )

    # 3. match
    names = (expr_name, sheet_name)
    m = match_ids(matrix.index, sheet.index, barcode_length=barcode_length, names=names)
    if m.n_matched == 0:
        raise UserInputError(
            _no_overlap_message(
                list(matrix.index),
                sheet,
                barcode_length=barcode_length,
                names=names,
                orientation_source=data.orientation_source,
            )
        )
    dropped: list[DroppedSample] = [
        DroppedSample(s, "not in expression") for s in m.sheet_unmatched
    ]
    dropped += [DroppedSample(s, "not in sample sheet") for s in m.unmatched]
    expr_of = {sheet_id: expr_id for expr_id, sheet_id in m.mapping.items()}
    kept = [s for s in sheet.index if s in expr_of]

    # 4. missing values in required sheet columns
    bad_rows = _missing_in_sheet(sheet.loc[kept], required, categorical)
    if bad_rows:
        if sheet_missing == "error":
            first = next(iter(bad_rows))
            raise UserInputError(
                f"{sheet_name}: {len(bad_rows)} matched samples have missing or non-finite values "
                f"in required columns (e.g. {first!r}: {', '.join(bad_rows[first])}); fill them "
                "in, or use sheet_missing='drop-sample' to drop those samples"
            )
        dropped += [DroppedSample(s, "missing value", ", ".join(c)) for s, c in bad_rows.items()]
        kept = [s for s in kept if s not in bad_rows]

    x = matrix.loc[[expr_of[s] for s in kept]].to_numpy(dtype=np.float64, copy=True)
    if log2p1:
        x = np.log2(x + 1.0)
    gene_ids = np.array([str(g).strip() for g in matrix.columns], dtype=object)
    genes = data.genes.reset_index(drop=True)

    # 5. unnamed and repeated gene IDs
    named = np.array([g not in UNNAMED_GENE_IDS for g in gene_ids], dtype=bool)
    n_unnamed = int((~named).sum())
    x, gene_ids, genes = x[:, named], gene_ids[named], genes.loc[named].reset_index(drop=True)
    repeated = pd.Index(gene_ids).duplicated(keep=False)
    duplicated_genes = tuple(dict.fromkeys(gene_ids[repeated].tolist()))
    n_dup_removed = 0
    if duplicated_genes:
        if duplicates == "error":
            counts = pd.Index(gene_ids[repeated]).value_counts(sort=False)
            shown = ", ".join(f"{g!r} x{n}" for g, n in list(counts.items())[:5])
            raise UserInputError(
                f"{expr_name}: {len(duplicated_genes)} gene IDs occur more than once ({shown}); "
                "pass duplicates='first' or 'mean'" + _unique_annotation_hint(data.genes)
            )
        first = ~pd.Index(gene_ids).duplicated(keep="first")
        if duplicates == "mean":
            # mean over the columns of each ID; factorize numbers IDs by first occurrence,
            # so the columns come out in the same order as with ``first``
            codes, uniques = pd.factorize(gene_ids)
            sums = np.zeros((len(uniques), x.shape[0]))
            np.add.at(sums, codes, x.T)
            x = (sums / np.bincount(codes)[:, None]).T
        else:
            x = x[:, first]
        n_dup_removed = int((~first).sum())
        gene_ids, genes = gene_ids[first], genes.loc[first].reset_index(drop=True)

    # 6. non-finite expression values
    finite = np.isfinite(x)
    genes_missing: tuple[str, ...] = ()
    if not finite.all():
        bad_gene = ~finite.all(axis=0)
        bad_sample = ~finite.all(axis=1)
        if missing == "error":
            r, c = np.argwhere(~finite)[0]
            raise UserInputError(
                f"{expr_name}: {int((~finite).sum())} missing or infinite expression values in "
                f"{int(bad_gene.sum())} genes and {int(bad_sample.sum())} samples (e.g. gene "
                f"{gene_ids[c]!r}, sample {kept[r]!r}); fix the file or use missing='drop-gene' "
                "or 'drop-sample'"
            )
        if missing == "drop-gene":
            genes_missing = tuple(gene_ids[bad_gene].tolist())
            keep_g = ~bad_gene
            x, gene_ids = x[:, keep_g], gene_ids[keep_g]
            genes = genes.loc[keep_g].reset_index(drop=True)
        else:
            n_bad = (~finite).sum(axis=1)
            dropped += [
                DroppedSample(s, "missing expression", f"{int(n)} values")
                for s, n, b in zip(kept, n_bad, bad_sample, strict=True)
                if b
            ]
            x = x[~bad_sample]
            kept = [s for s, b in zip(kept, bad_sample, strict=True) if not b]

    # 7. enough samples?
    if len(kept) < min_samples:
        counts = pd.Series([d.reason for d in dropped]).value_counts().to_dict() if dropped else {}
        why = "; ".join(f"{n} {r}" for r, n in counts.items()) or "none dropped"
        raise UserInputError(
            f"{expr_name} + {sheet_name}: only {len(kept)} samples left (at least {min_samples} "
            f"needed; {m.n_matched} matched; dropped: {why}); check the IDs, the required "
            "columns and the missing-value policy"
        )

    # 8. constant genes
    constant = (x.max(axis=0) == x.min(axis=0)) if x.shape[1] else np.zeros(0, dtype=bool)
    genes_constant = tuple(gene_ids[constant].tolist())
    x, gene_ids = x[:, ~constant], gene_ids[~constant]
    genes = genes.loc[~constant].reset_index(drop=True)
    if x.shape[1] == 0:
        raise UserInputError(
            f"{expr_name}: no gene left after filtering ({n_expr_genes} read: {n_unnamed} unnamed, "
            f"{n_dup_removed} repeated, {len(genes_missing)} with missing values, "
            f"{len(genes_constant)} constant); check the file and the options"
        )

    sample_index = pd.Index(kept, dtype=object, name="sample")
    gene_index = pd.Index(gene_ids.tolist(), dtype=object, name="gene")
    expression = pd.DataFrame(np.ascontiguousarray(x), index=sample_index, columns=gene_index)
    samples = sheet.loc[kept].copy()
    samples.index = sample_index
    for col in required:
        if col not in categorical:
            samples[col] = samples[col].astype(np.float64)
    genes.index = gene_index

    report = CohortReport(
        expression_path=str(expression_path),
        expression_format=data.fmt,
        orientation=data.orientation,
        orientation_source=data.orientation_source,
        annotation_columns=data.annotation_columns,
        samples_path=str(samples_path),
        sample_column=id_column,
        scores_path=None if scores_path is None else str(scores_path),
        barcode_length=int(barcode_length),
        n_expression_samples=n_expr_samples,
        n_expression_genes=n_expr_genes,
        n_sheet_samples=n_sheet,
        n_matched=m.n_matched,
        dropped_samples=tuple(dropped),
        scores_unmatched=scores_unmatched,
        log2p1=bool(log2p1),
        duplicates=duplicates,
        missing=missing,
        n_genes_unnamed=n_unnamed,
        duplicated_genes=duplicated_genes,
        n_duplicate_rows_removed=n_dup_removed,
        genes_missing=genes_missing,
        genes_constant=genes_constant,
        identical_samples=_identical_groups(x, kept),
        expression_ids=tuple((s, expr_of[s]) for s in kept),
        n_samples=len(kept),
        n_genes=x.shape[1],
        required_columns=tuple(required),
        categorical_columns=tuple(categorical),
    )
    return Cohort(expression=expression, samples=samples, genes=genes, report=report)
