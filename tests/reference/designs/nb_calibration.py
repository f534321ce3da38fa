"""Calibration of the negative-binomial option on calibration.py's seeded simulations.

Same 5 replicates (seeds 1000–1004, 2,000 genes, group random intercept sd 0.3 in every gene,
120 true genes per covariate); NB GLM with the group fixed or ignored, tested by the
quasi-likelihood F test (default, edgeR glmQLFit/glmQLFTest at the common dispersion) or by
the LRT with per-gene dispersions (prior.df 0) or shrunk to the common one (prior.df 10).
Means over replicates. edgeR's own QL on the same counts: nb_calibration_peers.R.
Usage: OPENBLAS_NUM_THREADS=1 python nb_calibration.py [n_reps]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.api import fit_design_negbin
from exprlmm.assoc.designs.counts import calc_norm_factors, filter_by_expr
from exprlmm.assoc.designs.formula import build_design

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibration import HERE, evaluate, simulate

METHODS = {
    "nb_ql_group_fixed": ("~ weight + urea + C(group)", "ql", 10.0),
    "nb_ql_group_ignored": ("~ weight + urea", "ql", 10.0),
    "nb_group_fixed": ("~ weight + urea + C(group)", "lrt", 0.0),
    "nb_group_fixed_prior10": ("~ weight + urea + C(group)", "lrt", 10.0),
    "nb_group_ignored": ("~ weight + urea", "lrt", 0.0),
    "nb_group_ignored_prior10": ("~ weight + urea", "lrt", 10.0),
}


def main(n_reps: int) -> pd.DataFrame:
    mouse = pd.read_csv(HERE / "mouse.tsv", sep="\t").set_index("animal")
    rows = []
    for rep in range(n_reps):
        counts, tw, tu = simulate(1000 + rep, mouse.reset_index())
        keep = filter_by_expr(counts, build_design("~ weight + urea", mouse).x)
        c = counts[:, keep]
        lib = c.sum(axis=1) * calc_norm_factors(c)
        frame = pd.DataFrame(c, index=mouse.index, columns=[f"g{i}" for i in range(c.shape[1])])
        for name, (formula, kind, prior_df) in METHODS.items():
            res = fit_design_negbin(
                frame,
                mouse,
                formula,
                test=["weight", "urea"],
                lib_size=lib,
                prior_df=prior_df,
                test_method=kind,
            )
            for term, truth in (("weight", tw[keep]), ("urea", tu[keep])):
                part = res.table[res.table.term == term]
                rows.append(
                    {"rep": rep, "method": name, "term": term}
                    | evaluate(part.pvalue.to_numpy(), part.padj.to_numpy(), np.asarray(truth))
                )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    table = main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    summary = table.groupby(["method", "term"])[["null_p05", "fdp", "power"]].mean().round(4)
    print(summary.to_string())
    table.to_csv(HERE / "nb_calibration.tsv", sep="\t", index=False)
