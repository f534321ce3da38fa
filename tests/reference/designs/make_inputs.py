"""Seeded inputs for the R golden files of the designs engine (run once; outputs committed).

* ``mouse_sim.tsv``: 20 genes simulated on the mouse design (10 animals, 3 groups):
  y = 0.3·scale(weight) + 0.4·scale(urea) + group effect (sd 0.8) + noise (sd 1).
* ``block_samples.tsv`` / ``block_expr.tsv``: 24 samples, a 3-level treatment, a numeric x,
  6 blocks crossed with 4 litters; 30 genes with block (sd 0.7) and litter (sd 0.5) effects.
"""

import numpy as np
import pandas as pd

rng = np.random.default_rng(20261125)
mouse = pd.read_csv("mouse.tsv", sep="\t")
z = pd.get_dummies(mouse["group"]).to_numpy(float)
sw = (mouse["weight"] - mouse["weight"].mean()) / mouse["weight"].std()
su = (mouse["urea"] - mouse["urea"].mean()) / mouse["urea"].std()
genes = {}
for k in range(20):
    genes[f"m{k:02d}"] = (
        0.3 * sw + 0.4 * su + z @ rng.normal(0, 0.8, 3) + rng.normal(0, 1.0, 10)
    ).to_numpy()
sim = pd.DataFrame(genes, index=mouse["animal"])
sim.index.name = "animal"
sim.round(12).to_csv("mouse_sim.tsv", sep="\t")

n = 24
samples = pd.DataFrame(
    {
        "sample": [f"s{i:02d}" for i in range(n)],
        "treatment": np.tile(["ctrl", "lo", "hi"], 8),
        "x": np.round(rng.normal(0, 1, n), 6),
        "block": np.repeat([f"b{i}" for i in range(6)], 4),
        "litter": np.tile([f"l{i}" for i in range(4)], 6),
    }
)
zb = pd.get_dummies(samples["block"]).to_numpy(float)
zl = pd.get_dummies(samples["litter"]).to_numpy(float)
teff = samples["treatment"].map({"ctrl": 0.0, "lo": 0.3, "hi": 0.8}).to_numpy()
expr = {}
for k in range(30):
    expr[f"g{k:02d}"] = (
        teff * (k % 3) / 2
        + 0.2 * samples["x"].to_numpy()
        + zb @ rng.normal(0, 0.7, 6)
        + zl @ rng.normal(0, 0.5, 4)
        + rng.normal(0, 1.0, n)
    )
samples.to_csv("block_samples.tsv", sep="\t", index=False)
pd.DataFrame(expr, index=samples["sample"]).round(12).to_csv("block_expr.tsv", sep="\t")
