"""Rebuild src/exprlmm/gsea/data/histone.gmt from shared/genesets/histone_genes.tsv.

HISTONE_GENES holds the 97 current HGNC symbols followed by their legacy symbols
(HIST1H*, H2AF*, H1F*, ...), so the set (and ``--remove-genes histone``) also matches
expression files annotated before the 2020 histone renaming, e.g. TCGA's RSEM tables.
No legacy symbol is the current symbol of another Ensembl 112 gene (checked below).

Usage: python tools/make_histone_gmt.py ../shared/genesets
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "exprlmm" / "gsea" / "data" / "histone.gmt"


def main(genesets: Path) -> None:
    table = pd.read_csv(genesets / "histone_genes.tsv", sep="\t")
    reference = pd.read_csv(genesets / "ensembl112_gene_reference.tsv.gz", sep="\t")
    current = table["symbol"].tolist()
    legacy: list[str] = []
    for names in table["legacy_symbols"].dropna():
        legacy += [s for s in names.split(";") if s and s not in current and s not in legacy]
    clash = set(legacy) & set(reference["symbol"].dropna()) - set(current)
    if clash:
        raise SystemExit(f"legacy symbols that name other genes: {sorted(clash)}")
    description = (
        "protein-coding histone genes, Ensembl 112 symbols then legacy HGNC symbols "
        "(exprlmm built-in)"
    )
    OUT.write_text("\t".join(["HISTONE_GENES", description, *current, *legacy]) + "\n")
    print(f"wrote {OUT}: {len(current)} current + {len(legacy)} legacy symbols")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
