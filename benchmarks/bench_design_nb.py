"""Speed of the negative-binomial option: 20,000 genes × the 10 mice, ``~ weight + urea + C(group)``.

Seeded NB counts as calibration.py (base expression log-normal, dispersion 0.05–0.3, group
effect sd 0.3), 20,000 genes. Times (one BLAS thread, best of ``reps``): TMM factors;
the quasi-likelihood path (CLI default: common Cox–Reid dispersion, GLM + QL fit with the
abundance trend, F tests of weight and urea); the LRT path (Cox–Reid dispersions shrunk with
prior.df 10, GLM fit and LRTs of weight and urea); per-gene dispersions (prior.df 0).
``--write DIR`` also writes the counts for nb_bench_edger.R (edgeR on the same data).
Usage: OPENBLAS_NUM_THREADS=1 python nb_bench.py [reps] [--write DIR]
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.counts import calc_norm_factors, filter_by_expr
from exprlmm.assoc.designs.formula import build_design
from exprlmm.assoc.designs.negbin import (
    ave_log_cpm,
    common_dispersion,
    estimate_dispersion,
    fit_nb_glm,
    nb_lrt,
    nb_ql_fit,
    nb_ql_ftest,
)
from exprlmm.datasets import mouse_design_counts

HERE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "designs"


def main(reps: int, write: Path | None) -> None:
    mouse = pd.read_csv(HERE / "mouse.tsv", sep="\t")
    design = build_design("~ weight + urea + C(group)", mouse)
    counts = mouse_design_counts(2024, mouse, n_genes=20000, n_true=1200).counts
    if write is not None:
        frame = pd.DataFrame(counts.T, columns=mouse.animal)
        frame.index = [f"g{i:05d}" for i in range(counts.shape[1])]
        frame.astype(int).to_csv(write / "nb_bench_counts.tsv.gz", sep="\t")
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        t = [time.perf_counter()]
        keep = filter_by_expr(counts, design.x)
        c = counts[:, keep]
        lib = c.sum(axis=1) * calc_norm_factors(c)
        offset = np.log(lib)
        t.append(time.perf_counter())
        common = common_dispersion(c, design.x, offset)
        t.append(time.perf_counter())
        ql = nb_ql_fit(
            c, design.x, offset, common, abundance=ave_log_cpm(c, lib, dispersion=common)
        )
        for term in ("weight", "urea"):
            nb_ql_ftest(c, design.x, offset, ql, design.terms[term])
        t.append(time.perf_counter())
        disp = estimate_dispersion(c, design.x, offset, prior_df=10)
        t.append(time.perf_counter())
        fit = fit_nb_glm(c, design.x, offset, disp.dispersion)
        for term in ("weight", "urea"):
            nb_lrt(c, design.x, offset, disp.dispersion, design.terms[term], full=fit)
        t.append(time.perf_counter())
        estimate_dispersion(c, design.x, offset)
        t.append(time.perf_counter())
        steps = (
            ("filter+TMM", 0, 1),
            ("QL: common dispersion", 1, 2),
            ("QL: GLM + QL fit + 2 F tests", 2, 3),
            ("LRT: dispersion, prior.df 10", 3, 4),
            ("LRT: GLM + 2 LRT", 4, 5),
            ("dispersion, prior.df 0", 5, 6),
        )
        for name, a, b in steps:
            times.setdefault(name, []).append(t[b] - t[a])
        times.setdefault("total QL (CLI default)", []).append(t[3] - t[0])
        times.setdefault("total LRT (--nb-test lrt)", []).append(t[1] - t[0] + t[5] - t[3])
    print(f"genes kept {int(keep.sum())} of {counts.shape[1]}")
    for name, values in times.items():
        print(f"{name}: best {min(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    args = sys.argv[1:]
    out = None
    if "--write" in args:
        i = args.index("--write")
        out = Path(args[i + 1])
        del args[i : i + 2]
    main(int(args[0]) if args else 3, out)
