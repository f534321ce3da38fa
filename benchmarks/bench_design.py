"""Speed: 20,000 genes × 10 animals, ``~ weight + urea + (1|group)``, per-gene REML + Satterthwaite.

Usage: OPENBLAS_NUM_THREADS=1 python bench_design.py   (prints seconds; best of 3)
Also writes bench_expr.tsv.gz (the first 200 genes) for bench_lmer.R when --write is given.
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from exprlmm.assoc.designs.api import fit_design
from exprlmm.assoc.designs.formula import build_design

HERE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "designs"
mouse = pd.read_csv(HERE / "mouse.tsv", sep="\t").set_index("animal")
design = build_design("~ weight + urea + (1|group)", mouse)
rng = np.random.default_rng(7)
g = 20000
y = rng.normal(size=(10, g)) + design.random["group"] @ rng.normal(0, 0.7, (3, g))
expr = pd.DataFrame(y, index=mouse.index, columns=[f"g{i}" for i in range(g)])
for label, options in [
    ("per-gene REML + Satterthwaite", {"variance": "gene", "ebayes": False}),
    ("default (consensus + eBayes)", {}),
]:
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fit_design(expr, mouse, "~ weight + urea + (1|group)", **options)
        times.append(time.perf_counter() - t0)
    print(f"{label}: {min(times):.2f} s for {g} genes (best of 3)")
if "--write" in sys.argv:
    expr.iloc[:, :200].T.to_csv("/tmp/bench_expr.tsv.gz", sep="\t")
