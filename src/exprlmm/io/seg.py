"""Read segmented copy number (.seg files) into a tidy, validated table.

The IGV ``.seg`` format is a tab-separated table with a header line and one row per
segment: sample, chromosome, start, end, [number of markers], value. Tools name the
columns differently; the reader recognises them by name (case, dots, underscores and
spaces ignored):

======================  ==============================================================
canonical column        header names recognised (first match wins)
======================  ==============================================================
``sample``              ID, Sample, sample_id, SampleName, Name, Barcode, GDC_Aliquot
``chrom``               chrom, Chromosome, chr, CONTIG, seqnames
``start``               loc.start, Start, START, startpos, chromStart
``end``                 loc.end, End, END, endpos, chromEnd, stop
``num_mark``            num.mark, Num_Probes, NUM_POINTS_COPY_RATIO, probes, nbrOfLoci
``value``               seg.mean, Segment_Mean, LOG2_COPY_RATIO_POSTERIOR_50,
                        MEAN_LOG2_COPY_RATIO, LOG2_COPY_RATIO, log2, log2ratio, mean, value
======================  ==============================================================

That covers DNAcopy/CBS (``ID chrom loc.start loc.end num.mark seg.mean``), GDC/TCGA
(``Sample Chromosome Start End Num_Probes Segment_Mean``), CNVkit ``export seg`` and
GATK4 ``ModelSegments`` (``.modelFinal.seg``: the value is ``LOG2_COPY_RATIO_POSTERIOR_50``,
the posterior median of the segment's log2 copy ratio; ``.cr.seg`` / ``.called.seg``:
``MEAN_LOG2_COPY_RATIO``). GATK files have no sample column: the sample is taken from the
``@RG ... SM:<name>`` header line. A 5- or 6-column file whose headers are not recognised
is read by position, as IGV does (sample, chrom, start, end, [num.mark], value).

What the reader accepts
    gzip/bzip2/xz compression (detected from the content, not the name); a UTF-8 byte
    order mark; CRLF or CR line ends; blank lines; ``#`` comment lines anywhere and ``@``
    header lines before the column header; repeated header lines (from ``cat a.seg
    b.seg``); tab-separated fields (comma- or whitespace-separated when the header has no
    tab); double quotes around fields; spaces inside sample IDs (surrounding whitespace of
    every field is removed); positions written as ``1e+05`` (as R writes them) when they
    are whole numbers; ``chr``/``Chr``/``CHR`` prefixes; ``23``/``24`` for X/Y; ``M``/``MT``
    (stored as ``MT``); missing values ``NA``, ``NaN``, ``null``, ``.`` or an empty field in
    the value and marker columns.

What it rejects (:class:`~exprlmm.errors.UserInputError`, naming the file and line)
    missing or non-integer positions (e.g. CNVkit exports with empty ``loc.start``),
    negative positions, ``end < start``, non-numeric or infinite values, unknown
    chromosomes (alt/unplaced contigs, numeric codes above 24 whose meaning is
    tool-specific), rows with a different number of fields than the header, empty sample
    IDs and overlapping segments within a sample (see :func:`validate_segments`).

Coordinates are taken as 1-based and inclusive (the .seg convention): a segment covers
``end - start + 1`` bases.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import logging
import lzma
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.errors import UserInputError

__all__ = [
    "CHROMOSOMES",
    "SEG_COLUMNS",
    "normalize_chromosome",
    "read_seg",
    "validate_segments",
]

logger = logging.getLogger(__name__)

#: Canonical chromosome names, in genome order.
CHROMOSOMES: tuple[str, ...] = (*(str(i) for i in range(1, 23)), "X", "Y", "MT")

#: Columns of the table returned by :func:`read_seg`.
SEG_COLUMNS: tuple[str, ...] = ("sample", "chrom", "start", "end", "num_mark", "value", "line")

# Header aliases, normalised by _header_key (lower case, only letters and digits).
# Order matters for "value": the first present wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "sample": (
        "id",
        "sample",
        "sampleid",
        "samplename",
        "samples",
        "name",
        "barcode",
        "gdcaliquot",
    ),
    "chrom": ("chrom", "chromosome", "chr", "contig", "seqnames", "seqname"),
    "start": ("locstart", "start", "startpos", "startposition", "chromstart", "segstart"),
    "end": ("locend", "end", "endpos", "endposition", "chromend", "stop", "segend"),
    "num_mark": (
        "nummark",
        "numprobes",
        "nummarkers",
        "nummarks",
        "numpointscopyratio",
        "probes",
        "nprobes",
        "nbrofloci",
        "numsnps",
    ),
    "value": (
        "segmean",
        "segmentmean",
        "log2copyratioposterior50",
        "meanlog2copyratio",
        "log2copyratio",
        "log2",
        "log2ratio",
        "mean",
        "value",
    ),
}
_REQUIRED = ("sample", "chrom", "start", "end", "value")
_POSITIONAL = {"sample": 0, "chrom": 1, "start": 2, "end": 3}
_NA_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "."})
_CHR_PREFIX = re.compile(r"^chr", re.IGNORECASE)
_SM_TAG = re.compile(r"(?:^|\t)SM:([^\t]+)")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalize_chromosome(name: str) -> str | None:
    """Return the canonical name of a human chromosome, or None if it is not one.

    ``chr``/``Chr``/``CHR`` prefixes are dropped, letters upper-cased, leading zeros
    removed; ``23`` → ``X``, ``24`` → ``Y``; ``M`` and ``MT`` → ``MT``. Numeric codes
    above 24 are not recognised (CNVkit numbers contigs in file order, PLINK uses
    25 = XY and 26 = MT), nor are alt/unplaced contigs.

    Examples
    --------
    >>> [normalize_chromosome(c) for c in ["chr1", "01", "23", "chrX", "y", "chrM", "GL000192.1"]]
    ['1', '1', 'X', 'X', 'Y', 'MT', None]
    """
    core = _CHR_PREFIX.sub("", name.strip().strip("\"'").strip()).upper()
    if core.isdigit() and core.isascii():
        number = int(core)
        if 1 <= number <= 22:
            return str(number)
        return {23: "X", 24: "Y"}.get(number)
    if core in ("X", "Y"):
        return core
    if core in ("M", "MT"):
        return "MT"
    return None


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def _read_text(path: Path) -> tuple[str, str]:
    """Return the decoded text of ``path`` and the sha256 of its bytes on disk."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise UserInputError(f"{path}: is a directory, not a .seg file") from None
    except PermissionError:
        raise UserInputError(f"{path}: permission denied; check the file's permissions") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif raw[:3] == b"BZh":
            raw = bz2.decompress(raw)
        elif raw[:6] == b"\xfd7zXZ\x00":
            raw = lzma.decompress(raw)
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise UserInputError(
            f"{path}: cannot decompress ({err}); the file is truncated or corrupt, "
            "download it again"
        ) from None
    if raw[:4] == b"PK\x03\x04":
        raise UserInputError(
            f"{path}: is a ZIP/Excel file, not a text .seg; unzip it or save the sheet "
            "as tab-separated text"
        )
    if b"\x00" in raw[:4096]:
        raise UserInputError(f"{path}: is a binary file, not a text .seg file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserInputError(
            f"{path}, line {line}: not valid UTF-8 text; re-save the file as UTF-8"
        ) from None
    return text, digest


def _split_line(line: str, delimiter: str | None) -> list[str]:
    """Split one line into stripped fields (double quotes honoured)."""
    if delimiter is None:  # runs of whitespace
        row = (
            next(csv.reader([" ".join(line.split())], delimiter=" "))
            if '"' in line
            else line.split()
        )
    else:
        row = next(csv.reader([line], delimiter=delimiter))
    return [field.strip() for field in row]


def _data_lines(
    all_lines: list[str], header_index: int, header_line: str
) -> tuple[list[str], list[int], int, int]:
    """Data lines after the header, their 1-based numbers, #comments and repeated headers."""
    lines: list[str] = []
    numbers: list[int] = []
    n_comments = n_repeated = 0
    for i in range(header_index + 1, len(all_lines)):
        stripped = all_lines[i].strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            n_comments += 1
        elif stripped == header_line:
            n_repeated += 1
        else:
            lines.append(all_lines[i])
            numbers.append(i + 1)
    return lines, numbers, n_comments, n_repeated


def _string_table(
    lines: list[str], delimiter: str | None, n_fields: int, numbers: list[int], source: str
) -> list[list[str]]:
    """Split data lines into rows of ``n_fields`` stripped strings; error on ragged rows."""
    rows = []
    for line, line_no in zip(lines, numbers, strict=True):
        row = _split_line(line, delimiter)
        if len(row) > n_fields and not any(row[n_fields:]):  # trailing empty fields
            row = row[:n_fields]
        if len(row) != n_fields:
            hint = (
                " (R's write.table without row.names = FALSE adds a first column)"
                if len(row) == n_fields + 1
                else " (sample IDs with spaces need tab separators or quotes)"
            )
            raise _bad(
                source,
                line_no,
                f"has {len(row)} fields, the header has {n_fields}; a field is missing or a "
                f"separator is extra{hint}",
            )
        rows.append(row)
    return rows


def _separators_per_line_ok(body: str, delimiter: str, n_lines: int, n_fields: int) -> bool:
    """True when each of the ``n_lines`` lines of ``body`` has ``n_fields - 1`` separators."""
    raw = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    line_ends = np.append(np.flatnonzero(raw == ord("\n")), raw.size)
    if line_ends.size != n_lines:
        return False
    separators = np.flatnonzero(raw == ord(delimiter))
    per_line = np.diff(np.searchsorted(separators, line_ends), prepend=0)
    return bool((per_line == n_fields - 1).all())


def _fast_table(
    body: str, n_lines: int, delimiter: str | None, n_fields: int, columns: dict[str, int]
) -> pd.DataFrame | None:
    """Parse clean files with pandas' C parser; None when the careful path is needed.

    ``body`` is the data lines joined by newlines. Clean means: a one-character
    separator, no quotes, every line with the header's number of separators, numbers
    where numbers belong. Anything else returns None and the line-by-line path finds
    and names the problem.
    """
    if delimiter is None or '"' in body:
        return None
    if not _separators_per_line_ok(body, delimiter, n_lines, n_fields):
        return None
    numeric = {columns[f] for f in ("start", "end", "value", "num_mark") if f in columns}
    na_tokens = sorted({t for t in _NA_TOKENS} | {t.upper() for t in _NA_TOKENS} | {"NaN", "Na"})
    try:
        table = pd.read_csv(
            io.StringIO(body),
            sep=delimiter,
            header=None,
            names=range(n_fields),
            usecols=sorted(set(columns.values())),
            dtype={j: (np.float64 if j in numeric else str) for j in columns.values()},
            keep_default_na=False,
            na_values={columns[f]: na_tokens for f in ("value", "num_mark") if f in columns},
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=False,
            float_precision="round_trip",
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if len(table) != n_lines:
        return None
    with np.errstate(invalid="ignore"):
        for field in ("start", "end", "num_mark"):
            if field in columns:
                x = table[columns[field]].to_numpy()
                ok = np.isfinite(x) & (x == np.round(x)) & (x >= 0) & (x <= 2.0**53)
                if field == "num_mark":
                    ok |= np.isnan(x)
                if not ok.all():
                    return None
        if np.isinf(table[columns["value"]].to_numpy()).any():
            return None
    return table


def _choose_columns(
    header: list[str], value_column: str | None, source: str
) -> tuple[dict[str, int], list[str]]:
    """Map canonical field names to column indexes; return the map and notes for the log."""
    keys = [_header_key(h) for h in header]
    columns: dict[str, int] = {}
    notes: list[str] = []
    for field, aliases in _ALIASES.items():
        if field == "value" and value_column is not None:
            continue
        for alias in aliases:
            if alias in keys:
                columns[field] = keys.index(alias)
                break
    if value_column is not None:
        wanted = value_column.strip().lower()
        matches = [i for i, h in enumerate(header) if h.lower() == wanted]
        if not matches:
            raise UserInputError(
                f"{source}: value column {value_column!r} not found; "
                f"columns are: {', '.join(header)}"
            )
        columns["value"] = matches[0]
    # IGV reads .seg files by position; do the same for unrecognised 5-6 column headers.
    if len(header) in (5, 6):
        taken = set(columns.values())
        for field, position in _POSITIONAL.items():
            if field not in columns and position not in taken and field != "sample":
                columns[field] = position
                taken.add(position)
                notes.append(f"{field} = column {position + 1} ({header[position]!r}) by position")
        if "value" not in columns and len(header) - 1 not in taken:
            columns["value"] = len(header) - 1
            notes.append(f"value = last column ({header[-1]!r}) by position")
        if "sample" not in columns and 0 not in taken:
            columns["sample"] = 0
            notes.append(f"sample = column 1 ({header[0]!r}) by position")
    return columns, notes


def _bad(source: str, line: int, message: str) -> UserInputError:
    return UserInputError(f"{source}, line {line}: {message}")


_Problem = tuple[int, str]  # (row position in the table, message)


def _first(bad: np.ndarray) -> int | None:
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _parse_positions(raw: np.ndarray, name: str, header: str) -> tuple[np.ndarray, _Problem | None]:
    """Whole, non-negative numbers (``1e+05`` accepted) → int64, and the first bad row."""
    numbers = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64
    )
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers != np.round(numbers)) | (numbers < 0)
        bad |= numbers > 2.0**53
    i = _first(bad)
    if i is None:
        return numbers.astype(np.int64), None
    text = raw[i]
    if text == "":
        why = f"{name} ({header!r}) is empty; every segment needs start and end positions"
        if name in ("start", "end"):
            why += " (CNVkit: re-run `cnvkit.py export seg` on the .cns files)"
    elif np.isfinite(numbers[i]) and numbers[i] < 0:
        why = f"{name} ({header!r}) is negative ({text}); positions are 1-based"
    else:
        why = f"{name} ({header!r}) is {text!r}, not a whole number; fix or remove the row"
    return np.zeros(len(raw), dtype=np.int64), (i, why)


def _na_mask(raw: np.ndarray) -> np.ndarray:
    return np.fromiter((s.lower() in _NA_TOKENS for s in raw), dtype=bool, count=len(raw))


def _parse_values(raw: np.ndarray, header: str) -> tuple[np.ndarray, _Problem | None]:
    """Numbers → float64, NA tokens → NaN, and the first non-numeric or infinite row."""
    is_na = _na_mask(raw)
    numbers = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64
    )
    numbers[is_na] = np.nan
    i = _first(~is_na & ~np.isfinite(numbers))
    if i is None:
        return numbers, None
    text = raw[i]
    if np.isinf(numbers[i]):
        why = (
            f"value ({header!r}) is {text!r}; infinite log2 ratios cannot be scored, "
            "replace them by a finite floor (e.g. -7) or by NA"
        )
    elif "," in text:
        why = f"value ({header!r}) is {text!r}; use '.' as the decimal separator"
    else:
        why = f"value ({header!r}) is {text!r}, not a number; fix it or write NA"
    return numbers, (i, why)


def _parse_chromosomes(raw: np.ndarray) -> tuple[np.ndarray, _Problem | None]:
    """Canonical chromosome names, and the first row with an unknown one."""
    mapping = {name: normalize_chromosome(name) for name in pd.unique(raw)}
    unknown = {name for name, canon in mapping.items() if canon is None}
    chrom = np.array([mapping[c] or "" for c in raw], dtype=object)
    if not unknown:
        return chrom, None
    i = int(np.flatnonzero(np.isin(raw, list(unknown)))[0])
    more = f" (and {len(unknown) - 1} more unknown names)" if len(unknown) > 1 else ""
    why = (
        f"unknown chromosome {raw[i]!r}{more}; expected 1-22, X (or 23), Y (or 24), M/MT, "
        "with or without 'chr': remove rows on alt/unplaced contigs, rename numeric codes "
        "above 24 (their meaning is tool-specific)"
    )
    return chrom, (i, why)


def read_seg(path: str | os.PathLike[str], *, value_column: str | None = None) -> pd.DataFrame:
    """Read a .seg file into a validated table of segments, one row per segment.

    Parameters
    ----------
    path
        A .seg file (IGV/DNAcopy/GDC/CNVkit/GATK4 flavours; plain or compressed).
    value_column
        Header of the column holding the segment value (case-insensitive), overriding
        the automatic choice (``seg.mean``, ``Segment_Mean``,
        ``LOG2_COPY_RATIO_POSTERIOR_50``, ``MEAN_LOG2_COPY_RATIO``, ``log2``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``sample`` (str, as written, surrounding whitespace removed), ``chrom``
        (str: ``'1'``..``'22'``, ``'X'``, ``'Y'``, ``'MT'``), ``start``, ``end``
        (int64, 1-based inclusive), ``num_mark`` (nullable Int64), ``value`` (float64,
        NaN where the file says NA) and ``line`` (int64, 1-based line number in the
        file), in file order. ``attrs`` holds ``source`` (the path), ``sha256`` (of
        the file's bytes), ``columns`` (canonical name → header used), ``value_column``,
        ``n_comment_lines`` and ``n_repeated_headers``.

    Raises
    ------
    UserInputError
        For anything the file gets wrong, with the file name, line number and fix.
    """
    source = str(path)
    text, digest = _read_text(Path(path))
    all_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    # Header: first line that is not blank, '#' comment or '@' (SAM-style) header.
    n_comments = 0
    sm_tags: list[str] = []
    header_index = None
    for i, line in enumerate(all_lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#") or stripped.startswith("@"):
            n_comments += 1
            if stripped.startswith("@RG"):
                sm_tags += [m.strip() for m in _SM_TAG.findall(line)]
            continue
        header_index = i
        break
    if header_index is None:
        raise UserInputError(f"{source}: no header line and no segments; is the file empty?")
    header_line = all_lines[header_index].strip()
    delimiter: str | None = "\t" if "\t" in header_line else "," if "," in header_line else None
    header = _split_line(header_line, delimiter)
    header_no = header_index + 1
    if len(header) < 4:
        raise _bad(
            source,
            header_no,
            f"header has {len(header)} column(s) ({header_line[:60]!r}); a .seg file is "
            "tab-separated: sample, chrom, start, end, [num.mark], value",
        )
    if len(header) >= 4 and all(_NUMBER.match(h) for h in header[2:4]):
        raise _bad(
            source,
            header_no,
            "the first line looks like data, not a header; add a header line "
            "'ID<TAB>chrom<TAB>loc.start<TAB>loc.end<TAB>num.mark<TAB>seg.mean'",
        )
    columns, notes = _choose_columns(header, value_column, source)

    sample_from_tag = None
    if "sample" not in columns:
        if len(set(sm_tags)) == 1:
            sample_from_tag = sm_tags[0]
            logger.info("%s: sample %r from the @RG SM: header tag", source, sample_from_tag)
        else:
            raise UserInputError(
                f"{source}: no sample column (columns are: {', '.join(header)}) and no single "
                "@RG SM: tag; add a first column 'ID' with the sample name (CNVkit .cns files: "
                "use `cnvkit.py export seg`)"
            )
    missing = [f for f in _REQUIRED if f not in columns and f != "sample"]
    if missing:
        raise UserInputError(
            f"{source}: no {'/'.join(missing)} column; columns are: {', '.join(header)}; "
            "rename the header (e.g. ID, chrom, loc.start, loc.end, num.mark, seg.mean)"
            + (" or name the value column with --value-column" if "value" in missing else "")
        )
    for note in notes:  # a column chosen by position may be the wrong one: say so
        logger.warning("%s: header not recognised, %s", source, note)

    body_lines = all_lines[header_index + 1 :]
    while body_lines and not body_lines[-1].strip():
        body_lines.pop()
    body = "\n".join(body_lines)
    # The common case, checked on the whole text at once: nothing to skip. (A line of
    # spaces slips through here but fails the separator count in _fast_table.)
    shortcut = bool(
        body
        and body_lines[0].strip()
        and "#" not in body
        and "\n\n" not in body
        and header_line not in body
    )
    if shortcut:
        data_lines = body_lines
        data_numbers = list(range(header_index + 2, header_index + 2 + len(body_lines)))
        n_repeated = 0
    else:
        data_lines, data_numbers, n_skipped, n_repeated = _data_lines(
            all_lines, header_index, header_line
        )
        n_comments += n_skipped
        body = "\n".join(data_lines)
    if not data_lines:
        raise UserInputError(f"{source}: header found on line {header_no} but no segments")
    lines = np.asarray(data_numbers, dtype=np.int64)
    n_rows = len(data_lines)
    problems: list[_Problem] = []
    fast = _fast_table(body, n_rows, delimiter, len(header), columns)
    if fast is None and shortcut:
        data_lines, data_numbers, n_skipped, n_repeated = _data_lines(
            all_lines, header_index, header_line
        )
        n_comments += n_skipped
        lines = np.asarray(data_numbers, dtype=np.int64)
        n_rows = len(data_lines)
    if fast is not None:

        def text(field: str) -> np.ndarray:
            # strip the distinct values only (few samples and chromosomes, many rows)
            codes, uniques = pd.factorize(fast[columns[field]].to_numpy(dtype=object))
            return np.array([u.strip() for u in uniques], dtype=object)[codes]

        def numbers(field: str) -> np.ndarray:
            return fast[columns[field]].to_numpy(dtype=np.float64)

        start = numbers("start").astype(np.int64)
        end = numbers("end").astype(np.int64)
        value = numbers("value")
        marks = numbers("num_mark") if "num_mark" in columns else np.full(n_rows, np.nan)
        num_mark = pd.array(np.where(np.isnan(marks), 0, marks).astype(np.int64), dtype="Int64")
        num_mark[np.isnan(marks)] = pd.NA
    else:
        rows = _string_table(data_lines, delimiter, len(header), data_numbers, source)

        def text(field: str) -> np.ndarray:
            j = columns[field]
            return np.array([row[j] for row in rows], dtype=object)

        start, problem = _parse_positions(text("start"), "start", header[columns["start"]])
        problems += [problem] if problem else []
        end, problem = _parse_positions(text("end"), "end", header[columns["end"]])
        problems += [problem] if problem else []
        value, problem = _parse_values(text("value"), header[columns["value"]])
        problems += [problem] if problem else []
        num_mark = pd.array(np.zeros(n_rows, dtype=np.int64), dtype="Int64")
        num_mark[:] = pd.NA
        if "num_mark" in columns:
            raw_marks = text("num_mark")
            is_na = _na_mask(raw_marks)
            raw_marks[is_na] = "0"
            marks_int, problem = _parse_positions(
                raw_marks, "num.mark", header[columns["num_mark"]]
            )
            problems += [problem] if problem else []
            num_mark = pd.array(marks_int, dtype="Int64")
            num_mark[is_na] = pd.NA

    if sample_from_tag is not None:
        samples = np.full(n_rows, sample_from_tag, dtype=object)
    else:
        samples = text("sample")
        i = _first(samples == "")
        if i is not None:
            problems.append((i, "sample ID is empty; every row needs a sample"))
    chrom, problem = _parse_chromosomes(text("chrom"))
    problems += [problem] if problem else []
    if problems:
        i, why = min(problems, key=lambda p: p[0])
        raise _bad(source, int(lines[i]), why)

    segments = pd.DataFrame(
        {
            "sample": pd.Series(samples, dtype=object),
            "chrom": pd.Series(chrom, dtype=object),
            "start": start,
            "end": end,
            "num_mark": num_mark,
            "value": value,
            "line": lines,
        }
    )
    used = {field: header[j] for field, j in columns.items()}
    if sample_from_tag is not None:
        used["sample"] = f"@RG SM:{sample_from_tag}"
    segments.attrs.update(
        {
            "source": source,
            "sha256": digest,
            "columns": used,
            "value_column": header[columns["value"]],
            "n_comment_lines": n_comments,
            "n_repeated_headers": n_repeated,
        }
    )
    validate_segments(segments)
    return segments


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def _where(segments: pd.DataFrame, position: int) -> str:
    """'line N' when the table came from a file, else 'row N' (0-based table position)."""
    if "line" in segments.columns:
        return f"line {int(segments['line'].iloc[position])}"
    return f"row {position}"


def validate_segments(segments: pd.DataFrame) -> None:
    """Check a segment table: known chromosomes, ``end >= start``, no overlaps per sample.

    Two segments of one sample on one chromosome overlap when, sorted by start,
    ``start_i < end_{i-1}`` or ``start_i == start_{i-1}``. A single shared boundary base
    (``start_i == end_{i-1}``, as written by tools that use half-open intervals) is
    accepted. Overlaps usually mean a file was concatenated twice or two samples share
    an ID.

    Parameters
    ----------
    segments
        Table with columns ``sample``, ``chrom``, ``start``, ``end`` (as returned by
        :func:`read_seg`; a ``line`` column, if present, is used in messages, and
        ``attrs["source"]`` names the file).

    Raises
    ------
    UserInputError
        On the first problem found, naming the line (or row) and the fix.
    """
    source = segments.attrs.get("source", "segments")
    missing = [c for c in ("sample", "chrom", "start", "end") if c not in segments.columns]
    if missing:
        raise UserInputError(
            f"{source}: missing column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(map(str, segments.columns))}"
        )
    if segments.empty:
        return
    no_sample = np.flatnonzero(segments["sample"].isna().to_numpy())
    if no_sample.size:
        raise UserInputError(
            f"{source}, {_where(segments, int(no_sample[0]))}: sample ID is missing; "
            "every segment needs a sample"
        )
    chrom = segments["chrom"].astype(str).to_numpy()
    chrom_codes, chrom_names = pd.factorize(chrom)
    known_names = np.isin(np.asarray(chrom_names, dtype=object), list(CHROMOSOMES))
    bad_chrom = np.flatnonzero(~known_names[chrom_codes])
    if bad_chrom.size:
        i = int(bad_chrom[0])
        raise UserInputError(
            f"{source}, {_where(segments, i)}: chromosome {chrom[i]!r} is not one of "
            f"{', '.join(CHROMOSOMES)}; normalise names with exprlmm.io.seg.normalize_chromosome"
        )
    start = segments["start"].to_numpy(dtype=np.int64)
    end = segments["end"].to_numpy(dtype=np.int64)
    inverted = np.flatnonzero(end < start)
    if inverted.size:
        i = int(inverted[0])
        raise UserInputError(
            f"{source}, {_where(segments, i)}: end ({end[i]}) is before start ({start[i]}); "
            "swap the two columns or fix the row"
        )
    sample = segments["sample"].astype(str).to_numpy()
    sample_codes = pd.factorize(sample)[0]
    order = np.lexsort((end, start, chrom_codes, sample_codes))
    s_sample, s_chrom = sample_codes[order], chrom_codes[order]
    s_start, s_end = start[order], end[order]
    same = (s_sample[1:] == s_sample[:-1]) & (s_chrom[1:] == s_chrom[:-1])
    overlap = same & ((s_start[1:] < s_end[:-1]) | (s_start[1:] == s_start[:-1]))
    if overlap.any():
        pairs = np.flatnonzero(overlap)
        a, b = order[pairs], order[pairs + 1]
        k = int(np.argmin(np.maximum(a, b)))  # the overlap reached first in the file
        i, j = sorted((int(a[k]), int(b[k])))
        raise UserInputError(
            f"{source}: segments on {_where(segments, i)} and {_where(segments, j)} overlap "
            f"(sample {sample[i]!r}, chromosome {chrom[i]}: {start[i]}-{end[i]} and "
            f"{start[j]}-{end[j]}); a sample's segments must not overlap: was the file "
            "concatenated twice, or do two samples share an ID?"
        )
