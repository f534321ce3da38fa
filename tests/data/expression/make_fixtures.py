"""Regenerate the small expression fixtures from the shared real data sets.

Run from the repository root, with the shared data next to it:

    .venv/bin/python tests/data/expression/make_fixtures.py /work/shared/data

Not run by the tests (they only read the files this script writes). Subsets only: no
value is changed except the ICNA scores, which are computed here from the ACC .seg
(ICNA = sum of (End - Start + 1) * |Segment_Mean|, FGA = length with |Segment_Mean| > 0.2
over total length, n_segments = number of segments).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _cut(lines: list[str], rows: list[int], cols: list[int]) -> str:
    """Rows (0 = header) and columns of a tab-separated text, fields copied verbatim."""
    out = []
    for r in rows:
        fields = lines[r].split("\t")
        out.append("\t".join(fields[c] for c in cols))
    return "\n".join(out) + "\n"


def acc(shared: Path) -> None:
    folder = shared / "tcga_acc_expr_cnv_purity"
    expr = pd.read_csv(folder / "ACC_rnaseqv2_rsem_genes_normalized.tsv.gz", sep="\t")
    sheet = pd.read_csv(folder / "ACC_samples.tsv", sep="\t", dtype=str, keep_default_na=False)
    samples = [*list(expr.columns[2:10]), "TCGA-P6-A5OF-01A-11R-A29S-07"]
    values = expr[samples]
    unnamed = list(np.flatnonzero(expr["gene_symbol"] == "?")[:3])
    slc = list(np.flatnonzero(expr["gene_symbol"] == "SLC35E2"))
    named = (expr["gene_symbol"] != "?").to_numpy()
    zero = list(np.flatnonzero((values == 0).all(axis=1).to_numpy() & named)[:2])
    varying = np.flatnonzero((values > 1).all(axis=1))
    picked = list(varying[:: len(varying) // 20][:20])
    rows = sorted(set(unnamed + slc + zero + picked))
    sub = expr.iloc[rows][["gene_symbol", "entrez_id", *samples]]
    sub.to_csv(HERE / "acc_expression.tsv", sep="\t", index=False)

    keep = [s[:15] for s in samples] + ["TCGA-OR-A5J4-01", "TCGA-OR-A5JH-01"]
    cols = [
        "sample15",
        "patient",
        "sample_type_code",
        "rnaseq_aliquot",
        "cnv_aliquot",
        "gender",
        "age_years",
        "pathologic_stage",
        "aran_CPE",
        "taylor_absolute_purity",
    ]
    sheet.set_index("sample15").loc[keep].reset_index()[cols].to_csv(
        HERE / "acc_samples.tsv", sep="\t", index=False
    )

    seg = pd.read_csv(folder / "ACC_snp6_nocnv_hg19.seg", sep="\t")
    aliquots = [a for a in sheet.set_index("sample15").loc[keep, "cnv_aliquot"] if a]
    normal = next(s for s in seg["Sample"].unique() if s.startswith("TCGA-OR-A5J1-10"))
    seg = seg[seg["Sample"].isin([*aliquots[:7], normal])].copy()
    seg["L"] = seg["End"] - seg["Start"] + 1
    seg["a"] = seg["L"] * seg["Segment_Mean"].abs()
    seg["alt"] = seg["L"] * (seg["Segment_Mean"].abs() > 0.2)
    g = seg.groupby("Sample", sort=False)
    scores = pd.DataFrame(
        {
            "icna": g["a"].sum(),
            "fga": g["alt"].sum() / g["L"].sum(),
            "n_segments": g.size(),
        }
    )
    scores.index.name = "sample"
    scores.to_csv(HERE / "acc_icna.tsv", sep="\t", float_format="%.6g")


def others(shared: Path) -> None:
    rat = shared / "rat_liver_toxicity_mixomics"
    lines = _lines(rat / "rat_liver_tox_expression_samples_x_probes.tsv.gz")
    (HERE / "rat_expression_samples_x_probes.tsv").write_text(
        _cut(lines, list(range(7)), list(range(11)))
    )
    lines = _lines(rat / "rat_liver_tox_samples_clinical.tsv")
    (HERE / "rat_samples.tsv").write_text(_cut(lines, list(range(7)), [0, 3, 4, 5]))

    mouse = shared / "mouse_liver_weight_fuzzyforest"
    lines = _lines(mouse / "mouse_female_liver_weight_expression.tsv.gz")
    ids = [line.split("\t")[0] for line in lines]
    rows = [0, *range(1, 5), ids.index("F2_81.1")]
    (HERE / "mouse_weight_expression.tsv").write_text(_cut(lines, rows, list(range(8))))

    nutri = shared / "nutrimouse_mixomics"
    lines = _lines(nutri / "nutrimouse_liver_gene_expression.tsv")
    (HERE / "nutrimouse_expression.tsv").write_text(_cut(lines, list(range(9)), list(range(8))))
    lines = _lines(nutri / "nutrimouse_hepatic_fatty_acids.tsv")
    (HERE / "nutrimouse_fatty_acids.tsv").write_text(_cut(lines, list(range(9)), [0, 1, 2, 4, 5]))

    bladder = shared / "bladderbatch"
    lines = _lines(bladder / "bladder_hgu133a_rma_expression.tsv.gz")
    (HERE / "bladder_expression.tsv").write_text(_cut(lines, list(range(7)), list(range(6))))
    lines = _lines(bladder / "bladder_samples.tsv")
    (HERE / "bladder_samples.tsv").write_text(_cut(lines, list(range(6)), list(range(5))))

    geu = shared / "geuvadis_lcl_counts_degreport"
    lines = _lines(geu / "geuvadis_tsi_lcl_counts.tsv.gz")
    (HERE / "geuvadis_counts.tsv").write_text(_cut(lines, list(range(7)), list(range(7))))
    lines = _lines(geu / "geuvadis_tsi_lcl_samples.tsv")
    (HERE / "geuvadis_samples.tsv").write_text(_cut(lines, list(range(7)), [0, 1, 2]))


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data")
    acc(root)
    others(root)
