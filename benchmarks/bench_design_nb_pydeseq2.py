"""PyDESeq2 timing on the counts written by ``python nb_bench.py 1 --write DIR`` (for the docs).

Not a project dependency: run in a separate virtual environment with ``pip install pydeseq2``
(measured with 0.5.4):  OPENBLAS_NUM_THREADS=1 python nb_bench_pydeseq2.py 20000 DIR
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats

ng = int(sys.argv[1])
mouse = pd.read_csv(
    Path(__file__).resolve().parents[1] / "tests" / "reference" / "designs" / "mouse.tsv", sep="\t"
).set_index("animal")
meta = mouse[["weight", "urea"]].copy()
meta["group"] = "g" + mouse["group"].astype(str)
counts = (
    pd.read_csv(Path(sys.argv[2]) / "nb_bench_counts.tsv.gz", sep="\t", index_col=0).iloc[:ng].T
)
counts.index = meta.index
inf = DefaultInference(n_cpus=1)
t = time.perf_counter()
dds = DeseqDataSet(
    counts=counts,
    metadata=meta,
    design="~ weight + urea + group",
    refit_cooks=False,
    inference=inf,
    quiet=True,
)
dds.deseq2()
t1 = time.perf_counter()
print(dds.obsm["design_matrix"].columns.tolist() if "design_matrix" in dds.obsm else "")
for name in ("weight", "urea"):
    cols = dds.obsm["design_matrix"].columns.tolist()
    c = np.array([1.0 if col == name else 0.0 for col in cols])
    ds = DeseqStats(dds, contrast=c, inference=inf, quiet=True)
    ds.summary()
t2 = time.perf_counter()
print(f"pydeseq2 {ng} genes: deseq2() {t1 - t:.2f} s, 2 Wald tests {t2 - t1:.2f} s")
