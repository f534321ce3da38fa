"""Calibration and power on seeded negative-binomial simulations of the mouse design.

Each replicate: 2,000 genes × the 10 animals of mouse.tsv, log mean = base + library +
b_w·z(weight) + b_u·z(urea) + group effect (sd 0.3, every gene), NB dispersion 0.05–0.3;
genes 0–119 weight-associated, 120–239 urea-associated (|b| = 0.5, random sign).
Methods (ours): voom weights (TMM) then
  lmm       ~ weight + urea + (1|group), Satterthwaite (as lmer/lmerTest on voom logCPM)
  lmm_eb    the same with empirical-Bayes residual variances
  fixed_eb  ~ weight + urea + C(group), eBayes  (== limma-voom with group fixed)
  nogroup_eb ~ weight + urea, eBayes (group ignored)
Writes the counts of each replicate for the R peers (calibration_peers.R) when --write-counts.
Usage: python calibration.py [n_reps] [--write-counts DIR]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.api import fit_design
from exprlmm.assoc.designs.counts import calc_norm_factors, filter_by_expr, voom
from exprlmm.assoc.designs.formula import build_design
from exprlmm.datasets import mouse_design_counts

HERE = Path(__file__).resolve().parent


def simulate(seed: int, mouse: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (samples × genes) and the true weight / urea genes of one replicate."""
    sim = mouse_design_counts(seed, mouse)
    return sim.counts, sim.beta_weight != 0, sim.beta_urea != 0


METHODS = {
    "lmm": ("~ weight + urea + (1|group)", False),
    "lmm_eb": ("~ weight + urea + (1|group)", True),
    "consensus": ("~ weight + urea + (1|group)", False),
    "consensus_eb": ("~ weight + urea + (1|group)", True),
    "fixed_eb": ("~ weight + urea + C(group)", True),
    "nogroup_eb": ("~ weight + urea", True),
}


def evaluate(p: np.ndarray, padj: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    null = ~truth
    hits = padj < 0.05
    return {
        "null_p05": float(np.mean(p[null] < 0.05)),
        "fdp": float((hits & null).sum() / max(hits.sum(), 1)),
        "power": float((hits & truth).sum() / truth.sum()),
        "n_hits": int(hits.sum()),
    }


def main(n_reps: int, write_counts: Path | None) -> pd.DataFrame:
    mouse = pd.read_csv(HERE / "mouse.tsv", sep="\t").set_index("animal")
    rows = []
    for rep in range(n_reps):
        counts, tw, tu = simulate(1000 + rep, mouse.reset_index())
        fixed = build_design("~ weight + urea", mouse)
        keep = filter_by_expr(counts, fixed.x)
        c = counts[:, keep]
        if write_counts is not None:
            write_counts.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(c.T, columns=mouse.index).assign(
                true_weight=tw[keep], true_urea=tu[keep]
            ).to_csv(write_counts / f"rep{rep}.tsv", sep="\t", index=False)
        lib = c.sum(axis=1) * calc_norm_factors(c)
        genes = [f"g{i}" for i in range(c.shape[1])]
        for name, (formula, eb) in METHODS.items():
            design = build_design(formula, mouse)
            # voom from the fixed part of the model (as dream)
            v = voom(c, design.x, lib_size=lib)
            expr = pd.DataFrame(v.expression, index=mouse.index, columns=genes)
            res = fit_design(
                expr,
                mouse,
                formula,
                test=["weight", "urea"],
                weights=v.weights,
                ebayes=eb,
                variance="consensus" if name.startswith("consensus") else "gene",
            )
            for term, truth in (("weight", tw[keep]), ("urea", tu[keep])):
                part = res.table[res.table.term == term]
                rows.append(
                    {"rep": rep, "method": name, "term": term}
                    | evaluate(part.pvalue.to_numpy(), part.padj.to_numpy(), truth)
                )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    n_reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    out_dir = (
        Path(sys.argv[sys.argv.index("--write-counts") + 1])
        if "--write-counts" in sys.argv
        else None
    )
    table = main(n_reps, out_dir)
    summary = table.groupby(["method", "term"])[["null_p05", "fdp", "power"]].mean().round(4)
    print(summary.to_string())
    table.to_csv(HERE / "calibration_ours.tsv", sep="\t", index=False)
