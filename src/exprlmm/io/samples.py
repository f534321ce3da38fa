"""Sample sheets and sample-ID matching.

A sample sheet is a delimited text table (TSV or CSV, optionally compressed) with one
row per sample; one column (``sample_column``, default the first) holds the sample IDs.

Sample IDs are compared through a *key* (:func:`sample_key`):

* TCGA barcodes (``TCGA-XX-XXXX...``) are upper-cased, ``.``/``_`` separators (as
  written by R's ``make.names``) become ``-``, and the barcode is truncated to
  ``barcode_length`` characters (default 15 = sample level, e.g.
  ``TCGA-OR-A5J1-01A-11R-A29S-07`` → ``TCGA-OR-A5J1-01``). A barcode shorter than
  ``barcode_length`` is kept whole, so it only matches a barcode of that same length.
* Every other ID is matched exactly, after stripping surrounding whitespace.

Two IDs of one table with the same key are an error (the message names both): the
package never silently picks one aliquot of a sample.

This module also holds the small delimited-text helpers shared with
:mod:`exprlmm.io.expression` (header sniffing, NA tokens, numeric parsing).
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import os
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError

__all__ = [
    "NA_TOKENS",
    "IdMatch",
    "is_tcga_barcode",
    "match_ids",
    "read_sample_sheet",
    "sample_key",
]

#: Cell values read as missing in sample sheets and expression tables. Pandas' usual
#: tokens plus the bracketed placeholders of TCGA clinical files.
NA_TOKENS: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "NAN",
    "<NA>",
    "null",
    "NULL",
    "None",
    "#N/A",
    "#NA",
    "[Not Available]",
    "[Not Applicable]",
    "[Not Evaluated]",
    "[Not Reported]",
    "[Unknown]",
    "[Discrepancy]",
)

_TCGA_RE = re.compile(r"^TCGA[-._][A-Z0-9]{2}[-._][A-Z0-9]{4}", re.IGNORECASE)
_COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
_MAX_SHOWN = 5


# --------------------------------------------------------------------------- IDs


def is_tcga_barcode(sample_id: str) -> bool:
    """Whether ``sample_id`` starts like a TCGA barcode (``TCGA-XX-XXXX``, any case/separator)."""
    return _TCGA_RE.match(sample_id.strip()) is not None


def sample_key(sample_id: object, *, barcode_length: int = 15) -> str:
    """The key under which ``sample_id`` is matched to other tables.

    Parameters
    ----------
    sample_id
        A sample ID as read from a file (converted with ``str``).
    barcode_length
        Number of leading characters of a TCGA barcode that identify a sample
        (12 = patient, 15 = sample, 16 = sample + vial, 28 = full aliquot).

    Returns
    -------
    str
        For TCGA barcodes ``upper(id)[:barcode_length]`` with ``-`` separators; for any
        other ID the ID with surrounding whitespace stripped.
    """
    text = str(sample_id).strip()
    if _TCGA_RE.match(text) is None:
        return text
    return text.upper().replace(".", "-").replace("_", "-")[:barcode_length]


def check_barcode_length(barcode_length: int) -> None:
    """Raise UserInputError unless ``barcode_length`` is an integer in 12..28."""
    if isinstance(barcode_length, bool) or not isinstance(barcode_length, (int, np.integer)):
        raise UserInputError(
            f"barcode_length must be an integer between 12 and 28, got {barcode_length!r}"
        )
    if not 12 <= barcode_length <= 28:
        raise UserInputError(
            f"barcode_length={barcode_length} is out of range; use 12 (patient), 15 (sample, "
            "the default), 16 (sample + vial) … 28 (full aliquot barcode)"
        )


@dataclass(frozen=True)
class IdMatch:
    """Result of :func:`match_ids`.

    Attributes
    ----------
    mapping
        ``{id: sheet_id}`` for every ID of the first table whose key is in the sheet,
        in the order of the first table.
    unmatched
        IDs of the first table with no sheet row (first-table order).
    sheet_unmatched
        Sheet IDs that no ID of the first table maps to (sheet order).
    barcode_length
        The TCGA barcode length used for the keys.
    """

    mapping: dict[str, str]
    unmatched: tuple[str, ...]
    sheet_unmatched: tuple[str, ...]
    barcode_length: int

    @property
    def n_matched(self) -> int:
        """Number of matched IDs."""
        return len(self.mapping)


def _keys_or_raise(ids: Sequence[str], barcode_length: int, what: str) -> list[str]:
    keys = [sample_key(i, barcode_length=barcode_length) for i in ids]
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for sid, key in zip(ids, keys, strict=True):
        if key in seen:
            clashes.append(f"{seen[key]!r} and {sid!r} → {key!r}")
        else:
            seen[key] = sid
    if clashes:
        shown = "; ".join(clashes[:3]) + (
            f"; … ({len(clashes)} in all)" if len(clashes) > 3 else ""
        )
        tcga = any(is_tcga_barcode(str(i)) for i in ids)
        fix = (
            "keep one aliquot per sample in that file (or average them upstream), or match at a "
            "longer barcode_length"
            if tcga
            else "make the IDs unique"
        )
        raise UserInputError(
            f"{what}: several IDs are the same sample (barcode_length={barcode_length}): "
            f"{shown}; {fix}"
        )
    return keys


def match_ids(
    ids: Iterable[object],
    sheet_ids: Iterable[object],
    *,
    barcode_length: int = 15,
    names: tuple[str, str] = ("expression", "sample sheet"),
) -> IdMatch:
    """Match the sample IDs of a data table to the IDs of a sample sheet.

    Two IDs match when their keys are equal, ``sample_key(a) == sample_key(b)`` (TCGA
    barcodes truncated to ``barcode_length`` characters, other IDs exactly).

    Parameters
    ----------
    ids
        IDs of the data table (expression samples, or rows of a scores table).
    sheet_ids
        IDs of the sample sheet.
    barcode_length
        TCGA barcode length used for the keys (12–28).
    names
        How the two tables are named in error messages (file names are best).

    Returns
    -------
    IdMatch

    Raises
    ------
    UserInputError
        If two IDs of the same table have the same key (e.g. two aliquots of one
        sample); the message names both.
    """
    check_barcode_length(barcode_length)
    ids = [str(i) for i in ids]
    sheet_ids = [str(i) for i in sheet_ids]
    keys = _keys_or_raise(ids, barcode_length, names[0])
    sheet_keys = _keys_or_raise(sheet_ids, barcode_length, names[1])
    by_key = dict(zip(sheet_keys, sheet_ids, strict=True))
    mapping = {sid: by_key[k] for sid, k in zip(ids, keys, strict=True) if k in by_key}
    unmatched = tuple(sid for sid, k in zip(ids, keys, strict=True) if k not in by_key)
    used = set(mapping.values())
    sheet_unmatched = tuple(s for s in sheet_ids if s not in used)
    return IdMatch(mapping, unmatched, sheet_unmatched, int(barcode_length))


def preview(values: Sequence[object], n: int = _MAX_SHOWN) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:n])
    return shown + (f", … ({len(values)} in all)" if len(values) > n else "")


def _common_prefix(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _affix_hint(ids: Sequence[str], sheet_ids: Sequence[str], names: tuple[str, str]) -> str:
    """Explain an overlap that removing a common prefix/suffix on one side would create."""
    for side, (these, others) in enumerate(((ids, sheet_ids), (sheet_ids, ids))):
        these = [t for t in these if t]
        if not these:
            continue
        other_set = set(others)
        prefix = _common_prefix(these)
        suffix = _common_prefix([t[::-1] for t in these])[::-1]
        candidates = [("prefix", prefix[:n], n, 0) for n in range(len(prefix), 0, -1)]
        candidates += [("suffix", suffix[-n:], 0, n) for n in range(len(suffix), 0, -1)]
        for kind, affix, head, tail in candidates:
            stripped = [t[head : len(t) - tail] for t in these]
            hits = [(t, s) for t, s in zip(these, stripped, strict=True) if s in other_set]
            if hits:
                example, bare = hits[0]
                return (
                    f"; {names[side]} IDs carry the {kind} {affix!r} that {names[1 - side]} IDs "
                    f"lack ({len(hits)} would match, e.g. {example!r} vs {bare!r}): make the IDs "
                    "agree in one of the files"
                )
    return ""


def explain_no_overlap(
    ids: Sequence[object],
    sheet_ids: Sequence[object],
    *,
    barcode_length: int = 15,
    names: tuple[str, str] = ("expression", "sample sheet"),
) -> str:
    """A one-line explanation of why no ID of ``ids`` matched ``sheet_ids``, with a hint."""
    ids = [str(i).strip() for i in ids]
    sheet_ids = [str(i).strip() for i in sheet_ids]
    msg = (
        f"no sample of the {names[0]} matches the {names[1]} "
        f"({len(ids)} {names[0]} IDs, e.g. {preview(ids, 3)}; "
        f"{len(sheet_ids)} {names[1]} IDs, e.g. {preview(sheet_ids, 3)})"
    )
    tcga_a = [i for i in ids if is_tcga_barcode(i)]
    tcga_b = [i for i in sheet_ids if is_tcga_barcode(i)]
    if tcga_a and tcga_b:
        len_a = min(len(sample_key(i, barcode_length=28)) for i in tcga_a)
        len_b = min(len(sample_key(i, barcode_length=28)) for i in tcga_b)
        shortest = min(len_a, len_b)
        if shortest < barcode_length:
            return (
                msg
                + f"; some barcodes have only {shortest} characters: pass barcode_length={shortest}"
            )
        keys_a = {sample_key(i, barcode_length=12) for i in tcga_a}
        keys_b = {sample_key(i, barcode_length=12) for i in tcga_b}
        if keys_a & keys_b:
            return msg + (
                f"; {len(keys_a & keys_b)} patients are shared but their sample barcodes differ "
                "(e.g. tumour -01 vs normal -11): check the sample types, or match patients "
                "with barcode_length=12"
            )
        return msg + "; the TCGA barcodes share no patient: is this the right pair of files?"
    return msg + _affix_hint(ids, sheet_ids, names)


# ----------------------------------------------------------- delimited text tables


def _compression(path: Path) -> str | None:
    return _COMPRESSION_SUFFIXES.get(path.suffix.lower())


def base_suffix(path: str | os.PathLike[str]) -> str:
    """The file suffix ignoring a compression suffix (``x.tsv.gz`` → ``.tsv``), lower case."""
    p = Path(path)
    if _compression(p) is not None:
        p = p.with_suffix("")
    return p.suffix.lower()


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a Path, raising UserInputError if it is missing or empty."""
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{what} {str(p)!r} not found; check the path")
    if not p.is_file():
        raise UserInputError(f"{what} {str(p)!r} is not a file")
    if p.stat().st_size == 0:
        raise UserInputError(f"{p.name}: file is empty; give a non-empty {what}")
    return p


def open_text(path: Path) -> TextIO:
    """Open a possibly compressed text file (gzip, bz2, xz by suffix) for reading."""
    comp = _compression(path)
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(comp or "", open)
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _first_lines(path: Path, n: int) -> list[str]:
    lines: list[str] = []
    try:
        with open_text(path) as fh:
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                    if len(lines) == n:
                        break
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise UserInputError(
            f"{path.name}: cannot be read as text ({exc}); check the file"
        ) from exc
    return lines


def choose_separator(path: Path, header_line: str, sep: str | None) -> str:
    """Pick the delimiter (argument, else suffix, else sniffed) and check it splits the header.

    ``.csv`` → ``,``; ``.tsv``/``.tab`` → tab; anything else: tab if the header has a tab,
    else comma if it has a comma, else tab. A header that splits into a single field with the
    chosen delimiter but several with the other one is reported as a wrong delimiter.
    """
    suffix = base_suffix(path)
    if sep is None:
        if suffix == ".csv":
            sep = ","
        elif suffix in (".tsv", ".tab"):
            sep = "\t"
        else:
            sep = "\t" if "\t" in header_line else ("," if "," in header_line else "\t")
    n_fields = len(_split(header_line, sep))
    if n_fields == 1:
        for other, name in (("\t", "tab"), (",", "comma"), (";", "semicolon")):
            if other != sep and len(_split(header_line, other)) > 1:
                shown = "tab" if sep == "\t" else repr(sep)
                raise UserInputError(
                    f"{path.name}: the header has a single column when split on {shown} but "
                    f"{len(_split(header_line, other))} {name}-separated fields; the file looks "
                    f"{name}-separated: fix the file suffix (.tsv = tab, .csv = comma) or pass "
                    f"sep={other!r}"
                )
    return sep


def _split(line: str, sep: str) -> list[str]:
    return next(csv.reader([line], delimiter=sep))


def read_delimited(
    path: Path,
    *,
    sep: str | None,
    what: str,
    text_columns: Sequence[int | str] | None = None,
) -> tuple[list[str], pd.DataFrame]:
    """Read a delimited table; return its header (duplicates kept) and a positional frame.

    The frame's columns are ``0..n-1`` (positions in ``header``). An R-style header with one
    field fewer than the data rows gets an empty name for the first column. Columns in
    ``text_columns`` (positions or names) are read as text, the others get pandas' type
    inference; in every column the cells in :data:`NA_TOKENS` are missing (NaN).
    """
    lines = _first_lines(path, 2)
    if not lines:
        raise UserInputError(f"{path.name}: file has no content; give a non-empty {what}")
    sep = choose_separator(path, lines[0], sep)
    header = [h.strip() for h in _split(lines[0], sep)]
    if len(lines) < 2:
        raise UserInputError(
            f"{path.name}: only a header line, no data rows; give a {what} with data"
        )
    n_body = len(_split(lines[1], sep))
    if n_body == len(header) + 1:  # R write.table(row.names=TRUE): no name for the row labels
        header = ["", *header]
    elif n_body != len(header):
        raise UserInputError(
            f"{path.name}: the header has {len(header)} fields but the first data row has "
            f"{n_body}; check the delimiter and the header line"
        )
    text_pos: set[int] = set()
    for c in text_columns or ():
        if isinstance(c, str):
            text_pos.update(i for i, h in enumerate(header) if h == c.strip())
        else:
            text_pos.add(int(c))
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            skiprows=1,
            dtype={i: str for i in text_pos},  # type: ignore[arg-type]
            keep_default_na=False,
            na_values=list(NA_TOKENS),
            low_memory=False,
            encoding="utf-8-sig",
            compression="infer",
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise UserInputError(f"{path.name}: no data rows; give a {what} with data") from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise UserInputError(
            f"{path.name}: cannot parse as a {'tab' if sep == chr(9) else repr(sep)}-delimited "
            f"table ({detail}); every row needs the same number of fields as the header"
        ) from exc
    except (OSError, EOFError, UnicodeDecodeError, lzma.LZMAError) as exc:
        raise UserInputError(f"{path.name}: cannot be read ({exc}); check the file") from exc
    if frame.shape[1] != len(header):
        raise UserInputError(
            f"{path.name}: the header has {len(header)} fields but data rows have "
            f"{frame.shape[1]}; check the delimiter and the header line"
        )
    if frame.shape[0] == 0:
        raise UserInputError(f"{path.name}: no data rows; give a {what} with data")
    frame.columns = pd.RangeIndex(len(header))
    return header, frame


def to_numeric_or_none(values: pd.Series) -> pd.Series | None:
    """``values`` as float64 if every non-missing entry parses as a number, else None.

    Strings are stripped first; :data:`NA_TOKENS` count as missing.
    """
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(NA_TOKENS))
    num = pd.to_numeric(text, errors="coerce")
    if bool((num.isna() & text.notna()).any()):
        return None
    return num.astype("float64")


def first_non_numeric(values: pd.Series) -> tuple[int, str] | None:
    """Position and text of the first non-missing entry that is not a number (None if all are)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return None
    text = values.astype("string").str.strip()
    text = text.mask(text.isin(NA_TOKENS))
    num = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero((num.isna() & text.notna()).to_numpy())
    if bad.size == 0:
        return None
    return int(bad[0]), str(text.iloc[int(bad[0])])


def number_hint(value: str) -> str:
    """Extra advice for a value that failed to parse as a number."""
    if re.fullmatch(r"[-+]?\d+,\d+", value.strip()):
        return " (a decimal comma? write numbers with a decimal point)"
    return ""


# ------------------------------------------------------------------ sample sheet


def column_position(header: Sequence[str], column: str | int | None, path: Path, what: str) -> int:
    if column is None:
        return 0
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
        if not 0 <= int(column) < len(header):
            raise UserInputError(
                f"{path.name}: column number {column} does not exist ({len(header)} columns)"
            )
        return int(column)
    matches = [i for i, h in enumerate(header) if h == str(column).strip()]
    if not matches:
        raise UserInputError(
            f"{path.name}: {what} column {column!r} not found; columns are: {preview(header, 12)}"
        )
    if len(matches) > 1:
        raise UserInputError(
            f"{path.name}: column name {column!r} appears {len(matches)} times; rename the duplicates"
        )
    return matches[0]


def duplicate_names(names: Sequence[Hashable]) -> list[Hashable]:
    seen: set[Hashable] = set()
    dups: list[Hashable] = []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    return dups


def read_sample_sheet(
    path: str | os.PathLike[str],
    *,
    sample_column: str | int | None = None,
    sep: str | None = None,
    text_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a sample sheet (TSV/CSV, optionally gzip/bz2/xz compressed).

    Parameters
    ----------
    path
        The file. ``.csv`` is comma-separated, ``.tsv``/``.tab`` tab-separated, other
        suffixes are sniffed from the header line.
    sample_column
        Name (or 0-based position) of the column with the sample IDs; default the first.
    sep
        Delimiter, overriding the suffix rule.
    text_columns
        Columns kept as text even if they look numeric (categorical codes such as
        ``01``/``11`` keep their leading zeros). Names absent from the file are ignored.

    Returns
    -------
    pandas.DataFrame
        Indexed by sample ID (``str``, whitespace stripped; the index is named after the ID
        column, ``"sample"`` if that has no name), one column per other sheet column in
        file order. Cells in :data:`NA_TOKENS` are missing; a column whose non-missing
        values all parse as numbers is ``float64`` (unless in ``text_columns``), any other
        column keeps its stripped text (``object``).

    Raises
    ------
    UserInputError
        Missing/empty file, wrong delimiter, unknown ``sample_column``, duplicated column
        names, empty or duplicated sample IDs (the message gives the line numbers).
    """
    p = check_file(path, "sample sheet")
    label = 0 if sample_column is None else sample_column
    header, raw = read_delimited(
        p, sep=sep, what="sample sheet", text_columns=[label, *text_columns]
    )
    dups = duplicate_names(header)
    if dups:
        raise UserInputError(
            f"{p.name}: column names appear more than once: {preview(dups)}; rename them"
        )
    pos = column_position(header, sample_column, p, "sample")
    ids = raw[pos].astype(object).where(raw[pos].notna(), "").astype(str).str.strip()
    empty = np.flatnonzero((ids == "").to_numpy())
    if empty.size:
        lines = ", ".join(str(i + 2) for i in empty[:_MAX_SHOWN])
        raise UserInputError(
            f"{p.name}: empty or missing sample ID in column {header[pos]!r} on line(s) {lines}; "
            "fill in or delete those rows"
        )
    dup_mask = ids.duplicated(keep=False).to_numpy()
    if dup_mask.any():
        first = ids[dup_mask].iloc[0]
        lines = ", ".join(str(i + 2) for i in np.flatnonzero((ids == first).to_numpy()))
        n_dup = int(ids[dup_mask].nunique())
        raise UserInputError(
            f"{p.name}: sample ID {first!r} appears on lines {lines} of column {header[pos]!r}"
            f" ({n_dup} duplicated ID{'s' if n_dup > 1 else ''} in all); keep one row per sample"
        )
    data: dict[str, np.ndarray] = {}
    for i, name in enumerate(header):
        if i == pos:
            continue
        col = raw[i]
        keep_text = name in text_columns
        if (
            not keep_text
            and pd.api.types.is_numeric_dtype(col)
            and not pd.api.types.is_bool_dtype(col)
        ):
            data[name] = col.to_numpy(dtype="float64")
            continue
        text = col.astype("string").str.strip()
        text = text.mask(text.isin(NA_TOKENS))
        num = None if keep_text else to_numeric_or_none(text)
        if num is not None:
            data[name] = num.to_numpy(dtype="float64")
        else:
            data[name] = text.astype(object).where(text.notna(), np.nan).to_numpy(dtype=object)
    out = pd.DataFrame(
        data, index=pd.Index(ids.to_numpy(dtype=object), name=header[pos] or "sample")
    )
    out.columns = pd.Index([str(c) for c in out.columns])
    return out
