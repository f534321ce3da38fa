"""Several traits in one ``exprlmm assoc`` run (K once) against one run per trait.

A synthetic cohort (:func:`exprlmm.datasets.confounded_cohort`, seed 0, N = 1,090 x
G = 20,000 by default) with three traits (its trait, purity, and their sum plus noise) is
written as TSV; then `exprlmm.pipeline.run_assoc` runs (LMM, null δ, 1 BLAS thread) once with
the three traits and once per trait. Both include reading the files, matching the samples,
K and its eigensystem: what a user pays for ``-t a -t b -t c`` against three commands. The
tables must agree (max |Δ −log10 p|). Then the LMM scan alone, eigensystem given:
`exprlmm.assoc.lmm_scan` once per trait against `exprlmm.assoc.lmm_scan_traits` (each gene
block rotated once for all traits) for 3 and 20 traits (random traits beyond the first).

    python benchmarks/bench_traits.py [--n-samples 1090] [--n-genes 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from exprlmm.assoc import lmm_scan, lmm_scan_traits  # noqa: E402
from exprlmm.datasets import confounded_cohort  # noqa: E402
from exprlmm.kinship import eigensystem_from_expression  # noqa: E402
from exprlmm.pipeline import AssocSettings, run_assoc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1090)
    parser.add_argument("--n-genes", type=int, default=20_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_traits_"))
    cohort = confounded_cohort(0, n_samples=args.n_samples, n_genes=args.n_genes)
    cohort.expression.to_csv(folder / "expression.tsv", sep="\t")
    rng = np.random.default_rng(1)
    sheet = pd.DataFrame(
        {
            "trait": cohort.trait,
            "purity": cohort.purity,
            "mixed": cohort.trait + cohort.purity + rng.normal(size=len(cohort.trait)),
        }
    )
    sheet.to_csv(folder / "samples.tsv", sep="\t", index_label="sample")
    traits = ["trait", "purity", "mixed"]
    base = AssocSettings(
        expression=str(folder / "expression.tsv"),
        samples=str(folder / "samples.tsv"),
        trait=traits[0],
        model="lmm",
    )
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    together = run_assoc(replace(base, more_traits=tuple(traits[1:]))).table
    t_together = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = {t: run_assoc(replace(base, trait=t)).table for t in traits}
    t_alone = time.perf_counter() - t0
    diff = max(
        float(
            np.max(
                np.abs(
                    np.log10(together.loc[together.trait == t, "pvalue"].to_numpy())
                    - np.log10(alone[t]["pvalue"].to_numpy())
                )
            )
        )
        for t in traits
    )
    x = np.ascontiguousarray(cohort.expression.to_numpy(dtype=np.float64))
    eig = eigensystem_from_expression(x)
    scans = {}
    for n_traits in (3, 20):
        ys = {"trait": cohort.trait.to_numpy()}
        ys.update({f"r{i}": rng.normal(size=x.shape[0]) for i in range(n_traits - 1)})
        t0 = time.perf_counter()
        each = {name: lmm_scan(x, y, eigensystem=eig) for name, y in ys.items()}
        t_each = time.perf_counter() - t0
        t0 = time.perf_counter()
        shared = lmm_scan_traits(x, ys, eigensystem=eig)
        t_shared = time.perf_counter() - t0
        scans[n_traits] = {
            "lmm_scan_each_s": round(t_each, 2),
            "lmm_scan_traits_s": round(t_shared, 2),
            "ratio": round(t_shared / t_each, 3),
            "max_abs_diff_neglog10p": max(
                float(np.nanmax(np.abs(np.log10(shared[k].pvalue) - np.log10(each[k].pvalue))))
                for k in ys
            ),
        }
    print(
        json.dumps(
            {
                "scan_only": scans,
                "n_samples": args.n_samples,
                "n_genes": args.n_genes,
                "traits": len(traits),
                "one_run_s": round(t_together, 2),
                "one_run_per_trait_s": round(t_alone, 2),
                "ratio": round(t_together / t_alone, 3),
                "max_abs_diff_neglog10p": diff,
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
