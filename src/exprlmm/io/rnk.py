"""Read gene rankings: Broad ``.rnk`` files and ``exprlmm assoc`` result tables.

A ranking is returned as a `pandas.Series` of float scores indexed by gene, in file order
(the GSEA engine sorts it, stably, in descending order; ties keep file order).

Broad ``.rnk`` rules followed here: tab-separated ``gene <TAB> score``; lines starting with
``#`` are comments; an optional header line (second field not a number); rows whose score is
missing (empty, ``NA``, ``NaN``, ``null``) are skipped with a warning. Everything else that is
not a number is an error. A gene listed twice is an error (no silent collapse).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Literal

import pandas as pd

from exprlmm.errors import UserInputError

__all__ = ["read_ranking_table", "read_rnk"]

log = logging.getLogger(__name__)

_MISSING = {"", "na", "nan", "null", "none", "n/a", "#n/a"}


def _to_float(token: str) -> float | None:
    """Parse a score; None for a missing value; ValueError if not a number."""
    t = token.strip()
    if t.lower() in _MISSING:
        return None
    value = float(t)  # accepts 'inf', '-inf', '1e-3'
    if math.isnan(value):
        return None
    return value


def read_rnk(path: str | os.PathLike[str]) -> pd.Series:
    """Read a Broad ``.rnk`` file into a Series ``gene -> score`` (file order).

    Raises
    ------
    UserInputError
        Missing file, a line without a tab, a non-numeric score, a gene with stray
        whitespace, a duplicated gene, or no usable rows.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{p}: ranking file not found") from None
    except UnicodeDecodeError as err:
        raise UserInputError(f"{p}: not a UTF-8 text file ({err.reason})") from None

    genes: list[str] = []
    scores: list[float] = []
    first_line: dict[str, int] = {}
    n_missing = 0
    seen_data = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise UserInputError(
                f"{p}: line {lineno}: expected 'gene<TAB>score', found no tab; "
                ".rnk files are tab-separated"
            )
        gene, token = fields[0], fields[1]
        try:
            value = _to_float(token)
        except ValueError:
            if not seen_data:  # a header line
                seen_data = True
                continue
            raise UserInputError(
                f"{p}: line {lineno}: score {token!r} for gene {gene!r} is not a number"
            ) from None
        seen_data = True
        if gene != gene.strip() or not gene:
            raise UserInputError(
                f"{p}: line {lineno}: gene name {gene!r} is empty or has leading/trailing "
                "whitespace; fix the name"
            )
        if value is None:
            n_missing += 1
            continue
        if gene in first_line:
            raise UserInputError(
                f"{p}: line {lineno}: gene {gene!r} already listed on line {first_line[gene]}; "
                "collapse duplicates (e.g. keep the row with the largest |score|) first"
            )
        first_line[gene] = lineno
        genes.append(gene)
        scores.append(value)
    if n_missing:
        log.warning("%s: skipped %d gene(s) with a missing score", p, n_missing)
    if not genes:
        raise UserInputError(f"{p}: no genes with a numeric score")
    return pd.Series(scores, index=pd.Index(genes, name="gene"), name="score", dtype=float)


def read_ranking_table(
    path: str | os.PathLike[str],
    *,
    column: str = "stat",
    model: Literal["slr", "lmm"] | None = None,
) -> pd.Series:
    """Rank genes by a column of an ``exprlmm assoc`` result table.

    The table has columns ``gene beta se stat df pvalue padj h2 delta`` (and ``model`` with
    values ``slr``/``lmm`` when both models share a file). The signed ``column`` is used as
    the score; rows with a missing score are skipped.
    """
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{p}: results table not found")
    sep = "," if p.suffix.lower() == ".csv" or p.name.lower().endswith(".csv.gz") else "\t"
    try:
        df = pd.read_csv(p, sep=sep, dtype={"gene": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise UserInputError(f"{p}: cannot parse as a table ({err})") from None
    if "gene" not in df.columns:
        raise UserInputError(
            f"{p}: column 'gene' not found; columns are: {', '.join(map(str, df.columns))}"
        )
    if column not in df.columns:
        raise UserInputError(
            f"{p}: column '{column}' not found; columns are: {', '.join(map(str, df.columns))}"
        )
    if "model" in df.columns:
        if model is None:
            found = ", ".join(sorted(map(str, df["model"].dropna().unique())))
            raise UserInputError(
                f"{p}: table holds several models ({found}); choose one with --model slr|lmm"
            )
        df = df[df["model"] == model]
        if df.empty:
            raise UserInputError(f"{p}: no rows with model == '{model}'")
    scores = pd.to_numeric(df[column], errors="coerce")
    bad = scores.isna() & df[column].notna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise UserInputError(
            f"{p}: row {i + 2}: column '{column}' value {df[column].iloc[i]!r} is not a number"
        )
    genes = df["gene"].astype(str)
    stray = genes != genes.str.strip()
    if stray.any():
        i = int(stray.to_numpy().nonzero()[0][0])
        raise UserInputError(f"{p}: row {i + 2}: gene name {genes.iloc[i]!r} has stray whitespace")
    keep = scores.notna().to_numpy()
    s = pd.Series(scores.to_numpy()[keep], index=pd.Index(genes.to_numpy()[keep], name="gene"))
    dup = s.index.duplicated()
    if dup.any():
        raise UserInputError(
            f"{p}: gene {s.index[dup][0]!r} appears more than once; keep one row per gene"
        )
    if s.empty:
        raise UserInputError(f"{p}: no genes with a numeric '{column}'")
    return s.rename("score").astype(float)
