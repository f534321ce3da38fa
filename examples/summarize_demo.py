"""Summarise the `make demo` run on TCGA ACC: counts, top genes, and the purity confounding.

Usage: python examples/summarize_demo.py DEMO_OUTPUT_DIR
Reads DEMO_OUTPUT_DIR/results.tsv (exprlmm assoc, --model both) and writes
DEMO_OUTPUT_DIR/summary.md (also printed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.assoc import slr_scan
from exprlmm.io.cohort import load_cohort

DATA = Path(__file__).resolve().parent / "data" / "tcga_acc"


def main(out: Path) -> None:
    results = pd.read_csv(out / "results.tsv", sep="\t")
    record = json.loads((out / "results.tsv.run.json").read_text())
    # purity-associated genes (Yao et al.): expression ~ purity, Bonferroni p < 0.01
    cohort = load_cohort(
        DATA / "ACC_rnaseqv2_rsem_genes_normalized.tsv.gz",
        DATA / "ACC_samples.tsv",
        log2p1=True,
        required_columns=("aran_CPE",),
    )
    purity = slr_scan(cohort.expression, cohort.samples["aran_CPE"].to_numpy())
    purity_genes = set(purity.gene[purity.pvalue < 0.01 / len(purity)])
    null = record["null_model"]
    lines = [
        "# exprlmm demo: TCGA ACC, gene expression vs ICNA",
        "",
        f"- samples: {record['design']['n_samples']}, genes tested: {record['design']['n_genes_tested']}",
        f"- LMM null model (REML): h² = {null['h2']:.3f}, δ = {null['delta']:.3g}",
        f"- purity-associated genes (expression ~ CPE purity, Bonferroni p < 0.01, "
        f"n = {cohort.expression.shape[0]}): {len(purity_genes)}",
        "",
        "| model | genes at BH p < 0.05 | purity genes among top 500 | top 5 genes |",
        "| --- | --- | --- | --- |",
    ]
    shares = {}
    for model in ("slr", "lmm"):
        part = results[results.model == model].sort_values("pvalue")
        shares[model] = float(np.mean(part.gene.head(500).isin(purity_genes)))
        lines.append(
            f"| {model.upper()} | {int((part.padj < 0.05).sum())} | {shares[model]:.1%} | "
            f"{', '.join(part.gene.head(5))} |"
        )
    expected = len(purity_genes) / record["design"]["n_genes_tested"]
    lines += [
        "",
        f"Purity-associated genes are {expected:.1%} of all tested genes; among the 500 top",
        f"ICNA-associated genes they are {shares['slr']:.1%} under SLR and {shares['lmm']:.1%} under LMM.",
    ]
    if null["at_boundary"] == "lower":
        lines += [
            "",
            "REML put the trait's h² at the boundary (≈1): K explains ICNA entirely, so the LMM",
            "tests each gene against what K leaves over and finds almost nothing. This is the",
            "small-N behaviour Yao et al. note (the LMM needs large cohorts to separate",
            "confounding from signal); ACC has 77 tumours. It is a result, not a failure.",
        ]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("demo_output"))
