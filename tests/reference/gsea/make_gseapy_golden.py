"""Make the gseapy golden files for tests/gsea (run with a separate venv that has gseapy).

    python3 -m venv /tmp/gseaenv && /tmp/gseaenv/bin/pip install gseapy psutil
    /tmp/gseaenv/bin/python tests/reference/gsea/make_gseapy_golden.py

Writes (next to this script): toy.rnk, toy.gmt (inputs, also used by the tests),
gseapy_prerank.tsv (ES/NES/p from gseapy prerank, permutation method) and
gseapy_multilevel.tsv (fgsea multilevel p-values and log2err from gseapy), versions.txt.
The toy ranking has no ties, so the ranked order is unambiguous.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import gseapy
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def make_inputs() -> tuple[pd.Series, dict[str, list[str]]]:
    rng = np.random.default_rng(20240607)
    n = 2000
    genes = [f"GENE{i:04d}" for i in range(n)]
    scores = rng.standard_t(df=5, size=n)
    # make the scores unique (no ties) and give a few sets real signal
    scores = scores + np.linspace(0, 1e-6, n)
    s = pd.Series(scores, index=genes)
    order = s.sort_values(ascending=False).index.to_list()
    sets: dict[str, list[str]] = {}
    for j in range(36):
        k = int(rng.integers(15, 120))
        sets[f"RANDOM_{j:02d}"] = list(rng.choice(genes, size=k, replace=False))
    # enriched at the top / bottom, with noise
    for j, (lo, hi) in enumerate([(0, 150), (0, 400), (1850, 2000), (1500, 2000)]):
        k = int(rng.integers(20, 60))
        sets[f"SHIFTED_{j}"] = list(rng.choice(order[lo:hi], size=k, replace=False))
    sets["TOP_BLOCK"] = order[:25]
    sets["STRONG_UP"] = list(rng.choice(order[:120], size=30, replace=False))
    sets["STRONG_DOWN"] = list(rng.choice(order[-200:], size=40, replace=False))
    return s, sets


def main() -> None:
    s, sets = make_inputs()
    with open(HERE / "toy.rnk", "w") as f:
        for g, v in s.items():
            f.write(f"{g}\t{v:.10f}\n")
    with open(HERE / "toy.gmt", "w") as f:
        for name, genes in sets.items():
            f.write(name + "\tgolden toy set\t" + "\t".join(genes) + "\n")
    rnk = pd.read_csv(HERE / "toy.rnk", sep="\t", header=None)
    pre = gseapy.prerank(
        rnk=rnk,
        gene_sets=str(HERE / "toy.gmt"),
        permutation_num=1000,
        min_size=15,
        max_size=500,
        seed=7,
        threads=1,
        outdir=None,
        no_plot=True,
        weight=1.0,
    )
    r = pre.res2d[["Term", "ES", "NES", "NOM p-val", "FDR q-val"]]
    r.to_csv(HERE / "gseapy_prerank.tsv", sep="\t", index=False, float_format="%.10g")
    ml = gseapy.prerank(
        rnk=rnk,
        gene_sets=str(HERE / "toy.gmt"),
        permutation_num=1000,
        min_size=15,
        max_size=500,
        seed=7,
        threads=1,
        outdir=None,
        no_plot=True,
        method="multilevel",
        sample_size=101,
        eps=0.0,
    )
    ml.res2d.to_csv(HERE / "gseapy_multilevel.tsv", sep="\t", index=False, float_format="%.10g")
    (HERE / "versions.txt").write_text(
        f"gseapy {gseapy.__version__}\nnumpy {np.__version__}\npandas {pd.__version__}\n"
        f"python {platform.python_version()} ({sys.platform})\n"
    )


if __name__ == "__main__":
    main()
