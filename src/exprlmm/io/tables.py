"""Writers for result tables (atomic) and small readers for gene lists."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from exprlmm.errors import UserInputError
from exprlmm.io.atomic import atomic_path


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a tidy table atomically: TSV (``.tsv``/``.txt``, optionally ``.gz``), CSV or parquet.

    Floats are written with 10 significant digits (enough to compare −log10 p at 1e-6).
    """
    target = Path(path)
    name = target.name.lower()
    with atomic_path(target) as tmp:
        if name.endswith(".parquet"):
            frame.to_parquet(tmp, index=False)
            return
        sep = "," if name.endswith((".csv", ".csv.gz")) else "\t"
        compression = "gzip" if name.endswith(".gz") else None
        frame.to_csv(tmp, sep=sep, index=False, float_format="%.10g", compression=compression)


def read_gene_list(path: str | os.PathLike[str]) -> list[str]:
    """Gene IDs from a file: one per line (first whitespace/tab/comma field), ``#`` comments skipped.

    A header line named ``gene``/``symbol``/``gene_symbol`` is skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"{p}: gene list not found; give a file with one gene ID per line")
    genes: list[str] = []
    with p.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            field = text.replace(",", "\t").split()[0].strip("\"'")
            if number == 1 and field.lower() in {
                "gene",
                "genes",
                "symbol",
                "gene_symbol",
                "gene_id",
            }:
                continue
            genes.append(field)
    if not genes:
        raise UserInputError(f"{p}: the gene list is empty; give one gene ID per line")
    return genes
